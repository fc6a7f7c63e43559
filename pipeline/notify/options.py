"""The notify stage's command-line entries, kept free of heavy imports: the digest,
bulletin and mail modules load only when one of their commands runs."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .bulletin import IsoWeek


def _lazy(name: str) -> Callable[[Any], int]:
    def run(ctx: Any) -> int:
        if name == "cmd_bulletin":  # a lean start: no database library (bulletincmd.py)
            from .bulletincmd import cmd_bulletin

            return cmd_bulletin(ctx)
        from . import commands

        return int(getattr(commands, name)(ctx))
    return run


def day_argument(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date; write it like 2026-06-18") from None


def week_argument(text: str) -> IsoWeek:
    from ..messages import cli_language, render
    from .bulletin import WeekError, parse_week  # loads only when a week is given

    try:
        return parse_week(text)
    except WeekError as exc:
        raise argparse.ArgumentTypeError(render(exc.code, cli_language(), **exc.params)
                                         ) from None


def address_argument(text: str) -> str:
    from ..config import EMAIL_RE

    if not EMAIL_RE.match(text.strip()):
        raise argparse.ArgumentTypeError(f"{text!r} is not an email address")
    return text.strip()


# --- commands --------------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``digest``, ``bulletin`` and ``mail test`` to the CLI's subcommands."""
    p = subparsers.add_parser("digest", help="the daily digest (print it, or --send it)",
                              description="compose the daily digest for editors and leaders")
    p.set_defaults(func=_lazy("cmd_digest"))
    p.add_argument("--date", type=day_argument, help="the digest's day, like 2026-06-18 "
                   "(default: today)")
    p.add_argument("--send", action="store_true", help="queue it (once per day) and send now")
    p = subparsers.add_parser("bulletin", help="the weekly joint bulletin (write, or --send)",
                              description="write the weekly joint bulletin to "
                              "published/bulletins/ and optionally email it")
    p.set_defaults(func=_lazy("cmd_bulletin"))
    p.add_argument("--week", type=week_argument, help="ISO week like 2026-W25 "
                   "(default: last week)")
    p.add_argument("--send", action="store_true", help="queue it (once per week) for the "
                   "editors, leaders and every unit with an email, and send now")
    p.add_argument("--json", action="store_true", help="print the bulletin's figures as JSON")
    mail = subparsers.add_parser("mail", help="email tools", description="email tools")
    actions = mail.add_subparsers(dest="mail_command", metavar="ACTION", required=True)
    t = actions.add_parser("test", help="send a test message now, not through the outbox",
                           description="send a test message and say clearly what failed")
    t.set_defaults(func=_lazy("cmd_mail_test"))
    t.add_argument("address", type=address_argument, metavar="ADDRESS")
    o = actions.add_parser("outbox", help="list unsent (or --all) emails and their errors",
                           description="list the email outbox: state, attempts, last error")
    o.set_defaults(func=_lazy("cmd_mail_outbox"))
    o.add_argument("--all", action="store_true", help="include sent messages")
    o.add_argument("--limit", type=int, default=50, help="rows to list")
