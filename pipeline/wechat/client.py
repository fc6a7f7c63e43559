"""A thin client for the WeChat Official Account API (token, images, drafts, publishing).

Every failure becomes a :class:`~pipeline.errors.WeChatAPIError` whose ``kind`` tells the
caller what to do (see reliability.md, "Error classes"); callers never look at raw codes:

- ``TOKEN``: the access token was rejected. The client already fetched a token again
  once and retried the call once, so seeing it means the second token failed too.
- ``RETRY``: rejected without effect (45011, -1 or a transport failure on a read call,
  a connection that never opened). Read calls are retried here, bounded; write calls
  only when the connection never opened, because then WeChat saw nothing.
- ``DEFER``: a daily quota is used up (45009, 45028): try after Beijing midnight.
- ``AMBIGUOUS``: WeChat may or may not have done it (read timeout or reset after the
  request was sent, HTTP 5xx, -1 on a write). Never retried here: the reconciler must
  look first. That includes draft/add: a lost draft/add answer may have created a
  draft, and a blind retry would leave a second one behind. The reconciler finds no
  draft carrying the attempt's marker and then retries safely, so the cost is small.
- ``FINAL``: rejected for good (48001, 53503-53505, 40007, size limits, bad config).

Bodies go out as UTF-8 JSON without ``\\uXXXX`` escapes (WeChat stores escaped titles
literally), never through ``requests``' ``json=`` which escapes. Answers are parsed
as JSON whatever their content type says; an answer is an error iff it carries an
``errcode`` other than 0.
"""

from __future__ import annotations

import json
import mimetypes
import random
import re
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import requests
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError

from pipeline.errors import ErrorKind, WeChatAPIError

__all__ = [
    "ErrorKind",
    "MassStatus",
    "MemoryTokenCache",
    "Page",
    "PublishStatus",
    "TokenCache",
    "TokenInfo",
    "WeChatAPIError",
    "WeChatClient",
    "classify",
]

TOKEN_MARGIN = timedelta(seconds=60)  # a token with less left is renewed before use
MAX_TRIES = 3
BACKOFF_BASE = 0.5  # seconds; doubled per try, with jitter
BACKOFF_CAP = 8.0

TOKEN_CODES = frozenset({40001, 40014, 42001})
TOKEN_ENDPOINTS = frozenset({"stable_token", "token"})
# Calls that change nothing at WeChat; every other endpoint counts as a write.
READ_ENDPOINTS = frozenset({
    "stable_token", "token", "draft/get", "draft/count", "draft/batchget", "freepublish/get",
    "freepublish/batchget", "freepublish/getarticle", "message/mass/get",
})

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
}

_CONSEQUENCE = {
    ErrorKind.RETRY: " Nothing was changed; it is safe to try again.",
    ErrorKind.AMBIGUOUS: " It is unknown whether WeChat did it; reconcile before trying again.",
}
_TOKEN_IN_URL = re.compile(r"access_token=[^&\s'\"]+")


def _utcnow() -> datetime:
    return datetime.now(UTC)


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


def _explain(errcode: int, endpoint: str, errmsg: str) -> str:
    if endpoint in TOKEN_ENDPOINTS and errcode == 40001:
        template = _SECRET
    else:
        template = _MESSAGES.get(errcode, "WeChat refused {endpoint} with error {code}.")
    kind = classify(errcode, endpoint)
    text = template.format(code=errcode, endpoint=endpoint)
    if errcode == -1:
        text = f"WeChat reported a system error (-1) on {endpoint}."
    return f"{text}{_CONSEQUENCE.get(kind, '')} (WeChat said: {errmsg})"


def _api_error(data: Mapping[str, Any], endpoint: str) -> WeChatAPIError:
    errcode, errmsg = int(data["errcode"]), str(data.get("errmsg", ""))
    return WeChatAPIError(_explain(errcode, endpoint, errmsg), kind=classify(errcode, endpoint),
                          endpoint=endpoint, errcode=errcode, errmsg=errmsg)


