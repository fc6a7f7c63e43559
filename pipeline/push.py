"""The daily push: pack approved stories, claim the day's slot, publish, record.

The day's push is a row keyed by (account, local date, slot) under a unique
constraint, and each story can be in at most one live publication (a partial
unique index). Claiming the slot and the stories is one transaction; writing
the output and marking the stories published come after it, and are safe to
repeat, so a push interrupted by a crash is resumed, never run twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from .alerts import record_alert
from .config import Settings
from .deadlines import next_push_after, push_time_on
from .domain import DraftStatus
from .errors import PublishError
from .faults import crash_point
from .models import Draft, DraftEvent, Publication, Push, Unit, WeChatJob
from .publish import wechat
from .publish.folder import FolderPublisher
from .store import Store

if TYPE_CHECKING:
    from .wechat.client import WeChatClient

log = logging.getLogger(__name__)

RUNNING, DONE, MISSED, EMPTY, FAILED = "running", "done", "missed", "empty", "failed"


@dataclass(frozen=True)
class Candidate:
    """An approved story waiting for a push (the pure packing input)."""

    id: int
    title: str
    unit: str
    activity_type: str
    deadline: datetime
    push_rank: int | None = None


@dataclass(frozen=True)
class PackedArticle:
    candidate: Candidate
    position: int
    late: bool


@dataclass
class PushReport:
    day: date
    already_done: bool = False
    dry_run: bool = False
    articles: list[PackedArticle] = field(default_factory=list)
    left_over: list[PackedArticle] = field(default_factory=list)
    missed_days: list[date] = field(default_factory=list)
    manifest: str | None = None
    message: str = ""
    wechat_state: str | None = None
    lost_race: bool = False  # another process claimed the same push at the same moment


def pack(candidates: Sequence[Candidate], limit: int, at: datetime, next_push: datetime
         ) -> tuple[list[PackedArticle], list[PackedArticle]]:
    """Choose the earliest deadlines first; order the chosen by the editor's rank.

    ``late`` means published after the deadline (for the chosen: at ``at``; for the
    left-over: at ``next_push``, the earliest they can go out).
    """
    by_deadline = sorted(candidates, key=lambda c: (c.deadline, c.id))
    chosen = sorted(by_deadline[:limit], key=lambda c: (
        c.push_rank is None, c.push_rank or 0, c.deadline, c.id))
    left = by_deadline[limit:]
    return ([PackedArticle(c, i, at > c.deadline) for i, c in enumerate(chosen, start=1)],
            [PackedArticle(c, 0, next_push > c.deadline) for c in left])


def local_date(now: datetime, settings: Settings) -> date:
    return now.astimezone(settings.tz).date()


def candidates(session: Session) -> list[Candidate]:
    rows = session.exec(
        select(Draft, Unit.name).join(Unit, Unit.id == Draft.unit_id)  # type: ignore[arg-type]
        .where(Draft.status == DraftStatus.APPROVED)).all()
    return [Candidate(d.id or 0, d.title, name, d.activity_type, d.deadline, d.push_rank)
            for d, name in rows]


def plan(session: Session, settings: Settings, now: datetime
         ) -> tuple[list[PackedArticle], list[PackedArticle]]:
    """What a push at ``now`` would contain, and what would not fit."""
    return pack(candidates(session), settings.schedule.max_articles_per_push, now,
                next_push_after(now, settings))


def _push_row(session: Session, settings: Settings, day: date) -> Push | None:
    return session.exec(select(Push).where(Push.account == settings.account.key,
                                           Push.local_date == day, Push.slot == 1)).first()


def record_missed_days(session: Session, settings: Settings, now: datetime) -> list[date]:
    """Record every day since the last push whose push time passed without a push."""
    last = session.exec(select(sa.func.max(Push.local_date))
                        .where(Push.account == settings.account.key)).one()
    if last is None:
        return []  # nothing was owed before the first push ever
    missed = []
    day = last + timedelta(days=1)
    while day < local_date(now, settings) and push_time_on(day, settings) < now:
        try:
            with session.begin_nested():
                session.add(Push(account=settings.account.key, local_date=day, state=MISSED,
                                 started_at=now,
                                 note="the scheduler was not running at push time"))
                session.flush()
        except IntegrityError:
            day += timedelta(days=1)  # another process recorded this day just now
            continue
        record_alert(session, f"push_missed:{day}", "push_missed", now,
                     recipients=settings.notify.editors,
                     detail=f"No push went out on {day}: the scheduler was down at push time.")
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
            row = _push_row(session, settings, day)
        done = row is not None and row.state in (DONE, RUNNING)
        return PushReport(day, already_done=done, dry_run=True, articles=chosen, left_over=left)
    client = wechat.make_client(settings, store) if settings.wechat.enabled else None
    with store.session() as session:
        missed = record_missed_days(session, settings, now)
    report = _claim(store, settings, now, day, client)
    report.missed_days = missed
    crash_point("after_push_claimed")
    if not report.already_done and not report.lost_race and report.articles:
        _deliver(store, settings, now, report, client)
    return report


def _deliver(store: Store, settings: Settings, now: datetime, report: PushReport,
             client: WeChatClient | None, *, takeover: bool = False) -> None:
    """Publish a claimed push: straight to the folder, or through the WeChat job first."""
    if client is None:
        _publish(store, settings, now, report.day, report)
        return
    with store.session() as session:
        job = session.exec(select(WeChatJob).join(Push, col(Push.id) == WeChatJob.push_id)
                           .where(Push.account == settings.account.key,
                                  Push.local_date == report.day)).first()
    if job is None or job.id is None:
        _publish(store, settings, now, report.day, report)  # claimed before WeChat was on
        return
    job = wechat.JobRunner(store, settings, client, now, takeover=takeover).advance(job.id)
    report.wechat_state = job.state
    if job.state == wechat.PUBLISHED:
        _publish(store, settings, now, report.day, report, job)
    elif job.state in (wechat.FAILED, wechat.CANCELLED):
        _close_unpublished(store, settings, now, report, job)
    else:
        report.message = f"WeChat publishing is under way ({job.state}); it will be finished " \
                         "by the scheduler"


def _claim(store: Store, settings: Settings, now: datetime, day: date,
           client: WeChatClient | None) -> PushReport:
    """Insert the day's push row and claim its stories in one transaction."""
    try:
        with store.session() as session:
            row = _push_row(session, settings, day)
            if row is not None and row.state in (DONE, RUNNING):
                return _existing(session, settings, row, now)
            stray = _release_deferred(session, settings, day)
            chosen, left = plan(session, settings, now)
            if row is None:
                row = Push(account=settings.account.key, local_date=day, started_at=now,
                           state=RUNNING)
                session.add(row)
            # Nothing to push before push time leaves the day open; at push time it closes it.
            row.state = RUNNING if chosen else (DONE if now >= push_time_on(day, settings)
                                                else EMPTY)
            row.finished_at = None if chosen else now
            session.flush()
            _claim_stories(session, row, chosen, now)
            if client is not None and chosen:
                session.add(WeChatJob(push_id=row.id or 0, mode=settings.wechat.mode,
                                      state=wechat.QUEUED, created_at=now, updated_at=now))
        _delete_drafts(client, stray)
        return PushReport(day, articles=chosen, left_over=left,
                              message="" if chosen else "nothing is approved for today's push")
    except IntegrityError:
        # Another process claimed the same slot or story at the same moment: it wins and
        # publishes; this one only skips (should the winner die, a tick resumes the push).
        log.info("the push of %s was claimed by another process just now; skipping", day)
        with store.session() as session:
            row = _push_row(session, settings, day)
            assert row is not None
            report = _existing(session, settings, row, now)
        report.lost_race = True
        report.message = "another process claimed today's push at the same moment and " \
                         "publishes it"
        return report


