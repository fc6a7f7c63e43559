"""Per-draft cost of the render stage against the bare libraries it is built on.

Generates ~500 Chinese reports of about 1,000 characters (lists, bold, links,
1-3 photos), then times, per draft:

  bare: Jinja render of the same activity template + Markdown conversion (same
        extensions) + css-inline of the result with article.css;
  ours: render_article (adds sanitising, link rewriting, the frame, the final
        pass, digest and limit checks).

Rounds alternate bare/ours and the fastest round of each counts, so that load
from other processes on a shared machine skews the ratio as little as possible.

Run: .venv/bin/python bench/bench_render.py [--reports 500] [--rounds 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import css_inline
import jinja2
import markdown

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.config import Settings, parse_settings  # noqa: E402
from pipeline.domain import Report  # noqa: E402
from pipeline.render import make_environment, render_article  # noqa: E402

TZ = ZoneInfo("Asia/Shanghai")
PHRASES = [
    "为深入贯彻落实禁毒工作部署", "进一步增强辖区群众识毒防毒拒毒意识", "工作人员结合真实案例",
    "详细讲解了新型毒品的伪装形式和危害", "现场群众踊跃提问", "志愿者向过往群众发放宣传资料",
    "营造了全民参与禁毒的浓厚氛围", "活动结束后", "大家纷纷表示受益匪浅", "今后将持续开展",
    "切实筑牢禁毒防线", "引导青少年远离毒品", "社区网格员深入居民家中", "面对面宣传禁毒知识",
]
UNITS = ["城关街道", "幸福社区", "东湖镇", "交通运输行业分会", "新区禁毒办", "石桥村"]


def _sentence(rng: random.Random) -> str:
    parts = rng.sample(PHRASES, rng.randint(2, 4))
    if rng.random() < 0.4:
        parts[rng.randrange(len(parts))] = f"**{parts[0]}**"
    return "，".join(parts) + "。"


def _body(rng: random.Random, size: int = 1000) -> str:
    blocks: list[str] = []
    while sum(map(len, blocks)) < size:
        roll = rng.random()
        if roll < 0.2:
            blocks.append("\n".join(f"- {_sentence(rng)}" for _ in range(rng.randint(2, 4))))
        elif roll < 0.3:
            blocks.append("\n".join(f"{i}. {_sentence(rng)}" for i in range(1, 4)))
        elif roll < 0.4:
            link = f"https://news.example.cn/{rng.randint(1, 9999)}"
            blocks.append(f"{_sentence(rng)}详见[报道]({link})。")
        else:
            blocks.append(_sentence(rng) + _sentence(rng))
    return "\n\n".join(blocks)


def make_reports(settings: Settings, count: int, seed: int = 626
                 ) -> list[tuple[Report, list[str]]]:
    rng = random.Random(seed)
    kinds = list(settings.activity_types)
    start = datetime(2026, 6, 1, 9, 0, tzinfo=TZ)
    reports = []
    for i in range(count):
        begin = start + timedelta(days=i % 30, hours=rng.randint(0, 10))
        unit = rng.choice(UNITS)
        report = Report(
            unit=unit, activity_type=kinds[i % len(kinds)], title=f"{unit}开展禁毒宣传活动",
            start=begin, end=begin + timedelta(hours=2), place="社区党群服务中心",
            form="现场宣讲+发放资料", body=_body(rng), participants=rng.randint(20, 300),
            links=("https://www.toutiao.com/article/1", "区融媒体中心"), contact="王老师")
        photos = [f"photos/{rng.getrandbits(64):016x}.jpg" for _ in range(rng.randint(1, 3))]
        reports.append((report, photos))
    return reports


def bare_pipeline(settings: Settings) -> Callable[[Report, list[str]], str]:
    """Only the three libraries: Jinja, Markdown, css-inline."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(settings.paths.templates),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.globals["period"] = lambda start, end: "2026年6月20日上午"
    md = markdown.Markdown(extensions=["attr_list", "tables", "sane_lists", "nl2br"])
    inliner = css_inline.CSSInliner(keep_style_tags=False, load_remote_stylesheets=False)
    css = (settings.paths.templates / "article.css").read_text(encoding="utf-8")

    def run(report: Report, photos: list[str]) -> str:
        kind = settings.activity_types[report.activity_type]
        text = env.get_template(kind.template).render(
            vars(report) | {"photos": photos, "type_label": kind.label,
                            "activity_type": kind.key, "extra": {}})
        md.reset()
        html = md.convert(text)
        return inliner.inline(f"<html><head><style>{css}</style></head>"
                              f"<body><section class=\"article\">{html}</section></body></html>")
    return run


def _time_round(run: Callable[[Report, list[str]], object],
                items: list[tuple[Report, list[str]]]) -> float:
    """Mean µs per item over one pass through ``items``."""
    began = time.perf_counter()
    for report, photos in items:
        run(report, photos)
    return (time.perf_counter() - began) / len(items) * 1e6


def _compare(bare: Callable[[Report, list[str]], object],
             ours: Callable[[Report, list[str]], object],
             items: list[tuple[Report, list[str]]], rounds: int) -> tuple[float, float]:
    """Fastest round of each, rounds interleaved so load from elsewhere hits both alike."""
    bare_us, ours_us = [], []
    for _ in range(rounds):
        bare_us.append(_time_round(bare, items))
        ours_us.append(_time_round(ours, items))
    return min(bare_us), min(ours_us)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    settings = parse_settings({"paths": {"templates": str(ROOT / "templates")}}, root=ROOT)
    items = make_reports(settings, args.reports)
    env = make_environment(settings)
    bare = bare_pipeline(settings)
    ours = lambda report, photos: render_article(report, photos, env, settings)  # noqa: E731
    _compare(bare, ours, items[:20], 1)  # warm caches and compiled templates
    bare_us, ours_us = _compare(bare, ours, items, args.rounds)
    chars = statistics.mean(len(r.body) for r, _ in items)
    print(f"{len(items)} reports, body {chars:.0f} characters on average, "
          f"fastest of {args.rounds} interleaved rounds")
    print(f"bare libraries (jinja + markdown + css-inline): {bare_us:8.1f} µs per draft")
    print(f"render_article:                                {ours_us:8.1f} µs per draft")
    print(f"ratio: {ours_us / bare_us:.2f}x (target <= 1.5x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
