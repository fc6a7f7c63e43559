"""The weekly bulletin that blames the right people (issue 10), played through the CLI on a
three-stage office: a village whose report waited on the desk, a street that reported
late, a joint activity with a partner; the JSON shape, each unit's own email against the
SMTP test server, the leaders' whole table, and the .xlsx read back with openpyxl."""

# ruff: noqa: F811  (fixtures imported from tests.smtpd are parameters by design)

from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path

import openpyxl
from fastapi.testclient import TestClient
from sqlmodel import select

from pipeline.clock import Clock
from pipeline.models import Submission
from tests.conftest import Workspace, make_workspace
from tests.smtpd import (  # noqa: F401
    LEADER,
    SmtpServer,
    configure,
    notify_cli,
    smtp_server,
)
from tests.test_web import form_data, login, make_desk, report_json, report_post, unit_link

REPORT = """\
unit = "{unit}"
activity_type = "{kind}"
title = "{title}"
start = "{start}"
end = "{end}"
place = "文化广场"
form = "线下活动"
participants = "约60人"
{partners}
body = "活动现场气氛热烈，群众积极参与。"
"""
STAGES = (("王编辑", "初审"), ("张主任", "复审"), ("刘书记", "终审"))


def _submit(ws: Workspace, name: str, unit: str, kind: str, start: str, end: str,
            when: str, partners: str = "") -> int:
    folder = ws.path / "inbox"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(REPORT.format(unit=unit, kind=kind, title=f"{unit}{name}", start=start,
                                  end=end, partners=partners), "utf-8")
    result = ws.run("submit", "--json", str(path), now=f"2026-06-{when}+08:00")
    assert result.code == 0, result.err
    return int(result.json()["accepted"][0]["id"])


def _sign(ws: Workspace, draft_id: int, *times: str, first: int = 0) -> None:
    for (who, _), when in zip(STAGES[first:first + len(times)], times, strict=True):
        result = ws.run("approve", str(draft_id), "--by", who, now=f"2026-06-{when}+08:00")
        assert result.code == 0, result.err


def _push(ws: Workspace, day: str) -> None:
    assert ws.run("push", now=f"2026-06-{day}T20:00+08:00").code == 0


def play(ws: Workspace) -> dict[str, int]:
    ids = {}
    # 雷锋村 reports three hours after its activity; the desk holds it until Thursday, past
    # its deadline (end of Wednesday): late, and the desk's fault.
    ids["village"] = _submit(ws, "禁毒宣传", "雷锋村", "lecture", "2026-06-15 09:00",
                             "2026-06-15 11:00", "15T14:00")
    # 白马街道 reports an exhibition four days after it: the unit's delay.
    ids["late"] = _submit(ws, "禁毒展览", "白马街道", "exhibition", "2026-06-13 09:00",
                          "2026-06-13 17:00", "17T10:00")
    # 麓谷街道: a lecture held with a school (the joint activity), out the same day; a
    # film reported on Friday, not reviewed by the week's end.
    ids["joint"] = _submit(ws, "联合讲座", "麓谷街道", "lecture", "2026-06-16 09:00",
                           "2026-06-16 10:00", "16T12:00", 'partners = ["麓谷小学"]')
    ids["film"] = _submit(ws, "电影放映", "麓谷街道", "film", "2026-06-19 19:00",
                          "2026-06-19 21:00", "19T22:00")
    _push(ws, "15")                                         # nothing approved: a break
    _sign(ws, ids["joint"], "16T15:00", "16T16:00", "16T17:00")
    _push(ws, "16")
    _sign(ws, ids["late"], "17T11:00", "17T12:00", "17T13:00")
    _sign(ws, ids["village"], "17T14:00")
    _push(ws, "17")
    _sign(ws, ids["village"], "18T09:00", "18T10:00", first=1)
    _push(ws, "18")
    return ids


