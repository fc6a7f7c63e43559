"""Benchmark: a cheap page stays fast while reporters submit forms to the same process.

Starts `pipeline serve --no-scheduler` on a fresh SQLite workspace (or PostgreSQL with
--database-url), then times GET /login (a cheap page) twice in the same run: alone
(the baseline), and while ``--writers`` threads keep posting the reporters' form
(each post stores a report and renders its draft). Before issue 16 the form handler
did its database and render work on the event loop, so every other request of the
process waited behind it; now handlers run in the thread pool.

Target: p95 of the cheap page under 100 ms during the form load.
Run: .venv/bin/python bench/bench_concurrency.py [--requests 300] [--writers 4]
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from sqlmodel import select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.cli import main as cli_main  # noqa: E402
from pipeline.clock import Clock  # noqa: E402
from pipeline.config import load_settings  # noqa: E402
from pipeline.models import Unit  # noqa: E402
from pipeline.store import open_store  # noqa: E402
from pipeline.units import create_link, sync_units  # noqa: E402

FORM = {"activity_type": "lecture", "title": "麓谷街道开展禁毒知识讲座",
        "start": "2026-06-14T09:00", "end": "2026-06-14T11:00", "place": "麓谷街道文化站",
        "form": "线下活动", "participants": "80",
        "body": "讲座现场气氛热烈，群众积极参与。\n\n- 发放资料200份\n- 现场咨询50人次",
        "links": "https://news.example.cn/a/1\n湖南日报", "contact": "李四"}
NOW = "2026-06-15T10:00+08:00"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def workspace(folder: Path, url: str | None) -> tuple[Path, str, str]:
    with open(os.devnull, "w") as quiet:
        sys.stdout, saved = quiet, sys.stdout
        try:
            cli_main(["init", str(folder)])
        finally:
            sys.stdout = saved
    config = folder / "config.toml"
    url = url or f"sqlite:///{folder / 'pipeline.db'}"
    os.environ["DATABASE_URL"] = url
    settings = load_settings(config)
    store = open_store(url)
    with store.session() as session:
        sync_units(session, settings.units, Clock().now())
        unit = session.exec(select(Unit).where(Unit.name == "麓谷街道")).one()
        token = create_link(session, unit.id or 0, actor="bench", now=Clock().now()).token
    store.close()
    return config, url, token


def timed_gets(base: str, count: int) -> list[float]:
    http = requests.Session()
    times = []
    for _ in range(count):
        start = time.perf_counter()
        answer = http.get(f"{base}/login", timeout=30)
        times.append((time.perf_counter() - start) * 1000)
        assert answer.status_code == 200
    return times


def writer(base: str, token: str, stop: threading.Event, done: list[int]) -> None:
    http = requests.Session()
    while not stop.is_set():
        page = http.get(f"{base}/r/{token}", timeout=60).text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
        key = re.search(r'name="idempotency_key" value="([^"]+)"', page)
        assert csrf and key
        answer = http.post(f"{base}/r/{token}", timeout=60, allow_redirects=False,
                           data={**FORM, "title": f"{FORM['title']}{len(done)}",
                                 "csrf_token": csrf[1], "idempotency_key": key[1]})
        assert answer.status_code == 303, answer.text[:500]
        done.append(1)


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-concurrency-") as tmp:
        config, url, token = workspace(Path(tmp) / "ws", args.database_url)
        port = free_port()
        env = {**os.environ, "DATABASE_URL": url, "PIPELINE_NOW": NOW,
               "PIPELINE_WEB_SECRET": "bench-" + "s" * 40}
        server = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "--config", str(config), "serve",
             "--no-scheduler", "--port", str(port)], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if requests.get(f"{base}/login", timeout=5).status_code == 200:
                        break
                except requests.ConnectionError:
                    time.sleep(0.1)
            timed_gets(base, 20)  # warm-up
            alone = timed_gets(base, args.requests)
            stop, done = threading.Event(), []
            threads = [threading.Thread(target=writer, args=(base, token, stop, done))
                       for _ in range(args.writers)]
            for t in threads:
                t.start()
            time.sleep(1.0)  # the writers are posting by now
            loaded = timed_gets(base, args.requests)
            stop.set()
            for t in threads:
                t.join(timeout=120)
        finally:
            server.terminate()
            server.wait(timeout=60)
    print(f"cheap page alone:       median {statistics.median(alone):6.1f} ms, "
          f"p95 {p95(alone):6.1f} ms")
    print(f"during form submissions: median {statistics.median(loaded):6.1f} ms, "
          f"p95 {p95(loaded):6.1f} ms ({len(done)} reports stored by {args.writers} writers)")
    print(f"p95 ratio loaded/alone: {p95(loaded) / p95(alone):.2f}x; "
          f"target p95 < 100 ms: {'met' if p95(loaded) < 100 else 'NOT met'}")


if __name__ == "__main__":
    main()
