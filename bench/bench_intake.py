"""Benchmark: `pipeline submit` of 2,000 reports as a whole process, against the bare
libraries as a whole process, on the same files in a workspace on disk.

1. Writes 2,000 generated Chinese JSON reports (about 1,000 characters of body each:
   lists, bold, links) into a folder on disk.
2. Runs, alternately, ``bench/bare_chain.py`` (Python-Markdown + a Jinja page +
   css-inline, writing each article's Markdown and HTML) and ``pipeline submit`` of all
   the files into a fresh copy of a workspace (its database already created, so the
   one-time migration is not counted), ``--runs`` times each: as configured by default
   (render workers, one per CPU, see pipeline/render/pool.py) and with
   ``parallel_render = false`` (one process). Prints wall and CPU time (CPU of all the
   processes), min/median/max, and pipeline/bare. Proofreading is on (it always is).
3. The same batch into a copy of a workspace that already holds 100,000 drafts: the
   cost per report must stay within 10 % of the empty database's.
4. ``pipeline --help``, ``pipeline queue`` and ``pipeline check`` over those 100,000
   drafts as whole processes (wall and CPU, with the machine's load), the two commands
   also through their normal path (``PIPELINE_LEAN=0``: SQLAlchemy, SQLModel, our tables),
   next to Python's bare start and the import of SQLModel and our tables; then the largest
   entries of ``python -X importtime`` for each; with ``--callgrind``, the instructions
   each executes (a measure the machine's load does not change).
5. Markdown conversion alone with Python-Markdown (the design card's library) and with
   markdown-it-py, the fastest pure-Python alternative, on the same article texts.

Targets: submit <= 1.5x the bare chain; 100,000 drafts within 10 %; queue and check
< 0.3 s, --help < 0.15 s on a quiet machine. ``--pelican PATH`` also times a Pelican
installed outside the repository (a throwaway venv) on the same texts.
Run: .venv/bin/python bench/bench_intake.py [--reports 2000] [--runs 5] [--drafts 100000]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_queries import populate  # noqa: E402
from bench_render import _body  # noqa: E402

from pipeline.render.pool import cpus  # noqa: E402

PYTHON = sys.executable
PIPELINE = [PYTHON, "-m", "pipeline"]
NOW = "2026-07-01T09:00+08:00"
UNITS = ["麓谷街道", "雷锋街道", "洋湖国际社区", "物流行业分会", "志愿者分会", "白箬铺村"]
KINDS = ["film", "lecture", "exhibition", "base_visit", "training", "volunteer",
         "hardship_visit", "household_meeting", "quiz", "other"]


def write_reports(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True)
    rng = random.Random(626)
    paths = []
    for i in range(count):
        hour = 8 + rng.randint(0, 8)
        report = {"unit": UNITS[i % len(UNITS)], "activity_type": KINDS[i % len(KINDS)],
                  "title": f"{UNITS[i % len(UNITS)]}开展禁毒宣传活动{i}",
                  "time": f"2026-06-{1 + i % 28:02d} {hour:02d}:00-{hour + 2:02d}:00",
                  "place": "社区党群服务中心", "form": "现场宣讲+发放资料",
                  "participants": rng.randint(20, 300), "body": _body(rng),
                  "links": ["https://www.toutiao.com/article/1", "区融媒体中心"],
                  "contact": "王老师"}
        path = folder / f"r{i:04d}.json"
        path.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
        paths.append(path)
    return paths


def timed(argv: Sequence[str], **kw: object) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, **kw)  # type: ignore[call-overload]
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def spread(values: Sequence[float]) -> str:
    return (f"min {min(values):6.2f}  median {statistics.median(values):6.2f}  "
            f"max {max(values):6.2f}")


def make_workspace(path: Path, drafts: int = 0) -> None:
    """A workspace with its database created (and ``drafts`` old drafts in it)."""
    subprocess.run([*PIPELINE, "init", str(path)], check=True, stdout=subprocess.DEVNULL)
    if drafts:
        populate(f"sqlite:///{path / 'pipeline.db'}", path / "config.toml", drafts)
    else:
        subprocess.run([*PIPELINE, "--config", str(path / "config.toml"), "units"], check=True,
                       stdout=subprocess.DEVNULL)


def submit(template: Path, target: Path, paths: list[Path]) -> tuple[float, float]:
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(template, target)
    return timed([*PIPELINE, "--config", str(target / "config.toml"), "--now", NOW,
                  "submit", *map(str, paths)], cwd=target)


def compare(tmp: Path, paths: list[Path], runs: int, pelican: list[str] | None = None
            ) -> dict[str, list[float]]:
    """The bare chain, ``pipeline submit`` (render workers on, as configured by default)
    and ``pipeline submit`` with ``parallel_render = false`` (one process does it all),
    interleaved so load from elsewhere hits all three alike."""
    empty, alone = tmp / "empty", tmp / "alone"
    make_workspace(empty)
    shutil.copytree(empty, alone)
    config = alone / "config.toml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        "parallel_render = true", "parallel_render = false"), encoding="utf-8")
    names = {"bare": "bare chain", "ours": "pipeline submit", "alone": "submit, 1 process"}
    if pelican:
        names["pelican"] = "Pelican"
    results: dict[str, list[float]] = {f"{k} {m}": [] for k in names for m in ("wall", "cpu")}
    for _ in range(runs):
        out = tmp / "bare-out"
        shutil.rmtree(out, ignore_errors=True)
        measured = {"bare": timed([PYTHON, str(ROOT / "bench" / "bare_chain.py"),
                                   str(empty / "templates"), str(out), *map(str, paths)]),
                    "ours": submit(empty, tmp / "run", paths),
                    "alone": submit(alone, tmp / "run", paths)}
        if pelican:
            shutil.rmtree(tmp / "pelican" / "output", ignore_errors=True)
            measured["pelican"] = timed(pelican)
        for key, (wall, cpu) in measured.items():
            results[f"{key} wall"].append(wall)
            results[f"{key} cpu"].append(cpu)
    n = len(paths)
    print(f"--- {n} reports, whole processes, workspace on disk ({tmp}), {runs} runs each, "
          f"{cpus()} CPUs, machine load {_load()}")
    for key, name in names.items():
        for kind in ("wall", "cpu"):
            print(f"{name:<18}{kind:<5} s: {spread(results[f'{key} {kind}'])}")
    for key in ("ours", "alone"):
        for kind in ("wall", "cpu"):
            ratios = [o / b for o, b in zip(results[f"{key} {kind}"], results[f"bare {kind}"],
                                            strict=True)]
            goal = "  (target <= 1.5)" if kind == "wall" and key == "ours" else ""
            print(f"{names[key] + '/bare':<24} {kind:<4}: {spread(ratios)}{goal}")
    if pelican:
        ratios = [p / o for p, o in zip(results["pelican wall"], results["ours wall"],
                                        strict=True)]
        print(f"Pelican/pipeline submit wall: {spread(ratios)}  (Pelican: "
              f"{statistics.median(results['pelican wall']) / n * 1e3:.2f} ms per article)")
    best = statistics.median(results["ours wall"])
    print(f"pipeline submit: {n / best:.0f} reports/s, {best / n * 1e3:.2f} ms per report "
          f"(median wall, process start included; CPU of all its processes "
          f"{statistics.median(results['ours cpu']) / n * 1e3:.2f} ms per report)")
    return results


def big_database(tmp: Path, paths: list[Path], drafts: int, runs: int,
                 empty_cpu: list[float]) -> Path:
    big = tmp / "big"
    started = time.perf_counter()
    make_workspace(big, drafts)
    print(f"--- the same batch into a database holding {drafts:,} drafts "
          f"(built in {time.perf_counter() - started:.0f} s)")
    cpus, walls = [], []
    for _ in range(runs):
        wall, cpu = submit(big, tmp / "run", paths)
        walls.append(wall)
        cpus.append(cpu)
    n = len(paths)
    small, large = statistics.median(empty_cpu) / n, statistics.median(cpus) / n
    print(f"cpu per report: empty {small * 1e3:.2f} ms, {drafts:,} drafts {large * 1e3:.2f} ms "
          f"-> {large / small:.2f}x (target within 10 %); wall {spread(walls)} s")
    return big


def commands(big: Path, runs: int, callgrind: bool) -> None:
    """The short commands as whole processes: the lean start (``pipeline/lean.py``) and,
    for comparison, the normal path (``PIPELINE_LEAN=0``), next to Python's own start."""
    print(f"--- whole processes over the database with many drafts ({runs} runs each, "
          f"interleaved; machine load {_load()})")
    env = dict(os.environ)
    config = ["--config", str(big / "config.toml"), "--now", "2026-06-20T20:00+08:00"]
    pipeline = [str(Path(PYTHON).parent / "pipeline")]
    pipeline = pipeline if Path(pipeline[0]).exists() else PIPELINE
    subprocess.run([*pipeline, *config, "check"], check=True, env=env, cwd=big,
                   stdout=subprocess.DEVNULL)  # the first sweep records its alerts
    normal = {**env, "PIPELINE_LEAN": "0"}
    checks = {"python -c pass (floor)": ([PYTHON, "-c", "pass"], None, env),
              "import sqlmodel + our tables": ([PYTHON, "-c", "import pipeline.models"], None,
                                               env),
              "pipeline --help": ([*pipeline, "--help"], 0.15, env),
              "pipeline queue": ([*pipeline, *config, "queue"], 0.3, env),
              "pipeline check": ([*pipeline, *config, "check"], 0.3, env),
              "queue, normal path": ([*pipeline, *config, "queue"], None, normal),
              "check, normal path": ([*pipeline, *config, "check"], None, normal)}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in checks}
    for _ in range(runs):
        for name, (argv, _target, environ) in checks.items():
            results[name].append(timed(argv, env=environ, cwd=big))
    for name, (_argv, target, _env) in checks.items():
        goal = f"  (target < {target} s)" if target else ""
        print(f"{name:<30} wall {spread([w for w, _ in results[name]])} s{goal}")
        print(f"{'':<30} cpu  {spread([c for _, c in results[name]])} s")
    print(f"machine load after: {_load()}")
    for command in ("queue", "check"):
        out = subprocess.run([PYTHON, "-X", "importtime", "-m", "pipeline", *config, command],
                             env=env, cwd=big, capture_output=True, text=True, check=True)
        rows = []
        for line in out.stderr.splitlines():
            parts = line.split("|")
            if len(parts) == 3 and parts[1].strip().isdigit():
                rows.append((int(parts[1]), parts[2].rstrip()))
        names = {module.strip().split(".")[0] for _, module in rows}
        libraries = sorted(names & {"sqlalchemy", "sqlmodel", "pydantic", "alembic", "psycopg",
                                    "jinja2", "markdown", "PIL", "openpyxl", "nh3"})
        print(f"python -X importtime: pipeline {command}, {len(rows)} modules, 12 largest "
              f"cumulative (µs); of the heavy libraries: {', '.join(libraries) or 'none'}")
        for micros, module in sorted(rows, reverse=True)[:12]:
            print(f"  {micros:8d}  {module.strip()}")
    if callgrind:
        print("--- instructions executed (callgrind), independent of the machine's load")
        for name in ("python -c pass (floor)", "pipeline queue", "pipeline check",
                     "queue, normal path", "check, normal path"):
            argv, _target, environ = checks[name]
            print(f"{name:<30} {instructions(argv, environ, big) / 1e6:8.0f} M")


