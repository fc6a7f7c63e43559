"""Publishing one day's push to WeChat, exactly once, through crashes and API failures.

The day's articles go out as one WeChat draft (lead first). A ``WeChatJob`` row
carries the state machine of reliability.md; each arrow is one committed,
conditional update (``WHERE id AND state AND fence``), the intent is committed
before every external call and its result after it:

    QUEUED -> DRAFTING -> DRAFTED -> SUBMITTING -> SUBMITTED -> PUBLISHED
    side exits: DRAFT_UNKNOWN / SUBMIT_UNKNOWN (outcome not known: reconcile, never
    blindly retry), DEFERRED (quota: the next day's push takes the stories over),
    AWAITING_MANUAL -> SENT_UNCONFIRMED (draftbox mode), FAILED, NEEDS_HUMAN, CANCELLED.

Every attempt carries a marker in ``content_source_url``, so the reconciler can
find our own draft or article at WeChat without knowing any of its ids. Mass send
uses a ``clientmsgid`` derived from (account, date): WeChat itself refuses a second
send with it. ``advance`` is safe to run twice, late, or in two processes at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from .. import faults, lifecycle
from ..alerts import record_alert
from ..config import Settings
from ..deadlines import push_time_on
from ..errors import ErrorKind, PublishError, WeChatAPIError
from ..messages import Coded, as_data, message, of_error, to_column
from ..models import Push, WeChatCall, WeChatEvent, WeChatJob
from ..store import Store
from ..wechat.tokens import DatabaseTokenCache
from .articles import ArticleBuilder
from .media import MediaUploader

if TYPE_CHECKING:  # requests is imported only when WeChat is really used
    from ..wechat.client import WeChatClient

log = logging.getLogger(__name__)

J = lifecycle.JobState
QUEUED, DRAFTING, DRAFTED = J.QUEUED, J.DRAFTING, J.DRAFTED
SUBMITTING, SUBMITTED, PUBLISHED = J.SUBMITTING, J.SUBMITTED, J.PUBLISHED
DRAFT_UNKNOWN, SUBMIT_UNKNOWN = J.DRAFT_UNKNOWN, J.SUBMIT_UNKNOWN
DEFERRED, FAILED, NEEDS_HUMAN, CANCELLED = J.DEFERRED, J.FAILED, J.NEEDS_HUMAN, J.CANCELLED
AWAITING_MANUAL, SENT_UNCONFIRMED = J.AWAITING_MANUAL, J.SENT_UNCONFIRMED
IN_FLIGHT = lifecycle.JOB_IN_FLIGHT
MAYBE_OUT = lifecycle.JOB_MAYBE_OUT
OPEN = lifecycle.JOB_OPEN
LEASE = timedelta(minutes=2)        # an in-flight state older than this lost its process
MAX_POLLS = 24                       # status polls before a stuck publish needs a person
MAX_CHECKS = 4                       # reconciliation rounds before an unknown needs a person
SCAN_PAGES = 10                      # batchget pages (20 each) searched for a marker
QUOTA_ZONE = ZoneInfo("Asia/Shanghai")  # WeChat's daily quotas reset at Beijing midnight


def make_client(settings: Settings, store: Store) -> WeChatClient:
    """The account's client; the AppSecret comes only from the environment.

    Raises:
        PublishError: when the secret's environment variable is not set.
    """
    from ..wechat.client import WeChatClient

    cfg = settings.wechat
    secret = os.environ.get(cfg.secret_env, "")
    if not secret:
        raise PublishError.coded("publish.no_secret", name=cfg.secret_env)
    return WeChatClient(cfg.base_url, cfg.appid, secret, tokens=DatabaseTokenCache(store),
                        connect_timeout=cfg.connect_timeout, read_timeout=cfg.read_timeout)


@contextmanager
def account_client(settings: Settings, store: Store) -> Iterator[WeChatClient | None]:
    """The account's client while the block runs (None in folder mode), closed after.

    Raises:
        PublishError: when the secret's environment variable is not set.
    """
    if not settings.wechat.enabled:
        yield None
        return
    client = make_client(settings, store)
    try:
        yield client
    finally:
        client.close()


def check_account(settings: Settings, store: Store) -> None:
    """Ask WeChat whether the credentials and the IP whitelist work (folder mode: no-op).

    Raises:
        PublishError: with one sentence saying what is wrong.
    """
    with account_client(settings, store) as client:
        if client is not None:
            client.check_credentials()


def _column(err: WeChatAPIError) -> str:
    """A WeChat error for the job's ``error`` column: its code, said in the reader's
    language when shown (``messages.from_column``)."""
    return to_column(of_error(err))


def _last_error(job: WeChatJob) -> Any:
    return job.error or message("wechat.see_attempts")


def move_job(store: Store, job: WeChatJob, expected: str, target: str, now: datetime, *,
             action: str | None = None, actor: str = "wechat", **values: Any) -> bool:
    """One move of the job (``expected`` -> ``target``, or the named ``action``) through
    the lifecycle; False when someone else moved the job first."""
    if job.state != expected:
        return False  # the caller's copy is stale: someone else moved the job
    name = action or lifecycle.WECHAT_JOB.action_between(expected, target)
    with store.session() as session:
        moved = lifecycle.try_move(session, lifecycle.WECHAT_JOB, job, name, actor=actor,
                                   now=now, note=str(values.get("error", ""))[:500],
                                   values={"updated_at": now, **values})
        if not moved:
            log.info("job %s: lost the race moving %s -> %s", job.id, expected, target)
            return False
    job.updated_at = now
    for key, value in values.items():
        setattr(job, key, value)
    return True


def clientmsgid(account: str, day: str) -> str:
    """The mass-send key for (account, date): a retry can never send twice."""
    return "pl-" + hashlib.sha256(f"{account}|{day}".encode()).hexdigest()[:32]


def backoff(count: int) -> timedelta:
    """1, 2, 4 ... minutes, capped at an hour."""
    return timedelta(minutes=min(60, 2 ** max(0, count - 1)))


class JobRunner:
    """Moves one push's job through the state machine as far as it can go now."""

    def __init__(self, store: Store, settings: Settings, client: WeChatClient, now: datetime,
                 *, takeover: bool = False) -> None:
        self.store = store
        self.settings = settings
        self.client = client
        self.now = now
        # On start-up the instance lock proves no other scheduler is alive, so an
        # in-flight state is a crashed one right away; otherwise wait for the lease.
        self.takeover = takeover
        self.uploader = MediaUploader(client, settings.wechat.appid, self._session, now)
        self._receipt: dict[str, Any] = {}  # the last send's msg_data_id (for reach stats)

    def _session(self) -> Session:
        return Session(self.store.engine, expire_on_commit=False)

    # ----------------------------------------------------------------- bookkeeping

    def load(self, job_id: int) -> WeChatJob:
        with self.store.session() as session:
            job = session.get(WeChatJob, job_id)
            assert job is not None
            return job

    def move(self, job: WeChatJob, expected: str, target: str, **values: Any) -> bool:
        """One conditional transition; False when someone else moved the job first."""
        return move_job(self.store, job, expected, target, self.now, **values)

    def note(self, job: WeChatJob, step: str, outcome: str, detail: str = "") -> None:
        with self.store.session() as session:
            session.add(WeChatCall(job_id=job.id or 0, at=self.now, step=step,
                                   outcome=outcome, detail=detail[:2000]))

    def alert(self, job: WeChatJob, kind: str, detail: str) -> None:
        with self.store.session() as session:
            record_alert(session, f"{kind}:push{job.push_id}:{job.fence}", kind, self.now,
                         recipients=self.settings.notify.editors, detail=detail)

    # ----------------------------------------------------------------- driving

    def advance(self, job_id: int) -> WeChatJob:
        """Run the job until it waits (for WeChat, a retry time or a person) or ends."""
        job = self.load(job_id)
        for _ in range(12):  # every step either progresses or returns False
            step = self._steps().get(job.state)
            if step is None:
                return job
            try:
                progressed = step(job)
            except WeChatAPIError as err:
                progressed = self._failed_call(job, err)
            if not progressed:
                return self.load(job_id)
            job = self.load(job_id)
        return job

    def _steps(self) -> dict[str, Callable[[WeChatJob], bool]]:
        return {QUEUED: self._queued, DRAFTING: self._stale_in_flight,
                DRAFT_UNKNOWN: self._draft_unknown, DRAFTED: self._drafted,
                SUBMITTING: self._stale_in_flight, SUBMIT_UNKNOWN: self._submit_unknown,
                SUBMITTED: self._submitted, AWAITING_MANUAL: self._awaiting_manual}

    def _waiting(self, job: WeChatJob) -> bool:
        return job.retry_at is not None and self.now < job.retry_at

    def _failed_call(self, job: WeChatJob, err: WeChatAPIError) -> bool:
        """A call made outside an intent window failed: wait, defer or give up."""
        self.note(job, err.endpoint, err.kind.value, str(err))
        if err.kind in (ErrorKind.RETRY, ErrorKind.TOKEN, ErrorKind.AMBIGUOUS):
            tries = job.checks + 1
            if tries > MAX_CHECKS * 3:
                return self._give_up(job, NEEDS_HUMAN,
                                     Coded("wechat.kept_failing", error=as_data(of_error(err))))
            self.move(job, job.state, job.state, checks=tries,
                      retry_at=self.now + backoff(tries), error=_column(err))
            return False
        if err.kind is ErrorKind.DEFER:
            if job.state in (QUEUED, DRAFTED):  # nothing went out: the next push takes over
                return self._defer(job, job.state, err)
            return self._wait_for_quota(job, err)
        # Refused for good; when the articles may be out, only a person can tell.
        return self._give_up(job, NEEDS_HUMAN if job.state in MAYBE_OUT else FAILED,
                             of_error(err))

    def _wait_for_quota(self, job: WeChatJob, err: WeChatAPIError) -> bool:
        """A quota ran out while the articles may already be out (an unknown outcome, a
        running publish, a draft an editor may send): stay in this state until the quota
        day turns. DEFERRED would hand the stories to the next push and publish them twice."""
        day = self.now.astimezone(QUOTA_ZONE).date() + timedelta(days=1)
        if self.move(job, job.state, job.state, error=_column(err),
                     retry_at=datetime.combine(day, time(0), QUOTA_ZONE)):
            self.alert(job, "publish_deferred",
                       Coded("wechat.quota_wait", push=job.push_id,
                             error=as_data(of_error(err))))
        return False

    def _give_up(self, job: WeChatJob, target: str, reason: str) -> bool:
        """Stop for good (``reason``: a message, coded when it can be) and tell the editors."""
        if self.move(job, job.state, target, error=to_column(reason)):
            kind = "publish_failed" if target == FAILED else "needs_human"
            self.alert(job, kind,
                       Coded("wechat.gave_up", push=job.push_id, reason=as_data(reason)))
        return False

    def _defer(self, job: WeChatJob, resume: str, err: WeChatAPIError) -> bool:
        # The next day's push takes the stories over (see release_deferred), so a
        # quota day is never spent twice and nothing else burns quota today.
        self.move(job, job.state, DEFERRED, resume_state=resume, error=_column(err),
                  retry_at=push_time_on(self.now.astimezone(self.settings.tz).date()
                                        + timedelta(days=1), self.settings))
        self.alert(job, "publish_deferred",
                   Coded("wechat.deferred", push=job.push_id, error=as_data(of_error(err))))
        return False

    def _stale_in_flight(self, job: WeChatJob) -> bool:
        if not self.takeover and self.now - job.updated_at < LEASE:
            return False  # its process may still be waiting for WeChat's answer
        target = DRAFT_UNKNOWN if job.state == DRAFTING else SUBMIT_UNKNOWN
        self.note(job, job.state, "takeover", "in-flight state left by a stopped process")
        return self.move(job, job.state, target)

    # ----------------------------------------------------------------- drafting

    def _queued(self, job: WeChatJob) -> bool:
        if self._waiting(job):
            return False
        if job.checks >= MAX_CHECKS * 3:  # nothing was created: the stories go back
            return self._give_up(job, FAILED, Coded("wechat.draft_not_taken", tries=job.checks,
                                                    error=_last_error(job)))
        articles = self.build_articles(job)
        if not articles:
            return self.move(job, QUEUED, CANCELLED,
                             error=to_column(Coded("wechat.nothing_left")))
        attempt = job.attempt + 1
        marker = f"p{job.push_id}a{attempt}{secrets.token_hex(3)}"
        if not self.move(job, QUEUED, DRAFTING, attempt=attempt, marker=marker):
            return False
        self.note(job, "draft/add", "intent", f"attempt {attempt}, marker {marker}")
        faults.crash_point("after_draft_intent")
        for article in articles:
            article["content_source_url"] = self.source_url(article.pop("_draft_id"), marker)
        try:
            media_id = self.client.draft_add(articles)
        except WeChatAPIError as err:
            return self._draft_failed(job, err)
        faults.crash_point("after_draft_added")
        if not self.move(job, DRAFTING, DRAFTED, media_id=media_id, checks=0, retry_at=None):
            self.client.draft_delete(media_id)  # another process owns the job: drop ours
            return False
        self.note(job, "draft/add", "ok", media_id)
        faults.crash_point("after_draft_stored")
        return True

    def _draft_failed(self, job: WeChatJob, err: WeChatAPIError) -> bool:
        self.note(job, "draft/add", err.kind.value, str(err))
        tries = job.checks + 1
        if err.kind is ErrorKind.AMBIGUOUS:  # look for the draft after a pause, then redo
            return self.move(job, DRAFTING, DRAFT_UNKNOWN, checks=tries, error=_column(err),
                             retry_at=self.now + backoff(tries)) and False
        if err.kind in (ErrorKind.RETRY, ErrorKind.TOKEN):  # rejected: nothing was created
            return self.move(job, DRAFTING, QUEUED, checks=tries, error=_column(err),
                             retry_at=self.now + backoff(tries)) and False
        if err.kind is ErrorKind.DEFER:
            return self._defer(job, QUEUED, err)
        return self._give_up(job, FAILED, of_error(err))

    def source_url(self, draft_id: int, marker: str) -> str:
        return f"{self.settings.notify.base_url}/s/{draft_id}?m={marker}"

    def _draft_unknown(self, job: WeChatJob) -> bool:
        if self._waiting(job):
            return False
        media_id = self.find_draft(job.marker)
        if media_id is not None:
            self.note(job, "reconcile", "adopted", f"found our draft {media_id}")
            return self.move(job, DRAFT_UNKNOWN, DRAFTED, media_id=media_id, checks=0)
        self.note(job, "reconcile", "absent", "no draft carries the marker: draft again")
        return self.move(job, DRAFT_UNKNOWN, QUEUED, retry_at=None)

    def find_draft(self, marker: str) -> str | None:
        for page in range(SCAN_PAGES):
            items = self.client.draft_batchget(offset=page * 20, count=20).items
            for item in items:
                news = (item.get("content") or {}).get("news_item") or []
                if any(marker in str(n.get("content_source_url", "")) for n in news):
                    return str(item.get("media_id"))
            if len(items) < 20:
                return None
        return None

    # ----------------------------------------------------------------- submitting

    def _drafted(self, job: WeChatJob) -> bool:
        if job.mode == "draftbox":
            self.alert(job, "send_by_hand", Coded("wechat.send_by_hand", push=job.push_id))
            return self.move(job, DRAFTED, AWAITING_MANUAL, retry_at=self.now + LEASE)
        if self._waiting(job):
            return False
        if job.checks >= MAX_CHECKS * 3:  # every submit was refused: nothing went out
            return self._give_up(job, FAILED, Coded("wechat.submit_refused", tries=job.checks,
                                                    error=_last_error(job)))
        key = job.clientmsgid or clientmsgid(self.settings.account.key, self._day(job))
        if not self.move(job, DRAFTED, SUBMITTING, clientmsgid=key):
            return False
        self.note(job, "submit", "intent", f"media_id {job.media_id}")
        faults.crash_point("before_submit_sent")
        try:
            ref = self._send(job)
        except WeChatAPIError as err:
            return self._submit_failed(job, err)
        faults.crash_point("after_submit_sent")
        return self._submitted_now(job, SUBMITTING, ref)

    def _send(self, job: WeChatJob) -> str:
        assert job.media_id is not None
        self._receipt = {}
        if job.mode == "masssend":
            return str(self.client.mass_sendall(job.media_id, job.clientmsgid or "",
                                                receipt=self._receipt))
        return str(self.client.freepublish_submit(job.media_id, receipt=self._receipt))

    def _submitted_now(self, job: WeChatJob, expected: str, ref: str) -> bool:
        values = {"msg_id": ref} if job.mode == "masssend" else {"publish_id": ref}
        if self._receipt.get("msg_data_id"):
            values["msg_data_id"] = self._receipt["msg_data_id"]
        self.note(job, "submit", "ok", ref)
        return self.move(job, expected, SUBMITTED, checks=0, polls=0, retry_at=None, **values)

    def _submit_failed(self, job: WeChatJob, err: WeChatAPIError) -> bool:
        self.note(job, "submit", err.kind.value, str(err))
        # 40007 on the one re-submit: the draft left the draft box since the reconciler
        # saw it, so the first submit was processed late. Reconcile again, never fail.
        if err.kind is ErrorKind.AMBIGUOUS or (err.errcode == 40007 and job.resubmits):
            return self.move(job, SUBMITTING, SUBMIT_UNKNOWN,
                             retry_at=self.now + timedelta(minutes=1))
        if err.kind in (ErrorKind.RETRY, ErrorKind.TOKEN):  # rejected: nothing was sent
            return self.move(job, SUBMITTING, DRAFTED, checks=job.checks + 1, error=_column(err),
                             retry_at=self.now + backoff(job.checks + 1)) and False
        if err.kind is ErrorKind.DEFER:
            return self._defer(job, DRAFTED, err)
        return self._give_up(job, FAILED, of_error(err))

    def _submit_unknown(self, job: WeChatJob) -> bool:
        if self._waiting(job):
            return False
        if job.checks >= MAX_CHECKS:
            return self._give_up(job, NEEDS_HUMAN, "the outcome of the last submit could not "
                                 "be established; check the WeChat console")
        if job.mode == "masssend":
            # The same clientmsgid cannot send twice: WeChat answers with the first msg_id.
            try:
                return self._submitted_now(job, SUBMIT_UNKNOWN, self._send(job))
            except WeChatAPIError as err:
                if err.errcode != 40007:
                    raise
                # The draft is gone and the clientmsgid no longer names a send (its 24 h
                # passed): sent, or deleted by hand. Nothing here can tell which.
                return self._give_up(job, NEEDS_HUMAN, "the draft left the draft box but "
                                     "WeChat no longer says whether it was sent; check the "
                                     "WeChat console and run 'pipeline confirm-sent' if so")
        found = self.find_published(job)
        if found is not None:
            return self._published(job, SUBMIT_UNKNOWN, *found)
        return self._unknown_without_article(job)

    def _unknown_without_article(self, job: WeChatJob) -> bool:
        assert job.media_id is not None
        try:
            self.client.draft_get(job.media_id)
            present = True
        except WeChatAPIError as err:
            if err.errcode != 40007:
                raise
            present = False
        settle = timedelta(minutes=self.settings.wechat.settle_minutes)
        if present and job.checks >= 1 and job.resubmits == 0:
            # Not published and our draft is still there after a settle period:
            # WeChat never saw the submit. One re-submit, by the lease holder only.
            self.note(job, "reconcile", "resubmit", "draft present, nothing published")
            return self.move(job, SUBMIT_UNKNOWN, DRAFTED, resubmits=1, retry_at=None)
        reason = "draft present" if present else "draft gone, article not listed yet"
        self.note(job, "reconcile", "wait", reason)
        return self.move(job, SUBMIT_UNKNOWN, SUBMIT_UNKNOWN, checks=job.checks + 1,
                         retry_at=self.now + settle) and False

    def find_published(self, job: WeChatJob) -> tuple[str, str | None, list[str]] | None:
        """(publish_id, article_id, urls) of our article, from the inbox or the list."""
        for event in self._events(None):
            # Only pushes since this job began can be about it (the inbox keeps history).
            if event.article_id and event.received_at >= job.created_at:
                news = self.client.freepublish_getarticle(event.article_id)
                if any(job.marker in str(n.get("content_source_url", "")) for n in news):
                    return event.ref, event.article_id, json.loads(event.urls)
        for page in range(SCAN_PAGES):
            items = self.client.freepublish_batchget(offset=page * 20, count=20).items
            for item in items:
                news = (item.get("content") or {}).get("news_item") or []
                if any(job.marker in str(n.get("content_source_url", "")) for n in news):
                    urls = [str(n.get("url", "")) for n in news]
                    return "", str(item.get("article_id")), urls
            if len(items) < 20:
                return None
        return None

    # ----------------------------------------------------------------- waiting for the result

    def _submitted(self, job: WeChatJob) -> bool:
        event = next(iter(self._events(job.publish_id or job.msg_id)), None)
        if event is not None and event.status not in ("1", "SENDING"):
            return self._finish(job, event.status, event.article_id, json.loads(event.urls))
        if self._waiting(job):
            return False
        if not self._poll_allowed(job):
            return False
        if job.mode == "masssend":
            mass = self.client.mass_get(int(job.msg_id or 0))
            return self._finish(job, mass.status, None, [])
        status = self.client.freepublish_get(int(job.publish_id or 0))
        return self._finish(job, str(status.status), status.article_id,
                            list(status.article_urls), status.fail_idx)

    def _poll_allowed(self, job: WeChatJob) -> bool:
        """Keep status polls inside the daily budget (freepublish/get: 100 a day)."""
        today = self.now.astimezone(self.settings.tz).date()
        used = job.polls_today if job.poll_day == today else 0
        if used >= self.settings.wechat.poll_budget:
            self.move(job, SUBMITTED, SUBMITTED, retry_at=push_time_on(
                today + timedelta(days=1), self.settings) - timedelta(hours=12))
            return False
        return self.move(job, SUBMITTED, SUBMITTED, poll_day=today, polls_today=used + 1,
                         polls=job.polls + 1)

    def _finish(self, job: WeChatJob, status: str, article_id: str | None, urls: list[str],
                fail_idx: tuple[int, ...] = ()) -> bool:
        if status in ("0", "SEND_SUCCESS", "5", "6"):
            if status in ("5", "6"):
                self.alert(job, "published_then_removed",
                           Coded("wechat.removed", push=job.push_id, status=status))
            return self._published(job, SUBMITTED, job.publish_id or job.msg_id or "",
                                   article_id, urls)
        if status in ("1", "SENDING", ""):
            if job.polls >= MAX_POLLS:
                return self._give_up(job, NEEDS_HUMAN,
                                     Coded("wechat.still_in_progress", checks=job.polls))
            self.move(job, SUBMITTED, SUBMITTED, retry_at=self.now + backoff(job.polls))
            return False
        return self._give_up(job, FAILED, Coded("wechat.ended_status", status=status,
                                                failed=[str(i) for i in fail_idx] or "-"))

    def _published(self, job: WeChatJob, expected: str, ref: str, article_id: str | None,
                   urls: list[str]) -> bool:
        values: dict[str, Any] = {"article_id": article_id, "urls": json.dumps(urls),
                                  # the daily watch for a later deletion starts tomorrow
                                  "poll_day": self.now.astimezone(self.settings.tz).date()}
        if ref and job.mode != "masssend":
            values["publish_id"] = ref
        self.note(job, "result", "published", _result_detail(job, article_id, urls))
        return self.move(job, expected, PUBLISHED, **values) and False

    def _events(self, ref: str | None) -> list[WeChatEvent]:
        with self.store.session() as session:
            query = select(WeChatEvent).order_by(col(WeChatEvent.id))
            if ref is not None:
                query = query.where(WeChatEvent.ref == ref)
            return list(session.exec(query))

    # ----------------------------------------------------------------- after publishing

    def watch(self, job: WeChatJob) -> None:
        """Once a day, look whether a free-published push was later deleted or banned
        (status 5/6): WeChat sends no event for that, so only a look tells (F14)."""
        today = self.now.astimezone(self.settings.tz).date()
        if job.mode != "freepublish" or not job.publish_id or job.poll_day == today:
            return
        if not self.move(job, PUBLISHED, PUBLISHED, poll_day=today):
            return
        status = self.client.freepublish_get(int(job.publish_id)).status
        self.note(job, "watch", str(status))
        if status in (5, 6):
            with self.store.session() as session:
                record_alert(session, f"published_then_removed:push{job.push_id}",
                             "published_then_removed", self.now,
                             recipients=self.settings.notify.editors,
                             detail=Coded("wechat.removed", push=job.push_id, status=status))

    # ----------------------------------------------------------------- draft box mode

    def _awaiting_manual(self, job: WeChatJob) -> bool:
        if self._waiting(job):
            return False
        assert job.media_id is not None
        try:
            self.client.draft_get(job.media_id)
        except WeChatAPIError as err:
            if err.errcode != 40007:
                raise
            self.alert(job, "confirm_sent",
                       Coded("wechat.left_draft_box", push=job.push_id, date=self._day(job)))
            return self.move(job, AWAITING_MANUAL, SENT_UNCONFIRMED) and False
        self.move(job, AWAITING_MANUAL, AWAITING_MANUAL, retry_at=self.now + timedelta(
            minutes=30))
        return False

    # ----------------------------------------------------------------- articles

    def _day(self, job: WeChatJob) -> str:
        with self.store.session() as session:
            push = session.get(Push, job.push_id)
            assert push is not None
            return push.local_date.isoformat()

    def build_articles(self, job: WeChatJob) -> list[dict[str, Any]]:
        return ArticleBuilder(self.store, self.settings, self.uploader, self.now).build(
            job.push_id)


def record_event(store: Store, event: str, ref: str, status: str, article_id: str | None,
                 urls: list[str], payload: str, now: datetime) -> bool:
    """Store a PUBLISHJOBFINISH / MASSSENDJOBFINISH push once; True when new."""
    try:
        with store.session() as session:
            session.add(WeChatEvent(event=event, ref=ref, status=status, article_id=article_id,
                                    urls=json.dumps(urls), received_at=now, payload=payload))
        return True
    except sa.exc.IntegrityError:
        return False  # duplicated push: already in the inbox


def _result_detail(job: WeChatJob, article_id: str | None, urls: list[str]) -> str:
    """What WeChat gave back, without a 'None' where a mass send has no article."""
    if article_id:
        shown = f": {', '.join(urls)}" if urls else ""
        return f"article_id {article_id}, {len(urls)} article URL(s){shown}"
    return (f"msg_id {job.msg_id or job.publish_id}: sent to the followers (WeChat gives a "
            "mass send no article_id or URL)")
