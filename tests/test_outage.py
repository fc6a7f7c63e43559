"""Issue 11, finding 12 and the error vocabulary: a lost or read-only database and an
unwritable folder are sentences at the right depth (CLI: exit 1; web: 503 with
Retry-After; scheduler: one log line), and every code has both translations."""

from __future__ import annotations

import logging
import os
import signal
import string
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient

from pipeline import messages
from pipeline.clock import Clock
from pipeline.errors import PipelineError
from pipeline.schedule import tick
from pipeline.store import Store
from pipeline.web.app import create_app
from pipeline.web.auth import add_user
from pipeline.writer import GuardedWriter
from tests.conftest import Workspace, make_workspace
from tests.test_web import NOW, PASSWORD, login

PG_ADMIN = os.environ.get("PIPELINE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PIPELINE = Path(messages.__file__).parent


def read_only_url(ws: Workspace) -> str:
    """The workspace's SQLite file opened read-only (root ignores file modes)."""
    store = ws.store()  # migrated and WAL first
    store.close()
    return f"sqlite:///file:{ws.path / 'pipeline.db'}?mode=ro&uri=true"


# --- the vocabulary --------------------------------------------------------------------------

def test_every_code_has_a_chinese_and_an_english_text() -> None:
    used = {found[2] for found in extract_from_dir(
        str(PIPELINE), method_map=[("**.py", "python")],
        # every way a code is raised or recorded: errors, intake rules, stored messages
        keywords={"N_": None, "coded": None, "Coded": None, "Invalid": None,
                  "reject": (2,), "rule": None, "problem": (2,)})}
    assert used >= {"store.unavailable", "store.read_only", "files.folder_unwritable",
                    "review.not_signer", "time.future", "photo.pixels", "wechat.too_long",
                    "push.missed", "push.day_taken"}
    assert used <= set(messages.CODES), used - set(messages.CODES)
    for language in messages.LANGUAGES:
        path = messages.LOCALE / language / "LC_MESSAGES" / "pipeline.po"
        with path.open("rb") as handle:
            catalog = read_po(handle)
        translated = {m.id for m in catalog if m.id and m.string}
        assert set(messages.CODES) <= translated, (language, set(messages.CODES) - translated)
        for code, params in messages.CODES.items():
            fields = {(name, spec) for _, name, spec, _ in
                      string.Formatter().parse(catalog.get(code).string) if name is not None}
            # a sentence uses only its code's parameters, through known word tables
            assert {name for name, _ in fields} <= set(params), (language, code, fields)
            assert {spec for _, spec in fields} <= {"", *messages.SPECS}, (language, code)
            if language == "en":  # the English sentence (the logs) names every parameter
                assert {name for name, _ in fields} == set(params), (code, fields)


def test_cli_language_follows_lang() -> None:
    assert messages.cli_language({"LANG": "zh_CN.UTF-8"}) == "zh_CN"
    assert messages.cli_language({"LANG": "en_US.UTF-8"}) == "en"
    assert messages.cli_language({"LC_ALL": "zh_TW", "LANG": "C"}) == "zh_CN"
    assert messages.cli_language({}) == "en"


# --- SQLite: a read-only database --------------------------------------------------------------

def test_cli_on_a_read_only_database(workspace: Workspace, monkeypatch: pytest.MonkeyPatch
                                     ) -> None:
    workspace.database_url = read_only_url(workspace)
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    result = workspace.run("queue", now=NOW.isoformat())
    assert result.code == 1 and "read-only" in result.err and "Traceback" not in result.err
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    result = workspace.run("check", now=NOW.isoformat())
    assert result.code == 1 and "只读" in result.err and "Traceback" not in result.err


def test_web_on_a_read_only_database(workspace: Workspace) -> None:
    writable = workspace.store()
    with writable.session() as session:
        add_user(session, "editor", PASSWORD, NOW)
    writable.close()
    store = Store(read_only_url(workspace))
    app = create_app(workspace.settings, store, Clock(NOW), secret="s" * 40)
    with TestClient(app, raise_server_exceptions=False) as client:
        page = login(client)  # a login writes its session row and an audit line
        assert page.status_code == 503 and page.headers["retry-after"]
        assert "只读" in page.text
        api = client.post("/api/login", json={"name": "editor", "password": PASSWORD})
        assert api.status_code == 503 and api.json()["code"] == "store.read_only"
        assert "只读" in api.json()["error"]
    store.close()


def test_scheduler_on_a_read_only_database(workspace: Workspace,
                                           caplog: pytest.LogCaptureFixture) -> None:
    store = Store(read_only_url(workspace))
    with caplog.at_level(logging.INFO):
        tick(store, workspace.settings, Clock(NOW))
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(failures) == 1 and not failures[0].exc_info
    assert "read-only" in failures[0].getMessage()
    store.close()


def test_an_unwritable_folder_is_a_sentence(tmp_path: Path) -> None:
    blocker = tmp_path / "published"
    blocker.write_text("a file where the folder should be")
    writer = GuardedWriter(blocker)
    with pytest.raises(PipelineError) as caught:
        writer.write_text("2026-06-15/manifest.json", "{}")
    assert caught.value.code == "files.folder_unwritable"
    assert str(blocker) in str(caught.value) and str(blocker) in caught.value.text("zh_CN")


# --- PostgreSQL: unreachable, backends terminated ------------------------------------------

@pytest.mark.postgres
def test_cli_and_web_on_an_unreachable_postgres(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", "postgresql://postgres@127.0.0.1:1/nowhere")
    result = ws.run("queue", now=NOW.isoformat())
    assert result.code == 1 and "Traceback" not in result.err
    assert "unavailable" in result.err or "无法连接" in result.err
    store = Store("postgresql://postgres@127.0.0.1:1/nowhere")
    app = create_app(ws.settings, store, Clock(NOW), secret="s" * 40)
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/api/r/x/reports")
        assert answer.status_code == 503 and answer.json()["code"] == "store.unavailable"
        assert "Retry-After" in answer.headers
    store.close()


@pytest.mark.postgres
def test_scheduler_keeps_its_lease_after_postgres_drops_its_connections(
        tmp_path: Path, pg_url: str) -> None:
    """Every connection of the worker is terminated (a restart, a failover): it logs one
    line, reconnects on its next tick and renews its lease (the row with the heartbeat and
    fencing token that decides who runs, see pipeline.lease), with no traceback."""
    ws = make_workspace(tmp_path / "ws", pg_url)
    env = {**os.environ, "DATABASE_URL": pg_url, "PIPELINE_NOW": NOW.isoformat(),
           "PIPELINE_TICK_SECONDS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "--config",
                             str(ws.path / "config.toml"), "worker"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr or ()), daemon=True)
    reader.start()
    database = pg_url.rsplit("/", 1)[1]
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + database

    def beat() -> tuple[object, object] | None:
        with psycopg.connect(url, autocommit=True) as conn:
            try:
                row = conn.execute("SELECT heartbeat_at, token FROM schedulerlease"
                                   ).fetchone()
            except psycopg.errors.UndefinedTable:  # the worker has not migrated yet
                return None
        return (row[0], row[1]) if row else None

    try:
        deadline = time.monotonic() + 60
        while beat() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        first = beat()
        assert first is not None, "".join(lines)
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = %s AND pid <> pg_backend_pid()", (database,))
        after = first
        while (after is None or after[0] == first[0]) and time.monotonic() < deadline + 60:
            time.sleep(0.5)
            after = beat()
        assert after is not None and after[0] != first[0], "".join(lines)
        assert after[1] == first[1]  # the same holder renewed it: no takeover was needed
        assert proc.poll() is None, "".join(lines)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
        reader.join(timeout=30)
    assert "Traceback" not in "".join(lines)
