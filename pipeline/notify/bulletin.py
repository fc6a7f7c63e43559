"""The weekly joint bulletin (每周联合通报) for one ISO week, Monday to Sunday, local time.

Per unit, grouped by level: reports submitted, stories published, the on-time
rate, late and missed stories, campaign progress per activity type (done /
target with a bar made of table cells, which mail clients keep), the units
that reported nothing, and a ranking by a score whose formula is printed.

``gather`` reads the store through a ``reads.Reader`` (``gather_bulletin``: through a
session); ``compose_bulletin`` is pure; ``write_week`` writes
``published/bulletins/<week>.html``, ``.md`` and ``.xlsx``; ``send_bulletin`` also
enqueues the email once per week (outbox key ``bulletin:<week>``).

The module loads no database library, and openpyxl only to write the workbook: the
lean start of ``pipeline bulletin`` (``bulletincmd.py``) gathers through the DB-API.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ..config import ScoringSettings, Settings, Target
from ..domain import ROUNDUP, DraftStatus, Level, tree_order
from ..errors import NotifyError
from ..push.days import DayRecord, read_days
from ..reach.media import COVERAGE_LEVELS, classify_report, with_classified
from ..reads import Reader, SessionReader, stored_time, time_operand
from ..reads import units as unit_rows
from ..writer import GuardedWriter
from .campaign import Activity, Progress, gaps_sentence, progress
from .reports import WEEKDAYS, DeliveryReport, recipients
from .templates import render_html, render_template

if TYPE_CHECKING:  # this module loads no database library: the lean start of ``pipeline
    from sqlmodel import Session  # bulletin`` gathers through the DB-API (lean.py)

    from ..store import Store

BAR_PX = 100


@dataclass(frozen=True, order=True)
class IsoWeek:
    year: int
    week: int

    @property
    def label(self) -> str:
        return f"{self.year}-W{self.week:02d}"

    @property
    def monday(self) -> date:
        return date.fromisocalendar(self.year, self.week, 1)

    @property
    def sunday(self) -> date:
        return self.monday + timedelta(days=6)

    @classmethod
    def of(cls, day: date) -> IsoWeek:
        year, week, _ = day.isocalendar()
        return cls(year, week)

    def previous(self) -> IsoWeek:
        return IsoWeek.of(self.monday - timedelta(days=7))


class WeekError(ValueError):
    """Not an ISO week: a code of the vocabulary with its parameters."""

    def __init__(self, code: str, **params: object) -> None:
        from ..messages import render

        super().__init__(render(code, "en", **params))
        self.code, self.params = code, params


def parse_week(text: str) -> IsoWeek:
    """Parse "2026-W25" (also "2026W25", "2026-w25").

    Raises:
        ValueError: with a sentence, when the text is not an ISO week.
    """
    match = re.fullmatch(r"\s*(\d{4})-?[Ww](\d{1,2})\s*", text)
    if match is None:
        raise WeekError("cli.bad_week", text=text)
    year, week = int(match[1]), int(match[2])
    try:
        date.fromisocalendar(year, week, 1)
    except ValueError:
        raise WeekError("cli.no_such_week", text=text, year=year, week=week) from None
    return IsoWeek(year, week)


@dataclass(frozen=True)
class UnitWeek:
    name: str
    level: Level
    parent: str | None
    submitted: int = 0
    published: int = 0
    late: int = 0                            # published late this week, whoever's fault
    missed: int = 0                          # deadline passed this week, still not out
    done: Mapping[str, int] = field(default_factory=dict)   # older per-type view
    # reach (issue 12): WeChat reads of the week's published stories, coverage by level
    measured: int = 0                        # published stories with read figures
    reads: int = 0
    coverage: Mapping[str, int] = field(default_factory=dict)  # national/provincial/city
    # issue 10: the plan, and whose delay it was
    progress: tuple[Progress, ...] = ()
    late_unit: int = 0                       # reports received after deadline.report_hours
    late_desk: int = 0                       # late although the unit reported in time
    missed_desk: int = 0                     # of ``missed``, reported in time
    email: str | None = None

    @property
    def reads_per_story(self) -> float | None:
        return self.reads / self.measured if self.measured else None

    @property
    def on_time(self) -> int:
        return self.published - self.late

    @property
    def missed_unit(self) -> int:
        return self.missed - self.missed_desk


@dataclass(frozen=True)
class DeskWeek:
    """The desk's own line: how long each review stage held the week's published stories."""

    stages: tuple[tuple[str, int, float], ...] = ()   # stage, stories, average hours
    late: int = 0                                     # late because the desk held them
    missed: int = 0


@dataclass(frozen=True)
class BulletinData:
    week: IsoWeek
    units: tuple[UnitWeek, ...]                       # tree order
    targets: Mapping[Level, Mapping[str, Target]]
    labels: Mapping[str, str]                         # activity type -> Chinese label
    campaign: str | None = None
    progress_until: date | None = None                # campaign progress counted up to here
    days: tuple[DayRecord, ...] = ()                  # the week's daily regime
    desk: DeskWeek = field(default_factory=DeskWeek)
    report_hours: int = 24


@dataclass(frozen=True)
class Bulletin:
    subject: str
    markdown: str        # also the plain-text body of the email
    html: str


@dataclass
class BulletinOutcome:
    key: str
    week: IsoWeek
    subject: str = ""
    paths: list[Path] = field(default_factory=list)
    recipients: list[str] = field(default_factory=list)
    silent: list[str] = field(default_factory=list)   # units that reported nothing
    queued: bool = False
    existing: str | None = None
    delivery: DeliveryReport = field(default_factory=DeliveryReport)
    units_sent: list[str] = field(default_factory=list)  # units that got their own copy
    data: BulletinData | None = None


def bulletin_key(week: IsoWeek) -> str:
    return f"bulletin:{week.label}"


def unit_key(week: IsoWeek, unit: str) -> str:
    return f"bulletin:{week.label}:{unit}"


# --- gather (reads the store) ----------------------------------------------------------------
#
# Every statement runs through a ``reads.Reader``: the normal path's session, or the lean
# start's DB-API connection (``lean.py``), so both read alike. The database counts and
# groups; Python sees one row per unit, per kind of report or per story published in the
# week, never a campaign month of rows as objects (issue 13: 100,000 drafts under 1 s).

def gather_bulletin(session: Session, settings: Settings, week: IsoWeek,
                    now: datetime | None = None) -> BulletinData:
    """Every unit's figures for ``week`` and its campaign progress up to the week's end."""
    return gather(SessionReader(session), settings, week, now)


def gather(reader: Reader, settings: Settings, week: IsoWeek, now: datetime | None = None
           ) -> BulletinData:
    """``gather_bulletin`` on any reader (the lean start of ``pipeline bulletin``)."""
    start = datetime.combine(week.monday, time(0), settings.tz)
    end = start + timedelta(days=7)
    at = min(now, end) if now is not None else end
    window = _window(reader, start, end)
    everyone = unit_rows(reader)
    names = {u.id: u.name for u in everyone}
    hours = settings.deadline.report_hours
    figures = _unit_figures(reader, window, hours)
    submitted, coverage = _reports(reader, settings, window)
    activities, until = _activities(reader, settings, end, names)
    items = settings.campaign.items if settings.campaign else ()
    # Each unit's activities grouped once (not a scan per unit).
    activities_of: dict[str, list[Activity]] = {}
    for activity in activities:
        activities_of.setdefault(activity.unit, []).append(activity)
    reach = _reach(reader, window)
    unit_weeks = []
    for u in tree_order(everyone):
        level = Level(u.level)
        mine = figures.get(u.id, _NONE)
        measured, reads = reach.get(u.id, (0, 0))
        levels: Mapping[str, int] = coverage.get(u.id, {})
        unit_progress = progress(items, u.name, level, activities_of.get(u.name, []))
        unit_weeks.append(UnitWeek(
            u.name, level, names.get(u.parent_id) if u.parent_id else None,
            submitted.get(u.id, 0), mine.published, mine.late, mine.missed,
            done=_per_type(unit_progress), measured=measured, reads=reads,
            coverage={k: levels.get(k, 0) for k in COVERAGE_LEVELS},
            progress=unit_progress, late_unit=mine.late_unit, late_desk=mine.late_desk,
            missed_desk=mine.missed_desk, email=u.email))
    campaign = settings.campaign
    desk = DeskWeek(_desk_stages(reader, window), sum(f.late_desk for f in figures.values()),
                    sum(u.missed_desk for u in unit_weeks))
    return BulletinData(week, tuple(unit_weeks), campaign.targets if campaign else {},
                        {k: t.label for k, t in settings.activity_types.items()},
                        campaign.name if campaign else None, until,
                        tuple(read_days(reader, settings, week.monday, week.sunday, at)),
                        desk, hours)


def _window(reader: Reader, start: datetime, end: datetime) -> dict[str, Any]:
    """The week's bounds as the columns hold times, and the values the statements name."""
    return {"start": stored_time(reader.dialect, start), "end": stored_time(reader.dialect, end),
            "roundup": ROUNDUP, "rejected": str(DraftStatus.REJECTED), "yes": True}


