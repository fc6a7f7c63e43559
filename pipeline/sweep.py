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
from .models import Draft, Unit


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
    result = SweepResult()
    for draft, unit in rows:
        if draft.deadline > now:
            result.due_soon.append(_flag(session, draft, unit, "due_soon", editors, now))
            continue
        result.overdue.append(_flag(session, draft, unit, "overdue",
                                    (*editors, *_emails(unit)), now))
        if now - draft.deadline >= timedelta(days=1) and unit.parent_id in units:
            parent = units[unit.parent_id]
            result.escalated.append(_flag(session, draft, unit, "overdue_escalated",
                                          _emails(parent), now))
    return result


def _emails(unit: Unit) -> tuple[str, ...]:
    return (unit.email,) if unit.email else ()


def _flag(session: Session, draft: Draft, unit: Unit, kind: str, recipients: tuple[str, ...],
          now: datetime) -> Flagged:
    left = hours_left(draft.deadline, now)
    detail = (f"Draft {draft.id} '{draft.title}' from {unit.name} is {draft.status}; "
              f"deadline {draft.deadline.isoformat()} ({left:+.1f} h).")
    new = record_alert(session, f"{kind}:{draft.id}", kind, now, draft_id=draft.id,
                       recipients=recipients, detail=detail)
    return Flagged(draft.id or 0, draft.title, unit.name, str(draft.status), draft.deadline,
                   left, recipients, new)
