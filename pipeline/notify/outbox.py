"""The email outbox: every email is a row first, then a delivery attempt.

``enqueue`` inserts a message unless one with the same key exists (the unique
key is the "send once" guarantee, whoever tries). ``deliver`` claims one due
row at a time (the row locked with SKIP LOCKED on PostgreSQL, then the lifecycle's
conditional move pending -> sending) and commits that claim, talks to the SMTP server
outside any transaction, then commits the result: sent, pending again with backoff, or
failed.

States (``lifecycle.OUTBOX``): pending -> sending -> sent | pending (retry later) | failed.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from importlib import import_module
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from .. import lifecycle
from ..config import Settings
from ..errors import NotifyError, PipelineError
from ..lifecycle import OutboxState
from ..models import OutboxMessage
from ..reads import SessionReader, pending_emails
from ..store import Store
from .reports import DeliveryReport as DeliveryReport  # (at home in reports.py)

if TYPE_CHECKING:  # smtplib, ssl and email load only when a message is sent
    from .mail import Send

log = logging.getLogger(__name__)

PENDING, SENDING, SENT, FAILED = (OutboxState.PENDING, OutboxState.SENDING, OutboxState.SENT,
                                  OutboxState.FAILED)
FIRST_RETRY = timedelta(minutes=1)
MAX_RETRY = timedelta(minutes=60)
GIVE_UP_AFTER = timedelta(hours=24)
BATCH = 100  # messages per run, so one tick never runs for long


def enqueue(session: Session, key: str, kind: str, recipients: Sequence[str], subject: str,
            text: str, html: str, now: datetime, alert_ids: Iterable[int] = ()) -> bool:
    """Add a message unless one with ``key`` exists; True when it is new."""
    values = {"key": key, "kind": kind, "recipients": json.dumps(list(recipients)),
              "subject": subject, "text_body": text, "html_body": html, "state": PENDING,
              "attempts": 0, "created_at": now, "next_attempt_at": now, "last_error": "",
              "alert_ids": json.dumps(sorted(alert_ids))}
    dialect = session.get_bind().dialect.name
    # Imported here: loading the PostgreSQL dialect (and asyncio) at import cost every
    # command on SQLite a tenth of a second (issue 13).
    insert = import_module("sqlalchemy.dialects." + (
        "postgresql" if dialect == "postgresql" else "sqlite")).insert
    statement = insert(OutboxMessage).values(**values).on_conflict_do_nothing(
        index_elements=["key"])
    return bool(session.execute(statement).rowcount)  # type: ignore[attr-defined]


def find(session: Session, key: str) -> OutboxMessage | None:
    return session.exec(select(OutboxMessage).where(OutboxMessage.key == key)).first()


def listing(session: Session, *, include_sent: bool = False, limit: int = 50
            ) -> list[OutboxMessage]:
    """The newest messages, unsent (pending, sending, failed) only unless ``include_sent``."""
    query = select(OutboxMessage)
    if not include_sent:
        query = query.where(OutboxMessage.state != SENT)
    return list(session.exec(query.order_by(col(OutboxMessage.id).desc()).limit(limit)))


def messages_for_alert(session: Session, alert_id: int) -> list[OutboxMessage]:
    """The emails that carry one alert (for showing an alert's delivery state)."""
    rows = session.exec(select(OutboxMessage).where(
        col(OutboxMessage.alert_ids).like(f"%{alert_id}%")))
    return [r for r in rows if alert_id in json.loads(r.alert_ids)]


def backoff(attempts: int, rng: random.Random | None = None) -> timedelta:
    """1, 2, 4 ... 60 minutes after the n-th failed attempt, plus up to 20% jitter.

    The jitter keeps many messages that failed together (server down) from
    all retrying in the same second when it comes back.
    """
    base = min(MAX_RETRY, FIRST_RETRY * (1 << min(max(0, attempts - 1), 10)))
    jitter: float = (rng or random).random()
    return base * (1 + 0.2 * jitter)


def deliver(store: Store, settings: Settings, now: datetime, *, send: Send | None = None
            ) -> DeliveryReport:
    """Send every due message; without an SMTP host (and no ``send``) keep them pending."""
    report = DeliveryReport()
    with store.session() as session:
        _release_stale(session, now, _lease(settings))
        if send is None and not settings.smtp.host:
            report.held = _count_pending(session)
            if report.held:
                log.debug("%s", report.summary())  # every tick: the CLI shows it
            return report
    if send is not None:
        _deliver_all(store, settings, now, send, report)
    else:
        from .mail import SmtpMailer

        with SmtpMailer(settings.smtp) as mailer:
            _deliver_all(store, settings, now, mailer.send, report)
    return report


def _lease(settings: Settings) -> timedelta:
    # Long enough for one send (connect, TLS, login, DATA) to finish or time out.
    return max(timedelta(minutes=10), timedelta(seconds=5 * settings.smtp.timeout))


def _release_stale(session: Session, now: datetime, lease: timedelta) -> None:
    # A row still 'sending' after its lease belongs to a process that died mid-send. SMTP has
    # no idempotency key, so this is the one at-least-once window: if the server had accepted
    # the message before the crash, it goes out again (with the same Message-ID).
    stale = session.exec(select(OutboxMessage.id).where(
        OutboxMessage.state == SENDING, col(OutboxMessage.next_attempt_at) <= now)).all()
    lifecycle.move_all(session, lifecycle.OUTBOX, [i for i in stale if i is not None], "stale",
                       actor="outbox", now=now,
                       where=col(OutboxMessage.next_attempt_at) <= now,
                       values={"next_attempt_at": now,
                               "last_error": "the process sending it stopped; trying again"})


def _count_pending(session: Session) -> int:
    return pending_emails(SessionReader(session))


def _deliver_all(store: Store, settings: Settings, now: datetime, send: Send,
                 report: DeliveryReport) -> None:
    for _ in range(BATCH):
        row = _claim(store, now, _lease(settings))
        if row is None:
            return
        if not _attempt(store, settings, row, now, send, report):
            return  # a transient failure: the server is in trouble, try the rest later


def _claim(store: Store, now: datetime, lease: timedelta) -> OutboxMessage | None:
    """Take the next due message (pending -> sending) in its own committed transaction.

    On PostgreSQL the SELECT locks the row and skips rows another sender has locked (FOR
    UPDATE SKIP LOCKED), so two senders take different messages instead of one waiting
    for the other and finding its row gone; SQLite has no row locks and needs none (BEGIN
    IMMEDIATE serialises writers), so SQLAlchemy leaves the clause out there. The claim
    itself is the lifecycle's conditional move.
    """
    with store.session() as session:
        row = session.exec(select(OutboxMessage)
                           .where(OutboxMessage.state == PENDING,
                                  col(OutboxMessage.next_attempt_at) <= now)
                           .order_by(col(OutboxMessage.next_attempt_at), col(OutboxMessage.id))
                           .limit(1).with_for_update(skip_locked=True)).first()
        if row is not None and lifecycle.try_move(
                session, lifecycle.OUTBOX, row, "claim", actor="outbox", now=now,
                values={"attempts": row.attempts + 1, "next_attempt_at": now + lease}):
            return row
    return None  # nothing due


def _attempt(store: Store, settings: Settings, row: OutboxMessage, now: datetime,
             send: Send, report: DeliveryReport) -> bool:
    """Send one claimed message and record the outcome; False on a transient failure."""
    from .mail import SmtpSessionError, build_message

    recipients = json.loads(row.recipients)
    try:
        message = build_message(sender=settings.smtp.sender, recipients=recipients,
                                subject=row.subject, text=row.text_body, html=row.html_body,
                                now=now, key=row.key)
    except ValueError as exc:  # e.g. a line break in a header: retrying cannot fix it
        _record_failure(store, row, now, f"the message cannot be built: {exc}", True, report)
        return True
    try:
        refused = send(message)
    except NotifyError as exc:
        # A session error (login, TLS) is about the server setup, never this message.
        permanent = exc.permanent and not isinstance(exc, SmtpSessionError)
        _record_failure(store, row, now, str(exc), permanent, report)
        return permanent
    note = "; ".join(f"refused {addr}: {reply}" for addr, reply in refused.items())
    _finish(store, row, SENT, now, sent_at=now, last_error=note)
    report.sent.append(row.key)
    log.info("sent %s email %r to %s", row.kind, row.key, ", ".join(recipients))
    return True


def _record_failure(store: Store, row: OutboxMessage, now: datetime, error: str,
                    permanent: bool, report: DeliveryReport) -> None:
    report.errors.append(f"{row.key}: {error}")
    if permanent or now - row.created_at >= GIVE_UP_AFTER:
        reason = error if permanent else (f"gave up after {row.attempts} attempt(s) over "
                                          f"24 hours: {error}")
        _finish(store, row, FAILED, now, last_error=reason)
        report.failed.append(row.key)
        log.error("email %r failed for good: %s", row.key, reason)
        return
    retry_at = now + backoff(row.attempts)
    _finish(store, row, PENDING, now, next_attempt_at=retry_at, last_error=error)
    report.retrying.append(row.key)
    log.warning("email %r not sent (attempt %d), retrying at %s: %s", row.key, row.attempts,
                retry_at.isoformat(timespec="seconds"), error)


_FINISH: dict[str, str] = {SENT: "sent", FAILED: "give_up", PENDING: "retry"}


def _finish(store: Store, row: OutboxMessage, state: str, now: datetime,
            **values: object) -> None:
    # Fenced by the version of our claim: if our lease ran out and another process
    # re-claimed the row, its outcome is the one that counts.
    with store.session() as session:
        lifecycle.try_move(session, lifecycle.OUTBOX, row, _FINISH[state], actor="outbox",
                           now=now, note=str(values.get("last_error", ""))[:500],
                           values=values)


def resend(session: Session, message_id: int, now: datetime) -> OutboxMessage:
    """Queue a copy of a digest or bulletin email for sending again.

    Raises:
        PipelineError: there is no such message.
    """
    original = session.get(OutboxMessage, message_id)
    if original is None or original.kind not in ("digest", "bulletin"):
        raise PipelineError.coded("notify.no_message", id=message_id)
    key = f"resend:{message_id}:{now.isoformat()}"  # a new key: the outbox dedupes by key
    copy = OutboxMessage(key=key, kind=original.kind, recipients=original.recipients,
                         subject=original.subject, text_body=original.text_body,
                         html_body=original.html_body, created_at=now, next_attempt_at=now)
    session.add(copy)
    session.flush()
    return copy