def _per_type(progresses: Sequence[Progress]) -> dict[str, int]:
    return {p.item.types[0]: p.done for p in progresses if len(p.item.types) == 1}


# The week's conditions on a draft (``d``) and its report (``s``). The daily round-up is
# the account's own article, not a unit's report: never counted.
_PUBLISHED_AT, _DEADLINE = time_operand("d.published_at"), time_operand("d.deadline")
_RECEIVED_AT, _START_AT = time_operand("s.received_at"), time_operand("s.start_at")
_OUT = f"{_PUBLISHED_AT} >= :start AND {_PUBLISHED_AT} < :end"
_RECEIVED = f"{_RECEIVED_AT} >= :start AND {_RECEIVED_AT} < :end"
# The deadline passed during the week and the story was still not out at its end.
_MISSED = (f"{_DEADLINE} > :start AND {_DEADLINE} <= :end AND d.status <> :rejected AND "
           f"(d.published_at IS NULL OR {_PUBLISHED_AT} > :end)")


def _reported_late(dialect: str, hours: int) -> str:
    """SQL: the unit reported more than ``hours`` after its activity ended
    (``campaign.unit_late``), exact to the microsecond on both databases. SQLite holds
    times as text ("2026-06-15 08:30:00.000000"): the end moved by whole hours keeps its
    fraction of a second, and text compares as time does."""
    if dialect == "sqlite":
        return (f"{_RECEIVED_AT} > strftime('%Y-%m-%d %H:%M:%S', s.end_at, "
                f"'+{int(hours)} hours') || substr(s.end_at, 20)")
    return f"s.received_at > s.end_at + INTERVAL '{int(hours)} hours'"


