"""WeChatClient against the fake WeChat server over real loopback HTTP (no mocks)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from pipeline.errors import ErrorKind, PublishError, WeChatAPIError
from pipeline.wechat.client import (
    MemoryTokenCache,
    PublishStatus,
    TokenCache,
    WeChatClient,
    classify,
)
from pipeline.wechat.codes import transport_error
from tests.fakewechat import FakeClock, FakeWeChat

APPID, SECRET = "wxTESTAPPID", "test-secret"
READ_TIMEOUT = 1.0
SLOW = READ_TIMEOUT + 0.5  # an injected latency that outlasts the client's read timeout
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
JPG = b"\xff\xd8\xff\xe0" + bytes(range(256))


class Sleeps(list[float]):
    """The client's injected sleep: records the backoff instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_client(fake: FakeWeChat, *, secret: str = SECRET, read_timeout: float = 2.0,
                tokens: TokenCache | None = None, sleeps: Sleeps | None = None,
                base_url: str | None = None) -> WeChatClient:
    session = requests.Session()
    session.trust_env = False  # loopback only, whatever proxy the machine has
    return WeChatClient(base_url or fake.base_url, APPID, secret,
                        tokens=tokens or MemoryTokenCache(), session=session,
                        connect_timeout=0.5, read_timeout=read_timeout,
                        sleep=sleeps if sleeps is not None else Sleeps())


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(wechat_api: FakeWeChat, sleeps: Sleeps) -> Iterator[WeChatClient]:
    # Short enough for the latency tests, long enough that a loaded 2-core CI machine never
    # times out an ordinary call (0.3 s did, on draft/add).
    c = make_client(wechat_api, read_timeout=READ_TIMEOUT, sleeps=sleeps)
    yield c
    c.close()


def cover(client: WeChatClient) -> str:
    return client.add_material(JPG, "cover.jpg", type="thumb")[0]


def article(client: WeChatClient, **fields: Any) -> dict[str, Any]:
    return {"title": "今日快报", "author": "编辑部", "content": "<p>正文：你好</p>",
            "thumb_media_id": cover(client),
            "content_source_url": "https://example.org/s/7?attempt=a7", **fields}


def draft(client: WeChatClient, **fields: Any) -> str:
    return client.draft_add([article(client, **fields)])


def calls(fake: FakeWeChat, endpoint: str) -> int:
    return fake.ledger.count(endpoint)


def raises(kind: ErrorKind, call: Any, *args: Any) -> WeChatAPIError:
    with pytest.raises(WeChatAPIError) as info:
        call(*args)
    assert info.value.kind is kind, str(info.value)
    return info.value


# ------------------------------------------------------------------------- happy path


def test_images_drafts_and_publishing(client: WeChatClient, wechat_api: FakeWeChat) -> None:
    url = client.upload_image(PNG, "图一.png")
    assert url.startswith("http://mmbiz.qpic.cn/")
    image_id, image_url = client.add_material(PNG, "pic.png")
    assert len(image_id) == 64 and image_url and image_url.startswith("http://mmbiz")
    media_id = draft(client, content=f'<p>你好</p><img src="{url}">')
    assert client.draft_count() == 1
    assert client.draft_get(media_id)[0]["title"] == "今日快报"
    page = client.draft_batchget(0, 20, no_content=True)
    assert page.total_count == 1 and page.items[0]["media_id"] == media_id
    publish_id = client.freepublish_submit(media_id)
    assert publish_id > 2**31 and client.draft_count() == 0
    assert client.freepublish_get(publish_id).status == 1
    done = client.freepublish_get(publish_id)
    assert done.finished and done.status == 0 and done.article_id
    assert done.article_urls[0].startswith("https://mp.weixin.qq.com/")
    listed = client.freepublish_batchget().items[0]["content"]["news_item"][0]
    assert listed["content_source_url"] == "https://example.org/s/7?attempt=a7"
    assert client.freepublish_getarticle(done.article_id)[0]["title"] == "今日快报"
    client.freepublish_delete(done.article_id)
    assert client.freepublish_get(publish_id).status == 5


def test_update_and_delete_drafts(client: WeChatClient) -> None:
    media_id = draft(client)
    client.draft_update(media_id, 0, article(client, title="改过的标题"))
    assert client.draft_get(media_id)[0]["title"] == "改过的标题"
    client.draft_delete(media_id)
    assert raises(ErrorKind.FINAL, client.draft_get, media_id).errcode == 40007