def _claim_stories(session: Session, row: Push, chosen: Sequence[PackedArticle],
                   now: datetime) -> None:
    assert row.id is not None
    for item in chosen:
        updated = session.execute(
            sa.update(Draft).where(col(Draft.id) == item.candidate.id,
                                   col(Draft.status) == DraftStatus.APPROVED)
            .values(status=DraftStatus.PUBLISHING, updated_at=now,
                    version=col(Draft.version) + 1))
        if updated.rowcount != 1:  # type: ignore[attr-defined]
            raise IntegrityError("draft no longer approved", None, ValueError())
        session.add(Publication(draft_id=item.candidate.id, push_id=row.id,
                                position=item.position, state="queued", late=item.late))


def _existing(session: Session, settings: Settings, row: Push, now: datetime) -> PushReport:
    """Report on a push that exists already (done, or running to be resumed)."""
    rows = session.exec(
        select(Publication, Draft, Unit.name)
        .join(Draft, Draft.id == Publication.draft_id)  # type: ignore[arg-type]
        .join(Unit, Unit.id == Draft.unit_id)  # type: ignore[arg-type]
        .where(Publication.push_id == row.id).order_by(col(Publication.position))).all()
    articles = [PackedArticle(Candidate(d.id or 0, d.title, name, d.activity_type, d.deadline,
                                        d.push_rank), p.position, p.late)
                for p, d, name in rows]
    _, left = plan(session, settings, now)
    return PushReport(row.local_date, already_done=row.state == DONE, articles=articles,
                      left_over=left, manifest=row.manifest_path,
                      message="today's push is already done" if row.state == DONE
                      else "resuming today's interrupted push")


