"""The daily push through the (fake) WeChat API: masssend, freepublish, draftbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Workspace
from tests.fakewechat import FakeWeChat
from tests.test_flow import write_report

MON = "2026-06-15T10:00+08:00"
PUSH = "2026-06-15T20:00+08:00"


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WECHAT_APPSECRET", "test-secret")


def wechat_workspace(ws: Workspace, fake: FakeWeChat, mode: str) -> Workspace:
    ws.configure("wechat", mode=mode, appid="wxTESTAPPID", base_url=fake.base_url,
                 read_timeout=2.0)
    return ws


def approve(ws: Workspace, tmp_path: Path, count: int, photo: bool = True) -> list[int]:
    ids = []
    for i in range(count):
        path = write_report(tmp_path, f"w{i}", unit="雷锋街道", kind="lecture",
                            title=f"雷锋街道禁毒讲座第{i + 1}场", start="2026-06-15 09:00",
                            photo=photo)
        accepted = ws.run("submit", "--json", str(path), now=MON).json()["accepted"]
        assert ws.run("approve", str(accepted[0]["id"]), now=MON).code == 0
        ids.append(int(accepted[0]["id"]))
    return ids


def test_freepublish_push(workspace: Workspace, wechat_api: FakeWeChat, tmp_path: Path,
                          secret: None) -> None:
    ws = wechat_workspace(workspace, wechat_api, "freepublish")
    ids = approve(ws, tmp_path, 2)
    result = ws.run("push", "--json", now=PUSH)
    assert result.code == 0, result.err
    data = result.json()
    if data["wechat_state"] != "published":  # status 1 at first: the scheduler polls later
        again = ws.run("push", "--json", now="2026-06-15T20:05+08:00")
        assert again.code == 0, again.err
    assert ws.run("check", now="2026-06-15T20:06+08:00").code == 0
    published = wechat_api.ledger.published_articles()
    assert [a.title for a in published] == ["雷锋街道禁毒讲座第1场", "雷锋街道禁毒讲座第2场"]
    manifest = json.loads((ws.path / "published/2026-06-15/manifest.json").read_text("utf-8"))
    assert manifest["wechat"]["publish_id"] and len(manifest["wechat"]["urls"]) == 2
    shown = ws.run("show", "--json", str(ids[0]), now="2026-06-15T21:00+08:00").json()
    assert shown["status"] == "published" and shown["publications"][0]["url"]


def test_masssend_push(workspace: Workspace, wechat_api: FakeWeChat, tmp_path: Path,
                       secret: None) -> None:
    ws = wechat_workspace(workspace, wechat_api, "masssend")
    approve(ws, tmp_path, 3)
    assert ws.run("push", now=PUSH).code == 0
    assert len(wechat_api.ledger.mass_sends) == 1
    sent = wechat_api.ledger.mass_sends[0]
    assert len(sent.articles) == 3
    assert all("/s/" in a["content_source_url"] for a in sent.articles)
    assert all("mmbiz" in a["content"] or "<img" not in a["content"] for a in sent.articles)
    assert ws.run("push", "--json", now="2026-06-15T21:00+08:00").json()["already_done"]
    assert len(wechat_api.ledger.mass_sends) == 1
