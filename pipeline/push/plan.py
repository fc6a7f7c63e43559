"""What a push would contain: approved stories packed so that none turns late that could
still be on time (pure), and the small records every part of the push shares."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from ..config import Settings
from ..deadlines import next_push_after
from ..domain import PUSH_TAKEN, DraftStatus, PushState
from ..messages import Coded
from ..reads import Reader, SessionReader, stored_date, units, utc

if TYPE_CHECKING:  # this module loads no database library: ``push --dry-run`` reads
    from sqlmodel import Session  # through the DB-API alone (readcmds, lean.py)

    from ..models import Push

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
    reason: str = ""     # for a left-over story: why it was not chosen, one sentence


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
    claimed: bool = False    # this call claimed the day's push (it won any race for it)

    @property
    def done_elsewhere(self) -> bool:
        """Someone else (another editor, process or the scheduler) has today's push: this
        call pushed nothing, whatever it found in progress or finished."""
        return not self.dry_run and not self.claimed


def pack(candidates: Sequence[Candidate], limit: int, at: datetime, next_push: datetime
         ) -> tuple[list[PackedArticle], list[PackedArticle]]:
    """Choose up to ``limit`` stories; order the chosen by the editors' rank.

    Priority: stories due before the next push (on time only if pushed now), earliest
    deadline first; then the lead the editors chose (lowest rank); then stories already
    overdue, oldest first; then the rest by deadline. So a story that can still be on
    time is never left out for one that is late anyway. ``late`` means published after
    the deadline (for the chosen: at ``at``; for the left-over: at ``next_push``, the
    earliest they can go out).
    """
    # Compared in UTC, as the deadlines are read: an instant in the account's zone is the
    # same instant, but each comparison with one asks the zone its offset (70x slower).
    at, next_push = at.astimezone(UTC), next_push.astimezone(UTC)
    lead = min((c.push_rank for c in candidates if c.push_rank is not None), default=None)
    ordered = sorted(candidates, key=lambda c: _priority(c, lead, at, next_push))
    chosen = sorted(ordered[:limit], key=lambda c: (
        c.push_rank is None, c.push_rank or 0, c.deadline, c.id))
    left = ordered[limit:]
    # One sentence object per reason, shared by every story it applies to: a campaign
    # leaves thousands over, and each would otherwise be worded (twice) on its own.
    reasons: dict[str, Coded] = {}
    return ([PackedArticle(c, i, at > c.deadline) for i, c in enumerate(chosen, start=1)],
            [PackedArticle(c, 0, next_push > c.deadline,
                           _why_left(c, at, next_push, limit, reasons)) for c in left])


def _priority(c: Candidate, lead: int | None, at: datetime, next_push: datetime
              ) -> tuple[int, datetime, int]:
    """``lead``: the lowest rank the editors gave (computed once, not per story)."""
    if at <= c.deadline < next_push:
        return (0, c.deadline, c.id)            # on time tonight, late tomorrow
    if c.push_rank is not None and c.push_rank == lead:
        return (1, c.deadline, c.id)            # the editors' lead
    if c.deadline < at:
        return (2, c.deadline, c.id)            # late whatever we do: oldest first
    return (3, c.deadline, c.id)


def _why_left(c: Candidate, at: datetime, next_push: datetime, limit: int,
              made: dict[str, Coded]) -> Coded:
    """One sentence on why ``c`` waits for the next push (a code of the vocabulary)."""
    if at <= c.deadline < next_push:
        code = "push.left_turns_late"
    elif c.deadline < at:
        code = "push.left_overdue"
    else:
        code = "push.left_on_time"
    if code not in made:
        made[code] = Coded(code, limit=limit)
    return made[code]


def local_date(now: datetime, settings: Settings) -> date:
    return now.astimezone(settings.tz).date()


CANDIDATES = ("SELECT id, title, unit_id, activity_type, deadline, push_rank FROM draft "
              "WHERE status = :approved")


def candidates(reader: Reader) -> list[Candidate]:
    # Columns, not Draft objects: a campaign can leave thousands approved at once, and
    # loading each into the session costs ~50x more than the row (bench/bench_month.py).
    # Units are named from their own small table, not joined to every draft.
    names = {u.id: u.name for u in units(reader)}
    return [Candidate(i, title, names[unit_id], kind, utc(deadline), rank)
            for i, title, unit_id, kind, deadline, rank in reader.rows(
                CANDIDATES, {"approved": str(DraftStatus.APPROVED)}) if unit_id in names]


def plan(session: Session, settings: Settings, now: datetime
         ) -> tuple[list[PackedArticle], list[PackedArticle]]:
    """What a push at ``now`` would contain, and what would not fit."""
    return plan_from(SessionReader(session), settings, now)


def plan_from(reader: Reader, settings: Settings, now: datetime
              ) -> tuple[list[PackedArticle], list[PackedArticle]]:
    """``plan`` on any reader (the lean start of ``push --dry-run`` reads the DB-API)."""
    return pack(candidates(reader), settings.schedule.max_articles_per_push, now,
                next_push_after(now, settings))


def push_state(reader: Reader, settings: Settings, day: date) -> str | None:
    """The state of the day's push row (None: no row yet)."""
    found = reader.rows("SELECT state FROM push WHERE account = :account AND "
                        "local_date = :day AND slot = 1",
                        {"account": settings.account.key,
                         "day": stored_date(reader.dialect, day)})
    return str(found[0][0]) if found else None


def push_row(session: Session, settings: Settings, day: date) -> Push | None:
    from sqlmodel import select

    from ..models import Push

    return session.exec(select(Push).where(Push.account == settings.account.key,
                                           Push.local_date == day, Push.slot == 1)).first()
