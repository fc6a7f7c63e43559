"""Fault scenarios F1-F16, F20-F25 and F27 of reliability.md (plus F17 on PostgreSQL).

In this project's terms: the day's push is ONE WeChat draft holding all the day's
articles, and the job state machine of ``pipeline/publish/wechat.py`` runs per push.
Where a scenario says kill -9, a real scheduler subprocess (``pipeline worker``; ``pipeline
serve`` runs the same scheduler beside the web desk and is used where the web matters)
kills itself at a named crash point (``PIPELINE_CRASH_AT``) and a new one is started;
everything else
drives the same code in-process (``run_push``, ``catch_up``, ``JobRunner``) at chosen
times, with the fake WeChat's clock moved along. After every scenario
``check_invariants`` asserts:

- I1 each story at most once in the fake's ledger (free publishes and mass sends);
- I2 every approved story ends published, failed (back with the editors), deferred to
  a later push or waiting for a person, visible in the queue: none silently missing;
- I3 the database and the ledger agree, matched by the marker in content_source_url;
- I4 nothing went out before its push's scheduled time;
- I5 calls per endpoint and (fake) day stay within WeChat's quotas and our budgets.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time as time_module
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from pipeline import views
from pipeline.clock import Clock
from pipeline.config import Settings
from pipeline.deadlines import push_time_on
from pipeline.domain import DraftStatus
from pipeline.messages import from_column
from pipeline.models import Alert, Draft, Publication, Push, WeChatCall, WeChatEvent, WeChatJob
from pipeline.publish import wechat
from pipeline.publish.wechat import make_client
from pipeline.push import PushReport, catch_up, run_push
from pipeline.schedule import tick
from pipeline.store import Store, open_store
from tests.conftest import Workspace, check_histories, make_workspace, wait_for
from tests.fakewechat import FakeClock, FakeWeChat
from tests.test_flow import write_report

TZ = ZoneInfo("Asia/Shanghai")
DAY0 = date(2026, 6, 15)
MODES = ("freepublish", "masssend")
SEND = {"freepublish": "freepublish/submit", "masssend": "message/mass/sendall"}
POLL = {"freepublish": "freepublish/get", "masssend": "message/mass/get"}
READ_TIMEOUT = 2.0
SLOW = READ_TIMEOUT + 1.0          # an injected latency that outlasts the read timeout
MARK = re.compile(r"/s/(\d+)\?m=([0-9a-z]+)")
NOT_OUT = frozenset({2, 3, 4, "SEND_FAIL"})  # ledger statuses of a send that did not go out
WENT_OUT = frozenset({0, 5, 6, "SEND_SUCCESS"})
FOR_A_PERSON = frozenset({wechat.NEEDS_HUMAN, wechat.AWAITING_MANUAL, wechat.SENT_UNCONFIRMED})


def at(hhmm: str, day: int = 0) -> datetime:
    """A local time on DAY0 + ``day`` in the account's zone."""
    hour, minute = (int(x) for x in hhmm.split(":"))
    return datetime.combine(DAY0 + timedelta(days=day), time(hour, minute), TZ)


# --------------------------------------------------------------------------- the rig


@dataclass
class Rig:
    """One workspace wired to one fake WeChat whose clock the test moves."""

    ws: Workspace
    fake: FakeWeChat
    clock: FakeClock
    mode: str
    tmp: Path
    stories: list[int] = field(default_factory=list)
    _store: Store | None = None

    @property
    def settings(self) -> Settings:
        return self.ws.settings

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = self.ws.store()
        return self._store

    def close(self) -> None:
        self.fake.close()
        if self._store is not None:
            self._store.close()

    def add_stories(self, count: int, day: int = 0, *, days_before: int = 0) -> list[int]:
        """Approve ``count`` stories on the morning of ``day`` (the first with a photo);
        their activity took place ``days_before`` days earlier (to make them late)."""
        ids = []
        for _ in range(count):
            n = len(self.stories) + 1
            start = DAY0 + timedelta(days=day - days_before)
            path = write_report(self.tmp, f"s{n}", unit="雷锋街道", kind="lecture",
                                title=f"雷锋街道禁毒讲座第{n}场", start=f"{start} 09:00",
                                photo=n == 1)
            now = at("10:00", day).isoformat()
            result = self.ws.run("submit", "--json", str(path), now=now)
            story = int(result.json()["accepted"][0]["id"])
            assert self.ws.run("approve", str(story), now=now).code == 0
            self.stories.append(story)
            ids.append(story)
        return ids

    def push(self, when: datetime) -> PushReport:
        self.clock.set(when)
        return run_push(self.store, self.settings, when)

    def tick(self, when: datetime, *, takeover: bool = False) -> None:
        """One scheduler wake-up at ``when`` (errors surface, unlike in the scheduler)."""
        self.clock.set(when)
        self.fake.tick()  # publishes that end by time end now, before we look
        catch_up(self.store, self.settings, when, takeover=takeover)

    def run(self, start: datetime, end: datetime, every: int = 30) -> None:
        """Tick every ``every`` minutes from ``start`` to ``end``, whatever happens."""
        when = start
        while when <= end:
            self.tick(when)
            when += timedelta(minutes=every)

    def settle(self, start: datetime, hours: float = 3, every: int = 5) -> datetime:
        """Tick every ``every`` minutes until no push is in flight (or ``hours`` passed)."""
        when = start
        while when <= start + timedelta(hours=hours):
            self.tick(when)
            if self.quiet():
                break
            when += timedelta(minutes=every)
        return when

    def quiet(self) -> bool:
        with self.store.session() as session:
            states = session.exec(select(WeChatJob.state).join(
                Push, col(Push.id) == WeChatJob.push_id).where(Push.state == "running")).all()
        return all(s in FOR_A_PERSON | {wechat.DEFERRED} for s in states)

    def job(self, day: int = 0) -> WeChatJob:
        with self.store.session() as session:
            job = session.exec(select(WeChatJob).join(Push, col(Push.id) == WeChatJob.push_id)
                               .where(Push.local_date == DAY0 + timedelta(days=day))).first()
        assert job is not None, f"no WeChat job for day {day}"
        return job

    def job_calls(self, job: WeChatJob) -> list[WeChatCall]:
        with self.store.session() as session:
            return list(session.exec(select(WeChatCall).where(WeChatCall.job_id == job.id)
                                     .order_by(col(WeChatCall.id))))

    def calls(self, endpoint: str) -> int:
        return self.fake.ledger.count(endpoint)

    def answers(self, endpoint: str) -> list[int | None]:
        return [c.errcode for c in self.fake.ledger.calls_to(endpoint)]

    def alerts(self) -> list[Alert]:
        with self.store.session() as session:
            return list(session.exec(select(Alert)))

    def serve(self, when: datetime, crash: str | None = None, *command: str) -> Serve:
        """``pipeline worker`` (the scheduler process) unless another command is given."""
        self.clock.set(when)
        return Serve(self, when, crash, command or ("worker",))

    def crash(self, when: datetime, point: str) -> None:
        """Run ``pipeline worker`` until it kills itself at ``point`` (kill -9)."""
        proc = self.serve(when, crash=point)
        code = proc.wait_exit()
        assert code == -signal.SIGKILL, f"serve did not die at {point}:\n{proc.output()}"

    def restart(self, when: datetime) -> str:
        """Start ``pipeline worker`` (its start-up tick takes over), then stop it."""
        proc = self.serve(when)
        proc.wait_ready()
        code = proc.stop()
        assert code == 0, proc.output()
        return proc.output()