def test_delays_ranks_and_each_unit_gets_its_own_copy(
        tmp_path: Path, smtp_server: SmtpServer, notify_cli: None) -> None:
    ws = make_workspace(tmp_path / "ws", f"sqlite:///{tmp_path / 'ws' / 'pipeline.db'}",
                        staged=True)
    configure(ws, smtp_server)
    play(ws)
    now = "2026-06-22T10:00+08:00"
    facts = ws.run("bulletin", "--week", "2026-W25", "--json", now=now).json()
    assert set(facts) >= {"week", "campaign", "groups", "days", "district"}
    groups = {(g["level"], g["parent"]): {u["unit"]: u for u in g["units"]}
              for g in facts["groups"]}
    assert set(groups) >= {("district", None), ("street", None), ("branch", None),
                           ("community", "雷锋街道"), ("community", "麓谷街道")}
    for unit in groups[("street", None)].values():
        assert set(unit) >= {"unit", "rank", "score", "reported", "published", "late_unit",
                             "late_desk", "missed", "targets"}
    # The village: reported in time, published late because the desk held it.
    village = groups[("community", "雷锋街道")]["雷锋村"]
    assert (village["late_unit"], village["late_desk"], village["published"]) == (0, 1, 1)
    assert village["score"] == 2 and village["rank"] == 1     # 1 published × 2, no penalty
    # The street that reported four days late carries its own delay.
    baima = groups[("street", None)]["白马街道"]
    assert (baima["late_unit"], baima["late_desk"]) == (1, 0)
    assert baima["score"] == 11          # 禁毒展览 met × 10 + 1 published × 2 - 1 late report
    lugu = groups[("street", None)]["麓谷街道"]
    targets = {t["key"]: t for t in lugu["targets"]}
    assert (targets["一"]["done"], targets["一"]["met"]) == (1, True)       # with a partner
    assert (targets["二-2"]["done"], targets["二-2"]["met"]) == (1, False)  # 1 of 2-3
    assert (targets["二-1"]["done"], targets["二-1"]["reported"]) == (0, 1)  # not out yet
    assert (lugu["rank"], lugu["score"]) == (1, 12)         # 1 met × 10 + 1 published × 2
    days = {d["date"]: d for d in facts["days"]}
    assert days["2026-06-15"]["break"] and not days["2026-06-15"]["pushed"]
    assert [days[f"2026-06-{d}"]["articles"] for d in (16, 17, 18)] == [1, 1, 1]
    assert facts["district"]["breaks"] == 4                   # 15th, 19th, 20th, 21st
    desk = {s["stage"]: s for s in facts["district"]["desk"]["stages"]}
    assert list(desk) == ["初审", "复审", "终审", "待推送"]
    assert facts["district"]["desk"]["late"] == 1
    # 初审 held the village's report 14:00 Mon -> 14:00 Wed (48 h), the joint one 3 h and
    # 白马街道's 1 h: on average 17.3 h
    assert desk["初审"]["stories"] == 3 and desk["初审"]["hours"] == round((48 + 3 + 1) / 3, 1)

    sent = ws.run("bulletin", "--week", "2026-W25", "--send", now=now)
    assert sent.code == 0, sent.err
    assert "each with its own line highlighted" in sent.out
    [whole] = smtp_server.to(LEADER)
    assert "▶" not in whole.text and "还差" not in whole.text.split("## 日报制")[0]
    assert "断更 4 天（6月15日、6月19日、6月20日、6月21日）" in whole.text
    assert "编辑部原因超期发布 1 篇" in whole.text
    [own] = smtp_server.to("lugu@xxxq.example.cn")
    assert own.subject.endswith("·麓谷街道")
    assert ("还差：禁毒电影放映1场、宣讲团讲座1场、禁毒展览1次、参观教育基地2场次、"
            "志愿服务1次、屋场会/学生家长承诺书/禁毒知识抢答1次") in own.text
    assert "| 1 | ▶ 麓谷街道 | 12 |" in own.text
    assert "▶ 雷锋街道" not in own.text
    assert "#fff7d6" in own.html and "还差：禁毒电影放映1场" in own.html
    [village_mail] = smtp_server.to("leifengcun@xxxq.example.cn")
    assert "| 1 | ▶ 雷锋村 | 2 |" in village_mail.text
    with_email = sum(1 for u in ws.settings.units if u.email)
    assert len(smtp_server.messages) == 1 + with_email        # 东方红社区 has no address
    again = ws.run("bulletin", "--week", "2026-W25", "--send", now=now)
    assert again.code == 0 and len(smtp_server.messages) == 1 + with_email

    # The workbook: written beside the bulletin, and served by the desk.
    written = openpyxl.load_workbook(ws.path / "published/bulletins/2026-W25.xlsx")
    assert written.sheetnames == ["排名", "目标进度", "日报制", "编辑部时效"]
    store, app = make_desk(ws, Clock(datetime.fromisoformat(now)))
    try:
        # notify.base_url is https here, so the session cookie is a secure one
        with TestClient(app, base_url="https://testserver") as client:
            assert login(client).status_code == 303
            page = client.get("/reports").text
            assert "/reports/bulletins/2026-W25/xlsx" in page
            response = client.get("/reports/bulletins/2026-W25/xlsx")
            assert response.status_code == 200
            assert "attachment" in response.headers["content-disposition"]
            assert client.get("/reports/bulletins/2026-W99/xlsx").status_code == 404
    finally:
        store.close()
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    rows = [list(r) for r in book["排名"].iter_rows(values_only=True)]
    assert rows[0][:5] == ["级别", "所属街道", "名次", "单位", "得分"]
    assert ["社区/村", "雷锋街道", 1, "雷锋村", 2] in [r[:5] for r in rows]
    progress = [list(r) for r in book["目标进度"].iter_rows(values_only=True)]
    assert ["麓谷街道", "联合主题活动", "1次", 1, 0, "是"] in progress
    assert ["麓谷街道", "禁毒电影放映", "1-2场", 0, 1, "否"] in progress
    regime = [list(r) for r in book["日报制"].iter_rows(values_only=True)]
    assert ["2026-06-15", "否", 0, "是", None] in regime


