"""Activity times: ISO 8601 and Chinese office forms, ranges, whole days, checks."""

from __future__ import annotations

import calendar
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from typing import Any

from ..config import Settings
from ..messages import message
from .record import Invalid, Record, describe, quote

_WEEKDAY = r"(?:\s*\(?\s*(?:星期|周|礼拜)[一二三四五六日天]\s*\)?)?"
_DATE = (r"(?P<y>\d{4})\s*(?:(?P<sep>[-/.])\s*(?P<m>\d{1,2})\s*(?P=sep)\s*(?P<d>\d{1,2})"
         r"|年\s*(?P<cm>\d{1,2})\s*月\s*(?P<cd>\d{1,2})\s*[日号]?)" + _WEEKDAY)
_CLOCK = (r"(?P<ap>上午|下午|中午|晚上|早上|早晨|凌晨|傍晚)?\s*(?P<h>\d{1,2})\s*"
          r"(?::\s*(?P<mi>\d{2})(?::(?P<s>\d{2})(?:\.\d+)?)?"
          r"|[时点]\s*(?:(?P<cmi>\d{1,2})\s*分?|(?P<half>半))?)")
_ZONE = r"(?P<z>Z|[+-]\d{2}(?::?\d{2})?)"
_POINT_RE = re.compile(rf"(?:{_DATE})(?:\s*(?P<t>T)?\s*{_CLOCK}\s*{_ZONE}?)?\s*(?:全天)?",
                       re.ASCII | re.IGNORECASE)
_CLOCK_RE = re.compile(rf"{_CLOCK}\s*{_ZONE}?", re.ASCII | re.IGNORECASE)
_PERIOD = re.compile("上午|下午|中午|晚上|早上|早晨|凌晨|傍晚")
_RANGE_SEP = re.compile(r"\s*(?:至|到|~|〜|–|—{1,2}|-{1,2})\s*")
_YEARS = (2000, 2100)


@dataclass(frozen=True)
class _Point:
    when: datetime   # naive unless the text carried a zone
    date_only: bool


def _num(groups: Mapping[str, str | None], *names: str) -> int:
    return next((int(v) for n in names if (v := groups.get(n))), 0)


def _date_of(g: Mapping[str, str | None]) -> date:
    year, month, day = _num(g, "y"), _num(g, "m", "cm"), _num(g, "d", "cd")
    if not _YEARS[0] <= year <= _YEARS[1]:
        raise Invalid("time.implausible_year", year=year, first=_YEARS[0], last=_YEARS[1])
    if not 1 <= month <= 12:
        raise Invalid("time.no_month", month=month)
    days = calendar.monthrange(year, month)[1]
    if not 1 <= day <= days:
        raise Invalid("time.no_day", year=year, month=f"{month:02d}", days=days, day=day)
    return date(year, month, day)


def _clock_of(g: Mapping[str, str | None]) -> time | None:
    if not g.get("h"):
        return None
    hour, period = _num(g, "h"), g.get("ap")
    if (period in ("下午", "晚上", "傍晚") and hour < 12) or (period == "中午" and hour < 11):
        hour += 12  # 下午3点 is 15:00; 中午1点 is 13:00
    minute = 30 if g.get("half") else _num(g, "mi", "cmi")
    second = _num(g, "s")
    if hour > 23 or minute > 59 or second > 59:
        raise Invalid("time.no_clock", clock=f"{hour:02d}:{minute:02d}:{second:02d}")
    return time(hour, minute, second)


def _zone_of(text: str | None) -> tzinfo | None:
    if not text:
        return None
    if text.upper() == "Z":
        return UTC
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 14 or minutes > 59:
        raise Invalid("time.no_zone", value=text)
    offset = timedelta(hours=hours, minutes=minutes)
    return timezone(-offset if text[0] == "-" else offset)


def _parse_point(text: str, day: date | None) -> _Point | None:
    """One date and time, or a clock time on ``day``; None if ``text`` is neither."""
    found = _POINT_RE.fullmatch(text) or (_CLOCK_RE.fullmatch(text) if day else None)
    if found is None:
        return None
    g: dict[str, str | None] = found.groupdict()
    zone_text = g.get("z")
    if zone_text and zone_text[0] == "-" and not (g.get("t") or g.get("s")):
        return None  # "09:00-11:30" is a range, not 09:00 at UTC-11:30
    when_day = _date_of(g) if g.get("y") else day
    if when_day is None:
        return None
    clock = _clock_of(g)
    when = datetime.combine(when_day, clock or time())
    zone = _zone_of(zone_text)
    return _Point(when.replace(tzinfo=zone) if zone else when, clock is None)


def _parse_span(text: str, day: date | None) -> tuple[_Point, _Point | None]:
    text = re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip()
    point = _parse_point(text, day)
    if point is not None:
        return point, None
    for sep in _RANGE_SEP.finditer(text):
        first = _parse_point(text[:sep.start()], day)
        if first is None:
            continue
        second = _parse_point(_with_period(text[:sep.start()], text[sep.end():]),
                              first.when.date())
        if second is not None:
            if second.when.tzinfo is None and first.when.tzinfo is not None:
                second = _Point(second.when.replace(tzinfo=first.when.tzinfo), second.date_only)
            return first, second
    raise Invalid()


