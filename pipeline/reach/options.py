"""Command-line entries of the reach stage (``stats``, ``reach``, ``media``), kept free of
heavy imports: the stage loads only when one of its commands runs."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def _lazy(name: str) -> Callable[[Any], int]:
    def run(ctx: Any) -> int:
        from . import commands

        return int(getattr(commands, name)(ctx))
    return run


def _days(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 366:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days from 1 to 366")
    return int(text)


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``stats``, ``reach`` and ``media`` to the CLI's subcommands."""
    p = subparsers.add_parser("stats", help="read figures per story and the account's "
                              "followers", description="read, share, favourite and like "
                              "figures of published stories, and followers per day")
    p.set_defaults(func=_lazy("cmd_stats"))
    p.add_argument("--days", type=_days, default=7, help="stories published in the last N "
                   "days, followers of the last N days (default 7)")
    p.add_argument("--unit", help="only this unit's stories")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p = subparsers.add_parser("reach", help="fetch WeChat's analytics now (the scheduler "
                              "does it daily after reach.fetch_after)",
                              description="fetch what is owed from WeChat's analytics now")
    p.set_defaults(func=_lazy("cmd_reach_fetch"))
    m = subparsers.add_parser("media", help="reported coverage: unknown outlets, classify one",
                              description="outlets named in reports' 宣传报道")
    msub = m.add_subparsers(dest="media_command", metavar="ACTION", required=True)
    u = msub.add_parser("unknown", help="outlets no list knows yet",
                        description="outlets no list knows yet, most frequent first")
    u.set_defaults(func=_lazy("cmd_media_unknown"))
    u.add_argument("--json", action="store_true", help="print one JSON document")
    c = msub.add_parser("classify", help="classify an outlet once",
                        description="classify an outlet (a name or a link's host) once")
    c.set_defaults(func=_lazy("cmd_media_classify"))
    c.add_argument("key", help="the name or host as 'media unknown' lists it")
    c.add_argument("--level", required=True,
                   help="national|provincial|city|county|new_media (or 中央/省/市/区县/新媒体)")
    c.add_argument("--outlet", default="", help="the outlet's name (default: the key)")
    c.add_argument("--by", help="editor name (default: $USER)")