def test_bodies_are_raw_utf8_json(client: WeChatClient, wechat_api: FakeWeChat) -> None:
    draft(client, title="中文标题 \\u4f5c")  # the backslash is the user's own text
    call = wechat_api.ledger.calls_to("draft/add")[-1]
    assert "中文标题".encode() in call.raw_body
    assert b"\\u" not in call.raw_body.replace(b"\\\\u4f5c", b"")
    assert call.headers["Content-Type"] == "application/json; charset=utf-8"
    assert json.loads(call.raw_body)["articles"][0]["title"] == "中文标题 \\u4f5c"


def test_ids_sent_as_strings_are_accepted(client: WeChatClient, wechat_api: FakeWeChat) -> None:
    wechat_api.ids_as_strings = True
    publish_id = client.freepublish_submit(draft(client))
    assert isinstance(publish_id, int)
    assert client.freepublish_get(publish_id).publish_id == publish_id
    msg_id = client.mass_sendall(draft(client), "key-1")
    assert client.mass_get(msg_id).status == "SEND_SUCCESS"


def test_failed_publish_reports_the_articles(client: WeChatClient,
                                             wechat_api: FakeWeChat) -> None:
    wechat_api.inject("freepublish/submit", "final_status", status=4, fail_idx=[1])
    publish_id = client.freepublish_submit(draft(client))
    client.freepublish_get(publish_id)
    status = client.freepublish_get(publish_id)
    assert isinstance(status, PublishStatus)
    assert (status.status, status.fail_idx, status.article_id) == (4, (1,), None)


# ------------------------------------------------------------------------- tokens


def test_token_is_cached_and_renewed_a_minute_early(wechat_api: FakeWeChat) -> None:
    tokens = MemoryTokenCache()
    client = make_client(wechat_api, tokens=tokens)
    for _ in range(3):
        client.draft_count()
    assert calls(wechat_api, "stable_token") == 1
    cached = tokens.get(APPID)
    assert cached is not None and cached[1] > datetime.now(UTC) + timedelta(seconds=7000)
    tokens.put(APPID, cached[0], datetime.now(UTC) + timedelta(seconds=59))
    client.draft_count()
    assert calls(wechat_api, "stable_token") == 2


def _stable_bodies(fake: FakeWeChat) -> list[dict[str, Any]]:
    return [json.loads(c.raw_body) for c in fake.ledger.calls_to("stable_token")]


@pytest.mark.parametrize("errcode", [40001, 40014, 42001])
def test_token_error_refetches_once_and_retries(client: WeChatClient, wechat_api: FakeWeChat,
                                                errcode: int) -> None:
    client.draft_count()
    wechat_api.inject("draft/count", "errcode", code=errcode)
    assert client.draft_count() == 0
    assert calls(wechat_api, "draft/count") == 3
    assert [b["force_refresh"] for b in _stable_bodies(wechat_api)] == [False, False]


def test_expired_token_mid_flow_publishes_once(client: WeChatClient,
                                               wechat_api: FakeWeChat) -> None:
    """F10: the rejected write is retried once with a new token; no duplicate."""
    media_id = draft(client)
    old = wechat_api.current_token()
    wechat_api.inject("freepublish/submit", "expire_token")
    client.freepublish_submit(media_id)
    assert [c.errcode for c in wechat_api.ledger.calls_to("freepublish/submit")] == [42001, 0]
    assert len(wechat_api.ledger.publishes) == 1
    assert wechat_api.current_token() != old
    assert not any(b["force_refresh"] for b in _stable_bodies(wechat_api))


def test_a_second_token_error_is_raised(client: WeChatClient, wechat_api: FakeWeChat) -> None:
    wechat_api.inject("freepublish/submit", "errcode", times=2, code=40001)
    err = raises(ErrorKind.TOKEN, client.freepublish_submit, "any")
    assert err.retryable and err.errcode == 40001 and err.endpoint == "freepublish/submit"
    assert calls(wechat_api, "freepublish/submit") == 2
    assert "even after a fresh one" in str(err)


def test_a_newer_token_in_the_shared_cache_is_used(wechat_api: FakeWeChat) -> None:
    tokens = MemoryTokenCache()
    first, second = make_client(wechat_api, tokens=tokens), make_client(wechat_api, tokens=tokens)
    first.draft_count()
    wechat_api.expire_tokens()
    first.draft_count()  # stores a new token
    tokens.put(APPID, "stale", datetime.now(UTC) + timedelta(hours=1))
    second.draft_count()  # "stale" rejected -> fetches (normal mode) once
    assert calls(wechat_api, "stable_token") == 3