def _release_deferred(session: Session, settings: Settings, day: date) -> list[str]:
    """Give the stories of an earlier push that WeChat's quota deferred to today's push.

    Returns the WeChat drafts to delete: they were never submitted, so cancelling wins.
    """
    rows = session.exec(select(Push, WeChatJob).join(WeChatJob, col(WeChatJob.push_id)
                                                     == Push.id)
                        .where(Push.account == settings.account.key, Push.local_date < day,
                               Push.state == RUNNING, WeChatJob.state == wechat.DEFERRED)).all()
    stray = []
    for push, job in rows:
        for pub in session.exec(select(Publication).where(Publication.push_id == push.id,
                                                          Publication.state == "queued")):
            pub.state, pub.error = "cancelled", "moved to a later push (WeChat quota)"
            session.execute(sa.update(Draft).where(col(Draft.id) == pub.draft_id,
                                                   col(Draft.status) == DraftStatus.PUBLISHING)
                            .values(status=DraftStatus.APPROVED))
        push.state, push.note = MISSED, "WeChat's quota was used up; stories moved on"
        job.state, job.fence = wechat.CANCELLED, job.fence + 1
        if job.media_id:
            stray.append(job.media_id)
    session.flush()
    return stray


def _delete_drafts(client: WeChatClient | None, media_ids: list[str]) -> None:
    for media_id in media_ids:
        try:
            if client is not None:
                client.draft_delete(media_id)
        except PublishError as exc:  # a stray draft is untidy, not dangerous
            log.warning("could not delete the stray WeChat draft %s: %s", media_id, exc)


def _close_unpublished(store: Store, settings: Settings, now: datetime, report: PushReport,
                       job: WeChatJob) -> None:
    """WeChat gave up (or nothing was left): the stories go back to the editors."""
    with store.session() as session:
        row = _push_row(session, settings, report.day)
        assert row is not None
        for pub in session.exec(select(Publication).where(Publication.push_id == row.id,
                                                          Publication.state == "queued")):
            pub.state, pub.error = FAILED, job.error
            session.execute(sa.update(Draft).where(col(Draft.id) == pub.draft_id,
                                                   col(Draft.status) == DraftStatus.PUBLISHING)
                            .values(status=DraftStatus.FAILED, updated_at=now))
        row.state, row.finished_at, row.note = (FAILED if job.state == wechat.FAILED else DONE,
                                                now, job.error)
    report.message = f"WeChat publishing failed: {job.error}"


def _publish(store: Store, settings: Settings, now: datetime, day: date,
             report: PushReport, job: WeChatJob | None = None) -> None:
    publisher = FolderPublisher(settings)
    with store.session() as session:
        # Lock the day's row: a second process resuming the same push waits here and
        # then finds it done (SQLite's BEGIN IMMEDIATE already serialises writers).
        row = session.exec(select(Push).where(
            Push.account == settings.account.key, Push.local_date == day,
            Push.slot == 1).with_for_update()).first()
        assert row is not None and row.id is not None
        if row.state != RUNNING:
            report.already_done = row.state == DONE
            report.manifest = row.manifest_path
            return
        pubs = list(session.exec(select(Publication).where(Publication.push_id == row.id,
                                                           Publication.state != "cancelled")
                                 .order_by(col(Publication.position))))
        urls = json.loads(job.urls) if job is not None else []
        for index, pub in enumerate(pubs):
            draft = session.get(Draft, pub.draft_id)
            assert draft is not None
            pub.url = urls[index] if index < len(urls) and urls[index] else pub.url
            pub.output_path = publisher.write_article(day, pub.position, pub.draft_id,
                                                      _meta(draft, pub, now, job))
            crash_point("after_article_written")
            _mark_published(session, settings, draft, pub, now)
        report.articles = [a for a in report.articles
                           if a.candidate.id in {p.draft_id for p in pubs}]
        row.manifest_path = publisher.write_manifest(day, _manifest(row, report, now, job))
        row.state, row.finished_at = DONE, now
        row.channel = job.mode if job is not None else publisher.channel
        report.manifest = row.manifest_path


