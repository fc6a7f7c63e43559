"""What a push would contain: approved stories packed earliest deadline first (pure),
and the small records every part of the push shares."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from ..config import Settings
from ..deadlines import next_push_after
from ..domain import DraftStatus
from ..lifecycle import PUSH_TAKEN, PushState
from ..models import Draft, Push, Unit

RUNNING, DONE, MISSED, EMPTY, FAILED = (PushState.RUNNING, PushState.DONE, PushState.MISSED,
                                        PushState.EMPTY, PushState.FAILED)
# A day in one of these has had its push (or has one under way): no second claim.
TAKEN = PUSH_TAKEN


@dataclass(frozen=True)
class Candidate:
    """An approved story waiting for a push (the pure packing input)."""

    id: int
    title: str
    unit: str
    activity_type: str
    deadline: datetime
    push_rank: int | None = None


@dataclass(frozen=True)
class PackedArticle:
    candidate: Candidate
    position: int
    late: bool


@dataclass
class PushReport:
    day: date
    already_done: bool = False
    dry_run: bool = False
    articles: list[PackedArticle] = field(default_factory=list)
    left_over: list[PackedArticle] = field(default_factory=list)
    missed_days: list[date] = field(default_factory=list)
    manifest: str | None = None
    message: str = ""
    wechat_state: str | None = None
    lost_race: bool = False  # another process claimed the same push at the same moment


def pack(candidates: Sequence[Candidate], limit: int, at: datetime, next_push: datetime
         ) -> tuple[list[PackedArticle], list[PackedArticle]]:
    """Choose the earliest deadlines first; order the chosen by the editor's rank.

    ``late`` means published after the deadline (for the chosen: at ``at``; for the
    left-over: at ``next_push``, the earliest they can go out).
    """
    by_deadline = sorted(candidates, key=lambda c: (c.deadline, c.id))
    chosen = sorted(by_deadline[:limit], key=lambda c: (
        c.push_rank is None, c.push_rank or 0, c.deadline, c.id))
    left = by_deadline[limit:]
    return ([PackedArticle(c, i, at > c.deadline) for i, c in enumerate(chosen, start=1)],
            [PackedArticle(c, 0, next_push > c.deadline) for c in left])


def local_date(now: datetime, settings: Settings) -> date:
    return now.astimezone(settings.tz).date()


def candidates(session: Session) -> list[Candidate]:
    # Columns, not Draft objects: a campaign can leave thousands approved at once, and
    # loading each into the session costs ~50x more than the row (bench/bench_month.py).
    rows = session.execute(
        sa.select(col(Draft.id), col(Draft.title), col(Unit.name), col(Draft.activity_type),
                  col(Draft.deadline), col(Draft.push_rank))
        .join(Unit, col(Unit.id) == col(Draft.unit_id))
        .where(col(Draft.status) == DraftStatus.APPROVED)).all()
    return [Candidate(*row) for row in rows]


def plan(session: Session, settings: Settings, now: datetime
         ) -> tuple[list[PackedArticle], list[PackedArticle]]:
    """What a push at ``now`` would contain, and what would not fit."""
    return pack(candidates(session), settings.schedule.max_articles_per_push, now,
                next_push_after(now, settings))


def push_row(session: Session, settings: Settings, day: date) -> Push | None:
    return session.exec(select(Push).where(Push.account == settings.account.key,
                                           Push.local_date == day, Push.slot == 1)).first()