def test_two_processes_asking_at_once_both_get_a_working_token(wechat_api: FakeWeChat) -> None:
    """F11: stable_token in normal mode hands every caller the same token."""
    barrier = threading.Barrier(4)
    results: list[int | Exception] = []

    def worker() -> None:
        client = make_client(wechat_api)  # own cache: a separate process
        barrier.wait()
        try:
            results.append(client.draft_count())
        except WeChatAPIError as exc:
            results.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [0, 0, 0, 0]
    answers = {c.errcode for c in wechat_api.ledger.calls_to("draft/count")}
    assert answers == {0}
    assert calls(wechat_api, "stable_token") == 4


def test_threads_of_one_process_fetch_the_token_once(wechat_api: FakeWeChat) -> None:
    client = make_client(wechat_api)
    barrier = threading.Barrier(5)

    def worker() -> None:
        barrier.wait()
        client.draft_count()

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls(wechat_api, "stable_token") == 1 and calls(wechat_api, "draft/count") == 5


# ------------------------------------------------------------------------- error classes


def test_minute_limit_on_a_read_is_retried_with_backoff(
        client: WeChatClient, wechat_api: FakeWeChat, sleeps: Sleeps) -> None:
    wechat_api.inject("draft/count", "errcode", times=2, code=45011)
    assert client.draft_count() == 0
    assert len(sleeps) == 2 and 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0


def test_retries_are_bounded(client: WeChatClient, wechat_api: FakeWeChat,
                             sleeps: Sleeps) -> None:
    wechat_api.inject("draft/count", "errcode", times=3, code=-1)
    err = raises(ErrorKind.RETRY, client.draft_count)
    assert err.errcode == -1 and err.retryable
    assert calls(wechat_api, "draft/count") == 3 and len(sleeps) == 2


def test_minute_limit_on_a_write_is_not_retried(client: WeChatClient, wechat_api: FakeWeChat,
                                                sleeps: Sleeps) -> None:
    wechat_api.inject("draft/add", "errcode", code=45011)
    err = raises(ErrorKind.RETRY, client.draft_add, [article(client)])
    assert "wait a minute" in str(err) and sleeps == []
    assert calls(wechat_api, "draft/add") == 1


@pytest.mark.parametrize("endpoint", ["freepublish/submit", "draft/add"])
def test_system_busy_on_a_write_is_ambiguous(client: WeChatClient, wechat_api: FakeWeChat,
                                             sleeps: Sleeps, endpoint: str) -> None:
    media_id, new = draft(client), article(client)
    before = calls(wechat_api, endpoint)
    wechat_api.inject(endpoint, "errcode", code=-1, process=True)
    call = (client.freepublish_submit if endpoint == "freepublish/submit"
            else lambda _: client.draft_add([new]))
    err = raises(ErrorKind.AMBIGUOUS, call, media_id)
    assert not err.retryable and "reconcile" in str(err) and sleeps == []
    assert calls(wechat_api, endpoint) == before + 1


def test_read_timeout_on_submit_is_ambiguous_and_it_happened(
        client: WeChatClient, wechat_api: FakeWeChat, sleeps: Sleeps) -> None:
    """F7: no automatic retry; the fake shows the publish really happened."""
    media_id = draft(client)
    wechat_api.inject("freepublish/submit", "latency", seconds=SLOW)
    err = raises(ErrorKind.AMBIGUOUS, client.freepublish_submit, media_id)
    assert err.errcode is None and "did not answer in time" in str(err)
    assert str(wechat_api.current_token()) not in str(err)
    assert calls(wechat_api, "freepublish/submit") == 1 and sleeps == []
    assert len(wechat_api.ledger.publishes) == 1


def test_read_timeout_on_a_read_is_retried(client: WeChatClient, wechat_api: FakeWeChat,
                                           sleeps: Sleeps) -> None:
    publish_id = client.freepublish_submit(draft(client))
    wechat_api.inject("freepublish/get", "latency", seconds=SLOW)
    assert client.freepublish_get(publish_id).status in (0, 1)
    assert len(sleeps) == 1