def _unit_figures_sql(dialect: str, hours: int) -> str:
    """Per unit, in one pass over the week's drafts: published, of them late, missed;
    and whose delay it was (``campaign.unit_late`` / ``desk_late``, judged by the
    database). "+d.unit_id" (the same value) keeps SQLite from grouping by walking the
    unit_id index, which looks every row up by itself: 5x slower than a scan."""
    late = _reported_late(dialect, hours)
    story = "d.status <> :rejected"        # a story the delay split looks at
    sums = [_OUT, f"{_OUT} AND d.late = :yes", _MISSED,
            f"{story} AND {_RECEIVED} AND {late}",
            f"{story} AND {_OUT} AND d.published_at > d.deadline AND NOT ({late})",
            f"{_MISSED} AND NOT ({late})"]
    return ("SELECT +d.unit_id, " + ", ".join(f"SUM(CASE WHEN {c} THEN 1 ELSE 0 END)"
                                               for c in sums) +
            " FROM draft d JOIN submission s ON s.id = +d.submission_id WHERE "
            f"d.activity_type <> :roundup AND (({_OUT}) OR ({_MISSED}) OR ({_RECEIVED})) "
            "GROUP BY 1")


class _Figures(NamedTuple):
    published: int = 0
    late: int = 0
    missed: int = 0
    late_unit: int = 0          # reported after deadline.report_hours
    late_desk: int = 0          # late although the unit reported in time
    missed_desk: int = 0        # missed although the unit reported in time


_NONE = _Figures()


def _unit_figures(reader: Reader, window: Mapping[str, Any], hours: int
                  ) -> dict[int, _Figures]:
    return {int(unit_id): _Figures(*(int(n or 0) for n in counts)) for unit_id, *counts
            in reader.rows(_unit_figures_sql(reader.dialect, hours), window)}


# The week's reports per unit: how many (round-ups aside) and the coverage items they
# carried, each distinct list of items once (most reports name none).
REPORTS = ("SELECT +s.unit_id, CASE WHEN s.links IN ('', '[]') THEN '' ELSE s.links END, "
           "CASE WHEN s.activity_type <> :roundup THEN 1 ELSE 0 END, COUNT(*) FROM "
           f"submission s WHERE {_RECEIVED} GROUP BY 1, 2, 3")
OUTLETS = "SELECT outlet, level, name FROM mediaoutlet ORDER BY id"


