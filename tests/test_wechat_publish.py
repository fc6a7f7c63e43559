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


def big_photo(path: Path) -> None:
    """A JPEG over WeChat's 1 MB body-image limit (noise does not compress)."""
    import os

    from PIL import Image
    Image.frombytes("RGB", (1400, 1400), os.urandom(1400 * 1400 * 3)).save(path, quality=95)
    assert path.stat().st_size > 1_000_000


def test_large_photos_are_recompressed_and_uploaded_once(
        workspace: Workspace, wechat_api: FakeWeChat, tmp_path: Path, secret: None) -> None:
    ws = wechat_workspace(workspace, wechat_api, "freepublish")
    (tmp_path / "photos").mkdir()
    big_photo(tmp_path / "photos" / "big.jpg")
    for i, day in enumerate(("2026-06-15", "2026-06-16")):
        path = write_report(tmp_path, f"b{i}", unit="雷锋街道", kind="lecture",
                            title=f"雷锋街道禁毒讲座第{i + 1}场", start=f"{day} 09:00")
        path.write_text(path.read_text("utf-8") + 'photos = ["photos/big.jpg"]\n', "utf-8")
        accepted = ws.run("submit", "--json", str(path), now=f"{day}T10:00+08:00").json()
        assert ws.run("approve", str(accepted["accepted"][0]["id"]),
                      now=f"{day}T10:00+08:00").code == 0
        assert ws.run("push", now=f"{day}T20:00+08:00").code == 0
        assert ws.run("push", now=f"{day}T20:10+08:00").code == 0  # resumes: polls
    assert len(wechat_api.ledger.published_articles()) == 2
    assert wechat_api.ledger.count("media/uploadimg") == 1          # cached by content
    assert wechat_api.ledger.count("material/add_material") == 1    # the same photo as cover
    assert all("mmbiz" in a["content"] for a in wechat_api.ledger.drafts[0].articles)


def test_a_story_without_photos_gets_the_default_cover(
        workspace: Workspace, wechat_api: FakeWeChat, tmp_path: Path, secret: None) -> None:
    ws = wechat_workspace(workspace, wechat_api, "masssend")
    approve(ws, tmp_path, 1, photo=False)
    assert ws.run("push", now=PUSH).code == 0
    (material,) = wechat_api.ledger.materials
    cover = ws.path / "templates" / "cover.jpg"
    assert material.size == cover.stat().st_size
    assert wechat_api.ledger.drafts[0].articles[0]["thumb_media_id"] == material.media_id


def test_a_limit_broken_at_publish_time_is_stopped_before_any_call(
        workspace: Workspace, wechat_api: FakeWeChat, tmp_path: Path, secret: None) -> None:
    """The content grew past WeChat's limit (here: the limit was lowered after approval):
    the story goes back to the editors with the field and the limit; nothing is sent."""
    ws = wechat_workspace(workspace, wechat_api, "freepublish")
    ids = approve(ws, tmp_path, 1, photo=False)
    ws.configure("limits", content_chars=500)
    result = ws.run("push", "--json", now=PUSH)
    assert result.code == 0, result.err
    assert wechat_api.ledger.count("draft/add") == 0
    assert wechat_api.ledger.count("freepublish/submit") == 0
    shown = ws.run("show", "--json", str(ids[0]), now=PUSH).json()
    assert shown["status"] == "drafted"
    assert any("content" in p and "500" in p for p in shown["problems"])
    assert ws.run("queue", "--json", now=PUSH).json()[0]["id"] == ids[0]


