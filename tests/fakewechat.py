"""A fake WeChat Official Account API server for tests (stdlib only, loopback).

It follows /work/shared/reference/wechat-api.md: the documented request and answer
shapes, limits and error codes, errors always as HTTP 200 with
``{"errcode": N, "errmsg": "... rid: ..."}``, request bodies parsed as JSON whatever
their content type, and ``media/uploadimg`` answering with ``text/plain``.

Use it in a test::

    def test_something(wechat_api):          # the fixture at the end of this module
        wechat_api.inject("freepublish/submit", "latency", seconds=1)
        ...
        assert wechat_api.ledger.count("freepublish/submit") == 1

or by hand: ``with FakeWeChat(appid="wx1", secret="s") as fake: ...``.
From a shell: ``python tests/fakewechat.py --port 8081 --appid wx123 --secret s3cret``.

Time: every rule that depends on time (token expiry, the quota day, the clientmsgid
windows, publish progress in seconds) reads ``fake.clock()``, an aware datetime in
Asia/Shanghai. Tests that move time assign ``fake.clock = FakeClock(...)``.

Choices the reference leaves open (marked "unconfirmed" there) are made here and
named where they are made; see ``FAKE_CHOICES`` below.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import math
import re
import secrets
import socket
import struct
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from datetime import time as dt_time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")  # no DST since 1991
MB = 1024 * 1024

FAKE_CHOICES = """
- author longer than 16 characters -> 45110 (not in the reference's tables).
- missing/empty title or content -> 44003; bad offset/count on batchget -> 40097.
- content_source_url not http(s) or over 1 KB -> 41039.
- the draft leaves the draft box at freepublish/submit time (open question 1).
- a second submit of a used media_id -> 40007 (open question 2).
- freepublish/batchget lists finished items only, unless batchget_includes_publishing.
- unknown publish_id -> 53502; unknown msg_id on mass/get -> 40007.
- lengths are counted in Python characters (code points).
- analytics (datacube): getarticletotaldetail answers one publish day (begin = end), each
  article with msgid "<msg_data_id>_<idx>", title, ref_date, publish_type and
  detail_list[{stat_date, read_user, read_count, share_user, share_count, collection_user,
  like_user, zaikan_user}], cumulative to stat_date, up to 30 days after publishing;
  getarticletotal (legacy, span 1) lists mass-sent articles only, details for 7 days.
  Figures come from ``article_reads`` (cumulative reads by days since publishing).
- data for yesterday is not ready before ``analytics_ready`` (08:00) -> 61503, also for
  the days in ``not_ready_days``; analytics_family = "legacy" makes the newer endpoints
  unknown paths (HTTP 404).
- a request body with a \\uXXXX escape of a non-ASCII character -> 40033 (legacy code),
  switch off with reject_escaped_unicode = False.
"""

# Daily per-endpoint quotas from the reference's DOC-LIMITS; None = not documented.
DEFAULT_QUOTAS: dict[str, int | None] = {
    "/cgi-bin/token": 2000,
    "/cgi-bin/stable_token": 500_000,
    "/cgi-bin/media/uploadimg": None,
    "/cgi-bin/material/add_material": None,
    "/cgi-bin/draft/add": 1000,
    "/cgi-bin/draft/get": 500,
    "/cgi-bin/draft/update": 1000,
    "/cgi-bin/draft/delete": 1000,
    "/cgi-bin/draft/count": 1000,
    "/cgi-bin/draft/batchget": 1000,
    "/cgi-bin/freepublish/submit": 100,
    "/cgi-bin/freepublish/get": 100,
    "/cgi-bin/freepublish/batchget": 100,
    "/cgi-bin/freepublish/getarticle": 100,
    "/cgi-bin/freepublish/delete": 10,
    "/cgi-bin/message/mass/sendall": 100,
    "/cgi-bin/message/mass/get": None,
    # analytics: no documented daily limit; tests set one to play "quota used up"
    "/datacube/getarticletotaldetail": None,
    "/datacube/getarticletotal": None,
    "/datacube/getusersummary": None,
    "/datacube/getusercumulate": None,
}
ANALYTICS_START = date(2014, 12, 1)  # WeChat has no data before this day
SPANS = {"getarticletotaldetail": 1, "getarticletotal": 1, "getusersummary": 7,
         "getusercumulate": 7}

FAULTS = frozenset({
    "errcode", "http_status", "latency", "process_then_drop", "drop_before",
    "stuck", "final_status", "expire_token", "push",
})
_REQUIRED = {"errcode": ("code",), "latency": ("seconds",), "final_status": ("status",),
             "push": ("mode",)}
PUSH_MODES = frozenset({"on_time", "late", "duplicate", "out_of_order", "early", "never"})

ERRMSG: dict[int, str] = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40004: "invalid media type",
    40005: "invalid file type",
    40007: "invalid media_id",
    40008: "invalid message type",
    40009: "invalid image size",
    40012: "invalid thumb size",
    40013: "invalid appid",
    40014: "invalid access_token",
    40033: "invalid charset. please check your request, if include \\uxxxx will create fail!",
    40097: "invalid args",
    40114: "invalid index value",
    40125: "invalid appsecret",
    40164: "invalid ip 127.0.0.1 ipv6 ::ffff:127.0.0.1, not in whitelist",
    41001: "access_token missing",
    41002: "appid missing",
    41004: "appsecret missing",
    41005: "media data missing",
    41039: "invalid content_source_url",
    42001: "access_token expired",
    43001: "require GET method",
    43002: "require POST method",
    44002: "empty post data",
    44003: "empty news data",
    45002: "content size out of limit",
    45003: "title size out of limit",
    45004: "description size out of limit",
    45008: "article size out of limit",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit, must slower, retry next minute",
    45028: "has no masssend quota",
    45065: "clientmsgid exist",
    45066: "clientmsgid retry too fast",
    45110: "author size out of limit",
    47001: "data format error",
    48001: "api unauthorized",
    53502: "invalid publish_id",
    53503: "draft failed publish check",
    53504: "draft must be used in the web console",
    53505: "save the draft manually in the web console first",
    53600: "invalid article_id",
    61500: "date format error",
    61501: "date range error",
    61503: "data not ready",
    88000: "without comment privilege",
}

_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script\s*>", re.I | re.S)
_EVENT_ATTR = re.compile(r"""\s+on\w+\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+)""", re.I)
_IMG = re.compile(r"<img\b[^>]*>", re.I)
_SRC = re.compile(r"""\bsrc\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.I)
_MMBIZ = re.compile(r"^https?://mmbiz\.(?:qpic|qlogo)\.cn/", re.I)
_TAG = re.compile(r"<[^>]+>")
_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u([0-9a-fA-F]{4})")


def shanghai_now() -> datetime:
    """The real time in the account's zone (the fake's default clock)."""
    return datetime.now(SHANGHAI)


