"""The daily digest for editors and leaders: yesterday's push, today's plan, the queue.

``gather_digest`` reads the store into a plain ``DigestData``;
``compose_digest`` turns that into (subject, text, html) without touching
anything else; ``send_digest`` enqueues it once per day (outbox key
``digest:<date>``) and delivers the outbox.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from .. import lifecycle, views
from ..config import Settings
from ..deadlines import deadline_text, duration_text, push_time_on
from ..domain import DeadlineState, Level
from ..drafts import ARTICLE_HTML
from ..errors import NotifyError
from ..models import Alert, Draft, Publication, Push, Submission, Unit
from ..push import PackedArticle, plan
from ..push.regime import DayRecord, day_records
from ..reach.stats import DigestReach, digest_context, gather_digest_reach
from ..review import holders
from ..store import Store
from .alerts import KINDS, NO_ADDRESS, NO_EDITORS, STATUS_LABELS, target_unit
from .outbox import DeliveryReport, deliver, enqueue, find
from .reports import WEEKDAYS as WEEKDAYS  # (with the plain data: no database library)
from .reports import recipients as recipients
from .templates import render_html, render_template

PUSH_STATES = {"done": "已推送", "missed": "未推送（服务未运行）", "empty": "无稿件",
               "running": "推送中"}


@dataclass(frozen=True)
class Story:
    id: int
    title: str
    unit: str
    deadline: datetime
    late: bool = False
    position: int = 0
    path: str = ""            # published/<date>/<nn-id>/ for stories already out


@dataclass(frozen=True)
class Waiting:
    id: int
    title: str
    unit: str
    status: str
    state: DeadlineState
    deadline: datetime
    hours_left: float
    stage: str | None = None  # the review stage it waits at


@dataclass(frozen=True)
class StageWaiting:
    """Drafts waiting at one review stage, and who may sign it."""

    stage: str
    holders: tuple[str, ...]
    count: int
    overdue: int


@dataclass(frozen=True)
class NewReports:
    unit: str
    level: Level
    count: int


@dataclass(frozen=True)
class Unaddressed:
    kind: str
    title: str
    unit: str
    reason: str


@dataclass(frozen=True)
class DigestData:
    day: date
    at: datetime
    yesterday_state: str | None
    pushed: tuple[Story, ...]
    today_done: bool
    planned: tuple[Story, ...]
    left_over: tuple[Story, ...]
    waiting: tuple[Waiting, ...]
    new_reports: tuple[NewReports, ...]
    unaddressed: tuple[Unaddressed, ...] = ()
    units_without_email: tuple[str, ...] = ()
    stages: tuple[StageWaiting, ...] = ()
    yesterday_record: DayRecord | None = None    # the regime: a break, a partial day
    reach: DigestReach | None = None     # read figures (WeChat modes only)


@dataclass
class DigestOutcome:
    key: str
    subject: str
    text: str
    html: str
    recipients: list[str]
    queued: bool = False                 # enqueued by this call
    existing: str | None = None          # the outbox state when it was queued before
    delivery: DeliveryReport = field(default_factory=DeliveryReport)


def digest_key(day: date) -> str:
    return f"digest:{day.isoformat()}"


def _local_midnight(day: date, settings: Settings) -> datetime:
    return datetime.combine(day, time(0), settings.tz)


# --- gather (reads the store) ----------------------------------------------------------------

def gather_digest(session: Session, settings: Settings, day: date,
                  now: datetime | None = None) -> DigestData:
    """Everything the digest for ``day`` shows, as of ``now`` (default: digest time)."""
    at = now or datetime.combine(day, settings.notify.digest_time, settings.tz)
    yesterday = _push_row(session, settings, day - timedelta(days=1))
    today = _push_row(session, settings, day)
    today_done = today is not None and lifecycle.push_went_out(today.state)
    planned: Sequence[Story] = ()
    left: Sequence[Story] = ()
    if today_done and today is not None:
        planned = _published(session, today)
    else:
        chosen, rest = plan(session, settings, push_time_on(day, settings))
        planned, left = _packed(chosen), _packed(rest)
    unaddressed, no_email = _unaddressed(session, settings, day)
    waiting = _waiting(session, settings, at)
    pushed = _published(session, yesterday) if yesterday else ()
    reach = gather_digest_reach(session, settings, day, [s.id for s in pushed]) \
        if settings.wechat.enabled else None
    return DigestData(
        day=day, at=at, yesterday_state=yesterday.state if yesterday else None,
        pushed=pushed, today_done=today_done,
        planned=tuple(planned), left_over=tuple(left), waiting=waiting,
        stages=_stages(session, settings, waiting),
        new_reports=_new_reports(session, settings, day), unaddressed=unaddressed,
        units_without_email=no_email, reach=reach,
        yesterday_record=day_records(session, settings, day - timedelta(days=1),
                                     day - timedelta(days=1), at)[0])


def _push_row(session: Session, settings: Settings, day: date) -> Push | None:
    return session.exec(select(Push).where(Push.account == settings.account.key,
                                           Push.local_date == day, Push.slot == 1)).first()


def _published(session: Session, push: Push) -> tuple[Story, ...]:
    rows = session.exec(
        select(Publication, Draft, Unit.name)
        .join(Draft, col(Draft.id) == Publication.draft_id)
        .join(Unit, col(Unit.id) == Draft.unit_id)
        .where(Publication.push_id == push.id, Publication.state == "published")
        .order_by(col(Publication.position))).all()
    return tuple(Story(d.id or 0, d.title, name, d.deadline, p.late, p.position,
                       p.output_path or "") for p, d, name in rows)


def _packed(items: Sequence[PackedArticle]) -> list[Story]:
    return [Story(a.candidate.id, a.candidate.title, a.candidate.unit, a.candidate.deadline,
                  a.late, a.position) for a in items]


def _waiting(session: Session, settings: Settings, at: datetime) -> tuple[Waiting, ...]:
    rows, _ = views.queue(session, settings, at, include_all=True, limit=0)
    return tuple(Waiting(r["id"], r["title"], r["unit"], r["status"],
                         DeadlineState(r["deadline_state"]),
                         datetime.fromisoformat(r["deadline"]), r["hours_left"], r["stage"])
                 for r in rows)


def _stages(session: Session, settings: Settings, waiting: Sequence[Waiting]
            ) -> tuple[StageWaiting, ...]:
    """Per review stage, in order: how many drafts wait there and who may sign them."""
    return tuple(
        StageWaiting(h.stage, h.names, sum(1 for w in waiting if w.stage == h.stage),
                     sum(1 for w in waiting if w.stage == h.stage
                         and w.state == DeadlineState.OVERDUE))
        for h in holders(session, settings))


def _new_reports(session: Session, settings: Settings, day: date) -> tuple[NewReports, ...]:
    """Reports received yesterday (local day), per unit."""
    start = _local_midnight(day - timedelta(days=1), settings)
    rows = session.exec(
        select(Unit.name, Unit.level, sa.func.count())
        .join(Submission, col(Submission.unit_id) == Unit.id)
        .where(col(Submission.received_at) >= start,
               col(Submission.received_at) < start + timedelta(days=1))
        .group_by(Unit.name, Unit.level)).all()
    return tuple(NewReports(name, Level(level), int(n)) for name, level, n in rows)


def _unaddressed(session: Session, settings: Settings, day: date
                 ) -> tuple[tuple[Unaddressed, ...], tuple[str, ...]]:
    """Alerts handed out since the previous digest time that reached no one they were meant
    for; each is reported in exactly one digest (the window is fixed by digest_time)."""
    end = datetime.combine(day, settings.notify.digest_time, settings.tz)
    alerts = list(session.exec(select(Alert).where(
        col(Alert.sent_at) >= end - timedelta(days=1), col(Alert.sent_at) < end)
        .order_by(col(Alert.id))))
    units: dict[int | None, Unit] = {u.id: u for u in session.exec(select(Unit))}
    ids = {a.draft_id for a in alerts if a.draft_id is not None}
    drafts = {d.id or 0: d for d in session.exec(select(Draft).where(col(Draft.id).in_(ids)))}
    found = []
    for alert in alerts:
        unit = target_unit(alert, drafts, units)
        draft = drafts.get(alert.draft_id or 0)
        title = draft.title if draft else alert.key
        label = KINDS.get(alert.kind, (alert.kind, ""))[0]
        if unit is not None and not unit.email:
            found.append(Unaddressed(label, title, unit.name, NO_ADDRESS))
        elif not json.loads(alert.recipients):
            found.append(Unaddressed(label, title, unit.name if unit else "", NO_EDITORS))
    no_email = tuple(u.name for u in units.values() if not u.email) if found else ()
    return tuple(found), no_email


# --- compose (pure) ---------------------------------------------------------------------------

def compose_digest(data: DigestData, settings: Settings, now: datetime
                   ) -> tuple[str, str, str]:
    """The digest's subject, plain text and HTML.

    Raises:
        NotifyError: when an email template fails (names the template and line).
    """
    context = _context(data, settings, now)
    folder = settings.paths.templates
    return (context["subject"], render_template(folder, "digest.txt.j2", context),
            render_html(folder, "digest.html.j2", context))


def _context(data: DigestData, settings: Settings, now: datetime) -> dict[str, Any]:
    tz, base = settings.tz, settings.notify.base_url
    overdue = [w for w in data.waiting if w.state == DeadlineState.OVERDUE]
    counts = [(s.label, sum(1 for w in data.waiting if w.state == s)) for s in
              (DeadlineState.OVERDUE, DeadlineState.DUE_SOON, DeadlineState.ON_TRACK)]
    day_text = f"{data.day.month}月{data.day.day}日（周{WEEKDAYS[data.day.weekday()]}）"
    subject = (f"【{settings.account.name}】每日简报 {data.day.month}月{data.day.day}日："
               f"昨日推送{len(data.pushed)}条，超期{len(overdue)}条")

    def story(s: Story) -> dict[str, Any]:
        return {"id": s.id, "title": s.title, "unit": s.unit, "late": s.late,
                "position": s.position, "link": f"{base}/drafts/{s.id}",
                # the published copy, under the folder channel's fixed name
                "path": f"published/{s.path}/{ARTICLE_HTML}" if s.path else "",
                "deadline": deadline_text(s.deadline, now, tz)}

    def waiting(w: Waiting) -> dict[str, Any]:
        return {**story(Story(w.id, w.title, w.unit, w.deadline)),
                "status": _status(w.status), "overdue": duration_text(w.deadline, now)}

    return {
        "account": settings.account.name, "subject": subject, "day": day_text,
        "generated": now.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
        "yesterday": _yesterday_text(data), "pushed": [story(s) for s in data.pushed],
        "today_done": data.today_done, "push_time": settings.schedule.push_time.strftime(
            "%H:%M"), "planned": [story(s) for s in data.planned],
        "left_over": [story(s) for s in data.left_over], "counts": counts,
        "waiting_total": len(data.waiting), "overdue": [waiting(w) for w in overdue],
        "new_reports": _reports_by_level(data.new_reports),
        "new_total": sum(r.count for r in data.new_reports),
        "unaddressed": data.unaddressed, "units_without_email": data.units_without_email,
        "base_url": base, **digest_context(data.reach),
        "stages": [{"stage": s.stage, "holders": "、".join(s.holders) or "任一编辑",
                    "count": s.count, "overdue": s.overdue} for s in data.stages],
    }


def _status(status: str) -> str:
    return STATUS_LABELS.get(status, status)


def _yesterday_text(data: DigestData) -> str:
    record = data.yesterday_record
    if record is not None and record.is_break:
        owed = f"，当日到期的{record.due_missed}条稿件未按期推送" if record.due_missed else ""
        return f"昨日未推送（断更）{owed}。"
    if data.yesterday_state is None:
        return "昨日没有推送记录。"
    state = PUSH_STATES.get(data.yesterday_state, data.yesterday_state)
    late = sum(1 for s in data.pushed if s.late)
    partial = (f"；部分推送：当日到期{record.due}条中{record.due_missed}条未推送"
               if record is not None and record.partial else "")
    return (f"昨日{state}，共{len(data.pushed)}条" + (f"，其中超期发布{late}条" if late else "")
            + partial + "。")


def _reports_by_level(reports: Sequence[NewReports]) -> list[dict[str, Any]]:
    groups = []
    for level in Level:
        units = sorted((r for r in reports if r.level == level), key=lambda r: (-r.count, r.unit))
        if units:
            groups.append({"label": level.label, "total": sum(r.count for r in units),
                           "units": [{"unit": r.unit, "count": r.count} for r in units]})
    return groups


# --- send (store + outbox) --------------------------------------------------------------------

def send_digest(store: Store, settings: Settings, day: date, now: datetime, *, send: bool
                ) -> DigestOutcome:
    """Compose the digest for ``day``; with ``send``, enqueue it once and deliver.

    Raises:
        NotifyError: a template error, or ``send`` without any recipient configured.
    """
    to = recipients(settings)
    if send and not to:
        raise NotifyError.coded("notify.no_recipients", what="digest")
    key = digest_key(day)
    with store.session() as session:
        data = gather_digest(session, settings, day, now)
        subject, text, html = compose_digest(data, settings, now)
        outcome = DigestOutcome(key, subject, text, html, to)
        existing = find(session, key)
        if existing is not None:
            outcome.existing = existing.state
        elif send:
            outcome.queued = enqueue(session, key, "digest", to, subject, text, html, now)
    if send:
        outcome.delivery = deliver(store, settings, now)
    return outcome


def digest_due(store: Store, settings: Settings, now: datetime) -> bool:
    """Scheduler hook: send today's digest once its time has passed. Safe on every tick and
    in two processes at once (the outbox key admits one). True when it was queued now.

    Raises:
        NotifyError: when the digest template fails.
    """
    day = now.astimezone(settings.tz).date()
    due = datetime.combine(day, settings.notify.digest_time, settings.tz)
    if not owed(store, settings, now, due, digest_key(day)):
        return False
    return send_digest(store, settings, day, now, send=True).queued


def owed(store: Store, settings: Settings, now: datetime, due: datetime, key: str) -> bool:
    """A scheduled email is owed when its time has come, someone receives it and the
    outbox does not hold it yet (the key admits one, across ticks and processes)."""
    if now < due or not recipients(settings):
        return False
    with store.session() as session:
        return find(session, key) is None
