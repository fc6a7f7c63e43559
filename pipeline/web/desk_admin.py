"""The editors' desk, part three: reports (digests and bulletins) and units
(the tree, contacts, submission links, this week's numbers)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ..config import NotifySettings
from ..errors import PipelineError
from ..models import OutboxMessage
from ..notify import outbox as mail_outbox
from ..units import create_link, revoke_links
from ..views import units_tree
from .auth import AuthError, flash
from .desk import Editor, VerifiedForm
from .files import PREVIEW_CSP, bulletin_file, bulletin_names
from .queries import active_links, outbox, week_numbers
from .state import audit, page, web

router = APIRouter(include_in_schema=False)
LINK_ACTIONS = ("create", "regenerate", "revoke")


@router.get("/reports")
def reports(request: Request, user: Editor) -> Response:
    state = web(request)
    with state.store.session() as session:
        digests, bulletins = outbox(session, "digest"), outbox(session, "bulletin")
    return page(request, "reports.html", user=user, digests=digests, bulletins=bulletins,
                files=bulletin_names(state.settings))


@router.get("/reports/bulletins/{week}")
def bulletin(request: Request, user: Editor, week: str) -> Response:
    return bulletin_file(web(request).settings, week)


@router.get("/reports/bulletins/{week}/xlsx")
def bulletin_workbook(request: Request, user: Editor, week: str) -> Response:
    """The week's bulletin as an Excel workbook, from the current figures."""
    from urllib.parse import quote

    from ..notify.bulletin import gather_bulletin, parse_week
    from ..notify.workbook import bulletin_xlsx

    try:
        iso = parse_week(week)
    except ValueError as exc:
        raise AuthError(404, "通报不存在。") from exc
    state = web(request)
    with state.store.session() as session:
        data = gather_bulletin(session, state.settings, iso, state.now())
    name = quote(f"每周联合通报-{iso.label}.xlsx")
    return Response(bulletin_xlsx(data, state.settings), media_type=XLSX, headers={
        "Content-Disposition": f"attachment; filename=\"bulletin-{iso.label}.xlsx\"; "
                               f"filename*=UTF-8''{name}",
        "Cache-Control": "no-store"})


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get("/reports/outbox/{message_id}")
def outbox_message(request: Request, user: Editor, message_id: int) -> Response:
    with web(request).store.session() as session:
        message = session.get(OutboxMessage, message_id)
    if message is None or message.kind not in ("digest", "bulletin"):
        raise AuthError(404, "没有这封邮件。")
    if message.html_body:
        return HTMLResponse(message.html_body, headers={"Content-Security-Policy": PREVIEW_CSP})
    return Response(message.text_body, media_type="text/plain; charset=utf-8")


@router.post("/reports/outbox/{message_id}/resend")
def resend(request: Request, user: Editor, message_id: int, _form: VerifiedForm) -> Response:
    state = web(request)
    try:
        with state.store.session() as session:
            copy = mail_outbox.resend(session, message_id, state.now())
            audit(session, request, user, "resend", f"outbox:{message_id}",
                  {"copy": copy.id})
    except PipelineError as exc:
        raise AuthError(404, "没有这封邮件。") from exc
    flash(request.session, f"已重新加入发送队列：{copy.subject}")
    return RedirectResponse("/reports", 303)


@router.get("/units")
def units(request: Request, user: Editor) -> Response:
    state = web(request)
    with state.store.session() as session:
        rows = units_tree(session, state.now())
        links = active_links(session)
        week = week_numbers(session, state.settings, state.now())
    base = state.settings.notify.base_url.rstrip("/")
    if base == NotifySettings.base_url:
        # notify.base_url left at its local default: the address this page was opened on
        # is the one that works (the desk may serve on another port).
        base = str(request.base_url).rstrip("/")
    new_link = request.session.pop("new_link", None)  # a new link's URL is shown once
    return page(request, "units.html", user=user, rows=rows, links=links, week=week,
                base=base, new_link=new_link if isinstance(new_link, list) else None)


@router.post("/units/{unit_id}/link")
def unit_link(request: Request, user: Editor, unit_id: int, form: VerifiedForm) -> Response:
    state, action = web(request), form.get("action")
    if action not in LINK_ACTIONS:
        raise AuthError(400, "未知的操作。")
    try:
        with state.store.session() as session:
            if action == "revoke":
                count = revoke_links(session, unit_id, state.now())
                message = "链接已停用。" if count else "该单位没有可停用的链接。"
            else:
                made = create_link(session, unit_id, actor=user, now=state.now(),
                                   replace=action == "regenerate")
                request.session["new_link"] = [unit_id, f"/r/{made.token}"]
                message = ("已生成新链接，旧链接已停用。" if action == "regenerate"
                           else "已生成链接。")
            audit(session, request, user, f"link_{action}", f"unit:{unit_id}")
    except PipelineError as exc:
        raise AuthError(404, "没有这个单位。") from exc
    flash(request.session, message)
    return RedirectResponse(f"/units#unit-{unit_id}", 303)
