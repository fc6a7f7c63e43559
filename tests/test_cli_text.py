"""What a person reads on the command line (issue 14): help written for the office
administrator, "did you mean", tables aligned for Chinese, late counts that include
overdue stories, submit counting reports, unknown report keys kept as notes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pipeline.cli import build_parser, main
from pipeline.textfmt import lateness, table, width
from tests.conftest import Workspace
from tests.test_flow import write_report

NOW = "2026-06-21T10:00+08:00"
LATER = "2026-07-12T10:00+08:00"  # the reports below are about three weeks overdue


@contextmanager
def locale(value: str) -> Iterator[None]:
    saved = {k: os.environ.pop(k, None) for k in ("LC_ALL", "LC_MESSAGES", "LANG")}
    os.environ["LANG"] = value
    try:
        yield
    finally:
        os.environ.pop("LANG", None)
        os.environ.update({k: v for k, v in saved.items() if v is not None})


def two_reports(ws: Workspace, tmp_path: Path) -> list[int]:
    a = write_report(tmp_path, "a", unit="麓谷街道", kind="lecture", title="麓谷街道禁毒讲座",
                     start="2026-06-19 09:00")
    b = write_report(tmp_path, "b", unit="物流行业分会", kind="training", title="Training",
                     start="2026-06-20 09:00")
    done = ws.run("submit", "--json", str(a), str(b), now=NOW)
    assert done.code == 0, done.err
    return [r["id"] for r in done.json()["accepted"]]


def command_parsers() -> dict[str, object]:
    parser = build_parser()
    assert parser._subparsers is not None
    (action,) = [a for a in parser._subparsers._group_actions if hasattr(a, "choices")]
    return dict(action.choices)  # type: ignore[arg-type]


def test_program_help_is_for_an_administrator(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    out = capsys.readouterr().out
    assert stop.value.code == 0
    assert "argument parsing" not in out and "exit-code boundary" not in out
    assert "request changes a draft" not in out
    assert "pipeline approve 1 --by 王编辑" in out  # a first session to copy


@pytest.mark.parametrize("name", sorted(command_parsers()))
def test_every_command_has_a_sentence_and_an_example(name: str) -> None:
    text = command_parsers()[name].format_help()  # type: ignore[attr-defined]
    assert "example:\n  " in text and f"pipeline {name}" in text.split("example:")[1]


def test_submit_help_lists_the_report_fields_with_chinese_names() -> None:
    text = command_parsers()["submit"].format_help()  # type: ignore[attr-defined]
    for label, key in (("单位", "unit"), ("活动类型", "activity_type"), ("活动时间", "time"),
                       ("活动地点", "place"), ("活动方式", "form"), ("参与人数", "participants"),
                       ("宣传报道", "links"), ("图片", "photos"), ("联系人", "contact")):
        assert f"{label} ({key})" in text
    assert "note for the editors" in text


@pytest.mark.parametrize(("typed", "meant"), [("queu", "queue"), ("aprove", "approve")])
def test_a_mistyped_command_gets_did_you_mean(typed: str, meant: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main([typed])
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert f"did you mean '{meant}'?" in err
    assert "choose from" not in err  # not argparse's list of every command


def test_table_aligns_chinese_text_by_display_width() -> None:
    lines = table(["unit", "n"], [["娱乐场所行业分会", "1"], ["XX新区", "22"]], right=(1,))
    assert len({width(line) for line in lines}) == 1
    assert lines[1].endswith(" 1") and lines[2].endswith("22")


def test_lateness_in_days_and_hours() -> None:
    assert lateness(-504.0, "zh") == "已超期21天"
    assert lateness(-514.0, "en") == "21 days 10 h overdue"
    assert lateness(5.2, "zh") == "还剩5小时"


def test_queue_has_a_header_and_lines_up_after_chinese_units(workspace: Workspace,
                                                             tmp_path: Path) -> None:
    two_reports(workspace, tmp_path)
    with locale("zh_CN.UTF-8"):
        out = workspace.run("queue", now="2026-07-13T00:00+08:00").out.splitlines()
    assert out[0].split()[:3] == ["编号", "期限", "状态"]
    assert "已超期21天" in out[1] and "待审核" in out[1]
    assert "h " not in out[1] and "overdue" not in out[1]
    title_columns = {width(line[:line.index(t)]) for line, t in
                     zip(out[1:], ("麓谷街道禁毒讲座", "Training"), strict=True)}
    assert len(title_columns) == 1, out  # the titles start in the same column
    with locale("en_US.UTF-8"):
        english = workspace.run("queue", now="2026-07-13T00:00+08:00").out
    assert "21 days overdue" in english and "waiting for review" in english


def test_units_count_overdue_unpublished_stories_as_late(workspace: Workspace,
                                                         tmp_path: Path) -> None:
    two_reports(workspace, tmp_path)
    rows = {r["name"]: r for r in workspace.run("units", "--json", now=LATER).json()}
    assert rows["麓谷街道"]["late"] == 1 and rows["物流行业分会"]["late"] == 1
    assert rows["雷锋街道"]["late"] == 0
    before = {r["name"]: r for r in workspace.run("units", "--json", now=NOW).json()}
    assert before["麓谷街道"]["late"] == 0  # not yet past its deadline
    with locale("C"):
        out = workspace.run("units", now=LATER).out.splitlines()
    assert out[0].split() == ["unit", "level", "email", "submitted", "waiting", "published",
                              "late"]
    assert len({width(line) for line in out}) == 1  # every row as wide as the header


def test_submit_counts_reports_not_problems(workspace: Workspace, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('unit = "没有这个单位"\nactivity_type = "讲座"\ntitle = "t"\n'
                   'time = "2030-01-01 09:00"\nplace = "p"\nform = "f"\nbody = "b"\n',
                   encoding="utf-8")
    done = workspace.run("submit", str(bad), now=NOW)
    assert done.code == 1
    problems = done.err.count("rejected  ")  # each problem in its own sentence
    assert problems >= 2
    assert done.out.strip().endswith(
        f"0 accepted, 0 duplicate(s), 1 rejected ({problems} problems)")


def test_unknown_report_keys_are_kept_as_notes_never_published(workspace: Workspace,
                                                              tmp_path: Path) -> None:
    path = write_report(tmp_path, "n", unit="麓谷街道", kind="lecture", title="讲座",
                        start="2026-06-19 09:00")
    extra = '"经费来源" = "请尽快发布"\n"带队领导" = "刘书记"\n'
    path.write_text(path.read_text(encoding="utf-8") + extra, encoding="utf-8")
    done = workspace.run("submit", str(path), now=NOW)
    assert done.code == 0, done.err
    assert "kept as a note for the editors, not published: '经费来源', '带队领导'" in done.out
    draft_id = int(done.out.split("#")[1].split()[0])
    shown = workspace.run("show", str(draft_id), now=NOW).out
    assert "经费来源: 请尽快发布" in shown and "带队领导: 刘书记" in shown
    notes = workspace.run("show", "--json", str(draft_id), now=NOW).json()["report"]["kept_fields"]
    assert [n["key"] for n in notes] == ["经费来源", "带队领导"]
    article = workspace.path / "drafts" / str(draft_id)
    html = "".join(p.read_text(encoding="utf-8") for p in article.glob("article.*"))
    assert html and "请尽快发布" not in html and "刘书记" not in html
