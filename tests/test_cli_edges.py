"""The first hour's rough edges (issue 14): a missing editor, a busy port and a
pretend clock left in the shell each end in a sentence and an exit code of 0/1/2."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Workspace
from tests.test_flow import write_report

NOW = "2026-06-21T10:00+08:00"


def test_edit_with_an_editor_that_is_not_installed(workspace: Workspace, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_report(tmp_path, "e", unit="麓谷街道", kind="lecture", title="讲座",
                        start="2026-06-19 09:00")
    draft_id = workspace.run("submit", "--json", str(path), now=NOW).json()["accepted"][0]["id"]
    before = (workspace.path / "drafts").rglob("article.md")
    text = {p: p.read_text(encoding="utf-8") for p in before}
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", "no-such-editor-nano")
    done = workspace.run("edit", str(draft_id), now=NOW)
    assert done.code == 1
    assert "The text editor 'no-such-editor-nano' (from $EDITOR) cannot be started" in done.err
    assert "the draft is unchanged" in done.err and "EDITOR=vi" in done.err
    assert "Traceback" not in done.err
    assert {p: p.read_text(encoding="utf-8") for p in text} == text


def serve(ws: Workspace, *args: str, **env: str) -> subprocess.Popen[str]:
    environ = {k: v for k, v in os.environ.items() if k != "PIPELINE_NOW"}
    environ.update({"DATABASE_URL": ws.database_url, **env})
    return subprocess.Popen([sys.executable, "-m", "pipeline", "--config",
                             str(ws.path / "config.toml"), "serve", "--no-scheduler", *args],
                            env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_serve_on_a_busy_port_says_so_and_exits_1(workspace: Workspace) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = serve(workspace, "--port", str(port))
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert (f"error: Port {port} on 127.0.0.1 is already in use (another 'pipeline serve' or "
            f"another program); stop it, or choose a free port: pipeline serve --port "
            f"{port + 1}.") in err
    assert "Errno" not in err and "Traceback" not in err


def test_serve_warns_when_pipeline_now_is_still_set(workspace: Workspace) -> None:
    proc = serve(workspace, "--port", "0", PIPELINE_NOW="2026-06-27T10:00+08:00")
    assert proc.stderr is not None
    seen = []
    try:
        for line in proc.stderr:
            seen.append(line)
            if "Uvicorn running on" in line:
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert seen[0].startswith("warning: PIPELINE_NOW=2026-06-27T10:00+08:00 is set in this "
                              "shell, so pushes and alerts follow a pretend clock")
    assert "unset PIPELINE_NOW" in seen[0]


def test_a_remote_image_is_a_finding_for_the_editor_not_a_block(workspace: Workspace,
                                                                 tmp_path: Path) -> None:
    path = write_report(tmp_path, "img", unit="麓谷街道", kind="lecture", title="讲座",
                        start="2026-06-19 09:00",
                        body="活动现场。\n\n![现场](https://img.example.cn/a.jpg)")
    done = workspace.run("submit", "--json", str(path), now=NOW)
    (accepted,) = done.json()["accepted"]
    assert accepted["problems"] == []
    shown = workspace.run("show", str(accepted["id"]), now=NOW).out
    assert "note: the image at 'https://img.example.cn/a.jpg' is not shown" in shown
    assert "problem:" not in shown
    assert workspace.run("approve", str(accepted["id"]), "--by", "王编辑", now=NOW).code == 0