def _reports(reader: Reader, settings: Settings, window: Mapping[str, Any]
             ) -> tuple[dict[int, int], dict[int, Counter[str]]]:
    """Per unit id: reports received in the week, and their coverage items by level."""
    rows = reader.rows(REPORTS, window)
    submitted: dict[int, int] = {}
    coverage: dict[int, Counter[str]] = {}
    media = with_classified(settings.media.outlets, reader.rows(OUTLETS, {})) \
        if any(links for _, links, _, _ in rows) else None
    for unit_id, links, counted, n in rows:
        if counted:
            submitted[int(unit_id)] = submitted.get(int(unit_id), 0) + int(n)
        for found in classify_report(media, links) if media and links else ():
            if found.level:
                coverage.setdefault(int(unit_id), Counter())[found.level] += int(n)
    return submitted, coverage


# Reports that differ in nothing a plan item looks at come back as one row with their
# number: a campaign month is tens of thousands of reports but a few thousand kinds.
# The drafts drive the join ("+d.submission_id": each report found by its key, not the
# draft through an index).
ACTIVITIES = (
    "SELECT +s.unit_id, s.activity_type, s.form, s.partners, CASE WHEN "
    f"s.participants_unit = :households THEN s.participants END, CASE WHEN {_PUBLISHED_AT} "
    "< :end THEN 1 ELSE 0 END, COUNT(*) FROM draft d JOIN submission s ON s.id = "
    f"+d.submission_id WHERE {_START_AT} >= :start AND {_START_AT} < :stop "
    "AND d.status <> :rejected AND s.activity_type <> :roundup GROUP BY 1, 2, 3, 4, 5, 6")


def _activities(reader: Reader, settings: Settings, end: datetime, names: Mapping[int, str]
                ) -> tuple[list[Activity], date | None]:
    """Every report of the campaign up to the week's end (not rejected), by the activity's
    own date, and whether it was published by the week's end."""
    campaign = settings.campaign
    if campaign is None:
        return [], None
    start = datetime.combine(campaign.start, time(0), settings.tz)
    stop = min(end, datetime.combine(campaign.end + timedelta(days=1), time(0), settings.tz))
    rows = reader.rows(ACTIVITIES, {
        "start": stored_time(reader.dialect, start), "stop": stored_time(reader.dialect, stop),
        "end": stored_time(reader.dialect, end), "households": "户",
        "rejected": str(DraftStatus.REJECTED), "roundup": ROUNDUP})
    result = [Activity(names.get(unit_id, ""), kind, form,
                       0 if partners in ("", "[]") else len(_json_list(partners)),
                       households, bool(out), int(n))
              for unit_id, kind, form, partners, households, out, n in rows]
    return result, (stop - timedelta(days=1)).date() if stop > start else None


def _json_list(text: str) -> list[Any]:
    try:
        value = json.loads(text or "[]")
    except ValueError:
        return []
    return value if isinstance(value, list) else []


# Each story's newest statistics day (WeChat's figures so far), summed per unit.
REACH = (
    "SELECT +d.unit_id, COUNT(*), SUM(a.reads) FROM draft d JOIN articlestat a ON "
    f"a.draft_id = d.id WHERE {_OUT} AND d.activity_type <> :roundup AND a.stat_date = "
    "(SELECT MAX(b.stat_date) FROM articlestat b WHERE b.draft_id = d.id) GROUP BY 1")


def _reach(reader: Reader, window: Mapping[str, Any]) -> dict[int, tuple[int, int]]:
    """Per unit id: the week's published stories with read figures, and their reads."""
    return {int(unit_id): (int(n), int(reads or 0))
            for unit_id, n, reads in reader.rows(REACH, window)}


# The week's published stories (when their reports came in), and the sign-offs of their
# review stages: the only rows read one by one, since a stage's time is arithmetic on
# times (not portable SQL) and stories differ in it.
PUBLISHED = (
    "SELECT d.id, s.received_at, d.published_at FROM draft d JOIN submission s ON "
    f"s.id = d.submission_id WHERE {_OUT} AND d.activity_type <> :roundup AND "
    "d.status <> :rejected ORDER BY d.id")
SIGNOFFS = (
    "SELECT so.draft_id, so.round, so.stage_name, so.at FROM signoff so "
    f"JOIN draft d ON d.id = so.draft_id WHERE {_OUT} AND d.activity_type <> :roundup "
    "AND d.status <> :rejected")
PUSH_WAIT = "待推送"


