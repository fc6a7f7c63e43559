"""WeChat's message push endpoint: publishing results delivered by WeChat itself.

WeChat calls the account's server URL; the server token (from the environment
variable named by ``wechat.push_token_env``) signs every call. GET answers the
URL check with ``echostr``; POST stores PUBLISHJOBFINISH / MASSSENDJOBFINISH in
the inbox the reconciler reads. WeChat wants an answer within 5 seconds and
retries three times, so the handler only verifies, stores and answers "success".
"""

from __future__ import annotations

import os

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from ..errors import PublishError
from ..publish.wechat import record_event
from ..wechat.events import parse_event, signature_ok
from .state import web

router = APIRouter(include_in_schema=False)


def _verified(request: Request) -> bool:
    token = os.environ.get(web(request).settings.wechat.push_token_env, "")
    q = request.query_params
    return bool(token) and signature_ok(token, q.get("signature", ""), q.get("timestamp", ""),
                                        q.get("nonce", ""))


@router.get("/wechat/push")
def confirm_url(request: Request) -> PlainTextResponse:
    if not _verified(request):
        return PlainTextResponse("bad signature", status_code=403)
    return PlainTextResponse(request.query_params.get("echostr", ""))


@router.post("/wechat/push")
async def receive(request: Request) -> PlainTextResponse:
    if not _verified(request):
        return PlainTextResponse("bad signature", status_code=403)
    body = await request.body()
    try:
        event = parse_event(body)
    except PublishError as exc:
        return PlainTextResponse(str(exc), status_code=400)
    if event is not None:
        state = web(request)
        await run_in_threadpool(record_event, state.store, event.event, event.ref,
                                event.status, event.article_id, event.urls,
                                body.decode("utf-8", "replace"), state.now())
    return PlainTextResponse("success")