class Serve:
    """A real scheduler subprocess (``pipeline worker``, or ``pipeline serve`` with the
    web desk); its log goes to a file the test can poll."""

    def __init__(self, rig: Rig, now: datetime, crash: str | None,
                 command: tuple[str, ...]) -> None:
        self.log = rig.tmp / f"serve-{time_module.monotonic_ns()}.log"
        env = {**os.environ, "DATABASE_URL": rig.ws.database_url,
               "PIPELINE_NOW": now.isoformat(), "PIPELINE_TICK_SECONDS": "0.5"}
        env.pop("PIPELINE_CRASH_AT", None)
        if crash:
            env["PIPELINE_CRASH_AT"] = crash
        with self.log.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pipeline", "--config", str(rig.ws.path / "config.toml"),
                 *command], env=env, stdout=subprocess.DEVNULL, stderr=err)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self) -> None:
        """Wait until the start-up tick (the takeover) is done."""
        wait_for(lambda: "scheduler running" in self.output() or self.proc.poll() is not None,
                 what="serve start-up")
        assert self.proc.poll() is None, self.output()

    def wait_exit(self, timeout: float = 90) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"serve did not exit:\n{self.output()}") from None

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.wait_exit()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def make_rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Rig]]:
    """Rigs on SQLite (or ``database_url``), one fake WeChat each, closed afterwards."""
    monkeypatch.setenv("WECHAT_APPSECRET", "test-secret")
    monkeypatch.delenv("PIPELINE_CRASH_AT", raising=False)
    rigs: list[Rig] = []

    def make(mode: str = "freepublish", database_url: str | None = None) -> Rig:
        root = tmp_path / f"rig{len(rigs)}"
        root.mkdir()
        ws = make_workspace(root / "ws", database_url or f"sqlite:///{root / 'ws' / 'p.db'}")
        clock = FakeClock(at("10:00"))
        fake = FakeWeChat(appid="wxTESTAPPID", secret="test-secret", clock=clock)
        fake.publish_seconds = 60  # a publish ends after a poll or a (fake) minute
        ws.configure("wechat", mode=mode, appid="wxTESTAPPID", base_url=fake.base_url,
                     read_timeout=READ_TIMEOUT)
        rigs.append(Rig(ws, fake, clock, mode, root))
        return rigs[-1]

    yield make
    for rig in rigs:
        rig.close()


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# --------------------------------------------------------------------------- invariants


@dataclass(frozen=True)
class Sent:
    """One article as the fake's ledger has it."""

    story: int
    marker: str
    status: int | str
    url: str
    media_id: str
    at: datetime


def ledger_articles(fake: FakeWeChat) -> list[Sent]:
    out = []
    sends: list[tuple[list[dict[str, Any]], int | str, list[str], str, datetime]] = [
        (p.articles, p.status, p.article_urls, p.media_id, p.submitted_at)
        for p in list(fake.ledger.publishes)]
    sends += [(m.articles, m.status, [], m.media_id, m.sent_at)
              for m in list(fake.ledger.mass_sends)]
    for articles, status, urls, media_id, when in sends:
        for i, article in enumerate(articles):
            found = MARK.search(article.get("content_source_url", ""))
            assert found, f"an article without our marker went out: {article.get('title')}"
            out.append(Sent(int(found.group(1)), found.group(2), status,
                            urls[i] if i < len(urls) else "", media_id, when))
    return out


def outcome(draft: Draft, pubs: list[Publication], jobs: Mapping[int, WeChatJob]) -> str:
    """published | failed | deferred | human | back (withdrawn), else what is wrong."""
    simple = {DraftStatus.PUBLISHED: "published", DraftStatus.FAILED: "failed",
              DraftStatus.APPROVED: "deferred", DraftStatus.DRAFTED: "back"}
    if draft.status in simple:
        return simple[draft.status]
    live = [p for p in pubs if p.draft_id == draft.id and p.state == "queued"]
    job = jobs.get(live[0].push_id) if len(live) == 1 else None
    if draft.status != DraftStatus.PUBLISHING or job is None:
        return f"lost ({draft.status}, {len(live)} live publication(s))"
    if job.state == wechat.DEFERRED:
        return "deferred"
    return "human" if job.state in FOR_A_PERSON else f"stuck in {job.state}"


def check_invariants(rig: Rig, *, budget: Mapping[str, int] | None = None,
                     expect: str | Mapping[int, str] | None = None) -> dict[int, str]:
    """Assert I1-I5 for ``rig``; return each story's outcome (I2)."""
    sent = ledger_articles(rig.fake)
    out = [s for s in sent if s.status not in NOT_OUT]
    twice = {k: n for k, n in Counter(s.story for s in out).items() if n > 1}
    assert not twice, f"I1: stories published more than once: {twice}"
    with rig.store.session() as session:
        drafts = {d.id: d for d in session.exec(select(Draft))}
        pubs = list(session.exec(select(Publication)))
        jobs = {j.push_id: j for j in session.exec(select(WeChatJob))}
        pushes = {p.id: p.local_date for p in session.exec(select(Push))}
        alerts = list(session.exec(select(Alert)))
        check_histories(session)  # every state a draft passed through is in its history
        queue = views.queue(session, rig.settings, rig.clock(), include_all=True, limit=0)[0]
    outcomes = {s: outcome(drafts[s], pubs, jobs) for s in rig.stories}
    _check_i2(outcomes, pubs, alerts, {int(r["id"]) for r in queue})
    _check_i3(out, pubs, jobs)
    _check_i4(out, pubs, jobs, pushes, rig.settings)
    _check_i5(rig, budget or {})
    if isinstance(expect, str):
        assert set(outcomes.values()) == {expect}, outcomes
    elif expect is not None:
        assert outcomes == dict(expect), outcomes
    return outcomes


