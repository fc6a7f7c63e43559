"""The article states only what the report says: golden Markdown per default template,
participants as written, dates without times, multi-day activities, places that name
the unit, a body that already opens with the lead's facts, and a contact that never
reaches anything published (published/ and the WeChat fake's ledger are scanned).

Rewrite the golden files after an intended template change with
    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_article.py -q -p no:cacheprovider
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline.config import DEFAULT_ACTIVITY_TYPES
from pipeline.domain import Report
from pipeline.render import make_environment, render_article
from tests.conftest import Workspace
from tests.fakewechat import FakeWeChat
from tests.test_render import make_settings
from tests.test_wechat_publish import wechat_workspace

GOLDEN = Path(__file__).parent / "data" / "articles"
TZ = ZoneInfo("Asia/Shanghai")
PHONE = "13800000000"
CONTACT = f"李娟 {PHONE}"


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=TZ)


BASE = Report(unit="麓谷街道", activity_type="lecture", title="麓谷街道举办禁毒知识讲座",
              start=at(2026, 6, 24, 9, 0), end=at(2026, 6, 24, 11, 0), place="社区会议室",
              form="线下讲座", body="讲座结合案例讲解了新型毒品的伪装形式。",
              contact=CONTACT, notes="请编辑核对人数", participants=260,
              participants_unit="人", participants_text="约260人")

# One report per default template, each exercising one rule of the issue.
CASES: dict[str, dict[str, object]] = {
    "lecture": {"start": at(2026, 6, 24, 0, 0), "end": at(2026, 6, 24, 23, 59, 59),
                "timed": False},                                   # a date without a time
    "exhibition": {"start": at(2026, 6, 17, 0, 0), "end": at(2026, 6, 19, 23, 59, 59),
                   "timed": False, "participants": 800,
                   "participants_text": "800余人"},                # multi-day, 800余人
    "volunteer": {"participants": 218, "participants_text": "志愿者18人，群众约200人"},
    "hardship_visit": {"participants": 4, "participants_unit": "户",
                       "participants_text": "4户"},
    "household_meeting": {"place": "麓谷街道文化广场", "participants": 450,
                          "participants_text": "家长约450人"},       # the place names the unit
    "film": {"body": "6月24日上午，麓谷街道在社区会议室放映禁毒电影《门徒》。\n\n"
                     "观影后开展了讨论。"},
    "base_visit": {"start": at(2026, 6, 24, 14, 30), "end": at(2026, 6, 24, 17, 0)},
    "quiz": {"participants": None, "participants_unit": "", "participants_text": ""},
    "training": {"form": ""},
    "parent_pledge": {"place": "麓谷小学", "form": "签订承诺书", "participants": 300,
                      "participants_text": "学生家长300余人"},     # issue 10's new type
    "other": {},
}


def test_every_default_template_has_a_case() -> None:
    assert set(CASES) == set(DEFAULT_ACTIVITY_TYPES)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_golden_article(kind: str, tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    report = replace(BASE, activity_type=kind, **CASES[kind])  # type: ignore[arg-type]
    article = render_article(report, [], make_environment(settings), settings)
    golden = GOLDEN / f"{kind}.md"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(article.markdown, encoding="utf-8")
    assert article.markdown == golden.read_text(encoding="utf-8")
    for private in (PHONE, "李娟", "请编辑核对人数", "凌晨"):
        assert private not in article.markdown and private not in article.html


def test_the_rules_in_the_golden_articles() -> None:
    text = {kind: (GOLDEN / f"{kind}.md").read_text(encoding="utf-8") for kind in CASES}
    assert text["lecture"].startswith("2026年6月24日，麓谷街道在社区会议室举办禁毒知识讲座")
    assert "听讲人数：约260人。" in text["lecture"]
    assert text["exhibition"].startswith("2026年6月17日至19日，")
    assert "800余人" in text["exhibition"]
    assert "参与人数：志愿者18人，群众约200人。" in text["volunteer"]
    assert "218名志愿者" not in text["volunteer"]
    assert "走访慰问户数：4户。" in text["hardship_visit"]
    assert text["household_meeting"].startswith("2026年6月24日上午，在麓谷街道文化广场召开")
    assert text["film"].startswith("6月24日上午，麓谷街道在社区会议室放映")  # no lead
    assert text["base_visit"].startswith("2026年6月24日下午，")
    assert "人数" not in text["quiz"] and "活动形式" not in text["training"]
    assert "学生家长承诺书" in text["parent_pledge"] and "学生家长300余人" in text["parent_pledge"]
    assert not any(word in t for t in text.values()
                   for word in ("图文展板", "仿真毒品模型", "讲解员", "慰问品", "拉家常"))


def test_the_lead_left_out_is_noted_for_the_editor(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    report = replace(BASE, activity_type="film", **CASES["film"])  # type: ignore[arg-type]
    article = render_article(report, [], make_environment(settings), settings)
    assert article.notes == ("the lead sentence was left out: the report's first sentence "
                             "already opens with the date (6月24日) and the place (社区会议室)",)


def test_contact_and_notes_never_reach_anything_published(
        workspace: Workspace, wechat_api: FakeWeChat, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WECHAT_APPSECRET", "test-secret")
    ws = wechat_workspace(workspace, wechat_api, "masssend")
    path = tmp_path / "r.json"
    path.write_text(json.dumps({
        "单位": "麓谷街道", "活动类型": "禁毒讲座", "标题": "麓谷街道举办禁毒知识讲座",
        "活动时间": "2026-06-15", "活动地点": "麓谷街道文化广场", "活动方式": "线下讲座",
        "参与人数": "约260人", "活动内容": "讲座结合案例讲解了新型毒品。",
        "联系人": CONTACT, "备注": "人数请编辑核对"}, ensure_ascii=False), encoding="utf-8")
    [accepted] = ws.run("submit", "--json", str(path), now="2026-06-15T10:00+08:00"
                        ).json()["accepted"]
    shown = ws.run("show", str(accepted["id"]), now="2026-06-15T10:00+08:00").out
    assert CONTACT in shown and "人数请编辑核对" in shown       # the editors see them
    assert ws.run("approve", str(accepted["id"]), now="2026-06-15T10:00+08:00").code == 0
    assert ws.run("push", now="2026-06-15T20:00+08:00").code == 0
    files = [p for p in (ws.path / "published").rglob("*") if p.is_file()]
    assert any(p.name == "meta.json" for p in files) and any(p.name == "manifest.json"
                                                           for p in files)
    published = "".join(p.read_bytes().decode("utf-8", "replace") for p in files)
    ledger = repr(wechat_api.ledger.__dict__) + "".join(
        c.raw_body.decode("utf-8", "replace") for c in wechat_api.ledger.calls)
    assert "约260人" in published and "约260人" in ledger       # the article did go out
    for private in (PHONE, "李娟", "人数请编辑核对"):
        assert private not in published and private not in ledger
    manifest = json.loads((ws.path / "published/2026-06-15/manifest.json").read_text("utf-8"))
    assert manifest["published_at"].endswith("+08:00")
    assert manifest["articles"][0]["deadline"] == "2026-06-18T00:00:00+08:00"