def _mark_published(session: Session, settings: Settings, draft: Draft, pub: Publication,
                    now: datetime) -> None:
    if pub.state == "published":
        return  # resumed push: this one is out already
    late = now > draft.deadline
    pub.state, pub.published_at, pub.late = "published", now, late
    previous = draft.status
    draft.status, draft.published_at, draft.late = DraftStatus.PUBLISHED, now, late
    draft.updated_at, draft.version = now, draft.version + 1
    session.add(DraftEvent(draft_id=draft.id or 0, at=now, actor="push", action="published",
                           from_status=previous, to_status=DraftStatus.PUBLISHED,
                           note=f"position {pub.position}" + (", late" if late else "")))
    if late:
        record_alert(session, f"published_late:{draft.id}", "published_late", now,
                     draft_id=draft.id, recipients=settings.notify.editors,
                     detail=f"Draft {draft.id} '{draft.title}' was published after its deadline "
                            f"{draft.deadline.isoformat()}.")


def _meta(draft: Draft, pub: Publication, now: datetime, job: WeChatJob | None
          ) -> dict[str, object]:
    return {"id": draft.id, "title": draft.title, "author": draft.author,
            "digest": draft.digest, "activity_type": draft.activity_type,
            "position": pub.position, "deadline": draft.deadline.isoformat(),
            "published_at": now.isoformat(), "late": now > draft.deadline, "url": pub.url,
            "wechat": _wechat_json(job)}


def _wechat_json(job: WeChatJob | None) -> dict[str, object] | None:
    if job is None:
        return None
    return {"mode": job.mode, "media_id": job.media_id, "publish_id": job.publish_id,
            "msg_id": job.msg_id, "article_id": job.article_id, "urls": json.loads(job.urls)}


def _manifest(row: Push, report: PushReport, now: datetime, job: WeChatJob | None
              ) -> dict[str, object]:
    return {
        "date": row.local_date.isoformat(), "account": row.account, "push_id": row.id,
        "channel": job.mode if job is not None else "folder", "published_at": now.isoformat(),
        "wechat": _wechat_json(job),
        "articles": [_article_json(a) for a in report.articles],
        "left_over": [_article_json(a) for a in report.left_over],
        "missed_days": [d.isoformat() for d in report.missed_days],
    }


def _article_json(item: PackedArticle) -> dict[str, object]:
    c = item.candidate
    return {"id": c.id, "position": item.position, "title": c.title, "unit": c.unit,
            "activity_type": c.activity_type, "deadline": c.deadline.isoformat(),
            "late": item.late}


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
    client = wechat.make_client(settings, store) if settings.wechat.enabled else None
    for row in rows:
        with store.session() as session:
            report = _existing(session, settings, row, now)
        _deliver(store, settings, now, report, client, takeover=takeover)
    return [row.local_date for row in rows]


WATCH_DAYS = 3  # how long after publishing a free-published push is checked daily


def watch_published(store: Store, settings: Settings, now: datetime) -> None:
    """The daily look at recent free-published pushes (a later deletion or ban)."""
    if settings.wechat.mode != "freepublish":
        return
    since = local_date(now, settings) - timedelta(days=WATCH_DAYS)
    with store.session() as session:
        jobs = list(session.exec(select(WeChatJob).join(Push, col(Push.id) == WeChatJob.push_id)
                                 .where(Push.account == settings.account.key,
                                        Push.local_date >= since,
                                        WeChatJob.state == wechat.PUBLISHED)))
    if not jobs:
        return
    runner = wechat.JobRunner(store, settings, wechat.make_client(settings, store), now)
    for job in jobs:
        try:
            runner.watch(job)
        except PublishError as exc:  # a look that failed is tried again tomorrow
            log.warning("could not check push %s at WeChat: %s", job.push_id, exc)


