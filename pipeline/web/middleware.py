"""ASGI middleware: the request size limit (413 before any parsing) and the
security headers every answer carries."""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS = {
    # Pages load only our own scripts and styles; the article preview has its own policy.
    "content-security-policy": ("default-src 'self'; img-src 'self' data:; "
                                "style-src 'self'; script-src 'self'; frame-src 'self'; "
                                "frame-ancestors 'self'; form-action 'self'; base-uri 'none'"),
    "x-content-type-options": "nosniff",
    "x-frame-options": "SAMEORIGIN",
    "referrer-policy": "same-origin",
}


class TooLarge(HTTPException):
    """The body grew past the limit while being read; an HTTPException, so the
    framework answers it (FastAPI re-raises those from body parsing, not 400s)."""

    def __init__(self) -> None:
        super().__init__(413)


class BodyLimit:
    """Refuse bodies over the limit: by Content-Length before reading, and by
    counting while reading when the client streams without one."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _refuse(scope, send, limit)
            return
        received, started = 0, False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise TooLarge
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except TooLarge:
            if not started:
                await _refuse(scope, send, limit)


async def _refuse(scope: Scope, send: Send, limit: int) -> None:
    megabytes = f"{limit / 2**20:g} MB"
    message = f"提交的内容太大（上限 {megabytes}）。请减少或压缩图片后再试。"
    if scope["path"].startswith("/api/"):
        body = json.dumps({"ok": False, "error": message, "status": 413},
                          ensure_ascii=False).encode()
        kind = b"application/json"
    else:
        body = (f"<!DOCTYPE html><html lang=\"zh-CN\"><meta charset=\"utf-8\"><title>内容太大"
                f"</title><p>{message}</p><p><a href=\"javascript:history.back()\">返回</a>"
                "</p></html>").encode()
        kind = b"text/html; charset=utf-8"
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    """Add the security headers unless a handler set its own (the article preview does)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()
                            if k.encode() not in present]
                if scope["path"].startswith(("/r/", "/api/r/")):
                    # a reporter's page URL is the unit's secret: never leak it onward
                    headers = [(k, v) for k, v in headers if k.lower() != b"referrer-policy"]
                    headers.append((b"referrer-policy", b"no-referrer"))
                if b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)
