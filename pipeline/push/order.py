"""The editors' order of the next push: ranks on approved drafts (lower goes first).

The pack still chooses the earliest deadlines; the ranks only order what it chose.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from ..config import Settings
from ..domain import DraftStatus
from ..errors import ReviewError
from ..models import Draft
from .plan import plan


def set_push_order(session: Session, ordered: Sequence[int], now: datetime) -> list[int]:
    """Rank approved drafts in the given order (lower first); returns the ids ranked.

    Drafts not named lose their rank, so the pack falls back to deadline order for them.
    """
    approved = set(session.exec(select(Draft.id).where(Draft.status == DraftStatus.APPROVED)))
    ranked = [i for i in dict.fromkeys(ordered) if i in approved]
    # Two statements for any number of stories: clear the ranks, then set every new rank
    # with one CASE. "fetch" (RETURNING the ids) keeps the Draft objects the caller's
    # session loaded (plan() in move_in_push) in step without evaluating each of them.
    sync = {"synchronize_session": "fetch"}
    session.execute(sa.update(Draft).where(col(Draft.status) == DraftStatus.APPROVED)
                    .values(push_rank=None).execution_options(**sync))
    if ranked:
        rank = sa.case({draft_id: r for r, draft_id in enumerate(ranked, start=1)},
                       value=col(Draft.id))
        session.execute(sa.update(Draft).where(col(Draft.id).in_(ranked))
                        .values(push_rank=rank, updated_at=now).execution_options(**sync))
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
        raise ReviewError.coded("draft.not_in_push", id=draft_id)
    i = order.index(draft_id)
    j = min(max(i + step, 0), len(order) - 1)
    order[i], order[j] = order[j], order[i]
    return set_push_order(session, order, now)
