"""A line chart drawn as inline SVG on the server: no JavaScript, nothing from a CDN.

``line_chart`` is pure; every text in it is escaped, so it can be put into a page as
markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from html import escape

COLOURS = ("#1d4ed8", "#c2410c", "#15803d", "#7e22ce", "#b91c1c")


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[date, int]]


def line_chart(series: Sequence[Series], *, width: int = 640, height: int = 220,
               title: str = "") -> str:
    """An ``<svg>`` element with one polyline per series, day axis and value axis."""
    days = sorted({d for s in series for d, _ in s.points})
    top = max([v for s in series for _, v in s.points] + [1])
    left, right, upper, lower = 48, 12, 20, 28
    plot_w, plot_h = width - left - right, height - upper - lower

    def x(day: date) -> float:
        if len(days) < 2:
            return left + plot_w / 2
        return left + plot_w * (day - days[0]).days / max(1, (days[-1] - days[0]).days)

    def y(value: int) -> float:
        return upper + plot_h * (1 - value / top)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
             f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
             f'aria-label="{escape(title)}">',
             f'<title>{escape(title)}</title>',
             f'<line x1="{left}" y1="{upper + plot_h}" x2="{left + plot_w}" '
             f'y2="{upper + plot_h}" stroke="#9ca3af"/>',
             f'<line x1="{left}" y1="{upper}" x2="{left}" y2="{upper + plot_h}" '
             f'stroke="#9ca3af"/>',
             f'<text x="{left - 6}" y="{upper + 4}" text-anchor="end" font-size="11">{top}</text>',
             f'<text x="{left - 6}" y="{upper + plot_h}" text-anchor="end" '
             f'font-size="11">0</text>']
    for day in days[:: max(1, len(days) // 7)]:
        parts.append(f'<text x="{x(day):.1f}" y="{height - 8}" text-anchor="middle" '
                     f'font-size="11">{day.month}/{day.day}</text>')
    for i, s in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        points = " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in sorted(s.points))
        if points:
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                         f'points="{points}"><title>{escape(s.label)}</title></polyline>')
        parts.append(f'<text x="{left + 8 + 120 * i}" y="{upper - 6}" font-size="12" '
                     f'fill="{colour}">{escape(s.label)}</text>')
    if not days:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" '
                     'font-size="13">暂无数据</text>')
    parts.append("</svg>")
    return "".join(parts)
