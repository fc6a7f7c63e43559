"""The weekly joint bulletin (每周联合通报) for one ISO week, Monday to Sunday, local time.

Per unit, grouped by level: reports submitted, stories published, the on-time
rate, late and missed stories, campaign progress per activity type (done /
target with a bar made of table cells, which mail clients keep), the units
that reported nothing, and a ranking by a score whose formula is printed.

``gather_bulletin`` reads the store; ``compose_bulletin`` is pure;
``send_bulletin`` writes ``published/bulletins/<week>.html`` and ``.md`` and
enqueues the email once per week (outbox key ``bulletin:<week>``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from ..config import ScoringSettings, Settings, Target
from ..domain import DraftStatus, Level
from ..errors import NotifyError
from ..models import Draft, Submission
from ..reach.coverage import COVERAGE_LEVELS, coverage_by_unit
from ..reach.stats import gather_articles, unit_reach
from ..store import Store
from ..units import all_units, tree_order
from ..writer import GuardedWriter
from .digest import owed, recipients
from .outbox import DeliveryReport, deliver, enqueue, find
from .roundup import ROUNDUP
from .templates import render_html, render_template

GROUPS: tuple[tuple[str, tuple[Level, ...]], ...] = (
    ("区级", (Level.DISTRICT,)),
    ("街道/镇及行业分会", (Level.STREET, Level.BRANCH)),
    ("社区/村", (Level.COMMUNITY,)),
)
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


def parse_week(text: str) -> IsoWeek:
    """Parse "2026-W25" (also "2026W25", "2026-w25").

    Raises:
        ValueError: with a sentence, when the text is not an ISO week.
    """
    match = re.fullmatch(r"\s*(\d{4})-?[Ww](\d{1,2})\s*", text)
    if match is None:
        raise ValueError(f"{text!r} is not an ISO week like 2026-W25")
    year, week = int(match[1]), int(match[2])
    try:
        date.fromisocalendar(year, week, 1)
    except ValueError:
        raise ValueError(f"{text!r}: the year {year} has no ISO week {week}") from None
    return IsoWeek(year, week)


@dataclass(frozen=True)
class UnitWeek:
    name: str
    level: Level
    parent: str | None
    submitted: int = 0
    published: int = 0
    late: int = 0
    missed: int = 0
    done: Mapping[str, int] = field(default_factory=dict)   # campaign progress per type
    # reach (issue 12): WeChat reads of the week's published stories, coverage by level
    measured: int = 0                        # published stories with read figures
    reads: int = 0
    coverage: Mapping[str, int] = field(default_factory=dict)  # national/provincial/city

    @property
    def reads_per_story(self) -> float | None:
        return self.reads / self.measured if self.measured else None

    @property
    def on_time(self) -> int:
        return self.published - self.late


@dataclass(frozen=True)
class BulletinData:
    week: IsoWeek
    units: tuple[UnitWeek, ...]                       # tree order
    targets: Mapping[Level, Mapping[str, Target]]
    labels: Mapping[str, str]                         # activity type -> Chinese label
    campaign: str | None = None
    progress_until: date | None = None                # campaign progress counted up to here


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


def bulletin_key(week: IsoWeek) -> str:
    return f"bulletin:{week.label}"


# --- gather (reads the store) ----------------------------------------------------------------

def gather_bulletin(session: Session, settings: Settings, week: IsoWeek) -> BulletinData:
    """Every unit's figures for ``week`` and its campaign progress up to the week's end."""
    start = datetime.combine(week.monday, time(0), settings.tz)
    end = start + timedelta(days=7)
    # The daily round-up is the account's own article, not a unit's report: not counted.
    submitted = _counts(session, select(Submission.unit_id, sa.func.count())
                        .where(col(Submission.received_at) >= start,
                               col(Submission.received_at) < end,
                               col(Submission.activity_type) != ROUNDUP)
                        .group_by(col(Submission.unit_id)))
    reports = col(Draft.activity_type) != ROUNDUP
    published = _counts(session, select(Draft.unit_id, sa.func.count())
                        .where(col(Draft.published_at) >= start, col(Draft.published_at) < end,
                               reports)
                        .group_by(col(Draft.unit_id)))
    late = _counts(session, select(Draft.unit_id, sa.func.count())
                   .where(col(Draft.published_at) >= start, col(Draft.published_at) < end,
                          col(Draft.late).is_(True), reports).group_by(col(Draft.unit_id)))
    # Missed: the deadline passed during the week and the story was still not out at its end.
    missed = _counts(session, select(Draft.unit_id, sa.func.count())
                     .where(col(Draft.deadline) > start, col(Draft.deadline) <= end, reports,
                            col(Draft.status) != DraftStatus.REJECTED,
                            sa.or_(col(Draft.published_at).is_(None),
                                   col(Draft.published_at) > end))
                     .group_by(col(Draft.unit_id)))
    progress, until = _progress(session, settings, end)
    everyone = all_units(session)
    names = {u.id: u.name for u in everyone}
    units = [UnitWeek(u.name, Level(u.level), names.get(u.parent_id),
                      submitted.get(u.id or 0, 0), published.get(u.id or 0, 0),
                      late.get(u.id or 0, 0), missed.get(u.id or 0, 0),
                      progress.get(u.id or 0, {}))
             for u in tree_order(everyone)]
    units = _with_reach(session, settings, units, start, end)
    campaign = settings.campaign
    return BulletinData(week, tuple(units), campaign.targets if campaign else {},
                        {k: t.label for k, t in settings.activity_types.items()},
                        campaign.name if campaign else None, until)


def _with_reach(session: Session, settings: Settings, units: list[UnitWeek], start: datetime,
                end: datetime) -> list[UnitWeek]:
    """Add each unit's reads (stories published in the week, figures so far) and the
    coverage its reports of the week carried, counted by media level."""
    roundups = set(session.exec(select(Draft.id).where(
        col(Draft.activity_type) == ROUNDUP, col(Draft.published_at) >= start,
        col(Draft.published_at) < end)))  # one query, not one per story
    stories = [a for a in gather_articles(session, settings, since=start, until=end)
               if a.id not in roundups]
    reach = unit_reach(stories)
    coverage = coverage_by_unit(session, settings, start, end)
    ids = {u.name: u.id for u in all_units(session)}
    out = []
    for unit in units:
        r = reach.get(unit.name)
        levels: Mapping[str, int] = coverage.get(ids.get(unit.name) or 0, {})
        out.append(replace(unit, measured=r.measured if r else 0, reads=r.reads if r else 0,
                           coverage={k: levels.get(k, 0) for k in COVERAGE_LEVELS}))
    return out


def _counts(session: Session, query: Any) -> dict[int, int]:
    return {int(unit_id): int(n) for unit_id, n in session.exec(query).all()}


_AMOUNT = sa.case(
    (sa.and_(col(Submission.activity_type) == "hardship_visit",
             col(Submission.participants_unit) == "户",
             col(Submission.participants).is_not(None)), col(Submission.participants)),
    else_=1)


def _progress(session: Session, settings: Settings, end: datetime
              ) -> tuple[dict[int, dict[str, int]], date | None]:
    """Activities per unit and type from the campaign's start to the week's end (not
    rejected), counted by the activity's own date. Hardship visits count households
    (户, the plan's measure) where the report gives them, else one per visit."""
    campaign = settings.campaign
    if campaign is None:
        return {}, None
    start = datetime.combine(campaign.start, time(0), settings.tz)
    stop = min(end, datetime.combine(campaign.end + timedelta(days=1), time(0), settings.tz))
    rows = session.exec(
        select(Submission.unit_id, Submission.activity_type, sa.func.sum(_AMOUNT))
        .join(Draft, col(Draft.submission_id) == Submission.id)
        .where(col(Submission.start_at) >= start, col(Submission.start_at) < stop,
               col(Draft.status) != DraftStatus.REJECTED)
        .group_by(col(Submission.unit_id), col(Submission.activity_type))).all()
    result: dict[int, dict[str, int]] = {}
    for unit_id, kind, n in rows:
        result.setdefault(int(unit_id), {})[kind] = int(n)
    return result, (stop - timedelta(days=1)).date() if stop > start else None


# --- compose (pure) ---------------------------------------------------------------------------

def score(unit: UnitWeek, targets: Mapping[str, Target], weights: ScoringSettings) -> float:
    """The ranking score; ``formula`` prints the same arithmetic for the readers."""
    return (targets_met(unit, targets) * weights.target_met + unit.published * weights.published
            + unit.late * weights.late + unit.missed * weights.missed
            + (unit.reads_per_story or 0) * weights.reads_per_story
            + sum(unit.coverage.get(k, 0) * float(getattr(weights, k))
                  for k in COVERAGE_LEVELS))


def targets_met(unit: UnitWeek, targets: Mapping[str, Target]) -> int:
    return sum(1 for kind, target in targets.items() if unit.done.get(kind, 0) >= target.low)


def formula(weights: ScoringSettings) -> str:
    return (f"得分 = 达标项数 × {_num(weights.target_met)} + 发布稿件数 × "
            f"{_num(weights.published)} + 超期发布数 × {_num(weights.late)} + 超期未发数 × "
            f"{_num(weights.missed)}" + _reach_terms(weights))


def _reach_terms(weights: ScoringSettings) -> str:
    """The reach terms, printed only when they weigh something (default: they do not, and
    reads per story is an informative column)."""
    terms = [(weights.reads_per_story, "篇均阅读"), (weights.national, "国家级媒体报道数"),
             (weights.provincial, "省级媒体报道数"), (weights.city, "市级媒体报道数")]
    return "".join(f" + {label} × {_num(w)}" for w, label in terms if w)


def _num(value: float) -> str:
    text = f"{value:g}"
    return f"({text})" if value < 0 else text


def compose_bulletin(data: BulletinData, settings: Settings) -> Bulletin:
    """The bulletin's subject, Markdown (also the text body) and HTML.

    Raises:
        NotifyError: when a bulletin template fails (names the template and line).
    """
    context = _context(data, settings)
    folder = settings.paths.templates
    return Bulletin(context["subject"], render_template(folder, "bulletin.md.j2", context),
                    render_html(folder, "bulletin.html.j2", context))


def _context(data: BulletinData, settings: Settings) -> dict[str, Any]:
    week = data.week
    groups = [_group(label, levels, data, settings) for label, levels in GROUPS]
    groups = [g for g in groups if g["rows"]]
    silent = [{"label": g["label"], "names": [r["name"] for r in g["rows"] if not r["submitted"]]}
              for g in groups]
    return {
        "account": settings.account.name,
        "subject": f"【{settings.account.name}】每周联合通报 {week.label}"
                   f"（{_md(week.monday)}—{_md(week.sunday)}）",
        "week": week.label, "monday": week.monday.isoformat(),
        "sunday": week.sunday.isoformat(), "campaign": data.campaign,
        "progress_until": data.progress_until.isoformat() if data.progress_until else "",
        "groups": groups, "silent": [s for s in silent if s["names"]],
        "totals": _totals(data.units), "formula": formula(settings.scoring),
        "bar_px": BAR_PX, "reach_shown": any(u.measured or any(u.coverage.values())
                                             for u in data.units),
    }


def _md(day: date) -> str:
    return f"{day.month}月{day.day}日"


def _group(label: str, levels: Sequence[Level], data: BulletinData, settings: Settings
           ) -> dict[str, Any]:
    units = [u for u in data.units if u.level in levels]
    kinds = list(dict.fromkeys(k for level in levels for k in data.targets.get(level, {})))
    rows = []
    for unit in units:
        targets = data.targets.get(unit.level, {})
        rows.append({**_figures(unit), "name": unit.name, "parent": unit.parent or "",
                     "score": score(unit, targets, settings.scoring),
                     "met": targets_met(unit, targets), "targets": len(targets),
                     "cells": [_cell(data.labels.get(k, k), unit.done.get(k, 0), targets.get(k))
                               for k in kinds]})
    return {"label": label, "rows": rows, "subtotal": _totals(units),
            "kinds": [data.labels.get(k, k) for k in kinds], "ranking": _ranking(rows)}


def _figures(unit: UnitWeek) -> dict[str, Any]:
    per_story = unit.reads_per_story
    return {"submitted": unit.submitted, "published": unit.published, "late": unit.late,
            "missed": unit.missed, "on_time_rate": _rate(unit.on_time, unit.published),
            "reads": unit.reads if unit.measured else "—",
            "reads_per_story": f"{per_story:.0f}" if per_story is not None else "—",
            "coverage": [unit.coverage.get(k, 0) for k in COVERAGE_LEVELS]}


def _totals(units: Sequence[UnitWeek]) -> dict[str, Any]:
    published = sum(u.published for u in units)
    late = sum(u.late for u in units)
    return {"submitted": sum(u.submitted for u in units), "published": published,
            "late": late, "missed": sum(u.missed for u in units),
            "on_time_rate": _rate(published - late, published),
            "silent": sum(1 for u in units if not u.submitted), "units": len(units)}


def _rate(part: int, whole: int) -> str:
    return f"{round(100 * part / whole)}%" if whole else "—"


def _cell(label: str, done: int, target: Target | None) -> dict[str, Any]:
    """One done/target progress cell; the bar is full at the target's upper bound."""
    if target is None:
        return {"applies": False, "label": label}
    full = target.high if target.high is not None else target.low
    fraction = 1.0 if full == 0 else min(1.0, done / full)
    met = done >= target.low
    fill = round(BAR_PX * fraction)
    colour = "#2e7d32" if met else ("#f59e0b" if done else "#d1d5db")
    return {"applies": True, "label": label, "done": done, "target": str(target), "met": met,
            "fill": fill, "rest": BAR_PX - fill, "colour": colour,
            "text_bar": "■" * round(5 * fraction) + "□" * (5 - round(5 * fraction))}


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
                       "missed": row["missed"]})
    return ranked


