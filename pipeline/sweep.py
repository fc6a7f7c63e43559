"""The deadline sweep: find due-soon and overdue stories and record who must be told.

Only drafts that can still miss their deadline are read, through the
(status, deadline) index, so the sweep stays fast with a large history.
Recording goes through unique alert keys: a second sweep, a restart or a
second process records nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from .alerts import NewAlert, record_alerts
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
    """Flag waiting drafts whose deadline is near or past, recording each alert once.

    A constant number of statements whatever the backlog: one read of the waiting
    drafts, one of the units, one of the alerts recorded before, and one multi-row
    insert of the new alerts (so a week of downtime costs no more per story).
    """
    limit = due_soon_limit(now, settings)
    rows = session.exec(
        select(Draft, Unit).join(Unit, col(Unit.id) == Draft.unit_id)
        .where(col(Draft.status).in_(WAITING), Draft.deadline < limit)
        .order_by(col(Draft.deadline), col(Draft.id))).all()
    units = {u.id: u for u in session.exec(select(Unit))}
    # The keys recorded before, read through the drafts' query (no id list to bind):
    # a repeated sweep writes nothing.
    known = set(session.exec(select(Alert.key).join(Draft, col(Draft.id) == Alert.draft_id)
                             .where(col(Draft.status).in_(WAITING), Draft.deadline < limit)))
    stages = holders(session, settings) if rows else []
    wanted = _wanted(rows, units, settings.notify.editors, now, stages)
    new = record_alerts(session, [_alert(*w, now, _held(w[2], stages)) for w in wanted
                                  if w[0] not in known], now)
    result = SweepResult()
    lists = {"due_soon": result.due_soon, "overdue": result.overdue,
             "overdue_escalated": result.escalated}
    for key, kind, draft, unit, recipients in wanted:
        lists[kind].append(Flagged(draft.id or 0, draft.title, unit.name, str(draft.status),
                                   draft.deadline, hours_left(draft.deadline, now), recipients,
                                   new=key in new))
    return result


# An alert the sweep wants recorded: key, kind, draft, its unit, recipients.
_Wanted = tuple[str, str, Draft, Unit, tuple[str, ...]]


def _wanted(rows: Sequence[tuple[Draft, Unit]], units: dict[int | None, Unit],
            editors: tuple[str, ...], now: datetime, stages: Sequence[Holders]
            ) -> list[_Wanted]:
    """Due soon: the editors; overdue: the editors and the unit; a day later: its parent.
    A draft waiting at a review stage is flagged to that stage's holders too."""
    wanted: list[_Wanted] = []
    for draft, unit in rows:
        held = _held(draft, stages)
        signers = held.emails if held else ()
        if draft.deadline > now:
            wanted.append((f"due_soon:{draft.id}", "due_soon", draft, unit,
                           (*editors, *signers)))
            continue
        wanted.append((f"overdue:{draft.id}", "overdue", draft, unit,
                       (*editors, *signers, *_emails(unit))))
        if now - draft.deadline >= timedelta(days=1) and unit.parent_id in units:
            wanted.append((f"overdue_escalated:{draft.id}", "overdue_escalated", draft, unit,
                           _emails(units[unit.parent_id])))
    return wanted


def _emails(unit: Unit) -> tuple[str, ...]:
    return (unit.email,) if unit.email else ()


def _held(draft: Draft, stages: Sequence[Holders]) -> Holders | None:
    """The holders of the review stage a draft waits at (None: not in review)."""
    if draft.status != DraftStatus.DRAFTED or not stages:
        return None
    return stages[min(draft.review_stage, len(stages) - 1)]


def _alert(key: str, kind: str, draft: Draft, unit: Unit, recipients: tuple[str, ...],
           now: datetime, held: Holders | None) -> NewAlert:
    left = hours_left(draft.deadline, now)
    return NewAlert(key, kind, draft_id=draft.id, recipients=recipients,
                    detail=f"Draft {draft.id} '{draft.title}' from {unit.name} is "
                           f"{draft.status}; deadline {draft.deadline.isoformat()} "
                           f"({left:+.1f} h)" + (f"; {held.words()}." if held else "."))