def instructions(argv: Sequence[str], env: dict[str, str], cwd: Path) -> int:
    """Instructions one process executes, counted by valgrind's callgrind."""
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                          *argv], env=env, cwd=cwd, capture_output=True, text=True, check=True)
    found = [line for line in out.stderr.splitlines() if "Collected" in line]
    return int(found[-1].split()[-1])


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def markdown_libraries(paths: list[Path], template: Path) -> None:
    """Python-Markdown (kept) against markdown-it-py on the same article Markdown."""
    import markdown

    from pipeline.config import load_settings
    from pipeline.domain import Report
    from pipeline.render import make_environment
    from pipeline.render.templates import compose_markdown

    settings = load_settings(template / "config.toml")
    env = make_environment(settings)
    from datetime import datetime

    texts = []
    for path in paths:
        raw = json.loads(path.read_text(encoding="utf-8"))
        start, _, end = raw["time"].rpartition("-")
        begin = datetime.fromisoformat(f"{start}+08:00")
        report = Report(unit=raw["unit"], activity_type=raw["activity_type"],
                        title=raw["title"], start=begin,
                        end=begin.replace(hour=int(end[:2])), place=raw["place"],
                        form=raw["form"], body=raw["body"], participants=raw["participants"])
        texts.append(compose_markdown(report, [], env, settings)[0])
    md = markdown.Markdown(extensions=["attr_list", "tables", "sane_lists", "nl2br"])

    def python_markdown() -> None:
        for text in texts:
            md.reset()
            md.convert(text)
    timings = {"Python-Markdown (kept)": python_markdown}
    try:
        from markdown_it import MarkdownIt

        it = MarkdownIt("commonmark", {"breaks": True}).enable("table")
        timings["markdown-it-py"] = lambda: [it.render(text) for text in texts]  # type: ignore[assignment,misc]
    except ImportError:
        print("(markdown-it-py is not installed: only Python-Markdown timed)")
    print(f"--- Markdown conversion alone, {len(texts)} articles, fastest of 3")
    for name, func in timings.items():
        best = min(_seconds(func) for _ in range(3))
        print(f"{name:<24} {best / len(texts) * 1e6:7.0f} µs per article")


