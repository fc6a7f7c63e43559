"""Benchmark: `pipeline check` and `pipeline queue` over 100,000 drafts.

Builds a SQLite workspace with 100,000 drafts (most published long ago, a few
hundred waiting, some overdue), then times the sweep and the queue in-process
(median of repeated runs) next to a full scan of the draft table in the same
process, and times the real commands end to end (process start included).

Target: each command answers in under 0.5 s.
Run: .venv/bin/python bench/bench_queries.py [--drafts N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.cli import main as cli_main  # noqa: E402
from pipeline.config import load_settings  # noqa: E402
from pipeline.models import Draft, Submission, Unit  # noqa: E402
from pipeline.store import Store, open_store  # noqa: E402
from pipeline.sweep import sweep  # noqa: E402
from pipeline.units import sync_units  # noqa: E402
from pipeline.views import queue  # noqa: E402

NOW = datetime(2026, 6, 20, 12, 0, tzinfo=UTC)


def populate(url: str, settings_path: Path, count: int) -> None:
    settings = load_settings(settings_path)
    store = open_store(url)
    with store.session() as session:
        sync_units(session, settings.units, NOW)
        unit_ids = [u.id for u in session.exec(sa.select(Unit)).scalars()]
    rng = random.Random(7)
    subs, drafts = [], []
    for i in range(1, count + 1):
        age = timedelta(days=rng.uniform(0, 365)) if i <= count * 0.99 else timedelta(
            hours=rng.uniform(-24, 72))
        start = NOW - age
        status = "published" if i <= count * 0.99 else rng.choice(
            ["drafted", "approved", "changes_requested"])
        unit = rng.choice(unit_ids)
        subs.append({"id": i, "unit_id": unit, "activity_type": "lecture", "title": f"标题{i}",
                     "start_at": start, "end_at": start, "place": "p", "form": "f",
                     "body": "b", "links": "[]", "photos": "[]", "contact": "", "extra": "{}",
                     "source": "bench", "dedupe_key": f"k{i}", "received_at": start})
        drafts.append({"id": i, "submission_id": i, "unit_id": unit, "activity_type": "lecture",
                       "title": f"标题{i}", "author": "", "digest": "", "status": status,
                       "deadline": start + timedelta(days=2), "problems": "[]",
                       "created_at": start, "updated_at": start, "version": 1, "late": False,
                       "published_at": start + timedelta(days=1)
                       if status == "published" else None})
    insert_all(store, ((Submission, subs), (Draft, drafts)))
    store.close()


def insert_all(store: Store, tables: Iterable[tuple[type, list[dict[str, object]]]]) -> None:
    """Bulk rows, 5,000 to a statement, in one transaction (the benchmarks' seeding)."""
    with store.session() as session:
        for table, rows in tables:
            for chunk in range(0, len(rows), 5000):
                session.execute(sa.insert(table), rows[chunk:chunk + 5000])


def median_seconds(func: object, repeat: int = 15) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        func()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--drafts", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        cli_main(["init", str(ws)])
        url = f"sqlite:///{ws / 'pipeline.db'}"
        started = time.perf_counter()
        populate(url, ws / "config.toml", args.drafts)
        print(f"populated {args.drafts} drafts in {time.perf_counter() - started:.1f} s")
        settings = load_settings(ws / "config.toml")
        store = open_store(url)

        def scan() -> None:
            with store.session() as s:
                s.execute(sa.text("SELECT sum(length(title)) FROM draft")).scalar()

        def check() -> None:
            with store.session() as s:
                sweep(s, settings, NOW)

        def list_queue() -> None:
            with store.session() as s:
                queue(s, settings, NOW, include_all=True)

        check()  # the first sweep records the alerts; later ones find them recorded
        base = median_seconds(scan)
        results = {"full scan (baseline)": base, "check (sweep)": median_seconds(check),
                   "queue --all": median_seconds(list_queue)}
        for name, seconds in results.items():
            print(f"{name:<22} {seconds * 1000:8.1f} ms   ratio to full scan {seconds / base:5.2f}")
        env = {**os.environ, "DATABASE_URL": url}
        for command in (["check", "--json"], ["queue", "--all", "--json"]):
            walls = []
            for _ in range(5):
                started = time.perf_counter()
                out = subprocess.run([sys.executable, "-m", "pipeline", "--config",
                                      str(ws / "config.toml"), "--now", NOW.isoformat(),
                                      *command], env=env, capture_output=True, check=True)
                walls.append(time.perf_counter() - started)
            json.loads(out.stdout)
            print(f"pipeline {' '.join(command):<18} end to end {statistics.median(walls):.3f} s "
                  "(process start included)")
        store.close()


if __name__ == "__main__":
    main()
