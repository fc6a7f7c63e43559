"""The reporters' pages behind a unit's secret link: ``/r/<token>``.

No account: the link is the credential, checked on every request (a revoked
link stops at once) and it only ever sees and submits for its own unit; any
other unit's draft answers 404. Submissions go through intake and
``DraftMaker`` like report files; corrections through ``review.edit`` and
``review.transition("resubmit")`` like the CLI.
"""

from __future__ import annotations

import secrets
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from .. import lifecycle, review
from ..domain import DraftStatus
from ..drafts import DraftMaker, add_photos, read_markdown
from ..errors import ReviewError, SubmissionError
from ..intake.attachments import check_photo
from ..messages import status as code_status
from ..models import Draft, Submission, Unit
from ..views import detail
from .auth import AuthError, check_csrf
from .files import draft_file
from .forms import FormCheck, form_fields, form_values, save_uploads, validate
from .queries import unit_reports
from .state import DraftId, WebState, audit, page, remote, unit_of_link, web

router = APIRouter(include_in_schema=False)
FORM_LIMITS = {"max_fields": 60, "max_part_size": 1024 * 1024}


@dataclass(frozen=True)
class Stored:
    id: int
    deadline: datetime
    duplicate: bool


def idempotency_key(unit: Unit, client_key: str) -> str | None:
    """Scoped to the unit, so one unit's key can never reveal another unit's report."""
    client_key = client_key.strip()
    return f"unit{unit.id}:{client_key}" if client_key and len(client_key) <= 100 else None


def stored_under(session: Session, key: str | None) -> Stored | None:
    """The report already stored under this idempotency key, if any."""
    if key is None:
        return None
    row = session.exec(select(Draft.id, Draft.deadline)
                       .join(Submission, col(Submission.id) == col(Draft.submission_id))
                       .where(Submission.idempotency_key == key)).first()
    return Stored(row[0], row[1], True) if row and row[0] is not None else None


def store_report(state: WebState, request: Request, check: FormCheck, unit: Unit,
                 key: str | None, actor: str) -> Stored:
    """Commit the report (and its draft) before anyone is told it was accepted.

    Raises:
        PipelineError: the draft's files could not be stored.
    """
    assert check.report is not None
    maker, now = DraftMaker(state.settings), state.now()
    outcome = None
    try:
        with state.store.session() as session:
            outcome = maker.submit(session, [check.report], now, actor=actor,
                                   idempotency_key=key)
            if outcome.rejected:
                raise outcome.rejected[0].as_error()
            stored = _stored(session, outcome)
            audit(session, request, actor, "duplicate" if stored.duplicate else "submit",
                  f"draft:{stored.id}", {"unit": unit.name, "key": key})
    except BaseException:
        if outcome is not None:
            maker.discard(outcome.accepted)  # the rows were rolled back: drop the files too
        raise
    return stored


def _stored(session: Session, outcome: object) -> Stored:
    accepted = getattr(outcome, "accepted", [])
    if accepted:
        return Stored(accepted[0].id, accepted[0].deadline, False)
    duplicate = outcome.duplicates[0]  # type: ignore[attr-defined]
    draft = review.get_draft(session, duplicate.id)
    return Stored(duplicate.id, draft.deadline, True)


def _link(request: Request, token: str) -> Unit:
    with web(request).store.session() as session:
        return unit_of_link(session, token)[1]


def _form_page(request: Request, token: str, unit: Unit, check: FormCheck | None = None,
               status: int = 200) -> Response:
    state = web(request)
    return page(request, "r_form.html", status, headers={"Referrer-Policy": "no-referrer"},
                token=token, unit=unit, fields=form_fields(state.settings),
                kinds=state.settings.activity_types, check=check or FormCheck({}),
                key=secrets.token_urlsafe(16), limits=state.settings.limits)


@router.get("/r/{token}")
def report_form(request: Request, token: str) -> Response:
    return _form_page(request, token, _link(request, token))


@router.post("/r/{token}")
async def submit_form(request: Request, token: str) -> Response:
    # Only reading the body and streaming the photos happen on the event loop; the
    # database and the render run in the thread pool, so other requests never wait.
    limits = web(request).settings.limits
    form = await request.form(max_files=limits.photos_per_report + 1, **FORM_LIMITS)
    check_csrf(request.session, form.get("csrf_token"))
    check = FormCheck(form_values(form))
    with tempfile.TemporaryDirectory(prefix="pipeline-upload-") as tmp:
        folder = Path(tmp)
        names = await save_uploads(form.getlist("photos"), folder, limits, check)
        return await run_in_threadpool(_store_form, request, token, form, check, names, folder)