class FakeClock:
    """A settable clock for ``fake.clock``; it only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = (start or shanghai_now()).astimezone(SHANGHAI)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float = 0, **delta: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds, **delta)

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = when.astimezone(SHANGHAI)


def endpoint_path(endpoint: str) -> str:
    """'draft/add', 'cgi-bin/draft/add' and '/cgi-bin/draft/add' name the same path;
    analytics live under /datacube/ ('datacube/getusersummary')."""
    name = endpoint.strip("/")
    return "/" + (name if name.startswith(("cgi-bin/", "datacube/")) else "cgi-bin/" + name)


# --------------------------------------------------------------------------- ledger


@dataclass
class CallRecord:
    """One HTTP request as it arrived (raw_body is the exact bytes on the wire)."""

    endpoint: str
    method: str
    time: datetime
    query: dict[str, str]
    raw_body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    errcode: int | None = None      # 0 = success; None = no JSON answer was sent
    http_status: int | None = None  # None = the connection was dropped
    fault: str | None = None


@dataclass
class MaterialRecord:
    media_id: str
    type: str
    url: str
    size: int
    filename: str


@dataclass
class DraftRecord:
    """A draft as stored (content sanitised); removed_by: delete|freepublish|mass_send."""

    media_id: str
    articles: list[dict[str, Any]]
    raw_articles: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime
    removed_at: datetime | None = None
    removed_by: str | None = None


@dataclass
class _Plan:
    """How one publish or mass send progresses after it was accepted."""

    polls: int | None          # in progress for this many status polls ...
    seconds: float | None      # ... or until this many seconds passed on the fake clock
    final: int | str           # publish_status, or msg_status for mass sends
    fail_idx: list[int] = field(default_factory=list)
    later: int | None = None   # 5/6 after success
    later_after_polls: int = 1
    push_mode: str = "on_time"
    push_delay: float = 1.0
    push_copies: int = 2


@dataclass
class PublishRecord:
    """A freepublish/submit that WeChat accepted (whatever its final status)."""

    publish_id: int
    msg_data_id: int
    media_id: str
    articles: list[dict[str, Any]]
    submitted_at: datetime
    status: int = 1
    article_id: str | None = None
    article_urls: list[str] = field(default_factory=list)
    fail_idx: list[int] = field(default_factory=list)
    finished_at: datetime | None = None
    deleted_idx: set[int] = field(default_factory=set)
    polls: int = 0
    plan: _Plan | None = None


@dataclass
class MassSendRecord:
    """A message/mass/sendall that WeChat accepted."""

    msg_id: int
    msg_data_id: int
    media_id: str
    clientmsgid: str | None
    is_to_all: bool
    articles: list[dict[str, Any]]
    sent_at: datetime
    status: str = "SENDING"
    polls: int = 0
    plan: _Plan | None = None


@dataclass
class PushRecord:
    """One PUBLISHJOBFINISH delivery attempt to push_url."""

    publish_id: int
    status: int
    xml: str
    sent_at: datetime
    http_status: int | None
    error: str | None


@dataclass(frozen=True)
class PublishedArticle:
    """One article that went out (kind: freepublish or mass_send); status is current."""

    kind: str
    ident: int
    idx: int
    title: str
    content_source_url: str
    time: datetime
    status: int | str


class Ledger:
    """What really happened at the fake, for assertions. Lists only grow."""

    def __init__(self) -> None:
        self.calls: list[CallRecord] = []
        self.materials: list[MaterialRecord] = []
        self.images: list[str] = []
        self.drafts: list[DraftRecord] = []
        self.publishes: list[PublishRecord] = []
        self.mass_sends: list[MassSendRecord] = []
        self.pushes: list[PushRecord] = []

    def calls_to(self, endpoint: str) -> list[CallRecord]:
        path = endpoint_path(endpoint)
        return [c for c in list(self.calls) if c.endpoint == path]

    def count(self, endpoint: str) -> int:
        """Requests that reached the endpoint, whatever their outcome."""
        return len(self.calls_to(endpoint))

    def published_articles(self) -> list[PublishedArticle]:
        """Every article of every accepted free-publish and mass send, oldest first."""
        out = [PublishedArticle("freepublish", p.publish_id, i, a.get("title", ""),
                                a.get("content_source_url", ""), p.submitted_at, p.status)
               for p in list(self.publishes) for i, a in enumerate(p.articles, 1)]
        out += [PublishedArticle("mass_send", m.msg_id, i, a.get("title", ""),
                                 a.get("content_source_url", ""), m.sent_at, m.status)
                for m in list(self.mass_sends) for i, a in enumerate(m.articles, 1)]
        return sorted(out, key=lambda a: a.time)


# --------------------------------------------------------------------------- plumbing


@dataclass
class _Fault:
    name: str
    params: dict[str, Any]


@dataclass
class _Reply:
    body: dict[str, Any]
    content_type: str = "application/json; encoding=utf-8"
    status: int = 200
    before_send: list[Callable[[], None]] = field(default_factory=list)


@dataclass
class _Token:
    value: str
    family: str  # "basic" (/token) or "stable" (/stable_token): never affect each other
    expires_at: datetime
    superseded_at: datetime | None = None


@dataclass
class _Push:
    publish_id: int
    status: int
    xml: str
    due: float  # time.monotonic(); delivery delays are real time, not fake-clock time
    held: bool = False


@dataclass
class _Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    raw: bytes
    fault: _Fault | None
    body: dict[str, Any] = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real API behind its load balancer
    server: _Server

    def setup(self) -> None:
        super().setup()
        # headers and body go out in two writes; without this, Nagle plus the client's
        # delayed ACK adds ~40 ms to every answer on a kept-alive connection
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, add=False)

    def do_GET(self) -> None:
        self.server.fake._handle(self)

    do_POST = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: the ledger is the log


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeWeChat

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a client that timed out and closed its socket is expected here


def _rid() -> str:
    return "-".join(secrets.token_hex(4) for _ in range(3))


def _error(code: int, text: str | None = None, **extra: Any) -> _Reply:
    msg = text or ERRMSG.get(code, "error")
    body = {"errcode": code, "errmsg": f"{msg} hint: [{secrets.token_hex(5)}] rid: {_rid()}"}
    return _Reply({**body, **extra})


def _image_kind(data: bytes) -> str | None:
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data.startswith(b"BM"):
        return "bmp"
    return None


def _multipart_file(content_type: str, raw: bytes, name: str) -> tuple[str, bytes] | None:
    """The (filename, bytes) of form field ``name``; a small parser that keeps bytes exact."""
    found = re.search(r'boundary="?([^";]+)"?', content_type)
    if "multipart/form-data" not in content_type or not found:
        return None
    for chunk in raw.split(b"--" + found.group(1).encode())[1:]:
        head, _, data = chunk.partition(b"\r\n\r\n")
        field_name = re.search(rb';\s*name="([^"]*)"', head)
        if field_name and field_name.group(1).decode() == name:
            filename = re.search(rb';\s*filename="([^"]*)"', head)
            fname = filename.group(1).decode("utf-8", "replace") if filename else ""
            return fname, data[:-2] if data.endswith(b"\r\n") else data
    return None


def _has_escaped_non_ascii(raw: bytes) -> bool:
    return any(int(m.group(1), 16) >= 0x80 for m in _ESCAPE.finditer(raw))


def _sanitise(html: str) -> str:
    """What draft/add does to content: JS removed, non-mmbiz <img> dropped."""
    html = _EVENT_ATTR.sub("", _SCRIPT.sub("", html))

    def keep_img(m: re.Match[str]) -> str:
        src = _SRC.search(m.group(0))
        url = next((g for g in src.groups() if g), "") if src else ""
        return m.group(0) if _MMBIZ.match(url) else ""

    return _IMG.sub(keep_img, html)


def _plain_text(html: str) -> str:
    return re.sub(r"\s+", " ", _TAG.sub("", html)).strip()


def _int_arg(value: Any) -> int | None:
    """publish_id and msg_id arrive as int or digit string; both are accepted."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _page_args(body: dict[str, Any]) -> tuple[int, int] | None:
    offset, count = body.get("offset", 0), body.get("count")
    if not isinstance(offset, int) or not isinstance(count, int):
        return None
    if offset < 0 or not 1 <= count <= 20:
        return None
    return offset, count


