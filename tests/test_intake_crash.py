"""A batch of 2,000 reports killed with SIGKILL half-way: every report acknowledged
before the kill is stored with its files, nothing is half-written, and submitting the
same files again stores each report exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from pipeline.render.pool import cpus
from pipeline.store import open_store

from .conftest import ROOT, Workspace, make_workspace, wait_for

NOW = "2026-07-01T09:00+08:00"
UNITS = ["麓谷街道", "雷锋街道", "洋湖国际社区", "物流行业分会", "志愿者分会", "白箬铺村"]
BODY = ("为深入贯彻落实禁毒工作部署，工作人员结合真实案例，详细讲解了新型毒品的伪装形式和危害。"
        "现场群众踊跃提问，志愿者向过往群众发放宣传资料。") * 6


def write_reports(folder: Path, count: int) -> list[Path]:
    folder.mkdir()
    paths = []
    for i in range(count):
        path = folder / f"r{i:04d}.json"
        path.write_text(json.dumps({
            "unit": UNITS[i % len(UNITS)], "activity_type": "lecture",
            "title": f"禁毒知识讲座第{i}场", "time": f"2026-06-{1 + i % 28:02d} 09:00-11:00",
            "place": "社区党群服务中心", "form": "专题讲座", "participants": 20 + i % 100,
            "body": f"{BODY}\n\n第{i}场。"}, ensure_ascii=False), encoding="utf-8")
        paths.append(path)
    return paths


def start_submit(ws: Workspace, paths: list[Path], **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", "--config", str(ws.path / "config.toml"), "--now",
         NOW, "submit", *map(str, paths)], cwd=ROOT, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env={**os.environ, "DATABASE_URL": ws.database_url, **env})


def children(pid: int) -> set[int]:
    try:
        return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except OSError:
        return set()


def alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def acknowledged(lines: list[str]) -> set[int]:
    return {int(line.split()[1].lstrip("#")) for line in lines if line.startswith("accepted")}


def stored(ws: Workspace) -> dict[int, str]:
    """Draft id -> the report file it came from."""
    store = open_store(ws.database_url)
    try:
        with store.engine.connect() as connection:
            return dict(connection.execute(sa.text(
                "SELECT draft.id, submission.source FROM draft "
                "JOIN submission ON submission.id = draft.submission_id")).all())
    finally:
        store.close()


def folders(ws: Workspace) -> set[int]:
    return {int(p.name) for p in (ws.path / "drafts").iterdir() if p.name.isdigit()}


def assert_whole(ws: Workspace, rows: dict[int, str]) -> None:
    """Every row has its folder with both files; every folder has its row."""
    assert folders(ws) == set(rows)
    for draft_id in rows:
        folder = ws.path / "drafts" / str(draft_id)
        assert (folder / "article.md").read_text(encoding="utf-8").strip()
        assert "</" in (folder / "article.html").read_text(encoding="utf-8")


def test_kill_9_in_the_middle_of_a_2000_report_batch(tmp_path: Path, database_url: str
                                                     ) -> None:
    ws = make_workspace(tmp_path / "ws", database_url)
    paths = write_reports(tmp_path / "inbox", 2000)
    process = start_submit(ws, paths)
    assert process.stdout is not None
    lines: list[str] = []
    workers: set[int] = set()
    for line in process.stdout:  # acknowledgements arrive a committed group at a time
        lines.append(line)
        workers |= children(process.pid)
        if len(acknowledged(lines)) >= 600:
            break
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    if cpus() >= 2:
        assert workers, "the batch was expected to be rendered by worker processes"
    wait_for(lambda: not any(alive(pid) for pid in workers), 60,
             "a render worker outlived the process that started it")
    lines += process.stdout.read().splitlines(keepends=True)
    acked = acknowledged(lines)
    assert 600 <= len(acked) < 2000, "the kill came after the batch had finished"

    rows = stored(ws)
    assert acked <= set(rows), "a report acknowledged before the kill is lost"
    assert len(set(rows.values())) == len(rows), "a report stored twice"
    for draft_id in rows:  # never a row without its files
        assert (ws.path / "drafts" / str(draft_id) / "article.html").is_file()
    # Folders of the group that was being written have no rows yet: the journal names
    # them, and the next batch removes them before it starts.
    journals = list((ws.path / "drafts" / ".intake").glob("*.ids"))
    listed = {int(x) for j in journals for x in j.read_text().split()}
    assert folders(ws) - set(rows) <= listed

    again = start_submit(ws, paths)
    out, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    rows_after = stored(ws)
    assert len(rows_after) == 2000 and len(set(rows_after.values())) == 2000
    assert {rows_after[i] for i in acked} == {rows[i] for i in acked}
    assert out.count("duplicate ") == len(rows)
    assert_whole(ws, rows_after)
    assert not list((ws.path / "drafts" / ".intake").glob("*.ids"))


def test_a_crash_between_writing_a_group_and_its_commit_leaves_nothing(tmp_path: Path,
                                                                       database_url: str
                                                                       ) -> None:
    ws = make_workspace(tmp_path / "ws", database_url)
    paths = write_reports(tmp_path / "inbox", 450)
    first = start_submit(ws, paths[:250])  # a group of 200 and one of 50
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    crashed = start_submit(ws, paths[250:], PIPELINE_CRASH_AT="intake_group_written")
    out, _ = crashed.communicate(timeout=300)
    assert crashed.returncode == -signal.SIGKILL
    assert "accepted" not in out  # the group died before its commit: nothing acknowledged
    rows = stored(ws)
    assert len(rows) == 250
    assert len(folders(ws) - set(rows)) == 200, "expected the dead group's folders on disk"

    again = start_submit(ws, paths)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert out.count("accepted ") == 200 and out.count("duplicate ") == 250
    rows = stored(ws)
    assert len(rows) == 450 and len(set(rows.values())) == 450
    assert_whole(ws, rows)
