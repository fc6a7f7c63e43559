"""The web layer's command-line entries, kept free of heavy imports: FastAPI and
uvicorn load only when a web command actually runs (``commands.py``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def _lazy(name: str) -> Callable[[Any], int]:
    def run(ctx: Any) -> int:
        from . import commands

        return int(getattr(commands, name)(ctx))
    return run


def register(subparsers: Any) -> None:
    """Add ``user add|passwd|disable NAME`` and ``worker`` to the CLI."""
    user = subparsers.add_parser("user", help="editor accounts for the web desk",
                                 description="editor accounts for the web desk")
    actions = user.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    for name, func, text in (("add", "cmd_user_add", "create an editor account"),
                             ("passwd", "cmd_user_passwd", "set a new password")):
        p = actions.add_parser(name, help=text,
                               description=f"{text}; the password is asked for on a terminal, "
                               "else read as one line from standard input")
        p.add_argument("name", help="the editor's login name")
        p.set_defaults(func=_lazy(func))
        if name == "add":
            p.add_argument("--stage", action="append", default=[], metavar="STAGE",
                           help="a review stage this editor signs, as named in [review] "
                           "stages (repeat for several), e.g. --stage 终审")
            p.add_argument("--email", help="where alerts about drafts waiting for this "
                           "editor's stages go")
    p = actions.add_parser("disable", help="turn an editor's account off and end its sessions",
                           description="turn an editor's account off; every session it has "
                           "ends at once ('user passwd' turns it on again)")
    p.add_argument("name", help="the editor's login name")
    p.set_defaults(func=_lazy("cmd_user_disable"))
    worker_parser = subparsers.add_parser(
        "worker", help="run the scheduler only (when the web runs in other processes)",
        description="run the scheduler only (when the web runs in other processes)")
    worker_parser.set_defaults(func=_lazy("worker"), running_clock=True)
    worker_parser.add_argument("--standby", action="store_true",
                               help="when another scheduler runs, wait and take over once "
                               "its heartbeat is older than schedule.lease_seconds")


def add_serve(subparsers: Any) -> None:
    """``pipeline serve``: the web desk, and the scheduler in the same process."""
    text = "serve the web desk and run the scheduler (daily push, sweep, emails)"
    parser: argparse.ArgumentParser = subparsers.add_parser("serve", help=text,
                                                            description=text)
    parser.set_defaults(func=_lazy("serve_web"), running_clock=True)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on")
    parser.add_argument("--no-scheduler", action="store_true",
                        help="serve the web only (run 'pipeline worker' for the scheduler)")
