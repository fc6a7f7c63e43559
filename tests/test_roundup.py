"""每日动态: yesterday's push as a round-up article in the editors' queue (optional)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pipeline.notify.commands import notify_tick
from tests.conftest import Workspace
from tests.test_flow import write_report


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_round_up_is_written_once_and_goes_through_the_queue(workspace: Workspace,
                                                             tmp_path: Path) -> None:
    ws = workspace
    ws.configure("notify", digest_article=True)
    for i, unit in enumerate(("麓谷街道", "洋湖国际社区")):
        path = write_report(tmp_path, f"r{i}", unit=unit, kind="lecture",
                            title=f"{unit}禁毒讲座<b>{i}</b>", start="2026-06-15 09:00")
        draft_id = ws.run("submit", "--json", str(path),
                          now="2026-06-15T10:00+08:00").json()["accepted"][0]["id"]
        assert ws.run("approve", str(draft_id), now="2026-06-15T10:00+08:00").code == 0
    assert ws.run("push", now="2026-06-15T20:00+08:00").code == 0
    store = ws.store()
    try:
        notify_tick(store, ws.settings, at("2026-06-16T08:00+08:00"))  # before digest time
        assert ws.run("queue", "--json", now="2026-06-16T08:00+08:00").json() == []
        for _ in range(2):  # a second tick (or process) writes nothing more
            notify_tick(store, ws.settings, at("2026-06-16T08:31+08:00"))
    finally:
        store.close()
    queue = ws.run("queue", "--json", now="2026-06-16T09:00+08:00").json()
    assert [(q["title"], q["unit"], q["activity_label"]) for q in queue] == [
        ("每日动态｜6月15日", "XX新区", "每日动态")]
    html = (ws.path / "drafts" / str(queue[0]["id"]) / "article.html").read_text("utf-8")
    assert "麓谷街道禁毒讲座" in html and "洋湖国际社区" in html
    assert "<b>0</b>" not in html and "&lt;b&gt;0&lt;/b&gt;" in html  # titles stay text
    assert "class=" not in html and "<style" not in html
    assert ws.run("approve", str(queue[0]["id"]), now="2026-06-16T09:00+08:00").code == 0
    pushed = ws.run("push", "--json", now="2026-06-16T20:00+08:00").json()
    assert [a["title"] for a in pushed["articles"]] == ["每日动态｜6月15日"]
    bulletin = ws.run("bulletin", "--week", "2026-W25", now="2026-06-22T10:00+08:00")
    assert bulletin.code == 0
    md = (ws.path / "published" / "bulletins" / "2026-W25.md").read_text("utf-8")
    # The round-up is the account's own article: neither a report nor a story of the district.
    assert "| XX新区 | 0 | 0 | — | 0 | 0 | 0 | 0 |" in md.splitlines()
    assert "| 麓谷街道 | 1 | 1 |" in md