def confirm_sent(store: Store, settings: Settings, day: date, now: datetime) -> PushReport:
    """An editor confirms that the day's push went out from the WeChat console.

    Raises:
        PublishError: when there is nothing to confirm for that day.
    """
    with store.session() as session:
        job = session.exec(select(WeChatJob).join(Push, col(Push.id) == WeChatJob.push_id)
                           .where(Push.account == settings.account.key,
                                  Push.local_date == day)).first()
        row = _push_row(session, settings, day)
    waiting = (wechat.SENT_UNCONFIRMED, wechat.AWAITING_MANUAL, wechat.NEEDS_HUMAN)
    if job is None or row is None or job.state not in waiting:
        state = job.state if job is not None else "no WeChat push"
        raise PublishError(f"There is no push waiting for confirmation on {day} ({state}).")
    runner = wechat.JobRunner(store, settings, wechat.make_client(settings, store), now)
    if not runner.move(job, job.state, wechat.PUBLISHED, error="confirmed by an editor"):
        raise PublishError(f"The push of {day} changed just now; look again and retry.")
    with store.session() as session:
        report = _existing(session, settings, row, now)
    _publish(store, settings, now, day, report, job)
    return report


def withdraw(store: Store, settings: Settings, draft_id: int, now: datetime, *, actor: str,
             note: str) -> str:
    """Take a story out of a push that has not gone out yet (F27).

    Before the WeChat submit, withdrawing wins: the WeChat draft is deleted and the
    job starts over without the story. Once submitted it cannot be called back.

    Raises:
        PublishError: when the story is not in a push or can no longer be withdrawn.
    """
    client = wechat.make_client(settings, store) if settings.wechat.enabled else None
    with store.session() as session:
        found = session.exec(select(Publication, WeChatJob).join(
            WeChatJob, col(WeChatJob.push_id) == Publication.push_id, isouter=True)
            .where(Publication.draft_id == draft_id, Publication.state == "queued")).first()
        if found is None:
            raise PublishError(f"Draft {draft_id} is not waiting in a push.")
        pub, job = found
        stray = _withdraw_from_job(session, settings, job, draft_id, now)
        pub.state, pub.error = "cancelled", f"withdrawn by {actor}: {note}"
        session.execute(sa.update(Draft).where(col(Draft.id) == draft_id).values(
            status=DraftStatus.DRAFTED, updated_at=now))
        session.add(DraftEvent(draft_id=draft_id, at=now, actor=actor, action="withdraw",
                               from_status=DraftStatus.PUBLISHING,
                               to_status=DraftStatus.DRAFTED, note=note))
    _delete_drafts(client, stray)
    return "withdrawn" + (" and the WeChat draft deleted" if stray else "")


def _withdraw_from_job(session: Session, settings: Settings, job: WeChatJob | None,
                       draft_id: int, now: datetime) -> list[str]:
    if job is None:
        return []
    if job.state not in (wechat.QUEUED, wechat.DRAFTED, wechat.DEFERRED,
                         wechat.AWAITING_MANUAL, wechat.DRAFT_UNKNOWN):
        record_alert(session, f"withdraw_refused:{draft_id}:{job.fence}", "needs_human", now,
                     draft_id=draft_id, recipients=settings.notify.editors,
                     detail=f"Draft {draft_id} could not be withdrawn: its push is "
                            f"{job.state} at WeChat.")
        session.commit()
        raise PublishError(f"Draft {draft_id} cannot be withdrawn: its push was already "
                           f"sent to WeChat ({job.state}). The editors have been alerted.")
    stray = [job.media_id] if job.media_id else []
    updated = session.execute(sa.update(WeChatJob).where(
        col(WeChatJob.id) == job.id, col(WeChatJob.fence) == job.fence).values(
        state=wechat.QUEUED, fence=job.fence + 1, media_id=None, updated_at=now))
    if updated.rowcount != 1:  # type: ignore[attr-defined]
        raise PublishError(f"The push holding draft {draft_id} is changing right now; "
                           "try again in a minute.")
    return stray


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
        return None
    with store.session() as session:
        row = _push_row(session, settings, day)
    if row is not None and row.state in (DONE, RUNNING, FAILED):
        return None  # a failed push waits for a person, never an automatic retry
    return run_push(store, settings, now)
