"""One place that turns failures into answers: the API's single error shape
``{"ok": false, "error": "...", "status": N}`` and the pages' Chinese error page.

Pipeline errors are translated here (the web layer's boundary); anything else
is a bug and is logged with its traceback before a plain 500 goes out.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import EditConflict, PipelineError, RaceLost, StoreError
from ..messages import status as code_status
from .auth import AuthError
from .state import page

log = logging.getLogger(__name__)

HTTP_WORDS = {400: "请求有误。", 401: "请先登录。", 403: "没有权限。", 404: "页面不存在。",
              405: "不支持此请求方式。", 409: "操作与当前状态冲突。", 413: "提交的内容太大。",
              422: "提交的内容有误。", 429: "请求太频繁，请稍后再试。", 500: "服务器出错了。",
              503: "服务暂时不可用，请稍后再试。"}


MAX_PROBLEMS = 20
# Seconds: a busy database usually has a free connection again by then; a client that
# finds it still restarting is told the same again.
RETRY_AFTER = 5
POOL_BUSY = "系统繁忙（数据库连接已满），请稍后再试；您的操作没有保存，请稍后重新提交。"


class ErrorBody(BaseModel):
    ok: bool = False
    error: str
    status: int
    code: str | None = None      # the error vocabulary's code, e.g. store.unavailable
    message: str | None = None   # the code's Chinese sentence (the same as ``error``)
    fields: dict[str, list[str]] | None = None
    version: int | None = None   # an edit conflict: the version now committed ...
    latest: str | None = None    # ... and where to read it
    already_done: bool | None = None  # a lost race: whether the row stands as asked anyway
    page: str | None = None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": HTTP_WORDS[code]}
    for code in (400, 401, 403, 404, 409, 413, 422, 429, 503)}


class FieldErrors(Exception):
    """A report failed validation: Chinese messages per field."""

    def __init__(self, fields: Mapping[str, Sequence[str]]) -> None:
        super().__init__("invalid report")
        self.fields = {k: list(v) for k, v in fields.items()}


def error_body(status: int, message: str, **extra: Any) -> dict[str, Any]:
    """The one JSON error shape; a coded error carries its code and Chinese ``message``."""
    body = {"ok": False, "error": message, "status": status, **extra}
    if body.get("code"):
        body["message"] = message
    return body


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/api"


def _answer(request: Request, status: int, message: str, *,
            headers: Mapping[str, str] | None = None, **extra: Any) -> Response:
    if _is_api(request):
        return JSONResponse(error_body(status, message, **extra), status_code=status,
                            headers=dict(headers or {}))
    if status in (303, 401) and not request.url.path.startswith("/r/"):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={_quote(target)}", 303)
    return page(request, "error.html", status, headers, message=message, code=status)


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")


def install(app: FastAPI) -> None:
    """Register the handlers that give every failure its answer."""

    async def on_auth(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, AuthError)
        return _answer(request, exc.status, exc.message)

    async def on_fields(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, FieldErrors)
        first = next(iter(exc.fields.values()), ["提交的内容有误。"])[0]
        return _answer(request, 422, first, fields=exc.fields)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        fields: dict[str, list[str]] = {}
        # the first problems only: 90,000 unknown keys must not make a 5 MB answer
        for error in list(exc.errors())[:MAX_PROBLEMS]:
            where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "request"
            fields.setdefault(where, []).append(str(error.get("msg", "")))
        return _answer(request, 422, "请求格式不正确：" + "；".join(fields), fields=fields)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return _answer(request, exc.status_code, HTTP_WORDS.get(exc.status_code, str(exc.detail)))

    async def on_store(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StoreError)
        log.warning("request %s: %s", request.url.path, exc)  # one line, no traceback
        answer = _answer(request, 503, exc.text("zh_CN"), code=exc.code or "store.unavailable")
        answer.headers["Retry-After"] = str(RETRY_AFTER)
        return answer

    async def on_pipeline(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PipelineError)
        if isinstance(exc, EditConflict):  # the loser of an edit race: where the new text is
            return _answer(request, 409, exc.text("zh_CN"), code=exc.code, version=exc.version,
                           latest=f"/api/drafts/{exc.draft_id}",
                           page=f"/drafts/{exc.draft_id}")
        if isinstance(exc, RaceLost):  # the loser of a race: who did what first
            return _answer(request, code_status(exc.code), exc.text("zh_CN"), code=exc.code,
                           already_done=exc.already_done)
        if exc.code:
            log.warning("request %s failed: %s", request.url.path, exc)
            return _answer(request, code_status(exc.code), exc.text("zh_CN"), code=exc.code)
        message = str(exc)
        log.warning("request %s failed: %s", request.url.path, message)
        return _answer(request, 409, f"操作未完成（{message}）")

    async def on_database(request: Request, exc: Exception) -> Response:
        # No connection within pool_timeout (our pool or the server's slots), or the
        # database is unreachable: the transaction rolled back whole, so nothing is
        # half-written and the request may simply be sent again.
        log.warning("request %s: no database connection (%s)", request.url.path,
                    str(getattr(exc, "orig", None) or exc).splitlines()[0])
        return _answer(request, 503, POOL_BUSY,
                       headers={"Retry-After": str(RETRY_AFTER)})

    async def on_bug(request: Request, exc: Exception) -> Response:
        log.error("unhandled error on %s", request.url.path, exc_info=exc)
        return _answer(request, 500, HTTP_WORDS[500])

    app.add_exception_handler(AuthError, on_auth)
    app.add_exception_handler(FieldErrors, on_fields)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(StoreError, on_store)
    app.add_exception_handler(PipelineError, on_pipeline)
    app.add_exception_handler(sa_exc.TimeoutError, on_database)
    app.add_exception_handler(sa_exc.OperationalError, on_database)
    app.add_exception_handler(Exception, on_bug)