def _store_form(request: Request, token: str, form: FormData, check: FormCheck,
                names: list[str], folder: Path) -> Response:
    state, unit = web(request), _link(request, token)
    key = idempotency_key(unit, str(form.get("idempotency_key") or ""))
    with state.store.session() as session:
        earlier = stored_under(session, key)
    if earlier is not None:  # a double tap or a retried upload: same report
        return RedirectResponse(f"/r/{token}/done/{earlier.id}", 303)
    validate(check, names, unit.name, state.settings, state.now(), folder, "网页表单")
    if check.report is None:
        return _form_page(request, token, unit, check, 422)
    stored = store_report(state, request, check, unit, key, f"reporter:{unit.name}")
    return RedirectResponse(f"/r/{token}/done/{stored.id}", 303)


def _own_draft(session: Session, unit: Unit, draft_id: int) -> Draft:
    draft = session.get(Draft, draft_id)
    if draft is None or draft.unit_id != unit.id:
        raise AuthError(404, "没有找到这篇报告。")
    return draft


@router.get("/r/{token}/done/{draft_id}")
def confirmation(request: Request, token: str, draft_id: DraftId) -> Response:
    unit = _link(request, token)
    with web(request).store.session() as session:
        draft = _own_draft(session, unit, draft_id)
    return page(request, "r_done.html", token=token, unit=unit, draft=draft)


@router.get("/r/{token}/reports")
def own_reports(request: Request, token: str) -> Response:
    state, unit = web(request), _link(request, token)
    with state.store.session() as session:
        rows = unit_reports(session, state.settings, unit, state.now())
    return page(request, "r_reports.html", token=token, unit=unit, rows=rows)


@router.get("/r/{token}/reports/{draft_id}")
def own_report(request: Request, token: str, draft_id: DraftId) -> Response:
    return _report_page(request, token, draft_id)


def _report_page(request: Request, token: str, draft_id: int, error: str = "",
                 status: int = 200, markdown: str | None = None) -> Response:
    state, unit = web(request), _link(request, token)
    with state.store.session() as session:
        _own_draft(session, unit, draft_id)
        data = detail(session, state.settings, draft_id, state.now())
        if markdown is None:
            markdown = read_markdown(session, state.settings, draft_id)
    notes = [e for e in data["history"] if e["action"] in ("request_changes", "reject")]
    return page(request, "r_report.html", status, token=token, unit=unit, d=data,
                notes=notes, markdown=markdown, error=error,
                can_fix=data["status"] == DraftStatus.CHANGES_REQUESTED)


@router.get("/r/{token}/reports/{draft_id}/files/{path:path}")
def own_file(request: Request, token: str, draft_id: DraftId, path: str) -> Response:
    unit = _link(request, token)
    with web(request).store.session() as session:
        _own_draft(session, unit, draft_id)
        return draft_file(session, web(request).settings, draft_id, path)


@router.post("/r/{token}/reports/{draft_id}/resubmit")
async def resubmit(request: Request, token: str, draft_id: DraftId) -> Response:
    # Reading the body and streaming the photos on the event loop; the rest in the pool.
    limits = web(request).settings.limits
    form = await request.form(max_files=limits.photos_per_report + 1, **FORM_LIMITS)
    check_csrf(request.session, form.get("csrf_token"))
    with tempfile.TemporaryDirectory(prefix="pipeline-upload-") as tmp:
        # An editor's "请补充活动照片" must be answerable: the correction takes photos too.
        check = FormCheck({})
        names = await save_uploads(form.getlist("photos"), Path(tmp), limits, check)
        return await run_in_threadpool(_resubmit, request, token, draft_id, form, check,
                                       [Path(tmp) / name for name in names])


def _resubmit(request: Request, token: str, draft_id: int, form: FormData, check: FormCheck,
              uploads: list[Path]) -> Response:
    state, unit = web(request), _link(request, token)
    markdown, note = str(form.get("markdown") or ""), str(form.get("note") or "")
    actor = f"reporter:{unit.name}"
    try:
        photos = [check_photo(path, state.settings.limits) for path in uploads]
        if check.errors:
            raise SubmissionError(next(iter(check.errors.values()))[0], field="photos")
        with state.store.session() as session:
            draft = _own_draft(session, unit, draft_id)
            if draft.status not in review.RESUBMITTABLE:
                # checked before editing: the edit rewrites the draft's files at once
                raise lifecycle.refusal(lifecycle.DRAFT, draft_id, draft.status, "resubmit")
            markdown += add_photos(session, state.settings, draft, photos)
            review.edit(session, state.settings, draft_id, markdown, actor=actor,
                        now=state.now())
            review.transition(session, state.settings, draft_id, "resubmit", actor=actor,
                              note=note, now=state.now(), remote=remote(request))
            audit(session, request, actor, "resubmit", f"draft:{draft_id}")
    except SubmissionError as exc:
        return _report_page(request, token, draft_id, exc.text("zh_CN"), 422, markdown)
    except ReviewError as exc:
        return _report_page(request, token, draft_id, exc.text("zh_CN"),
                            code_status(exc.code), markdown)
    return RedirectResponse(f"/r/{token}/reports/{draft_id}", 303)
