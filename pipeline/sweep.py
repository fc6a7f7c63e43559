"""The deadline sweep: find due-soon and overdue stories and record who must be told.

Only drafts that can still miss their deadline are read, through the
(status, deadline) index, so the sweep stays fast with a large history.
Recording goes through unique alert keys: a second sweep, a restart or a
second process records nothing twice. The reads are ``reads.sweep_reads`` (shared
with the lean start of ``pipeline check``).
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from .alerts import NewAlert, record_alerts
from .config import Settings
from .deadlines import hours_left
from .reads import Flagged, SessionReader, SweepResult, Wanted, flagged, sweep_reads

__all__ = ["Flagged", "SweepResult", "sweep"]


def sweep(session: Session, settings: Settings, now: datetime) -> SweepResult:
    """Flag waiting drafts whose deadline is near or past, recording each alert once.

    A constant number of statements whatever the backlog: the reads of
    ``reads.sweep_reads`` and one multi-row insert of the new alerts (so a week of
    downtime costs no more per story).
    """
    wanted, known = sweep_reads(SessionReader(session), settings, now)
    new = record_alerts(session, [_alert(w, now) for w in wanted if w.key not in known], now)
    return flagged(wanted, new, now)


def _alert(wanted: Wanted, now: datetime) -> NewAlert:
    draft, held = wanted.draft, wanted.held
    left = hours_left(draft.deadline, now)
    return NewAlert(wanted.key, wanted.kind, draft_id=draft.id, recipients=wanted.recipients,
                    detail=f"Draft {draft.id} '{draft.title}' from {wanted.unit.name} is "
                           f"{draft.status}; deadline {draft.deadline.isoformat()} "
                           f"({left:+.1f} h)" + (f"; {held.words()}." if held else "."))
