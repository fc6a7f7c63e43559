"""The daily regime (日报制): warn before an empty push, record a day that ended without a
push as a break (断更), and say per day what went out against what was due.

A push that finds nothing approved leaves its day open (EMPTY) until the day ends, so a
story approved later can still go out that day; the first tick of the next day moves
the row to MISSED with a note ("lapse"), which is the recorded break.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from sqlmodel import Session, col, select

from .. import lifecycle
from ..alerts import record_alert
from ..config import Settings
from ..deadlines import push_time_on
from ..domain import DraftStatus
from ..models import Draft, Push
from ..reads import SessionReader
from ..review import holders
from ..store import Store
from .days import DayRecord as DayRecord  # (read without the tables; at home in days)
from .days import read_days
from .plan import EMPTY, local_date, plan, push_row

BREAK_NOTE = "nothing was approved for the day's push: the daily regime broke (断更)"
TITLES_SHOWN = 3


def day_records(session: Session, settings: Settings, first: date, last: date,
                now: datetime) -> list[DayRecord]:
    """Every day from ``first`` to ``last`` (``days.read_days`` through the session)."""
    return read_days(SessionReader(session), settings, first, last, now)


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
