"""Benchmark: a static file's latency while 20 logins are in flight (issue 11).

Starts ``pipeline serve --no-scheduler`` on a free loopback port over a fresh
workspace, measures 100 requests of ``/static/app.css`` alone (the baseline), then
100 more while 20 logins (argon2 hashing) run at once, again and again. Prints the
median and p95 of both runs and their ratio.

Target: p95 under 100 ms with 20 logins in flight.
Run: .venv/bin/python bench/bench_login.py [--logins 20] [--requests 100]
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
from datetime import UTC, datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.cli import main as cli_main  # noqa: E402
from pipeline.config import load_settings  # noqa: E402
from pipeline.store import open_store  # noqa: E402
from pipeline.web.auth import add_user  # noqa: E402

PASSWORD = "bench-password-11"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timings(url: str, count: int) -> list[float]:
    out = []
    with requests.Session() as http:
        for _ in range(count):
            start = time.perf_counter()
            assert http.get(url, timeout=60).status_code == 200
            out.append((time.perf_counter() - start) * 1000)
    return out


def p95(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.95) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--logins", type=int, default=20)
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        cli_main(["init", str(ws)])
        settings = load_settings(ws / "config.toml")
        store = open_store(settings.database_url)
        with store.session() as session:
            add_user(session, "editor", PASSWORD, datetime.now(UTC))
        store.close()
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen([sys.executable, "-m", "pipeline", "--config",
                                 str(ws / "config.toml"), "serve", "--no-scheduler",
                                 "--port", str(port)], env={**os.environ},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(300):
                try:
                    requests.get(base + "/login", timeout=5)
                    break
                except requests.ConnectionError:
                    time.sleep(0.1)
            static = base + "/static/app.css"
            baseline = timings(static, args.requests)
            stop = threading.Event()
            logins = [0]

            def login_loop() -> None:
                with requests.Session() as http:
                    while not stop.is_set():
                        found = CSRF.search(http.get(base + "/login", timeout=60).text)
                        assert found
                        http.post(base + "/login", data={"name": "editor", "password":
                                                         PASSWORD, "csrf_token": found[1]},
                                  allow_redirects=False, timeout=120)
                        logins[0] += 1

            threads = [threading.Thread(target=login_loop) for _ in range(args.logins)]
            for t in threads:
                t.start()
            time.sleep(0.5)
            loaded = timings(static, args.requests)
            stop.set()
            for t in threads:
                t.join()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"static file alone:            median {statistics.median(baseline):6.1f} ms, "
          f"p95 {p95(baseline):6.1f} ms")
    print(f"with {args.logins} logins in flight:  median {statistics.median(loaded):6.1f} ms, "
          f"p95 {p95(loaded):6.1f} ms ({logins[0]} logins done meanwhile)")
    print(f"ratio p95 loaded/alone: {p95(loaded) / p95(baseline):.2f}x; target p95 < 100 ms")


if __name__ == "__main__":
    main()
