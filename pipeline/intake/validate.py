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
from .attachments import read_links, read_partners, read_photos
from .record import (
    Record,
    Rejection,
    bad_char,
    describe,
    quote,
    required_text,
    text_of,
    tidy,
)
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
    participants, links = _participants(rec, kind), read_links(rec)
    photos, contact = read_photos(rec, base_dir, settings.limits), text_of(rec, "contact")
    notes = text_of(rec, "notes", multiline=True)
    partners = read_partners(rec)
    if (rec.rejections or unit is None or kind is None or title is None or span is None
            or place is None or form is None or body is None or participants is None):
        return rec.rejections
    return Report(unit=unit, activity_type=kind, title=title, start=span[0], end=span[1],
                  place=place, form=form, body=body, participants=participants[1],
                  participants_unit=participants[2], participants_text=participants[0],
                  timed=span[2], notes=notes or "",
                  links=links or (), photos=photos or (), contact=contact or "",
                  partners=partners or (),
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
    code, params = _unknown_unit(text, sorted(units))
    rec.reject(rec.key("unit"), code, **params)
    return None


def _unknown_unit(text: str, units: list[str]) -> tuple[str, dict[str, object]]:
    if not units:
        return "intake.no_units", {"value": quote(text)}
    close = [u for u in units if text in u or u in text]
    close += [u for u in difflib.get_close_matches(text, units, n=3, cutoff=0.5) if u not in close]
    if close:
        return "intake.unknown_unit_close", {"value": quote(text), "close": close[:3]}
    return "intake.unknown_unit", {"value": quote(text), "count": len(units),
                                   "examples": units[:5]}


def _activity_type(rec: Record, settings: Settings) -> str | None:
    text = required_text(rec, "activity_type")
    if text is None:
        return None
    kind = settings.activity_type(text)
    if kind is None:
        accepted = [(t.label, t.key) for t in settings.activity_types.values()]
        rec.reject(rec.key("activity_type"), "intake.unknown_type", value=quote(text),
                   accepted=accepted)
        return None
    return kind.key


def _title(rec: Record, limits: Limits) -> str | None:
    title = required_text(rec, "title")
    if title is not None and len(title) > limits.title_chars:
        rec.reject(rec.key("title"), "intake.title_long", value=quote(title, 40),
                   length=len(title), limit=limits.title_chars)
        return None
    return title


def _body(rec: Record, limits: Limits) -> str | None:
    body = required_text(rec, "body", multiline=True)
    if body is not None and len(body) > limits.body_chars:
        rec.reject(rec.key("body"), "intake.body_long", length=len(body),
                   limit=limits.body_chars)
        return None
    return body


# A number with its unit: 约260人, 800余人次, 4户; 名 and 位 are people too.
_COUNTED = re.compile(r"(\d{1,8})\s*(?:余|多)?\s*(人次|人|名|位|户)", re.ASCII)
_BARE = re.compile(r"(?:约|大约|近|共|合计|累计|逾|超过)?(\d{1,8})(?:余|多)?", re.ASCII)
_MAX_PEOPLE = 10_000_000
_MAX_TEXT = 100
_UNITS = {"人": "人", "名": "人", "位": "人", "人次": "人次", "户": "户"}


def _participants(rec: Record, kind: str | None) -> tuple[str, int | None, str] | None:
    """参与人数 as written, plus a count and its unit (人, 人次, 户) where one can be read.

    Any text is accepted: "志愿者18人，群众约200人" is kept verbatim and counted as 218
    人; text with no number keeps an empty count. Hardship visits prefer households.
    """
    value = rec.get("participants")
    if value is None:
        return "", None, ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = f"{value:g}" if isinstance(value, float) else str(value)
    if not isinstance(value, str):
        rec.reject(rec.key("participants"), "intake.participants_not_text",
                   got=describe(value))
        return None
    problem = bad_char(value)
    if problem:
        rec.reject(rec.key("participants"), "intake.bad_text", value=quote(value),
                   problem=problem)
        return None
    text = tidy(value, multiline=False)
    if len(text) > _MAX_TEXT:
        rec.reject(rec.key("participants"), "intake.participants_long", value=quote(text, 40),
                   length=len(text), limit=_MAX_TEXT)
        return None
    count, unit = participant_count(text, prefer_households=kind == "hardship_visit")
    return text, count, unit


def participant_count(text: str, prefer_households: bool = False) -> tuple[int | None, str]:
    """The count read from a 参与人数 text and its unit, or (None, "")."""
    plain = re.sub(r"[\s,]", "", unicodedata.normalize("NFKC", text))
    bare = _BARE.fullmatch(plain)
    if bare:
        totals = {"人": int(bare[1])}
    else:
        totals = {}
        for number, unit in _COUNTED.findall(plain):
            totals[_UNITS[unit]] = totals.get(_UNITS[unit], 0) + int(number)
    order = ("户", "人", "人次") if prefer_households else ("人", "人次", "户")
    for unit in order:
        if unit in totals and totals[unit] <= _MAX_PEOPLE:
            return totals[unit], unit
    return None, ""
