"""Per-report cost of proofreading (校对) against the render stage it follows.

The same ~500 generated reports as bench_render.py (about 1,000 characters of Chinese
each). Rounds alternate and the fastest round of each counts:

  render:    render_article (the render stage per draft), the baseline;
  proofread: proofread_text over the rendered Markdown (every list word through one
             Aho-Corasick automaton, the privacy and format checks).

The issue's target: a 2,000-report intake spends well under a millisecond per report
on proofreading.

Run: .venv/bin/python bench/bench_proofread.py [--reports 500] [--rounds 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_render import make_reports  # noqa: E402

from pipeline.config import parse_settings  # noqa: E402
from pipeline.proofread import load_lexicon, proofread_text  # noqa: E402
from pipeline.render import make_environment, render_article  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    settings = parse_settings({"paths": {"templates": str(ROOT / "templates")}}, root=ROOT)
    env = make_environment(settings)
    items = make_reports(settings, args.reports)
    articles = [render_article(r, p, env, settings) for r, p in items]
    lexicon = load_lexicon(None)
    findings = sum(len(proofread_text(a.markdown, a.title, lexicon, 32)) for a in articles)
    best_render = best_proof = float("inf")
    for _ in range(args.rounds):
        start = time.perf_counter()
        for report, photos in items:
            render_article(report, photos, env, settings)
        best_render = min(best_render, time.perf_counter() - start)
        start = time.perf_counter()
        for article in articles:
            proofread_text(article.markdown, article.title, lexicon, 32)
        best_proof = min(best_proof, time.perf_counter() - start)
    render_us, proof_us = best_render / len(items) * 1e6, best_proof / len(items) * 1e6
    chars = sum(len(a.markdown) for a in articles) / len(articles)
    print(f"{len(items)} reports, article {chars:.0f} characters on average, "
          f"{findings} findings in all, fastest of {args.rounds} alternating rounds")
    print(f"render_article (baseline): {render_us:8.1f} µs per report")
    print(f"proofread_text:            {proof_us:8.1f} µs per report")
    print(f"ratio: {proof_us / render_us:.2f}x the render stage; "
          f"{proof_us / 1000:.3f} ms per report (target: well under 1 ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