def _desk_stages(reader: Reader, window: Mapping[str, Any]
                 ) -> tuple[tuple[str, int, float], ...]:
    """How long each review stage held the week's published stories, then the wait for
    the push (``campaign.desk_stages``): stage, stories, average hours."""
    signed = _final_signoffs(reader, window)
    spans: dict[str, list[float]] = {}     # the stages in the order they first appear
    waits: list[float] = []                # then the wait for the push
    for draft_id, received, published in reader.rows(PUBLISHED, window):
        since = _naive(received)
        for stage, at in sorted(signed.get(draft_id, ()), key=lambda s: s[1]):
            spans.setdefault(stage, []).append(max(0.0, (at - since).total_seconds() / 3600))
            since = at
        waits.append(max(0.0, (_naive(published) - since).total_seconds() / 3600))
    if waits:
        spans[PUSH_WAIT] = waits
    return tuple((k, len(hours), math.fsum(hours) / len(hours)) for k, hours in spans.items())


def _final_signoffs(reader: Reader, window: Mapping[str, Any]
                    ) -> dict[int, list[tuple[str, datetime]]]:
    """Per story published in the week: the sign-offs of its last review round."""
    rounds: dict[int, dict[int, list[tuple[str, datetime]]]] = {}
    for draft_id, signed_round, stage, at in reader.rows(SIGNOFFS, window):
        rounds.setdefault(draft_id, {}).setdefault(signed_round, []).append(
            (stage, _naive(at)))
    return {draft_id: by_round[max(by_round)] for draft_id, by_round in rounds.items()}