def _check_i2(outcomes: Mapping[int, str], pubs: list[Publication], alerts: list[Alert],
              queued: set[int]) -> None:
    lost = {s: o for s, o in outcomes.items()
            if o not in ("published", "failed", "deferred", "human", "back")}
    assert not lost, f"I2: stories silently missing: {lost}"
    for story, result in outcomes.items():
        if result in ("failed", "human", "deferred"):
            assert story in queued, f"I2: story {story} ({result}) is not in the queue"
        if result in ("failed", "human"):
            pushes = {f"push{p.push_id}:" for p in pubs if p.draft_id == story}
            assert any(a.draft_id == story or any(k in a.key for k in pushes)
                       for a in alerts), f"I2: nobody was told about story {story} ({result})"


def _check_i3(out: list[Sent], pubs: list[Publication],
              jobs: Mapping[int, WeChatJob]) -> None:
    for pub in pubs:
        job = jobs.get(pub.push_id)
        if pub.state != "published" or job is None or job.mode not in MODES:
            continue
        match = [s for s in out if s.story == pub.draft_id and s.marker == job.marker]
        assert match, f"I3: story {pub.draft_id} is published in the database, not at WeChat"
        # confirmed by a person: nobody asked WeChat for the status
        by_hand = from_column(job.error, "en").startswith("confirmed by ")
        assert match[0].status in WENT_OUT or by_hand, (
            f"I3: {pub.draft_id} is {match[0].status} at WeChat")
        assert match[0].media_id == job.media_id, f"I3: {pub.draft_id} went out from another draft"
        assert not match[0].url or pub.url == match[0].url, f"I3: {pub.draft_id}'s URL differs"
    for s in out:
        mine = [p for p in pubs if p.draft_id == s.story and p.push_id in jobs
                and jobs[p.push_id].marker == s.marker]
        assert len(mine) == 1, f"I3: story {s.story} went out (marker {s.marker}) unrecorded"
        pub, job = mine[0], jobs[mine[0].push_id]
        waiting = FOR_A_PERSON if s.status in WENT_OUT else FOR_A_PERSON | {
            wechat.SUBMITTED, wechat.SUBMIT_UNKNOWN}
        assert pub.state == "published" or job.state in waiting, (
            f"I3: story {s.story} is {s.status} at WeChat but {pub.state}/{job.state} here")


def _check_i4(out: list[Sent], pubs: list[Publication], jobs: Mapping[int, WeChatJob],
              pushes: Mapping[int | None, date], settings: Settings) -> None:
    for s in out:  # its publication exists (I3)
        pub = next(p for p in pubs if p.draft_id == s.story and p.push_id in jobs
                   and jobs[p.push_id].marker == s.marker)
        due = push_time_on(pushes[pub.push_id], settings)
        assert s.at >= due, f"I4: story {s.story} went out at {s.at}, before {due}"


def _check_i5(rig: Rig, budget: Mapping[str, int]) -> None:
    calls = list(rig.fake.ledger.calls)
    per_day = Counter((c.time.astimezone(TZ).date(), c.endpoint) for c in calls)
    for (day, path), count in per_day.items():
        quota = rig.fake.quotas.get(path)
        assert quota is None or count <= quota, f"I5: {count} calls to {path} on {day}"
        if path.endswith(("freepublish/get", "mass/get")):
            assert count <= rig.settings.wechat.poll_budget, f"I5: {count} polls on {day}"
    for endpoint, most in budget.items():
        assert rig.calls(endpoint) <= most, f"I5: {rig.calls(endpoint)} calls to {endpoint}"
    forced = [c for c in rig.fake.ledger.calls_to("stable_token")
              if json.loads(c.raw_body).get("force_refresh") is True]
    assert not forced, "I5: the token was force-refreshed (every other process loses it)"


# --------------------------------------------------------------------------- F1-F6: kill -9


def test_f1_kill_after_draft_intent(make_rig: Callable[..., Rig], mode: str) -> None:
    """F1: kill -9 after the DRAFTING intent is committed, before draft/add is sent.
    Expected: on restart exactly one draft is created; the push goes out once."""
    rig = make_rig(mode)
    rig.add_stories(2)
    rig.crash(at("20:00"), "after_draft_intent")
    assert rig.job().state == wechat.DRAFTING and rig.calls("draft/add") == 0
    rig.restart(at("20:03"))
    rig.settle(at("20:05"))
    assert len(rig.fake.ledger.drafts) == 1 and rig.job().attempt == 2
    check_invariants(rig, budget={"draft/add": 1, SEND[mode]: 1}, expect="published")


def test_f2_kill_after_draft_added(make_rig: Callable[..., Rig], mode: str) -> None:
    """F2: kill -9 after WeChat created the draft, before its media_id was stored.
    Expected: the reconciler finds the draft by its marker and adopts it; published once;
    no stray draft left in the draft box."""
    rig = make_rig(mode)
    rig.add_stories(2)
    rig.crash(at("20:00"), "after_draft_added")
    assert rig.job().state == wechat.DRAFTING and len(rig.fake.drafts()) == 1
    rig.restart(at("20:03"))
    rig.settle(at("20:05"))
    job = rig.job()
    assert job.media_id == rig.fake.ledger.drafts[0].media_id and job.attempt == 1
    assert "adopted" in [c.outcome for c in rig.job_calls(job)]
    assert rig.fake.drafts() == []
    check_invariants(rig, budget={"draft/add": 1, SEND[mode]: 1}, expect="published")


def test_f3_kill_between_draft_and_submit(make_rig: Callable[..., Rig], mode: str) -> None:
    """F3: kill -9 after the media_id was stored, before the submit intent.
    Expected: on restart the stored media_id is submitted once; published once."""
    rig = make_rig(mode)
    rig.add_stories(2)
    rig.crash(at("20:00"), "after_draft_stored")
    job = rig.job()
    assert job.state == wechat.DRAFTED and job.media_id and rig.calls(SEND[mode]) == 0
    rig.restart(at("20:03"))
    rig.settle(at("20:05"))
    assert rig.job().media_id == job.media_id
    check_invariants(rig, budget={"draft/add": 1, SEND[mode]: 1}, expect="published")