# --------------------------------------------------------------------------- the fake


class FakeWeChat:
    """The fake API. Thread-safe: one lock guards all state; HTTP I/O happens outside it.

    Settable attributes (between calls): ``clock``, ``verified`` (False -> freepublish/*
    and mass send answer 48001), ``whitelisted`` (False -> token calls answer 40164),
    ``comments_allowed`` (False -> need_open_comment answers 88000), ``quotas``
    (path -> daily limit or None), ``token_ttl``, ``token_overlap``,
    ``publish_polls``/``publish_seconds`` (default progress of a publish: status 1 for
    that many ``freepublish/get`` polls or seconds, whichever ends first; None = no limit),
    ``mass_polls``, ``push_url``/``push_mode``/``push_delay``/``push_token``,
    ``ids_as_strings`` (publish_id/msg_data_id sent as strings), ``batchget_includes_publishing``,
    ``reject_escaped_unicode``.
    """

    def __init__(self, appid: str = "wxTESTAPPID", secret: str = "test-secret", *,
                 host: str = "127.0.0.1", port: int = 0, token_ttl: int = 7200,
                 token_overlap: int = 300, clock: Callable[[], datetime] | None = None,
                 start: bool = True) -> None:
        self.appid, self.secret = appid, secret
        self.clock: Callable[[], datetime] = clock or shanghai_now
        self.token_ttl, self.token_overlap = token_ttl, token_overlap
        self.verified = True
        self.whitelisted = True
        self.comments_allowed = True
        self.quotas: dict[str, int | None] = dict(DEFAULT_QUOTAS)
        self.force_refresh_per_day, self.force_refresh_interval = 20, 30.0
        self.publish_polls: int | None = 1
        self.publish_seconds: float | None = None
        self.mass_polls: int | None = 0
        self.push_url: str | None = None
        self.push_mode, self.push_delay, self.push_token = "on_time", 1.0, "pushtoken"
        self.push_timeout = 5.0
        self.ids_as_strings = False
        self.batchget_includes_publishing = False
        self.reject_escaped_unicode = True
        self.analytics_family = "new"
        self.analytics_ready = dt_time(8, 0)
        self.not_ready_days: set[date] = set()
        self.article_reads: Callable[[PublishedArticle, int], int] = default_reads
        self.ledger = Ledger()
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._init_state()
        self._server = _Server((host, port), _Handler)
        self._server.fake = self
        self._threads: list[threading.Thread] = []
        if start:
            self.start()

    def _init_state(self) -> None:
        self._faults: dict[str, deque[_Fault]] = {}
        self._tokens: dict[str, _Token] = {}
        self._current: dict[str, _Token] = {}
        self._force_refreshes: list[datetime] = []
        self._usage: dict[tuple[date, str], int] = {}
        self._materials: dict[str, MaterialRecord] = {}
        self._drafts: dict[str, DraftRecord] = {}
        self._draft_seq: dict[str, int] = {}
        self._seq = 0
        self._publishes: dict[int, PublishRecord] = {}
        self._articles: dict[str, PublishRecord] = {}
        self._mass: dict[int, MassSendRecord] = {}
        self._client_ids_sent: dict[str, MassSendRecord] = {}
        self._client_ids_tried: dict[str, datetime] = {}
        self._next_id = 2_247_483_650 + secrets.randbelow(10_000)
        self._outbox: list[_Push] = []
        self._conns: set[socket.socket] = set()
        self._routes: dict[str, tuple[str, bool, Callable[[_Request], _Reply]]] = {
            # path: (method, needs access_token, handler)
            "/cgi-bin/token": ("GET", False, self._token),
            "/cgi-bin/stable_token": ("POST", False, self._stable_token),
            "/cgi-bin/media/uploadimg": ("POST", True, self._uploadimg),
            "/cgi-bin/material/add_material": ("POST", True, self._add_material),
            "/cgi-bin/draft/add": ("POST", True, self._draft_add),
            "/cgi-bin/draft/get": ("POST", True, self._draft_get),
            "/cgi-bin/draft/update": ("POST", True, self._draft_update),
            "/cgi-bin/draft/delete": ("POST", True, self._draft_delete),
            "/cgi-bin/draft/count": ("GET", True, self._draft_count),
            "/cgi-bin/draft/batchget": ("POST", True, self._draft_batchget),
            "/cgi-bin/freepublish/submit": ("POST", True, self._fp_submit),
            "/cgi-bin/freepublish/get": ("POST", True, self._fp_get),
            "/cgi-bin/freepublish/batchget": ("POST", True, self._fp_batchget),
            "/cgi-bin/freepublish/getarticle": ("POST", True, self._fp_getarticle),
            "/cgi-bin/freepublish/delete": ("POST", True, self._fp_delete),
            "/cgi-bin/message/mass/sendall": ("POST", True, self._mass_sendall),
            "/cgi-bin/message/mass/get": ("POST", True, self._mass_get),
            "/datacube/getarticletotaldetail": ("POST", True, self._dc_totaldetail),
            "/datacube/getarticletotal": ("POST", True, self._dc_total),
            "/datacube/getusersummary": ("POST", True, self._dc_usersummary),
            "/datacube/getusercumulate": ("POST", True, self._dc_usercumulate),
        }

    # ----------------------------------------------------------------- lifecycle

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        if self._threads:
            return
        serve = functools.partial(self._server.serve_forever, poll_interval=0.01)
        for target in (serve, self._tick_loop):
            thread = threading.Thread(target=target, daemon=True, name="fakewechat")
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        """Stop serving and cut every open connection (also those of sleeping faults)."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._threads:
            self._server.shutdown()
        self._server.server_close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(timeout=2)

    def __enter__(self) -> FakeWeChat:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            (self._conns.add if add else self._conns.discard)(conn)

    # ----------------------------------------------------------------- test controls

    def inject(self, endpoint: str, fault: str, times: int = 1, **kw: Any) -> None:
        """Queue ``fault`` for the next ``times`` calls of ``endpoint`` (consumed in order).

        errcode(code, errmsg=None, extra=None, process=False)  answer this error;
            process=True does the real work first (the "it happened but said -1" case)
        http_status(status=502, body=None, process=False)       non-JSON body, HTTP status
        latency(seconds, process_first=True)                     answer late (work done first)
        process_then_drop(rst=False)     do the work, then close the socket unanswered
        drop_before(rst=False)           close the socket, do nothing
        expire_token()                   every current token expires now, then serve normally
        stuck(polls=None, seconds=None, push=...)       (submit/sendall) stay in progress for
            N status polls or seconds; both None = forever
        final_status(status, fail_idx=None, then=None, then_after_polls=1, push=...)
            (submit) end at 0/2/3/4, with then=5/6 flip later; (sendall) status="SEND_FAIL"
        push(mode, delay=1.0, copies=2)  (submit) how the PUBLISHJOBFINISH push is delivered:
            on_time | late | duplicate | out_of_order | early | never
        """
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {sorted(FAULTS)}")
        missing = [k for k in _REQUIRED.get(fault, ()) if k not in kw]
        if missing:
            raise ValueError(f"fault {fault!r} needs {', '.join(missing)}")
        mode = kw.get("push", kw.get("mode"))
        if mode is not None and mode not in PUSH_MODES:
            raise ValueError(f"unknown push mode {mode!r}; known: {sorted(PUSH_MODES)}")
        with self._lock:
            queue = self._faults.setdefault(endpoint_path(endpoint), deque())
            queue.extend(_Fault(fault, dict(kw)) for _ in range(times))

    def pending_faults(self, endpoint: str) -> int:
        with self._lock:
            return len(self._faults.get(endpoint_path(endpoint), ()))

    def expire_tokens(self) -> None:
        """Every token issued so far is expired from now on (42001)."""
        with self._lock:
            self._expire_all()

    def set_publish_status(self, publish_id: int, status: int) -> None:
        """Change a publish's status by hand (for example 5: the user deleted everything)."""
        with self._lock:
            pub = self._publishes[publish_id]
            if pub.status == 1:
                assert pub.plan is not None
                pub.plan.final = status
                self._finish(pub)
            else:
                pub.status = status

    def reset_quotas(self) -> None:
        """Like clear_quota: today's counters start again."""
        with self._lock:
            self._usage.clear()

    def usage(self, endpoint: str) -> int:
        """Calls counted against today's quota of ``endpoint``."""
        with self._lock:
            return self._usage.get((self._today(), endpoint_path(endpoint)), 0)

    def drafts(self) -> list[DraftRecord]:
        """Drafts currently in the draft box, newest first."""
        with self._lock:
            return [self._drafts[m] for m in self._draft_order()]

    def current_token(self, family: str = "stable") -> str | None:
        with self._lock:
            tok = self._current.get(family)
            return tok.value if tok else None

    def tick(self) -> None:
        """Advance time-based progress and deliver due pushes now (the ticker does it too)."""
        with self._lock:
            for pub in self._publishes.values():
                # only time moves things here; polls are counted by freepublish/get itself
                if pub.status == 1 and self._due(pub.plan, None, pub.submitted_at):
                    self._finish(pub)
            due = [p for p in self._outbox if not p.held and p.due <= time.monotonic()]
            for push in due:
                self._outbox.remove(push)
        for push in due:
            self._deliver(push)

    def release_pushes(self) -> None:
        """Let pushes held back by the out_of_order mode go out at the next tick."""
        with self._lock:
            for push in self._outbox:
                push.held = False

    # ----------------------------------------------------------------- request flow

    def _handle(self, h: _Handler) -> None:
        url = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length > 0 else b""
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        headers = dict(h.headers.items())
        record = CallRecord(url.path, h.command, self.clock(), query, raw, headers)
        with self._lock:
            self.ledger.calls.append(record)
            queue = self._faults.get(url.path)
            fault = queue.popleft() if queue else None
        record.fault = fault.name if fault else None
        req = _Request(h.command, url.path, query, headers, raw, fault)
        self._serve(h, req, record)

    def _serve(self, h: _Handler, req: _Request, record: CallRecord) -> None:
        name, kw = (req.fault.name, req.fault.params) if req.fault else ("", {})
        if name == "drop_before":
            return self._drop(h, kw.get("rst", False))
        if name in ("errcode", "http_status") and not kw.get("process", False):
            return self._send(h, record, self._fault_reply(name, kw))
        if name == "expire_token":
            self.expire_tokens()
        if name == "latency" and not kw.get("process_first", True):
            self._stop.wait(float(kw["seconds"]))
        reply = self._process(req)
        if name == "process_then_drop":
            record.errcode = reply.body.get("errcode", 0) if reply.status == 200 else None
            return self._drop(h, kw.get("rst", False))
        if name in ("errcode", "http_status"):
            reply = self._fault_reply(name, kw)
        if name == "latency" and kw.get("process_first", True):
            self._stop.wait(float(kw["seconds"]))
        for action in reply.before_send:
            action()
        return self._send(h, record, reply)

    def _fault_reply(self, name: str, kw: dict[str, Any]) -> _Reply:
        if name == "errcode":
            return _error(int(kw["code"]), kw.get("errmsg"), **kw.get("extra", {}))
        status = int(kw.get("status", 502))
        phrase = HTTPStatus(status).phrase
        body = kw.get("body", f"<html><body><h1>{status} {phrase}</h1></body></html>")
        return _Reply({"_raw": body}, "text/html", status)

    def _send(self, h: _Handler, record: CallRecord, reply: _Reply) -> None:
        raw = reply.body.get("_raw")
        data = (raw if isinstance(raw, str) else json.dumps(reply.body, ensure_ascii=False))
        payload = data.encode()
        record.http_status = reply.status
        record.errcode = reply.body.get("errcode", 0) if reply.status == 200 else None
        try:
            h.send_response(reply.status)
            h.send_header("Content-Type", reply.content_type)
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            h.wfile.write(payload)
        except OSError:
            h.close_connection = True  # the client gave up (read timeout)

    def _drop(self, h: _Handler, rst: bool) -> None:
        """Close without an answer; rst=True sends a TCP reset instead of a clean FIN."""
        h.close_connection = True
        sock = h.connection
        try:
            if rst:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
            else:
                sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _process(self, req: _Request) -> _Reply:
        route = self._routes.get(req.path)
        if self.analytics_family == "legacy" and req.path == "/datacube/getarticletotaldetail":
            route = None
        if route is None:
            return _Reply({"_raw": "404 page not found"}, "text/plain", 404)
        method, needs_token, handler = route
        if req.method != method:
            return _error(43002 if method == "POST" else 43001)
        with self._lock:
            reply = self._gatekeep(req, needs_token) or handler(req)
        if req.path == "/cgi-bin/media/uploadimg":
            reply.content_type = "text/plain"  # the real API labels its JSON text/plain here
        return reply

    def _gatekeep(self, req: _Request, needs_token: bool) -> _Reply | None:
        """Token, account permission, daily quota and body checks, in that order."""
        if needs_token and (code := self._check_token(req.query.get("access_token"))):
            return _error(code)
        if not self.verified and req.path.startswith(
                ("/cgi-bin/freepublish/", "/cgi-bin/message/mass/", "/datacube/")):
            return _error(48001)
        if self._over_quota(req.path):
            return _error(45009)
        if req.method == "POST" and not req.path.endswith(("uploadimg", "add_material")):
            return self._parse_body(req)
        return None

    def _parse_body(self, req: _Request) -> _Reply | None:
        """Parse JSON whatever the Content-Type says, as WeChat does."""
        if not req.raw.strip():
            return _error(44002)
        if self.reject_escaped_unicode and _has_escaped_non_ascii(req.raw):
            return _error(40033)
        try:
            body = json.loads(req.raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return _error(47001)
        if not isinstance(body, dict):
            return _error(47001)
        req.body = body
        return None

    def _today(self) -> date:
        return self.clock().astimezone(SHANGHAI).date()

    def _over_quota(self, path: str) -> bool:
        key = (self._today(), path)
        limit = self.quotas.get(path)
        if limit is not None and self._usage.get(key, 0) >= limit:
            return True
        self._usage[key] = self._usage.get(key, 0) + 1
        return False

    # ----------------------------------------------------------------- tokens

    def _check_token(self, value: str | None) -> int | None:
        if not value:
            return 41001
        tok = self._tokens.get(value)
        now = self.clock()
        if tok is None:
            return 40001
        if now >= tok.expires_at:
            return 42001
        overlap_end = tok.superseded_at and tok.superseded_at + timedelta(
            seconds=self.token_overlap)
        if overlap_end and now >= overlap_end:
            return 40001
        return None

    def _issue(self, family: str) -> _Token:
        now = self.clock()
        old = self._current.get(family)
        if old and old.superseded_at is None:
            old.superseded_at = now  # still valid for token_overlap seconds
        tok = _Token(secrets.token_urlsafe(100), family,
                     now + timedelta(seconds=self.token_ttl))
        self._tokens[tok.value] = tok
        self._current[family] = tok
        return tok

    def _expire_all(self) -> None:
        now = self.clock()
        for tok in self._tokens.values():
            tok.expires_at = min(tok.expires_at, now)

    def _credentials_error(self, appid: Any, secret: Any) -> int | None:
        if not appid:
            return 41002
        if appid != self.appid:
            return 40013
        if not self.whitelisted:
            return 40164
        if not secret:
            return 41004
        return 40125 if secret != self.secret else None

    def _token_reply(self, tok: _Token) -> _Reply:
        left = math.ceil((tok.expires_at - self.clock()).total_seconds())
        return _Reply({"access_token": tok.value, "expires_in": max(left, 0)})

    def _token(self, req: _Request) -> _Reply:
        q = req.query
        code = self._credentials_error(q.get("appid"), q.get("secret"))
        if code is None and q.get("grant_type") != "client_credential":
            code = 40002
        return _error(code) if code else self._token_reply(self._issue("basic"))

    def _stable_token(self, req: _Request) -> _Reply:
        b = req.body
        code = self._credentials_error(b.get("appid"), b.get("secret"))
        if code is None and b.get("grant_type") != "client_credential":
            code = 40002
        if code:
            return _error(code)
        if b.get("force_refresh") is True:
            return self._force_refresh()
        cur = self._current.get("stable")
        # the platform rotates the stable token token_overlap seconds before it expires
        if cur is None or cur.expires_at - self.clock() <= timedelta(seconds=self.token_overlap):
            cur = self._issue("stable")
        return self._token_reply(cur)

    def _force_refresh(self) -> _Reply:
        now = self.clock()
        today = [t for t in self._force_refreshes if t.astimezone(SHANGHAI).date() == now.date()]
        too_soon = today and (now - today[-1]).total_seconds() < self.force_refresh_interval
        if len(today) >= self.force_refresh_per_day or too_soon:
            return _error(45009)
        self._force_refreshes.append(now)
        return self._token_reply(self._issue("stable"))

    # ----------------------------------------------------------------- images

    def _upload(self, req: _Request) -> tuple[str, bytes] | _Reply:
        part = _multipart_file(req.headers.get("Content-Type", ""), req.raw, "media")
        return part if part else _error(41005)

    def _mmbiz_url(self, kind: str) -> str:
        fmt = "jpeg" if kind == "jpeg" else kind
        return (f"http://mmbiz.qpic.cn/sz_mmbiz_{kind[:3]}/{secrets.token_urlsafe(30)}"
                f"/0?wx_fmt={fmt}")

    def _uploadimg(self, req: _Request) -> _Reply:
        part = self._upload(req)
        if isinstance(part, _Reply):
            return part
        kind = _image_kind(part[1])
        if kind is None or kind not in ("jpeg", "png"):
            return _error(40005)
        if len(part[1]) >= MB:
            return _error(40009)
        url = self._mmbiz_url(kind)
        self.ledger.images.append(url)
        return _Reply({"url": url})

    def _add_material(self, req: _Request) -> _Reply:
        mtype = req.query.get("type", "")
        if mtype not in ("image", "thumb"):
            return _error(40004)
        part = self._upload(req)
        if isinstance(part, _Reply):
            return part
        kind, size = _image_kind(part[1]), len(part[1])
        allowed = ("jpeg",) if mtype == "thumb" else ("jpeg", "png", "gif", "bmp")
        if kind is None or kind not in allowed:
            return _error(40005)
        if mtype == "thumb" and size > 64 * 1024:
            return _error(40012)
        if size > 10 * MB:
            return _error(40009)
        rec = MaterialRecord(secrets.token_urlsafe(48), mtype, self._mmbiz_url(kind), size,
                             part[0])
        self._materials[rec.media_id] = rec
        self.ledger.materials.append(rec)
        body: dict[str, Any] = {"media_id": rec.media_id}
        if mtype == "image":
            body["url"] = rec.url
        return _Reply(body)

    # ----------------------------------------------------------------- drafts

    def _article_error(self, a: Any) -> int | None:
        if not isinstance(a, dict):
            return 47001
        title, content = a.get("title"), a.get("content")
        if not isinstance(title, str) or not title.strip():
            return 44003
        if not isinstance(content, str) or not content.strip():
            return 44003
        checks = [
            (len(title) > 32, 45003),
            (len(str(a.get("author") or "")) > 16, 45110),
            (len(str(a.get("digest") or "")) > 128, 45004),
            (len(content) >= 20_000 or len(content.encode()) >= MB, 45002),
            (self._bad_source_url(a.get("content_source_url")), 41039),
            (self._bad_media(a), 40007),
            (bool(a.get("need_open_comment")) and not self.comments_allowed, 88000),
        ]
        return next((code for bad, code in checks if bad), None)

    @staticmethod
    def _bad_source_url(url: Any) -> bool:
        if url in (None, ""):
            return False
        if not isinstance(url, str) or len(url.encode()) > 1024:
            return True
        return not url.lower().startswith(("http://", "https://"))

    def _bad_media(self, a: dict[str, Any]) -> bool:
        if a.get("article_type", "news") == "newspic":
            images = (a.get("image_info") or {}).get("image_list") or []
            ids = [i.get("image_media_id") for i in images if isinstance(i, dict)]
            return not ids or len(ids) > 20 or any(i not in self._materials for i in ids)
        return a.get("thumb_media_id") not in self._materials

    def _store_article(self, a: dict[str, Any], single: bool) -> dict[str, Any]:
        stored = {"article_type": "news", "author": "", "digest": "", "content_source_url": "",
                  "need_open_comment": 0, "only_fans_can_comment": 0, "show_cover_pic": 0,
                  **a}
        stored["content"] = _sanitise(a["content"])
        if single and not stored["digest"]:
            stored["digest"] = _plain_text(stored["content"])[:54]
        thumb = self._materials.get(str(a.get("thumb_media_id")))
        stored["thumb_url"] = thumb.url if thumb else ""
        return stored

    def _articles_error(self, articles: Any) -> int | None:
        if not isinstance(articles, list) or not articles:
            return 44003
        if len(articles) > 8:
            return 45008
        return next((c for a in articles if (c := self._article_error(a))), None)

    def _bump(self, media_id: str) -> None:
        self._seq += 1
        self._draft_seq[media_id] = self._seq

    def _draft_order(self) -> list[str]:
        return sorted(self._drafts, key=lambda m: self._draft_seq[m], reverse=True)

    def _draft_add(self, req: _Request) -> _Reply:
        articles = req.body.get("articles")
        if (code := self._articles_error(articles)) or not isinstance(articles, list):
            return _error(code or 47001)
        now = self.clock()
        stored = [self._store_article(a, len(articles) == 1) for a in articles]
        rec = DraftRecord(secrets.token_urlsafe(48), stored, articles, now, now)
        self._drafts[rec.media_id] = rec
        self._bump(rec.media_id)
        self.ledger.drafts.append(rec)
        return _Reply({"media_id": rec.media_id})

    def _with_preview(self, articles: list[dict[str, Any]], no_content: bool = False
                      ) -> list[dict[str, Any]]:
        out = []
        for a in articles:
            item = {**a, "url": f"https://mp.weixin.qq.com/s?__biz=FAKE&tempkey={_rid()}"}
            if no_content:
                item.pop("content", None)
            out.append(item)
        return out

    def _draft_get(self, req: _Request) -> _Reply:
        rec = self._drafts.get(str(req.body.get("media_id")))
        if rec is None:
            return _error(40007)
        return _Reply({"news_item": self._with_preview(rec.articles)})

    def _draft_update(self, req: _Request) -> _Reply:
        rec = self._drafts.get(str(req.body.get("media_id")))
        index, article = req.body.get("index"), req.body.get("articles")
        if rec is None:
            return _error(40007)
        if not isinstance(index, int) or not 0 <= index < len(rec.articles):
            return _error(40114)
        if (code := self._article_error(article)) or not isinstance(article, dict):
            return _error(code or 47001)
        rec.articles[index] = self._store_article(article, len(rec.articles) == 1)
        rec.updated_at = self.clock()
        self._bump(rec.media_id)
        return _Reply({"errcode": 0, "errmsg": "ok"})

    def _remove_draft(self, media_id: str, by: str) -> DraftRecord:
        rec = self._drafts.pop(media_id)
        self._draft_seq.pop(media_id, None)
        rec.removed_at, rec.removed_by = self.clock(), by
        return rec

    def _draft_delete(self, req: _Request) -> _Reply:
        media_id = str(req.body.get("media_id"))
        if media_id not in self._drafts:
            return _error(40007)
        self._remove_draft(media_id, "delete")
        return _Reply({"errcode": 0, "errmsg": "ok"})

    def _draft_count(self, req: _Request) -> _Reply:
        return _Reply({"total_count": len(self._drafts)})

    def _draft_batchget(self, req: _Request) -> _Reply:
        page = _page_args(req.body)
        if page is None:
            return _error(40097)
        order = self._draft_order()
        chosen = order[page[0]:page[0] + page[1]]
        no_content = bool(req.body.get("no_content"))
        items = [{"media_id": m,
                  "content": {"news_item": self._with_preview(self._drafts[m].articles,
                                                              no_content)},
                  "update_time": int(self._drafts[m].updated_at.timestamp())}
                 for m in chosen]
        return _Reply({"total_count": len(order), "item_count": len(items), "item": items})

    # ----------------------------------------------------------------- free publish

    def _new_id(self) -> int:
        self._next_id += 1 + secrets.randbelow(7)
        return self._next_id

    def _wire_id(self, value: int) -> int | str:
        return str(value) if self.ids_as_strings else value

    def _plan(self, fault: _Fault | None, final: int | str, polls: int | None,
              seconds: float | None) -> _Plan:
        kw = fault.params if fault else {}
        name = fault.name if fault else ""
        plan = _Plan(polls, seconds, final, push_mode=self.push_mode, push_delay=self.push_delay)
        if name == "stuck":
            plan.polls, plan.seconds = kw.get("polls"), kw.get("seconds")
        if name == "final_status":
            plan.final = kw.get("status", final)
            plan.fail_idx = list(kw.get("fail_idx") or ([1] if plan.final in (2, 4) else []))
            plan.later, plan.later_after_polls = kw.get("then"), kw.get("then_after_polls", 1)
        plan.push_mode = kw.get("push", kw.get("mode", plan.push_mode))
        plan.push_delay = kw.get("delay", plan.push_delay)
        plan.push_copies = kw.get("copies", plan.push_copies)
        return plan

    def _due(self, plan: _Plan | None, polls: int | None, since: datetime) -> bool:
        if plan is None:
            return False
        if plan.polls is not None and polls is not None and polls >= plan.polls:
            return True
        elapsed = (self.clock() - since).total_seconds()
        return plan.seconds is not None and elapsed >= plan.seconds

    def _fp_submit(self, req: _Request) -> _Reply:
        media_id = str(req.body.get("media_id"))
        if media_id not in self._drafts:
            return _error(40007)  # unknown, deleted, or already published / mass-sent
        draft = self._remove_draft(media_id, "freepublish")
        plan = self._plan(req.fault, 0, self.publish_polls, self.publish_seconds)
        pub = PublishRecord(self._new_id(), self._new_id(), media_id, draft.articles,
                            self.clock(), plan=plan)
        self._publishes[pub.publish_id] = pub
        self.ledger.publishes.append(pub)
        reply = _Reply({"errcode": 0, "errmsg": "ok",
                        "publish_id": self._wire_id(pub.publish_id),
                        "msg_data_id": self._wire_id(pub.msg_data_id)})
        if plan.push_mode == "early":  # the push overtakes the submit answer
            pushes = self._finish(pub)
            reply.before_send = [functools.partial(self._deliver, p) for p in pushes]
        return reply

    def _finish(self, pub: PublishRecord) -> list[_Push]:
        """Status 1 ends; returns the pushes made (queued unless the mode is early)."""
        assert pub.plan is not None
        pub.status = int(pub.plan.final)
        pub.finished_at = self.clock()
        pub.fail_idx = list(pub.plan.fail_idx)
        if pub.status == 0:
            pub.article_id = secrets.token_urlsafe(33)
            pub.article_urls = [
                f"https://mp.weixin.qq.com/s?__biz=FAKE&mid={pub.msg_data_id}&idx={i}"
                f"&sn={secrets.token_hex(16)}" for i in range(1, len(pub.articles) + 1)]
            self._articles[pub.article_id] = pub
        pub.polls = 0
        return self._make_pushes(pub)

    def _advance(self, pub: PublishRecord) -> None:
        """One freepublish/get poll: progress by polls, and the later 5/6 flip."""
        if pub.status == 1:
            if self._due(pub.plan, pub.polls, pub.submitted_at):
                self._finish(pub)
            else:
                pub.polls += 1
            return
        plan = pub.plan
        if pub.status == 0 and plan and plan.later is not None:
            pub.polls += 1
            if pub.polls >= plan.later_after_polls:
                pub.status = plan.later

    def _find_publish(self, req: _Request) -> PublishRecord | None:
        pid = _int_arg(req.body.get("publish_id"))
        return self._publishes.get(pid) if pid is not None else None

    def _fp_get(self, req: _Request) -> _Reply:
        pub = self._find_publish(req)
        if pub is None:
            return _error(53502)
        self._advance(pub)
        body: dict[str, Any] = {"publish_id": self._wire_id(pub.publish_id),
                                "publish_status": pub.status, "fail_idx": pub.fail_idx}
        if pub.article_id:
            body["article_id"] = pub.article_id
            body["article_detail"] = self._article_detail(pub)
        return _Reply(body)

    @staticmethod
    def _article_detail(pub: PublishRecord) -> dict[str, Any]:
        items = [{"idx": i, "article_url": u} for i, u in enumerate(pub.article_urls, 1)]
        return {"count": len(items), "item": items}

    def _news_items(self, pub: PublishRecord, no_content: bool = False) -> list[dict[str, Any]]:
        items = []
        for i, a in enumerate(pub.articles, 1):
            item = {**a, "url": pub.article_urls[i - 1] if pub.article_urls else "",
                    "is_deleted": i in pub.deleted_idx or pub.status in (5, 6)}
            if no_content:
                item.pop("content", None)
            items.append(item)
        return items

    def _fp_batchget(self, req: _Request) -> _Reply:
        page = _page_args(req.body)
        if page is None:
            return _error(40097)
        shown = (0, 1, 5, 6) if self.batchget_includes_publishing else (0, 5, 6)
        pubs = sorted((p for p in self._publishes.values() if p.status in shown),
                      key=lambda p: (p.finished_at or p.submitted_at, p.publish_id), reverse=True)
        chosen = pubs[page[0]:page[0] + page[1]]
        no_content = bool(req.body.get("no_content"))
        items = [{"article_id": p.article_id or "",
                  "content": {"news_item": self._news_items(p, no_content)},
                  "update_time": int((p.finished_at or p.submitted_at).timestamp())}
                 for p in chosen]
        return _Reply({"total_count": len(pubs), "item_count": len(items), "item": items})

    def _fp_getarticle(self, req: _Request) -> _Reply:
        pub = self._articles.get(str(req.body.get("article_id")))
        if pub is None:
            return _error(53600)
        return _Reply({"news_item": self._news_items(pub)})

    def _fp_delete(self, req: _Request) -> _Reply:
        pub = self._articles.get(str(req.body.get("article_id")))
        index = req.body.get("index", 0)
        if pub is None:
            return _error(53600)
        if not isinstance(index, int) or not 0 <= index <= len(pub.articles):
            return _error(40114)
        pub.deleted_idx |= set(range(1, len(pub.articles) + 1)) if index == 0 else {index}
        if len(pub.deleted_idx) == len(pub.articles):
            pub.status = 5
        return _Reply({"errcode": 0, "errmsg": "ok"})

    # ----------------------------------------------------------------- mass send

    def _mass_sendall(self, req: _Request) -> _Reply:
        b, now = req.body, self.clock()
        if b.get("msgtype") != "mpnews":
            return _error(40008)
        key = b.get("clientmsgid")
        if isinstance(key, str) and key:
            if refused := self._client_id_refusal(key, now):
                return refused
        media_id = str((b.get("mpnews") or {}).get("media_id"))
        if media_id not in self._drafts:
            return _error(40007)
        if any(m.sent_at.astimezone(SHANGHAI).date() == now.date() for m in self._mass.values()):
            return _error(45028)  # one successful group send per day
        return self._mass_accept(req, media_id, key if isinstance(key, str) else None)

    def _client_id_refusal(self, key: str, now: datetime) -> _Reply | None:
        last = self._client_ids_tried.get(key)
        if last and (now - last).total_seconds() < 60:
            return _error(45066)
        self._client_ids_tried[key] = now
        sent = self._client_ids_sent.get(key)
        if sent and now - sent.sent_at < timedelta(hours=24):
            return _error(45065, msg_id=self._wire_id(sent.msg_id))
        return None

    def _mass_accept(self, req: _Request, media_id: str, key: str | None) -> _Reply:
        draft = self._remove_draft(media_id, "mass_send")
        filt = req.body.get("filter") or {}
        plan = self._plan(req.fault, "SEND_SUCCESS", self.mass_polls, None)
        rec = MassSendRecord(self._new_id(), self._new_id(), media_id, key,
                             bool(filt.get("is_to_all")), draft.articles, self.clock(),
                             plan=plan)
        self._mass[rec.msg_id] = rec
        if key:
            self._client_ids_sent[key] = rec
        self.ledger.mass_sends.append(rec)
        return _Reply({"errcode": 0, "errmsg": "send job submission success",
                       "msg_id": self._wire_id(rec.msg_id),
                       "msg_data_id": self._wire_id(rec.msg_data_id)})

    def _mass_get(self, req: _Request) -> _Reply:
        msg_id = _int_arg(req.body.get("msg_id"))
        rec = self._mass.get(msg_id) if msg_id is not None else None
        if rec is None:
            return _error(40007)
        if rec.status == "SENDING":
            if self._due(rec.plan, rec.polls, rec.sent_at):
                assert rec.plan is not None
                rec.status = str(rec.plan.final)
            else:
                rec.polls += 1
        return _Reply({"msg_id": self._wire_id(rec.msg_id), "msg_status": rec.status})

    # ----------------------------------------------------------------- by hand

    def send_by_hand(self, media_id: str) -> MassSendRecord:
        """An editor sends a draft from the WeChat console (no API call, no clientmsgid)."""
        with self._lock:
            draft = self._remove_draft(media_id, "console")
            rec = MassSendRecord(self._new_id(), self._new_id(), media_id, None, True,
                                 draft.articles, self.clock(), status="SEND_SUCCESS")
            self._mass[rec.msg_id] = rec
            self.ledger.mass_sends.append(rec)
            return rec

    # ----------------------------------------------------------------- analytics

    def _dc_dates(self, req: _Request) -> tuple[date, date] | _Reply:
        """begin/end checked as WeChat does: 61500 format, 61501 range, 61503 not ready."""
        name = req.path.rsplit("/", 1)[-1]
        try:
            begin = date.fromisoformat(str(req.body.get("begin_date")))
            end = date.fromisoformat(str(req.body.get("end_date")))
        except ValueError:
            return _error(61500)
        now = self.clock()
        today = now.astimezone(SHANGHAI).date()
        if begin > end or end >= today or begin < ANALYTICS_START or \
                (end - begin).days + 1 > SPANS[name]:
            return _error(61501)
        late = end == today - timedelta(days=1) and now.time() < self.analytics_ready
        if late or any(begin <= d <= end for d in self.not_ready_days):
            return _error(61503)
        return begin, end

    def _ready(self, day: date) -> bool:
        return day not in self.not_ready_days

    def article_figures(self, article: PublishedArticle, day: date) -> dict[str, int]:
        """An article's cumulative figures on ``day`` (the test's hand computation uses this
        too): reads from ``article_reads``, the rest fixed fractions of them."""
        reads = self.article_reads(article, (day - article.time.astimezone(SHANGHAI).date()).days)
        return {"read_count": reads, "read_user": reads * 4 // 5, "share_count": reads // 10,
                "share_user": reads // 12, "collection_user": reads // 20,
                "like_user": reads // 25, "zaikan_user": reads // 50}

    def _day_articles(self, day: date, kinds: tuple[str, ...]) -> list[tuple[
            PublishedArticle, int]]:
        out = []
        for a in self.ledger.published_articles():
            if a.kind not in kinds or a.time.astimezone(SHANGHAI).date() != day:
                continue
            if a.kind == "freepublish" and a.status != 0:
                continue
            data_id = (self._publishes[a.ident].msg_data_id if a.kind == "freepublish"
                       else self._mass[a.ident].msg_data_id)
            out.append((a, data_id))
        return out

    def _stat_days(self, start: date, days: int) -> list[date]:
        yesterday = self.clock().astimezone(SHANGHAI).date() - timedelta(days=1)
        last = min(yesterday, start + timedelta(days=days - 1))
        return [start + timedelta(days=i) for i in range((last - start).days + 1)
                if self._ready(start + timedelta(days=i))]

    def _dc_totaldetail(self, req: _Request) -> _Reply:
        dates = self._dc_dates(req)
        if isinstance(dates, _Reply):
            return dates
        items = []
        for a, data_id in self._day_articles(dates[0], ("freepublish", "mass_send")):
            details = [{"stat_date": d.isoformat(), **self.article_figures(a, d)}
                       for d in self._stat_days(dates[0], 30)]
            items.append({"ref_date": dates[0].isoformat(), "msgid": f"{data_id}_{a.idx}",
                          "title": a.title, "publish_type": 0 if a.kind == "mass_send" else 1,
                          "detail_list": details})
        return _Reply({"list": items})

    def _dc_total(self, req: _Request) -> _Reply:
        dates = self._dc_dates(req)
        if isinstance(dates, _Reply):
            return dates
        items = []
        for a, data_id in self._day_articles(dates[0], ("mass_send",)):
            details = []
            for d in self._stat_days(dates[0], 7):
                f = self.article_figures(a, d)
                details.append({"stat_date": d.isoformat(), "target_user": 1000,
                                "int_page_read_user": f["read_user"],
                                "int_page_read_count": f["read_count"],
                                "ori_page_read_user": 0, "ori_page_read_count": 0,
                                "share_user": f["share_user"], "share_count": f["share_count"],
                                "add_to_fav_user": f["collection_user"],
                                "add_to_fav_count": f["collection_user"]})
            items.append({"ref_date": dates[0].isoformat(), "msgid": f"{data_id}_{a.idx}",
                          "title": a.title, "details": details})
        return _Reply({"list": items})

    @staticmethod
    def followers(day: date) -> tuple[int, int, int]:
        """(gained, lost, cumulative) followers on ``day``: 10 in, 2 out, every day."""
        return 10, 2, 1000 + 8 * (day - date(2026, 1, 1)).days

    def _span_days(self, dates: tuple[date, date]) -> list[date]:
        return [dates[0] + timedelta(days=i) for i in range((dates[1] - dates[0]).days + 1)]

    def _dc_usersummary(self, req: _Request) -> _Reply:
        dates = self._dc_dates(req)
        if isinstance(dates, _Reply):
            return dates
        return _Reply({"list": [{"ref_date": d.isoformat(), "user_source": 0,
                                 "new_user": self.followers(d)[0],
                                 "cancel_user": self.followers(d)[1]}
                                for d in self._span_days(dates)]})

    def _dc_usercumulate(self, req: _Request) -> _Reply:
        dates = self._dc_dates(req)
        if isinstance(dates, _Reply):
            return dates
        return _Reply({"list": [{"ref_date": d.isoformat(), "user_source": 0,
                                 "cumulate_user": self.followers(d)[2]}
                                for d in self._span_days(dates)]})

    # ----------------------------------------------------------------- pushes

    def _make_pushes(self, pub: PublishRecord) -> list[_Push]:
        plan = pub.plan
        if plan is None or not self.push_url or plan.push_mode == "never":
            return []
        xml = self._push_xml(pub)
        now = time.monotonic()
        due = now + plan.push_delay if plan.push_mode == "late" else now
        copies = plan.push_copies if plan.push_mode == "duplicate" else 1
        pushes = [_Push(pub.publish_id, pub.status, xml, due,
                        held=plan.push_mode == "out_of_order") for _ in range(copies)]
        if plan.push_mode != "early":
            self._outbox.extend(pushes)
        return pushes

    def _push_xml(self, pub: PublishRecord) -> str:
        items = "".join(f"<item><idx>{i}</idx><article_url><![CDATA[{u}]]></article_url></item>"
                        for i, u in enumerate(pub.article_urls, 1))
        detail = (f"<article_id><![CDATA[{pub.article_id}]]></article_id><article_detail>"
                  f"<count>{len(pub.article_urls)}</count>{items}</article_detail>"
                  if pub.article_id else "")
        fails = "".join(f"<fail_idx>{i}</fail_idx>" for i in pub.fail_idx)
        return ("<xml><ToUserName><![CDATA[gh_fakeaccount]]></ToUserName>"
                "<FromUserName><![CDATA[mphelper]]></FromUserName>"
                f"<CreateTime>{int(self.clock().timestamp())}</CreateTime>"
                "<MsgType><![CDATA[event]]></MsgType>"
                "<Event><![CDATA[PUBLISHJOBFINISH]]></Event>"
                f"<PublishEventInfo><publish_id>{pub.publish_id}</publish_id>"
                f"<publish_status>{pub.status}</publish_status>{detail}{fails}"
                "</PublishEventInfo></xml>")

    def _signed_push_url(self) -> str:
        """Plain-mode message push signature: sha1 of sorted token, timestamp, nonce."""
        stamp, nonce = str(int(time.time())), str(secrets.randbelow(10**9))
        sig = hashlib.sha1("".join(sorted([self.push_token, stamp, nonce])).encode()).hexdigest()
        sep = "&" if "?" in str(self.push_url) else "?"
        query = urlencode({"signature": sig, "timestamp": stamp, "nonce": nonce})
        return f"{self.push_url}{sep}{query}"

    def _deliver(self, push: _Push) -> None:
        """POST one push (outside the lock), record it, then release held pushes."""
        request = urllib.request.Request(self._signed_push_url(), data=push.xml.encode(),
                                         headers={"Content-Type": "text/xml"}, method="POST")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        status, error = None, None
        try:
            with opener.open(request, timeout=self.push_timeout) as answer:
                status = answer.status
        except OSError as exc:  # URLError and HTTPError are OSErrors
            status, error = getattr(exc, "code", None), str(exc)
        with self._lock:
            self.ledger.pushes.append(PushRecord(push.publish_id, push.status, push.xml,
                                                 self.clock(), status, error))
            if not push.held:
                for other in self._outbox:
                    other.held = False  # out_of_order: held pushes follow this one

    def _tick_loop(self) -> None:
        while not self._stop.wait(0.02):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - a test clock may raise; keep ticking
                continue


def default_reads(article: PublishedArticle, days: int) -> int:
    """Cumulative reads ``days`` after publishing: the lead article is read more, and each
    day brings fewer new readers than the one before."""
    base = (100 if article.idx == 1 else 40) + article.ident % 7
    return sum(base // (j + 1) for j in range(days + 1))


# --------------------------------------------------------------------------- fixture, CLI


@pytest.fixture
def wechat_api() -> Iterator[FakeWeChat]:
    """A started fake for appid wxTESTAPPID / secret test-secret, closed after the test."""
    with FakeWeChat(appid="wxTESTAPPID", secret="test-secret") as fake:
        yield fake


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake WeChat Official Account API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--appid", default="wxTESTAPPID")
    parser.add_argument("--secret", default="test-secret")
    parser.add_argument("--token-ttl", type=int, default=7200)
    parser.add_argument("--publish-seconds", type=float, default=None,
                        help="seconds a publish stays at status 1 (default: one poll)")
    parser.add_argument("--unverified", action="store_true", help="freepublish answers 48001")
    parser.add_argument("--push-url", default=None, help="where PUBLISHJOBFINISH is POSTed")
    args = parser.parse_args(argv)
    fake = FakeWeChat(args.appid, args.secret, host=args.host, port=args.port,
                      token_ttl=args.token_ttl)
    fake.publish_seconds, fake.verified = args.publish_seconds, not args.unverified
    fake.push_url = args.push_url
    print(fake.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        fake.close()


if __name__ == "__main__":
    main()
