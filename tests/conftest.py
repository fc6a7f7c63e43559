"""Shared fixtures: real workspaces in temporary folders, real SQLite files and a fresh
database on the real PostgreSQL server for the store tests."""

from __future__ import annotations

import io
import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlmodel import Session, col, select

from pipeline.cli import main
from pipeline.config import Settings, load_settings
from pipeline.models import Draft, DraftEvent
from pipeline.store import Store, open_store

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = os.environ.get("PIPELINE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")

pytest_plugins = ["tests.fakewechat"]


def _pg_database() -> Iterator[str]:
    name = f"pipeline_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN}: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, then a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
    else:
        yield from _pg_database()


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from _pg_database()


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


class Workspace:
    """A real workspace made by `pipeline init`, driven through the real CLI."""

    def __init__(self, path: Path, database_url: str) -> None:
        self.path = path
        self.database_url = database_url
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            old = os.environ.get("DATABASE_URL")
            os.environ["DATABASE_URL"] = self.database_url
            try:
                self._settings = load_settings(self.path / "config.toml")
            finally:
                if old is None:
                    os.environ.pop("DATABASE_URL", None)
                else:
                    os.environ["DATABASE_URL"] = old
        return self._settings

    def configure(self, section: str, **values: object) -> None:
        """Set keys of one table in config.toml (the bundled file has every table)."""
        path = self.path / "config.toml"
        lines = path.read_text(encoding="utf-8").splitlines()
        start = lines.index(f"[{section}]")
        for key, value in values.items():
            text = json.dumps(value, ensure_ascii=False)
            for i in range(start + 1, len(lines)):
                if lines[i].startswith("["):
                    lines.insert(i, f"{key} = {text}")
                    break
                if lines[i].split("=")[0].strip() == key:
                    lines[i] = f"{key} = {text}"
                    break
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self._settings = None

    def store(self) -> Store:
        return open_store(self.database_url)

    def article(self, draft_id: int, html: bool = False) -> str:
        """A draft's current Markdown (or HTML): the files its committed row names."""
        from pipeline.drafts import read_article

        store = self.store()
        try:
            with store.session() as session:
                return read_article(session, self.settings, draft_id, html=html)
        finally:
            store.close()

    def run(self, *args: str, now: str | None = None) -> Result:
        argv = ["--config", str(self.path / "config.toml")]
        if now:
            argv += ["--now", now]
        out, err = io.StringIO(), io.StringIO()
        old = os.environ.get("DATABASE_URL")
        os.environ["DATABASE_URL"] = self.database_url
        try:
            with redirect_stdout(out), redirect_stderr(err):
                code = main([*argv, *args])
        finally:
            if old is None:
                os.environ.pop("DATABASE_URL", None)
            else:
                os.environ["DATABASE_URL"] = old
        return Result(code, out.getvalue(), err.getvalue())


def wait_for(predicate: Callable[[], object], timeout: float = 90.0, what: str = "") -> None:
    """Poll until ``predicate`` holds; ``timeout`` is a ceiling for a loaded machine, not a
    sleep: a test never waits a fixed time before asserting that something did not happen."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout:g} s: {what}")
        time.sleep(0.05)


def together(*calls: Callable[[], Any], keep: tuple[type[BaseException], ...] = ()
             ) -> list[Any]:
    """Run the calls at the same moment from threads: each one's result in order, or the
    exception it raised when that is one of ``keep`` (a race's loser answers with one)."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except keep as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return results


def make_workspace(path: Path, database_url: str, *, staged: bool = False) -> Workspace:
    """``pipeline init``; unless ``staged``, the office runs one approval stage (most
    tests are about what happens after approval, not about 三审)."""
    assert main(["init", str(path)]) == 0
    if not staged:
        single_stage(path / "config.toml")
    return Workspace(path, database_url)


def single_stage(config: Path) -> None:
    """Drop the [[review.stages]] tables: one stage any editor signs."""
    kept, skipping = [], False
    for line in config.read_text(encoding="utf-8").splitlines():
        if line.strip() == "[[review.stages]]":
            skipping = True
            continue
        if skipping and line.startswith(("[", "# ")):
            skipping = False
        if not skipping:
            kept.append(line)
    config.write_text("\n".join(kept) + "\n", encoding="utf-8")


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """A fresh workspace on a SQLite file."""
    return make_workspace(tmp_path / "ws", f"sqlite:///{tmp_path / 'ws' / 'pipeline.db'}")


@pytest.fixture
def any_workspace(tmp_path: Path, database_url: str) -> Workspace:
    """A fresh workspace, once on SQLite and once on PostgreSQL."""
    return make_workspace(tmp_path / "ws", database_url)


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    """A copy of the bundled example reports (with their photos)."""
    target = tmp_path / "reports"
    shutil.copytree(ROOT / "examples" / "reports", target)
    return target


def check_histories(session: Session) -> None:
    for draft in session.exec(select(Draft)):
        events = session.exec(select(DraftEvent).where(DraftEvent.draft_id == draft.id)
                              .order_by(col(DraftEvent.id))).all()
        assert events and events[0].action == "submitted", draft.id
        state = events[0].to_status
        for e in events[1:]:
            assert e.from_status == state, (draft.id, [(x.action, x.from_status,
                                                        x.to_status) for x in events])
            state = e.to_status
        assert state == draft.status, (draft.id, state, draft.status)
