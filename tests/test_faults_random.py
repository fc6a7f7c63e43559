"""Jepsen-lite: seeded random crash points and fault scripts over a few simulated days.

Each round builds a fresh workspace and fake WeChat, picks a mode, a handful of
stories approved over three days, one crash point (or none) armed for one day's push
and a script of injected API faults, then plays the days: the push (by ``pipeline
push`` or a scheduler tick, sometimes late), a restart with takeover after a crash,
ticks through the evening and night, and two more days to drain. A crash is a real
``pipeline worker`` killing itself with SIGKILL, or the same point simulated
in-process (an exception nothing may catch, so every open transaction rolls back).
Afterwards the invariants of ``test_faults.check_invariants`` (I1, I2, I3, I5) must hold.

The seed is printed with every round; ``PIPELINE_FAULT_SEED=N`` replays a run and
``-k roundK`` one round of it. ``PIPELINE_FAULT_ROUNDS`` sets how many rounds run
(default 20: about 25 s on one core, half that with two).
"""

from __future__ import annotations

import hashlib
import os
import random
import secrets
import signal
import time as time_module
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

import pipeline.faults
from tests.test_faults import POLL, SEND, Rig, at, check_invariants, make_rig, wait_for

__all__ = ["make_rig"]  # the fixture, shared with test_faults

ROUNDS = int(os.environ.get("PIPELINE_FAULT_ROUNDS", "20"))
DAYS = 3
READ_TIMEOUT = 1.0
SLOW = READ_TIMEOUT + 0.5
CRASH_POINTS = ("after_push_claimed", "after_draft_intent", "after_draft_added",
                "after_draft_stored", "before_submit_sent", "after_submit_sent",
                "after_article_written")


def base_seed() -> int:
    """PIPELINE_FAULT_SEED, else one random seed per test run (the same in every xdist
    worker, so all of them collect and play the same rounds)."""
    given = os.environ.get("PIPELINE_FAULT_SEED")
    if given:
        return int(given)
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run:
        return int(hashlib.sha256(run.encode()).hexdigest()[:8], 16)
    return secrets.randbelow(2**32)


SEED = base_seed()
Fault = tuple[int, str, str, dict[str, Any]]  # day, endpoint, fault, parameters


def fault_menu(mode: str) -> list[tuple[str, str, dict[str, Any]]]:
    """Every fault a round may inject, for the mode's send and poll endpoints."""
    send, poll, fp = SEND[mode], POLL[mode], mode == "freepublish"
    menu: list[tuple[str, str, dict[str, Any]]] = [
        ("draft/add", "errcode", {"code": -1}),
        ("draft/add", "errcode", {"code": -1, "process": True}),
        ("draft/add", "http_status", {"status": 502}),
        ("draft/add", "process_then_drop", {}),
        ("draft/add", "drop_before", {}),
        ("draft/add", "errcode", {"code": 45011}),
        ("draft/add", "latency", {"seconds": SLOW, "process_first": True}),
        (send, "errcode", {"code": -1}),
        (send, "errcode", {"code": -1, "process": True}),
        (send, "http_status", {"status": 503, "process": True}),
        (send, "http_status", {"status": 502}),
        (send, "process_then_drop", {}),
        (send, "drop_before", {}),
        (send, "latency", {"seconds": SLOW, "process_first": True}),
        (send, "latency", {"seconds": SLOW, "process_first": False}),
        (send, "errcode", {"code": 45011}),
        (send, "errcode", {"code": 45009 if fp else 45028}),
        (send, "errcode", {"code": 48001}),
        (send, "expire_token", {}),
        (send, "stuck", {"polls": 3}),
        (send, "stuck", {}),
        (send, "final_status", {"status": 3 if fp else "SEND_FAIL"}),
        (poll, "errcode", {"code": -1}),
        (poll, "errcode", {"code": 45009}),
        (poll, "expire_token", {}),
        ("draft/batchget", "http_status", {"status": 502}),
        ("stable_token", "errcode", {"code": -1}),
    ]
    if fp:
        menu += [(send, "final_status", {"status": 2}), (send, "errcode", {"code": 53503}),
                 (send, "final_status", {"status": 0, "then": 6}),
                 ("freepublish/batchget", "errcode", {"code": 45009})]
    return menu


@dataclass
class Script:
    """Everything a round does, drawn from its seed."""

    mode: str
    crash: str | None
    crash_day: int
    by_process: bool
    stories: list[tuple[int, int]]       # per day: (count, days since the activity)
    push_at: list[tuple[str, int]]       # per day: ("push" | "tick", minutes after 20:00)
    every: int                           # minutes between ticks in the evening and night
    faults: list[Fault] = field(default_factory=list)


