"""The Jinja side: activity templates turn a report into article Markdown.

Report text is only ever data passed into our sandboxed, autoescaped templates,
escaped for HTML and Markdown first; it is never compiled as a template.
"""

from __future__ import annotations

import functools
import re
import traceback
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import jinja2
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from ..config import ActivityType, Settings
from ..domain import Report
from ..errors import RenderError
from ..messages import Coded
from .patterns import (
    CONTROL,
    ENTITY_START,
    MD_SPECIAL,
    TAG_START,
    URL_BREAKERS,
    WEB_URL,
)


def make_environment(settings: Settings) -> SandboxedEnvironment:
    """A sandboxed Jinja environment over ``settings.paths.templates``.

    Build it once and reuse it: it caches the compiled templates (and re-reads a
    template file an administrator changed).
    """
    return _build_environment(settings.paths.templates, settings.tz)


def _build_environment(templates: Path, tz: ZoneInfo) -> SandboxedEnvironment:
    # Autoescape everywhere, Markdown templates too: an escaped `<` or `&` in a
    # user field shows as text in Markdown as it does in HTML.
    env = SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(templates), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True)
    env.filters["cn_date"] = lambda value: _cn_date(value.astimezone(tz))
    env.filters["cn_datetime"] = lambda value: _cn_datetime(value.astimezone(tz))
    env.globals["period"] = lambda start, end, timed=True: _cn_period(
        start.astimezone(tz), end.astimezone(tz), timed)
    return env


# markdown_to_html/rerender get no environment: share one per templates folder.
# Jinja still re-reads a template whose file changed (auto_reload).
shared_environment = functools.lru_cache(maxsize=8)(_build_environment)


def _cn_date(value: datetime) -> str:
    return f"{value.year}年{value.month}月{value.day}日"


def _cn_datetime(value: datetime) -> str:
    return f"{_cn_date(value)} {value.hour}:{value.minute:02d}"


def _cn_period(start: datetime, end: datetime, timed: bool = True) -> str:
    """News-style time of an activity: 2026年6月20日上午, 2026年6月20日至22日.

    A date reported without a time gets no part of day (it would be invented); a
    time range gets the part of day of its start.
    """
    if start.date() == end.date():
        return _cn_date(start) + (_part_of_day(start.hour) if timed else "")
    if (start.year, start.month) == (end.year, end.month):
        return f"{_cn_date(start)}至{end.day}日"
    if start.year == end.year:
        return f"{_cn_date(start)}至{end.month}月{end.day}日"
    return f"{_cn_date(start)}至{_cn_date(end)}"


def _part_of_day(hour: int) -> str:
    for limit, name in ((5, "凌晨"), (12, "上午"), (14, "中午"), (18, "下午")):
        if hour < limit:
            return name
    return "晚上"


def _md_text(value: str) -> Markup:
    """A one-line user field as Markdown text: no markup of its own survives."""
    text = " ".join(CONTROL.sub("", value).split())
    text = ENTITY_START.sub("&amp;", text).replace("<", "&lt;").replace(">", "&gt;")
    return Markup(MD_SPECIAL.sub(r"\\\g<0>", text))


def md_body(value: str) -> Markup:
    """The reporter's Markdown, with tag-like ``<`` shown as text.

    Raw HTML never reaches Markdown from a report: an unclosed ``<div>``,
    ``<script>`` or ``<plaintext>`` would swallow the rest of the article
    (photos, footer line). Autolinks such as ``<https://...>`` still work.
    """
    text = CONTROL.sub("", value.replace("\r\n", "\n").replace("\r", "\n")).strip()
    return Markup(TAG_START.sub("&lt;", ENTITY_START.sub("&amp;", text)))


def _md_url(url: str) -> Markup:
    """An address Markdown keeps whole: no spaces, brackets or quotes left in it."""
    return Markup(URL_BREAKERS.sub(lambda m: quote(m[0]), url.strip()))


def _md_link(link: str) -> Markup:
    """A publicity item: a web address as an autolink, anything else as text."""
    link = link.strip()
    if WEB_URL.fullmatch(link):
        return Markup(f"<{_md_url(link)}>")
    return _md_text(link)