def _naive(value: Any) -> datetime:
    """A stored time as naive UTC (SQLite gives text, PostgreSQL a naive datetime):
    enough to subtract two of them."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


# --- compose (pure) ---------------------------------------------------------------------------

def score(unit: UnitWeek, targets: Mapping[str, Target], weights: ScoringSettings) -> float:
    """The ranking score; ``formula`` prints the same arithmetic for the readers. Only the
    unit's own delays count against it: a story late on the desk is the desk's."""
    return (targets_met(unit, targets) * weights.target_met + unit.published * weights.published
            + unit.late_unit * weights.late + unit.missed_unit * weights.missed
            + (unit.reads_per_story or 0) * weights.reads_per_story
            + sum(unit.coverage.get(k, 0) * float(getattr(weights, k))
                  for k in COVERAGE_LEVELS))


def targets_met(unit: UnitWeek, targets: Mapping[str, Target]) -> int:
    if unit.progress:
        return sum(1 for p in unit.progress if p.met)
    return sum(1 for kind, target in targets.items() if unit.done.get(kind, 0) >= target.low)


def targets_count(unit: UnitWeek, targets: Mapping[str, Target]) -> int:
    if unit.progress:
        return sum(1 for p in unit.progress if p.item.target is not None)
    return len(targets)


def formula(weights: ScoringSettings) -> str:
    return (f"得分 = 达标项数 × {_num(weights.target_met)} + 发布稿件数 × "
            f"{_num(weights.published)} + 单位迟报数 × {_num(weights.late)} + "
            f"单位原因超期未发数 × {_num(weights.missed)}" + _reach_terms(weights))


def _reach_terms(weights: ScoringSettings) -> str:
    """The reach terms, printed only when they weigh something (default: they do not, and
    reads per story is an informative column)."""
    terms = [(weights.reads_per_story, "篇均阅读"), (weights.national, "国家级媒体报道数"),
             (weights.provincial, "省级媒体报道数"), (weights.city, "市级媒体报道数")]
    return "".join(f" + {label} × {_num(w)}" for w, label in terms if w)


def _num(value: float) -> str:
    text = f"{value:g}"
    return f"({text})" if value < 0 else text


def compose_bulletin(data: BulletinData, settings: Settings, *, unit: str | None = None
                     ) -> Bulletin:
    """The bulletin's subject, Markdown (also the text body) and HTML; with ``unit``, that
    unit's own copy (its line highlighted, its gaps in one sentence at the top).

    Raises:
        NotifyError: when a bulletin template fails (names the template and line).
    """
    context = _context(data, settings, unit)
    folder = settings.paths.templates
    return Bulletin(context["subject"], render_template(folder, "bulletin.md.j2", context),
                    render_html(folder, "bulletin.html.j2", context))


def groups_of(data: BulletinData) -> list[tuple[str, Level, str | None, list[UnitWeek]]]:
    """Ranking groups: the district alone, streets, branches, then the communities of each
    street (label, level, parent, units)."""
    groups: list[tuple[str, Level, str | None, list[UnitWeek]]] = []
    for label, level in (("区级（区禁毒办、区禁毒协会）", Level.DISTRICT),
                         ("街道/镇", Level.STREET), ("行业分会", Level.BRANCH)):
        units = [u for u in data.units if u.level == level]
        if units:
            groups.append((label, level, None, units))
    for street in [u for u in data.units if u.level == Level.STREET]:
        units = [u for u in data.units if u.level == Level.COMMUNITY and u.parent == street.name]
        if units:
            groups.append((f"社区/村（{street.name}）", Level.COMMUNITY, street.name, units))
    return groups


def _context(data: BulletinData, settings: Settings, highlight: str | None = None
             ) -> dict[str, Any]:
    week = data.week
    groups = [_group(label, level, parent, units, data, settings, highlight)
              for label, level, parent, units in groups_of(data)]
    silent = [{"label": g["label"], "names": [r["name"] for r in g["rows"] if not r["submitted"]]}
              for g in groups]
    own = next((u for u in data.units if u.name == highlight), None)
    title = (f"【{settings.account.name}】每周联合通报 {week.label}"
             f"（{_md(week.monday)}—{_md(week.sunday)}）")
    return {
        "account": settings.account.name,
        "subject": title + (f"·{highlight}" if own else ""),
        "week": week.label, "monday": week.monday.isoformat(),
        "sunday": week.sunday.isoformat(), "campaign": data.campaign,
        "progress_until": data.progress_until.isoformat() if data.progress_until else "",
        "groups": groups, "silent": [s for s in silent if s["names"]],
        "totals": _totals(data.units), "formula": formula(settings.scoring),
        "bar_px": BAR_PX, "reach_shown": any(u.measured or any(u.coverage.values())
                                             for u in data.units),
        "days": [_day(d) for d in data.days], "regime": _regime(data.days),
        "desk": _desk_context(data.desk), "report_hours": data.report_hours,
        "own": {"name": own.name, "gaps": gaps_sentence(own.progress)} if own else None,
    }


def _md(day: date) -> str:
    return f"{day.month}月{day.day}日"


def _day(d: DayRecord) -> dict[str, Any]:
    return {"date": d.day.isoformat(), "label": f"{_md(d.day)}（周{WEEKDAYS[d.day.weekday()]}）",
            "words": d.words(), "is_break": d.is_break, "partial": d.partial,
            "pushed": d.pushed, "articles": d.articles}


def _regime(days: Sequence[DayRecord]) -> dict[str, Any]:
    breaks = [d for d in days if d.is_break]
    return {"pushed": sum(1 for d in days if d.pushed), "breaks": len(breaks),
            "break_days": "、".join(_md(d.day) for d in breaks),
            "partial": sum(1 for d in days if d.partial)}


def _desk_context(desk: DeskWeek) -> dict[str, Any]:
    return {"stages": [{"stage": s, "count": n, "hours": f"{h:.1f}"} for s, n, h in desk.stages],
            "late": desk.late, "missed": desk.missed}


def _group(label: str, level: Level, parent: str | None, units: Sequence[UnitWeek],
           data: BulletinData, settings: Settings, highlight: str | None) -> dict[str, Any]:
    targets = data.targets.get(level, {})
    plan = list(settings.campaign.items) if settings.campaign else []
    items = sorted(dict.fromkeys(p.item for u in units for p in u.progress),
                   key=lambda i: plan.index(i) if i in plan else len(plan))
    rows = []
    for unit in units:
        by_item = {p.item: p for p in unit.progress}
        rows.append({**_figures(unit), "name": unit.name, "parent": unit.parent or "",
                     "score": score(unit, targets, settings.scoring),
                     "met": targets_met(unit, targets), "targets": targets_count(unit, targets),
                     "own": unit.name == highlight, "gaps": gaps_sentence(unit.progress),
                     "cells": [_cell(by_item.get(item)) for item in items]})
    return {"label": label, "level": level.value, "parent": parent, "rows": rows,
            "subtotal": _totals(units), "kinds": [i.label for i in items],
            "plan_items": [{"key": i.key, "label": i.label,
                       "target": f"{i.target}{i.unit_word}" if i.target else "不设数量"}
                      for i in items],
            "ranking": _ranking(rows)}


def _figures(unit: UnitWeek) -> dict[str, Any]:
    per_story = unit.reads_per_story
    return {"submitted": unit.submitted, "published": unit.published, "late": unit.late,
            "missed": unit.missed, "on_time_rate": _rate(unit.on_time, unit.published),
            "late_unit": unit.late_unit, "late_desk": unit.late_desk,
            "missed_unit": unit.missed_unit, "missed_desk": unit.missed_desk,
            "reads": unit.reads if unit.measured else "—",
            "reads_per_story": f"{per_story:.0f}" if per_story is not None else "—",
            "coverage": [unit.coverage.get(k, 0) for k in COVERAGE_LEVELS]}


def _totals(units: Sequence[UnitWeek]) -> dict[str, Any]:
    published = sum(u.published for u in units)
    late = sum(u.late for u in units)
    return {"submitted": sum(u.submitted for u in units), "published": published,
            "late": late, "missed": sum(u.missed for u in units),
            "late_unit": sum(u.late_unit for u in units),
            "late_desk": sum(u.late_desk for u in units),
            "on_time_rate": _rate(published - late, published),
            "silent": sum(1 for u in units if not u.submitted), "units": len(units)}


def _rate(part: int, whole: int) -> str:
    return f"{round(100 * part / whole)}%" if whole else "—"


def _cell(p: Progress | None) -> dict[str, Any]:
    """One done/target progress cell; the bar is full at the target's upper bound."""
    if p is None:
        return {"applies": False, "label": ""}
    target = p.item.target
    label = p.item.label
    if target is None:
        return {"applies": True, "label": label, "done": p.done, "reported": p.reported,
                "target": "—", "met": None, "fill": 0, "rest": BAR_PX, "colour": "#d1d5db",
                "text_bar": "", "text": f"{p.done}" + (f"（+{p.reported}）" if p.reported else "")}
    full = target.high if target.high is not None else target.low
    fraction = 1.0 if full == 0 else min(1.0, p.done / full)
    met = bool(p.met)
    fill = round(BAR_PX * fraction)
    colour = "#2e7d32" if met else ("#f59e0b" if p.done else "#d1d5db")
    bar = "■" * round(5 * fraction) + "□" * (5 - round(5 * fraction))
    return {"applies": True, "label": label, "done": p.done, "reported": p.reported,
            "target": str(target), "met": met, "over": p.over,
            "fill": fill, "rest": BAR_PX - fill, "colour": colour, "text_bar": bar,
            "text": f"{p.done}/{target} {bar}" + (f"（+{p.reported}）" if p.reported else "")}


