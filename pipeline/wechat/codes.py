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

_WHITELIST = ("WeChat refused the call because the server's IP is not on the account's API "
              "whitelist ({code}); add it in the WeChat console under 基本配置 → IP白名单.")
_BUG = ("WeChat could not read the request ({code}); this is a bug in the pipeline, "
        "report it with WeChat's rid.")
_SECRET = ("WeChat rejected the AppSecret ({code}); copy it again from the WeChat console "
           "under 基本配置 → AppSecret into the environment variable named by wechat.secret_env "
           "(it changes whenever it is reset).")

_MESSAGES: dict[int, str] = {
    40164: _WHITELIST, 61004: _WHITELIST,
    40125: _SECRET,
    40013: "WeChat does not know this AppID ({code}); check wechat.appid in config.toml.",
    41002: "The AppID is missing ({code}); set wechat.appid in config.toml.",
    41004: "The AppSecret is missing ({code}); set the environment variable named by "
           "wechat.secret_env.",
    40243: "The AppSecret is frozen ({code}); unfreeze or reset it in the WeChat console.",
    50004: "WeChat has blocked the token API for this account ({code}); log in to "
           "mp.weixin.qq.com to see why.",
    50007: "The account is frozen ({code}); log in to mp.weixin.qq.com to see why.",
    89503: "WeChat wants an administrator to confirm API calls from this server's IP "
           "({code}); confirm it in the WeChat admin app, then try again.",
    89506: "An administrator refused API calls from this server's IP ({code}); "
           "WeChat blocks it for 24 hours.",
    89507: "An administrator refused API calls from this server's IP ({code}); "
           "WeChat blocks it for an hour.",
    40001: "WeChat rejected the access token ({code}) even after a fresh one was fetched; "
           "check that no other program force-refreshes the token for this AppID.",
    40014: "WeChat rejected the access token ({code}) even after a fresh one was fetched; "
           "check that no other program force-refreshes the token for this AppID.",
    42001: "WeChat reported the access token expired ({code}) even after a fresh one was "
           "fetched; check the server clock and that one program owns the token.",
    41001: "The access token was missing from the request ({code}); this is a bug in "
           "the pipeline.",
    43001: _BUG, 43002: _BUG, 44002: _BUG, 47001: _BUG, 40097: _BUG, 40002: _BUG,
    40033: "WeChat refused text sent as \\uXXXX escapes ({code}); this is a bug in the "
           "pipeline, bodies must be raw UTF-8.",
    44003: "WeChat found no article data ({code}); every article needs a title and content.",
    45002: "An article's content is too long for WeChat ({code}); it must stay under "
           "20,000 characters and under 1 MB.",
    45003: "An article title is too long for WeChat ({code}); at most 32 characters.",
    45004: "An article digest is too long for WeChat ({code}); at most 128 characters.",
    45110: "An author name is too long for WeChat ({code}); at most 16 characters.",
    45008: "Too many articles in one message ({code}); WeChat allows at most 8.",
    40004: "WeChat does not accept this media type ({code}); use image or thumb.",
    40005: "WeChat rejected the file type ({code}); body images must be JPG or PNG, "
           "cover thumbnails JPG.",
    40009: "The image is too large for WeChat ({code}); body images must be under 1 MB, "
           "library images at most 10 MB.",
    40012: "The cover thumbnail is too large for WeChat ({code}); at most 64 KB of JPG.",
    40007: "WeChat does not know this media_id ({code}); the draft or image was deleted, "
           "already published or sent, or is a temporary id.",
    41039: "WeChat rejected the 'read original' link ({code}); content_source_url must be "
           "an http(s) address under 1 KB.",
    40114: "The article index is out of range for this draft ({code}).",
    45166: "WeChat rejected the article HTML as invalid content ({code}); remove unusual "
           "tags and external links, then try again.",
    53402: "WeChat could not crop the cover image ({code}); use a larger cover with a "
           "2.35:1 area, for example 900×383 pixels.",
    88000: "The account may not open comments ({code}); turn need_open_comment off.",
    45009: "The daily WeChat quota for {endpoint} is used up ({code}); it resets at "
           "midnight Beijing time, or an administrator can reset it with clear_quota.",
    45011: "WeChat is rate-limiting {endpoint} ({code}); wait a minute before calling again.",
    45028: "The account has no mass-send quota left ({code}); the next send is possible "
           "tomorrow (monthly for service accounts).",
    45065: "This clientmsgid was already used for a mass send ({code}) but WeChat did not "
           "say which message; look the send up before trying again.",
    45066: "The same clientmsgid was retried within a minute ({code}); wait a minute and "
           "retry with the same clientmsgid.",
    48001: "The account is not allowed to use {endpoint} ({code}); free publishing and "
           "mass sending need a verified account.",
    48004: "WeChat has banned {endpoint} for this account ({code}); log in to "
           "mp.weixin.qq.com to see why.",
    50002: "The account is restricted ({code}); log in to mp.weixin.qq.com to see why.",
    53500: "Publishing is banned for this account ({code}); log in to mp.weixin.qq.com.",
    53501: "WeChat says the account publishes too often ({code}); wait before submitting "
           "again.",
    53502: "WeChat does not know this publish_id ({code}).",
    53503: "The draft failed WeChat's publish check ({code}); open it in the WeChat web "
           "console to see what must change.",
    53504: "This draft can only be published from the WeChat web console ({code}).",
    53505: "This draft must be saved once by hand in the WeChat web console before it can "
           "be published ({code}).",
    53600: "WeChat does not know this article_id ({code}).",
    61500: "WeChat refused the dates of {endpoint} ({code}); this is a bug in the pipeline.",
    61501: "WeChat refused the date range of {endpoint} ({code}): too long, today, or too "
           "old.",
    61503: "WeChat has not finished the figures asked from {endpoint} yet ({code}); they are "
           "fetched again later.",
}