def draw(rng: random.Random) -> Script:
    mode = rng.choice(["freepublish", "masssend"])
    crash = rng.choice([None, *CRASH_POINTS, *CRASH_POINTS])
    menu = fault_menu(mode)
    faults = [(rng.randrange(DAYS), *rng.choice(menu)) for _ in range(rng.randint(0, 4))]
    return Script(
        mode=mode, crash=crash, crash_day=rng.randrange(DAYS), by_process=rng.random() < 0.3,
        stories=[(rng.randint(1 if day == 0 else 0, 3), rng.choice([0, 0, 0, 2]))
                 for day in range(DAYS)],
        push_at=[(rng.choice(["push", "tick"]), rng.choice([0, 0, 3, 90, 150]))
                 for _ in range(DAYS)],
        every=rng.choice([15, 30, 60]), faults=faults)


class Crash(BaseException):
    """A simulated kill -9: an exception the pipeline cannot catch."""


@contextmanager
def armed(monkeypatch: pytest.MonkeyPatch, point: str) -> Iterator[None]:
    def crash_point(name: str) -> None:
        if name == point:
            raise Crash(name)

    with monkeypatch.context() as patch:
        patch.setattr(pipeline.faults, "crash_point", crash_point)
        yield


def crash_run(rig: Rig, script: Script, when: datetime, how: str,
              monkeypatch: pytest.MonkeyPatch) -> None:
    """The day's push with the crash point armed; it may not be reached (then no crash)."""
    assert script.crash is not None
    if script.by_process:
        proc = rig.serve(when, script.crash)
        wait_for(lambda: proc.proc.poll() is not None or "scheduler running" in proc.output(),
                 what="the crash or the start-up tick")
        code = proc.proc.poll()
        if code is None:
            code = proc.stop()
        assert code in (0, -signal.SIGKILL), proc.output()
        return
    with armed(monkeypatch, script.crash):
        try:
            rig.push(when) if how == "push" else rig.tick(when)
        except Crash:
            pass


def play(rig: Rig, script: Script, monkeypatch: pytest.MonkeyPatch) -> None:
    for day in range(DAYS):
        count, before = script.stories[day]
        if count:
            rig.add_stories(count, day, days_before=before)
        for _, endpoint, fault, params in (f for f in script.faults if f[0] == day):
            rig.fake.inject(endpoint, fault, **params)
        how, late = script.push_at[day]
        when = at("20:00", day) + timedelta(minutes=late)
        if script.crash and script.crash_day == day:
            crash_run(rig, script, when, how, monkeypatch)
            when += timedelta(minutes=2)
            rig.tick(when, takeover=True)  # the restart: the start-up tick takes over
        elif how == "push":
            rig.push(when)
        else:
            rig.tick(when)
        rig.run(when + timedelta(minutes=script.every), at("10:00", day + 1), script.every)
    rig.run(at("10:00", DAYS), at("12:00", DAYS + 2), every=60)  # drain: two more days


@pytest.mark.slow
@pytest.mark.parametrize("round_no", range(ROUNDS), ids=[f"round{n}" for n in range(ROUNDS)])
def test_random_faults(make_rig: Callable[..., Rig], monkeypatch: pytest.MonkeyPatch,
                       round_no: int) -> None:
    """Random crash point + random fault script over three days, then the invariants:
    every story at most once at WeChat, none silently lost, database and ledger agree,
    calls within budgets."""
    script = draw(random.Random(SEED * 1000 + round_no))
    replay = (f"replay: PIPELINE_FAULT_SEED={SEED} pytest tests/test_faults_random.py "
              f"-k round{round_no}")
    print(f"{replay}\n{script}")
    rig = make_rig(script.mode)
    rig.ws.configure("wechat", read_timeout=READ_TIMEOUT)
    try:
        play(rig, script, monkeypatch)
        check_invariants(rig)
    except Exception as exc:
        raise AssertionError(f"{exc}\n{replay}\n{script}") from exc


# ------------------------------------------------------- schedulers killed and frozen

# Each round starts two real workers and waits out one lease (5 s): about 15 s of an idle
# two-core machine, so the default three keep the mode under a minute.
STANDBY_ROUNDS = int(os.environ.get("PIPELINE_STANDBY_ROUNDS", "3"))


