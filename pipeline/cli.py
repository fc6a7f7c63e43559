"""The command line: argument parsing and the error-to-exit-code boundary.

Each command loads the settings, opens the store and calls the stage functions
(see ``commands.py``). Exit codes: 0 OK, 1 a pipeline error or any rejected item,
2 a usage error (argparse's own).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import __version__, clihelp
from .clihelp import Parser
from .errors import PipelineError
from .messages import cli_language
from .notify.options import register as register_notify_commands
from .reach.options import register as register_reach_commands
from .web.options import add_serve as add_web_serve
from .web.options import register as register_web_commands

if TYPE_CHECKING:
    # A command imports what it needs when it runs: `pipeline --help` loads no database
    # library, and `queue`/`check` no intake, render or web code (bench/bench_intake.py).
    from .clock import Clock
    from .config import Settings
    from .store import Store

log = logging.getLogger("pipeline")


class Context:
    """What every command gets: settings, store and the clock, opened lazily."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self._now = _parse_now(args.now)
        self._clock: Clock | None = None
        self._settings: Settings | None = None
        self._store: Store | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from .config import load_settings

            self._settings = load_settings(self.args.config)
        return self._settings

    @property
    def store(self) -> Store:
        if self._store is None:
            from .store import open_store

            settings = self.settings  # a broken config stops us before the database
            self._store = open_store(settings.database_url, pool=settings.database)
            _sync_units(self._store, settings, self.now())
        return self._store

    @property
    def clock(self) -> Clock:
        if self._clock is None:
            from .clock import Clock

            start = self._now
            if start is not None and start.tzinfo is None:
                start = start.replace(tzinfo=self.settings.tz)  # read in the account's zone
            self._clock = Clock(start, running=getattr(self.args, "running_clock", False))
        return self._clock

    def now(self) -> datetime:
        return self.clock.now()

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def _sync_units(store: Store, settings: Settings, now: datetime) -> None:
    # Processes started together on a fresh database insert the configured units at the
    # same moment: the loser of a unique name finds them there on its next try.
    from sqlalchemy.exc import IntegrityError

    from .units import sync_units

    for attempt in range(3):
        try:
            with store.session() as session:
                sync_units(session, settings.units, now)
            return
        except IntegrityError:
            if attempt == 2:
                raise


def _parse_now(text: str | None) -> datetime | None:
    text = text or os.environ.get("PIPELINE_NOW") or None
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--now {text!r} is not an ISO 8601 time like 2026-06-20T20:00+08:00") from None


# --- parser --------------------------------------------------------------------------------

# Commands whose module loads no database library at import (readcmds.py: the lean
# start of queue, check and push --dry-run; submitcmd.py: render workers start before
# the store loads).
_LEAN = {"cmd_queue", "cmd_check", "cmd_push"}


class _Commands:
    """``c.cmd_submit`` is a function that imports ``commands`` only when it runs."""

    def __getattr__(self, name: str) -> Callable[[Context], int]:
        def run(ctx: Context) -> int:
            if name in _LEAN:
                from . import readcmds as module
            elif name == "cmd_submit":
                from . import submitcmd as module  # type: ignore[no-redef]
            else:
                from . import commands as module  # type: ignore[no-redef]
            return int(getattr(module, name)(ctx))
        return run

    @staticmethod
    def _transition(action: str) -> Callable[[Context], int]:
        def run(ctx: Context) -> int:
            from . import commands

            return int(commands._transition(action)(ctx))
        return run


