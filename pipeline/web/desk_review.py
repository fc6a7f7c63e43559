"""The desk's staged-review pages: the leaders' phone page of drafts waiting for them,
and the printable 审核记录 of one draft.

Signing itself goes through the draft page's action form (``desk.act``), which calls
``review.transition`` like ``pipeline approve``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlmodel import col, select

from .. import review
from ..models import Draft, Unit
from ..views import detail, iso
from .desk import Editor
from .state import DraftId, page, web

router = APIRouter(include_in_schema=False)
MINE_LIMIT = 30  # a phone page; the queue's 等我签审 scope lists the rest


@router.get("/mine")
def mine(request: Request, user: Editor) -> Response:
    """The drafts waiting at a stage this editor may sign, each with its preview."""
    state = web(request)
    settings = state.settings
    with state.store.session() as session:
        stages = review.stage_indexes(session, settings, user)
        rows = session.exec(
            select(Draft, Unit).join(Unit, col(Unit.id) == Draft.unit_id)
            .where(Draft.status == "drafted", col(Draft.review_stage).in_(stages))
            .order_by(col(Draft.deadline), col(Draft.id)).limit(MINE_LIMIT)).all()
        items = [detail(session, settings, d.id or 0, state.now()) for d, _ in rows]
    names = [settings.review.stages[i].name for i in stages]
    return page(request, "mine.html", user=user, items=items, stage_names=names)


@router.get("/drafts/{draft_id}/record")
def record(request: Request, user: Editor, draft_id: DraftId) -> Response:
    """The 审核记录 as offices keep it on paper: title, unit, each stage signed."""
    state = web(request)
    with state.store.session() as session:
        draft = review.get_draft(session, draft_id)
        data = detail(session, state.settings, draft_id, state.now())
        stages = [{**r, "at": iso(r["at"], state.settings)}
                  for r in review.review_record(session, state.settings, draft)]
    return page(request, "record.html", user=user, d=data, stages=stages)