def _seconds(func: object) -> float:
    started = time.perf_counter()
    func()  # type: ignore[operator]
    return time.perf_counter() - started


def pelican_command(binary: Path, tmp: Path, paths: list[Path]) -> list[str]:
    """Pelican (installed outside the repository) on the same texts, as Markdown posts:
    its command line, after writing its content folder and settings."""
    content = tmp / "pelican" / "content"
    content.mkdir(parents=True)
    for i, path in enumerate(paths):
        raw = json.loads(path.read_text(encoding="utf-8"))
        day = raw["time"].split()[0]
        (content / f"a{i:04d}.md").write_text(
            f"Title: {raw['title']}\nDate: {day} 09:00\nCategory: 动态\nSlug: a{i:04d}\n\n"
            f"{raw['body']}\n", encoding="utf-8")
    settings = tmp / "pelican" / "pelicanconf.py"
    settings.write_text("SITENAME = 'bench'\nTIMEZONE = 'Asia/Shanghai'\n"
                        "FEED_ALL_ATOM = None\nCATEGORY_FEED_ATOM = None\n", encoding="utf-8")
    return [str(binary), str(content), "-o", str(tmp / "pelican" / "output"), "-s",
            str(settings), "-q"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--drafts", type=int, default=100_000)
    parser.add_argument("--pelican", type=Path, help="a pelican executable (throwaway venv)")
    parser.add_argument("--submit-only", action="store_true",
                        help="only the batch against the bare chain (and Pelican)")
    parser.add_argument("--callgrind", action="store_true",
                        help="also count the short commands' instructions (valgrind; slow)")
    parser.add_argument("--commands-only", type=Path, metavar="WORKSPACE",
                        help="only the whole-process timings of the short commands, over an "
                        "existing workspace with many drafts (like one this script built)")
    args = parser.parse_args()
    os.environ.pop("DATABASE_URL", None)  # each workspace's own SQLite file
    compileall.compile_dir(ROOT / "pipeline", quiet=1)  # as an installation has it
    if args.commands_only:
        commands(args.commands_only, args.runs, args.callgrind)
        return
    with tempfile.TemporaryDirectory(dir=ROOT / "bench", prefix=".bench-") as name:
        tmp = Path(name)
        paths = write_reports(tmp / "inbox", args.reports)
        command = pelican_command(args.pelican, tmp, paths) if args.pelican else None
        results = compare(tmp, paths, args.runs, command)
        if args.submit_only:
            return
        markdown_libraries(paths[:500], tmp / "empty")
        big = big_database(tmp, paths, args.drafts, max(3, args.runs // 2), results["ours cpu"])
        commands(big, args.runs, args.callgrind)


if __name__ == "__main__":
    main()