def test_f4_kill_after_submit_accepted(make_rig: Callable[..., Rig], mode: str) -> None:
    """F4: kill -9 after WeChat accepted the submit (or mass send), before its id was stored.
    Expected: the job goes UNKNOWN; the reconciler finds the article by its marker
    (freepublish) or WeChat's clientmsgid dedupe names the first send (masssend);
    PUBLISHED with no second publish."""
    rig = make_rig(mode)
    rig.add_stories(2)
    rig.crash(at("20:00"), "after_submit_sent")
    assert rig.job().state == wechat.SUBMITTING
    assert len(rig.fake.ledger.publishes) + len(rig.fake.ledger.mass_sends) == 1
    rig.restart(at("20:05"))
    rig.settle(at("20:10"))
    job = rig.job()
    assert job.state == wechat.PUBLISHED
    assert "takeover" in [c.outcome for c in rig.job_calls(job)]
    if mode == "masssend":  # the resend was refused by the clientmsgid (45065)
        assert rig.answers(SEND[mode]) == [0, 45065]
        assert job.msg_id == str(rig.fake.ledger.mass_sends[0].msg_id)
    else:
        assert job.article_id == rig.fake.ledger.publishes[0].article_id
    check_invariants(rig, budget={"freepublish/submit": 1}, expect="published")


def test_f5_kill_just_before_submit(make_rig: Callable[..., Rig], mode: str) -> None:
    """F5: kill -9 just before the submit is sent (WeChat never saw it).
    Expected: UNKNOWN; the reconciler finds nothing and the draft still present, waits a
    settle period, then submits exactly once; published once."""
    rig = make_rig(mode)
    rig.add_stories(2)
    rig.crash(at("20:00"), "before_submit_sent")
    assert rig.job().state == wechat.SUBMITTING and rig.calls(SEND[mode]) == 0
    rig.restart(at("20:02"))
    rig.settle(at("20:05"), hours=1)
    job = rig.job()
    assert job.state == wechat.PUBLISHED
    if mode == "freepublish":
        assert job.resubmits == 1  # the one re-submit, after the settle period
    check_invariants(rig, budget={"draft/add": 1, SEND[mode]: 1}, expect="published")


def test_f6_kill_while_polling(make_rig: Callable[..., Rig], mode: str) -> None:
    """F6: kill -9 while the publish is still at status 1 and being polled.
    Expected: polling resumes from the stored publish_id / msg_id; no re-submit."""
    rig = make_rig(mode)
    rig.add_stories(2)
    rig.fake.publish_seconds = None
    rig.fake.inject(SEND[mode], "stuck", polls=3)
    proc = rig.serve(at("20:00"))
    try:
        wait_for(lambda: rig.calls(POLL[mode]) >= 1, what="the first status poll")
        wait_for(lambda: rig.job().state == wechat.SUBMITTED, what="polls recorded")
    finally:
        proc.kill()  # SIGKILL from outside, while waiting for the next poll
    rig.tick(at("20:02"), takeover=True)
    rig.settle(at("20:05"))
    job = rig.job()
    ref = job.publish_id or job.msg_id
    polled = {c.raw_body for c in rig.fake.ledger.calls_to(POLL[mode])}
    assert all(str(ref).encode() in body for body in polled) and rig.calls(POLL[mode]) >= 3
    check_invariants(rig, budget={SEND[mode]: 1}, expect="published")


# --------------------------------------------------------------------------- F7-F11: API faults


PROCESSED = {"timeout": ("latency", {"seconds": SLOW, "process_first": True}),
             "dropped": ("process_then_drop", {"rst": True}),
             "http-503": ("http_status", {"status": 503, "process": True}),
             "minus-one": ("errcode", {"code": -1, "process": True})}


@pytest.mark.parametrize("how", PROCESSED)
def test_f7_submit_processed_answer_lost(make_rig: Callable[..., Rig], mode: str,
                                         how: str) -> None:
    """F7: the submit (mass send) was processed by WeChat but the answer is a read
    timeout, a reset connection, an HTTP 503 or -1. Expected: no automatic retry of the
    submit; reconcile -> PUBLISHED once."""
    rig = make_rig(mode)
    rig.add_stories(2)
    fault, params = PROCESSED[how]
    rig.fake.inject(SEND[mode], fault, **params)
    assert rig.push(at("20:00")).wechat_state == wechat.SUBMIT_UNKNOWN
    assert rig.calls(SEND[mode]) == 1
    rig.settle(at("20:02"))
    assert len(rig.fake.ledger.publishes) + len(rig.fake.ledger.mass_sends) == 1
    check_invariants(rig, budget={"freepublish/submit": 1}, expect="published")


def test_f8_submit_timeout_not_processed(make_rig: Callable[..., Rig], mode: str) -> None:
    """F8: the submit times out and WeChat had not processed it when we looked.
    Expected: reconcile -> one re-submit -> published once; the straggling first request,
    processed only later, is refused by WeChat (draft gone / clientmsgid used)."""
    rig = make_rig(mode)
    rig.add_stories(2)
    rig.fake.inject(SEND[mode], "latency", seconds=60, process_first=False)
    assert rig.push(at("20:00")).wechat_state == wechat.SUBMIT_UNKNOWN
    rig.settle(at("20:02"))
    assert rig.calls(SEND[mode]) == 2
    straggler = rig.fake.ledger.calls_to(SEND[mode])[0]
    rig.fake.close()  # wakes the straggler up: WeChat processes it only now
    wait_for(lambda: straggler.errcode is not None, what="the straggler's answer")
    assert straggler.errcode != 0
    check_invariants(rig, budget={"draft/add": 1}, expect="published")


def test_f8_first_submit_lands_just_before_the_resubmit(make_rig: Callable[..., Rig]) -> None:
    """F8 (race): the first submit's connection broke unprocessed; the reconciler saw the
    draft still there and re-submits, but meanwhile the first request was processed late,
    so WeChat answers the re-submit with 40007 (draft gone). Expected: not FAILED (the
    stories went out): reconcile again, find the article, PUBLISHED once."""
    rig = make_rig()
    rig.add_stories(2)
    rig.fake.inject("freepublish/submit", "drop_before")
    rig.fake.inject("freepublish/submit", "errcode", code=40007, process=True)
    rig.push(at("20:00"))
    rig.settle(at("20:02"))
    assert rig.answers("freepublish/submit") == [None, 40007]
    check_invariants(rig, budget={"draft/add": 1}, expect="published")


def test_f9_draft_add_fails_twice_then_succeeds(make_rig: Callable[..., Rig]) -> None:
    """F9: draft/add answers -1, then HTTP 502, then succeeds.
    Expected: bounded retries spaced by a backoff (each after a reconcile found no draft);
    exactly one draft used."""
    rig = make_rig()
    rig.add_stories(2)
    rig.fake.inject("draft/add", "errcode", code=-1)
    rig.fake.inject("draft/add", "http_status", status=502)
    rig.push(at("20:00"))
    assert rig.calls("draft/add") == 1, "an ambiguous draft/add was retried at once"
    rig.settle(at("20:01"), every=1)
    times = [c.time for c in rig.fake.ledger.calls_to("draft/add")]
    assert len(times) == 3 and len(rig.fake.ledger.drafts) == 1
    assert all(b - a >= timedelta(minutes=1) for a, b in pairwise(times))
    check_invariants(rig, budget={"draft/add": 3, "freepublish/submit": 1}, expect="published")


