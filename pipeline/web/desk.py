"""The editors' desk, part one: login, the queue and the draft page.

Handlers are thin: read the form (CSRF checked), call the stage function the
CLI calls (``review.transition``, ``review.edit``, ``views.detail``), write an
audit row in the same transaction, and redirect or render.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from .. import review
from ..drafts import read_markdown
from ..errors import EditConflict, PipelineError, RaceLost, ReviewError
from ..messages import status as code_status
from ..messages import text_of
from ..models import Finding, Unit
from ..proofread import BLOCKING, apply_finding, blocking_findings, dismiss_finding, open_findings
from ..reach.stats import story_figures
from ..render import rerender
from ..units import all_units
from ..views import detail
from . import i18n
from .auth import MAX_NAME, AuthError, check_csrf, end_session, flash
from .bodies import read_json
from .files import PREVIEW_CSP, draft_file
from .queries import SCOPES, QueueFilter, photos_of, queue_page
from .state import DraftId, attempt_login, audit, editor_of, page, remote, web

router = APIRouter(include_in_schema=False)


def editor(request: Request) -> str:
    return editor_of(request, 303)


Editor = Annotated[str, Depends(editor)]
ACTIONS = ("approve", "request_changes", "reject")


async def verified_form(request: Request) -> FormData:
    """The posted form, after its CSRF token was checked."""
    form = await request.form(max_files=0, max_fields=200)
    check_csrf(request.session, form.get("csrf_token"))
    return form


# Handlers are plain ``def`` (FastAPI runs them in its thread pool, so a database wait or
# a render never stalls the event loop); only reading the body is async, in these
# dependencies.
VerifiedForm = Annotated[FormData, Depends(verified_form)]


async def json_body(request: Request) -> Any:
    """The posted JSON document (the handler checks the CSRF header itself); malformed
    JSON is a 400 with a sentence (``bodies.read_json``)."""
    return await read_json(request)


JsonBody = Annotated[Any, Depends(json_body)]


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _safe_next(target: str) -> str:
    # only our own paths: never an open redirect to another site
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.get("/login")
def login_page(request: Request, next: str = "/") -> Response:
    return page(request, "login.html", next=_safe_next(next), error="", name="")


@router.post("/login")
async def login(request: Request) -> Response:
    form = await verified_form(request)
    name, password = _text(form, "name").strip()[:MAX_NAME], _text(form, "password")[:1000]
    target = _safe_next(_text(form, "next"))
    # argon2 takes most of a second: in a worker thread, so other requests go on meanwhile
    result = await run_in_threadpool(attempt_login, request, name, password)
    if result.wait > 0:
        return page(request, "login.html", 429, next=target, name=name,
                    error=f"登录失败次数过多，请 {int(result.wait // 60) + 1} 分钟后再试。")
    if result.user is None:
        return page(request, "login.html", 401, next=target, name=name,
                    error="用户名或密码不正确。")
    return RedirectResponse(target, 303)


@router.post("/logout")
def logout(request: Request, user: Editor, _form: VerifiedForm) -> Response:
    with web(request).store.session() as session:
        audit(session, request, user, "logout")
        end_session(request.session, session)
    return RedirectResponse("/login", 303)


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() and len(text) < 10 else None


@router.get("/")
def queue(request: Request, user: Editor, scope: str = "waiting", state: str = "",
          unit: str = "", level: str = "", type: str = "", q: str = "") -> Response:
    web_state = web(request)
    scope = scope if scope in SCOPES else "waiting"
    with web_state.store.session() as session:
        mine = (tuple(review.stage_indexes(session, web_state.settings, user))
                if scope == "mine" else None)
        f = QueueFilter(scope=scope, state=state, unit=_int(unit), level=level, kind=type,
                        q=q[:100], page=_int(request.query_params.get("page", "1")) or 1,
                        stages=mine)
        result = queue_page(session, web_state.settings, web_state.now(), f)
        units = all_units(session)
    return page(request, "queue.html", user=user, f=f, result=result, units=units,
                scopes=SCOPES, kinds=web_state.settings.activity_types)


def draft_page(request: Request, user: str, draft_id: int, *, error: str = "",
               status: int = 200, markdown: str | None = None,
               problems: list[str] | None = None, conflict: bool = False) -> Response:
    state = web(request)
    with state.store.session() as session:
        data = detail(session, state.settings, draft_id, state.now())
        draft = review.get_draft(session, draft_id)
        photos = photos_of(session, draft)
        unit = session.get(Unit, draft.unit_id)
        may_sign = data["stage"] is not None and (not data["stage_signers"]
                                                  or user in data["stage_signers"])
        figures = story_figures(session, state.settings, draft_id)
        findings = open_findings(session, draft_id)
        blocking = [f for f in findings if f.kind in BLOCKING]
        saved = read_markdown(session, state.settings, draft_id)
    if markdown is None:
        markdown = saved
    return page(request, "draft.html", status, user=user, d=data, draft=draft, unit=unit,
                photos=photos, markdown=markdown, error=error, may_sign=may_sign,
                stages=[s.name for s in state.settings.review.stages],
                problems=problems if problems is not None else data["problems"],
                editable=draft.status in review.EDITABLE, figures=figures, findings=findings,
                blocking=blocking, marked=highlighted(saved, findings), conflict=conflict)


def highlighted(markdown: str, findings: list[Finding]) -> list[tuple[str, Finding | None]]:
    """The article's Markdown cut into plain runs and marked findings (no overlaps)."""
    parts: list[tuple[str, Finding | None]] = []
    at = 0
    for finding in sorted((f for f in findings if f.offset_start is not None),
                          key=lambda f: f.offset_start or 0):
        start, end = finding.offset_start or 0, finding.offset_end or 0
        if start < at or markdown[start:end] != finding.text:
            continue  # overlaps the previous one, or the text moved: listed, not marked
        parts += [(markdown[at:start], None), (finding.text, finding)]
        at = end
    parts.append((markdown[at:], None))
    return parts


