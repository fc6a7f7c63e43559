"""The lean start of `pipeline queue`, `check`, `push --dry-run` and `bulletin`
(pipeline/lean.py): the DB-API alone, without SQLAlchemy or SQLModel, and only when the
normal path would only read.

Both paths run the same statements (pipeline/reads.py, the planner's, the bulletin's);
here they run on one database, on SQLite and on PostgreSQL, and must print (and write)
the same bytes. ``PIPELINE_LEAN=0`` forces the normal path; the lean module's debug line
says which path answered.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pytest

from pipeline.lean import migration_head
from pipeline.lifecycle import OutboxState
from pipeline.models import ArticleStat, MediaOutlet, User
from pipeline.reads import PENDING, SENDING
from pipeline.store import HEAD
from tests.conftest import ROOT, Result, Workspace, make_workspace

NOW = "2026-06-22T10:00+08:00"  # some drafts overdue, some due soon, some on track
COMMANDS = [("queue",), ("queue", "--json"), ("queue", "--all"), ("queue", "--all", "--json"),
            ("queue", "--for", "张主任", "--json"), ("queue", "--for", "李审核"),
            ("queue", "--limit", "2", "--offset", "1", "--json"), ("queue", "--limit", "3"),
            ("check",), ("check", "--json")]


@pytest.fixture
def staged(tmp_path: Path, database_url: str, examples: Path) -> Iterator[Workspace]:
    """A staged (三审) workspace with the example reports in every state the queue and the
    sweep tell apart, and a web user who signs 复审 and gave an email."""
    ws = make_workspace(tmp_path / "ws", database_url, staged=True)
    files = [str(p) for p in sorted(examples.iterdir()) if p.is_file()
             and p.suffix in (".toml", ".md", ".json", ".csv")]
    submitted = ws.run("submit", "--json", *files, now="2026-06-27T09:00+08:00")
    ids = [a["id"] for a in submitted.json()["accepted"]]
    assert len(ids) >= 8, submitted.err
    assert ws.run("approve", str(ids[0]), "--by", "王编辑", now=NOW).code == 0
    assert ws.run("approve", str(ids[1]), "--by", "王编辑", now=NOW).code == 0
    assert ws.run("approve", str(ids[1]), "--by", "张主任", now=NOW).code == 0
    assert ws.run("reject", str(ids[2]), "--by", "李编辑", "--note", "重复报送", now=NOW).code == 0
    assert ws.run("request-changes", str(ids[3]), "--by", "李编辑", "--note", "请补充照片",
                  now=NOW).code == 0
    store = ws.store()
    with store.session() as session:
        session.add(User(name="李审核", password_hash="-", stages='["复审"]',
                         email="li@xxxq.example.cn",
                         created_at=datetime.fromisoformat(NOW)))
    store.close()
    yield ws


def run(ws: Workspace, *args: str, lean: bool, caplog: pytest.LogCaptureFixture
        ) -> tuple[Result, bool]:
    """One command; and whether the lean start answered it."""
    caplog.clear()
    old = os.environ.pop("PIPELINE_LEAN", None)
    if not lean:
        os.environ["PIPELINE_LEAN"] = "0"
    try:
        with caplog.at_level(logging.DEBUG, logger="pipeline.lean"):
            result = ws.run(*args, now=NOW)
    finally:
        os.environ.pop("PIPELINE_LEAN", None)
        if old is not None:
            os.environ["PIPELINE_LEAN"] = old
    answered = any(r.getMessage() == "answered from the lean start" for r in caplog.records)
    return result, answered


def test_both_paths_print_the_same(staged: Workspace, caplog: pytest.LogCaptureFixture
                                   ) -> None:
    first, lean = run(staged, "check", "--json", lean=True, caplog=caplog)
    assert not lean, "the first sweep records alerts: the normal path"
    assert any(f["new"] for f in first.json()["overdue"])
    for args in COMMANDS:
        normal, used = run(staged, *args, lean=False, caplog=caplog)
        assert not used
        quick, used = run(staged, *args, lean=True, caplog=caplog)
        assert used, args
        assert (quick.code, quick.out, quick.err) == (normal.code, normal.out, normal.err), args
    page = json.loads(run(staged, "queue", "--all", "--json", lean=True, caplog=caplog)[0].out)
    assert {"due_soon", "overdue", "on_track"} <= {r["deadline_state"] for r in page}
    assert {r["stage"] for r in page} >= {"初审", "复审", None}
    check = json.loads(run(staged, "check", "--json", lean=True, caplog=caplog)[0].out)
    assert check["overdue"] and not any(f["new"] for f in check["overdue"])
    assert any("li@xxxq.example.cn" in f["notify"] for f in check["overdue"] + check["due_soon"])


def test_the_lean_start_steps_aside_when_the_normal_path_would_write(
        staged: Workspace, caplog: pytest.LogCaptureFixture) -> None:
    run(staged, "check", lean=True, caplog=caplog)  # records and queues the alerts
    assert run(staged, "check", lean=True, caplog=caplog)[1]
    # Sent back to its unit: an alert that is not emailed yet, so check queues it.
    assert staged.run("request-changes", "5", "--by", "李编辑", "--note", "请补充",
                      now=NOW).code == 0
    result, lean = run(staged, "check", lean=True, caplog=caplog)
    assert not lean and "1 alert(s) in 1 email(s) queued" in result.out
    assert run(staged, "check", lean=True, caplog=caplog)[1]
    # A unit's email changed in config.toml: the normal start syncs it first.
    config = staged.path / "config.toml"
    text = config.read_text(encoding="utf-8")
    assert "lugu@xxxq.example.cn" in text
    config.write_text(text.replace("lugu@xxxq.example.cn", "lg@xxxq.example.cn"),
                      encoding="utf-8")
    result, lean = run(staged, "queue", lean=True, caplog=caplog)
    assert not lean and result.code == 0
    assert run(staged, "queue", lean=True, caplog=caplog)[1]  # synced by the run before
    # With an SMTP server set up, the held emails are due: check sends (tries to).
    staged.configure("smtp", host="127.0.0.1", port=9)
    result, lean = run(staged, "check", lean=True, caplog=caplog)
    assert not lean and "to retry" in result.out


def test_a_new_database_takes_the_normal_start(workspace: Workspace,
                                               caplog: pytest.LogCaptureFixture) -> None:
    assert not (workspace.path / "pipeline.db").exists()
    result, lean = run(workspace, "queue", lean=True, caplog=caplog)
    assert not lean and result.code == 0 and (workspace.path / "pipeline.db").exists()
    assert run(workspace, "queue", lean=True, caplog=caplog)[1]


def test_a_whole_queue_process_loads_no_database_library(staged: Workspace) -> None:
    """What issue 13 is about: as a whole process, `queue` and `check` import neither
    SQLAlchemy nor SQLModel (nor pydantic) once the database is set up."""
    assert staged.run("check", now=NOW).code == 0
    script = ("import sys; from pipeline.cli import main; code = main(sys.argv[1:]); "
              "print(sorted({m.split('.')[0] for m in sys.modules} & "
              "{'sqlalchemy', 'sqlmodel', 'pydantic', 'alembic', 'jinja2', 'markdown'}), "
              "file=sys.stderr); sys.exit(code)")
    env = {**os.environ, "DATABASE_URL": staged.database_url}
    for command in ("queue", "check"):
        proc = subprocess.run([sys.executable, "-c", script, "--config",
                               str(staged.path / "config.toml"), "--now", NOW, command],
                              env=env, capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr.strip().splitlines()[-1] == "[]", proc.stderr


def test_the_head_is_read_from_the_migration_scripts() -> None:
    assert migration_head() == HEAD
    assert (PENDING, SENDING) == (OutboxState.PENDING, OutboxState.SENDING)


# --- push --dry-run and bulletin --------------------------------------------------------

WEEK = "2026-W26"                     # the examples were received on 2026-06-27
PUSHED = "2026-06-27T20:00+08:00"
WEEKLY = [("push", "--dry-run"), ("push", "--dry-run", "--json"),
          ("bulletin", "--week", WEEK), ("bulletin", "--week", WEEK, "--json"),
          ("bulletin", "--week", "2026-W25")]


@pytest.fixture
def published(staged: Workspace) -> Workspace:
    """The staged workspace after a push: stories signed in three stages went out (the
    reports name outlets of several levels); one has read figures on two days; an editor
    classified an outlet; the rest wait, approved or in review."""
    ws = staged
    for draft, by in (("1", "张主任"), ("1", "刘书记"), ("2", "刘书记"), ("5", "王编辑"),
                      ("5", "张主任"), ("5", "刘书记")):
        assert ws.run("approve", draft, "--by", by, now=NOW).code == 0, (draft, by)
    assert ws.run("push", now=PUSHED).code == 0
    for draft, by in (("6", "李编辑"), ("6", "张主任"), ("6", "刘书记")):
        assert ws.run("approve", draft, "--by", by, now=NOW).code == 0, (draft, by)
    store = ws.store()
    at = datetime.fromisoformat(PUSHED)
    with store.session() as session:
        session.add(ArticleStat(draft_id=1, stat_date=date(2026, 6, 28), reads=120,
                                fetched_at=at))
        session.add(ArticleStat(draft_id=1, stat_date=date(2026, 6, 29), reads=260,
                                fetched_at=at))
        session.add(MediaOutlet(name="xxxq.example.cn", outlet="区融媒体中心", level="city",
                                created_at=at))
    store.close()
    return ws


def _bulletin_files(ws: Workspace) -> dict[str, bytes]:
    folder = ws.path / "published" / "bulletins"
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*"))
            if p.suffix in (".md", ".html")}


def test_push_dry_run_and_bulletin_answer_alike_both_ways(
        published: Workspace, caplog: pytest.LogCaptureFixture) -> None:
    for args in WEEKLY:
        normal, used = run(published, *args, lean=False, caplog=caplog)
        assert not used and normal.code == 0, (args, normal.err)
        files = _bulletin_files(published)
        quick, used = run(published, *args, lean=True, caplog=caplog)
        assert used, args
        assert (quick.code, quick.out, quick.err) == (normal.code, normal.out, normal.err), args
        assert _bulletin_files(published) == files, args
    figures = json.loads(run(published, "bulletin", "--week", WEEK, "--json", lean=True,
                             caplog=caplog)[0].out)
    units = [u for g in figures["groups"] for u in g["units"]]
    assert sum(u["published"] for u in units) >= 3 and sum(u["reported"] for u in units)
    stages = [s["stage"] for s in figures["district"]["desk"]["stages"]]
    assert stages[-1] == "待推送" and "终审" in stages
    plan = json.loads(run(published, "push", "--dry-run", "--json", lean=True,
                          caplog=caplog)[0].out)
    assert plan["articles"] and plan["dry_run"]


def test_bulletin_send_takes_the_normal_path(published: Workspace,
                                            caplog: pytest.LogCaptureFixture) -> None:
    result, lean = run(published, "bulletin", "--week", WEEK, "--send", lean=True,
                       caplog=caplog)
    assert not lean and "queued" in result.out


def test_weekly_processes_load_no_database_library(published: Workspace) -> None:
    """`push --dry-run` and `bulletin` as whole processes import neither SQLAlchemy nor
    SQLModel (issue 13: each under 1 s over a campaign month, bench/bench_month.py)."""
    script = ("import sys; from pipeline.cli import main; code = main(sys.argv[1:]); "
              "print(sorted({m.split('.')[0] for m in sys.modules} & "
              "{'sqlalchemy', 'sqlmodel', 'pydantic', 'alembic'}), file=sys.stderr); "
              "sys.exit(code)")
    env = {**os.environ, "DATABASE_URL": published.database_url}
    for command in (("push", "--dry-run"), ("bulletin", "--week", WEEK)):
        proc = subprocess.run([sys.executable, "-c", script, "--config",
                               str(published.path / "config.toml"), "--now", NOW, *command],
                              env=env, capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr.strip().splitlines()[-1] == "[]", proc.stderr
