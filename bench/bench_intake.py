"""Benchmark: 2,000 generated Chinese reports through the real intake and render path.

Writes 2,000 report files (about 1,000 characters each, lists, bold, links, 1-3
real JPEG photos) into a temporary folder, then runs the same code as
`pipeline submit` — read and validate, store (SQLite, one transaction), copy the
photos under generated names, render, write Markdown and HTML — into a fresh
temporary workspace. In the same process it times the bare libraries (Jinja +
Markdown + css-inline) on the same reports and prints both per draft, and the ratio.

Targets: ratio <= 1.5; the whole 2,000-report intake+render under 10 s on one core.
Run: .venv/bin/python bench/bench_intake.py [--reports 2000]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_render import bare_pipeline, make_reports  # noqa: E402

from pipeline.cli import main as cli_main  # noqa: E402
from pipeline.config import load_settings  # noqa: E402
from pipeline.domain import Report  # noqa: E402
from pipeline.drafts import DraftMaker  # noqa: E402
from pipeline.intake import read_files  # noqa: E402
from pipeline.store import open_store  # noqa: E402
from pipeline.units import sync_units, unit_names  # noqa: E402

UNITS = ["麓谷街道", "雷锋街道", "洋湖国际社区", "物流行业分会", "志愿者分会", "白箬铺村"]


def toml_text(report: Report, photos: list[str], index: int) -> str:
    def q(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    body = report.body.replace('"""', "")
    return "\n".join([
        f"unit = {q(UNITS[index % len(UNITS)])}",
        f"activity_type = {q(report.activity_type)}",
        f"title = {q(report.title[:20] + str(index))}",
        f"start = {q(report.start.strftime('%Y-%m-%d %H:%M'))}",
        f"end = {q(report.end.strftime('%Y-%m-%d %H:%M'))}",
        f"place = {q(report.place)}", f"form = {q(report.form)}",
        f"participants = {report.participants}", f"contact = {q(report.contact)}",
        "links = [" + ", ".join(q(x) for x in report.links) + "]",
        "photos = [" + ", ".join(q(p) for p in photos) + "]",
        f'body = """\n{body}\n"""', ""])


def write_corpus(folder: Path, items: list[tuple[Report, list[str]]]) -> list[Path]:
    photo_dir = folder / "photos"
    photo_dir.mkdir(parents=True)
    rng = random.Random(1)
    pool = []
    for i in range(12):
        name = f"p{i}.jpg"
        Image.new("RGB", (640, 480), (rng.randrange(256), 80, 120)).save(photo_dir / name,
                                                                           quality=80)
        pool.append(f"photos/{name}")
    paths = []
    for i, (report, photos) in enumerate(items):
        chosen = rng.sample(pool, len(photos))
        path = folder / f"r{i:04d}.toml"
        path.write_text(toml_text(report, chosen, i), encoding="utf-8")
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reports", type=int, default=2000)
    args = parser.parse_args()
    # Once on a RAM file system (the code's own cost) and once on the disk (what a
    # user waits for); this machine's disk is shared and its latency varies widely.
    places = [("tmpfs", "/dev/shm")] if Path("/dev/shm").is_dir() else []
    for label, where in [*places, ("disk", str(ROOT / "bench"))]:
        print(f"--- workspace on {label} ({where})")
        run(args.reports, where)


def run(count: int, where: str) -> None:
    with tempfile.TemporaryDirectory(dir=where, prefix=".bench-") as tmp:
        ws = Path(tmp) / "ws"
        cli_main(["init", str(ws)])
        settings = load_settings(ws / "config.toml")
        items = make_reports(settings, count)
        paths = write_corpus(Path(tmp) / "inbox", items)
        store = open_store(f"sqlite:///{ws / 'pipeline.db'}")
        from datetime import datetime
        from zoneinfo import ZoneInfo
        now = datetime(2026, 7, 1, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
        with store.session() as session:
            sync_units(session, settings.units, now)
            names = unit_names(session)

        bare = bare_pipeline(settings)
        for report, photos in items[:20]:
            bare(report, photos)  # warm up compiled templates
        started = time.perf_counter()
        for report, photos in items:
            bare(report, photos)
        bare_s = time.perf_counter() - started

        started = time.perf_counter()
        result = read_files(paths, settings, names, now)
        read_s = time.perf_counter() - started
        with store.session() as session:
            outcome = DraftMaker(settings).submit(session, result.reports, now)
        total_s = time.perf_counter() - started
        store.close()
        n = len(items)
        assert len(outcome.accepted) == n, (len(outcome.accepted), result.rejections[:3])
        print(f"{n} reports, {sum(len(r.body) for r, _ in items) / n:.0f} characters each on "
              "average, 1-3 photos")
        print(f"bare libraries (jinja + markdown + css-inline): {bare_s / n * 1e6:8.0f} µs/draft")
        print(f"pipeline intake+store+render+write:           {total_s / n * 1e6:8.0f} µs/draft "
              f"(of which reading+validating {read_s / n * 1e6:.0f} µs)")
        print(f"ratio: {total_s / bare_s:.2f}x (target <= 1.5x)")
        print(f"whole intake of {n} reports: {total_s:.2f} s, {n / total_s:.0f} drafts/s "
              "(target < 10 s)")


if __name__ == "__main__":
    main()