@router.post("/drafts/{draft_id}/findings/{finding_id}/apply")
def apply(request: Request, user: Editor, draft_id: DraftId, finding_id: DraftId,
          _form: VerifiedForm) -> Response:
    state = web(request)
    try:
        with state.store.session() as session:
            apply_finding(session, state.settings, draft_id, finding_id, actor=user,
                          now=state.now())
            audit(session, request, user, "apply_finding", f"draft:{draft_id}",
                  {"finding": finding_id})
    except ReviewError as exc:
        return _refused(request, user, draft_id, exc)
    flash(request.session, "已采用校对建议，正文已修改并重新校对。")
    return RedirectResponse(f"/drafts/{draft_id}#proofread", 303)


@router.post("/drafts/{draft_id}/findings/{finding_id}/dismiss")
def dismiss(request: Request, user: Editor, draft_id: DraftId, finding_id: DraftId,
            form: VerifiedForm) -> Response:
    state, reason = web(request), _text(form, "reason")
    try:
        with state.store.session() as session:
            dismiss_finding(session, draft_id, finding_id, reason, actor=user, now=state.now())
            audit(session, request, user, "dismiss_finding", f"draft:{draft_id}",
                  {"finding": finding_id, "reason": reason})
    except ReviewError as exc:
        return _refused(request, user, draft_id, exc)
    flash(request.session, "已忽略该校对提示（理由已记录）。")
    return RedirectResponse(f"/drafts/{draft_id}#proofread", 303)


@router.get("/drafts/{draft_id}")
def show_draft(request: Request, user: Editor, draft_id: DraftId) -> Response:
    return draft_page(request, user, draft_id)


@router.get("/drafts/{draft_id}/files/{path:path}")
def draft_files(request: Request, user: Editor, draft_id: DraftId, path: str) -> Response:
    state = web(request)
    with state.store.session() as session:
        return draft_file(session, state.settings, draft_id, path)


def _refused(request: Request, user: str, draft_id: int, exc: PipelineError,
             markdown: str | None = None) -> Response:
    status = code_status(exc.code)
    if status == 404:
        raise AuthError(404, exc.text("zh_CN"))
    # The loser of an edit race keeps the text typed, and gets a link to the winner's version.
    return draft_page(request, user, draft_id, error=exc.text("zh_CN"), status=status,
                      markdown=markdown, conflict=isinstance(exc, EditConflict))