c: Any = _Commands()


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="pipeline")
    parser.add_argument("--config", default="config.toml",
                        help="the workspace's config.toml (default: ./config.toml)")
    parser.add_argument("--now", help="pretend it is this time, for trying things out "
                        "(like 2026-06-27T10:00+08:00; also PIPELINE_NOW)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable[[Context], int], help_text: str,
            json_flag: bool = False, **extra: Any) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, **extra)
        p.set_defaults(func=func)
        if json_flag:
            p.add_argument("--json", action="store_true", help="print one JSON document")
        return p

    add("init", c.cmd_init, "create a new workspace").add_argument(
        "dir", help="the new workspace's folder")
    add("migrate", c.cmd_migrate, "bring the database schema up to date and exit (safe to "
        "run from several processes at once)")
    add("submit", c.cmd_submit, "submit report files (.toml .json .md .csv .xlsx)",
        True, late_epilog=_fields_help).add_argument(
        "files", nargs="+", metavar="FILE", help="report files or ledgers")
    p = add("queue", c.cmd_queue, "drafts waiting for an editor, earliest deadline first", True)
    p.add_argument("--all", action="store_true", help="every unfinished draft")
    p.add_argument("--limit", type=int, default=None,
                   help="rows to list (0: all; default 200, and all with --json); with "
                   "--json, a page: {items, total, limit, offset, next}")
    p.add_argument("--offset", type=int, default=0, help="skip this many rows (paging)")
    p.add_argument("--for", dest="signer", metavar="NAME",
                   help="only drafts waiting at a review stage NAME may sign")
    add("show", c.cmd_show, "one draft in full", True).add_argument(
        "id", type=int, help="the draft's number (from submit or queue)")
    for name, action, note_help in (("approve", "approve", "optional note"),
                                    ("reject", "reject", "why (required)"),
                                    ("request-changes", "request_changes",
                                     "what to change (required)")):
        p = add(name, c._transition(action), f"{name.replace('-', ' ')} a draft")
        p.add_argument("id", type=int, help="the draft's number")
        p.add_argument("--by", help="editor name (default: $USER)")
        p.add_argument("--note", required=action != "approve", help=note_help)
        if action == "approve":
            p.add_argument("--confirm-findings", action="store_true",
                           help="confirm the open privacy and banned-word proofreading findings")
            p.add_argument("--stage", help="the review stage you mean to sign; if someone "
                           "signed it first you are told who (default: the open stage)")
    add("proofread", c.cmd_proofread, "proofread a draft again and print its findings",
        True).add_argument("id", type=int)
    p = add("withdraw", c.cmd_withdraw, "take a story out of a push that has not gone out yet")
    p.add_argument("id", type=int)
    p.add_argument("--by", help="editor name (default: $USER)")
    p.add_argument("--note", required=True, help="why")
    p = add("edit", c.cmd_edit, "edit a draft's Markdown in $EDITOR and re-render it")
    p.add_argument("id", type=int)
    p.add_argument("--by", help="editor name (default: $USER)")
    p = add("push", c.cmd_push, "the daily push, now", True)
    p.add_argument("--dry-run", action="store_true", help="show the pack; change nothing")
    add("check", c.cmd_check, "the deadline sweep: flag due-soon and overdue stories", True)
    p = add("release", c.cmd_release, "a push that needs a person did NOT go out (checked "
            "in the WeChat console): its stories go with the next push")
    p.add_argument("date", help="the push's local date, like 2026-06-20")
    p.add_argument("--by", help="editor name (default: $USER)")
    add("confirm-sent", c.cmd_confirm_sent, "confirm that the day's push was sent from the "
        "WeChat console (draftbox mode, or a push that needs a person)").add_argument(
        "date", help="the push's local date, like 2026-06-20")
    w = add("wechat", c.cmd_wechat_check, "WeChat account tools")
    wsub = w.add_subparsers(dest="wechat_command", metavar="ACTION", required=True)
    wsub.add_parser("check", help="verify the credentials and the IP whitelist",
                    description="verify the credentials and the IP whitelist").set_defaults(
        func=c.cmd_wechat_check)
    add_web_serve(sub)
    p = add("units", c.cmd_units, "the unit tree with counts; add or import units", True)
    units_sub = p.add_subparsers(dest="units_command", metavar="ACTION")
    a = units_sub.add_parser("add", help="add one unit", description="add one unit")
    a.set_defaults(func=c.cmd_units_add)
    a.add_argument("name")
    a.add_argument("--level", required=True, help="district|street|branch|community")
    a.add_argument("--parent", help="parent unit name")
    a.add_argument("--email", help="contact email")
    i = units_sub.add_parser("import", help="import units from .csv/.xlsx",
                             description="import units from .csv/.xlsx "
                             "(columns 名称/name, 级别/level, 上级/parent, 邮箱/email)")
    i.set_defaults(func=c.cmd_units_import)
    i.add_argument("file")
    register_notify_commands(sub)
    register_reach_commands(sub)
    register_web_commands(sub)
    clihelp.apply(parser)
    return parser


def _fields_help() -> str:
    from .intake.unknown import fields_help  # the intake stage loads only when asked

    return fields_help()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    if not args.verbose:  # migrations and the scheduler narrate every step at INFO
        for name in ("alembic", "apscheduler"):
            logging.getLogger(name).setLevel(logging.WARNING)
    try:
        ctx = Context(args)
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    try:
        return int(args.func(ctx))
    except PipelineError as exc:
        if args.debug:
            raise
        language = cli_language()
        print(f"{'错误' if language == 'zh_CN' else 'error'}: {exc.text(language)}",
              file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`pipeline queue | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        ctx.close()