@dataclass
class StandbyScript:
    """A round of the standby mode: how the active scheduler is stopped, and when."""

    mode: str
    stories: int
    late: int            # minutes after push time the schedulers start
    how: str             # "kill" (SIGKILL) or "freeze" (SIGSTOP, woken after the takeover)
    after: float         # seconds after the active one took the lease


def draw_standby(rng: random.Random) -> StandbyScript:
    return StandbyScript(mode=rng.choice(["freepublish", "masssend"]),
                         stories=rng.randint(1, 4), late=rng.choice([0, 3, 90]),
                         how=rng.choice(["kill", "freeze"]), after=rng.choice([0.0, 0.3, 1.0,
                                                                               2.5]))


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("round_no", range(STANDBY_ROUNDS),
                         ids=[f"standby{n}" for n in range(STANDBY_ROUNDS)])
def test_random_scheduler_kills_and_freezes_with_a_standby(
        make_rig: Callable[..., Rig], pg_url: str, round_no: int) -> None:
    """Two `pipeline worker --standby` started together on one PostgreSQL database: one
    takes the lease and pushes, the other stands by. The holder is killed or frozen at a
    random moment after it took the lease (often in the middle of the day's push). The
    standby takes over, a frozen holder woken afterwards stops by itself, exactly one
    push goes out that day, and every story exactly once (the invariants of
    test_faults)."""
    script = draw_standby(random.Random(SEED * 1000 + 500 + round_no))
    replay = (f"replay: PIPELINE_FAULT_SEED={SEED} pytest tests/test_faults_random.py "
              f"-k standby{round_no}")
    print(f"{replay}\n{script}")
    rig = make_rig(script.mode, pg_url)
    rig.ws.configure("schedule", lease_seconds=5)
    rig.add_stories(script.stories)
    when = at("20:00") + timedelta(minutes=script.late)
    # Started together (one start-up's wait, not two); the lease decides who is active.
    procs = [rig.serve(when, None, "worker", "--standby") for _ in range(2)]
    try:
        holder = _lease_pid(rig, {p.pid for p in procs})
        active, standby = sorted(procs, key=lambda p: p.pid != holder)
        time_module.sleep(script.after)  # a random moment; nothing is asserted before it
        os.kill(active.pid, signal.SIGKILL if script.how == "kill" else signal.SIGSTOP)
        # A frozen holder may hold row locks the standby's catch-up waits for: wake it
        # after a while, and it must then stop by itself at its next lease check.
        try:
            wait_for(lambda: "scheduler running" in standby.output(), timeout=20,
                     what="the standby takes over")
        except AssertionError:
            if script.how != "freeze":
                raise
        finally:
            if script.how == "freeze":
                os.kill(active.pid, signal.SIGCONT)
        wait_for(lambda: "scheduler running" in standby.output(), timeout=90,
                 what="the standby takes over")
        code = active.wait_exit(90)
        assert code == (-signal.SIGKILL if script.how == "kill" else 0), active.output()
        if script.how == "freeze":
            assert active.output().count("the scheduler lease was taken over") == 1, \
                active.output()
            assert "Traceback" not in active.output(), active.output()
        assert standby.stop() == 0, standby.output()
        assert "Traceback" not in standby.output(), standby.output()
        rig.run(when + timedelta(minutes=5), at("12:00", 2), every=30)  # drain
        check_invariants(rig)
        _one_push_that_day(rig)
    except Exception as exc:
        raise AssertionError(f"{exc}\n{replay}\n{script}") from exc
    finally:
        for proc in procs:
            if proc.proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.kill()


def _lease_pid(rig: Rig, pids: set[int]) -> int:
    """The pid of whichever of ``pids`` took the scheduler lease first."""
    from pipeline.models import SchedulerLease

    found: list[int] = []

    def taken() -> bool:
        with rig.store.session() as session:
            lease = session.get(SchedulerLease, "scheduler")
            if lease is not None and lease.pid in pids:
                found.append(lease.pid)
        return bool(found)
    wait_for(taken, timeout=90, what="a scheduler takes the lease")
    return found[0]


def _one_push_that_day(rig: Rig) -> None:
    """One push row for the day, done, and one send at WeChat carrying every story."""
    from sqlmodel import select

    from pipeline.models import Push
    from tests.test_faults import NOT_OUT, ledger_articles

    day = at("20:00").date()
    with rig.store.session() as session:
        assert [p.state for p in session.exec(select(Push).where(Push.local_date == day))
                ] == ["done"]
    out = [s for s in ledger_articles(rig.fake) if s.status not in NOT_OUT]
    assert len({s.marker for s in out}) == 1, out
    assert sorted(s.story for s in out) == sorted(rig.stories), out