def _ranking(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Highest score first; equal scores share a rank (1, 2, 2, 4)."""
    ordered = sorted(rows, key=lambda r: (-r["score"], r["name"]))
    ranked: list[dict[str, Any]] = []
    for i, row in enumerate(ordered):
        same = i and row["score"] == ordered[i - 1]["score"]
        rank = ranked[-1]["rank"] if same else i + 1
        ranked.append({"rank": rank, "name": row["name"], "score": f"{row['score']:g}",
                       "met": row["met"], "targets": row["targets"],
                       "published": row["published"], "late": row["late"],
                       "missed": row["missed"], "late_unit": row["late_unit"],
                       "late_desk": row["late_desk"], "missed_unit": row["missed_unit"],
                       "own": row["own"]})
    return ranked


def bulletin_json(data: BulletinData, settings: Settings) -> dict[str, Any]:
    """The bulletin as data (``pipeline bulletin --json``)."""
    groups = []
    for _, level, parent, units in groups_of(data):
        targets = data.targets.get(level, {})
        rows = [{"unit": u.name, "score": score(u, targets, settings.scoring),
                 "reported": u.submitted, "published": u.published, "late_unit": u.late_unit,
                 "late_desk": u.late_desk, "missed": u.missed, "missed_desk": u.missed_desk,
                 "targets": [_target_json(p) for p in u.progress]} for u in units]
        ranks = {r["name"]: r["rank"] for r in _ranking(
            [{"name": r["unit"], "score": r["score"], "met": 0, "targets": 0, "published": 0,
              "late": 0, "missed": 0, "late_unit": 0, "late_desk": 0, "missed_unit": 0,
              "own": False} for r in rows])}
        groups.append({"level": level.value, "parent": parent,
                       "units": [{**r, "rank": ranks[r["unit"]]} for r in rows]})
    district = next((u for u in data.units if u.level == Level.DISTRICT), None)
    return {
        "week": data.week.label, "campaign": data.campaign, "groups": groups,
        "days": [{"date": d.day.isoformat(), "pushed": d.pushed, "articles": d.articles,
                  "break": d.is_break, "partial": d.partial, "due": d.due,
                  "due_missed": d.due_missed} for d in data.days],
        "district": {
            "unit": district.name if district else None,
            "targets": [_target_json(p) for p in district.progress] if district else [],
            "breaks": sum(1 for d in data.days if d.is_break),
            "partial_days": sum(1 for d in data.days if d.partial),
            "desk": {"stages": [{"stage": s, "stories": n, "hours": round(h, 1)}
                                for s, n, h in data.desk.stages],
                     "late": data.desk.late, "missed": data.desk.missed}},
        "formula": formula(settings.scoring),
    }


def _target_json(p: Progress) -> dict[str, Any]:
    return {"item": p.item.label, "key": p.item.key,
            "target": str(p.item.target) if p.item.target else None, "done": p.done,
            "reported": p.reported, "met": p.met, "unit": p.item.unit_word}


# --- write and send ---------------------------------------------------------------------------

def write_bulletin(settings: Settings, week: IsoWeek, bulletin: Bulletin,
                   workbook: bytes | None = None) -> list[Path]:
    """Write ``published/bulletins/<week>.html``, ``.md`` (and ``.xlsx``) through the
    guarded writer."""
    writer = GuardedWriter(settings.paths.published)
    paths = [writer.write_text(f"bulletins/{week.label}.html", bulletin.html),
             writer.write_text(f"bulletins/{week.label}.md", bulletin.markdown)]
    if workbook is not None:
        paths.append(writer.write_bytes(f"bulletins/{week.label}.xlsx", workbook))
    return paths


def send_bulletin(store: Store, settings: Settings, week: IsoWeek, now: datetime, *,
                  send: bool) -> BulletinOutcome:
    """Compose and write the bulletin; with ``send``, enqueue it once for the editors and
    leaders (the whole table) and once for each unit with an email (its own line
    highlighted, its gaps in one sentence), and deliver.

    A bulletin already in the outbox is left as it went out (nothing rewritten).

    Raises:
        NotifyError: a template error, or ``send`` without any recipient configured.
    """
    from .outbox import deliver, enqueue, find

    outcome = BulletinOutcome(bulletin_key(week), week, recipients=recipients(settings))
    if send and not outcome.recipients:
        raise NotifyError.coded("notify.no_recipients", what="bulletin")
    with store.session() as session:
        existing = find(session, outcome.key)
        if send and existing is not None:
            outcome.existing, outcome.subject = existing.state, existing.subject
            outcome.data = gather_bulletin(session, settings, week, now)
            return outcome
        bulletin = write_week(settings, outcome, gather_bulletin(session, settings, week, now))
        if send:
            outcome.queued = enqueue(session, outcome.key, "bulletin", outcome.recipients,
                                     bulletin.subject, bulletin.markdown, bulletin.html, now)
            assert outcome.data is not None  # (written just now)
            outcome.units_sent = _enqueue_units(session, settings, outcome.data, now)
    if send:
        outcome.delivery = deliver(store, settings, now)
    return outcome


def write_week(settings: Settings, outcome: BulletinOutcome, data: BulletinData
               ) -> Bulletin:
    """Compose the week's bulletin from ``data`` and write its files (no database: the
    lean start of ``pipeline bulletin`` does this too); ``outcome`` records it."""
    from .workbook import bulletin_xlsx  # openpyxl: only when a workbook is written

    outcome.data = data
    bulletin = compose_bulletin(data, settings)
    outcome.subject = bulletin.subject
    outcome.silent = [u.name for u in data.units if not u.submitted]
    outcome.paths = write_bulletin(settings, outcome.week, bulletin,
                                   bulletin_xlsx(data, settings))
    return bulletin


def _enqueue_units(session: Session, settings: Settings, data: BulletinData,
                   now: datetime) -> list[str]:
    """Each unit with an email gets its own copy, once per week (its own outbox key)."""
    from .outbox import enqueue

    sent = []
    for unit in data.units:
        if not unit.email:
            continue
        own = compose_bulletin(data, settings, unit=unit.name)
        if enqueue(session, unit_key(data.week, unit.name), "bulletin", [unit.email],
                   own.subject, own.markdown, own.html, now):
            sent.append(unit.name)
    return sent


def bulletin_due(store: Store, settings: Settings, now: datetime) -> bool:
    """Scheduler hook: send last week's bulletin once its weekday and time have come. Safe
    on every tick and in two processes at once. True when it was queued now.

    Raises:
        NotifyError: when the bulletin template fails.
    """
    today = now.astimezone(settings.tz).date()
    week = IsoWeek.of(today).previous()
    due_day = week.monday + timedelta(days=7 + settings.notify.bulletin_weekday)
    due = datetime.combine(due_day, settings.notify.bulletin_time, settings.tz)
    from .digest import owed

    if not owed(store, settings, now, due, bulletin_key(week)):
        return False
    return send_bulletin(store, settings, week, now, send=True).queued
