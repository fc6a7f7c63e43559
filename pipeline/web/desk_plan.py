"""The editors' desk, part two: today's push (order, push now) and the calendar
with its iCalendar feed.

The push itself is ``push.run_push``, the same call as ``pipeline push``; its
unique slot row makes a second click, the scheduler and the CLI all safe.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session, col, select

from ..errors import PipelineError
from ..models import FeedToken
from ..push import local_date, plan, run_push
from ..push import order as push_order
from ..push.plan import PushReport
from ..units import hash_token
from .auth import AuthError, check_csrf, flash, session_user
from .desk import Editor, JsonBody, VerifiedForm
from .planning import calendar_days, ical_feed, next_push_moment
from .state import audit, page, web

router = APIRouter(include_in_schema=False)


def new_feed_token(session: Session, actor: str, now: datetime) -> str:
    """A new key for the calendar feed (calendar apps cannot log in, so the URL carries
    one); the old keys stop working. Only its hash is kept: it is shown once."""
    session.execute(sa.update(FeedToken).where(col(FeedToken.revoked_at).is_(None))
                    .values(revoked_at=now))
    token = secrets.token_urlsafe(24)
    session.add(FeedToken(token_hash=hash_token(token), created_at=now, created_by=actor))
    return token


def feed_token_ok(session: Session, token: str) -> bool:
    if not token or len(token) > 100:
        return False
    return session.exec(select(FeedToken).where(FeedToken.token_hash == hash_token(token),
                                                col(FeedToken.revoked_at).is_(None))
                        ).first() is not None


def push_plan(request: Request) -> dict[str, Any]:
    state = web(request)
    with state.store.session() as session:
        at = next_push_moment(session, state.settings, state.now())
        chosen, left = plan(session, state.settings, at)
    return {"at": at, "chosen": chosen, "left": left,
            "late": [a for a in chosen if a.late] + [a for a in left if a.late]}


@router.get("/push")
def push_page(request: Request, user: Editor) -> Response:
    return page(request, "push.html", user=user, **push_plan(request))


@router.post("/push/move")
def move(request: Request, user: Editor, form: VerifiedForm) -> Response:
    state = web(request)
    draft_id, step = str(form.get("id") or ""), -1 if form.get("step") == "up" else 1
    if not draft_id.isdigit():
        raise AuthError(400, "缺少稿件编号。")
    try:
        with state.store.session() as session:
            at = next_push_moment(session, state.settings, state.now())
            order = push_order.move_in_push(session, state.settings, int(draft_id), step, at,
                                         state.now())
            audit(session, request, user, "push_order", "push", {"order": order})
    except PipelineError as exc:
        flash(request.session, exc.text("zh_CN"), "error")
    return RedirectResponse("/push", 303)


@router.post("/push/order")
def reorder(request: Request, user: Editor, body: JsonBody) -> Response:
    """The whole order at once (the drag-and-drop list posts it as JSON)."""
    check_csrf(request.session, request.headers.get("x-csrf-token"))
    ids = body.get("order") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
        raise AuthError(422, "顺序应为稿件编号列表。")
    state = web(request)
    with state.store.session() as session:
        order = push_order.set_push_order(session, ids, state.now())
        audit(session, request, user, "push_order", "push", {"order": order})
    return Response(json.dumps({"ok": True, "order": order}), media_type="application/json")


@router.post("/push/run")
def push_now(request: Request, user: Editor, form: VerifiedForm) -> Response:
    if form.get("confirm") != "yes":
        flash(request.session, "请勾选确认后再推送。", "error")
        return RedirectResponse("/push", 303)
    state = web(request)
    report = run_push(state.store, state.settings, state.now())
    if not report.done_elsewhere:  # one audit row per push: the loser of a race writes none
        with state.store.session() as session:
            audit(session, request, user, "push_now", f"push:{report.day}",
                  {"articles": [a.candidate.id for a in report.articles],
                   "already_done": report.already_done})
    flash(request.session, push_answer(report),
          "ok" if report.articles and not report.done_elsewhere else "warn")
    return RedirectResponse("/push", 303)


def push_answer(report: PushReport) -> str:
    """What a "push now" did, in Chinese; the loser of a race is told who has the push."""
    titles = "、".join(f"《{a.candidate.title}》" for a in report.articles)
    what = f"（{len(report.articles)} 篇：{titles}）" if report.articles else "（没有稿件）"
    if report.done_elsewhere:
        return f"今天的推送已由另一位编辑完成{what}，本次没有重复推送。"
    if report.articles:
        return f"已推送 {len(report.articles)} 篇稿件：{titles}。"
    return "没有已通过的稿件，本次未推送。"


@router.get("/calendar")
def calendar(request: Request, user: Editor) -> Response:
    state = web(request)
    days = _three_weeks(request)
    token = request.session.pop("new_feed", None)  # shown once, right after it was made
    feed = (f"{state.settings.notify.base_url.rstrip('/')}/calendar.ics?token={token}"
            if isinstance(token, str) else "")
    with state.store.session() as session:
        has_feed = session.exec(select(FeedToken.id).where(
            col(FeedToken.revoked_at).is_(None))).first() is not None
    weeks = [days[i:i + 7] for i in range(0, len(days), 7)]
    return page(request, "calendar.html", user=user, weeks=weeks, feed=feed, has_feed=has_feed,
                today=local_date(state.now(), state.settings))


@router.post("/calendar/feed")
def calendar_feed_token(request: Request, user: Editor, _form: VerifiedForm) -> Response:
    state = web(request)
    with state.store.session() as session:
        request.session["new_feed"] = new_feed_token(session, user, state.now())
        audit(session, request, user, "feed_token")
    return RedirectResponse("/calendar", 303)


def _three_weeks(request: Request) -> list[Any]:
    state = web(request)
    today = local_date(state.now(), state.settings)
    monday = today - timedelta(days=today.weekday())
    with state.store.session() as session:
        return calendar_days(session, state.settings, state.now(), monday - timedelta(days=7),
                             monday + timedelta(days=13))


@router.get("/calendar.ics")
def calendar_feed(request: Request, token: str = "") -> Response:
    state = web(request)
    with state.store.session() as session:
        if token:
            if not feed_token_ok(session, token):
                raise AuthError(403, "日历订阅地址无效。")
        elif session_user(request.session, session, state.now(), state.settings.web) is None:
            raise AuthError(303, "请先登录。")
    body = ical_feed(_three_weeks(request), state.settings, state.now(),
                     state.settings.notify.base_url)
    return Response(body, media_type="text/calendar; charset=utf-8",
                    headers={"Content-Disposition": 'inline; filename="push.ics"'})