def test_f9_draft_add_done_but_answered_minus_one(make_rig: Callable[..., Rig]) -> None:
    """F9 (variant): draft/add created the draft yet answered -1.
    Expected: the reconciler adopts that draft; one draft, none left behind."""
    rig = make_rig()
    rig.add_stories(2)
    rig.fake.inject("draft/add", "errcode", code=-1, process=True)
    rig.push(at("20:00"))
    rig.settle(at("20:02"))
    assert len(rig.fake.ledger.drafts) == 1 and rig.fake.drafts() == []
    check_invariants(rig, budget={"draft/add": 1, "freepublish/submit": 1}, expect="published")


def test_f9_draft_add_keeps_failing(make_rig: Callable[..., Rig]) -> None:
    """F9 (variant): draft/add answers -1 all day.
    Expected: retries are bounded and spaced; then the push gives up and the stories go
    back to the editors, visibly (alert, queue); no draft was left behind."""
    rig = make_rig()
    rig.add_stories(2)
    rig.fake.inject("draft/add", "errcode", times=500, code=-1)
    rig.push(at("20:00"))
    rig.settle(at("20:05"), hours=26)
    assert rig.calls("draft/add") <= wechat.MAX_CHECKS * 3 + 1
    assert rig.fake.ledger.drafts == []
    assert "did not take the draft" in from_column(rig.job().error, "en")
    check_invariants(rig, budget={"freepublish/submit": 0}, expect="failed")


@pytest.mark.parametrize("where", ["send", "draft/add"])
def test_f10_token_expires_mid_flow(make_rig: Callable[..., Rig], mode: str,
                                    where: str) -> None:
    """F10: the token expires right before the submit (42001), or draft/add is answered
    40001. Expected: one normal-mode refresh through the token owner, the rejected call
    retried once; no duplicate; no force-refresh."""
    rig = make_rig(mode)
    rig.add_stories(2)
    endpoint = SEND[mode] if where == "send" else "draft/add"
    if where == "send":
        rig.fake.inject(endpoint, "expire_token")
    else:
        rig.fake.inject(endpoint, "errcode", code=40001)
    rig.push(at("20:00"))
    rig.settle(at("20:02"))
    assert rig.answers(endpoint) == [42001 if where == "send" else 40001, 0]
    assert rig.calls("stable_token") == 2
    check_invariants(rig, budget={"draft/add": 2, "stable_token": 2}, expect="published")


