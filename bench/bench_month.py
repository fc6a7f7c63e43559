"""Benchmark: the push planner and the weekly bulletin over a campaign month of 100,000
drafts.

Builds a SQLite workspace whose 6·26 campaign month (June 2026) holds 100,000 reports
and drafts (SQLAlchemy Core bulk inserts, as bench_queries.py does): 60 % published
(one push a day carries 8 of them with publication rows), 20 % approved and waiting
for a push, the rest drafted, sent back or rejected. Times, in-process (min / median /
max of repeated runs, each as a ratio to a full scan of the draft table in the same
process), through the store's session (the normal path) and through the DB-API alone
(the lean start of the commands, pipeline/lean.py):

  plan:     the planner of ``pipeline push --dry-run`` (approved drafts, packed
            earliest deadline first);
  bulletin: gather + compose the joint bulletin of the campaign's busiest week;

then ``pipeline push --dry-run`` and ``pipeline bulletin`` as whole processes (wall and
CPU, with the machine's load), the lean start and the normal path (PIPELINE_LEAN=0)
interleaved. The package's bytecode is compiled first, as an installation has it
(``PYTHONDONTWRITEBYTECODE`` would otherwise make every process compile our modules).
Target: each under 1 s.
Run: .venv/bin/python bench/bench_month.py [--drafts 100000] [--keep WORKSPACE]
     .venv/bin/python bench/bench_month.py --whole WORKSPACE  (only the whole processes,
     over a workspace this script built before with --keep)
"""

from __future__ import annotations

import argparse
import compileall
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_queries import insert_all, median_seconds  # noqa: E402  (the sibling script)

from pipeline import lean  # noqa: E402
from pipeline.cli import main as cli_main  # noqa: E402
from pipeline.config import load_settings  # noqa: E402
from pipeline.models import Draft, Publication, Push, Submission, Unit  # noqa: E402
from pipeline.notify.bulletin import (  # noqa: E402
    IsoWeek,
    compose_bulletin,
    gather,
    gather_bulletin,
)
from pipeline.push.plan import plan, plan_from  # noqa: E402
from pipeline.store import open_store  # noqa: E402
from pipeline.units import sync_units  # noqa: E402

MONTH = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
NOW = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
KINDS = ["film", "lecture", "exhibition", "base_visit", "training", "volunteer",
         "hardship_visit", "household_meeting", "quiz", "other"]


def populate(url: str, config: Path, count: int) -> None:
    settings = load_settings(config)
    store = open_store(url)
    with store.session() as session:
        sync_units(session, settings.units, MONTH)
        unit_ids = [u.id for u in session.exec(sa.select(Unit)).scalars()]
    rng = random.Random(626)
    subs, drafts, pubs, pushes = [], [], [], []
    for i in range(1, count + 1):
        start = MONTH + timedelta(minutes=rng.uniform(0, 29 * 24 * 60))
        roll = rng.random()
        status = ("published" if roll < 0.6 else "approved" if roll < 0.8 else
                  "drafted" if roll < 0.9 else "changes_requested" if roll < 0.95 else "rejected")
        unit, kind = rng.choice(unit_ids), KINDS[i % len(KINDS)]
        published = start + timedelta(hours=rng.uniform(6, 60)) if status == "published" else None
        subs.append({"id": i, "unit_id": unit, "activity_type": kind, "title": f"标题{i}",
                     "start_at": start, "end_at": start + timedelta(hours=2), "place": "p",
                     "form": "f", "body": "b", "participants": rng.randint(3, 300),
                     "participants_text": "", "participants_unit": "户" if kind ==
                     "hardship_visit" else "人", "links": "[]", "photos": "[]", "contact": "",
                     "extra": "{}", "source": "bench", "dedupe_key": f"m{i}",
                     "received_at": start + timedelta(hours=1), "timed": True, "notes": ""})
        drafts.append({"id": i, "submission_id": i, "unit_id": unit, "activity_type": kind,
                       "title": f"标题{i}", "author": "", "digest": "", "status": status,
                       "deadline": start + timedelta(days=2), "problems": "[]",
                       "created_at": start, "updated_at": start, "version": 1,
                       "late": bool(published and published > start + timedelta(days=2)),
                       "published_at": published})
    published_ids = [d["id"] for d in drafts if d["status"] == "published"]
    for day in range(29):
        local = date(2026, 6, 1) + timedelta(days=day)
        at = MONTH + timedelta(days=day, hours=12)
        pushes.append({"id": day + 1, "account": "bench", "local_date": local, "slot": 1,
                       "state": "done", "version": 1, "channel": "folder", "started_at": at,
                       "finished_at": at, "note": ""})
        for position in range(1, 9):
            pubs.append({"draft_id": published_ids[day * 8 + position - 1], "push_id": day + 1,
                         "position": position, "state": "published", "version": 1,
                         "late": False, "published_at": at, "error": ""})
    insert_all(store, ((Submission, subs), (Draft, drafts), (Push, pushes), (Publication, pubs)))
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drafts", type=int, default=100_000)
    parser.add_argument("--whole", type=Path, metavar="WORKSPACE",
                        help="only the whole processes, over an existing month workspace")
    parser.add_argument("--keep", type=Path, metavar="WORKSPACE",
                        help="build the workspace here and keep it (for --whole)")
    parser.add_argument("--runs", type=int, default=5, help="whole processes of each kind")
    args = parser.parse_args()
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("PIPELINE_LEAN", None)
    week = IsoWeek.of(date(2026, 6, 15))
    if args.whole:
        whole_processes(args.whole, week, args.runs)
        return
    if args.keep:
        measure(args.keep, args.drafts, week, args.runs)
        return
    with tempfile.TemporaryDirectory(dir=ROOT / "bench", prefix=".bench-") as tmp:
        measure(Path(tmp) / "ws", args.drafts, week, args.runs)