@pytest.mark.parametrize(("fault", "published"), [("process_then_drop", 1), ("drop_before", 0)])
def test_dropped_connection_on_submit_is_ambiguous(client: WeChatClient,
                                                   wechat_api: FakeWeChat, fault: str,
                                                   published: int) -> None:
    media_id = draft(client)
    wechat_api.inject("freepublish/submit", fault)
    err = raises(ErrorKind.AMBIGUOUS, client.freepublish_submit, media_id)
    assert "broke the connection" in str(err)
    assert len(wechat_api.ledger.publishes) == published
    assert calls(wechat_api, "freepublish/submit") == 1


def test_dropped_connection_on_a_read_is_retried(client: WeChatClient,
                                                 wechat_api: FakeWeChat) -> None:
    media_id = draft(client)
    wechat_api.inject("draft/get", "process_then_drop", rst=True)
    assert client.draft_get(media_id)[0]["title"] == "今日快报"
    assert calls(wechat_api, "draft/get") == 2


def test_http_5xx(client: WeChatClient, wechat_api: FakeWeChat, sleeps: Sleeps) -> None:
    wechat_api.inject("freepublish/submit", "http_status", status=502)
    err = raises(ErrorKind.AMBIGUOUS, client.freepublish_submit, draft(client))
    assert "HTTP 502" in str(err) and sleeps == []
    wechat_api.inject("draft/count", "http_status", status=500)
    assert client.draft_count() == 1 and len(sleeps) == 1


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("write", [True, False])
def test_connection_refused_is_retried_even_for_writes(wechat_api: FakeWeChat,
                                                       write: bool) -> None:
    sleeps, tokens = Sleeps(), MemoryTokenCache()
    tokens.put(APPID, "tok-SECRET", datetime.now(UTC) + timedelta(hours=1))  # no fetch
    down = make_client(wechat_api, sleeps=sleeps, tokens=tokens,
                       base_url=f"http://127.0.0.1:{_closed_port()}")
    call = down.draft_count if not write else down.freepublish_submit
    err = raises(ErrorKind.RETRY, call, *(["media"] if write else []))
    assert "nothing was sent" in str(err) and err.retryable
    assert "tok-SECRET" not in str(err) and "access_token=***" in str(err)
    assert len(sleeps) == 2  # three tries in all


def test_connect_timeout_counts_as_nothing_sent() -> None:
    err = transport_error(requests.ConnectTimeout("timed out"), "freepublish/submit")
    assert err.kind is ErrorKind.RETRY
    err = transport_error(requests.ReadTimeout("timed out"), "freepublish/submit")
    assert err.kind is ErrorKind.AMBIGUOUS


def test_quota_used_up_is_deferred(client: WeChatClient, wechat_api: FakeWeChat,
                                   sleeps: Sleeps) -> None:
    """F12: 45009 on submit; nothing retried, the sentence says when it resets."""
    media_id = draft(client)
    wechat_api.quotas["/cgi-bin/freepublish/submit"] = 0
    err = raises(ErrorKind.DEFER, client.freepublish_submit, media_id)
    assert err.errcode == 45009 and err.retryable and "midnight Beijing time" in str(err)
    assert calls(wechat_api, "freepublish/submit") == 1 and sleeps == []


def test_mass_send_quota_is_deferred(client: WeChatClient) -> None:
    client.mass_sendall(draft(client), "first")
    err = raises(ErrorKind.DEFER, client.mass_sendall, draft(client), "second")
    assert err.errcode == 45028


def test_clientmsgid_reuse_returns_the_existing_msg_id(wechat_api: FakeWeChat) -> None:
    wechat_api.clock = clock = FakeClock()
    client = make_client(wechat_api)
    media_id = draft(client)
    msg_id = client.mass_sendall(media_id, "story-9")
    err = raises(ErrorKind.RETRY, client.mass_sendall, media_id, "story-9")
    assert err.errcode == 45066 and "same clientmsgid" in str(err)
    clock.advance(61)
    assert client.mass_sendall(media_id, "story-9") == msg_id
    assert len(wechat_api.ledger.mass_sends) == 1


def test_clientmsgid_reuse_without_msg_id_is_ambiguous(client: WeChatClient,
                                                       wechat_api: FakeWeChat) -> None:
    wechat_api.inject("message/mass/sendall", "errcode", code=45065)
    err = raises(ErrorKind.AMBIGUOUS, client.mass_sendall, draft(client), "k")
    assert err.errcode == 45065


def test_unverified_account_is_final(client: WeChatClient, wechat_api: FakeWeChat) -> None:
    media_id = draft(client)
    wechat_api.verified = False
    err = raises(ErrorKind.FINAL, client.freepublish_submit, media_id)
    assert err.errcode == 48001 and not err.retryable and "verified account" in str(err)
    assert isinstance(err, PublishError)