def test_wechat_check_names_what_is_wrong(workspace: Workspace, wechat_api: FakeWeChat,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    ws = workspace
    folder = ws.run("wechat", "check")
    assert folder.code == 1 and 'wechat.mode is "folder"' in folder.err
    wechat_workspace(ws, wechat_api, "masssend")
    monkeypatch.delenv("WECHAT_APPSECRET", raising=False)
    missing = ws.run("wechat", "check")
    assert missing.code == 1 and "WECHAT_APPSECRET" in missing.err
    monkeypatch.setenv("WECHAT_APPSECRET", "wrong-secret")
    wrong = ws.run("wechat", "check")
    assert wrong.code == 1 and "AppSecret" in wrong.err and "40125" in wrong.err
    assert "wrong-secret" not in wrong.err + wrong.out  # a secret is never printed
    monkeypatch.setenv("WECHAT_APPSECRET", "test-secret")
    wechat_api.whitelisted = False
    blocked = ws.run("wechat", "check")
    assert blocked.code == 1 and "whitelist" in blocked.err
    wechat_api.whitelisted = True
    good = ws.run("wechat", "check")
    assert good.code == 0 and "credentials and IP whitelist OK" in good.out


def test_a_misconfigured_account_stops_the_scheduler_at_start(
        workspace: Workspace, wechat_api: FakeWeChat, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    ws = wechat_workspace(workspace, wechat_api, "freepublish")
    monkeypatch.setenv("WECHAT_APPSECRET", "test-secret")
    approve(ws, tmp_path, 1)
    env = {k: v for k, v in __import__("os").environ.items() if k != "WECHAT_APPSECRET"}
    env |= {"DATABASE_URL": ws.database_url, "PIPELINE_NOW": PUSH}
    proc = subprocess.run([sys.executable, "-m", "pipeline", "--config",
                           str(ws.path / "config.toml"), "worker"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "WECHAT_APPSECRET" in proc.stderr
    assert wechat_api.ledger.count("draft/add") == 0
    bad = ws.run("wechat", "check")
    assert bad.code == 0  # the configuration itself is fine once the secret is there
    ws.configure("wechat", mode="broadcast")
    broken = ws.run("wechat", "check")
    assert broken.code == 1 and "wechat.mode" in broken.err


def test_a_push_that_failed_at_wechat_closes_the_day(
        workspace: Workspace, wechat_api: FakeWeChat, tmp_path: Path, secret: None) -> None:
    """48001 (account not allowed to publish) is final: the stories go back to the editors,
    the day is closed with a sentence, and a second push that day sends nothing."""
    ws = wechat_workspace(workspace, wechat_api, "freepublish")
    ids = approve(ws, tmp_path, 2)
    wechat_api.inject("freepublish/submit", "errcode", code=48001)
    first = ws.run("push", "--json", now=PUSH).json()
    assert first["wechat_state"] == "failed"
    assert {ws.run("show", "--json", str(i), now=PUSH).json()["status"] for i in ids} == {
        "failed"}
    again = ws.run("push", now="2026-06-15T21:00+08:00")
    assert again.code == 0 and "failed at WeChat" in again.out
    queue = ws.run("queue", "--json", now="2026-06-15T21:00+08:00").json()
    assert sorted(q["id"] for q in queue) == sorted(ids)
    assert all("publishing failed" in q["attention"] and "48001" in q["attention"]
               for q in queue)
    assert wechat_api.ledger.count("freepublish/submit") == 1
    assert wechat_api.ledger.published_articles() == []


def test_a_push_that_needs_a_person_is_confirmed_or_released(
        workspace: Workspace, wechat_api: FakeWeChat, tmp_path: Path, secret: None) -> None:
    """When WeChat cannot tell whether a push went out, an editor looks in the console and
    says so: `confirm-sent` records it as published, `release` hands the stories on."""
    from sqlmodel import select

    from pipeline.models import WeChatJob

    ws = wechat_workspace(workspace, wechat_api, "freepublish")
    ids = approve(ws, tmp_path, 1)
    # Every submit is lost on the way (WeChat never sees it): the outcome stays unknown
    # until the reconciler gives up and asks a person.
    wechat_api.inject("freepublish/submit", "drop_before", times=20)
    ws.run("push", now=PUSH)
    store = ws.store()
    state = ""
    for minute in range(1, 240, 10):
        # a push of the same day resumes the running one, as the scheduler's tick does
        ws.run("push", now=f"2026-06-15T{20 + minute // 60}:{minute % 60:02d}+08:00")
        with store.session() as session:
            state = session.exec(select(WeChatJob.state)).one()
        if state == "needs_human":
            break
    store.close()
    assert state == "needs_human"
    assert wechat_api.ledger.published_articles() == []
    (held,) = ws.run("queue", "--json", now="2026-06-15T21:00+08:00").json()
    assert held["id"] == ids[0] and "pipeline release 2026-06-15" in held["attention"]
    refused = ws.run("release", "2026-06-14", now="2026-06-15T21:00+08:00")
    assert refused.code == 1 and "no WeChat push" in refused.err
    released = ws.run("release", "2026-06-15", "--by", "王编辑", now="2026-06-15T21:00+08:00")
    assert released.code == 0 and "1 story(ies)" in released.out
    assert ws.run("show", "--json", str(ids[0]), now="2026-06-15T21:00+08:00").json()[
        "status"] == "approved"
    assert ws.run("confirm-sent", "2026-06-15", now="2026-06-15T21:00+08:00").code == 1
    next_day = ws.run("push", "--json", now="2026-06-16T20:00+08:00").json()
    assert [a["id"] for a in next_day["articles"]] == ids
