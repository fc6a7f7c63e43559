"""The weekly joint bulletin: ISO weeks, the pure composition (figures, bars, ranking,
formula), the files in published/bulletins/ and the once-per-week email."""

# ruff: noqa: F811  (fixtures imported from tests.smtpd are parameters by design)

from __future__ import annotations

import dataclasses
import re
from datetime import datetime
from pathlib import Path

import pytest

from pipeline import cli
from pipeline.config import PlanItem, ScoringSettings, Settings, Target
from pipeline.domain import Level
from pipeline.notify.bulletin import (
    BulletinData,
    IsoWeek,
    UnitWeek,
    bulletin_due,
    compose_bulletin,
    parse_week,
)
from pipeline.notify.campaign import Progress
from tests.conftest import Workspace
from tests.smtpd import EDITOR, LEADER, SmtpServer, configure, notify_cli, smtp_server  # noqa: F401
from tests.test_digest import play_week


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_iso_weeks_parse_or_say_why() -> None:
    assert parse_week("2026-W25") == IsoWeek(2026, 25) == parse_week(" 2026w25 ")
    assert IsoWeek(2026, 25).monday.isoformat() == "2026-06-15"
    assert IsoWeek(2026, 25).sunday.isoformat() == "2026-06-21"
    assert IsoWeek(2026, 1).previous() == IsoWeek(2025, 52)
    assert parse_week("2020-W53").label == "2020-W53"
    with pytest.raises(ValueError, match="the year 2025 has no ISO week 53"):
        parse_week("2025-W53")
    with pytest.raises(ValueError, match="not an ISO week like 2026-W25"):
        parse_week("2026-25")


def test_a_bad_week_is_a_usage_error(notify_cli: None,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["bulletin", "--week", "2026-W60"])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "has no ISO week 60" in err


FILM = PlanItem("二-1", "禁毒电影放映", ("street",), Target(1, 2), types=("film",),
                unit_word="场")
BASE = PlanItem("三", "参观教育基地", ("street", "branch"), Target(2, None),
                types=("base_visit",), unit_word="场次")
LECTURE = PlanItem("讲座", "禁毒讲座", ("community",), Target(1, None), types=("lecture",))


def sample() -> BulletinData:
    units = (
        UnitWeek("XX新区", Level.DISTRICT, None),
        UnitWeek("麓谷街道", Level.STREET, "XX新区", submitted=3, published=2, late=1,
                 late_unit=1, progress=(Progress(FILM, 2, 0), Progress(BASE, 1, 1))),
        UnitWeek("雷锋街道", Level.STREET, "XX新区",
                 progress=(Progress(FILM, 0, 0), Progress(BASE, 0, 0))),
        UnitWeek("物流|行业分会", Level.BRANCH, "XX新区", submitted=1, published=1,
                 progress=(Progress(BASE, 0, 0),)),
        UnitWeek("桐梓坡社区", Level.COMMUNITY, "麓谷街道", missed=1,
                 progress=(Progress(LECTURE, 1, 0),)),
    )
    return BulletinData(IsoWeek(2026, 25), units, {}, {}, "6·26宣传月", None)


def test_compose_bulletin_figures_bars_ranking_and_formula(workspace: Workspace) -> None:
    bulletin = compose_bulletin(sample(), workspace.settings)
    md, html = bulletin.markdown, bulletin.html
    assert bulletin.subject == "【XX新区禁毒】每周联合通报 2026-W25（6月15日—6月21日）"
    assert "| 麓谷街道 | 3 | 2 | 50% | 1 | 0 | 1 | 0 |" in md
    # score = 1 target met x 10 + 2 published x 2 + 1 reported late x (-1) = 13; streets
    # are ranked with streets only, branches with branches, communities within their street.
    streets = md.split("## 街道/镇")[1].split("## 行业分会")[0].split("### 排名")[1]
    assert "| 1 | 麓谷街道 | 13 | 1/2 | 2 | 1 | 0 |" in streets
    assert "| 2 | 雷锋街道 | 0 |" in streets and "物流" not in streets
    branches = md.split("## 行业分会")[1].split("## 社区/村（麓谷街道）")[0]
    assert r"| 1 | 物流\|行业分会 | 2 | 0/1 |" in branches
    community = md.split("## 社区/村（麓谷街道）")[1]
    assert "| 1 | 桐梓坡社区 | 7 | 1/1 | 0 | 0 | 1 |" in community
    formula = ("得分 = 达标项数 × 10 + 发布稿件数 × 2 + 单位迟报数 × (-1) + "
               "单位原因超期未发数 × (-3)")
    assert formula in md and formula in html
    # published / target with the bar, and what is reported but not out yet in brackets
    assert "| 麓谷街道 | 2/1-2 ■■■■■ | 1/>=2 ■■□□□（+1） |" in md
    # Bars are table cells with widths and colours: a full green one and a half amber one.
    assert re.search(r'<td width="100" height="8" bgcolor="#2e7d32"', html)
    assert re.search(r'<td width="50" height="8" bgcolor="#f59e0b"', html)
    assert '<td width="50" height="8" bgcolor="#e5e7eb"' in html
    for banned in ("<script", "<img", "<style", "url("):
        assert banned not in html
    assert "物流|行业分会" in html
    silent = md.split("## 本周未报送的单位")[1]
    assert "区级（区禁毒办、区禁毒协会）：XX新区" in silent and "街道/镇：雷锋街道" in silent
    assert "社区/村（麓谷街道）：桐梓坡社区" in silent and "麓谷街道、" not in silent


