"""Request bodies: how large each route's may be, and JSON read without surprises.

Limits are per route, to what the route needs, and are enforced by ``BodyLimit``
before anything is parsed (by Content-Length, and by counting while streaming).
JSON is parsed in a worker thread after a cheap count of its containers, so a
body of a million ``{}`` cannot cost gigabytes; a malformed body is a 400 with a
sentence, never a 500.
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from ..config import Limits
from .auth import AuthError

KB = 1024
REPORT_JSON = 256 * KB      # a report's fields as JSON (photos come on top, base64)
EDITOR_JSON = 64 * KB       # the desk's and the API's JSON bodies
FORM = 1024 * KB            # the desk's forms (an edited article, URL-encoded)
SMALL = 64 * KB             # login, WeChat's event pushes
MAX_CONTAINERS = 10_000     # objects and arrays in one JSON body

_REPORT_FORM = re.compile(r"/r/[^/]+")
_REPORT_API = re.compile(r"/api/r/[^/]+/reports(/\d+/resubmit)?")

M = TypeVar("M", bound=BaseModel)


def photo_bytes(limits: Limits) -> int:
    return limits.photos_per_report * limits.photo_bytes


def body_limit(limits: Limits, path: str) -> int:
    """The largest body this path accepts."""
    if _REPORT_FORM.fullmatch(path):
        return photo_bytes(limits) + FORM          # the form with its photos (multipart)
    if _REPORT_API.fullmatch(path):
        return REPORT_JSON + photo_bytes(limits) * 4 // 3 + KB  # base64 photos
    if path in ("/login", "/api/login", "/wechat/push"):
        return SMALL
    if path.startswith("/api/") or path.endswith("/render") or path == "/push/order":
        return EDITOR_JSON
    return FORM


def _loads(raw: bytes) -> Any:
    if raw.count(b"{") + raw.count(b"[") > MAX_CONTAINERS:
        raise AuthError(413, f"提交的 JSON 结构过于复杂（对象和数组超过 {MAX_CONTAINERS} 个）。")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise AuthError(400, "提交的内容不是有效的 JSON。") from None


async def read_json(request: Request) -> Any:
    """The request's JSON body (after the size limit), parsed off the event loop.

    Raises:
        AuthError: 400 for malformed JSON, 413 for one with too many containers.
    """
    raw = await request.body()
    return await run_in_threadpool(_loads, raw)


def _validate(model: type[M], raw: bytes) -> M:
    data = _loads(raw)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        # the first problems only (the handler caps them too): the answer stays small
        errors = [dict(e, loc=("body", *e["loc"])) for e in exc.errors(include_url=False)[:20]]
        raise RequestValidationError(errors) from None


async def read_model(request: Request, model: type[M]) -> M:
    """The body validated into ``model``; for routes that must check something (a
    reporter's link) before the body is read at all."""
    raw = await request.body()
    return await run_in_threadpool(_validate, model, raw)


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads ``model`` itself."""
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": model.model_json_schema()}}}}