def _partners(ws: Workspace) -> list[list[str]]:
    store = ws.store()
    try:
        with store.session() as session:
            rows = session.exec(select(Submission.partners).order_by(Submission.id)).all()
            return [json.loads(r) for r in rows]
    finally:
        store.close()


def test_partners_on_every_intake_path(workspace: Workspace) -> None:
    ws = workspace
    folder = ws.path / "inbox"
    folder.mkdir()
    (folder / "a.toml").write_text(REPORT.format(
        unit="麓谷街道", kind="lecture", title="文件报送", start="2026-06-14 09:00",
        end="2026-06-14 10:00", partners='partners = ["麓谷小学", "长沙某企业"]'), "utf-8")
    ledger = folder / "ledger.csv"
    ledger.write_text("填报单位,活动类型,标题,活动时间,活动地点,活动方式,活动内容,合作单位\n"
                      "雷锋街道,禁毒讲座,台账报送,2026-06-14 09:00,雷锋广场,线下,"
                      "讲座内容。,雷锋村、雷锋学校\n", "utf-8")
    result = ws.run("submit", "--json", str(folder / "a.toml"), str(ledger),
                    now="2026-06-15T10:00+08:00")
    assert result.code == 0, result.err
    store, app = make_desk(ws)
    try:
        with TestClient(app) as anon:
            token = unit_link(store, "白马街道")
            page = anon.get(f"/r/{token}").text
            assert 'name="partners"' in page and "合作单位" in page
            posted = report_post(anon, token, form_data(title="表单报送",
                                                         partners="白马小学，白马社区"))
            assert posted.status_code == 303, posted.text
            refused = report_post(anon, token, form_data(title="太长", partners="很" * 101))
            assert refused.status_code == 422
            assert "合作单位名称有 101 个字，每个单位最多 100 个字" in refused.text
            api = anon.post(f"/api/r/{unit_link(store, '洋湖国际社区')}/reports",
                            json=report_json(partners=["洋湖学校"]))
            assert api.status_code == 201, api.text
            bad = anon.post(f"/api/r/{unit_link(store, '洋湖国际社区')}/reports",
                            json=report_json(title="太长", partners=["很" * 101]))
            assert bad.status_code == 422 and "partner" in bad.text
    finally:
        store.close()
    assert _partners(ws) == [["麓谷小学", "长沙某企业"], ["雷锋村", "雷锋学校"],
                             ["白马小学", "白马社区"], ["洋湖学校"]]
