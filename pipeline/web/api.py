"""The JSON API under ``/api/``: the desk's operations for programs.

Editors authenticate with the same session cookie as the desk (``POST
/api/login``) and send its CSRF token in ``X-CSRF-Token`` on every POST.
Reporters use their unit's link token in the path. Every error has one shape,
``{"ok": false, "error": "...", "status": N}`` (see ``errors.error_body``).
Submissions accept an ``Idempotency-Key`` header: the same key returns the
same report id.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path as FsPath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from .. import lifecycle, review, units
from ..errors import RaceLost
from ..messages import text_of
from ..models import Unit
from ..proofread import apply_finding, dismiss_finding
from ..push import order as push_order
from ..push import run_push
from ..views import detail, iso, units_tree
from .auth import AuthError, check_csrf, end_session
from .bodies import body_schema, read_model
from .errors import ERROR_RESPONSES, FieldErrors
from .forms import FormCheck, save_encoded, validate
from .queries import SCOPES, QueueFilter, active_links, queue_page, unit_reports, week_numbers
from .reporter import idempotency_key, store_report, stored_under
from .state import (
    DraftId,
    WebState,
    attempt_login,
    audit,
    editor_of,
    remote,
    unit_of_link,
    web,
)

router = APIRouter(prefix="/api", responses=ERROR_RESPONSES)
Json = dict[str, Any]
UnitId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class LoginIn(Strict):
    name: str = Field(max_length=100)
    password: str = Field(max_length=1000)


class ActionIn(Strict):
    action: Literal["approve", "request_changes", "reject"]
    note: str = Field("", max_length=5000)
    confirm_findings: bool = Field(False, description="approve: confirm the open privacy "
                                   "and banned-word proofreading findings")
    stage: str | None = Field(None, max_length=40, description=(
        "approve: the review stage the signer means to sign (as shown). If someone signed "
        "it first the answer is ok with already_done and who signed it; if the draft was "
        "moved otherwise, a 409 saying who did what"))


class DismissIn(Strict):
    reason: str = Field(max_length=2000, min_length=1)


class MarkdownIn(Strict):
    markdown: str = Field(max_length=200_000)
    version: int | None = Field(None, ge=1, le=2**31 - 1, description=(
        "the draft's version the editor read; when someone saved since, nothing is saved "
        "and the answer is 409 with the new version"))


class CoverIn(Strict):
    cover: str = Field(max_length=200)


class OrderIn(Strict):
    order: list[int] = Field(max_length=1000)


class ConfirmIn(Strict):
    confirm: Literal[True]


class LinkIn(Strict):
    action: Literal["create", "regenerate", "revoke"]


class ReportIn(Strict):
    """A report as the form has it; times as ISO 8601 (without a zone: the account's).

    Any other key with a text value (举办单位, ...) is kept as a note for the editors and
    never published, as in report files; at most 20 of them. A key that looks like a
    misspelt field is refused with "did you mean"."""

    model_config = ConfigDict(extra="allow", strict=True)

    activity_type: str = Field(max_length=50, description="key or Chinese label")
    title: str = Field(max_length=200)
    start: str = Field(max_length=100)
    end: str | None = Field(None, max_length=100)
    place: str = Field(max_length=500)
    form: str = Field(max_length=200)
    participants: int | str | None = Field(
        None, description="as written: 120, 约260人, 志愿者18人，群众约200人, 4户")
    body: str = Field(max_length=50_000)
    links: list[str] = Field(default_factory=list, max_length=50)
    photos: list[str] = Field(default_factory=list, max_length=50,
                              description="JPEG or PNG files, base64-encoded")
    partners: list[str] = Field(default_factory=list, max_length=50,
                                description="合作单位: units the activity was held with")
    contact: str = Field("", max_length=200, description="for the editors; never published")
    notes: str = Field("", max_length=5000, description="for the editors; never published")


class ResubmitIn(Strict):
    markdown: str = Field(max_length=200_000)
    note: str = Field("", max_length=5000)


def api_editor(request: Request) -> str:
    return editor_of(request, 401)


def api_writer(request: Request, user: Annotated[str, Depends(api_editor)]) -> str:
    check_csrf(request.session, request.headers.get("x-csrf-token"))
    return user


Reader = Annotated[str, Depends(api_editor)]
Writer = Annotated[str, Depends(api_writer)]


def _chinese(messages: Iterable[str]) -> list[str]:
    """WeChat problems and render notes as the desk says them."""
    return [text_of(m) for m in messages]


def _review_call(request: Request, user: str, draft_id: int, action: str,
                 detail_: Json, call: Any) -> Json:
    state = web(request)
    with state.store.session() as session:
        result = call(session)
        audit(session, request, user, action, f"draft:{draft_id}", detail_)
    return {"ok": True, "result": result}


@router.post("/login")
def api_login(request: Request, body: LoginIn) -> Json:
    result = attempt_login(request, body.name.strip(), body.password)  # a sync route: a thread
    if result.wait > 0:
        raise AuthError(429, "登录失败次数过多，请稍后再试。")
    if result.user is None:
        raise AuthError(401, "用户名或密码不正确。")
    return {"ok": True, "user": result.user, "csrf_token": request.session["csrf"]}


@router.post("/logout")
def api_logout(request: Request, user: Writer) -> Json:
    with web(request).store.session() as session:
        audit(session, request, user, "logout")
        end_session(request.session, session)
    return {"ok": True}


@router.get("/queue")
def api_queue(request: Request, user: Reader, scope: str = "waiting", state: str = "",
              unit: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None, level: str = "",
              type: str = "", q: Annotated[str, Query(max_length=100)] = "",
              page: Annotated[int, Query(ge=1, le=10**6)] = 1) -> Json:
    s = web(request)
    f = QueueFilter(scope if scope in SCOPES else "waiting", state, unit, level, type, q, page)
    with s.store.session() as session:
        result = queue_page(session, s.settings, s.now(), f)
    return {"ok": True, "total": result.total, "page": result.page, "pages": result.pages,
            "counts": result.counts, "items": result.rows}


@router.get("/drafts/{draft_id}")
def api_draft(request: Request, user: Reader, draft_id: DraftId) -> Json:
    s = web(request)
    with s.store.session() as session:
        data = detail(session, s.settings, draft_id, s.now())
    for key in ("problems", "notes", "image_notes"):  # the API speaks Chinese
        data[key] = _chinese(data[key])
    return {"ok": True, "draft": data}


@router.post("/drafts/{draft_id}/actions")
def api_action(request: Request, user: Writer, draft_id: DraftId, body: ActionIn) -> Json:
    s = web(request)

    def call(session: Any) -> Json:
        out = review.transition(session, s.settings, draft_id, body.action, actor=user,
                                note=body.note, now=s.now(), remote=remote(request),
                                confirm_findings=body.confirm_findings, stage=body.stage)
        return {"id": out.draft_id, "from": out.from_status, "to": out.to_status,
                "signed": out.signed, "stage": out.next_stage}
    try:
        answer = _review_call(request, user, draft_id, body.action,
                              {"note": body.note, "confirm_findings": body.confirm_findings},
                              call)
    except RaceLost as exc:
        if not exc.already_done:
            raise  # a 409 with the code, the sentence and already_done: false
        # Someone signed the same stage first: what this signer wanted holds; no audit row.
        return {"ok": True, "already_done": True, "code": exc.code,
                "message": exc.text("zh_CN"), "result": None}
    return {**answer, "already_done": False}


@router.post("/drafts/{draft_id}/findings/{finding_id}/apply")
def api_apply_finding(request: Request, user: Writer, draft_id: DraftId,
                      finding_id: DraftId) -> Json:
    s = web(request)

    def call(session: Any) -> Json:
        return {"problems": _chinese(apply_finding(session, s.settings, draft_id,
                                                   finding_id, actor=user, now=s.now()))}
    return _review_call(request, user, draft_id, "apply_finding", {"finding": finding_id}, call)


@router.post("/drafts/{draft_id}/findings/{finding_id}/dismiss")
def api_dismiss_finding(request: Request, user: Writer, draft_id: DraftId,
                        finding_id: DraftId, body: DismissIn) -> Json:
    s = web(request)

    def call(session: Any) -> Json:
        dismiss_finding(session, draft_id, finding_id, body.reason, actor=user, now=s.now())
        return {"dismissed": finding_id}
    return _review_call(request, user, draft_id, "dismiss_finding",
                        {"finding": finding_id, "reason": body.reason}, call)


@router.post("/drafts/{draft_id}/markdown")
def api_edit(request: Request, user: Writer, draft_id: DraftId, body: MarkdownIn) -> Json:
    s = web(request)

    def call(session: Any) -> Json:
        return {"problems": _chinese(review.edit(session, s.settings, draft_id, body.markdown,
                                                 actor=user, now=s.now(), remote=remote(request),
                                                 expected_version=body.version))}
    return _review_call(request, user, draft_id, "edit", {}, call)


@router.post("/drafts/{draft_id}/cover")
def api_cover(request: Request, user: Writer, draft_id: DraftId, body: CoverIn) -> Json:
    s = web(request)

    def call(session: Any) -> Json:
        review.set_cover(session, draft_id, body.cover, actor=user, now=s.now())
        return {"cover": body.cover}
    return _review_call(request, user, draft_id, "cover", {"cover": body.cover}, call)


@router.get("/push")
def api_push_plan(request: Request, user: Reader) -> Json:
    from .desk_plan import push_plan

    p = push_plan(request)
    settings = web(request).settings

    def item(a: Any) -> Json:
        c = a.candidate
        return {"id": c.id, "title": c.title, "unit": c.unit, "position": a.position,
                "late": a.late, "deadline": iso(c.deadline, settings)}
    return {"ok": True, "at": iso(p["at"], settings), "articles": [item(a) for a in p["chosen"]],
            "left_over": [item(a) for a in p["left"]]}


@router.post("/push/order")
def api_push_order(request: Request, user: Writer, body: OrderIn) -> Json:
    s = web(request)
    with s.store.session() as session:
        order = push_order.set_push_order(session, body.order, s.now())
        audit(session, request, user, "push_order", "push", {"order": order})
    return {"ok": True, "order": order}


@router.post("/push/run")
def api_push_run(request: Request, user: Writer, body: ConfirmIn) -> Json:
    from .desk_plan import push_answer

    s = web(request)
    report = run_push(s.store, s.settings, s.now())
    if not report.done_elsewhere:  # one audit row per push: the loser of a race writes none
        with s.store.session() as session:
            audit(session, request, user, "push_now", f"push:{report.day}")
    return {"ok": True, "date": report.day.isoformat(),
            "already_done": report.already_done or report.done_elsewhere,
            "message": push_answer(report),
            "articles": [a.candidate.id for a in report.articles],
            "left_over": [a.candidate.id for a in report.left_over]}


@router.get("/units")
def api_units(request: Request, user: Reader) -> Json:
    s = web(request)
    with s.store.session() as session:
        rows, links = units_tree(session, s.now()), active_links(session)
        week = week_numbers(session, s.settings, s.now())
    for row in rows:
        link = links.get(row["id"])
        # only the hash is kept: the link itself was shown once, when it was made
        row["link_created_at"] = iso(link.created_at, s.settings) if link else None
        row["this_week"] = week.get(row["id"], {"received": 0, "published": 0, "late": 0})
    return {"ok": True, "units": rows}


@router.post("/units/{unit_id}/link")
def api_unit_link(request: Request, user: Writer, unit_id: UnitId, body: LinkIn) -> Json:
    s = web(request)
    with s.store.session() as session:
        if session.get(Unit, unit_id) is None:
            raise AuthError(404, "没有这个单位。")
        if body.action == "revoke":
            units.revoke_links(session, unit_id, s.now())
            path = None
        else:
            link = units.create_link(session, unit_id, actor=user, now=s.now(),
                                       replace=body.action == "regenerate")
            path = f"/r/{link.token}"
        audit(session, request, user, f"link_{body.action}", f"unit:{unit_id}")
    return {"ok": True, "link": path}


# --- reporters -------------------------------------------------------------------------

@router.get("/r/{token}/reports")
def api_unit_reports(request: Request, token: str) -> Json:
    s = web(request)
    with s.store.session() as session:
        _, unit = unit_of_link(session, token)
        return {"ok": True, "unit": unit.name,
                "reports": unit_reports(session, s.settings, unit, s.now())}


def _link_unit(s: WebState, token: str) -> Unit:
    with s.store.session() as session:
        return unit_of_link(session, token)[1]


@router.post("/r/{token}/reports", status_code=201, openapi_extra=body_schema(ReportIn))
async def api_submit(request: Request, token: str,
                     idempotency_key_: Annotated[str | None, Header(alias="Idempotency-Key",
                                                                    max_length=100)] = None
                     ) -> JSONResponse:
    s = web(request)
    # the link first: nobody without one gets the body read, let alone parsed
    unit = await run_in_threadpool(_link_unit, s, token)
    body = await read_model(request, ReportIn)
    return await run_in_threadpool(_submit, request, s, unit, body, idempotency_key_ or "")


def _submit(request: Request, s: WebState, unit: Unit, body: ReportIn,
            client_key: str) -> JSONResponse:
    """Store the report (photo decoding and checks included: in a worker thread)."""
    with s.store.session() as session:
        key = idempotency_key(unit, client_key)
        earlier = stored_under(session, key)
    if earlier is None:
        values = {k: v for k, v in body.model_dump().items()
                  if k != "photos" and k not in (body.model_extra or {})}
        values.update(_extra_fields(body.model_extra or {}))
        values["links"] = "\n".join(body.links)
        values["partners"] = "、".join(body.partners)
        values["participants"] = "" if body.participants is None else str(body.participants)
        check = FormCheck({k: "" if v is None else str(v) for k, v in values.items()})
        with tempfile.TemporaryDirectory(prefix="pipeline-upload-") as tmp:
            names = save_encoded(body.photos, FsPath(tmp), s.settings.limits, check)
            validate(check, names, unit.name, s.settings, s.now(), FsPath(tmp), "API",
                     strict_keys=True)
            if check.report is None:
                raise FieldErrors(check.errors)
            earlier = store_report(s, request, check, unit, key, f"reporter:{unit.name}")
    return JSONResponse({"ok": True, "id": earlier.id, "duplicate": earlier.duplicate,
                         "deadline": iso(earlier.deadline, s.settings)},
                        status_code=200 if earlier.duplicate else 201)


MAX_EXTRA_FIELDS = 20


def _extra_fields(extra: dict[str, Any]) -> dict[str, str]:
    """Keys the schema does not name, as text for intake to keep as notes (or refuse
    when they look like a misspelt field).

    Raises:
        FieldErrors: too many of them, or one is not text.
    """
    if len(extra) > MAX_EXTRA_FIELDS:
        raise FieldErrors({"report": [f"报告有 {len(extra)} 个未知字段，最多 "
                                      f"{MAX_EXTRA_FIELDS} 个；请只提交报告的内容"]})
    bad = [k for k, v in extra.items() if not isinstance(v, str | int | float)
           or isinstance(v, bool) or len(str(k)) > 50 or len(str(v)) > 5000]
    if bad:
        raise FieldErrors({k: ["未知字段的值必须是不超过 5000 字的文字"] for k in bad[:20]})
    return {str(k): str(v) for k, v in extra.items()}


@router.get("/r/{token}/reports/{draft_id}")
def api_unit_report(request: Request, token: str, draft_id: DraftId) -> Json:
    s = web(request)
    with s.store.session() as session:
        data = _own_report(session, s, token, draft_id)
    return {"ok": True, "draft": data}


def _own_report(session: Session, s: WebState, token: str, draft_id: int) -> dict[str, Any]:
    """A draft of the link's own unit; any other unit's is "not found" (never "forbidden",
    which would confirm that it exists)."""
    _, unit = unit_of_link(session, token)
    data = detail(session, s.settings, draft_id, s.now())
    if data is None or data["unit"] != unit.name:
        raise AuthError(404, "没有找到这篇报告。")
    return data


@router.post("/r/{token}/reports/{draft_id}/resubmit", openapi_extra=body_schema(ResubmitIn))
async def api_resubmit(request: Request, token: str, draft_id: DraftId) -> Json:
    s = web(request)
    await run_in_threadpool(_link_unit, s, token)
    body = await read_model(request, ResubmitIn)
    return await run_in_threadpool(_resubmit, request, s, token, draft_id, body)


def _resubmit(request: Request, s: WebState, token: str, draft_id: int,
              body: ResubmitIn) -> Json:
    with s.store.session() as session:
        data = _own_report(session, s, token, draft_id)
        if data["status"] not in review.RESUBMITTABLE:
            raise lifecycle.refusal(lifecycle.DRAFT, draft_id, data["status"], "resubmit")
        actor = f"reporter:{data['unit']}"
        problems = review.edit(session, s.settings, draft_id, body.markdown, actor=actor,
                               now=s.now())
        review.transition(session, s.settings, draft_id, "resubmit", actor=actor,
                          note=body.note, now=s.now(), remote=remote(request))
        audit(session, request, actor, "resubmit", f"draft:{draft_id}")
    return {"ok": True, "id": draft_id, "problems": _chinese(problems)}

