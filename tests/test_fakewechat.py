"""The fake WeChat server answers like the reference says, over real loopback HTTP."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from tests.fakewechat import SHANGHAI, FakeClock, FakeWeChat, endpoint_path

APPID, SECRET = "wxTESTAPPID", "test-secret"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
JPG = b"\xff\xd8\xff\xe0" + bytes(range(256)) + b"\r\n--\r\n"


class Api:
    """Raw HTTP against the fake, so the tests see exactly what a client would."""

    def __init__(self, fake: FakeWeChat) -> None:
        self.fake = fake
        self.http = requests.Session()
        self.http.trust_env = False
        self.token = ""

    def url(self, endpoint: str) -> str:
        return self.fake.base_url + endpoint_path(endpoint)

    def stable(self, **body: Any) -> dict[str, Any]:
        payload = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET, **body}
        answer: dict[str, Any] = self.http.post(self.url("stable_token"),
                                                data=json.dumps(payload), timeout=5).json()
        return answer

    def login(self) -> str:
        self.token = self.stable()["access_token"]
        return self.token

    def post(self, endpoint: str, body: Any = None, *, token: str | None = None,
             timeout: float = 5, **kw: Any) -> requests.Response:
        params = {"access_token": self.token if token is None else token, **kw.pop("params", {})}
        data = json.dumps(body, ensure_ascii=False).encode() if body is not None else None
        data = kw.pop("data", data)
        method = "GET" if endpoint == "draft/count" else "POST"  # the one GET endpoint
        return self.http.request(method, self.url(endpoint), params=params, data=data,
                                 timeout=timeout, **kw)

    def call(self, endpoint: str, body: Any = None, **kw: Any) -> dict[str, Any]:
        answer: dict[str, Any] = self.post(endpoint, body, **kw).json()
        return answer

    def upload(self, endpoint: str, data: bytes, name: str = "a.png", **params: str
               ) -> requests.Response:
        return self.post(endpoint, files={"media": (name, data)}, params=params)

    def thumb(self) -> str:
        answer: dict[str, Any] = self.upload("material/add_material", JPG, "c.jpg",
                                             type="thumb").json()
        return str(answer["media_id"])

    def draft(self, **fields: Any) -> str:
        article = {"title": "标题", "content": "<p>正文</p>", "thumb_media_id": self.thumb(),
                   "content_source_url": "https://example.org/s/1?attempt=a1", **fields}
        return str(self.call("draft/add", {"articles": [article]})["media_id"])


START = datetime(2026, 3, 10, 9, 0, tzinfo=SHANGHAI)


@pytest.fixture
def clock(wechat_api: FakeWeChat) -> FakeClock:
    wechat_api.clock = FakeClock(START)
    return wechat_api.clock


@pytest.fixture
def api(wechat_api: FakeWeChat, clock: FakeClock) -> Api:
    client = Api(wechat_api)
    client.login()
    return client


def code(answer: dict[str, Any]) -> int:
    return int(answer.get("errcode", 0))


# ------------------------------------------------------------------------- tokens


def test_token_get_returns_a_token_and_its_lifetime(api: Api) -> None:
    params = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
    answer = api.http.get(api.url("token"), params=params, timeout=5)
    assert answer.status_code == 200
    assert answer.json()["expires_in"] == 7200
    assert len(answer.json()["access_token"]) >= 100


@pytest.mark.parametrize(("appid", "secret", "expected"), [
    ("wxWRONG", SECRET, 40013), (APPID, "wrong", 40125), ("", SECRET, 41002),
    (APPID, "", 41004)])
def test_bad_credentials_are_refused(api: Api, appid: str, secret: str, expected: int) -> None:
    assert code(api.stable(appid=appid, secret=secret)) == expected
    params = {"grant_type": "client_credential", "appid": appid, "secret": secret}
    assert code(api.http.get(api.url("token"), params=params, timeout=5).json()) == expected


def test_caller_outside_the_whitelist_gets_40164(api: Api) -> None:
    api.fake.whitelisted = False
    answer = api.stable()
    assert code(answer) == 40164
    assert "rid: " in answer["errmsg"]


def test_stable_token_normal_mode_returns_the_same_token_with_time_left(
        api: Api, clock: FakeClock) -> None:
    first = api.stable()
    clock.advance(1000)
    second = api.stable()
    assert second["access_token"] == first["access_token"]
    assert second["expires_in"] == first["expires_in"] - 1000


def test_stable_token_needs_post(api: Api) -> None:
    assert code(api.http.get(api.url("stable_token"), timeout=5).json()) == 43002


def test_force_refresh_rotates_and_the_old_token_lives_300_seconds(
        api: Api, clock: FakeClock) -> None:
    old = api.login()
    clock.advance(100)
    new = api.stable(force_refresh=True)["access_token"]
    assert new != old
    assert code(api.call("draft/count", token=old)) == 0  # inside the overlap
    clock.advance(301)
    assert code(api.call("draft/count", token=old)) == 40001
    assert code(api.call("draft/count", token=new)) == 0


def test_force_refresh_is_limited(api: Api, clock: FakeClock) -> None:
    assert "access_token" in api.stable(force_refresh=True)
    assert code(api.stable(force_refresh=True)) == 45009  # under 30 s apart
    clock.advance(31)
    assert "access_token" in api.stable(force_refresh=True)


def test_stable_token_rotates_before_expiry_and_keeps_the_old_one(
        api: Api, clock: FakeClock) -> None:
    old = api.login()
    clock.advance(7200 - 200)  # inside the last 300 s
    fresh = api.stable()
    assert fresh["access_token"] != old and fresh["expires_in"] == 7200
    assert code(api.call("draft/count", token=old)) == 0
    clock.advance(201)
    assert code(api.call("draft/count", token=old)) == 42001


def test_token_fetch_invalidates_the_previous_basic_token_after_the_overlap(
        api: Api, clock: FakeClock) -> None:
    params = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
    first = api.http.get(api.url("token"), params=params, timeout=5).json()["access_token"]
    api.http.get(api.url("token"), params=params, timeout=5)
    clock.advance(299)
    assert code(api.call("draft/count", token=first)) == 0
    clock.advance(2)
    assert code(api.call("draft/count", token=first)) == 40001
    assert code(api.call("draft/count")) == 0  # the stable token is not affected


def test_access_token_checks(api: Api, clock: FakeClock) -> None:
    assert code(api.call("draft/count", token="")) == 41001
    assert code(api.call("draft/count", token="nonsense")) == 40001
    clock.advance(7201)
    assert code(api.call("draft/count")) == 42001


def test_short_token_ttl() -> None:
    with FakeWeChat(APPID, SECRET, token_ttl=2, token_overlap=1, clock=FakeClock()) as fake:
        api = Api(fake)
        api.login()
        assert api.stable()["expires_in"] == 2
        assert isinstance(fake.clock, FakeClock)
        fake.clock.advance(2)
        assert code(api.call("draft/count")) == 42001
        assert api.stable()["access_token"] != api.token


# ------------------------------------------------------------------------- images


def test_uploadimg_answers_text_plain_with_an_mmbiz_url(api: Api) -> None:
    answer = api.upload("media/uploadimg", PNG)
    assert answer.headers["Content-Type"].startswith("text/plain")
    assert json.loads(answer.text)["url"].startswith("http://mmbiz.qpic.cn/")
    assert api.fake.ledger.images == [answer.json()["url"]]


@pytest.mark.parametrize(("data", "expected"), [
    (b"GIF89a" + b"\0" * 10, 40005), (b"%PDF-1.7", 40005),
    (PNG + b"\0" * (1024 * 1024), 40009)])
def test_uploadimg_limits(api: Api, data: bytes, expected: int) -> None:
    assert code(api.upload("media/uploadimg", data).json()) == expected


def test_uploadimg_without_the_media_field(api: Api) -> None:
    answer = api.post("media/uploadimg", files={"file": ("a.png", PNG)})
    assert code(answer.json()) == 41005


def test_add_material_image_and_thumb(api: Api) -> None:
    image = api.upload("material/add_material", PNG, type="image").json()
    assert len(image["media_id"]) == 64 and image["url"].startswith("http://mmbiz.qpic.cn/")
    assert set(image["media_id"]) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    thumb = api.upload("material/add_material", JPG, type="thumb").json()
    assert "url" not in thumb and len(thumb["media_id"]) == 64
    assert [m.size for m in api.fake.ledger.materials] == [len(PNG), len(JPG)]


@pytest.mark.parametrize(("mtype", "data", "expected"), [
    ("thumb", PNG, 40005), ("thumb", JPG + b"\0" * 65 * 1024, 40012),
    ("image", b"RIFF0000WEBP", 40005), ("voice", JPG, 40004)])
def test_add_material_limits(api: Api, mtype: str, data: bytes, expected: int) -> None:
    assert code(api.upload("material/add_material", data, type=mtype).json()) == expected


# ------------------------------------------------------------------------- drafts


def test_draft_round_trip(api: Api) -> None:
    thumb = api.thumb()
    article = {"title": "今日报告", "author": "编辑部", "content": "<p>你好，世界</p>",
               "thumb_media_id": thumb, "content_source_url": "https://example.org/?m=1"}
    media_id = api.call("draft/add", {"articles": [article]})["media_id"]
    item = api.call("draft/get", {"media_id": media_id})["news_item"][0]
    assert item["title"] == "今日报告" and item["digest"] == "你好，世界"
    assert item["content_source_url"] == "https://example.org/?m=1"
    assert item["thumb_url"].startswith("http://mmbiz") and item["url"].startswith("https://")
    assert api.call("draft/count", token=None) == {"total_count": 1}
    stored = api.fake.ledger.drafts[0]
    assert stored.media_id == media_id and stored.articles[0]["title"] == "今日报告"


def test_draft_content_is_cleaned(api: Api) -> None:
    good = "http://mmbiz.qpic.cn/x/0?wx_fmt=png"
    html = (f'<p onclick="evil()">a</p><script>alert(1)</script><img src="{good}">'
            '<img src="https://example.org/x.png">')
    media_id = api.draft(content=html)
    content = api.call("draft/get", {"media_id": media_id})["news_item"][0]["content"]
    assert "script" not in content and "onclick" not in content
    assert good in content and "example.org" not in content


@pytest.mark.parametrize(("fields", "expected"), [
    ({"title": "题" * 33}, 45003), ({"title": "题" * 32}, 0), ({"author": "a" * 17}, 45110),
    ({"digest": "d" * 129}, 45004), ({"content": "x" * 20_000}, 45002),
    ({"content": "x" * 19_999}, 0), ({"title": " "}, 44003), ({"content": ""}, 44003),
    ({"thumb_media_id": "unknown"}, 40007), ({"thumb_media_id": None}, 40007),
    ({"content_source_url": "javascript:alert(1)"}, 41039),
    ({"content_source_url": "https://e.org/" + "a" * 1020}, 41039)])
def test_draft_limits(api: Api, fields: dict[str, Any], expected: int) -> None:
    article = {"title": "t", "content": "<p>c</p>", "thumb_media_id": api.thumb(), **fields}
    assert code(api.call("draft/add", {"articles": [article]})) == expected


def test_draft_article_count_limit(api: Api) -> None:
    article = {"title": "t", "content": "<p>c</p>", "thumb_media_id": api.thumb()}
    assert code(api.call("draft/add", {"articles": [article] * 8})) == 0
    assert code(api.call("draft/add", {"articles": [article] * 9})) == 45008
    assert code(api.call("draft/add", {"articles": []})) == 44003


def test_draft_bodies_are_json_whatever_the_content_type(api: Api) -> None:
    api.thumb()
    raw = json.dumps({"media_id": "nope"}).encode()
    answer = api.post("draft/get", None, data=raw, headers={"Content-Type": "text/plain"})
    assert code(answer.json()) == 40007
    assert code(api.post("draft/get", None, data=b"{not json").json()) == 47001
    assert code(api.post("draft/get", None, data=b"").json()) == 44002


def test_raw_body_is_recorded_and_escapes_are_refused(api: Api) -> None:
    api.draft(title="中文标题")
    raw = api.fake.ledger.calls_to("draft/add")[-1].raw_body
    assert "中文标题".encode() in raw and b"\\u" not in raw
    article = {"title": "中文", "content": "<p>c</p>", "thumb_media_id": api.thumb()}
    escaped = json.dumps({"articles": [article]}).encode()  # ensure_ascii=True
    assert code(api.post("draft/add", None, data=escaped).json()) == 40033
    literal = {**article, "title": "\\u4f5c literal"}  # a backslash the user typed
    assert code(api.call("draft/add", {"articles": [literal]})) == 0


def test_draft_update_delete_and_errors(api: Api) -> None:
    media_id = api.draft()
    new = {"title": "新标题", "content": "<p>新</p>", "thumb_media_id": api.thumb()}
    assert code(api.call("draft/update", {"media_id": media_id, "index": 0,
                                          "articles": new})) == 0
    assert api.call("draft/get", {"media_id": media_id})["news_item"][0]["title"] == "新标题"
    assert code(api.call("draft/update", {"media_id": media_id, "index": 1,
                                          "articles": new})) == 40114
    assert code(api.call("draft/delete", {"media_id": media_id})) == 0
    assert code(api.call("draft/delete", {"media_id": media_id})) == 40007
    assert code(api.call("draft/get", {"media_id": media_id})) == 40007
    assert api.fake.ledger.drafts[0].removed_by == "delete"


def test_draft_batchget_newest_first_and_paging(api: Api, clock: FakeClock) -> None:
    ids = []
    for _ in range(3):
        ids.append(api.draft())
        clock.advance(10)
    page = api.call("draft/batchget", {"offset": 0, "count": 2, "no_content": 1})
    assert page["total_count"] == 3 and page["item_count"] == 2
    assert [i["media_id"] for i in page["item"]] == ids[::-1][:2]
    assert "content" not in page["item"][0]["content"]["news_item"][0]
    assert page["item"][0]["update_time"] > page["item"][1]["update_time"]
    news = api.call("draft/batchget", {"offset": 2, "count": 20})["item"][0]["content"]
    assert news["news_item"][0]["content_source_url"].endswith("attempt=a1")
    for bad in ({"offset": 0, "count": 0}, {"offset": 0, "count": 21}, {"offset": -1, "count": 1}):
        assert code(api.call("draft/batchget", bad)) == 40097


# ------------------------------------------------------------------------- quotas


def test_daily_quota_then_45009_until_the_next_day(api: Api, clock: FakeClock) -> None:
    api.fake.quotas[endpoint_path("draft/count")] = 2
    assert [code(api.call("draft/count")) for _ in range(3)] == [0, 0, 45009]
    assert api.fake.usage("draft/count") == 2
    clock.set((START + timedelta(days=1)).replace(hour=0, minute=0, second=1))
    api.login()
    assert code(api.call("draft/count")) == 0


def test_quota_day_is_beijing_time(api: Api, clock: FakeClock) -> None:
    api.fake.quotas[endpoint_path("draft/count")] = 1
    clock.set(START.replace(hour=23, minute=59, second=0))
    api.login()
    assert code(api.call("draft/count")) == 0
    assert code(api.call("draft/count")) == 45009
    clock.advance(61)  # 00:00:01 Beijing is still the previous day in UTC
    assert clock().astimezone(SHANGHAI).hour == 0
    assert code(api.call("draft/count")) == 0


def test_default_quotas_match_the_reference(wechat_api: FakeWeChat) -> None:
    limits = {p.removeprefix("/cgi-bin/"): n for p, n in wechat_api.quotas.items()}
    assert limits["freepublish/submit"] == limits["freepublish/get"] == 100
    assert limits["freepublish/batchget"] == 100 and limits["draft/add"] == 1000
    assert limits["draft/get"] == 500 and limits["freepublish/delete"] == 10


def test_unverified_account_gets_48001(api: Api) -> None:
    media_id = api.draft()
    api.fake.verified = False
    assert code(api.call("freepublish/submit", {"media_id": media_id})) == 48001
    assert code(api.call("message/mass/sendall", {"mpnews": {"media_id": media_id},
                                                  "msgtype": "mpnews"})) == 48001
    assert code(api.call("draft/count")) == 0


# ------------------------------------------------------------------------- free publish


def test_publish_progresses_and_the_draft_leaves_the_box(api: Api) -> None:
    media_id = api.draft()
    answer = api.call("freepublish/submit", {"media_id": media_id})
    pid = answer["publish_id"]
    assert code(answer) == 0 and pid > 2**31 and answer["msg_data_id"] > 2**31
    assert api.call("draft/count") == {"total_count": 0}
    assert code(api.call("freepublish/submit", {"media_id": media_id})) == 40007
    first = api.call("freepublish/get", {"publish_id": pid})
    assert first["publish_status"] == 1 and "article_id" not in first
    done = api.call("freepublish/get", {"publish_id": str(pid)})
    assert done["publish_status"] == 0 and done["fail_idx"] == []
    assert done["article_detail"]["count"] == 1
    url = done["article_detail"]["item"][0]["article_url"]
    assert done["article_detail"]["item"][0]["idx"] == 1 and "mp.weixin.qq.com" in url
    listed = api.call("freepublish/batchget", {"offset": 0, "count": 20})
    news = listed["item"][0]["content"]["news_item"][0]
    assert listed["item"][0]["article_id"] == done["article_id"]
    assert news["content_source_url"].endswith("attempt=a1") and news["url"] == url
    article = api.call("freepublish/getarticle", {"article_id": done["article_id"]})
    assert article["news_item"][0]["title"] == "标题"
    assert code(api.call("freepublish/get", {"publish_id": 1})) == 53502
    assert code(api.call("freepublish/getarticle", {"article_id": "x"})) == 53600


def test_publish_by_seconds_and_ids_as_strings(api: Api, clock: FakeClock) -> None:
    api.fake.publish_polls, api.fake.publish_seconds = None, 30
    api.fake.ids_as_strings = True
    pid = api.call("freepublish/submit", {"media_id": api.draft()})["publish_id"]
    assert isinstance(pid, str) and pid.isdigit()
    assert api.call("freepublish/get", {"publish_id": pid})["publish_status"] == 1
    clock.advance(30)
    assert api.call("freepublish/get", {"publish_id": int(pid)})["publish_status"] == 0


def test_batchget_lists_only_finished_free_publishes(api: Api) -> None:
    pid = api.call("freepublish/submit", {"media_id": api.draft()})["publish_id"]
    api.call("message/mass/sendall", {"mpnews": {"media_id": api.draft()},
                                      "msgtype": "mpnews", "filter": {"is_to_all": True}})
    assert api.call("freepublish/batchget", {"offset": 0, "count": 5})["total_count"] == 0
    api.fake.batchget_includes_publishing = True
    assert api.call("freepublish/batchget", {"offset": 0, "count": 5})["total_count"] == 1
    api.call("freepublish/get", {"publish_id": pid})
    api.call("freepublish/get", {"publish_id": pid})
    api.fake.batchget_includes_publishing = False
    assert api.call("freepublish/batchget", {"offset": 0, "count": 5})["total_count"] == 1


def test_freepublish_delete(api: Api) -> None:
    api.fake.publish_polls = 0
    pid = api.call("freepublish/submit", {"media_id": api.draft()})["publish_id"]
    article_id = api.call("freepublish/get", {"publish_id": pid})["article_id"]
    assert code(api.call("freepublish/delete", {"article_id": article_id, "index": 0})) == 0
    assert api.call("freepublish/get", {"publish_id": pid})["publish_status"] == 5
    news = api.call("freepublish/getarticle", {"article_id": article_id})["news_item"]
    assert news[0]["is_deleted"] is True


# ------------------------------------------------------------------------- mass send


def _sendall(api: Api, media_id: str, key: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"filter": {"is_to_all": True}, "mpnews": {"media_id": media_id},
                            "msgtype": "mpnews", "send_ignore_reprint": 0}
    if key:
        body["clientmsgid"] = key
    return api.call("message/mass/sendall", body)


def test_mass_send_flow_and_clientmsgid_dedupe(api: Api, clock: FakeClock) -> None:
    media_id = api.draft()
    sent = _sendall(api, media_id, "story-1")
    assert code(sent) == 0 and sent["msg_id"] > 2**31 and sent["msg_data_id"] > 2**31
    assert api.call("draft/count") == {"total_count": 0}
    assert api.call("message/mass/get", {"msg_id": sent["msg_id"]}) == {
        "msg_id": sent["msg_id"], "msg_status": "SEND_SUCCESS"}
    clock.advance(30)
    assert code(_sendall(api, media_id, "story-1")) == 45066
    clock.advance(31)
    again = _sendall(api, media_id, "story-1")
    assert code(again) == 45065 and again["msg_id"] == sent["msg_id"]
    assert len(api.fake.ledger.mass_sends) == 1


def test_one_mass_send_per_day(api: Api, clock: FakeClock) -> None:
    assert code(_sendall(api, api.draft(), "a")) == 0
    second = api.draft()
    assert code(_sendall(api, second, "b")) == 45028
    clock.advance(days=1)
    api.login()
    assert code(_sendall(api, second, "c")) == 0


def test_mass_send_needs_a_draft(api: Api) -> None:
    assert code(_sendall(api, "not-a-draft", "k")) == 40007
    body = {"mpnews": {"media_id": api.draft()}, "msgtype": "text"}
    assert code(api.call("message/mass/sendall", body)) == 40008


def test_mass_send_stuck_then_fail(api: Api, clock: FakeClock) -> None:
    api.fake.inject("message/mass/sendall", "stuck", polls=1)
    api.fake.inject("message/mass/sendall", "final_status", status="SEND_FAIL")
    first = _sendall(api, api.draft())["msg_id"]
    assert api.call("message/mass/get", {"msg_id": first})["msg_status"] == "SENDING"
    assert api.call("message/mass/get", {"msg_id": first})["msg_status"] == "SEND_SUCCESS"
    clock.advance(days=1)
    api.login()
    second = _sendall(api, api.draft())["msg_id"]
    assert api.call("message/mass/get", {"msg_id": second})["msg_status"] == "SEND_FAIL"


# ------------------------------------------------------------------------- faults


def test_errcode_fault_is_consumed_in_order(api: Api) -> None:
    api.fake.inject("draft/count", "errcode", code=-1)
    api.fake.inject("draft/count", "errcode", times=2, code=45011)
    codes = [code(api.call("draft/count")) for _ in range(4)]
    assert codes == [-1, 45011, 45011, 0]
    assert [c.errcode for c in api.fake.ledger.calls_to("draft/count")] == codes
    assert api.fake.pending_faults("draft/count") == 0


def test_errcode_fault_with_processing(api: Api) -> None:
    api.fake.inject("draft/add", "errcode", code=-1, process=True)
    api.thumb()
    article = {"title": "t", "content": "<p>c</p>",
               "thumb_media_id": api.fake.ledger.materials[0].media_id}
    answer = api.call("draft/add", {"articles": [article]})
    assert code(answer) == -1 and "rid: " in answer["errmsg"]
    assert len(api.fake.ledger.drafts) == 1  # it happened anyway


def test_http_status_fault_is_not_json(api: Api) -> None:
    api.fake.inject("draft/count", "http_status", status=500)
    answer = api.post("draft/count")
    assert answer.status_code == 500 and answer.text.startswith("<html>")
    assert api.fake.ledger.calls_to("draft/count")[0].http_status == 500


def test_latency_fault_lets_a_client_time_out_after_the_work(api: Api) -> None:
    media_id = api.draft()
    api.fake.inject("freepublish/submit", "latency", seconds=0.6)
    with pytest.raises(requests.ReadTimeout):
        api.post("freepublish/submit", {"media_id": media_id}, timeout=0.2)
    assert len(api.fake.ledger.publishes) == 1


def test_process_then_drop(api: Api) -> None:
    media_id = api.draft()
    api.fake.inject("freepublish/submit", "process_then_drop")
    with pytest.raises(requests.ConnectionError):
        api.post("freepublish/submit", {"media_id": media_id})
    assert len(api.fake.ledger.publishes) == 1
    assert api.fake.ledger.calls_to("freepublish/submit")[0].http_status is None


def test_drop_before_does_nothing(api: Api) -> None:
    media_id = api.draft()
    api.fake.inject("freepublish/submit", "drop_before", rst=True)
    with pytest.raises(requests.ConnectionError):
        api.post("freepublish/submit", {"media_id": media_id})
    assert api.fake.ledger.publishes == []
    assert api.call("draft/count") == {"total_count": 1}


def test_expire_token_fault(api: Api) -> None:
    api.fake.inject("draft/count", "expire_token")
    assert code(api.call("draft/count")) == 42001
    fresh = api.stable()["access_token"]
    assert fresh != api.token and code(api.call("draft/count", token=fresh)) == 0


def test_stuck_publish(api: Api) -> None:
    api.fake.inject("freepublish/submit", "stuck", polls=3)
    api.fake.inject("freepublish/submit", "stuck")
    three = api.call("freepublish/submit", {"media_id": api.draft()})["publish_id"]
    forever = api.call("freepublish/submit", {"media_id": api.draft()})["publish_id"]
    statuses = [api.call("freepublish/get", {"publish_id": three})["publish_status"]
                for _ in range(4)]
    assert statuses == [1, 1, 1, 0]
    for _ in range(5):
        assert api.call("freepublish/get", {"publish_id": forever})["publish_status"] == 1


@pytest.mark.parametrize(("status", "fail_idx"), [(2, [1]), (3, []), (4, [1])])
def test_final_failure_status(api: Api, status: int, fail_idx: list[int]) -> None:
    api.fake.inject("freepublish/submit", "final_status", status=status)
    pid = api.call("freepublish/submit", {"media_id": api.draft()})["publish_id"]
    api.call("freepublish/get", {"publish_id": pid})
    answer = api.call("freepublish/get", {"publish_id": pid})
    assert answer["publish_status"] == status and answer["fail_idx"] == fail_idx
    assert "article_id" not in answer
    assert api.fake.ledger.publishes[0].status == status


def test_success_then_banned(api: Api) -> None:
    api.fake.inject("freepublish/submit", "final_status", status=0, then=6, then_after_polls=2)
    pid = api.call("freepublish/submit", {"media_id": api.draft()})["publish_id"]
    statuses = [api.call("freepublish/get", {"publish_id": pid})["publish_status"]
                for _ in range(4)]
    assert statuses == [1, 0, 0, 6]


def test_unknown_fault_names_are_refused(wechat_api: FakeWeChat) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        wechat_api.inject("draft/add", "explode")
    with pytest.raises(ValueError, match="needs code"):
        wechat_api.inject("draft/add", "errcode")
    with pytest.raises(ValueError, match="push mode"):
        wechat_api.inject("freepublish/submit", "push", mode="sometimes")


# ------------------------------------------------------------------------- pushes


class _Sink(BaseHTTPRequestHandler):
    received: list[tuple[str, str]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        type(self).received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Length", "7")
        self.end_headers()
        self.wfile.write(b"success")

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def sink(wechat_api: FakeWeChat) -> Iterator[list[tuple[str, str]]]:
    """A callback server collecting PUBLISHJOBFINISH pushes; the fake pushes to it."""
    handler: type[_Sink] = type("Sink", (_Sink,), {"received": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    wechat_api.push_url = f"http://127.0.0.1:{server.server_address[1]}/wechat/callback"
    yield handler.received
    server.shutdown()
    server.server_close()


def _wait_for(predicate: Any, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def _submit_and_finish(api: Api) -> int:
    pid = int(api.call("freepublish/submit", {"media_id": api.draft()})["publish_id"])
    api.call("freepublish/get", {"publish_id": pid})
    api.call("freepublish/get", {"publish_id": pid})
    return pid


def test_push_on_time(api: Api, sink: list[tuple[str, str]]) -> None:
    pid = _submit_and_finish(api)
    _wait_for(lambda: len(sink) == 1)
    path, xml = sink[0]
    assert path.startswith("/wechat/callback?signature=") and "nonce=" in path
    assert "<Event><![CDATA[PUBLISHJOBFINISH]]></Event>" in xml
    assert f"<publish_id>{pid}</publish_id>" in xml and "<publish_status>0" in xml
    assert "<article_url>" in xml
    _wait_for(lambda: len(api.fake.ledger.pushes) == 1)  # recorded after the answer
    assert api.fake.ledger.pushes[0].http_status == 200


def test_push_from_seconds_without_polling(api: Api, sink: list[tuple[str, str]]) -> None:
    api.fake.publish_polls, api.fake.publish_seconds = None, 0
    api.call("freepublish/submit", {"media_id": api.draft()})
    _wait_for(lambda: len(sink) == 1)


def test_push_late_duplicate_and_never(api: Api, sink: list[tuple[str, str]]) -> None:
    api.fake.inject("freepublish/submit", "push", mode="late", delay=0.3)
    api.fake.inject("freepublish/submit", "final_status", status=3, push="duplicate")
    api.fake.inject("freepublish/submit", "push", mode="never")
    started = time.monotonic()
    late, dup, never = (_submit_and_finish(api) for _ in range(3))
    _wait_for(lambda: len(sink) == 3)
    assert time.monotonic() - started >= 0.3
    assert sum(f"<publish_id>{dup}<" in x for _, x in sink) == 2
    assert f"<publish_id>{late}<" in sink[-1][1]
    assert all(f"<publish_id>{never}<" not in x for _, x in sink)


def test_push_out_of_order(api: Api, sink: list[tuple[str, str]]) -> None:
    api.fake.inject("freepublish/submit", "push", mode="out_of_order")
    first = _submit_and_finish(api)
    time.sleep(0.1)
    assert sink == []
    second = _submit_and_finish(api)
    _wait_for(lambda: len(sink) == 2)
    assert [f"<publish_id>{second}<" in sink[0][1], f"<publish_id>{first}<" in sink[1][1]] == [
        True, True]


def test_push_early_arrives_before_the_submit_answer(
        api: Api, sink: list[tuple[str, str]]) -> None:
    api.fake.inject("freepublish/submit", "push", mode="early")
    pid = api.call("freepublish/submit", {"media_id": api.draft()})["publish_id"]
    assert len(sink) == 1 and f"<publish_id>{pid}<" in sink[0][1]


# ------------------------------------------------------------------------- ledger and server


def test_ledger_counts_calls_and_published_articles(api: Api) -> None:
    pid = api.call("freepublish/submit", {"media_id": api.draft()})["publish_id"]
    _sendall(api, api.draft(title="群发"), "k1")
    articles = api.fake.ledger.published_articles()
    assert [(a.kind, a.title) for a in articles] == [("freepublish", "标题"),
                                                     ("mass_send", "群发")]
    assert articles[0].ident == pid and articles[0].content_source_url.endswith("attempt=a1")
    assert api.fake.ledger.count("freepublish/submit") == 1
    assert api.fake.ledger.count("/cgi-bin/draft/add") == 2
    assert [d.removed_by for d in api.fake.ledger.drafts] == ["freepublish", "mass_send"]


def test_concurrent_calls_are_safe(api: Api) -> None:
    thumb = api.thumb()
    article = {"title": "t", "content": "<p>c</p>", "thumb_media_id": thumb}

    def add() -> None:
        session = requests.Session()
        session.trust_env = False
        for _ in range(10):
            session.post(api.url("draft/add"), params={"access_token": api.token},
                         data=json.dumps({"articles": [article]}), timeout=5)

    threads = [threading.Thread(target=add) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert api.call("draft/count") == {"total_count": 50}
    assert len({d.media_id for d in api.fake.ledger.drafts}) == 50


def test_close_cuts_a_sleeping_fault_and_the_port(api: Api) -> None:
    api.fake.inject("draft/count", "latency", seconds=30)
    errors: list[Exception] = []

    def slow() -> None:
        try:
            api.post("draft/count", timeout=10)
        except requests.RequestException as exc:
            errors.append(exc)

    thread = threading.Thread(target=slow)
    thread.start()
    _wait_for(lambda: api.fake.ledger.count("draft/count") == 1)
    started = time.monotonic()
    api.fake.close()
    thread.join(5)
    assert time.monotonic() - started < 3
    with pytest.raises(requests.ConnectionError):
        requests.get(api.url("draft/count"), timeout=1)