def measure(ws: Path, drafts: int, week: IsoWeek, runs: int) -> None:
    cli_main(["init", str(ws)])
    url = f"sqlite:///{ws / 'pipeline.db'}"
    started = time.perf_counter()
    populate(url, ws / "config.toml", drafts)
    print(f"populated a campaign month of {drafts:,} drafts in "
          f"{time.perf_counter() - started:.1f} s")
    settings = load_settings(ws / "config.toml")
    settings = replace(settings, database_url=url)
    store = open_store(url)

    def scan() -> None:
        with store.session() as s:
            s.execute(sa.text("SELECT sum(length(title)) FROM draft")).scalar()

    def planner() -> None:
        with store.session() as s:
            plan(s, settings, NOW)

    def planner_lean() -> None:
        assert lean.attempt(settings, lambda reader: plan_from(reader, settings, NOW))

    def bulletin() -> None:
        with store.session() as s:
            compose_bulletin(gather_bulletin(s, settings, week), settings)

    def bulletin_lean() -> None:
        data = lean.attempt(settings, lambda reader: gather(reader, settings, week))
        assert data is not None
        compose_bulletin(data, settings)

    base = median_seconds(scan, repeat=7)
    print(f"in-process, machine load {_load()}; min / median / max of 7, ratio of the "
          "median to a full scan of draft")
    print(f"{'full scan of draft (baseline)':<34} {base * 1000:8.1f} ms")
    for name, func in (("push planner (dry run)", planner),
                       ("push planner, lean (DB-API)", planner_lean),
                       (f"bulletin {week.label}", bulletin),
                       (f"bulletin {week.label}, lean (DB-API)", bulletin_lean)):
        times = []
        for _ in range(7):
            began = time.perf_counter()
            func()
            times.append(time.perf_counter() - began)
        middle = statistics.median(times)
        print(f"{name:<34} {min(times) * 1000:6.1f} / {middle * 1000:6.1f} / "
              f"{max(times) * 1000:6.1f} ms   ratio to full scan {middle / base:5.2f}   "
              "(target < 1 s)")
    store.close()
    whole_processes(ws, week, runs)


def whole_processes(ws: Path, week: IsoWeek, runs: int = 5) -> None:
    """``push --dry-run`` and ``bulletin`` as whole processes, the lean start and the
    normal path interleaved: wall and CPU (user + system), min / median / max of
    ``runs``, with the machine's load (it is shared); ``python -c pass`` beside them."""
    compileall.compile_dir(ROOT / "pipeline", quiet=1)  # as an installation has it
    config = ["--config", str(ws / "config.toml"), "--now", NOW.isoformat()]
    commands = {"python -c pass": ([sys.executable, "-c", "pass"], {})}
    for command in (["push", "--dry-run"], ["bulletin", "--week", week.label]):
        argv = [sys.executable, "-m", "pipeline", *config, *command]
        commands[f"pipeline {' '.join(command)}"] = (argv, {})
        commands[f"  {command[0]}, normal path (PIPELINE_LEAN=0)"] = (
            argv, {"PIPELINE_LEAN": "0"})
    print(f"whole processes ({runs} runs each, interleaved; machine load {_load()})")
    walls: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, (argv, extra) in commands.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            began = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True, cwd=ws,
                           env={**os.environ, **extra})
            walls[name].append(time.perf_counter() - began)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus[name].append(after.ru_utime - before.ru_utime + after.ru_stime
                              - before.ru_stime)
    for name in commands:
        for kind, values in (("wall", walls[name]), ("cpu", cpus[name])):
            print(f"{name:<40} {kind:<4} min {min(values):.2f}  median "
                  f"{statistics.median(values):.2f}  max {max(values):.2f} s")
    print("(process start included; target < 1 s)")
    print(f"machine load after: {_load()}")


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


if __name__ == "__main__":
    main()
