"""CLI adapters for the notify stage (``digest``, ``bulletin``, ``mail test``) and the
one scheduler hook that runs every notification job on a tick.

No rules live here: each command calls the stage functions and prints English
text; Chinese content passes through unchanged. Exit codes: 0 OK, 1 a
pipeline error or a message that failed, 2 a date, week or address that does
not parse (argparse's own usage error).
"""

from __future__ import annotations

import argparse
import json
import logging
from datetime import datetime
from typing import Protocol

from ..config import Settings
from ..errors import PipelineError, StoreError
from ..store import Store
from . import outbox
from .alerts import deliver_alerts
from .bulletin import bulletin_due
from .bulletincmd import report_delivery
from .digest import digest_due, send_digest
from .mail import SmtpMailer, build_message
from .roundup import roundup_due

log = logging.getLogger(__name__)


class CommandContext(Protocol):
    """What ``pipeline.cli.Context`` gives every command."""

    @property
    def args(self) -> argparse.Namespace: ...

    @property
    def settings(self) -> Settings: ...

    @property
    def store(self) -> Store: ...

    def now(self) -> datetime: ...


# --- argument types (a bad value is argparse's usage error: a sentence and exit 2) ----------

def cmd_digest(ctx: CommandContext) -> int:
    settings, now = ctx.settings, ctx.now()
    day = ctx.args.date or now.astimezone(settings.tz).date()
    outcome = send_digest(ctx.store, settings, day, now, send=ctx.args.send)
    if not ctx.args.send:
        print(f"Subject: {outcome.subject}\n")
        print(outcome.text, end="" if outcome.text.endswith("\n") else "\n")
        print(f"digest for {day}: not sent (add --send to email it to "
              f"{len(outcome.recipients)} recipient(s))")
        return 0
    if outcome.existing is not None:
        print(f"the digest for {day} is already in the outbox ({outcome.existing}); "
              "not queued again")
    else:
        print(f"digest for {day} queued for {', '.join(outcome.recipients)}")
    return report_delivery(outcome.delivery, outcome.key)


def cmd_mail_test(ctx: CommandContext) -> int:
    """Send one message directly (not through the outbox) and say what failed.

    Raises:
        NotifyError: with the server's answer or the connection problem.
    """
    settings, now = ctx.settings, ctx.now()
    smtp = settings.smtp
    if not smtp.host:
        raise PipelineError.coded("notify.no_smtp")
    address = ctx.args.address
    message = build_message(
        sender=smtp.sender, recipients=[address], now=now,
        subject=f"【{settings.account.name}】邮件发送测试",
        text=f"这是一封测试邮件。\n\n发送服务器：{smtp.host}:{smtp.port}（{smtp.security}）\n"
             f"发送时间：{now.astimezone(settings.tz):%Y-%m-%d %H:%M}\n\n"
             "收到此邮件说明提醒邮件可以正常发送。\n",
        html="")
    with SmtpMailer(smtp) as mailer:
        refused = mailer.send(message)
    if refused:
        print(f"the server accepted the message but refused {address}: {refused[address]}")
        return 1
    login = f", logged in as {smtp.username}" if smtp.username else ""
    print(f"sent a test message to {address} through {smtp.host}:{smtp.port} "
          f"({smtp.security}{login})")
    return 0


def cmd_mail_outbox(ctx: CommandContext) -> int:
    settings = ctx.settings
    with ctx.store.session() as session:
        rows = outbox.listing(session, include_sent=ctx.args.all, limit=ctx.args.limit)
    if not rows:
        print("the outbox is empty" if ctx.args.all else "no unsent email in the outbox")
    for row in rows:
        when = (row.sent_at or row.next_attempt_at).astimezone(settings.tz)
        error = f"  ({row.last_error})" if row.last_error else ""
        print(f"#{row.id:<5} {row.state:<8} {row.attempts} attempt(s)  {when:%Y-%m-%d %H:%M}  "
              f"{row.kind:<8} {', '.join(json.loads(row.recipients))}  {row.subject}{error}")
    return 0


# --- scheduler hook --------------------------------------------------------------------------

def notify_tick(store: Store, settings: Settings, now: datetime) -> None:
    """Every notification job for one scheduler tick; one failing job never stops the
    others, and nothing here raises (the next tick tries again)."""
    jobs = (("alerts", lambda: deliver_alerts(store, settings, now).summary()),
            ("digest", lambda: digest_due(store, settings, now)),
            ("bulletin", lambda: bulletin_due(store, settings, now)),
            ("round-up", lambda: roundup_due(store, settings, now)))
    for name, job in jobs:
        try:
            log.debug("notify %s: %s", name, job())
        except StoreError:
            raise  # the database is gone: the tick says so once, not once per job
        except PipelineError as exc:
            log.error("notify %s failed: %s", name, exc)

