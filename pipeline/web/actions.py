"""Desk writes that no stage module offers yet: cover choice, the push order,
unit links and re-sending an email.

Each is one small function over a session (the caller commits), in the same
style as ``pipeline.review``: check, change, leave a history line. They belong
in the stages (review, push, units, notify) and can move there unchanged.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from ..config import Settings
from ..domain import DraftStatus
from ..errors import PipelineError, ReviewError
from ..models import Draft, DraftEvent, OutboxMessage, Submission, Unit, UnitLink
from ..push import plan
from ..review import get_draft

COVER_EDITABLE = frozenset({DraftStatus.DRAFTED, DraftStatus.CHANGES_REQUESTED,
                            DraftStatus.APPROVED, DraftStatus.FAILED})


def set_cover(session: Session, draft_id: int, cover: str, *, actor: str,
              now: datetime) -> None:
    """Make one of the report's photos the article's cover.

    Raises:
        ReviewError: no such draft or photo, or the draft is already out.
    """
    draft = get_draft(session, draft_id)
    if draft.status not in COVER_EDITABLE:
        raise ReviewError(f"Draft {draft_id} is '{draft.status}' and can no longer be edited.")
    submission = session.get(Submission, draft.submission_id)
    names = [p["name"] for p in json.loads(submission.photos)] if submission else []
    if cover not in names:
        raise PipelineError(f"Draft {draft_id} has no photo {cover!r}.")
    draft.cover, draft.updated_at, draft.version = cover, now, draft.version + 1
    session.add(draft)
    session.add(DraftEvent(draft_id=draft_id, at=now, actor=actor, action="cover",
                           from_status=draft.status, to_status=draft.status, note=cover))


def set_push_order(session: Session, ordered: Sequence[int], now: datetime) -> list[int]:
    """Rank approved drafts in the given order (lower first); returns the ids ranked.

    Drafts not named lose their rank, so the pack falls back to deadline order for them.
    """
    approved = set(session.exec(select(Draft.id).where(Draft.status == DraftStatus.APPROVED)))
    ranked = [i for i in dict.fromkeys(ordered) if i in approved]
    session.execute(sa.update(Draft).where(col(Draft.status) == DraftStatus.APPROVED)
                    .values(push_rank=None))
    for rank, draft_id in enumerate(ranked, start=1):
        session.execute(sa.update(Draft).where(col(Draft.id) == draft_id)
                        .values(push_rank=rank, updated_at=now))
    return ranked


def move_in_push(session: Session, settings: Settings, draft_id: int, step: int,
                 at: datetime, now: datetime) -> list[int]:
    """Move one story up (-1) or down (+1) in the next push's order.

    Raises:
        ReviewError: the story is not in the next push.
    """
    chosen, _ = plan(session, settings, at)
    order = [a.candidate.id for a in chosen]
    if draft_id not in order:
        raise ReviewError(f"Draft {draft_id} is not in the next push.")
    i = order.index(draft_id)
    j = min(max(i + step, 0), len(order) - 1)
    order[i], order[j] = order[j], order[i]
    return set_push_order(session, order, now)


def create_link(session: Session, unit_id: int, *, actor: str, now: datetime,
                replace: bool = False) -> UnitLink:
    """A new secret submission link for a unit (``replace``: revoke the old ones first).

    Raises:
        PipelineError: there is no such unit.
    """
    if session.get(Unit, unit_id) is None:
        raise PipelineError(f"There is no unit {unit_id}.")
    if replace:
        revoke_links(session, unit_id, now)
    link = UnitLink(unit_id=unit_id, token=secrets.token_urlsafe(24), created_at=now,
                    created_by=actor)
    session.add(link)
    session.flush()
    return link


def revoke_links(session: Session, unit_id: int, now: datetime) -> int:
    """Stop every live link of a unit at once; returns how many were live."""
    result = session.execute(sa.update(UnitLink)
                             .where(col(UnitLink.unit_id) == unit_id,
                                    col(UnitLink.revoked_at).is_(None))
                             .values(revoked_at=now))
    return int(result.rowcount)  # type: ignore[attr-defined]


def resend(session: Session, message_id: int, now: datetime) -> OutboxMessage:
    """Queue a copy of a digest or bulletin email for sending again.

    Raises:
        PipelineError: there is no such message.
    """
    original = session.get(OutboxMessage, message_id)
    if original is None or original.kind not in ("digest", "bulletin"):
        raise PipelineError(f"There is no digest or bulletin email {message_id}.")
    key = f"resend:{message_id}:{now.isoformat()}"  # a new key: the outbox dedupes by key
    copy = OutboxMessage(key=key, kind=original.kind, recipients=original.recipients,
                         subject=original.subject, text_body=original.text_body,
                         html_body=original.html_body, created_at=now, next_attempt_at=now)
    session.add(copy)
    session.flush()
    return copy
