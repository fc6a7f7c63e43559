"""The store on both databases: migrations, SQLite settings, the unique guards,
concurrent pushes, and a SQLite file that survives kill -9 mid-transaction."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from pipeline import faults
from pipeline.alerts import record_alert
from pipeline.clock import Clock
from pipeline.models import Alert, DraftEvent, Publication, Push
from pipeline.push import run_push
from pipeline.schedule import tick
from pipeline.store import open_store
from tests.conftest import PG_ADMIN, Workspace, make_workspace
from tests.test_flow import manifests, write_report

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def test_migrations_create_every_table_and_are_idempotent(database_url: str) -> None:
    store = open_store(database_url)
    store.close()
    store = open_store(database_url)  # a second open finds the schema current
    tables = set(sa.inspect(store.engine).get_table_names())
    assert {"unit", "submission", "draft", "draftevent", "push", "publication", "alert",
            "outboxmessage", "alembic_version"} <= tables
    store.close()


def test_sqlite_runs_wal_full_sync_and_foreign_keys(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'x.db'}")
    with store.engine.connect() as conn:
        pragmas = {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                   for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")}
    store.close()
    assert pragmas == {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1,
                       "busy_timeout": 15000}


def test_push_slot_is_unique_per_account_and_day(database_url: str) -> None:
    store = open_store(database_url)
    with store.session() as session:
        session.add(Push(account="a", local_date=date(2026, 6, 15), state="done", started_at=NOW))
    with pytest.raises(IntegrityError), store.session() as session:
        session.add(Push(account="a", local_date=date(2026, 6, 15), state="running",
                         started_at=NOW))
    store.close()


def test_alerts_are_recorded_once(database_url: str) -> None:
    store = open_store(database_url)
    for _ in range(2):
        with store.session() as session:
            record_alert(session, "overdue:1", "overdue", NOW, recipients=["a@b.cn"])
    with store.session() as session:
        assert len(list(session.exec(select(Alert)))) == 1
    store.close()


def approve_three(ws: Workspace, tmp_path: Path) -> list[int]:
    paths = [write_report(tmp_path, f"r{i}", unit="雷锋街道", kind="lecture",
                          title=f"雷锋街道禁毒讲座第{i}场", start="2026-06-15 09:00")
             for i in range(3)]
    accepted = ws.run("submit", "--json", *map(str, paths),
                      now="2026-06-15T10:00+08:00").json()["accepted"]
    for item in accepted:
        assert ws.run("approve", str(item["id"]), now="2026-06-15T10:00+08:00").code == 0
    return [int(item["id"]) for item in accepted]


def test_two_pushes_at_once_publish_each_story_once(any_workspace: Workspace,
                                                    tmp_path: Path) -> None:
    ws = any_workspace
    ids = approve_three(ws, tmp_path)
    now = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)  # 20:00 in Shanghai
    barrier = threading.Barrier(4)
    reports = []

    def push() -> None:
        store = ws.store()
        barrier.wait()
        reports.append(run_push(store, ws.settings, now))
        store.close()

    threads = [threading.Thread(target=push) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store = ws.store()
    with store.session() as session:
        pubs = list(session.exec(select(Publication)))
        pushes = list(session.exec(select(Push)))
    store.close()
    assert sorted(p.draft_id for p in pubs) == sorted(ids)
    assert len(pushes) == 1 and pushes[0].state == "done"
    assert sum(1 for r in reports if r.articles and not r.already_done) >= 1


KILLER = """
import os, signal, sys
from datetime import datetime, UTC
from pipeline.store import open_store
from pipeline.alerts import record_alert
store = open_store(sys.argv[1])
with store.session() as session:
    record_alert(session, "committed", "test", datetime.now(UTC))
session = store.session().__enter__()
for i in range(500):
    record_alert(session, f"uncommitted-{i}", "test", datetime.now(UTC))
session.flush()
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_kill_9_inside_a_sqlite_write_transaction(tmp_path: Path) -> None:
    """F21: the file opens cleanly; committed rows are there, uncommitted ones are not."""
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    proc = subprocess.run([sys.executable, "-c", KILLER, url], capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL
    store = open_store(url)
    with store.session() as session:
        keys = [a.key for a in session.exec(select(Alert))]
        check = session.execute(sa.text("PRAGMA integrity_check")).scalar()
    store.close()
    assert check == "ok" and keys == ["committed"]


def test_head_constant_matches_the_newest_migration() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from pipeline.store import HEAD, MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(cfg).get_current_head() == HEAD


@pytest.mark.postgres
def test_connection_dropped_mid_push_is_resumed_once(pg_url: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """F19: PostgreSQL drops every connection while the push is marking its stories. The tick
    survives it, nothing half-written stays in the database, and the next tick finishes the
    same push: each story out once, one manifest, one history line each."""
    ws = make_workspace(tmp_path / "ws", pg_url)
    ids = approve_three(ws, tmp_path)
    database = pg_url.rsplit("/", 1)[1]
    dropped: list[str] = []

    def drop_connections(name: str) -> None:
        if name == "after_article_written" and not dropped:
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = %s", (database,))
            dropped.append(name)

    monkeypatch.setattr(faults, "crash_point", drop_connections)
    store, clock = ws.store(), Clock(NOW)
    tick(store, ws.settings, clock)  # logs the failure; must not raise
    assert dropped
    assert any("the database dropped the connection" in r.getMessage() and not r.exc_info
               for r in caplog.records)
    with store.session() as session:
        assert [p.state for p in session.exec(select(Push))] == ["running"]
        assert {p.state for p in session.exec(select(Publication))} == {"queued"}
    tick(store, ws.settings, clock)
    with store.session() as session:
        pushes = list(session.exec(select(Push)))
        pubs = list(session.exec(select(Publication)))
        events = [e.draft_id for e in session.exec(select(DraftEvent))
                  if e.action == "publish"]
    store.close()
    assert [p.state for p in pushes] == ["done"]
    assert sorted(p.draft_id for p in pubs) == sorted(ids) == sorted(events)
    assert {p.state for p in pubs} == {"published"}
    articles = manifests(ws)["2026-06-15"]["articles"]
    assert sorted(a["id"] for a in articles) == sorted(ids)
    folders = sorted(p.name for p in (ws.path / "published" / "2026-06-15").iterdir()
                     if p.is_dir())
    assert len(folders) == 3 and {int(f.split("-")[1]) for f in folders} == set(ids)
