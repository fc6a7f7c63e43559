"""``validate_record``: one raw record (file row, form post, JSON) to a ``Report``."""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Collection, Mapping
from datetime import datetime
from pathlib import Path

from ..config import Limits, Settings
from ..domain import Report
from .attachments import read_links, read_photos
from .record import Record, Rejection, describe, quote, required_text, text_of
from .times import aware, read_times


def validate_record(raw: Mapping[str, object], *, settings: Settings, units: Collection[str],
                    now: datetime, base_dir: Path | None, source: str, row: int | None,
                    strict_keys: bool = False) -> Report | list[Rejection]:
    """Check one report (from a file, the web form or the JSON API).

    ``strict_keys`` rejects unknown keys that look like typos of known ones
    (for hand-written TOML/JSON); otherwise unknown keys go to ``Report.extra``.
    Returns the report, or every problem found in it. Never raises for bad input.
    """
    rec = Record(raw, source, row, strict_keys)
    unit, kind = _unit(rec, units), _activity_type(rec, settings)
    title, span = _title(rec, settings.limits), read_times(rec, settings, aware(now, settings.tz))
    place, form = required_text(rec, "place"), required_text(rec, "form")
    body = _body(rec, settings.limits)
    participants, links = _participants(rec), read_links(rec)
    photos, contact = read_photos(rec, base_dir, settings.limits), text_of(rec, "contact")
    if (rec.rejections or unit is None or kind is None or title is None or span is None
            or place is None or form is None or body is None):
        return rec.rejections
    return Report(unit=unit, activity_type=kind, title=title, start=span[0], end=span[1],
                  place=place, form=form, body=body, participants=participants,
                  links=links or (), photos=photos or (), contact=contact or "",
                  source=source, row=row, extra=rec.extra)



# ---------------------------------------------------------------- unit, type, title, body


def _unit(rec: Record, units: Collection[str]) -> str | None:
    text = required_text(rec, "unit")
    if text is None or text in units:
        return text
    compact = re.sub(r"\s", "", text)
    for unit in units:
        if re.sub(r"\s", "", unit) == compact:
            return unit
    rec.reject(rec.key("unit"), _unknown_unit(text, sorted(units)))
    return None


def _unknown_unit(text: str, units: list[str]) -> str:
    if not units:
        return f"unknown unit {quote(text)}; no units are configured yet (add them to config.toml)"
    close = [u for u in units if text in u or u in text]
    close += [u for u in difflib.get_close_matches(text, units, n=3, cutoff=0.5) if u not in close]
    if close:
        names = " or ".join(f"'{u}'" for u in close[:3])
        return (f"unknown unit {quote(text)}; did you mean {names}? "
                "Write the unit's name exactly as configured")
    examples = ", ".join(f"'{u}'" for u in units[:5])
    return (f"unknown unit {quote(text)}; it must be one of the {len(units)} configured units, "
            f"for example {examples}")


def _activity_type(rec: Record, settings: Settings) -> str | None:
    text = required_text(rec, "activity_type")
    if text is None:
        return None
    kind = settings.activity_type(text)
    if kind is None:
        accepted = ", ".join(f"{t.label} ({t.key})" for t in settings.activity_types.values())
        rec.reject(rec.key("activity_type"),
                   f"unknown activity type {quote(text)}; use one of: {accepted}")
        return None
    return kind.key


def _title(rec: Record, limits: Limits) -> str | None:
    title = required_text(rec, "title")
    if title is not None and len(title) > limits.title_chars:
        rec.reject(rec.key("title"), f"the title {quote(title, 40)} is {len(title)} characters "
                   f"long; the limit is {limits.title_chars} (every Chinese character, letter, "
                   "digit, space or punctuation mark counts as one)")
        return None
    return title


def _body(rec: Record, limits: Limits) -> str | None:
    body = required_text(rec, "body", multiline=True)
    if body is not None and len(body) > limits.body_chars:
        rec.reject(rec.key("body"), f"the text is {len(body)} characters long; the limit is "
                   f"{limits.body_chars} characters; shorten it")
        return None
    return body


_PEOPLE = re.compile(r"(?:约|大约|近|共|合计|累计|逾|超过)?(\d{1,8})(?:余|多)?(?:人次|人|名)?",
                     re.ASCII)
_MAX_PEOPLE = 10_000_000


def _participants(rec: Record) -> int | None:
    value = rec.get("participants")
    if value is None:
        return None
    number: int | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = int(value) if float(value).is_integer() else None
    elif isinstance(value, str):
        found = _PEOPLE.fullmatch(re.sub(r"[\s,]", "", unicodedata.normalize("NFKC", value)))
        number = int(found[1]) if found else None
    if number is not None and 0 <= number <= _MAX_PEOPLE:
        return number
    shown = quote(value) if isinstance(value, str) else describe(value)
    rec.reject(rec.key("participants"), f"{shown} is not a number of people; write a whole "
               "number of 0 or more, such as 120 (\"约120人\" is read as 120)")
    return None
