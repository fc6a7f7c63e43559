"""The deadline sweep: find due-soon and overdue stories and record who must be told.

Only drafts that can still miss their deadline are read, through the
(status, deadline) index, so the sweep stays fast with a large history.
Recording goes through unique alert keys: a second sweep, a restart or a
second process records nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from .alerts import NewAlert, record_alerts
from .config import Settings
from .deadlines import WAITING, due_soon_limit, hours_left
from .models import Alert, Draft, Unit


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
    editors = settings.notify.editors
    # The keys recorded before, read through the drafts' query (no id list to bind):
    # a repeated sweep writes nothing.
    known = set(session.exec(select(Alert.key).join(Draft, col(Draft.id) == Alert.draft_id)
                             .where(col(Draft.status).in_(WAITING), Draft.deadline < limit)))
    flags: list[_Flag] = []
    for draft, unit in rows:
        flag = _Flagger(draft, unit, now)
        if draft.deadline > now:
            flags.append(flag("due_soon", editors))
            continue
        flags.append(flag("overdue", (*editors, *_emails(unit))))
        if now - draft.deadline >= timedelta(days=1) and unit.parent_id in units:
            flags.append(flag("overdue_escalated", _emails(units[unit.parent_id])))
    new = record_alerts(session, [f.alert for f in flags if f.alert.key not in known], now)
    result = SweepResult()
    lists = {"due_soon": result.due_soon, "overdue": result.overdue,
             "overdue_escalated": result.escalated}
    for f in flags:
        lists[f.alert.kind].append(replace(f.flagged, new=f.alert.key in new))
    return result


def _emails(unit: Unit) -> tuple[str, ...]:
    return (unit.email,) if unit.email else ()


@dataclass(frozen=True)
class _Flag:
    alert: NewAlert       # recorded unless its key is known
    flagged: Flagged      # ``new`` is filled in once the insert has said which keys are new


@dataclass
class _Flagger:
    """One draft's alerts, one kind at a time."""

    draft: Draft
    unit: Unit
    now: datetime

    def __call__(self, kind: str, recipients: tuple[str, ...]) -> _Flag:
        draft, left = self.draft, hours_left(self.draft.deadline, self.now)
        alert = NewAlert(
            f"{kind}:{draft.id}", kind, draft_id=draft.id, recipients=recipients,
            detail=f"Draft {draft.id} '{draft.title}' from {self.unit.name} is "
                   f"{draft.status}; deadline {draft.deadline.isoformat()} ({left:+.1f} h).")
        return _Flag(alert, Flagged(draft.id or 0, draft.title, self.unit.name,
                                    str(draft.status), draft.deadline, left, recipients,
                                    new=False))
