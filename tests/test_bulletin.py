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
from pipeline.config import ScoringSettings, Settings, Target
from pipeline.domain import Level
from pipeline.notify.bulletin import (
    BulletinData,
    IsoWeek,
    UnitWeek,
    bulletin_due,
    compose_bulletin,
    parse_week,
)
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
    assert exited.value.code == 2 and "has no ISO week 60; write it like 2026-W25" in err


def sample() -> BulletinData:
    targets = {Level.STREET: {"film": Target(1, 2), "base_visit": Target(2, None)},
               Level.COMMUNITY: {"lecture": Target(1, None)}}
    units = (
        UnitWeek("XX新区", Level.DISTRICT, None),
        UnitWeek("麓谷街道", Level.STREET, "XX新区", submitted=3, published=2, late=1,
                 done={"film": 2, "base_visit": 1}),
        UnitWeek("雷锋街道", Level.STREET, "XX新区"),
        UnitWeek("物流|行业分会", Level.BRANCH, "XX新区", submitted=1, published=1),
        UnitWeek("桐梓坡社区", Level.COMMUNITY, "麓谷街道", missed=1, done={"lecture": 1}),
    )
    labels = {"film": "禁毒电影放映", "base_visit": "参观教育基地", "lecture": "禁毒讲座"}
    return BulletinData(IsoWeek(2026, 25), units, targets, labels, "6·26宣传月", None)


def test_compose_bulletin_figures_bars_ranking_and_formula(workspace: Workspace) -> None:
    bulletin = compose_bulletin(sample(), workspace.settings)
    md, html = bulletin.markdown, bulletin.html
    assert bulletin.subject == "【XX新区禁毒】每周联合通报 2026-W25（6月15日—6月21日）"
    assert "| 麓谷街道 | 3 | 2 | 50% | 1 | 0 |" in md
    # score = 1 target met x 10 + 2 published x 2 + 1 late x (-1) = 13; ties share a rank.
    ranking = md.split("## 街道/镇及行业分会")[1].split("## 社区/村")[0].split("### 排名")[1]
    assert "| 1 | 麓谷街道 | 13 | 1/2 | 2 | 1 | 0 |" in ranking
    assert r"| 2 | 物流\|行业分会 | 2 | 0/0 |" in ranking and "| 3 | 雷锋街道 | 0 |" in ranking
    assert "| 1 | 桐梓坡社区 | 7 | 1/1 | 0 | 0 | 1 |" in md
    formula = "得分 = 达标项数 × 10 + 发布稿件数 × 2 + 超期发布数 × (-1) + 超期未发数 × (-3)"
    assert formula in md and formula in html
    assert "| 麓谷街道 | 2/1-2 ■■■■■ | 1/>=2 ■■□□□ |" in md
    # Bars are table cells with widths and colours: a full green one and a half amber one.
    assert re.search(r'<td width="100" height="8" bgcolor="#2e7d32"', html)
    assert re.search(r'<td width="50" height="8" bgcolor="#f59e0b"', html)
    assert '<td width="50" height="8" bgcolor="#e5e7eb"' in html
    for banned in ("<script", "<img", "<style", "url("):
        assert banned not in html
    assert "物流|行业分会" in html
    silent = md.split("## 本周未报送的单位")[1]
    assert "区级：XX新区" in silent and "街道/镇及行业分会：雷锋街道" in silent
    assert "社区/村：桐梓坡社区" in silent and "麓谷街道" not in silent


def test_the_weights_come_from_the_config(workspace: Workspace) -> None:
    settings: Settings = dataclasses.replace(
        workspace.settings, scoring=ScoringSettings(target_met=0, published=5, late=-0.5,
                                                    missed=-10))
    md = compose_bulletin(sample(), settings).markdown
    assert "得分 = 达标项数 × 0 + 发布稿件数 × 5 + 超期发布数 × (-0.5) + 超期未发数 × (-10)" in md
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
    assert "| 麓谷街道 | 2 | 1 | 100% | 0 | 1 |" in md          # H still out at week's end
    assert "| 白箬铺镇 | 1 | 1 | 0% | 1 | 0 |" in md            # D published late
    assert "| 1 | 麓谷街道 | 9 | 1/5 |" in md
    assert "社区/村：桐梓坡社区、白箬铺村" in md
    assert "<td" in (folder / "2026-W25.html").read_text("utf-8")
    assert smtp_server.messages == []

    store = workspace.store()
    try:
        assert bulletin_due(store, workspace.settings, at("2026-06-22T08:59+08:00")) is False
        assert bulletin_due(store, workspace.settings, at("2026-06-22T09:01+08:00")) is True
        assert bulletin_due(store, workspace.settings, at("2026-06-23T09:01+08:00")) is False
    finally:
        store.close()
    [mail] = smtp_server.messages
    assert sorted(mail.rcpt_tos) == sorted([EDITOR, LEADER])
    assert mail.subject.startswith("【XX新区禁毒】每周联合通报 2026-W25")
    assert "| 白箬铺镇 | 1 | 1 | 0% | 1 | 0 |" in mail.text and "白箬铺镇" in mail.html
    again = workspace.run("bulletin", "--week", "2026-W25", "--send",
                          now="2026-06-22T10:00+08:00")
    assert again.code == 0 and "already in the outbox (sent)" in again.out
    assert len(smtp_server.messages) == 1
