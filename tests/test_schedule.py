"""`pipeline serve` as a real subprocess: catch-up on start, one scheduler per database,
kill -9 at named crash points, clean stop on SIGTERM, missed days after downtime."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import select

from pipeline.models import Publication, Push
from tests.conftest import Workspace, make_workspace, wait_for
from tests.test_flow import write_report


def start_serve(ws: Workspace, now: str, *command: str, **env: str
                ) -> subprocess.Popen[str]:
    """`pipeline worker` (the scheduler alone) unless another command is given."""
    environ = {**os.environ, "DATABASE_URL": ws.database_url, "PIPELINE_NOW": now,
               "PIPELINE_TICK_SECONDS": "0.5", **env}
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", "--config", str(ws.path / "config.toml"),
         *(command or ("worker",))],
        env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def approved_story(ws: Workspace, tmp_path: Path, name: str, start: str, now: str) -> int:
    path = write_report(tmp_path, name, unit="麓谷街道", kind="lecture",
                        title=f"麓谷街道禁毒讲座{name}", start=start)
    accepted = ws.run("submit", "--json", str(path), now=now).json()["accepted"]
    assert ws.run("approve", str(accepted[0]["id"]), now=now).code == 0
    return int(accepted[0]["id"])


def publications(ws: Workspace) -> list[Publication]:
    store = ws.store()
    try:
        with store.session() as session:
            return list(session.exec(select(Publication)))
    finally:
        store.close()


def wait_ready(proc: subprocess.Popen[str]) -> str:
    """Read the log until the scheduler says it runs (a signal before that kills the
    process the default way, as for any program still starting)."""
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "scheduler running" in line:
            return "".join(seen)
    raise AssertionError("the scheduler never started:\n" + "".join(seen))


def stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=90)
    return proc.returncode, err


def test_serve_catches_up_once_and_refuses_a_second_instance(any_workspace: Workspace,
                                                              tmp_path: Path) -> None:
    ws = any_workspace
    story = approved_story(ws, tmp_path, "1", "2026-06-15 09:00", "2026-06-15T10:00+08:00")
    manifest = ws.path / "published" / "2026-06-15" / "manifest.json"
    first = start_serve(ws, "2026-06-15T20:30+08:00")  # down at 20:00, back the same day
    try:
        wait_for(manifest.exists)
        second = start_serve(ws, "2026-06-15T20:31+08:00")
        _, err = second.communicate(timeout=90)
        assert second.returncode == 1
        assert "already running" in err and f"pid {first.pid}" in err
    finally:
        code, err = stop(first)
    assert code == 0, err
    assert "scheduler stopped" in err
    # Started again the same evening: the day is done, nothing goes out twice.
    third = start_serve(ws, "2026-06-15T21:00+08:00")
    wait_ready(third)
    assert stop(third)[0] == 0
    assert [p.draft_id for p in publications(ws)] == [story]
    assert json.loads(manifest.read_text("utf-8"))["articles"][0]["id"] == story


@pytest.mark.parametrize("point", ["after_push_claimed", "after_article_written"])
def test_kill_9_during_the_push_is_resumed_once(workspace: Workspace, tmp_path: Path,
                                                point: str) -> None:
    ws = workspace
    ids = [approved_story(ws, tmp_path, str(i), "2026-06-15 09:00", "2026-06-15T10:00+08:00")
           for i in range(3)]
    crashed = start_serve(ws, "2026-06-15T20:05+08:00", PIPELINE_CRASH_AT=point)
    crashed.communicate(timeout=90)
    assert crashed.returncode == -signal.SIGKILL
    assert not (ws.path / "published" / "2026-06-15" / "manifest.json").exists()
    again = start_serve(ws, "2026-06-15T20:10+08:00")
    try:
        wait_for((ws.path / "published" / "2026-06-15" / "manifest.json").exists)
    finally:
        stop(again)
    pubs = publications(ws)
    assert sorted(p.draft_id for p in pubs) == sorted(ids)
    assert {p.state for p in pubs} == {"published"}
    store = ws.store()
    with store.session() as session:
        assert integrity_ok(session)
    store.close()


def integrity_ok(session: object) -> bool:
    from sqlalchemy import text

    return session.execute(text("PRAGMA integrity_check")).scalar() == "ok"  # type: ignore[attr-defined]


def test_down_overnight_records_the_missed_day(workspace: Workspace, tmp_path: Path) -> None:
    ws = workspace
    approved_story(ws, tmp_path, "1", "2026-06-15 09:00", "2026-06-15T10:00+08:00")
    assert ws.run("push", now="2026-06-15T20:00+08:00").code == 0
    approved_story(ws, tmp_path, "2", "2026-06-16 09:00", "2026-06-16T10:00+08:00")
    # Down from Tuesday morning to Wednesday 10:00 (before Wednesday's push time).
    proc = start_serve(ws, "2026-06-17T10:00+08:00")
    store = ws.store()
    try:
        def missed() -> bool:
            with store.session() as session:
                return session.exec(select(Push).where(Push.state == "missed")).first() is not None
        wait_for(missed)
    finally:
        stop(proc)
    with store.session() as session:
        rows = {p.local_date.isoformat(): p.state for p in session.exec(select(Push))}
    store.close()
    assert rows == {"2026-06-15": "done", "2026-06-16": "missed"}  # Wednesday's is still owed


def test_second_instance_on_postgres_is_refused(tmp_path: Path, pg_url: str) -> None:
    ws = make_workspace(tmp_path / "ws", pg_url)
    first = start_serve(ws, "2026-06-15T10:00+08:00")
    try:
        wait_ready(first)
        second = start_serve(ws, "2026-06-15T10:00+08:00")
        _, err = second.communicate(timeout=90)
        assert second.returncode == 1 and f"pid {first.pid}" in err
    finally:
        assert stop(first)[0] == 0


def test_serve_runs_web_and_scheduler_and_stops_on_sigterm(workspace: Workspace,
                                                           tmp_path: Path) -> None:
    """`pipeline serve`: the scheduler catches up in the web process; SIGTERM stops both."""
    ws = workspace
    story = approved_story(ws, tmp_path, "1", "2026-06-15 09:00", "2026-06-15T10:00+08:00")
    proc = start_serve(ws, "2026-06-15T20:30+08:00", "serve", "--port", "0")
    try:
        wait_for((ws.path / "published" / "2026-06-15" / "manifest.json").exists)
    finally:
        code, err = stop(proc)
    assert code == 0, err
    assert "scheduler stopped" in err
    assert [p.draft_id for p in publications(ws)] == [story]