def _template_context(report: Report, kind: ActivityType, photo_names: Sequence[str],
                      lead_note: str | None) -> dict[str, object]:
    # The contact and the reporter's notes are for the editors: deliberately not here,
    # so no template can print them into an article.
    return {
        "title": _md_text(report.title), "unit": _md_text(report.unit),
        "type_label": _md_text(kind.label), "activity_type": kind.key,
        "start": report.start, "end": report.end, "timed": report.timed,
        "place": _md_text(report.place), "form": _md_text(report.form),
        "place_names_unit": bool(report.unit) and report.unit in report.place,
        "lead": lead_note is None,
        "body": md_body(report.body), "participants": _md_text(_people(report)),
        "participants_count": report.participants, "participants_unit": report.participants_unit,
        "photos": [_md_url(name) for name in photo_names],
        "links": [_md_link(link) for link in report.links if link.strip()],
        "extra": {key: _md_text(value) for key, value in report.extra.items()},
    }


def _people(report: Report) -> str:
    """参与人数 as written; a bare number ("120") gets the unit it was read in."""
    text = report.participants_text
    if text.isdigit() and report.participants_unit:
        return text + report.participants_unit
    return text


def compose_markdown(report: Report, photo_names: Sequence[str], env: jinja2.Environment,
                     settings: Settings) -> tuple[str, tuple[str, ...]]:
    """The article Markdown from the activity type's template, and notes for the editor.

    Raises:
        RenderError: the activity type is unknown or its template is missing or broken.
    """
    kind = settings.activity_types.get(report.activity_type)
    if kind is None:
        raise RenderError.coded("template.type_unknown", type=report.activity_type)
    note = lead_note(report, settings.tz)
    context = _template_context(report, kind, photo_names, note)
    return render_template(env, kind.template, context), (note,) if note else ()


def render_markdown(report: Report, photo_names: Sequence[str], env: jinja2.Environment,
                    settings: Settings) -> str:
    """The article Markdown alone (see ``compose_markdown``)."""
    return compose_markdown(report, photo_names, env, settings)[0]


_SENTENCE_END = re.compile(r"[。！？!?\n]")
_MD_LEAD = re.compile(r"^[\s#>*_-]+")


def lead_note(report: Report, tz: ZoneInfo) -> str | None:
    """Why the lead sentence is left out, or None to write it.

    The lead says when and where; when the reporter's first sentence already opens
    with the activity's date and place, a lead would say the same thing twice.
    """
    first = _SENTENCE_END.split(_MD_LEAD.sub("", report.body.lstrip()), maxsplit=1)[0]
    first = "".join(first.split())
    day = report.start.astimezone(tz)
    dates = [f"{day.month}月{day.day}{end}" for end in ("日", "号")]
    dates += [f"{day.month:02d}月{day.day:02d}日"]
    place = "".join(report.place.split())
    places = [place]
    if report.unit and place.startswith(report.unit) and len(place) - len(report.unit) >= 2:
        places.append(place[len(report.unit):])
    found_date = next((d for d in dates if d in first), None)
    found_place = next((p for p in places if p and p in first), None)
    if found_date is None or found_place is None:
        return None
    return Coded("render.lead_left_out", date=found_date, place=found_place)


# Mistakes an administrator can make in a template's expressions ({{ 1 / 0 }},
# {{ participants + "人" }}); they are reported like Jinja's own errors.
_TEMPLATE_MISTAKES = (jinja2.TemplateError, TypeError, ValueError, ArithmeticError,
                      LookupError, AttributeError)


def render_template(env: jinja2.Environment, name: str, context: dict[str, object]) -> str:
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateNotFound as exc:
        raise RenderError.coded("template.missing", name=exc.name,
                                folders=_search_path(env)) from exc
    except jinja2.TemplateSyntaxError as exc:
        raise RenderError.coded("template.syntax", name=exc.name or name, line=exc.lineno,
                                detail=exc.message) from exc
    except _TEMPLATE_MISTAKES as exc:
        at = _failing_line(exc, env)
        if at is None:
            raise RenderError.coded("template.failed", name=name, detail=str(exc)) from exc
        raise RenderError.coded("template.failed_at", name=at[0], line=at[1],
                                detail=str(exc)) from exc


def _search_path(env: jinja2.Environment) -> list[str]:
    loader = env.loader
    return list(loader.searchpath) if isinstance(loader, jinja2.FileSystemLoader) else []


def _failing_line(exc: BaseException, env: jinja2.Environment) -> tuple[str, int] | None:
    # Jinja rewrites tracebacks so that template frames carry the file and line.
    folders = [Path(folder) for folder in _search_path(env)]
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        for folder in folders:
            if Path(frame.filename).is_relative_to(folder):
                name = Path(frame.filename).relative_to(folder).as_posix()
                return name, frame.lineno or 0
    return None
