"""WeChat's error codes: what each means to a person, and what the caller should do.

``classify`` maps a code to an ``ErrorKind``; the builders turn answers and transport
failures into ``WeChatAPIError`` with a sentence a person can act on.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Mapping
from typing import Any

import requests
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError

from pipeline.errors import ErrorKind, WeChatAPIError
from pipeline.messages import message, render

TOKEN_CODES = frozenset({40001, 40014, 42001})
TOKEN_ENDPOINTS = frozenset({"stable_token", "token"})
# Calls that change nothing at WeChat; every other endpoint counts as a write.
READ_ENDPOINTS = frozenset({
    "stable_token", "token", "draft/get", "draft/count", "draft/batchget", "freepublish/get",
    "freepublish/batchget", "freepublish/getarticle", "message/mass/get",
    *(f"datacube/{name}" for name in (
        "getarticletotaldetail", "getarticleread", "getbizsummary", "getarticlesummary",
        "getarticletotal", "getusersummary", "getusercumulate")),
})
NOT_READY = 61503  # analytics: the day's figures are not ready yet (look again later)

_KINDS: dict[int, ErrorKind] = {
    45011: ErrorKind.RETRY, 45066: ErrorKind.RETRY, 53501: ErrorKind.RETRY,
    45009: ErrorKind.DEFER, 45028: ErrorKind.DEFER,
    89503: ErrorKind.DEFER, 89506: ErrorKind.DEFER, 89507: ErrorKind.DEFER,
    45065: ErrorKind.AMBIGUOUS,
}

# Each code's sentence lives in the message catalogues (pipeline/locale), under the code
# named here; codes that need the same advice share one sentence.
_CODES: dict[int, str] = {
    40164: "wechat.e.whitelist", 61004: "wechat.e.whitelist", 40125: "wechat.e.secret",
    40013: "wechat.e.40013", 41002: "wechat.e.41002", 41004: "wechat.e.41004",
    40243: "wechat.e.40243", 50004: "wechat.e.50004", 50007: "wechat.e.50007",
    89503: "wechat.e.89503", 89506: "wechat.e.89506", 89507: "wechat.e.89507",
    40001: "wechat.e.40001", 40014: "wechat.e.40014", 42001: "wechat.e.42001",
    41001: "wechat.e.41001", 43001: "wechat.e.bug", 43002: "wechat.e.bug",
    44002: "wechat.e.bug", 47001: "wechat.e.bug", 40097: "wechat.e.bug", 40002: "wechat.e.bug",
    40033: "wechat.e.40033", 44003: "wechat.e.44003", 45002: "wechat.e.45002",
    45003: "wechat.e.45003", 45004: "wechat.e.45004", 45110: "wechat.e.45110",
    45008: "wechat.e.45008", 40004: "wechat.e.40004", 40005: "wechat.e.40005",
    40009: "wechat.e.40009", 40012: "wechat.e.40012", 40007: "wechat.e.40007",
    41039: "wechat.e.41039", 40114: "wechat.e.40114", 45166: "wechat.e.45166",
    53402: "wechat.e.53402", 88000: "wechat.e.88000", 45009: "wechat.e.45009",
    45011: "wechat.e.45011", 45028: "wechat.e.45028", 45065: "wechat.e.45065",
    45066: "wechat.e.45066", 48001: "wechat.e.48001", 48004: "wechat.e.48004",
    50002: "wechat.e.50002", 53500: "wechat.e.53500", 53501: "wechat.e.53501",
    53502: "wechat.e.53502", 53503: "wechat.e.53503", 53504: "wechat.e.53504",
    53505: "wechat.e.53505", 53600: "wechat.e.53600", 61500: "wechat.e.61500",
    61501: "wechat.e.61501", 61503: "wechat.e.61503",
}

_THEN = {ErrorKind.RETRY: message("wechat.then_retry"),
         ErrorKind.AMBIGUOUS: message("wechat.then_reconcile")}
_TOKEN_IN_URL = re.compile(r"access_token=[^&\s'\"]+")


def classify(errcode: int, endpoint: str) -> ErrorKind:
    """The kind of an error answer ``errcode`` from ``endpoint`` ('draft/add', ...)."""
    if endpoint in TOKEN_ENDPOINTS:
        # here 40001 means a wrong AppSecret: fetching again cannot help
        return ErrorKind.RETRY if errcode == -1 else _KINDS.get(errcode, ErrorKind.FINAL)
    if errcode in TOKEN_CODES:
        return ErrorKind.TOKEN
    if errcode == -1:
        # -1 "system busy" may come after the work was done, so on a write it is ambiguous
        return ErrorKind.RETRY if endpoint in READ_ENDPOINTS else ErrorKind.AMBIGUOUS
    return _KINDS.get(errcode, ErrorKind.FINAL)


def _error(code: str, kind: ErrorKind, where: str, errcode: int | None = None,
           errmsg: str = "", cls: type[WeChatAPIError] = WeChatAPIError, **params: Any
           ) -> WeChatAPIError:
    """A coded WeChatAPIError: English as its str (logs), the catalogue's words for people;
    ``where`` is the endpoint called."""
    error = cls(render(code, "en", **params), kind=kind, endpoint=where, errcode=errcode,
                errmsg=errmsg)
    error.code, error.params = code, params
    return error


def _then(kind: ErrorKind) -> dict[str, Any] | str:
    return _THEN.get(kind, "")


def explain(errcode: int, endpoint: str) -> dict[str, Any]:
    """What WeChat's ``errcode`` on ``endpoint`` means to a person (a message as data)."""
    if errcode == -1:
        return message("wechat.e.system", endpoint=endpoint)
    code = "wechat.e.secret" if endpoint in TOKEN_ENDPOINTS and errcode == 40001 else (
        _CODES.get(errcode, "wechat.e.unknown"))
    return message(code, errcode=errcode, endpoint=endpoint)


