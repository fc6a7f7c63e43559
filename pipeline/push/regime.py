"""The daily regime (日报制): warn before an empty push, record a day that ended without a
push as a break (断更), and say per day what went out against what was due.

A push that finds nothing approved leaves its day open (EMPTY) until the day ends, so a
story approved later can still go out that day; the first tick of the next day moves
the row to MISSED with a note ("lapse"), which is the recorded break.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from .. import lifecycle
from ..alerts import record_alert
from ..config import Settings
from ..deadlines import push_time_on
from ..domain import DraftStatus
from ..models import Draft, Publication, Push
from ..review import holders
from ..store import Store
from .plan import EMPTY, local_date, plan, push_row

BREAK_NOTE = "nothing was approved for the day's push: the daily regime broke (断更)"
TITLES_SHOWN = 3


@dataclass(frozen=True)
class DayRecord:
    """One day of the regime: its push, and the stories whose last day it was."""

    day: date
    state: str | None          # the push row's state (None: no row)
    articles: int              # stories that went out in the day's push
    due: int                   # stories whose deadline was the end of this day
    due_missed: int            # of them, still not out when the day ended
    ended: bool                # the day is over

    @property
    def pushed(self) -> bool:
        return self.articles > 0 and lifecycle.push_went_out(self.state)

    @property
    def is_break(self) -> bool:
        return self.ended and not self.pushed

    @property
    def partial(self) -> bool:
        return self.ended and self.pushed and self.due_missed > 0

    def words(self) -> str:
        """The day in one phrase (Chinese), for the calendar, digest and bulletin."""
        if self.is_break:
            return "未推送（断更）"
        if not self.ended and not self.pushed:
            return "尚未推送"
        text = f"已推送{self.articles}条"
        if self.partial:
            text += f"（部分推送：当日到期{self.due}条中{self.due_missed}条未推送）"
        return text


def day_records(session: Session, settings: Settings, first: date, last: date,
                now: datetime) -> list[DayRecord]:
    """Every day from ``first`` to ``last``, in four queries."""
    tz = settings.tz
    start = datetime.combine(first, time(0), tz)
    stop = datetime.combine(last + timedelta(days=1), time(0), tz)
    rows = {p.local_date: p for p in session.exec(
        select(Push).where(Push.account == settings.account.key,
                           col(Push.local_date) >= first, col(Push.local_date) <= last))}
    counts = dict(session.exec(
        select(Publication.push_id, sa.func.count())
        .where(col(Publication.push_id).in_([p.id for p in rows.values()]),
               Publication.state == lifecycle.PUB.PUBLISHED)
        .group_by(col(Publication.push_id))).all()) if rows else {}
    due: dict[date, list[datetime | None]] = {}
    for deadline, published_at in session.exec(
            select(Draft.deadline, Draft.published_at)
            .where(col(Draft.deadline) > start, col(Draft.deadline) <= stop,
                   col(Draft.status) != DraftStatus.REJECTED)):
        # a deadline is midnight at the end of the last day allowed
        due.setdefault(local_date(deadline - timedelta(seconds=1), settings), []).append(
            published_at if published_at is None or published_at <= deadline else None)
    today = local_date(now, settings)
    records = []
    for i in range((last - first).days + 1):
        day = first + timedelta(days=i)
        row = rows.get(day)
        owed = due.get(day, [])
        records.append(DayRecord(day, row.state if row else None,
                                 int(counts.get(row.id or 0, 0)) if row else 0, len(owed),
                                 sum(1 for p in owed if p is None), day < today))
    return records


def close_empty_days(session: Session, settings: Settings, now: datetime) -> list[date]:
    """Record every earlier day whose push found nothing and stayed empty as a break."""
    today = local_date(now, settings)
    rows = list(session.exec(select(Push).where(Push.account == settings.account.key,
                                                Push.state == EMPTY,
                                                col(Push.local_date) < today)))
    closed = []
    for row in rows:
        if lifecycle.try_move(session, lifecycle.PUSH, row, "lapse", actor="scheduler",
                              now=now, note=BREAK_NOTE, values={"note": BREAK_NOTE}):
            closed.append(row.local_date)
    return closed


def warn_if_empty(store: Store, settings: Settings, now: datetime) -> bool:
    """Within ``schedule.empty_warning`` before push time, with nothing approved for the
    day's push, alert the editors once (naming what waits at which review stage).
    True when the alert was recorded now."""
    minutes = settings.schedule.empty_warning_minutes
    day = local_date(now, settings)
    at = push_time_on(day, settings)
    if not minutes or not at - timedelta(minutes=minutes) <= now < at:
        return False
    with store.session() as session:
        row = push_row(session, settings, day)
        if row is not None and lifecycle.push_taken(row.state):
            return False
        chosen, _ = plan(session, settings, at)
        if chosen:
            return False
        detail, holders_ = empty_detail(session, settings, at)
        return record_alert(session, f"push_empty:{day}", "push_empty", now,
                            recipients=[*settings.notify.editors, *holders_], detail=detail)


def empty_detail(session: Session, settings: Settings, at: datetime
                 ) -> tuple[str, list[str]]:
    """What waits, stage by stage, in one Chinese paragraph; and the addresses of the
    people holding those stages (they are told too)."""
    waiting = list(session.exec(
        select(Draft).where(col(Draft.status).in_([DraftStatus.DRAFTED,
                                                    DraftStatus.CHANGES_REQUESTED]))
        .order_by(col(Draft.deadline), col(Draft.id))))
    head = f"今日{at.astimezone(settings.tz):%H:%M}推送前还没有已通过终审的稿件；"
    if not waiting:
        return head + "目前也没有待审稿件，今日将断更。", []
    stages = holders(session, settings)
    parts: list[str] = []
    emails: list[str] = []
    for i, held in enumerate(stages):
        drafts = [d for d in waiting if d.status == DraftStatus.DRAFTED
                  and min(d.review_stage, len(stages) - 1) == i]
        if drafts:
            parts.append(f"待{held.stage}（{'、'.join(held.names) or '任一编辑'}）"
                         f"{len(drafts)}篇：{_titles(drafts)}")
            emails.extend(held.emails)
    back = [d for d in waiting if d.status == DraftStatus.CHANGES_REQUESTED]
    if back:
        parts.append(f"退回修改中{len(back)}篇：{_titles(back)}")
    return (head + "；".join(parts) + "。请在推送前完成审核，或之后用“立即推送”补发。",
            emails)


def _titles(drafts: Sequence[Draft]) -> str:
    shown = "、".join(f"《{d.title}》" for d in drafts[:TITLES_SHOWN])
    return shown + ("等" if len(drafts) > TITLES_SHOWN else "")