class _NothingSent(WeChatAPIError):
    """The connection never opened, so WeChat saw nothing: safe to retry even a write."""


def _transport_error(exc: requests.RequestException, endpoint: str) -> WeChatAPIError:
    reason = _TOKEN_IN_URL.sub("access_token=***", str(exc))
    if _never_connected(exc):
        return _NothingSent(f"Could not connect to WeChat for {endpoint} ({reason}); nothing "
                            "was sent, it is safe to try again.",
                            kind=ErrorKind.RETRY, endpoint=endpoint)
    kind = ErrorKind.RETRY if endpoint in READ_ENDPOINTS else ErrorKind.AMBIGUOUS
    what = ("did not answer in time" if isinstance(exc, requests.Timeout)
            else "broke the connection after the request was sent")
    return WeChatAPIError(f"WeChat {what} on {endpoint} ({reason}).{_CONSEQUENCE[kind]}",
                          kind=kind, endpoint=endpoint)


def _never_connected(exc: requests.RequestException) -> bool:
    """True only when the TCP connection was never made (refused, unreachable, timeout)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    cause = exc.args[0] if exc.args else None
    # urllib3 wraps connect failures (NewConnectionError is a ConnectTimeoutError) in
    # MaxRetryError; failures after sending arrive as ProtocolError instead
    return (isinstance(exc, requests.ConnectionError) and isinstance(cause, MaxRetryError)
            and isinstance(cause.reason, ConnectTimeoutError))


def _http_error(status: int, endpoint: str) -> WeChatAPIError:
    if status >= 500 or status in (408, 429):
        kind = ErrorKind.RETRY if endpoint in READ_ENDPOINTS else ErrorKind.AMBIGUOUS
        return WeChatAPIError(f"WeChat answered {endpoint} with HTTP {status}."
                              f"{_CONSEQUENCE[kind]}", kind=kind, endpoint=endpoint)
    return WeChatAPIError(f"WeChat answered {endpoint} with HTTP {status}; check the "
                          "configured WeChat base URL.", kind=ErrorKind.FINAL, endpoint=endpoint)


def _bad_answer(endpoint: str, problem: str) -> WeChatAPIError:
    kind = ErrorKind.RETRY if endpoint in READ_ENDPOINTS else ErrorKind.AMBIGUOUS
    return WeChatAPIError(f"WeChat's answer to {endpoint} {problem}.{_CONSEQUENCE[kind]}",
                          kind=kind, endpoint=endpoint)


def _as_int(value: Any) -> int | None:
    """IDs such as publish_id arrive as int or as digit string; both are accepted."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _mime(data: bytes, filename: str) -> str:
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


# --------------------------------------------------------------------------- tokens


class TokenCache(Protocol):
    """Where the access token lives between calls (the database in production)."""

    def get(self, appid: str) -> tuple[str, datetime] | None: ...

    def put(self, appid: str, token: str, expires_at: datetime) -> None: ...


