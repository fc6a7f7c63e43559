"""Races and limits that need no second database server: the CLI's edit refused when
someone saved meanwhile, the queue's JSON paging, the [database] and lease settings."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from pipeline.config import parse_settings
from pipeline.errors import ConfigError
from tests.conftest import Workspace
from tests.test_flow import write_report

NOW = "2026-06-15T10:00+08:00"


def _script(path: Path, text: str) -> str:
    path.write_text("#!/bin/sh\n" + text, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def _drafts(ws: Workspace, tmp_path: Path, count: int) -> list[int]:
    ids = []
    for n in range(count):
        path = write_report(tmp_path, f"q{n}", unit="麓谷街道", kind="lecture",
                            title=f"麓谷街道禁毒讲座第{n + 1}场", start="2026-06-15 09:00")
        ids.append(int(ws.run("submit", "--json", str(path), now=NOW).json()
                       ["accepted"][0]["id"]))
    return ids


def test_cli_edit_is_refused_when_someone_saved_meanwhile(workspace: Workspace,
                                                          tmp_path: Path) -> None:
    (draft_id,) = _drafts(workspace, tmp_path, 1)
    config = workspace.path / "config.toml"
    other = _script(tmp_path / "other.sh", 'printf "另一位编辑的正文。" > "$1"\n')
    # While this editor types, another one saves the same draft through a second process.
    mine = _script(tmp_path / "mine.sh",
                   f'EDITOR={other} {sys.executable} -m pipeline --config {config} '
                   f'--now {NOW} edit {draft_id} --by 李编辑 >/dev/null\n'
                   'printf "我的正文。" > "$1"\n')
    os.environ["EDITOR"] = mine
    try:
        result = workspace.run("edit", str(draft_id), "--by", "王编辑", now=NOW)
    finally:
        del os.environ["EDITOR"]
    assert result.code == 1
    assert f"Draft {draft_id} was changed by someone else" in result.err
    assert "nothing was saved" in result.err
    assert "另一位编辑的正文" in workspace.article(draft_id)
    assert "另一位编辑的正文" in workspace.article(draft_id, html=True)
    shown = workspace.run("show", "--json", str(draft_id), now=NOW).json()
    assert shown["version"] == 2
    assert [e["actor"] for e in shown["history"] if e["action"] == "edit"] == ["李编辑"]


def test_queue_json_lists_everything_or_one_explicit_page(workspace: Workspace,
                                                          tmp_path: Path) -> None:
    ids = _drafts(workspace, tmp_path, 5)
    every = workspace.run("queue", "--json", now=NOW).json()
    assert [r["id"] for r in every] == ids
    first = workspace.run("queue", "--json", "--limit", "2", now=NOW).json()
    assert [r["id"] for r in first["items"]] == ids[:2]
    assert (first["total"], first["limit"], first["offset"], first["next"]) == (5, 2, 0, 2)
    last = workspace.run("queue", "--json", "--limit", "2", "--offset", "4", now=NOW).json()
    assert [r["id"] for r in last["items"]] == ids[4:] and last["next"] is None
    text = workspace.run("queue", "--limit", "2", now=NOW).out
    assert "... and 3 more" in text


def test_database_and_lease_settings_are_checked(tmp_path: Path) -> None:
    settings = parse_settings({"database": {"pool_size": 3, "max_overflow": 0,
                                            "pool_timeout": 2.5},
                               "schedule": {"lease_seconds": 30}}, tmp_path, environ={})
    assert (settings.database.pool_size, settings.database.max_overflow,
            settings.database.pool_timeout) == (3, 0, 2.5)
    assert settings.schedule.lease_seconds == 30
    with pytest.raises(ConfigError) as caught:
        parse_settings({"database": {"pool_size": 0, "pool_timout": 1},
                        "schedule": {"lease_seconds": 1}}, tmp_path, environ={})
    text = str(caught.value)
    assert "database.pool_size" in text and "database.pool_timout" in text
    assert "schedule.lease_seconds" in text