_CONSEQUENCE = {
    ErrorKind.RETRY: " Nothing was changed; it is safe to try again.",
    ErrorKind.AMBIGUOUS: " It is unknown whether WeChat did it; reconcile before trying again.",
}
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


def explain(errcode: int, endpoint: str, errmsg: str) -> str:
    if endpoint in TOKEN_ENDPOINTS and errcode == 40001:
        template = _SECRET
    else:
        template = _MESSAGES.get(errcode, "WeChat refused {endpoint} with error {code}.")
    kind = classify(errcode, endpoint)
    text = template.format(code=errcode, endpoint=endpoint)
    if errcode == -1:
        text = f"WeChat reported a system error (-1) on {endpoint}."
    return f"{text}{_CONSEQUENCE.get(kind, '')} (WeChat said: {errmsg})"


def api_error(data: Mapping[str, Any], endpoint: str) -> WeChatAPIError:
    errcode, errmsg = int(data["errcode"]), str(data.get("errmsg", ""))
    return WeChatAPIError(explain(errcode, endpoint, errmsg), kind=classify(errcode, endpoint),
                          endpoint=endpoint, errcode=errcode, errmsg=errmsg)


class NothingSent(WeChatAPIError):
    """The connection never opened, so WeChat saw nothing: safe to retry even a write."""


def transport_error(exc: requests.RequestException, endpoint: str) -> WeChatAPIError:
    reason = _TOKEN_IN_URL.sub("access_token=***", str(exc))
    if never_connected(exc):
        return NothingSent(f"Could not connect to WeChat for {endpoint} ({reason}); nothing "
                            "was sent, it is safe to try again.",
                            kind=ErrorKind.RETRY, endpoint=endpoint)
    kind = ErrorKind.RETRY if endpoint in READ_ENDPOINTS else ErrorKind.AMBIGUOUS
    what = ("did not answer in time" if isinstance(exc, requests.Timeout)
            else "broke the connection after the request was sent")
    return WeChatAPIError(f"WeChat {what} on {endpoint} ({reason}).{_CONSEQUENCE[kind]}",
                          kind=kind, endpoint=endpoint)


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
        return WeChatAPIError(f"WeChat answered {endpoint} with HTTP {status}."
                              f"{_CONSEQUENCE[kind]}", kind=kind, endpoint=endpoint)
    return WeChatAPIError(f"WeChat answered {endpoint} with HTTP {status}; check the "
                          "configured WeChat base URL.", kind=ErrorKind.FINAL, endpoint=endpoint)


def bad_answer(endpoint: str, problem: str) -> WeChatAPIError:
    kind = ErrorKind.RETRY if endpoint in READ_ENDPOINTS else ErrorKind.AMBIGUOUS
    return WeChatAPIError(f"WeChat's answer to {endpoint} {problem}.{_CONSEQUENCE[kind]}",
                          kind=kind, endpoint=endpoint)


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
