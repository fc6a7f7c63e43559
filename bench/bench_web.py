"""Benchmark: the editors' queue page with 10,000 and 100,000 waiting drafts.

For each size, builds a SQLite workspace (rows inserted in bulk with SQLAlchemy
Core, as bench_queries.py does), starts the real web app with uvicorn in a
child process on a free loopback port, logs in, and times 200 requests of the
queue's first page, of a search, of a filtered view and of a deep page over
one keep-alive connection. Prints median and p95 latency per view.

Target: p95 under 300 ms for the queue at 100,000 drafts.
Run: .venv/bin/python bench/bench_web.py [--sizes 10000 100000] [--requests 200]
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.cli import main as cli_main  # noqa: E402
from pipeline.config import load_settings  # noqa: E402
from pipeline.models import Draft, Submission, Unit  # noqa: E402
from pipeline.store import open_store  # noqa: E402
from pipeline.units import sync_units  # noqa: E402
from pipeline.web.auth import add_user  # noqa: E402

NOW = datetime.now(UTC)
PASSWORD = "bench-password"
VIEWS = {"queue": "/", "search": "/?" + urlencode({"q": "标题12"}),
         "overdue, one unit level": "/?state=overdue&level=street",
         "page 100": "/?page=100"}


def populate(url: str, config: Path, count: int) -> None:
    """``count`` drafts waiting for an editor, deadlines from 3 days ago to 2 days ahead."""
    settings = load_settings(config)
    store = open_store(url)
    with store.session() as session:
        sync_units(session, settings.units, NOW)
        add_user(session, "editor", PASSWORD, NOW)
        unit_ids = [u.id for u in session.exec(sa.select(Unit)).scalars()]
    rng = random.Random(7)
    subs, drafts = [], []
    for i in range(1, count + 1):
        start = NOW - timedelta(hours=rng.uniform(0, 96))
        unit = rng.choice(unit_ids)
        subs.append({"id": i, "unit_id": unit, "activity_type": "lecture", "title": f"标题{i}",
                     "start_at": start, "end_at": start, "place": "p", "form": "f",
                     "body": "b", "links": "[]", "photos": "[]", "contact": "", "extra": "{}",
                     "source": "bench", "dedupe_key": f"k{i}", "received_at": start})
        drafts.append({"id": i, "submission_id": i, "unit_id": unit,
                       "activity_type": rng.choice(list(settings.activity_types)),
                       "title": f"标题{i}", "author": "", "digest": "", "status": "drafted",
                       "deadline": start + timedelta(days=2), "problems": "[]",
                       "created_at": start, "updated_at": start, "version": 1, "late": False})
    with store.session() as session:
        for table, rows in ((Submission, subs), (Draft, drafts)):
            for chunk in range(0, len(rows), 5000):
                session.execute(sa.insert(table), rows[chunk:chunk + 5000])
    store.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(config: str, port: int) -> None:
    """The child process: the web app alone (no scheduler), as `pipeline serve` runs it."""
    import uvicorn

    from pipeline.clock import Clock
    from pipeline.web.app import create_app

    settings = load_settings(Path(config))
    app = create_app(settings, open_store(settings.database_url), Clock(), secret="b" * 40)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def wait_for(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the server did not start")


def login(conn: http.client.HTTPConnection) -> dict[str, str]:
    conn.request("GET", "/login")
    response = conn.getresponse()
    page = response.read().decode()
    cookie = response.getheader("set-cookie", "").split(";", 1)[0]
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    body = urlencode({"name": "editor", "password": PASSWORD, "csrf_token": token[1],
                      "next": "/"})
    conn.request("POST", "/login", body, {"Cookie": cookie,
                                          "Content-Type": "application/x-www-form-urlencoded"})
    response = conn.getresponse()
    response.read()
    assert response.status == 303, response.status
    return {"Cookie": response.getheader("set-cookie", "").split(";", 1)[0]}


def measure(conn: http.client.HTTPConnection, headers: dict[str, str], path: str,
            requests: int) -> list[float]:
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        times.append(time.perf_counter() - started)
        assert response.status == 200 and (b"<table" in body or b"empty" in body)
    return times


def p95(times: list[float]) -> float:
    return statistics.quantiles(times, n=20)[-1]


def bench(size: int, requests: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        cli_main(["init", str(ws)])
        url = f"sqlite:///{ws / 'pipeline.db'}"
        os.environ["DATABASE_URL"] = url
        started = time.perf_counter()
        populate(url, ws / "config.toml", size)
        print(f"\n{size:,} waiting drafts (populated in {time.perf_counter() - started:.1f} s)")
        port = free_port()
        child = subprocess.Popen([sys.executable, __file__, "--serve", str(ws / "config.toml"),
                                  "--port", str(port)], env=os.environ.copy())
        try:
            wait_for(port)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            headers = login(conn)
            for name, path in VIEWS.items():
                measure(conn, headers, path, 5)  # warm the caches first
                times = measure(conn, headers, path, requests)
                print(f"  {name:<24} median {statistics.median(times) * 1000:7.1f} ms   "
                      f"p95 {p95(times) * 1000:7.1f} ms   ({requests} requests)")
            conn.close()
        finally:
            child.terminate()
            child.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    print("queue page latency over loopback (one keep-alive connection, SQLite)")
    for size in args.sizes:
        bench(size, args.requests)


if __name__ == "__main__":
    main()
