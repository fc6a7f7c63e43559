"""End to end: a whole campaign week played through the real CLI with --now.

Reports from units at three levels, some rejected, a duplicate, edits, pushes on
consecutive days, one day's push missed by downtime, a late story, the sweep and
its escalation. Afterwards `published/`, the manifests and the database must agree:
nothing published twice, nothing accepted lost.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

from PIL import Image

from tests.conftest import Workspace, check_histories

REPORT = """\
unit = "{unit}"
activity_type = "{kind}"
title = "{title}"
start = "{start}"
place = "{place}"
form = "线下活动"
participants = 60
contact = "张三 138****0000"
links = ["https://news.example.cn/a/1", "湖南日报"]
{photos}
body = \"\"\"
{body}
\"\"\"
"""


BODY = "活动现场气氛热烈，群众积极参与。\n\n- 发放资料200份\n- **现场咨询**50人次"


def write_report(folder: Path, name: str, *, unit: str, kind: str, title: str, start: str,
                 body: str = BODY, photo: bool = False) -> Path:
    photos = ""
    if photo:
        (folder / "photos").mkdir(exist_ok=True)
        Image.new("RGB", (64, 48), (200, 30, 30)).save(folder / "photos" / f"{name}.jpg")
        photos = f'photos = ["photos/{name}.jpg"]'
    path = folder / f"{name}.toml"
    path.write_text(REPORT.format(unit=unit, kind=kind, title=title, start=start,
                                  place="社区文化广场", body=body, photos=photos),
                    encoding="utf-8")
    return path


def manifests(ws: Workspace) -> dict[str, dict[str, object]]:
    return {p.parent.name: json.loads(p.read_text(encoding="utf-8"))
            for p in sorted((ws.path / "published").glob("*/manifest.json"))}


def test_campaign_week(any_workspace: Workspace, tmp_path: Path) -> None:
    ws = any_workspace
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    a = write_report(inbox, "a", unit="麓谷街道", kind="禁毒电影放映",
                     title="麓谷街道开展禁毒电影进社区活动", start="2026-06-14 19:00", photo=True)
    b = write_report(inbox, "b", unit="洋湖国际社区", kind="lecture",
                     title="洋湖国际社区举办禁毒知识讲座", start="2026-06-15 09:00")
    c = write_report(inbox, "c", unit="志愿者分会", kind="志愿服务",
                     title="志愿者分会走上街头宣传禁毒", start="2026-06-13 08:30")
    bad_unit = write_report(inbox, "d", unit="不存在街道", kind="lecture",
                            title="未知单位的报告", start="2026-06-14 10:00")
    future = write_report(inbox, "e", unit="雷锋街道", kind="lecture",
                          title="尚未举行的活动", start="2026-06-30 10:00")

    # Monday morning: five reports, two rejected with sentences, three drafts.
    mon = "2026-06-15T10:00+08:00"
    result = ws.run("submit", "--json", str(a), str(b), str(c), str(bad_unit), str(future),
                    now=mon)
    assert result.code == 1
    data = result.json()
    assert [x["unit"] for x in data["accepted"]] == ["麓谷街道", "洋湖国际社区", "志愿者分会"]
    rejected = {Path(r["source"]).name: r for r in data["rejected"]}
    assert set(rejected) == {"d.toml", "e.toml"}
    assert "不存在街道" in rejected["d.toml"]["message"]
    ids = {x["unit"]: x["id"] for x in data["accepted"]}
    assert data["accepted"][2]["deadline"] == "2026-06-16T00:00:00+08:00"

    # The same report again is a duplicate, not a second draft.
    again = ws.run("submit", "--json", str(a), now=mon).json()
    assert again["accepted"] == [] and again["duplicates"][0]["id"] == ids["麓谷街道"]

    # Editors work the queue: earliest deadline first.
    queue = ws.run("queue", "--json", now=mon).json()
    assert [q["id"] for q in queue] == [ids["志愿者分会"], ids["麓谷街道"], ids["洋湖国际社区"]]
    assert queue[0]["deadline_state"] == "due_soon"
    assert ws.run("approve", str(ids["志愿者分会"]), "--by", "王编辑", now=mon).code == 0
    assert ws.run("approve", str(ids["麓谷街道"]), now=mon).code == 0
    refused = ws.run("request-changes", str(ids["洋湖国际社区"]), "--note", " ", now=mon)
    assert refused.code == 1 and "note is required" in refused.err
    assert ws.run("request-changes", str(ids["洋湖国际社区"]), "--note", "请补充照片",
                  now=mon).code == 0

    # An editor fixes a typo through $EDITOR; the HTML is re-rendered.
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/气氛热烈/气氛十分热烈/' \"$1\"\n", encoding="utf-8")
    editor.chmod(editor.stat().st_mode | stat.S_IEXEC)
    import os
    os.environ["EDITOR"] = str(editor)
    try:
        assert ws.run("edit", str(ids["麓谷街道"]), "--by", "王编辑", now=mon).code == 0
    finally:
        del os.environ["EDITOR"]
    assert "气氛十分热烈" in ws.article(ids["麓谷街道"], html=True)

    # Monday's push at 20:00: the volunteer story leads (earliest deadline).
    pushed = ws.run("push", "--json", now="2026-06-15T20:00+08:00").json()
    assert [x["id"] for x in pushed["articles"]] == [ids["志愿者分会"], ids["麓谷街道"]]
    assert not any(x["late"] for x in pushed["articles"])
    twice = ws.run("push", "--json", now="2026-06-15T20:30+08:00").json()
    assert twice["already_done"] is True

    # An approved published draft cannot be approved again; nothing changes.
    refused = ws.run("approve", str(ids["麓谷街道"]), now="2026-06-15T21:00+08:00")
    assert refused.code == 1 and "is 'published'" in refused.err

    # Tuesday: a late ledger entry (activity on the 13th) and a fresh one; approved;
    # the machine is down at Tuesday's push time.
    tue = "2026-06-16T09:00+08:00"
    late = write_report(inbox, "f", unit="白箬铺镇", kind="hardship_visit",
                        title="白箬铺镇走访慰问戒毒康复人员家庭", start="2026-06-13 15:00")
    fresh = write_report(inbox, "g", unit="雷锋村", kind="household_meeting",
                         title="雷锋村召开禁毒屋场会", start="2026-06-16 08:00")
    more = ws.run("submit", "--json", str(late), str(fresh), now=tue).json()
    late_id, fresh_id = (x["id"] for x in more["accepted"])
    for draft_id in (late_id, fresh_id):
        assert ws.run("approve", str(draft_id), now=tue).code == 0

    # Wednesday 20:00: Tuesday is recorded as missed; the backlog goes out, the late one marked.
    wed = ws.run("push", "--json", now="2026-06-17T20:00+08:00").json()
    assert wed["missed_days"] == ["2026-06-16"]
    articles = {x["id"]: x for x in wed["articles"]}
    assert set(articles) == {late_id, fresh_id}
    assert articles[late_id]["late"] is True and articles[fresh_id]["late"] is False
    shown = ws.run("show", "--json", str(late_id), now="2026-06-18T09:00+08:00").json()
    assert shown["late"] is True and shown["deadline_state"] == "published_late"
    assert [h["action"] for h in shown["history"]] == ["submitted", "approve", "claim", "publish"]
    assert any(a["kind"] == "published_late" for a in shown["alerts"])

    # The sweep: the community's lecture (sent back for changes) is overdue on Thursday and
    # escalated to its street a day later; a second sweep records nothing new.
    thu = ws.run("check", "--json", now="2026-06-18T09:00+08:00").json()
    assert [x["id"] for x in thu["overdue"]] == [ids["洋湖国际社区"]]
    assert thu["overdue"][0]["notify"] == ["bianji@xxxq.example.cn", "yanghu@xxxq.example.cn"]
    assert thu["escalated"] == []
    fri = ws.run("check", "--json", now="2026-06-19T09:00+08:00").json()
    assert fri["escalated"][0]["notify"] == ["huangjinyuan@xxxq.example.cn"]
    assert fri["overdue"][0]["new"] is False

    # published/ and the database agree; every story went out exactly once.
    days = manifests(ws)
    assert set(days) == {"2026-06-15", "2026-06-17"}
    out_ids = [a["id"] for m in days.values() for a in m["articles"]]  # type: ignore[union-attr]
    assert sorted(out_ids) == sorted([ids["志愿者分会"], ids["麓谷街道"], late_id, fresh_id])
    lead = ws.path / "published" / "2026-06-15" / f"01-{ids['志愿者分会']}" / "article.html"
    assert lead.is_file()
    photo_dir = ws.path / "published" / "2026-06-15" / f"02-{ids['麓谷街道']}" / "photos"
    assert [p.suffix for p in photo_dir.iterdir()] == [".jpg"]
    assert "a.jpg" not in {p.name for p in photo_dir.iterdir()}  # generated names only
    every = ws.run("queue", "--all", "--json", now="2026-06-19T09:00+08:00").json()
    assert [x["id"] for x in every] == [ids["洋湖国际社区"]]
    units = {u["name"]: u for u in ws.run("units", "--json").json()}
    assert units["白箬铺镇"]["published"] == 1 and units["白箬铺镇"]["late"] == 1
    # Every state each draft passed through (claims and publications too) is in its history.
    with ws.store().session() as session:
        check_histories(session)


def test_show_prints_the_reported_fields(workspace: Workspace, tmp_path: Path) -> None:
    """The text view lets an editor check the article against what the unit reported."""
    path = write_report(tmp_path, "s", unit="麓谷街道", kind="lecture",
                        title="麓谷街道开展禁毒讲座", start="2026-06-14 19:00", photo=True)
    now = "2026-06-15T09:00+08:00"
    draft_id = workspace.run("submit", "--json", str(path), now=now).json()["accepted"][0]["id"]
    shown = workspace.run("show", str(draft_id), now=now)
    assert shown.code == 0
    lines = dict(line.split(":", 1) for line in shown.out.splitlines() if ":" in line)
    assert lines["time"].strip() == "2026-06-14 19:00 to 2026-06-14 19:00"
    assert lines["place"].strip() == "社区文化广场"
    assert lines["source"].strip() == f"{path}, received 2026-06-15 09:00"
    assert "(s.jpg," in lines["photo"] and "deadline: 6月16日24时前" in lines["status"]
    workspace.run("approve", str(draft_id), now=now)
    workspace.run("push", now="2026-06-15T20:00+08:00")
    after = workspace.run("show", str(draft_id), now="2026-06-16T09:00+08:00").out
    assert "(published_on_time)" in after and "h left" not in after
