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
import random
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import requests

from pipeline.errors import ErrorKind, WeChatAPIError
from pipeline.fence import fence

from .codes import (
    READ_ENDPOINTS,
    NothingSent,
    api_error,
    as_int,
    bad_answer,
    classify,
    http_error,
    mime_type,
    transport_error,
)

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

def _utcnow() -> datetime:
    return datetime.now(UTC)


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
                   key=lambda i: as_int(i.get("idx")) or 0)
    fail = [n for n in (as_int(i) for i in data.get("fail_idx") or []) if n is not None]
    status = as_int(data.get("publish_status"))
    if status is None:
        raise bad_answer("freepublish/get", "wechat.answer_missing", key="publish_status")
    return PublishStatus(as_int(data.get("publish_id")) or publish_id, status,
                         data.get("article_id") or None,
                         tuple(str(i.get("article_url", "")) for i in items), tuple(fail), data)


def _path(endpoint: str) -> str:
    """Analytics live under /datacube/, everything else under /cgi-bin/."""
    return endpoint if endpoint.startswith("datacube/") else f"cgi-bin/{endpoint}"


def _keep_data_id(answer: Mapping[str, Any], receipt: dict[str, Any] | None) -> None:
    data_id = as_int(answer.get("msg_data_id"))
    if receipt is not None and data_id is not None:
        receipt["msg_data_id"] = str(data_id)


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
        token, expires_in = data.get("access_token"), as_int(data.get("expires_in"))
        if not isinstance(token, str) or not token or expires_in is None:
            raise bad_answer("stable_token", "wechat.answer_missing", key="access_token")
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
        return endpoint in READ_ENDPOINTS or isinstance(err, NothingSent)

    @staticmethod
    def _backoff(tries: int) -> float:
        ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (tries - 1))
        return random.uniform(ceiling / 2, ceiling)  # jitter spreads out parallel callers

    def _exchange(self, method: str, endpoint: str, token: str | None,
                  body: Mapping[str, Any] | None, params: Mapping[str, str] | None,
                  files: Any, pass_codes: Collection[int]) -> dict[str, Any]:
        """Send once; return the parsed answer or raise the classified error."""
        fence()  # a scheduler that lost its lease stops before calling WeChat
        query = dict(params or {})
        if token is not None:
            query["access_token"] = token
        headers, data = {}, None
        if body is not None:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json; charset=utf-8"
        try:
            answer = self._session.request(
                method, f"{self._base_url}/{_path(endpoint)}", params=query, data=data,
                files=files, headers=headers, timeout=self._timeout)
        except requests.RequestException as exc:
            raise transport_error(exc, endpoint) from exc
        return self._parse(answer, endpoint, pass_codes)

    @staticmethod
    def _parse(answer: requests.Response, endpoint: str,
               pass_codes: Collection[int]) -> dict[str, Any]:
        if answer.status_code != 200:
            raise http_error(answer.status_code, endpoint)
        try:
            # the Content-Type is unreliable (uploadimg says text/plain); WeChat may
            # put control characters inside strings, hence strict=False
            data = json.loads(answer.content.decode("utf-8"), strict=False)
        except ValueError as exc:  # includes UnicodeDecodeError
            raise bad_answer(endpoint, "wechat.answer_not_json") from exc
        if not isinstance(data, dict):
            raise bad_answer(endpoint, "wechat.answer_not_object")
        errcode = as_int(data.get("errcode", 0))
        if errcode is None:
            raise bad_answer(endpoint, "wechat.answer_bad_errcode")
        if errcode != 0 and errcode not in pass_codes:
            raise api_error(data, endpoint)
        return data

    def _json(self, endpoint: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("POST", endpoint, body=body)

    @staticmethod
    def _text(data: Mapping[str, Any], key: str, endpoint: str) -> str:
        value = data.get(key)
        if not isinstance(value, str) or not value:
            raise bad_answer(endpoint, "wechat.answer_missing", key=key)
        return value

    @staticmethod
    def _id(data: Mapping[str, Any], key: str, endpoint: str) -> int:
        value = as_int(data.get(key))
        if value is None:
            raise bad_answer(endpoint, "wechat.answer_missing", key=key)
        return value

    # ----------------------------------------------------------------- images

    def upload_image(self, data: bytes, filename: str) -> str:
        """A body image (JPG/PNG under 1 MB) -> its mmbiz URL for use in content."""
        files = {"media": (filename, data, mime_type(data, filename))}
        answer = self._call("POST", "media/uploadimg", files=files)
        return self._text(answer, "url", "media/uploadimg")

    def add_material(self, data: bytes, filename: str, type: str = "image"
                     ) -> tuple[str, str | None]:
        """A permanent image or thumb -> (media_id, url); url is None for thumbs."""
        files = {"media": (filename, data, mime_type(data, filename))}
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
        return Page(as_int(answer.get("total_count")) or 0, list(answer.get("item") or []))

    # ----------------------------------------------------------------- free publish

    def freepublish_submit(self, media_id: str, receipt: dict[str, Any] | None = None) -> int:
        """Start publishing a draft; returns the publish_id (the result comes later).

        ``receipt``, when given, receives the answer's ``msg_data_id`` (the articles' id
        in WeChat's analytics).
        """
        answer = self._json("freepublish/submit", {"media_id": media_id})
        _keep_data_id(answer, receipt)
        return self._id(answer, "publish_id", "freepublish/submit")

    def freepublish_get(self, publish_id: int) -> PublishStatus:
        answer = self._json("freepublish/get", {"publish_id": str(publish_id)})
        return _publish_status(answer, publish_id)

    def freepublish_batchget(self, offset: int = 0, count: int = 20, no_content: bool = False
                             ) -> Page:
        """Free-published articles newest first (mass-sent ones are never listed)."""
        answer = self._json("freepublish/batchget", {"offset": offset, "count": count,
                                                     "no_content": int(no_content)})
        return Page(as_int(answer.get("total_count")) or 0, list(answer.get("item") or []))

    def freepublish_getarticle(self, article_id: str) -> list[dict[str, Any]]:
        answer = self._json("freepublish/getarticle", {"article_id": article_id})
        return list(answer.get("news_item") or [])

    def freepublish_delete(self, article_id: str, index: int = 0) -> None:
        """Delete a published article (index 1-based; 0 deletes all). Irreversible."""
        self._json("freepublish/delete", {"article_id": article_id, "index": index})

    # ----------------------------------------------------------------- mass send

    def mass_sendall(self, media_id: str, clientmsgid: str, *, is_to_all: bool = True,
                     tag_id: int | None = None, send_ignore_reprint: bool = False,
                     receipt: dict[str, Any] | None = None) -> int:
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
        if as_int(answer.get("errcode")) == 45065 and as_int(answer.get("msg_id")) is None:
            raise api_error(answer, "message/mass/sendall")
        _keep_data_id(answer, receipt)
        return self._id(answer, "msg_id", "message/mass/sendall")

    def mass_get(self, msg_id: int) -> MassStatus:
        answer = self._json("message/mass/get", {"msg_id": msg_id})
        status = answer.get("msg_status")
        return MassStatus(as_int(answer.get("msg_id")) or msg_id,
                          status if isinstance(status, str) else "")

    # ----------------------------------------------------------------- analytics

    def datacube(self, name: str, begin: str, end: str) -> dict[str, Any]:
        """One analytics query (``getarticletotal``, ``getusersummary`` ...) for the dates
        ``begin``..``end`` (YYYY-MM-DD, end at most yesterday); the whole answer."""
        return self._json(f"datacube/{name}", {"begin_date": begin, "end_date": end})

    # ----------------------------------------------------------------- health

    def check_credentials(self) -> None:
        """Raise WeChatAPIError with a one-sentence reason unless the account works.

        Asks WeChat for the token even when one is cached, so a changed secret or a
        server IP missing from the whitelist shows now rather than in two hours.
        """
        self.stable_token()
        self.draft_count()