def test_the_weights_come_from_the_config(workspace: Workspace) -> None:
    settings: Settings = dataclasses.replace(
        workspace.settings, scoring=ScoringSettings(target_met=0, published=5, late=-0.5,
                                                    missed=-10))
    md = compose_bulletin(sample(), settings).markdown
    assert ("得分 = 达标项数 × 0 + 发布稿件数 × 5 + 单位迟报数 × (-0.5) + "
            "单位原因超期未发数 × (-10)") in md
    assert "| 1 | 麓谷街道 | 9.5 |" in md and "| 1 | 桐梓坡社区 | -10 |" in md


def test_bulletin_is_written_and_sent_once_a_week(workspace: Workspace, tmp_path: Path,
                                                  smtp_server: SmtpServer,
                                                  notify_cli: None) -> None:
    configure(workspace, smtp_server)
    play_week(workspace, tmp_path)
    smtp_server.messages.clear()          # the week's alert emails
    preview = workspace.run("bulletin", now="2026-06-22T08:00+08:00")   # last week: W25
    assert preview.code == 0 and "bulletin 2026-W25" in preview.out
    folder = workspace.path / "published" / "bulletins"
    assert f"written: {folder / '2026-W25.html'}" in preview.out
    md = (folder / "2026-W25.md").read_text("utf-8")
    assert "| 麓谷街道 | 2 | 1 | 100% | 0 | 1 | 0 | 0 |" in md  # H still out at week's end
    # D published late: its report came three days after the activity, so the unit's
    assert "| 白箬铺镇 | 1 | 1 | 0% | 1 | 0 | 1 | 0 |" in md
    assert "| 1 | 麓谷街道 | 12 | 1/7 |" in md                  # 电影放映 1/1-2 met
    assert "社区/村（麓谷街道）：桐梓坡社区、麓谷社区" in md
    assert "本周推送 2 天，断更 5 天（6月16日、6月18日" in md
    assert "<td" in (folder / "2026-W25.html").read_text("utf-8")
    assert smtp_server.messages == []

    store = workspace.store()
    try:
        assert bulletin_due(store, workspace.settings, at("2026-06-22T08:59+08:00")) is False
        assert bulletin_due(store, workspace.settings, at("2026-06-22T09:01+08:00")) is True
        assert bulletin_due(store, workspace.settings, at("2026-06-23T09:01+08:00")) is False
    finally:
        store.close()
    [mail] = [m for m in smtp_server.messages if EDITOR in m.rcpt_tos]
    assert sorted(mail.rcpt_tos) == sorted([EDITOR, LEADER])
    assert mail.subject == "【XX新区禁毒】每周联合通报 2026-W25（6月15日—6月21日）"
    assert "| 白箬铺镇 | 1 | 1 | 0% | 1 | 0 | 1 | 0 |" in mail.text and "白箬铺镇" in mail.html
    assert "▶" not in mail.text                        # the whole table, nobody highlighted
    sent = len(smtp_server.messages)
    assert sent == 1 + sum(1 for u in workspace.settings.units if u.email)
    again = workspace.run("bulletin", "--week", "2026-W25", "--send",
                          now="2026-06-22T10:00+08:00")
    assert again.code == 0 and "already in the outbox (sent)" in again.out
    assert len(smtp_server.messages) == sent