class MemoryTokenCache:
    """A process-local TokenCache, for tests and one-off commands."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[str, datetime]] = {}

    def get(self, appid: str) -> tuple[str, datetime] | None:
        with self._lock:
            return self._tokens.get(appid)

    def put(self, appid: str, token: str, expires_at: datetime) -> None:
        with self._lock:
            self._tokens[appid] = (token, expires_at)


# --------------------------------------------------------------------------- answers


@dataclass(frozen=True)
class TokenInfo:
    access_token: str
    expires_in: int  # seconds left when WeChat answered


@dataclass(frozen=True)
class Page:
    """One page of draft/batchget or freepublish/batchget."""

    total_count: int
    items: list[dict[str, Any]]


@dataclass(frozen=True)
class PublishStatus:
    """freepublish/get: 0 success, 1 publishing, 2-4 failed, 5/6 deleted or banned later."""

    publish_id: int
    status: int
    article_id: str | None
    article_urls: tuple[str, ...]  # in article order (idx 1, 2, ...)
    fail_idx: tuple[int, ...]      # 1-based article numbers that failed (status 2 or 4)
    raw: dict[str, Any]

    @property
    def finished(self) -> bool:
        return self.status != 1


@dataclass(frozen=True)
class MassStatus:
    msg_id: int
    status: str  # SEND_SUCCESS, SENDING, SEND_FAIL, ...


def _publish_status(data: dict[str, Any], publish_id: int) -> PublishStatus:
    items = sorted((data.get("article_detail") or {}).get("item") or [],
                   key=lambda i: _as_int(i.get("idx")) or 0)
    fail = [n for n in (_as_int(i) for i in data.get("fail_idx") or []) if n is not None]
    status = _as_int(data.get("publish_status"))
    if status is None:
        raise _bad_answer("freepublish/get", "has no publish_status")
    return PublishStatus(_as_int(data.get("publish_id")) or publish_id, status,
                         data.get("article_id") or None,
                         tuple(str(i.get("article_url", "")) for i in items), tuple(fail), data)


# --------------------------------------------------------------------------- client


class WeChatClient:
    """One account's API. Thread-safe; the token is shared through ``tokens``."""

    def __init__(self, base_url: str, appid: str, secret: str, *, tokens: TokenCache,
                 session: requests.Session | None = None, connect_timeout: float = 5,
                 read_timeout: float = 20, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], datetime] = _utcnow) -> None:
        self._base_url = base_url.rstrip("/")
        self._appid, self._secret = appid, secret
        self._tokens = tokens
        self._session = session or requests.Session()
        self._timeout = (connect_timeout, read_timeout)
        self._sleep, self._clock = sleep, clock
        self._token_lock = threading.Lock()  # one token fetch at a time in this process

    def close(self) -> None:
        self._session.close()

    # ----------------------------------------------------------------- tokens

    def stable_token(self, force_refresh: bool = False) -> TokenInfo:
        """Fetch the stable token and store it in the cache.

        Normal mode returns the current token, so every process asking gets the same
        working token; force_refresh invalidates it for everyone (5 minutes later).
        """
        body = {"grant_type": "client_credential", "appid": self._appid,
                "secret": self._secret, "force_refresh": force_refresh}
        data = self._call("POST", "stable_token", body=body, auth=False)
        token, expires_in = data.get("access_token"), _as_int(data.get("expires_in"))
        if not isinstance(token, str) or not token or expires_in is None:
            raise _bad_answer("stable_token", "has no access_token")
        self._tokens.put(self._appid, token, self._clock() + timedelta(seconds=expires_in))
        return TokenInfo(token, expires_in)

    def _fresh_cached(self, unlike: str | None = None) -> str | None:
        cached = self._tokens.get(self._appid)
        if cached is None or cached[0] == unlike:
            return None
        return cached[0] if cached[1] - self._clock() > TOKEN_MARGIN else None

    def _access_token(self, rejected: str | None = None) -> str:
        """The cached token while it has over a minute left, else a fetched one.

        After a rejection another process may already have stored a newer token; else
        fetch in normal mode, never force_refresh: forcing would invalidate the token
        of every other process and start a refresh storm.
        """
        token = self._fresh_cached(unlike=rejected)
        if token:
            return token
        with self._token_lock:
            token = self._fresh_cached(unlike=rejected)
            return token or self.stable_token().access_token

    # ----------------------------------------------------------------- transport

    def _call(self, method: str, endpoint: str, *, body: Mapping[str, Any] | None = None,
              params: Mapping[str, str] | None = None, files: Any = None, auth: bool = True,
              pass_codes: Collection[int] = ()) -> dict[str, Any]:
        """One API call with the token refresh-once rule and bounded retries."""
        token = self._access_token() if auth else None
        renewed, tries = False, 0
        while True:
            tries += 1
            try:
                return self._exchange(method, endpoint, token, body, params, files, pass_codes)
            except WeChatAPIError as err:
                if err.kind is ErrorKind.TOKEN and token is not None and not renewed:
                    # the token error means WeChat rejected the call: retrying is safe
                    renewed, token = True, self._access_token(rejected=token)
                    continue
                if not self._may_retry(err, endpoint, tries):
                    raise
                self._sleep(self._backoff(tries))

    @staticmethod
    def _may_retry(err: WeChatAPIError, endpoint: str, tries: int) -> bool:
        if tries >= MAX_TRIES or err.kind is not ErrorKind.RETRY:
            return False
        return endpoint in READ_ENDPOINTS or isinstance(err, _NothingSent)

    @staticmethod
    def _backoff(tries: int) -> float:
        ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (tries - 1))
        return random.uniform(ceiling / 2, ceiling)  # jitter spreads out parallel callers

    def _exchange(self, method: str, endpoint: str, token: str | None,
                  body: Mapping[str, Any] | None, params: Mapping[str, str] | None,
                  files: Any, pass_codes: Collection[int]) -> dict[str, Any]:
        """Send once; return the parsed answer or raise the classified error."""
        query = dict(params or {})
        if token is not None:
            query["access_token"] = token
        headers, data = {}, None
        if body is not None:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json; charset=utf-8"
        try:
            answer = self._session.request(
                method, f"{self._base_url}/cgi-bin/{endpoint}", params=query, data=data,
                files=files, headers=headers, timeout=self._timeout)
        except requests.RequestException as exc:
            raise _transport_error(exc, endpoint) from exc
        return self._parse(answer, endpoint, pass_codes)

    @staticmethod
    def _parse(answer: requests.Response, endpoint: str,
               pass_codes: Collection[int]) -> dict[str, Any]:
        if answer.status_code != 200:
            raise _http_error(answer.status_code, endpoint)
        try:
            # the Content-Type is unreliable (uploadimg says text/plain); WeChat may
            # put control characters inside strings, hence strict=False
            data = json.loads(answer.content.decode("utf-8"), strict=False)
        except ValueError as exc:  # includes UnicodeDecodeError
            raise _bad_answer(endpoint, "is not JSON") from exc
        if not isinstance(data, dict):
            raise _bad_answer(endpoint, "is not a JSON object")
        errcode = _as_int(data.get("errcode", 0))
        if errcode is None:
            raise _bad_answer(endpoint, "has an errcode that is not a number")
        if errcode != 0 and errcode not in pass_codes:
            raise _api_error(data, endpoint)
        return data

    def _json(self, endpoint: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("POST", endpoint, body=body)

    @staticmethod
    def _text(data: Mapping[str, Any], key: str, endpoint: str) -> str:
        value = data.get(key)
        if not isinstance(value, str) or not value:
            raise _bad_answer(endpoint, f"has no {key}")
        return value

    @staticmethod
    def _id(data: Mapping[str, Any], key: str, endpoint: str) -> int:
        value = _as_int(data.get(key))
        if value is None:
            raise _bad_answer(endpoint, f"has no {key}")
        return value

    # ----------------------------------------------------------------- images

    def upload_image(self, data: bytes, filename: str) -> str:
        """A body image (JPG/PNG under 1 MB) -> its mmbiz URL for use in content."""
        files = {"media": (filename, data, _mime(data, filename))}
        answer = self._call("POST", "media/uploadimg", files=files)
        return self._text(answer, "url", "media/uploadimg")

    def add_material(self, data: bytes, filename: str, type: str = "image"
                     ) -> tuple[str, str | None]:
        """A permanent image or thumb -> (media_id, url); url is None for thumbs."""
        files = {"media": (filename, data, _mime(data, filename))}
        answer = self._call("POST", "material/add_material", params={"type": type},
                            files=files)
        url = answer.get("url")
        media_id = self._text(answer, "media_id", "material/add_material")
        return media_id, url if isinstance(url, str) and url else None

    # ----------------------------------------------------------------- drafts

    def draft_add(self, articles: list[dict[str, Any]]) -> str:
        """Create a draft; returns its media_id."""
        answer = self._json("draft/add", {"articles": articles})
        return self._text(answer, "media_id", "draft/add")

    def draft_get(self, media_id: str) -> list[dict[str, Any]]:
        """The draft's articles (news_item)."""
        answer = self._json("draft/get", {"media_id": media_id})
        return list(answer.get("news_item") or [])

    def draft_update(self, media_id: str, index: int, article: dict[str, Any]) -> None:
        """Replace article ``index`` (0-based) of a draft."""
        self._json("draft/update", {"media_id": media_id, "index": index, "articles": article})

    def draft_delete(self, media_id: str) -> None:
        self._json("draft/delete", {"media_id": media_id})

    def draft_count(self) -> int:
        answer = self._call("GET", "draft/count")
        return self._id(answer, "total_count", "draft/count")

    def draft_batchget(self, offset: int = 0, count: int = 20, no_content: bool = False
                       ) -> Page:
        """Drafts newest first; count is 1..20."""
        answer = self._json("draft/batchget", {"offset": offset, "count": count,
                                               "no_content": int(no_content)})
        return Page(_as_int(answer.get("total_count")) or 0, list(answer.get("item") or []))

    # ----------------------------------------------------------------- free publish

    def freepublish_submit(self, media_id: str) -> int:
        """Start publishing a draft; returns the publish_id (the result comes later)."""
        answer = self._json("freepublish/submit", {"media_id": media_id})
        return self._id(answer, "publish_id", "freepublish/submit")

    def freepublish_get(self, publish_id: int) -> PublishStatus:
        answer = self._json("freepublish/get", {"publish_id": str(publish_id)})
        return _publish_status(answer, publish_id)

    def freepublish_batchget(self, offset: int = 0, count: int = 20, no_content: bool = False
                             ) -> Page:
        """Free-published articles newest first (mass-sent ones are never listed)."""
        answer = self._json("freepublish/batchget", {"offset": offset, "count": count,
                                                     "no_content": int(no_content)})
        return Page(_as_int(answer.get("total_count")) or 0, list(answer.get("item") or []))

    def freepublish_getarticle(self, article_id: str) -> list[dict[str, Any]]:
        answer = self._json("freepublish/getarticle", {"article_id": article_id})
        return list(answer.get("news_item") or [])

    def freepublish_delete(self, article_id: str, index: int = 0) -> None:
        """Delete a published article (index 1-based; 0 deletes all). Irreversible."""
        self._json("freepublish/delete", {"article_id": article_id, "index": index})

    # ----------------------------------------------------------------- mass send

    def mass_sendall(self, media_id: str, clientmsgid: str, *, is_to_all: bool = True,
                     tag_id: int | None = None, send_ignore_reprint: bool = False) -> int:
        """Send a draft to followers; returns the msg_id.

        A reused clientmsgid (45065) means an earlier attempt was sent: its msg_id is
        returned when WeChat names it, so a retry after a lost answer is harmless.
        """
        filt: dict[str, Any] = {"is_to_all": is_to_all}
        if tag_id is not None:
            filt["tag_id"] = tag_id
        body = {"filter": filt, "mpnews": {"media_id": media_id}, "msgtype": "mpnews",
                "send_ignore_reprint": int(send_ignore_reprint), "clientmsgid": clientmsgid}
        answer = self._call("POST", "message/mass/sendall", body=body, pass_codes=(45065,))
        if _as_int(answer.get("errcode")) == 45065 and _as_int(answer.get("msg_id")) is None:
            raise _api_error(answer, "message/mass/sendall")
        return self._id(answer, "msg_id", "message/mass/sendall")

    def mass_get(self, msg_id: int) -> MassStatus:
        answer = self._json("message/mass/get", {"msg_id": msg_id})
        status = answer.get("msg_status")
        return MassStatus(_as_int(answer.get("msg_id")) or msg_id,
                          status if isinstance(status, str) else "")

    # ----------------------------------------------------------------- health

    def check_credentials(self) -> None:
        """Raise WeChatAPIError with a one-sentence reason unless the account works.

        Asks WeChat for the token even when one is cached, so a changed secret or a
        server IP missing from the whitelist shows now rather than in two hours.
        """
        self.stable_token()
        self.draft_count()
