"""The deadline sweep: find due-soon and overdue stories and record who must be told.

Only drafts that can still miss their deadline are read, through the
(status, deadline) index, so the sweep stays fast with a large history.
Recording goes through unique alert keys: a second sweep, a restart or a
second process records nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from .alerts import record_alert
from .config import Settings
from .deadlines import WAITING, due_soon_limit, hours_left
from .domain import DraftStatus
from .models import Alert, Draft, Unit
from .review import Holders, holders


@dataclass(frozen=True)
class Flagged:
    id: int
    title: str
    unit: str
    status: str
    deadline: datetime
    hours_left: float
    notify: tuple[str, ...]     # addresses recorded for the alert (may be empty)
    new: bool                   # recorded by this sweep (False: already recorded before)


@dataclass
class SweepResult:
    due_soon: list[Flagged] = field(default_factory=list)
    overdue: list[Flagged] = field(default_factory=list)
    escalated: list[Flagged] = field(default_factory=list)


def sweep(session: Session, settings: Settings, now: datetime) -> SweepResult:
    """Flag waiting drafts whose deadline is near or past, recording each alert once."""
    limit = due_soon_limit(now, settings)
    rows = session.exec(
        select(Draft, Unit).join(Unit, col(Unit.id) == Draft.unit_id)
        .where(col(Draft.status).in_(WAITING), Draft.deadline < limit)
        .order_by(col(Draft.deadline), col(Draft.id))).all()
    units = {u.id: u for u in session.exec(select(Unit))}
    editors = settings.notify.editors
    # One query for the alerts recorded before, so a repeated sweep writes nothing.
    known = set(session.exec(select(Alert.key).where(col(Alert.draft_id).in_(
        [d.id for d, _ in rows]))))
    result = SweepResult()
    stages = holders(session, settings) if rows else []
    for draft, unit in rows:
        # A draft late while waiting at a review stage is flagged to that stage's holders.
        held = (stages[min(draft.review_stage, len(stages) - 1)]
                if draft.status == DraftStatus.DRAFTED else None)
        flag = _Flagger(session, draft, unit, known, now, held)
        signers = held.emails if held else ()
        if draft.deadline > now:
            result.due_soon.append(flag("due_soon", (*editors, *signers)))
            continue
        result.overdue.append(flag("overdue", (*editors, *signers, *_emails(unit))))
        if now - draft.deadline >= timedelta(days=1) and unit.parent_id in units:
            result.escalated.append(flag("overdue_escalated",
                                         _emails(units[unit.parent_id])))
    return result


def _emails(unit: Unit) -> tuple[str, ...]:
    return (unit.email,) if unit.email else ()


@dataclass
class _Flagger:
    """Records one kind of alert for one draft, unless it was recorded before."""

    session: Session
    draft: Draft
    unit: Unit
    known: set[str]
    now: datetime
    held: Holders | None = None

    def __call__(self, kind: str, recipients: tuple[str, ...]) -> Flagged:
        draft, left = self.draft, hours_left(self.draft.deadline, self.now)
        key = f"{kind}:{draft.id}"
        new = key not in self.known and record_alert(
            self.session, key, kind, self.now, draft_id=draft.id, recipients=recipients,
            detail=f"Draft {draft.id} '{draft.title}' from {self.unit.name} is "
                   f"{draft.status}; deadline {draft.deadline.isoformat()} ({left:+.1f} h)"
                   + (f"; {self.held.words()}." if self.held else "."))
        return Flagged(draft.id or 0, draft.title, self.unit.name, str(draft.status),
                       draft.deadline, left, recipients, new)