def api_error(data: Mapping[str, Any], endpoint: str) -> WeChatAPIError:
    errcode, errmsg = int(data["errcode"]), str(data.get("errmsg", ""))
    kind = classify(errcode, endpoint)
    return _error("wechat.api_error", kind, endpoint, errcode, errmsg,
                  text=explain(errcode, endpoint), then=_then(kind), said=errmsg)


class NothingSent(WeChatAPIError):
    """The connection never opened, so WeChat saw nothing: safe to retry even a write."""


def transport_error(exc: requests.RequestException, endpoint: str) -> WeChatAPIError:
    reason = _TOKEN_IN_URL.sub("access_token=***", str(exc))
    if never_connected(exc):
        return _error("wechat.no_connect", ErrorKind.RETRY, endpoint, cls=NothingSent,
                      endpoint=endpoint, reason=reason)
    kind = ErrorKind.RETRY if endpoint in READ_ENDPOINTS else ErrorKind.AMBIGUOUS
    code = "wechat.timeout" if isinstance(exc, requests.Timeout) else "wechat.broken"
    return _error(code, kind, endpoint, endpoint=endpoint, reason=reason, then=_then(kind))


def never_connected(exc: requests.RequestException) -> bool:
    """True only when the TCP connection was never made (refused, unreachable, timeout)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    cause = exc.args[0] if exc.args else None
    # urllib3 wraps connect failures (NewConnectionError is a ConnectTimeoutError) in
    # MaxRetryError; failures after sending arrive as ProtocolError instead
    return (isinstance(exc, requests.ConnectionError) and isinstance(cause, MaxRetryError)
            and isinstance(cause.reason, ConnectTimeoutError))


def http_error(status: int, endpoint: str) -> WeChatAPIError:
    if status >= 500 or status in (408, 429):
        kind = ErrorKind.RETRY if endpoint in READ_ENDPOINTS else ErrorKind.AMBIGUOUS
        return _error("wechat.http_status", kind, endpoint, endpoint=endpoint, status=status,
                      then=_then(kind))
    return _error("wechat.http_config", ErrorKind.FINAL, endpoint, endpoint=endpoint,
                  status=status)


def bad_answer(endpoint: str, problem: str, **params: Any) -> WeChatAPIError:
    """WeChat's answer is unusable: ``problem`` is a ``wechat.answer_*`` code."""
    kind = ErrorKind.RETRY if endpoint in READ_ENDPOINTS else ErrorKind.AMBIGUOUS
    return _error("wechat.bad_answer", kind, endpoint, endpoint=endpoint,
                  problem=message(problem, **params), then=_then(kind))


def as_int(value: Any) -> int | None:
    """IDs such as publish_id arrive as int or as digit string; both are accepted."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def mime_type(data: bytes, filename: str) -> str:
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"
