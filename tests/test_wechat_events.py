"""WeChat's publishing pushes: signature check, parsing, an idempotent inbox (F25)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from pipeline.errors import PublishError
from pipeline.publish.wechat import record_event
from pipeline.store import open_store
from pipeline.wechat.events import parse_event, signature_ok

PUBLISHED = (b"<xml><ToUserName><![CDATA[gh_x]]></ToUserName><FromUserName><![CDATA[mphelper]]>"
             b"</FromUserName><CreateTime>1750000000</CreateTime><MsgType><![CDATA[event]]>"
             b"</MsgType><Event><![CDATA[PUBLISHJOBFINISH]]></Event><PublishEventInfo>"
             b"<publish_id>2247483655</publish_id><publish_status>0</publish_status>"
             b"<article_id><![CDATA[AID]]></article_id><article_detail><count>2</count>"
             b"<item><idx>2</idx><article_url><![CDATA[https://mp.weixin.qq.com/s/b]]>"
             b"</article_url></item><item><idx>1</idx><article_url><![CDATA["
             b"https://mp.weixin.qq.com/s/a]]></article_url></item></article_detail>"
             b"</PublishEventInfo></xml>")


def test_signature() -> None:
    sig = hashlib.sha1("".join(sorted(["tok", "123", "n0"])).encode()).hexdigest()
    assert signature_ok("tok", sig, "123", "n0")
    assert not signature_ok("tok", sig, "124", "n0")


def test_publish_event_is_parsed_in_article_order() -> None:
    event = parse_event(PUBLISHED)
    assert event is not None
    assert (event.event, event.ref, event.status, event.article_id) == (
        "PUBLISHJOBFINISH", "2247483655", "0", "AID")
    assert event.urls == ["https://mp.weixin.qq.com/s/a", "https://mp.weixin.qq.com/s/b"]


def test_other_messages_are_ignored_and_bad_xml_is_refused() -> None:
    assert parse_event(b"<xml><MsgType>text</MsgType><Content>hi</Content></xml>") is None
    with pytest.raises(PublishError, match="not well-formed"):
        parse_event(b"<xml><Event>")
    with pytest.raises(PublishError, match="entities"):
        parse_event(b'<!DOCTYPE x [<!ENTITY a "aaaa">]><xml>&a;</xml>')


def test_duplicated_pushes_are_stored_once(database_url: str) -> None:
    store = open_store(database_url)
    event = parse_event(PUBLISHED)
    assert event is not None
    now = datetime(2026, 6, 15, 12, tzinfo=UTC)
    first = record_event(store, event.event, event.ref, event.status, event.article_id,
                         event.urls, PUBLISHED.decode(), now)
    second = record_event(store, event.event, event.ref, event.status, event.article_id,
                          event.urls, PUBLISHED.decode(), now)
    store.close()
    assert (first, second) == (True, False)


def test_push_endpoint_verifies_stores_once_and_answers_success(
        workspace: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient
    from sqlmodel import select

    from pipeline.clock import Clock
    from pipeline.models import WeChatEvent
    from pipeline.web.app import create_app
    from tests.conftest import Workspace

    assert isinstance(workspace, Workspace)
    monkeypatch.setenv("WECHAT_PUSH_TOKEN", "pushtoken")
    store = workspace.store()
    app = create_app(workspace.settings, store, Clock(datetime(2026, 6, 15, 12, tzinfo=UTC)),
                     secret="s" * 40)
    sig = hashlib.sha1("".join(sorted(["pushtoken", "1750000000", "42"])).encode()).hexdigest()
    signed = f"/wechat/push?signature={sig}&timestamp=1750000000&nonce=42"
    with TestClient(app) as client:
        assert client.get(signed + "&echostr=hello").text == "hello"
        assert client.post("/wechat/push?signature=bad&timestamp=1&nonce=2",
                           content=PUBLISHED).status_code == 403
        for _ in range(2):  # WeChat retries: the second copy is stored once
            answer = client.post(signed, content=PUBLISHED)
            assert (answer.status_code, answer.text) == (200, "success")
        assert client.post(signed, content=b"<xml><Event>").status_code == 400
    with store.session() as session:
        events = list(session.exec(select(WeChatEvent)))
    store.close()
    assert [(e.ref, e.status) for e in events] == [("2247483655", "0")]