def test_f11_two_processes_ask_for_a_token_at_once(make_rig: Callable[..., Rig]) -> None:
    """F11: two processes (own engines, own clients, one database) need a token at once.
    Expected: both get a working token (stable_token, normal mode); no 40001 loop."""
    rig = make_rig()
    stores = [rig.ws.store(), rig.ws.store()]
    clients = [make_client(rig.settings, s) for s in stores]
    barrier = threading.Barrier(2)
    counts: list[int] = []

    def work(index: int) -> None:
        barrier.wait()
        counts.append(clients[index].draft_count())
        counts.append(clients[1 - index].draft_count())  # each uses the other's token too

    threads = [threading.Thread(target=work, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for client, store in zip(clients, stores, strict=True):
        client.close()
        store.close()
    assert counts == [0, 0, 0, 0]
    assert set(rig.answers("draft/count")) == {0} and 1 <= rig.calls("stable_token") <= 2
    tokens = {c.query["access_token"] for c in rig.fake.ledger.calls_to("draft/count")}
    assert tokens == {rig.fake.current_token()}
    check_invariants(rig, budget={"stable_token": 2})


# --------------------------------------------------------------------------- F12-F14: quota, status


@pytest.mark.parametrize("late", [False, True], ids=["on-time", "deadline-missed"])
def test_f12_quota_used_up_on_submit(make_rig: Callable[..., Rig], mode: str,
                                     late: bool) -> None:
    """F12: 45009 on freepublish/submit (45028 on mass send).
    Expected: DEFERRED to the next quota day with an alert; no further calls burn quota
    that day; the next day's push publishes the stories once (flagged late when their
    deadline passed meanwhile); the unsent WeChat draft is deleted."""
    rig = make_rig(mode)
    rig.add_stories(2, days_before=3 if late else 0)
    rig.fake.inject(SEND[mode], "errcode", code=45009 if mode == "freepublish" else 45028)
    assert rig.push(at("20:00")).wechat_state == wechat.DEFERRED
    assert [a.kind for a in rig.alerts()].count("publish_deferred") == 1
    calls = len(rig.fake.ledger.calls)
    check_invariants(rig, expect="deferred")
    rig.run(at("20:05"), at("19:55", 1))
    assert len(rig.fake.ledger.calls) == calls, "calls were made while deferred"
    rig.settle(at("20:00", 1), hours=1)
    assert rig.fake.ledger.drafts[0].removed_by == "delete"
    with rig.store.session() as session:
        pubs = session.exec(select(Publication).where(Publication.state == "published")).all()
    assert {p.late for p in pubs} == {late}
    assert ("published_late" in [a.kind for a in rig.alerts()]) == late
    check_invariants(rig, budget={"draft/add": 2}, expect="published")


@pytest.mark.parametrize("endpoint", ["freepublish/batchget", "freepublish/get"])
def test_f12_quota_used_up_while_the_outcome_is_open(make_rig: Callable[..., Rig],
                                                    endpoint: str) -> None:
    """F12 (variant): 45009 on a read the reconciler (batchget, after an ambiguous submit)
    or the poller (get) needs, when the submit may already have gone out.
    Expected: the job waits for the next quota day in its state (never DEFERRED, which
    would hand the stories to the next push and publish them twice); published once."""
    rig = make_rig()
    rig.add_stories(2)
    if endpoint == "freepublish/batchget":
        rig.fake.inject("freepublish/submit", "latency", seconds=SLOW, process_first=True)
    else:
        rig.fake.publish_seconds = None
    rig.fake.inject(endpoint, "errcode", code=45009)
    rig.push(at("20:00"))
    rig.settle(at("20:02"))
    assert rig.job().state != wechat.DEFERRED
    rig.run(at("20:05"), at("23:55"))
    rig.settle(at("20:00", 1), hours=2)
    assert rig.job().state == wechat.PUBLISHED
    check_invariants(rig, budget={"freepublish/submit": 1}, expect="published")


def test_f13_publish_stuck_at_status_1(make_rig: Callable[..., Rig], mode: str) -> None:
    """F13: the publish (mass send) stays in progress for hours.
    Expected: polls back off, stay within the daily budget, and after the limit the job
    needs a person (alert, queue); no re-submit."""
    rig = make_rig(mode)
    rig.add_stories(2)
    rig.fake.publish_seconds = None
    rig.fake.inject(SEND[mode], "stuck")
    rig.push(at("20:00"))
    rig.settle(at("20:10"), hours=36, every=10)
    assert rig.job().state == wechat.NEEDS_HUMAN
    assert "needs_human" in [a.kind for a in rig.alerts()]
    times = [c.time for c in rig.fake.ledger.calls_to(POLL[mode]) if c.errcode == 0]
    gaps = [b - a for a, b in pairwise(times)]
    assert gaps == sorted(gaps) and len(times) <= wechat.MAX_POLLS + 1
    check_invariants(rig, budget={SEND[mode]: 1}, expect="human")


FINAL = [("freepublish", 2), ("freepublish", 3), ("freepublish", 4), ("masssend", "SEND_FAIL")]


@pytest.mark.parametrize(("mode", "status"), FINAL, ids=[str(s) for _, s in FINAL])
def test_f14_final_failure(make_rig: Callable[..., Rig], mode: str, status: int | str) -> None:
    """F14: the publish ends with status 2/3/4 (mass send SEND_FAIL).
    Expected: FAILED with the reason (and the failed article numbers); the stories go
    back to the editors with an alert; no automatic retry, not the next day either."""
    rig = make_rig(mode)
    rig.add_stories(2)
    rig.fake.inject(SEND[mode], "final_status", status=status)
    rig.push(at("20:00"))
    rig.settle(at("20:02"))
    job = rig.job()
    assert job.state == wechat.FAILED and str(status) in from_column(job.error, "en")
    if status in (2, 4):
        assert "failed articles: 1)" in from_column(job.error, "en")
    assert "publish_failed" in [a.kind for a in rig.alerts()]
    rig.settle(at("20:00", 1), hours=1)
    check_invariants(rig, budget={SEND[mode]: 1}, expect="failed")


def test_f14_removed_before_we_saw_the_result(make_rig: Callable[..., Rig]) -> None:
    """F14 (5/6): the publish succeeded but was deleted (5) before our next poll.
    Expected: recorded as published (it went out) and an alert is raised."""
    rig = make_rig()
    rig.add_stories(2)
    rig.fake.publish_seconds = None
    rig.fake.inject("freepublish/submit", "stuck", polls=1)
    rig.push(at("20:00"))
    publish_id = rig.fake.ledger.publishes[0].publish_id
    rig.fake.set_publish_status(publish_id, 0)
    rig.fake.set_publish_status(publish_id, 5)  # the editor deleted it in the console
    rig.settle(at("20:02"))
    assert "published_then_removed" in [a.kind for a in rig.alerts()]
    check_invariants(rig, budget={"freepublish/submit": 1}, expect="published")


def test_f14_poll_refused_for_good(make_rig: Callable[..., Rig], mode: str) -> None:
    """F14 (error classes): the status poll is refused for good (48001: the account lost
    its publishing permission) after WeChat accepted the submit. Expected: the job needs
    a person (the articles may be out), never FAILED with the stories handed back."""
    rig = make_rig(mode)
    rig.add_stories(2)
    rig.fake.mass_polls = 1
    rig.fake.inject(POLL[mode], "errcode", code=48001)
    rig.push(at("20:00"))
    rig.settle(at("20:02"))
    assert rig.job().state == wechat.NEEDS_HUMAN
    check_invariants(rig, budget={SEND[mode]: 1}, expect="human")


@pytest.mark.parametrize(("mode", "code"), [("freepublish", 53503), ("freepublish", 48001),
                                            ("masssend", 48001)])
def test_f14_submit_refused_for_good(make_rig: Callable[..., Rig], mode: str,
                                     code: int) -> None:
    """F14 (error classes): the submit is refused for good (53503 failed the publish
    check, 48001 no permission). Expected: FAILED with WeChat's reason, the stories back
    with the editors and an alert; no retry, not the next day either."""
    rig = make_rig(mode)
    rig.add_stories(2)
    rig.fake.inject(SEND[mode], "errcode", code=code)
    rig.push(at("20:00"))
    assert rig.job().state == wechat.FAILED and f"({code})" in from_column(rig.job().error, "en")
    rig.settle(at("20:00", 1), hours=1)
    check_invariants(rig, budget={SEND[mode]: 1}, expect="failed")


def test_f14_removed_after_we_recorded_success(make_rig: Callable[..., Rig]) -> None:
    """F14 (later 5/6): status 0 recorded, then WeChat reports 6 (banned) the next day.
    Expected: an alert 'published_then_removed'; the story stays published."""
    rig = make_rig()
    rig.add_stories(2)
    rig.push(at("20:00"))
    rig.settle(at("20:02"))
    assert rig.job().state == wechat.PUBLISHED
    rig.fake.set_publish_status(rig.fake.ledger.publishes[0].publish_id, 6)
    rig.settle(at("10:00", 1), hours=12, every=30)
    assert "published_then_removed" in [a.kind for a in rig.alerts()]
    check_invariants(rig, expect="published")


# --------------------------------------------------------------------------- F15-F16: downtime


def test_f15_down_across_push_time(make_rig: Callable[..., Rig]) -> None:
    """F15: the scheduler is down across push time (19:00-22:00, push at 20:00).
    Expected: the start-up catch-up at 22:00 pushes the day once; a restart at 22:30 sends
    nothing more."""
    rig = make_rig("masssend")
    rig.add_stories(2)
    rig.restart(at("22:00"))
    assert rig.calls("message/mass/sendall") == 1
    rig.restart(at("22:30"))
    assert (rig.ws.path / "published" / str(DAY0) / "manifest.json").exists()
    check_invariants(rig, budget={"message/mass/sendall": 1, "draft/add": 1},
                     expect="published")


def test_f16_down_for_three_days_after_a_crash(make_rig: Callable[..., Rig], mode: str) -> None:
    """F16: kill -9 right after the day-0 send, then down until day 3, 10:00.
    Expected: the start-up tick settles day 0 (freepublish: found by marker; masssend:
    after the 24 h clientmsgid window nothing can prove the send, so a person is asked
    and confirms it), records days 1 and 2 as missed with alerts, and from day 3 on one
    push a day with at most the daily cap, oldest first: no burst, nothing twice."""
    rig = make_rig(mode)
    rig.ws.configure("schedule", max_articles_per_push=2)
    rig.add_stories(2)
    rig.crash(at("20:00"), "after_submit_sent")
    rig.add_stories(3, day=1)
    rig.restart(at("10:00", 3))
    with rig.store.session() as session:
        days = {p.local_date: p.state for p in session.exec(select(Push))}
    assert days[DAY0 + timedelta(days=1)] == days[DAY0 + timedelta(days=2)] == "missed"
    assert [a.kind for a in rig.alerts()].count("push_missed") == 2
    if mode == "masssend":
        assert rig.job().state == wechat.NEEDS_HUMAN
        assert rig.ws.run("confirm-sent", str(DAY0), now=at("11:00", 3).isoformat()).code == 0
    assert rig.job().state == wechat.PUBLISHED
    rig.settle(at("20:00", 3), hours=1)
    rig.settle(at("20:00", 4), hours=1)
    with rig.store.session() as session:
        sizes = Counter(p.push_id for p in session.exec(select(Publication)))
        days = {p.local_date: p.state for p in session.exec(select(Push))}
    assert sorted(sizes.values()) == [1, 2, 2] and list(days.values()).count("done") == 3
    assert len(rig.fake.ledger.drafts) == 3
    check_invariants(rig, expect="published")


# --------------------------------------------------------------------------- F17, F20-F24


@pytest.mark.postgres
def test_f17_two_schedulers_fire_the_same_tick(make_rig: Callable[..., Rig], pg_url: str) -> None:
    """F17: two schedulers on one PostgreSQL database run the push tick at the same moment.
    Expected: one slot row, one job, one draft, one publish; the loser only skips."""
    rig = make_rig(database_url=pg_url)
    rig.add_stories(3)
    stores = [rig.ws.store(), rig.ws.store()]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def scheduler(store: Store) -> None:
        barrier.wait()
        try:
            catch_up(store, rig.settings, at("20:00"))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    rig.clock.set(at("20:00"))
    threads = [threading.Thread(target=scheduler, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for store in stores:
        store.close()
    assert errors == []
    rig.settle(at("20:02"))
    with rig.store.session() as session:
        assert len(session.exec(select(Push)).all()) == 1
        assert len(session.exec(select(WeChatJob)).all()) == 1
    check_invariants(rig, budget={"draft/add": 1, "freepublish/submit": 1},
                     expect="published")


def test_f20_second_instance_refused(make_rig: Callable[..., Rig]) -> None:
    """F20: a second ``pipeline serve`` (web desk and scheduler) on the same SQLite file
    while a ``pipeline worker`` runs. Expected: it refuses to start, naming the running
    one (pid, host); it sends nothing."""
    rig = make_rig()
    rig.add_stories(2)
    first = rig.serve(at("20:30"))
    try:
        first.wait_ready()
        second = rig.serve(at("20:31"), None, "serve", "--port", "0")
        assert second.wait_exit() == 1
        err = second.output()
        assert "already running" in err and f"pid {first.pid}" in err
        assert socket.gethostname() in err
    finally:
        assert first.stop() == 0
    rig.settle(at("20:35"))
    check_invariants(rig, budget={"draft/add": 1, "freepublish/submit": 1},
                     expect="published")


def test_f21_kill_inside_a_write_transaction(make_rig: Callable[..., Rig]) -> None:
    """F21: kill -9 while the push's closing write transaction is open (after the first
    article file was written). Expected: the database opens cleanly (integrity check),
    committed rows are present (the job PUBLISHED), the uncommitted ones absent (push
    still running, no story marked published); the restart finishes it, nothing twice."""
    rig = make_rig()
    rig.add_stories(3)
    rig.fake.publish_polls = 0  # the first poll sees the result: the push closes at once
    rig.crash(at("20:00"), "after_article_written")
    assert rig.job().state == wechat.PUBLISHED
    with rig.store.session() as session:
        assert session.execute(sa.text("PRAGMA integrity_check")).scalar() == "ok"
        push = session.exec(select(Push)).one()
        states = {p.state for p in session.exec(select(Publication))}
    assert push.state == "running" and states == {"queued"}
    rig.restart(at("20:10"))
    assert (rig.ws.path / "published" / str(DAY0) / "manifest.json").exists()
    check_invariants(rig, budget={"freepublish/submit": 1}, expect="published")


def deny_job_writes(dbapi_connection: Any, _record: Any) -> None:
    """A connection on which SQLite refuses every write to the job table (as on a full
    disk or read-only file), while reads and BEGIN still work."""
    def authorize(action: int, table: str | None, *_: object) -> int:
        writes = (sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_INSERT)
        return sqlite3.SQLITE_DENY if action in writes and table == "wechatjob" else 0
    dbapi_connection.set_authorizer(authorize)


def test_f22_intent_cannot_be_written(make_rig: Callable[..., Rig],
                                      caplog: pytest.LogCaptureFixture) -> None:
    """F22: the database refuses the write of the DRAFTING intent.
    Expected: no WeChat call is made; the error is logged by the scheduler tick; nothing
    is half-recorded; once the database is writable the push goes out once."""
    rig = make_rig()
    rig.add_stories(2)
    rig.fake.inject("draft/add", "errcode", code=45011)  # leaves the job QUEUED, media cached
    rig.push(at("20:00"))
    before, calls = rig.job(), len(rig.fake.ledger.calls)
    assert before.state == wechat.QUEUED
    broken = open_store(rig.ws.database_url, upgrade=False)
    sa.event.listen(broken.engine, "connect", deny_job_writes)
    rig.clock.set(at("20:05"))
    tick(broken, rig.settings, Clock(at("20:05")), takeover=True)
    broken.close()
    assert len(rig.fake.ledger.calls) == calls, "a WeChat call was made without an intent"
    assert any(r.levelname == "ERROR" and "scheduled run" in r.getMessage()
               for r in caplog.records)
    after = rig.job()
    assert (after.state, after.fence, after.attempt) == (before.state, before.fence, 1)
    assert len(rig.job_calls(after)) == len(rig.job_calls(before))
    rig.settle(at("20:06"))
    check_invariants(rig, budget={"draft/add": 2, "freepublish/submit": 1},
                     expect="published")


def test_f23_host_zone_differs_and_clock_steps_back(make_rig: Callable[..., Rig]) -> None:
    """F23: the host runs in another zone (America/Los_Angeles, times given in UTC) and
    the clock steps back an hour after the push. Expected: the slot is the account's
    local date (Asia/Shanghai) and a step back does not re-run the completed slot."""
    rig = make_rig()
    rig.add_stories(2)
    old = os.environ.get("TZ")
    os.environ["TZ"] = "America/Los_Angeles"
    time_module.tzset()
    try:
        utc = ZoneInfo("UTC")
        rig.tick(datetime(2026, 6, 15, 11, 59, tzinfo=utc))  # 19:59 in Shanghai: not yet
        assert rig.calls("draft/add") == 0
        rig.settle(datetime(2026, 6, 15, 12, 0, tzinfo=utc))
        for when in (datetime(2026, 6, 15, 11, 5, tzinfo=utc),   # stepped back an hour
                     datetime(2026, 6, 15, 12, 0, tzinfo=utc),
                     datetime(2026, 6, 15, 16, 30, tzinfo=utc)):  # 00:30 the next day
            rig.tick(when)
    finally:
        if old is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old
        time_module.tzset()
    with rig.store.session() as session:
        assert [p.local_date for p in session.exec(select(Push))] == [DAY0]
    check_invariants(rig, budget={"draft/add": 1, "freepublish/submit": 1},
                     expect="published")


def test_f24_sigterm_during_publishing(make_rig: Callable[..., Rig]) -> None:
    """F24: SIGTERM (a deploy) to ``pipeline serve`` while the submit is on the wire.
    Expected: it stops cleanly after the current step (no in-flight state left behind);
    the next run finishes the push; nothing twice."""
    rig = make_rig()
    rig.add_stories(2)
    rig.fake.inject("freepublish/submit", "latency", seconds=1.5, process_first=True)
    # started just before push time: an interval tick, not the start-up one, pushes
    proc = rig.serve(at("20:00") - timedelta(seconds=3), None, "serve", "--port", "0")
    rig.clock.set(at("20:00"))
    try:
        proc.wait_ready()
        wait_for(lambda: rig.calls("freepublish/submit") == 1, what="the submit")
    finally:
        code = proc.stop()
    assert code == 0 and "scheduler stopped" in proc.output()
    assert rig.job().state not in wechat.IN_FLIGHT
    rig.settle(at("20:05"))
    check_invariants(rig, budget={"freepublish/submit": 1}, expect="published")


# --------------------------------------------------------------------------- F25: event pushes


@pytest.fixture
def inbox(make_rig: Callable[..., Rig], monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    """A rig whose fake delivers PUBLISHJOBFINISH to the real web app's /wechat/push
    (signature check, parse, record_event), served in-process by uvicorn."""
    import uvicorn

    from pipeline.web.app import create_app

    monkeypatch.setenv("WECHAT_PUSH_TOKEN", "pushtoken")  # the fake signs with this token
    rig = make_rig()
    app = create_app(rig.settings, rig.store, Clock(at("20:00")), secret="test-secret-key")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, what="the web app")
    port = server.servers[0].sockets[0].getsockname()[1]
    rig.fake.push_url = f"http://127.0.0.1:{port}/wechat/push"
    yield rig
    server.should_exit = True
    thread.join(10)


PUSHES = ["duplicate", "late", "out_of_order", "early", "early-answer-lost"]


@pytest.mark.parametrize("delivery", PUSHES)
def test_f25_publish_job_finish_pushes(inbox: Rig, delivery: str) -> None:
    """F25: PUBLISHJOBFINISH duplicated, late, out of order, before the publish_id was
    stored, or the only news of a submit whose answer was lost.
    Expected: every delivery is accepted, the inbox holds each event once, the job is
    resolved from it (without polling when the push came first); PUBLISHED once."""
    rig = inbox
    rig.add_stories(2)
    if delivery == "early-answer-lost":
        rig.fake.inject("freepublish/submit", "latency", seconds=SLOW, push="early")
    else:
        rig.fake.inject("freepublish/submit", "push", mode=delivery, delay=0.3)
    rig.push(at("20:00"))
    if delivery == "early-answer-lost":  # the push arrives after our client gave up
        wait_for(lambda: rig.fake.ledger.pushes, what="the push")
    rig.settle(at("20:02"))
    rig.fake.release_pushes()
    copies = 2 if delivery == "duplicate" else 1
    wait_for(lambda: len(rig.fake.ledger.pushes) == copies, what="the pushes")
    assert [p.http_status for p in rig.fake.ledger.pushes] == [200] * copies
    with rig.store.session() as session:
        assert len(session.exec(select(WeChatEvent)).all()) == 1
    if delivery.startswith("early"):
        assert rig.calls("freepublish/get") == 0 and rig.calls("freepublish/batchget") == 0
    check_invariants(rig, budget={"freepublish/submit": 1}, expect="published")


# --------------------------------------------------------------------------- F27: withdrawn


def test_f27_withdrawn_before_submit(make_rig: Callable[..., Rig],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """F27: an editor wants to change a story after the day's draft was made, before the
    submit. Expected: editing is refused while the story is in the push; withdrawing wins,
    the WeChat draft is deleted and the push goes out once without that story, which is
    back with the editors (and can be edited then)."""
    rig = make_rig()
    gone, *kept = rig.add_stories(3)
    rig.fake.inject("freepublish/submit", "errcode", code=45011)  # waits in DRAFTED
    rig.push(at("20:00"))
    assert rig.job().state == wechat.DRAFTED
    monkeypatch.setenv("VISUAL", "sed -i s/活动现场/活动现场（更正）/")
    now = at("20:00").isoformat()
    refused = rig.ws.run("edit", str(gone), now=now)
    assert refused.code != 0 and "can no longer be edited" in refused.err, refused.err
    result = rig.ws.run("withdraw", str(gone), "--note", "wrong photo", now=now)
    assert result.code == 0 and "WeChat draft deleted" in result.out, result.err
    assert rig.ws.run("edit", str(gone), now=now).code == 0
    rig.settle(at("20:02"))
    assert rig.fake.ledger.drafts[0].removed_by == "delete"
    assert sorted(s.story for s in ledger_articles(rig.fake)) == kept
    check_invariants(rig, expect={gone: "back", **dict.fromkeys(kept, "published")})


def test_f27_withdraw_refused_after_submit(make_rig: Callable[..., Rig]) -> None:
    """F27: an editor tries to withdraw a story after the submit was sent.
    Expected: refused with a sentence, an alert is raised, the push goes out whole once."""
    rig = make_rig()
    stories = rig.add_stories(2)
    rig.fake.publish_seconds = None
    rig.fake.inject("freepublish/submit", "stuck", polls=2)
    rig.push(at("20:00"))
    assert rig.job().state == wechat.SUBMITTED
    result = rig.ws.run("withdraw", str(stories[0]), "--note", "too late",
                        now=at("20:01").isoformat())
    assert result.code != 0 and "cannot be withdrawn" in result.err
    assert any(a.kind == "needs_human" and a.draft_id == stories[0] for a in rig.alerts())
    rig.settle(at("20:02"))
    check_invariants(rig, budget={"freepublish/submit": 1}, expect="published")