# --- write and send ---------------------------------------------------------------------------

def write_bulletin(settings: Settings, week: IsoWeek, bulletin: Bulletin) -> list[Path]:
    """Write ``published/bulletins/<week>.html`` and ``.md`` through the guarded writer."""
    writer = GuardedWriter(settings.paths.published)
    return [writer.write_text(f"bulletins/{week.label}.html", bulletin.html),
            writer.write_text(f"bulletins/{week.label}.md", bulletin.markdown)]


def send_bulletin(store: Store, settings: Settings, week: IsoWeek, now: datetime, *,
                  send: bool) -> BulletinOutcome:
    """Compose and write the bulletin; with ``send``, enqueue it once and deliver.

    A bulletin already in the outbox is left as it went out (nothing rewritten).

    Raises:
        NotifyError: a template error, or ``send`` without any recipient configured.
    """
    outcome = BulletinOutcome(bulletin_key(week), week, recipients=recipients(settings))
    if send and not outcome.recipients:
        raise NotifyError("The bulletin has no recipients: list addresses in notify.editors "
                          "or notify.leaders in config.toml.")
    with store.session() as session:
        existing = find(session, outcome.key)
        if send and existing is not None:
            outcome.existing, outcome.subject = existing.state, existing.subject
            return outcome
        data = gather_bulletin(session, settings, week)
        bulletin = compose_bulletin(data, settings)
        outcome.subject = bulletin.subject
        outcome.silent = [u.name for u in data.units if not u.submitted]
        outcome.paths = write_bulletin(settings, week, bulletin)
        if send:
            outcome.queued = enqueue(session, outcome.key, "bulletin", outcome.recipients,
                                     bulletin.subject, bulletin.markdown, bulletin.html, now)
    if send:
        outcome.delivery = deliver(store, settings, now)
    return outcome


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
    if not owed(store, settings, now, due, bulletin_key(week)):
        return False
    return send_bulletin(store, settings, week, now, send=True).queued