@pytest.mark.parametrize(("fields", "errcode"), [
    ({"title": "标" * 33}, 45003), ({"digest": "d" * 129}, 45004),
    ({"content": "x" * 20_000}, 45002), ({"thumb_media_id": "gone"}, 40007)])
def test_content_limits_are_final(client: WeChatClient, fields: dict[str, Any],
                                  errcode: int) -> None:
    err = raises(ErrorKind.FINAL, client.draft_add, [article(client, **fields)])
    assert err.errcode == errcode and err.endpoint == "draft/add"


def test_too_many_articles_is_final(client: WeChatClient) -> None:
    one = article(client)
    assert raises(ErrorKind.FINAL, client.draft_add, [one] * 9).errcode == 45008


@pytest.mark.parametrize(("data", "errcode"), [(b"GIF89a....", 40005),
                                               (PNG + b"\0" * (1 << 20), 40009)])
def test_image_limits_are_final(client: WeChatClient, data: bytes, errcode: int) -> None:
    assert raises(ErrorKind.FINAL, client.upload_image, data, "x.png").errcode == errcode


@pytest.mark.parametrize("errcode", [53503, 53504, 53505])
def test_publish_check_failures_are_final(client: WeChatClient, wechat_api: FakeWeChat,
                                          errcode: int) -> None:
    wechat_api.inject("freepublish/submit", "errcode", code=errcode)
    err = raises(ErrorKind.FINAL, client.freepublish_submit, draft(client))
    assert "web console" in str(err) and "rid: " in err.errmsg


def test_resubmitting_a_published_draft_is_final(client: WeChatClient) -> None:
    media_id = draft(client)
    client.freepublish_submit(media_id)
    assert raises(ErrorKind.FINAL, client.freepublish_submit, media_id).errcode == 40007


@pytest.mark.parametrize(("code", "endpoint", "kind"), [
    (40001, "draft/add", ErrorKind.TOKEN), (42001, "freepublish/get", ErrorKind.TOKEN),
    (40001, "stable_token", ErrorKind.FINAL), (-1, "stable_token", ErrorKind.RETRY),
    (-1, "draft/get", ErrorKind.RETRY), (-1, "draft/add", ErrorKind.AMBIGUOUS),
    (-1, "freepublish/submit", ErrorKind.AMBIGUOUS),
    (-1, "message/mass/sendall", ErrorKind.AMBIGUOUS), (45011, "draft/add", ErrorKind.RETRY),
    (45009, "freepublish/get", ErrorKind.DEFER), (45028, "message/mass/sendall",
                                                  ErrorKind.DEFER),
    (40164, "stable_token", ErrorKind.FINAL), (53503, "freepublish/submit", ErrorKind.FINAL),
    (12345, "draft/add", ErrorKind.FINAL)])
def test_classification_table(code: int, endpoint: str, kind: ErrorKind) -> None:
    assert classify(code, endpoint) is kind


# ------------------------------------------------------------------------- check_credentials


def test_check_credentials_passes(client: WeChatClient, wechat_api: FakeWeChat) -> None:
    client.check_credentials()
    assert calls(wechat_api, "stable_token") == 1 and calls(wechat_api, "draft/count") == 1


def test_check_credentials_explains_a_wrong_secret(wechat_api: FakeWeChat) -> None:
    err = raises(ErrorKind.FINAL, make_client(wechat_api, secret="old").check_credentials)
    assert err.errcode == 40125 and "AppSecret" in str(err)
    assert str(err).startswith("WeChat rejected the AppSecret (40125);")


def test_check_credentials_explains_the_ip_whitelist(client: WeChatClient,
                                                     wechat_api: FakeWeChat) -> None:
    wechat_api.whitelisted = False
    err = raises(ErrorKind.FINAL, client.check_credentials)
    assert str(err).startswith(
        "WeChat refused the call because the server's IP is not on the account's API "
        "whitelist (40164); add it in the WeChat console under 基本配置 → IP白名单.")


def test_check_credentials_explains_a_used_up_quota(client: WeChatClient,
                                                    wechat_api: FakeWeChat) -> None:
    wechat_api.quotas["/cgi-bin/draft/count"] = 0
    err = raises(ErrorKind.DEFER, client.check_credentials)
    assert "daily WeChat quota for draft/count is used up (45009)" in str(err)
