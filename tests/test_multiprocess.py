"""Several processes on one PostgreSQL: two `pipeline serve --no-scheduler` on free ports,
workers, one fresh database. Edits and pushes racing through both processes, processes
started together on an empty database, the scheduler lease taken over from a frozen
holder and from one whose connection was cut, the login limit counted across processes,
sessions valid on both, and a 503 (never a 500) when no database connection is free.

Every wait polls for a condition with a generous deadline (a loaded 2-core machine).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import col, select

from pipeline.clock import Clock
from pipeline.drafts import current_files
from pipeline.models import AuditLog, Draft, DraftEvent, Publication, Push, SchedulerLease
from pipeline.store import HEAD, open_store
from pipeline.web.app import create_app
from pipeline.web.auth import add_user
from tests.conftest import PG_ADMIN, Workspace, make_workspace, together, wait_for
from tests.test_flow import write_report

pytestmark = pytest.mark.postgres

SECRET = "shared-secret-" + "x" * 32
PASSWORD = "a-long-password"
MORNING = "2026-06-15T10:00+08:00"
EVENING = "2026-06-15T20:30+08:00"   # after push time: the day's push is owed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    """A `pipeline` subprocess whose output goes to a file (never a full pipe)."""

    def __init__(self, ws: Workspace, log: Path, now: str, *command: str,
                 secret: str | None = SECRET) -> None:
        env = {**os.environ, "DATABASE_URL": ws.database_url, "PIPELINE_NOW": now,
               "PIPELINE_TICK_SECONDS": "0.5"}
        env.pop("PIPELINE_WEB_SECRET", None)
        if secret:
            env["PIPELINE_WEB_SECRET"] = secret
        self.log = log
        self.handle = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "--config", str(ws.path / "config.toml"),
             *command], env=env, stdout=self.handle, stderr=subprocess.STDOUT, text=True)
        self.pid = self.proc.pid

    def output(self) -> str:
        return self.log.read_text("utf-8", errors="replace")

    def says(self, text: str) -> bool:
        return text in self.output()

    def wait_exit(self, timeout: float = 90.0) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=90)
        finally:
            self.handle.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.handle.close()


class Web:
    """One `pipeline serve --no-scheduler` and an API client per editor."""

    def __init__(self, ws: Workspace, log: Path, now: str = MORNING) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = Proc(ws, log, now, "serve", "--no-scheduler", "--port", str(self.port))

    def up(self) -> bool:
        try:
            return requests.get(f"{self.url}/login", timeout=5).status_code == 200
        except requests.ConnectionError:
            return False


class Editor:
    def __init__(self, name: str) -> None:
        self.name = name
        self.http = requests.Session()
        self.csrf = ""

    def login(self, web: Web, password: str = PASSWORD) -> requests.Response:
        answer = self.http.post(f"{web.url}/api/login", timeout=60,
                                json={"name": self.name, "password": password})
        if answer.status_code == 200:
            self.csrf = answer.json()["csrf_token"]
        return answer

    def get(self, web: Web, path: str) -> requests.Response:
        return self.http.get(f"{web.url}{path}", timeout=60)

    def post(self, web: Web, path: str, body: dict[str, Any]) -> requests.Response:
        return self.http.post(f"{web.url}{path}", json=body, timeout=120,
                              headers={"X-CSRF-Token": self.csrf})



def approved_stories(ws: Workspace, tmp_path: Path, count: int, now: str = MORNING
                     ) -> list[int]:
    ids = []
    for n in range(count):
        path = write_report(tmp_path, f"r{n}", unit="麓谷街道", kind="lecture",
                            title=f"麓谷街道禁毒讲座第{n + 1}场", start="2026-06-15 09:00")
        accepted = ws.run("submit", "--json", str(path), now=now).json()["accepted"]
        ids.append(int(accepted[0]["id"]))
    for draft_id in ids:
        assert ws.run("approve", str(draft_id), now=now).code == 0
    return ids


@pytest.fixture
def pg_ws(tmp_path: Path, pg_url: str) -> Workspace:
    ws = make_workspace(tmp_path / "ws", pg_url)
    store = ws.store()  # migrated once here; the races below are about the rows
    with store.session() as session:
        for name in ("王编辑", "李编辑"):
            add_user(session, name, PASSWORD, Clock().now())
    store.close()
    return ws


@pytest.fixture
def two_webs(pg_ws: Workspace, tmp_path: Path) -> Iterator[tuple[Web, Web]]:
    webs = (Web(pg_ws, tmp_path / "web-a.log"), Web(pg_ws, tmp_path / "web-b.log"))
    try:
        for web in webs:
            wait_for(lambda w=web: w.up() or w.proc.proc.poll() is not None, 90,  # type: ignore[misc]
                     "the web processes answer")
            assert web.up(), web.proc.output()
        yield webs
    finally:
        for web in webs:
            code = web.proc.stop()
            assert code == 0 and "Traceback" not in web.proc.output(), web.proc.output()


def test_edit_race_through_two_processes_has_one_winner_and_files_match_the_row(
        pg_ws: Workspace, two_webs: tuple[Web, Web], tmp_path: Path) -> None:
    a, b = two_webs
    (draft_id,) = (int(r["id"]) for r in pg_ws.run(
        "submit", "--json", str(write_report(tmp_path, "e", unit="麓谷街道", kind="lecture",
                                             title="麓谷街道禁毒讲座", start="2026-06-15 09:00")),
        now=MORNING).json()["accepted"])
    wang, li = Editor("王编辑"), Editor("李编辑")
    assert wang.login(a).status_code == 200 and li.login(b).status_code == 200
    folder = pg_ws.path / "drafts" / str(draft_id)
    path = f"/api/drafts/{draft_id}/markdown"
    store = pg_ws.store()
    try:
        for trial in range(12):
            version = wang.get(a, f"/api/drafts/{draft_id}").json()["draft"]["version"]
            texts = {name: f"第{trial}次试验：{name}的正文。" for name in ("王编辑", "李编辑")}
            answers = together(
                lambda t=texts, v=version: wang.post(  # type: ignore[misc]
                    a, path, {"markdown": t["王编辑"], "version": v}),
                lambda t=texts, v=version: li.post(  # type: ignore[misc]
                    b, path, {"markdown": t["李编辑"], "version": v}))
            codes = sorted(r.status_code for r in answers)
            assert codes == [200, 409], [(r.status_code, r.text) for r in answers]
            winner = "王编辑" if answers[0].status_code == 200 else "李编辑"
            loser = answers[1] if winner == "王编辑" else answers[0]
            body = loser.json()
            assert "稿件已被他人修改" in body["error"] and body["version"] == version + 1
            assert body["latest"] == f"/api/drafts/{draft_id}"
            with store.session() as session:
                draft = session.get(Draft, draft_id)
                assert draft is not None and draft.version == version + 1
                edits = session.exec(select(DraftEvent).where(
                    DraftEvent.draft_id == draft_id, DraftEvent.action == "edit")).all()
                assert len(edits) == trial + 1
                md, html = current_files(session, pg_ws.settings, draft_id)
            # the files the row names hold the committed winner's text, both of them; the
            # older version was removed after the commit, the loser wrote nothing
            assert md.name == f"article.v{version + 1}.md"
            assert texts[winner] in md.read_text("utf-8")
            assert texts[winner] in html.read_text("utf-8")
            assert sorted(p.name for p in folder.glob("article*")) == sorted(
                [html.name, md.name])
            other = "李编辑" if winner == "王编辑" else "王编辑"
            assert texts[other] not in html.read_text("utf-8")
    finally:
        store.close()


def test_sign_race_through_two_processes_tells_the_second_signer_who_signed(
        pg_ws: Workspace, two_webs: tuple[Web, Web], tmp_path: Path) -> None:
    a, b = two_webs
    ids = []
    for n in range(6):
        path = write_report(tmp_path, f"s{n}", unit="麓谷街道", kind="lecture",
                            title=f"麓谷街道禁毒讲座第{n + 1}场", start="2026-06-15 09:00")
        ids += [int(r["id"]) for r in pg_ws.run("submit", "--json", str(path),
                                                 now=MORNING).json()["accepted"]]
    wang, li = Editor("王编辑"), Editor("李编辑")
    assert wang.login(a).status_code == 200 and li.login(b).status_code == 200
    store = pg_ws.store()
    try:
        for draft_id in ids:
            stage = wang.get(a, f"/api/drafts/{draft_id}").json()["draft"]["stage"]
            body = {"action": "approve", "stage": stage}
            path = f"/api/drafts/{draft_id}/actions"
            answers = together(
                lambda p=path, q=body: wang.post(a, p, q),  # type: ignore[misc]
                lambda p=path, q=body: li.post(b, p, q))  # type: ignore[misc]
            assert [r.status_code for r in answers] == [200, 200], [r.text for r in answers]
            done = [r.json()["already_done"] for r in answers]
            assert sorted(done) == [False, True], done
            winner = "王编辑" if done[1] else "李编辑"
            loser = answers[0 if done[0] else 1].json()
            assert loser["code"] == "review.signed_meanwhile"
            assert f"{winner} 已在刚才" in loser["message"] and stage in loser["message"]
            with store.session() as session:
                audits = session.exec(select(AuditLog).where(
                    AuditLog.action == "approve", AuditLog.target == f"draft:{draft_id}")).all()
                assert [x.actor for x in audits] == [winner]
                events = session.exec(select(DraftEvent).where(
                    DraftEvent.draft_id == draft_id, DraftEvent.action == "approve")).all()
                assert [e.actor for e in events] == [winner]
    finally:
        store.close()


def test_push_race_sessions_and_login_limit_across_processes(
        pg_ws: Workspace, two_webs: tuple[Web, Web], tmp_path: Path) -> None:
    a, b = two_webs
    stories = approved_stories(pg_ws, tmp_path, 3)
    wang, li = Editor("王编辑"), Editor("李编辑")
    assert wang.login(a).status_code == 200 and li.login(b).status_code == 200
    # A session made by one process is valid on the other (the shared secret).
    assert wang.get(b, "/api/queue").status_code == 200
    assert li.get(a, "/api/queue").status_code == 200

    answers = together(lambda: wang.post(a, "/api/push/run", {"confirm": True}),
                       lambda: li.post(b, "/api/push/run", {"confirm": True}))
    assert [r.status_code for r in answers] == [200, 200], [r.text for r in answers]
    bodies = [r.json() for r in answers]
    assert sorted(body["already_done"] for body in bodies) == [False, True], bodies
    loser = next(body for body in bodies if body["already_done"])
    assert "今天的推送已由另一位编辑完成" in loser["message"]
    assert sorted(loser["articles"]) == sorted(stories)  # what was pushed
    store = pg_ws.store()
    try:
        with store.session() as session:
            assert len(session.exec(select(Push)).all()) == 1
            assert sorted(p.draft_id for p in session.exec(select(Publication))) == stories
            assert len(session.exec(select(AuditLog).where(
                AuditLog.action == "push_now")).all()) == 1
    finally:
        store.close()

    # Five failures for a name through one process lock it on the other as well.
    intruder = Editor("王编辑")
    for _ in range(5):
        assert intruder.login(a, "wrong password").status_code == 401
    assert Editor("王编辑").login(b).status_code == 429


def test_processes_started_together_on_an_empty_database_migrate_once(
        tmp_path: Path, pg_url: str) -> None:
    ws = make_workspace(tmp_path / "ws", pg_url)
    refused = Proc(ws, tmp_path / "nosecret.log", MORNING, "serve", "--no-scheduler",
                   "--port", str(free_port()), secret=None)
    assert refused.wait_exit() == 1 and "PIPELINE_WEB_SECRET" in refused.output()
    refused.kill()
    procs = [Proc(ws, tmp_path / f"migrate-{i}.log", MORNING, "migrate") for i in range(4)]
    webs = [Web(ws, tmp_path / f"web-{i}.log") for i in range(2)]
    try:
        for proc in procs:
            assert proc.wait_exit() == 0, proc.output()
            assert f"schema at revision {HEAD}" in proc.output()
            assert "Traceback" not in proc.output()
        for web in webs:
            wait_for(lambda w=web: w.up() or w.proc.proc.poll() is not None, 90,  # type: ignore[misc]
                     "the web processes answer")
            assert web.up(), web.proc.output()
    finally:
        for web in webs:
            assert web.proc.stop() == 0
            assert "Traceback" not in web.proc.output(), web.proc.output()
    engine = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT version_num FROM alembic_version")
                                  ).scalars().all() == [HEAD]
        names = connection.execute(sa.text("SELECT name FROM unit")).scalars().all()
        assert len(names) == len(set(names)) == len(ws.settings.units)
    engine.dispose()


def _lease(ws: Workspace) -> SchedulerLease:
    store = ws.store()
    try:
        with store.session() as session:
            lease = session.get(SchedulerLease, "scheduler")
            assert lease is not None
            return lease
    finally:
        store.close()


def _one_push(ws: Workspace, stories: list[int]) -> None:
    store = ws.store()
    try:
        with store.session() as session:
            pushes = session.exec(select(Push)).all()
            assert [(p.local_date.isoformat(), p.state) for p in pushes] == [
                ("2026-06-15", "done")]
            assert sorted(p.draft_id for p in session.exec(
                select(Publication).where(col(Publication.state) == "published"))) == stories
    finally:
        store.close()


@pytest.mark.parametrize("how", ["freeze", "cut_connection"])
def test_standby_takes_over_and_the_old_holder_stops(pg_ws: Workspace, tmp_path: Path,
                                                      how: str) -> None:
    pg_ws.configure("schedule", lease_seconds=6)
    stories = approved_stories(pg_ws, tmp_path, 2)
    first = Proc(pg_ws, tmp_path / "w1.log", EVENING, "worker")
    second: Proc | None = None
    try:
        wait_for(lambda: first.says("scheduler running"), 90, "the first worker runs")
        _one_push(pg_ws, stories)  # its start-up catch-up pushed the day
        token = _lease(pg_ws).token
        # A second plain worker is refused while the first one's heartbeat is fresh ...
        refused = Proc(pg_ws, tmp_path / "w-refused.log", EVENING, "worker")
        assert refused.wait_exit() == 1 and "already running" in refused.output()
        refused.kill()
        # ... a standby waits.
        second = Proc(pg_ws, tmp_path / "w2.log", EVENING, "worker", "--standby")
        wait_for(lambda: second is not None and second.says("standby:"), 90, "standby waits")
        if how == "freeze":
            os.kill(first.pid, signal.SIGSTOP)
        else:
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = %s AND pid <> pg_backend_pid()",
                              (pg_ws.database_url.rsplit("/", 1)[1],))
        wait_for(lambda: second is not None and second.says("scheduler running"), 120,
                 "the standby takes over")
        assert _lease(pg_ws).token == token + 1
        if how == "freeze":
            os.kill(first.pid, signal.SIGCONT)
        # The old holder finds its token stale, says so once and stops by itself.
        assert first.wait_exit(120) == 0, first.output()
        log = first.output()
        assert log.count("the scheduler lease was taken over") == 1, log
        assert "Traceback" not in log, log
        _one_push(pg_ws, stories)  # still exactly one push that day
    finally:
        first.stop()
        if second is not None:
            code = second.stop()
            assert code == 0 and "Traceback" not in second.output(), second.output()


def test_no_free_connection_answers_503_and_writes_nothing(pg_ws: Workspace) -> None:
    pg_ws.configure("database", pool_size=1, max_overflow=0, pool_timeout=1.0)
    settings = pg_ws.settings
    store = open_store(settings.database_url, pool=settings.database)
    client = TestClient(create_app(settings, store, Clock(), secret=SECRET))
    with store.session() as session:
        before = session.exec(select(sa.func.count()).select_from(Draft)).one()
    held = store.engine.connect()  # the process's only connection is taken
    try:
        api = client.get("/api/r/no-such-link/reports")
        assert api.status_code == 503 and api.headers["retry-after"] == "5"
        assert api.json()["ok"] is False and api.json()["status"] == 503
        form = client.get("/r/no-such-link")
        assert form.status_code == 503 and "系统繁忙" in form.text
        assert form.headers["retry-after"] == "5"
    finally:
        held.close()
    assert client.get("/api/r/no-such-link/reports").status_code == 404  # served again
    with store.session() as session:
        assert session.exec(select(sa.func.count()).select_from(Draft)).one() == before
    store.close()


def test_a_full_server_is_waited_for_then_answered_503(pg_ws: Workspace) -> None:
    """The server itself has no slot left (a role limited to one connection, taken):
    the request keeps trying for pool_timeout, then gets 503; once a slot is free it
    is served."""
    role = f"lim_{os.getpid()}_{int(time.monotonic() * 1000) % 100000}"
    name = pg_ws.database_url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 1')
        admin.execute(f'GRANT ALL ON DATABASE "{name}" TO "{role}"')
    with psycopg.connect(pg_ws.database_url, autocommit=True) as owner:
        owner.execute(f'GRANT ALL ON ALL TABLES IN SCHEMA public TO "{role}"')
    limited = pg_ws.database_url.replace("postgres@", f"{role}@")
    pg_ws.configure("database", pool_size=1, max_overflow=0, pool_timeout=2.0)
    settings = pg_ws.settings
    store = open_store(limited, upgrade=False, pool=settings.database)
    client = TestClient(create_app(settings, store, Clock(), secret=SECRET))
    try:
        taken = psycopg.connect(limited)  # the role's only slot
        try:
            started = time.monotonic()
            answer = client.get("/api/r/no-such-link/reports")
            waited = time.monotonic() - started
            assert answer.status_code == 503, answer.text
            assert answer.headers["retry-after"] == "5"
            assert waited >= 1.5  # it waited for a slot before giving up
        finally:
            taken.close()
        assert client.get("/api/r/no-such-link/reports").status_code == 404
    finally:
        store.close()
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE usename = %s", (role,))
        with psycopg.connect(pg_ws.database_url, autocommit=True) as owner:
            owner.execute(f'DROP OWNED BY "{role}" CASCADE')  # its grants in this database
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'REVOKE ALL ON DATABASE "{name}" FROM "{role}"')
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')
