"""An edit killed with SIGKILL on either side of its commit: the files a draft's row
names always hold the committed text, and the push publishes exactly that.

The edit is a real ``pipeline edit`` subprocess armed with a crash point
(``PIPELINE_CRASH_AT``): ``edit_files_written`` dies with the new files on disk and the
transaction open, ``edit_committed`` right after the commit, before the older files are
removed.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

from pipeline.drafts import current_files
from pipeline.models import Draft

from .conftest import ROOT, Workspace, make_workspace
from .test_flow import write_report

MORNING = "2026-06-15T10:00+08:00"
EVENING = "2026-06-15T20:00+08:00"


def edit_in_subprocess(ws: Workspace, tmp_path: Path, draft_id: int, text: str,
                       crash_at: str = "") -> subprocess.CompletedProcess[str]:
    editor = tmp_path / f"editor-{abs(hash(text))}.sh"
    text_file = tmp_path / f"text-{abs(hash(text))}.md"
    text_file.write_text(text, encoding="utf-8")
    editor.write_text(f'#!/bin/sh\ncat "{text_file}" > "$1"\n', encoding="utf-8")
    editor.chmod(editor.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "DATABASE_URL": ws.database_url, "EDITOR": str(editor),
           "PIPELINE_CRASH_AT": crash_at}
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "--config", str(ws.path / "config.toml"), "--now",
         MORNING, "edit", str(draft_id), "--by", "王编辑"],
        cwd=ROOT, env=env, text=True, capture_output=True, timeout=300)


def row_and_files(ws: Workspace, draft_id: int) -> tuple[int, str | None, Path, Path]:
    store = ws.store()
    try:
        with store.session() as session:
            draft = session.get(Draft, draft_id)
            assert draft is not None
            md, html = current_files(session, ws.settings, draft_id)
            return draft.version, draft.article_file, md, html
    finally:
        store.close()


def test_an_edit_killed_before_or_after_its_commit_leaves_row_and_files_agreeing(
        database_url: str, tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", database_url)
    report = write_report(tmp_path, "a", unit="麓谷街道", kind="lecture",
                          title="麓谷街道禁毒讲座", start="2026-06-15 09:00")
    (draft_id,) = (int(a["id"]) for a in ws.run("submit", "--json", str(report),
                                                now=MORNING).json()["accepted"])
    original = ws.article(draft_id)
    folder = ws.path / "drafts" / str(draft_id)

    # Killed with the new files written and the transaction open: the row did not move,
    # it still names the old files, which still hold the old text.
    lost = "被中断的编辑：这段正文从未提交。\n"
    died = edit_in_subprocess(ws, tmp_path, draft_id, lost, crash_at="edit_files_written")
    assert died.returncode == -signal.SIGKILL, died.stderr
    version, name, md, html = row_and_files(ws, draft_id)
    assert (version, name, md.name) == (1, None, "article.md")
    assert ws.article(draft_id) == original and "从未提交" not in html.read_text("utf-8")
    # (the crash came after the write: the uncommitted version is on disk, unnamed)
    assert "从未提交" in (folder / "article.v2.md").read_text("utf-8")

    # Killed right after the commit, before the older files were removed: the row names
    # the new files, which hold the new text; the old ones are merely left over.
    kept = "提交后才中断的编辑：这段正文已经提交。\n"
    died = edit_in_subprocess(ws, tmp_path, draft_id, kept, crash_at="edit_committed")
    assert died.returncode == -signal.SIGKILL, died.stderr
    version, name, md, html = row_and_files(ws, draft_id)
    assert (version, name, md.name) == (2, "article.v2", "article.v2.md")
    assert ws.article(draft_id) == kept and "已经提交" in ws.article(draft_id, html=True)
    assert "从未提交" not in html.read_text("utf-8")
    assert (folder / "article.md").exists()  # left over; the next edit removes it

    # An edit that completes removes the older files after its commit.
    final = kept + "\n补充一句：活动圆满结束。\n"
    done = edit_in_subprocess(ws, tmp_path, draft_id, final)
    assert done.returncode == 0, done.stderr
    version, name, md, html = row_and_files(ws, draft_id)
    assert (version, name) == (3, "article.v3")
    assert sorted(p.name for p in folder.glob("article*")) == ["article.v3.html",
                                                               "article.v3.md"]

    # What is published is what was committed.
    assert ws.run("approve", str(draft_id), "--by", "李编辑", now=MORNING).code == 0
    pushed = ws.run("push", "--json", now=EVENING)
    assert pushed.code == 0, pushed.err
    (out,) = (ws.path / "published").glob(f"2026-06-15/*-{draft_id}")
    assert (out / "article.md").read_text("utf-8") == ws.article(draft_id) == final
    assert (out / "article.html").read_text("utf-8") == ws.article(draft_id, html=True)
    assert "圆满结束" in (out / "article.html").read_text("utf-8")
