"""The daily push through WeChat: drive the day's job, hand stories back when WeChat
fails or defers them, withdraw a story, confirm a hand-sent push, watch for removals."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import Session, col, select

from .. import lifecycle
from ..alerts import record_alert
from ..config import Settings
from ..errors import PublishError, RaceLost
from ..messages import Coded, to_column
from ..models import Draft, Publication, Push, StateEvent, WeChatJob
from ..publish import wechat
from ..store import Store
from .plan import RUNNING, PushReport, local_date, push_row
from .record import existing_report, publish_folder

if TYPE_CHECKING:
    from ..wechat.client import WeChatClient

log = logging.getLogger(__name__)


def day_job(session: Session, settings: Settings, day: date, *, lock: bool = False
            ) -> tuple[Push, WeChatJob] | None:
    """The push of ``day`` and its WeChat job, if it has one; ``lock``: both rows locked
    until commit (PostgreSQL; SQLite's writers take turns anyway), so a person acting
    on them second waits and then reads what the first one did."""
    query = (select(Push, WeChatJob).join(WeChatJob, col(WeChatJob.push_id) == Push.id)
             .where(Push.account == settings.account.key, Push.local_date == day))
    return session.exec(query.with_for_update() if lock else query).first()


def settled_by_person(session: Session, settings: Settings, push: Push, job: WeChatJob,
                      wanted: str) -> RaceLost | None:
    """The truth for an editor who came second to a push waiting for a person: who
    released or confirmed it, when, with how many stories (None: no person did).
    ``wanted`` is the action this editor asked for ("release" or "confirm")."""
    done = session.exec(select(StateEvent).where(
        StateEvent.machine == lifecycle.WECHAT_JOB.name, StateEvent.row_id == job.id,
        col(StateEvent.action).in_(("release", "confirm")))
        .order_by(col(StateEvent.id).desc())).first()
    if done is None:
        return None
    pubs = session.exec(select(Publication.id).where(Publication.push_id == push.id)).all()
    moved = session.exec(select(sa.func.count()).select_from(StateEvent).where(
        StateEvent.machine == lifecycle.PUBLICATION.name, col(StateEvent.row_id).in_(pubs),
        StateEvent.at == done.at, StateEvent.actor == done.actor)).one() if pubs else 0
    code = "push.released_meanwhile" if done.action == "release" else "push.confirmed_meanwhile"
    count = moved if done.action == "release" else len(pubs)
    return RaceLost.of(code, done.action == wanted, by=done.actor or "?",
                       date=str(push.local_date), count=count,
                       at=done.at.astimezone(settings.tz).strftime("%H:%M"))


def deliver(store: Store, settings: Settings, now: datetime, report: PushReport,
            client: WeChatClient | None, *, takeover: bool = False) -> None:
    """Publish a claimed push: straight to the folder, or through the WeChat job first."""
    if client is None:
        publish_folder(store, settings, now, report.day, report)
        return
    with store.session() as session:
        found = day_job(session, settings, report.day)
    job = found[1] if found is not None else None
    if job is None or job.id is None:
        publish_folder(store, settings, now, report.day, report)  # claimed before WeChat was on
        return
    job = wechat.JobRunner(store, settings, client, now, takeover=takeover).advance(job.id)
    report.wechat_state = job.state
    if job.state == wechat.PUBLISHED:
        publish_folder(store, settings, now, report.day, report, job)
    elif job.state in (wechat.FAILED, wechat.CANCELLED):
        close_unpublished(store, settings, now, report, job)
    else:
        report.message = Coded("push.wechat_under_way", state=job.state)


def release_deferred(session: Session, settings: Settings, day: date, now: datetime
                     ) -> list[str]:
    """Give the stories of an earlier push that WeChat's quota deferred to today's push.

    Returns the WeChat drafts to delete: they were never submitted, so cancelling wins.
    """
    rows = session.exec(select(Push, WeChatJob).join(WeChatJob, col(WeChatJob.push_id)
                                                     == Push.id)
                        .where(Push.account == settings.account.key, Push.local_date < day,
                               Push.state == RUNNING, WeChatJob.state == wechat.DEFERRED)).all()
    stray = [_release(session, push, job, "WeChat's quota was used up; stories moved on",
                      now, actor="push") for push, job in rows]
    session.flush()
    return [media_id for media_id in stray if media_id]


def _release(session: Session, push: Push, job: WeChatJob, why: str, now: datetime, *,
             actor: str) -> str | None:
    """Hand a push's stories to the next push (approved again) and close its day as
    missed; returns the WeChat draft to delete, if any."""
    _hand_back(session, push, "cancel", f"moved to a later push: {why}", "hand_back",
               now=now, actor=actor)
    lifecycle.move(session, lifecycle.PUSH, push, "release", actor=actor, now=now, note=why,
                   values={"note": why})
    lifecycle.move(session, lifecycle.WECHAT_JOB, job, "release", actor=actor, now=now,
                   note=why, values={"updated_at": now})
    return job.media_id


def _hand_back(session: Session, push: Push, pub_action: str, error: str, draft_action: str,
               *, now: datetime, actor: str) -> None:
    """Take the push's unpublished stories out of it: their publications end (cancelled
    or failed) and the drafts, still publishing, move on by ``draft_action``."""
    pubs = list(session.exec(select(Publication).where(Publication.push_id == push.id,
                                                       Publication.state == "queued")))
    lifecycle.move_all(session, lifecycle.PUBLICATION, [p.id or 0 for p in pubs], pub_action,
                       actor=actor, now=now, note=error, values={"error": error})
    lifecycle.move_all(session, lifecycle.DRAFT, [p.draft_id for p in pubs], draft_action,
                       actor=actor, now=now, note=to_column(Coded(
                           "push.handed_back", date=str(push.local_date), error=error)))


def release_unsent(store: Store, settings: Settings, day: date, now: datetime, *,
                   actor: str) -> int:
    """An editor found in the WeChat console that the day's push did NOT go out: its
    stories go back to the next push. The counterpart of ``confirm_sent``.

    Raises:
        RaceLost: another editor released (``already_done``) or confirmed it first.
        PublishError: when no push of that day is waiting for a person.
    """
    with store.session() as session:
        found = day_job(session, settings, day, lock=True)
        waiting = (wechat.SENT_UNCONFIRMED, wechat.NEEDS_HUMAN)
        if found is not None and found[1].state not in waiting:
            lost = settled_by_person(session, settings, *found, wanted="release")
            if lost is not None:
                raise lost
        if found is None or found[1].state not in waiting:
            state = found[1].state if found is not None else "no WeChat push"
            raise PublishError.coded("push.not_awaiting_person", date=str(day), state=state)
        push, job = found
        count = len(list(session.exec(select(Publication.id).where(
            Publication.push_id == push.id, Publication.state == "queued"))))
        _release(session, push, job, to_column(Coded("push.not_sent_checked", actor=actor)),
                 now, actor=actor)
    return count


def delete_drafts(client: WeChatClient | None, media_ids: list[str]) -> None:
    for media_id in media_ids:
        try:
            if client is not None:
                client.draft_delete(media_id)
        except PublishError as exc:  # a stray draft is untidy, not dangerous
            log.warning("could not delete the stray WeChat draft %s: %s", media_id, exc)


def close_unpublished(store: Store, settings: Settings, now: datetime, report: PushReport,
                      job: WeChatJob) -> None:
    """WeChat gave up (or nothing was left): the stories go back to the editors."""
    with store.session() as session:
        row = push_row(session, settings, report.day)
        assert row is not None
        _hand_back(session, row, "fail", job.error, "fail", now=now, actor="push")
        lifecycle.move(session, lifecycle.PUSH, row,
                       "fail" if job.state == wechat.FAILED else "finish", actor="push",
                       now=now, note=job.error, values={"finished_at": now, "note": job.error})
    report.message = Coded("push.wechat_failed", error=job.error)


WATCH_DAYS = 3  # how long after publishing a free-published push is checked daily


def watch_published(store: Store, settings: Settings, now: datetime) -> None:
    """The daily look at recent free-published pushes (a later deletion or ban)."""
    if settings.wechat.mode != "freepublish":
        return
    since = local_date(now, settings) - timedelta(days=WATCH_DAYS)
    today = local_date(now, settings)
    with store.session() as session:
        jobs = list(session.exec(select(WeChatJob).join(Push, col(Push.id) == WeChatJob.push_id)
                                 .where(Push.account == settings.account.key,
                                        Push.local_date >= since,
                                        WeChatJob.state == wechat.PUBLISHED,
                                        sa.or_(col(WeChatJob.poll_day).is_(None),
                                               col(WeChatJob.poll_day) != today))))
    if not jobs:
        return  # every tick but the first of the day stops here, without a client
    with wechat.account_client(settings, store) as client:
        assert client is not None
        runner = wechat.JobRunner(store, settings, client, now)
        for job in jobs:
            try:
                runner.watch(job)
            except PublishError as exc:  # a look that failed is tried again tomorrow
                log.warning("could not check push %s at WeChat: %s", job.push_id, exc)


def confirm_sent(store: Store, settings: Settings, day: date, now: datetime, *,
                 actor: str = "editor") -> PushReport:
    """An editor confirms that the day's push went out from the WeChat console.

    Raises:
        RaceLost: another editor confirmed (``already_done``) or released it first.
        PublishError: when there is nothing to confirm for that day.
    """
    waiting = lifecycle.JOB_WAITING_FOR_PERSON
    with store.session() as session:
        found = day_job(session, settings, day)
        if found is not None and found[1].state not in waiting:
            _settled(session, settings, found, "confirm")
    if found is None or found[1].state not in waiting:
        state = found[1].state if found is not None else "no WeChat push"
        raise PublishError.coded("push.not_awaiting_confirmation", date=str(day), state=state)
    row, job = found
    # Bookkeeping only: no WeChat call, so no client (nor its secret) is needed.
    if not wechat.move_job(store, job, job.state, wechat.PUBLISHED, now, action="confirm",
                           actor=actor, error=to_column(Coded("wechat.confirmed_by", actor=actor))):
        with store.session() as session:
            again = day_job(session, settings, day)
            if again is not None:
                _settled(session, settings, again, "confirm")
        raise PublishError.coded("push.changed_just_now", date=str(day))
    with store.session() as session:
        report = existing_report(session, settings, row, now)
    publish_folder(store, settings, now, day, report, job)
    return report


def _settled(session: Session, settings: Settings, found: tuple[Push, WeChatJob],
             wanted: str) -> None:
    lost = settled_by_person(session, settings, *found, wanted=wanted)
    if lost is not None:
        raise lost


def withdraw(store: Store, settings: Settings, draft_id: int, now: datetime, *, actor: str,
             note: str) -> str:
    """Take a story out of a push that has not gone out yet (F27).

    Before the WeChat submit, withdrawing wins: the WeChat draft is deleted and the
    job starts over without the story. Once submitted it cannot be called back.

    Raises:
        PublishError: when the story is not in a push or can no longer be withdrawn.
    """
    with wechat.account_client(settings, store) as client:
        return _withdraw(store, settings, client, draft_id, now, actor=actor, note=note)


def _withdraw(store: Store, settings: Settings, client: WeChatClient | None, draft_id: int,
              now: datetime, *, actor: str, note: str) -> str:
    with store.session() as session:
        found = session.exec(select(Publication, WeChatJob).join(
            WeChatJob, col(WeChatJob.push_id) == Publication.push_id, isouter=True)
            .where(Publication.draft_id == draft_id, Publication.state == "queued")).first()
        if found is None:
            raise PublishError.coded("push.draft_not_waiting", id=draft_id)
        pub, job = found
        stray = _withdraw_from_job(session, settings, job, draft_id, now, actor)
        why = f"withdrawn by {actor}: {note}"
        lifecycle.move(session, lifecycle.PUBLICATION, pub, "withdraw", actor=actor, now=now,
                       note=note, values={"error": why})
        draft = session.get(Draft, draft_id)
        assert draft is not None
        lifecycle.move(session, lifecycle.DRAFT, draft, "withdraw", actor=actor, now=now,
                       note=note, values={"review_stage": 0,
                                          "review_round": draft.review_round + 1})
    delete_drafts(client, stray)
    return "withdrawn" + (" and the WeChat draft deleted" if stray else "")


def _withdraw_from_job(session: Session, settings: Settings, job: WeChatJob | None,
                       draft_id: int, now: datetime, actor: str) -> list[str]:
    if job is None:
        return []
    if job.state not in lifecycle.JOB_WITHDRAWABLE:
        record_alert(session, f"withdraw_refused:{draft_id}:{job.fence}", "needs_human", now,
                     draft_id=draft_id, recipients=settings.notify.editors,
                     detail=Coded("push.withdraw_alert", id=draft_id, state=job.state))
        session.commit()
        raise PublishError.coded("push.withdraw_refused", id=draft_id, state=job.state)
    stray = [job.media_id] if job.media_id else []
    if not lifecycle.try_move(session, lifecycle.WECHAT_JOB, job, "restart", actor=actor,
                              now=now, note=f"draft {draft_id} withdrawn",
                              values={"media_id": None, "updated_at": now}):
        raise PublishError.coded("push.job_changing", id=draft_id)
    return stray
