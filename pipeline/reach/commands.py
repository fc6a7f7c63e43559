"""CLI adapters of the reach stage: print English text or one JSON document; Chinese
content passes through unchanged. No rules live here."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from typing import Any

from ..errors import PipelineError
from .coverage import classify_outlet, unknown_outlets
from .stats import day_bounds, gather_account, gather_articles


def _out(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _num(value: int | None) -> str:
    return "-" if value is None else str(value)


def cmd_stats(ctx: Any) -> int:
    settings, now = ctx.settings, ctx.now()
    today = now.astimezone(settings.tz).date()
    first = today - timedelta(days=ctx.args.days)
    since, until = day_bounds(settings, first, today)
    with ctx.store.session() as session:
        articles = gather_articles(session, settings, since=since, until=until,
                                   unit=ctx.args.unit)
        account = gather_account(session, settings, first, today)
    if ctx.args.json:
        _out({"articles": [a.as_json(settings) for a in articles],
              "account": [d.as_json() for d in account]})
        return 0
    print(f"stories published {first} to {today}: {len(articles)}")
    for a in articles:
        when = a.published_at.astimezone(settings.tz).strftime("%Y-%m-%d") \
            if a.published_at else "-"
        print(f"#{a.id:<6} {when}  reads {_num(a.reads):>6}  readers {_num(a.readers):>6}  "
              f"shares {_num(a.shares):>4}  favourites {_num(a.favorites):>4}  "
              f"likes {_num(a.likes):>4}  {a.unit}  {a.title}")
    for d in account:
        print(f"{d.day}  followers {_num(d.followers)}  new {_num(d.new)}  "
              f"cancelled {_num(d.cancelled)}")
    if not any(a.reads is not None for a in articles):
        print("no read figures yet (the daily fetch runs after reach.fetch_after)")
    return 0


def cmd_reach_fetch(ctx: Any) -> int:
    settings, store = ctx.settings, ctx.store
    from ..publish.wechat import account_client
    from .fetch import enabled, run_fetch

    if not enabled(settings):
        raise PipelineError.coded("reach.nothing_to_fetch")
    with account_client(settings, store) as client:
        assert client is not None
        report = run_fetch(store, settings, client, ctx.now())
    print(report.summary())
    return 0


def cmd_media_unknown(ctx: Any) -> int:
    with ctx.store.session() as session:
        rows = unknown_outlets(session, ctx.settings)
    if ctx.args.json:
        _out([{"key": r.key, "count": r.count, "examples": r.examples, "units": r.units}
              for r in rows])
        return 0
    if not rows:
        print("every reported outlet is classified")
    for r in rows:
        print(f"{r.key}  ({r.count} report(s): {', '.join(r.units)})  e.g. {r.examples[0]}")
    if rows:
        print("classify one with: pipeline media classify KEY --level national|provincial|"
              "city|county|new_media [--outlet NAME]")
    return 0


def cmd_media_classify(ctx: Any) -> int:
    actor = ctx.args.by or os.environ.get("USER") or "editor"
    with ctx.store.session() as session:
        row = classify_outlet(session, ctx.args.key, ctx.args.level, ctx.args.outlet,
                              actor=actor, now=ctx.now())
    print(f"{row.name}: {row.outlet} ({row.level})")
    return 0