def _with_period(left: str, right: str) -> str:
    """In "下午2点-4点" the end is in the afternoon too: give it the start's period word."""
    periods: list[str] = _PERIOD.findall(left)
    clock = _CLOCK_RE.fullmatch(right)
    if periods and clock and not clock["ap"]:
        return periods[-1] + right
    return right


def _span_of(value: object, day: date | None) -> tuple[_Point, _Point | None]:
    if isinstance(value, str):
        return _parse_span(value, day)
    if isinstance(value, datetime):
        if not _YEARS[0] <= value.year <= _YEARS[1]:
            raise Invalid("time.implausible_year", year=value.year, first=_YEARS[0],
                          last=_YEARS[1])
        return _Point(value, False), None
    if isinstance(value, date):
        return _span_of(value.isoformat(), None)
    if isinstance(value, time) and day is not None:
        return _Point(datetime.combine(day, value), False), None
    if isinstance(value, time):
        raise Invalid("time.without_date")
    raise Invalid("time.not_a_time", got=describe(value))


def _time_message(value: object, reason: Invalid) -> tuple[str, dict[str, Any]]:
    """The rejection for an unreadable time: (code, parameters)."""
    forms = message("time.forms")
    if not isinstance(value, str):
        if reason.code == "time.not_a_time":
            return reason.code, reason.params
        return "time.reason_forms", {"reason": reason.message(), "forms": forms}
    q = quote(value)
    if reason.code:
        return "time.invalid", {"value": q, "reason": reason.message(), "forms": forms}
    if re.fullmatch(r"\s*\d{9,}(\.\d+)?\s*", value):
        return "time.timestamp", {"value": q, "forms": forms}
    if re.match(r"\s*\d{1,2}\s*(月|[-/.]\s*\d)", value):
        return "time.no_year", {"value": q, "forms": forms}
    return "time.unreadable", {"value": q, "forms": forms}


def _read_span(rec: Record, name: str, day: date | None) -> tuple[_Point, _Point | None] | None:
    value = rec.get(name)
    try:
        return _span_of(value, day)
    except Invalid as exc:
        code, params = _time_message(value, exc)
        rec.reject(rec.key(name), code, **params)
        return None


def _day_of(rec: Record) -> tuple[bool, date | None]:
    """The ``date`` field's day for times written without one: (ok, day)."""
    if "date" not in rec.values:
        return True, None
    if not {"time", "start"} & rec.values.keys():
        rec.values["time"] = rec.values.pop("date")  # a date column alone is the activity time
        return True, None
    span = _read_span(rec, "date", None)
    if span is None:
        return False, None
    if span[1] is not None or not span[0].date_only:
        rec.reject(rec.key("date"), "time.date_alone", date=rec.key("date"),
                   time=rec.key("time"))
        return False, None
    return True, span[0].when.date()


@dataclass(frozen=True)
class _Span:
    start_name: str          # the field that gave the start: time or start
    end_name: str            # the field that gave the end
    first: _Point
    last: _Point | None


def _spans(rec: Record, day: date | None) -> _Span | None:
    if "time" in rec.values and ({"start", "end"} & rec.values.keys()):
        rec.reject(rec.key("time"), "time.both", time=rec.key("time"), start=rec.key("start"),
                   end=rec.key("end"))
        return None
    name = "time" if "time" in rec.values else "start"
    if name in rec.values:
        span = _read_span(rec, name, day)
        if span is None or "end" not in rec.values:
            return None if span is None else _Span(name, name, *span)
        return _with_end(rec, name, span)
    rec.reject(rec.key("time"), "time.missing", time=rec.key("time"), start=rec.key("start"),
               end=rec.key("end"))
    return None


def _with_end(rec: Record, name: str, span: tuple[_Point, _Point | None]) -> _Span | None:
    if span[1] is not None:
        rec.reject(rec.key(name), "time.range_and_end", field=rec.key(name), end=rec.key("end"))
        return None
    end = _read_span(rec, "end", span[0].when.date())  # "11:30" alone: the start's day
    if end is not None and end[1] is not None:
        rec.reject(rec.key("end"), "time.end_range", end=rec.key("end"))
        return None
    return None if end is None else _Span(name, "end", span[0], end[0])


def read_times(rec: Record, settings: Settings, now: datetime
               ) -> tuple[datetime, datetime, bool] | None:
    """(start, end, timed): ``timed`` is False when the start was given as a date alone."""
    ok, day = _day_of(rec)
    span = _spans(rec, day) if ok else None
    if span is None:
        return None
    key = rec.key(span.start_name)
    if day is not None and span.first.when.date() != day:
        rec.reject(key, "time.disagree", date=rec.key("date"), day=str(day), field=key,
                   other=str(span.first.when.date()))
        return None
    start = aware(span.first.when, settings.tz)
    last = span.last or span.first
    end = aware(last.when.replace(hour=23, minute=59, second=59) if last.date_only
                 else last.when, settings.tz)
    if end < start:
        rec.reject(rec.key(span.end_name), "time.end_before_start", end=_show(end),
                   start=_show(start))
        return None
    if start > now + timedelta(minutes=settings.limits.future_grace_minutes):
        rec.reject(key, "time.future", start=_show(start), now=_show(now))
        return None
    return start, end, not span.first.date_only


def aware(when: datetime, tz: tzinfo) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=tz)


def _show(when: datetime) -> str:
    return when.isoformat(sep=" ", timespec="minutes")
