"""Claiming and running the day's push, missed days, and the catch-up on every tick."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from .. import faults, lifecycle
from ..alerts import record_alert
from ..config import Settings
from ..deadlines import push_time_on
from ..messages import Coded
from ..models import Publication, Push, WeChatJob
from ..publish import wechat
from ..store import Store
from .channel import delete_drafts, deliver, release_deferred, watch_published
from .plan import (
    EMPTY,
    MISSED,
    RUNNING,
    PackedArticle,
    PushReport,
    local_date,
    plan,
    push_row,
)
from .record import existing_report
from .regime import close_empty_days, warn_if_empty

if TYPE_CHECKING:
    from ..wechat.client import WeChatClient

log = logging.getLogger(__name__)


def record_missed_days(session: Session, settings: Settings, now: datetime) -> list[date]:
    """Record every day since the last push whose push time passed without a push, and
    every earlier day whose push found nothing (a break, 断更)."""
    close_empty_days(session, settings, now)
    last = session.exec(select(sa.func.max(Push.local_date))
                        .where(Push.account == settings.account.key)).one()
    if last is None:
        return []  # nothing was owed before the first push ever
    missed = []
    day = last + timedelta(days=1)
    while day < local_date(now, settings) and push_time_on(day, settings) < now:
        try:
            with session.begin_nested():
                row = Push(account=settings.account.key, local_date=day, state=MISSED,
                           started_at=now, note="the scheduler was not running at push time")
                session.add(row)
                session.flush()
                lifecycle.record_created(session, lifecycle.PUSH, row.id or 0, "missed",
                                         state=MISSED, actor="scheduler", now=now,
                                         note=row.note)
        except IntegrityError:
            day += timedelta(days=1)  # another process recorded this day just now
            continue
        record_alert(session, f"push_missed:{day}", "push_missed", now,
                     recipients=settings.notify.editors,
                     detail=Coded("push.missed", date=str(day)))
        missed.append(day)
        day += timedelta(days=1)
    return missed


def run_push(store: Store, settings: Settings, now: datetime, *, dry_run: bool = False
             ) -> PushReport:
    """The daily push, now: claim the day's slot, publish, and record the result."""
    day = local_date(now, settings)
    if dry_run:
        with store.session() as session:
            chosen, left = plan(session, settings, now)
            row = push_row(session, settings, day)
        done = lifecycle.push_taken(row.state if row else None)
        return PushReport(day, already_done=done, dry_run=True, articles=chosen, left_over=left)
    with wechat.account_client(settings, store) as client:
        with store.session() as session:
            missed = record_missed_days(session, settings, now)
        report = claim(store, settings, now, day, client)
        report.missed_days = missed
        faults.crash_point("after_push_claimed")
        if not report.already_done and not report.lost_race and report.articles:
            deliver(store, settings, now, report, client)
    return report


def claim(store: Store, settings: Settings, now: datetime, day: date,
          client: WeChatClient | None) -> PushReport:
    """Insert the day's push row and claim its stories in one transaction."""
    try:
        with store.session() as session:
            row = push_row(session, settings, day)
            if row is not None and lifecycle.push_taken(row.state):
                return existing_report(session, settings, row, now)
            stray = release_deferred(session, settings, day, now)
            chosen, left = plan(session, settings, now)
            row = _open_day(session, settings, row, day, bool(chosen), now)
            claim_stories(session, row, chosen, now)
            if client is not None and chosen:
                session.add(WeChatJob(push_id=row.id or 0, mode=settings.wechat.mode,
                                      state=wechat.QUEUED, created_at=now, updated_at=now))
        delete_drafts(client, stray)
        return PushReport(day, articles=chosen, left_over=left, claimed=True,
                          message="" if chosen else "nothing is approved for today's push")
    except IntegrityError:
        # Another process claimed the same slot or story at the same moment: it wins and
        # publishes; this one only skips (should the winner die, a tick resumes the push).
        log.info("the push of %s was claimed by another process just now; skipping", day)
        with store.session() as session:
            row = push_row(session, settings, day)
            assert row is not None
            report = existing_report(session, settings, row, now)
        report.lost_race = True
        report.message = Coded("push.claimed_elsewhere")
        return report


def _open_day(session: Session, settings: Settings, row: Push | None, day: date,
              chosen: bool, now: datetime) -> Push:
    """The day's push row, running when there is something to push. Nothing to push
    leaves the day open (empty) until its end, also after push time: a story approved
    later that day can still go out (issue 10); ``close_empty_days`` records the break."""
    state = RUNNING if chosen else EMPTY
    if row is None:
        row = Push(account=settings.account.key, local_date=day, started_at=now, state=state,
                   finished_at=None if chosen else now)
        session.add(row)
        session.flush()
        lifecycle.record_created(session, lifecycle.PUSH, row.id or 0, "open", state=state,
                                 actor="push", now=now)
    elif chosen:  # an empty day claimed later
        lifecycle.move(session, lifecycle.PUSH, row, "claim", actor="push", now=now,
                       values={"finished_at": None})
    return row


def claim_stories(session: Session, row: Push, chosen: Sequence[PackedArticle],
                  now: datetime) -> None:
    """Every chosen story from approved to publishing in one statement, or none."""
    assert row.id is not None
    ids = [item.candidate.id for item in chosen]
    notes = {item.candidate.id: f"push of {row.local_date}, position {item.position}"
             for item in chosen}
    moved = lifecycle.move_all(session, lifecycle.DRAFT, ids, "claim", actor="push", now=now,
                               notes=notes)
    if len(moved) != len(ids):
        raise IntegrityError("draft no longer approved", None, ValueError())
    session.add_all([Publication(draft_id=item.candidate.id, push_id=row.id,
                                 position=item.position, state=lifecycle.PUB.QUEUED,
                                 late=item.late) for item in chosen])


def resume_unfinished(store: Store, settings: Settings, now: datetime, *,
                      takeover: bool = False) -> list[date]:
    """Finish pushes left 'running' (a crash, or WeChat still working on them).

    ``takeover``: the caller holds the scheduler lock, so no other process is working
    on an in-flight WeChat call and it can be reconciled at once.
    """
    with store.session() as session:
        rows = list(session.exec(select(Push).where(Push.account == settings.account.key,
                                                    Push.state == RUNNING)))
    if not rows:
        return []
    with wechat.account_client(settings, store) as client:
        for row in rows:
            with store.session() as session:
                report = existing_report(session, settings, row, now)
            deliver(store, settings, now, report, client, takeover=takeover)
    return [row.local_date for row in rows]


def catch_up(store: Store, settings: Settings, now: datetime, *, takeover: bool = False
             ) -> PushReport | None:
    """On start and on every tick: finish interrupted pushes, record missed days, and
    push today if its time has come and it has not been done."""
    resume_unfinished(store, settings, now, takeover=takeover)
    watch_published(store, settings, now)
    day = local_date(now, settings)
    if now < push_time_on(day, settings):
        with store.session() as session:
            record_missed_days(session, settings, now)
        warn_if_empty(store, settings, now)
        return None
    with store.session() as session:
        row = push_row(session, settings, day)
    if row is not None and lifecycle.push_taken(row.state):
        return None  # a failed push waits for a person, never an automatic retry
    if row is not None and row.state == EMPTY and not settings.schedule.late_push:
        return None  # found nothing at push time: later stories wait for a person's push
    return run_push(store, settings, now)