@router.post("/drafts/{draft_id}/action")
def act(request: Request, user: Editor, draft_id: DraftId, form: VerifiedForm) -> Response:
    state, action = web(request), _text(form, "action")
    if action not in ACTIONS:
        raise AuthError(400, "未知的操作。")
    note = _text(form, "note")
    try:
        with state.store.session() as session:
            # Each open privacy/banned finding must be ticked on the page, one by one.
            ticked = {value for key, value in form.multi_items() if key == "confirm"}
            confirmed = action == "approve" and all(
                str(f.id) in ticked for f in blocking_findings(session, draft_id))
            outcome = review.transition(session, state.settings, draft_id, action, actor=user,
                                        note=note, now=state.now(), remote=remote(request),
                                        confirm_findings=confirmed,
                                        stage=_text(form, "stage") or None)
            audit(session, request, user, action, f"draft:{draft_id}", {"note": note})
    except RaceLost as exc:  # another person acted first: say who and what, audit nothing
        flash(request.session, exc.text("zh_CN"), "warn" if exc.already_done else "error")
        return RedirectResponse("/mine" if _text(form, "next") == "/mine"
                                else f"/drafts/{draft_id}", 303)
    except ReviewError as exc:
        if _text(form, "next") == "/mine":
            flash(request.session, exc.text("zh_CN"), "error")
            return RedirectResponse("/mine", 303)
        return _refused(request, user, draft_id, exc)
    flash(request.session, _done(draft_id, action, outcome))
    # Only the leaders' phone page may be named as the place to go back to.
    return RedirectResponse("/mine" if _text(form, "next") == "/mine" else f"/drafts/{draft_id}",
                            303)


def _done(draft_id: int, action: str, outcome: review.Outcome) -> str:
    if outcome.signed:
        then = f"，等待{outcome.next_stage}" if outcome.next_stage else "，已通过，待推送"
        return f"稿件 {draft_id}：已签署{outcome.signed}{then}。"
    return (f"稿件 {draft_id}：{i18n.ACTION_LABELS[action]}，现为「"
            f"{i18n.status_label(outcome.to_status)}」。")


@router.post("/drafts/{draft_id}/edit")
def edit(request: Request, user: Editor, draft_id: DraftId, form: VerifiedForm) -> Response:
    state, markdown = web(request), _text(form, "markdown")
    try:
        with state.store.session() as session:
            seen = _int(_text(form, "version"))
            problems = review.edit(session, state.settings, draft_id, markdown, actor=user,
                                   now=state.now(), remote=remote(request),
                                   expected_version=seen if seen is not None else -1)
            audit(session, request, user, "edit", f"draft:{draft_id}",
                  {"problems": len(problems)})
    except ReviewError as exc:
        return _refused(request, user, draft_id, exc, markdown)
    flash(request.session, "正文已保存并重新排版。" if not problems
          else f"正文已保存，仍有 {len(problems)} 个问题需要处理。",
          "ok" if not problems else "warn")
    return RedirectResponse(f"/drafts/{draft_id}", 303)


@router.post("/drafts/{draft_id}/render")
def preview(request: Request, user: Editor, draft_id: DraftId, body: JsonBody) -> Response:
    """The live re-render while the editor types: nothing is saved."""
    check_csrf(request.session, request.headers.get("x-csrf-token"))
    markdown = body.get("markdown") if isinstance(body, dict) else None
    if not isinstance(markdown, str):
        raise AuthError(422, "缺少正文。")
    state = web(request)
    with state.store.session() as session:
        draft = review.get_draft(session, draft_id)
    # a plain def: a long article renders in the thread pool, never on the event loop
    article = rerender(markdown, draft.title, draft.author, draft.digest, state.settings)
    return JSONResponse({"ok": True, "html": article.html,
                         "problems": [text_of(p) for p in article.problems]})


@router.post("/drafts/{draft_id}/preview")
def preview_page(request: Request, user: Editor, draft_id: DraftId,
                 form: VerifiedForm) -> Response:
    """The edited text rendered into the preview frame (the live preview's target)."""
    state = web(request)
    with state.store.session() as session:
        draft = review.get_draft(session, draft_id)
    article = rerender(_text(form, "markdown"), draft.title, draft.author, draft.digest,
                       state.settings)
    # the saved article's photos are relative to its folder: point the base there
    head = f'<!DOCTYPE html><meta charset="utf-8"><base href="/drafts/{draft_id}/files/">'
    return HTMLResponse(head + article.html, headers={"Content-Security-Policy": PREVIEW_CSP})


@router.post("/drafts/{draft_id}/cover")
def cover(request: Request, user: Editor, draft_id: DraftId, form: VerifiedForm) -> Response:
    state, name = web(request), _text(form, "cover")
    try:
        with state.store.session() as session:
            review.set_cover(session, draft_id, name, actor=user, now=state.now())
            audit(session, request, user, "cover", f"draft:{draft_id}", {"cover": name})
    except PipelineError as exc:
        return _refused(request, user, draft_id, exc)
    flash(request.session, "封面已更换。")
    return RedirectResponse(f"/drafts/{draft_id}", 303)
