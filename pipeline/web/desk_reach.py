"""The editors' desk, part four: 传播数据 (read figures from WeChat, followers, reported
coverage) and classifying an unknown outlet once. The chart is inline SVG drawn on the
server (``reach.chart``), so the page loads nothing from elsewhere."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup

from ..config import MEDIA_LEVELS
from ..errors import PipelineError
from ..reach.coverage import classify_outlet, unknown_outlets
from ..reach.fetch import refusal
from ..reach.stats import (
    day_bounds,
    gather_account,
    gather_articles,
    gather_daily_reads,
    reads_chart,
    unit_reach,
)
from .auth import flash
from .desk import Editor, VerifiedForm
from .state import audit, page, web

router = APIRouter(include_in_schema=False)
PERIODS = (7, 30, 90)


@router.get("/reach")
def reach(request: Request, user: Editor, days: int = 30) -> Response:
    state = web(request)
    days = days if days in PERIODS else 30
    today = state.now().astimezone(state.settings.tz).date()
    first, last = today - timedelta(days=days), today - timedelta(days=1)
    since, until = day_bounds(state.settings, first, today)
    with state.store.session() as session:
        articles = gather_articles(session, state.settings, since=since, until=until)
        account = gather_account(session, state.settings, first, last)
        daily = gather_daily_reads(session, first, last)
        unknown = unknown_outlets(session, state.settings)
    units = sorted(unit_reach(articles).values(), key=lambda u: (-u.reads, u.unit))
    chart = Markup(reads_chart(daily, account, first, last))  # line_chart escapes every text
    return page(request, "reach.html", user=user, days=days, periods=PERIODS,
                articles=articles, by_day={a.day: a for a in account}, units=units, chart=chart,
                daily=sorted(daily.items(), reverse=True), unknown=unknown,
                levels=MEDIA_LEVELS, refused=refusal(state.store, state.settings),
                wechat=state.settings.wechat.enabled)


@router.post("/reach/media")
def classify(request: Request, user: Editor, form: VerifiedForm) -> Response:
    state = web(request)
    key, level = str(form.get("key") or ""), str(form.get("level") or "")
    outlet = str(form.get("outlet") or "")
    try:
        with state.store.session() as session:
            classify_outlet(session, key, level, outlet, actor=user, now=state.now())
            audit(session, request, user, "media_classify", f"media:{key[:100]}",
                  {"level": level, "outlet": outlet})
    except PipelineError:
        flash(request.session, f"无法归类“{key}”：请选择媒体级别（该媒体可能已归类）。", "warn")
        return RedirectResponse("/reach#media", 303)
    flash(request.session, f"已将“{key}”归类为{MEDIA_LEVELS.get(level, level)}媒体。")
    return RedirectResponse("/reach#media", 303)
