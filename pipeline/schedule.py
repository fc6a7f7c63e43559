"""The scheduler: APScheduler 3.x wakes us up; our tables decide what is owed.

One active scheduler per database: the holder of the lease (``pipeline.lease``: a row
with a heartbeat and a fencing token). It renews the heartbeat every
``lease_seconds / 3``, checks its token before each job and before each external call,
and stops as soon as it finds that another process took over. A standby
(``pipeline worker --standby``) waits and takes over when the heartbeat is older than
``lease_seconds``. Correctness never depends on the lease alone: every job only claims
rows guarded by unique constraints. A start-up catch-up (our code, not APScheduler's
misfire logic) finishes interrupted pushes, records missed days and pushes today if its
time has passed.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import sqlalchemy as sa
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
from apscheduler.schedulers.background import BackgroundScheduler

from .clock import Clock
from .config import Settings
from .errors import PipelineError, ScheduleError, StoreError
from .fence import fenced
from .lease import Lease, LeaseLost
from .notify.commands import notify_tick
from .push import catch_up
from .reach import reach_tick
from .store import Store
from .sweep import sweep

log = logging.getLogger(__name__)


def tick(store: Store, settings: Settings, clock: Clock, takeover: bool = False,
         lease: Lease | None = None) -> None:
    """One wake-up: catch up on pushes, then sweep deadlines. Never raises.

    ``takeover``: the start-up tick, run while holding the lease, may reconcile
    in-flight WeChat calls at once (their process is gone). ``lease``: checked before
    each job and before each external call; a lost lease ends the tick at once.
    """
    try:
        with fenced(lease):
            _tick(store, settings, clock, takeover, lease)
    except LeaseLost:
        pass  # logged once by the lease; the serve loop stops


def _tick(store: Store, settings: Settings, clock: Clock, takeover: bool,
          lease: Lease | None) -> None:
    def still_holding() -> None:
        if lease is not None:
            lease.check()

    now = clock.now()
    try:
        still_holding()
        report = catch_up(store, settings, now, takeover=takeover)
        if report is not None and report.articles:
            log.info("pushed %d article(s) for %s", len(report.articles), report.day)
        still_holding()
        with store.session() as session:
            result = sweep(session, settings, now)
        log.debug("sweep: %d due soon, %d overdue", len(result.due_soon), len(result.overdue))
        still_holding()
        notify_tick(store, settings, now)  # alerts, the digest and the bulletin when due
        still_holding()
        reach_tick(store, settings, now)   # WeChat's read figures, once a day after 10:00
    except StoreError as exc:
        # one line, no traceback: the transaction rolled back whole; the next tick resumes
        log.error("scheduled run stopped: %s The next tick resumes from the committed rows.",
                  exc)
    except PipelineError as exc:
        log.error("scheduled run failed: %s", exc)
    except sa.exc.OperationalError as exc:
        # A database restart or a dropped connection: the transaction rolled back whole,
        # and the pool replaces the dead connection (pre-ping), so the next tick resumes.
        log.error("scheduled run stopped: the database dropped the connection or is "
                  "unreachable (%s); the next tick resumes from the committed rows",
                  str(exc.orig).strip())
    except Exception:
        log.exception("scheduled run crashed; it will run again at the next tick")


def build_scheduler(store: Store, settings: Settings, clock: Clock,
                    tick_seconds: float, lease: Lease | None = None) -> BackgroundScheduler:
    """The in-memory scheduler: the push at push time and a tick every few minutes."""
    scheduler = BackgroundScheduler(timezone=settings.tz, job_defaults={
        "coalesce": True, "max_instances": 1, "misfire_grace_time": 6 * 3600})
    push_at = settings.schedule.push_time
    scheduler.add_job(tick, "cron", args=(store, settings, clock, False, lease), id="push",
                      hour=push_at.hour, minute=push_at.minute, replace_existing=True)
    scheduler.add_job(tick, "interval", args=(store, settings, clock, False, lease), id="tick",
                      seconds=tick_seconds, replace_existing=True)
    scheduler.add_listener(_on_event, EVENT_JOB_MISSED | EVENT_JOB_ERROR | EVENT_JOB_MAX_INSTANCES)
    return scheduler


def _on_event(event: Any) -> None:
    log.warning("scheduler event %s for job %s", event.code, getattr(event, "job_id", "?"))


def serve(store: Store, settings: Settings, clock: Clock, *,
          stop: threading.Event | None = None, tick_seconds: float | None = None,
          on_ready: Callable[[], None] | None = None, standby: bool = False) -> None:
    """Run the scheduler in the foreground until SIGINT/SIGTERM (or ``stop`` is set, or
    the lease is lost to another process).

    ``standby``: when another scheduler holds the lease, wait and take over once its
    heartbeat is older than ``schedule.lease_seconds`` (or its process is gone).

    Raises:
        ScheduleError: when another scheduler holds the database (and not ``standby``).
    """
    stop = stop or threading.Event()
    _install_signals(stop)
    lease = Lease(store, settings)
    if not lease.try_take():
        if not standby:
            raise ScheduleError.coded("schedule.another_running", holder=lease.holder())
        log.info("standby: %s holds the scheduler lease; taking over when its heartbeat is "
                 "older than %ds", lease.holder(), lease.seconds)
        if not _stand_by(lease, stop):
            log.info("scheduler stopped (standby)")
            return
    scheduler: BackgroundScheduler | None = None
    try:
        tick(store, settings, clock, takeover=True, lease=lease)  # the start-up catch-up
        seconds = tick_seconds or settings.schedule.sweep_minutes * 60
        scheduler = build_scheduler(store, settings, clock, seconds, lease)
        scheduler.start()
        log.info("scheduler running: push at %s %s, tick every %ss, lease token %d",
                 settings.schedule.push_time.strftime("%H:%M"), settings.tz.key, seconds,
                 lease.token)
        if on_ready:
            on_ready()
        _hold(lease, stop)
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=True)  # let a running push finish its current step
        lease.release()
        log.info("scheduler stopped")


def _stand_by(lease: Lease, stop: threading.Event) -> bool:
    """Wait until the lease can be taken; False when told to stop first."""
    while not stop.wait(min(lease.renew_every, 2.0)):
        try:
            if lease.try_take():
                return True
        except sa.exc.OperationalError as exc:
            log.warning("standby: the database is unreachable (%s)", str(exc.orig).strip())
    return False


def _hold(lease: Lease, stop: threading.Event) -> None:
    """Renew the lease until told to stop or until it is lost."""
    due = time.monotonic() + lease.renew_every
    while not stop.wait(0.5) and not lease.lost.is_set():
        if time.monotonic() < due:
            continue
        due = time.monotonic() + lease.renew_every
        try:
            lease.renew()
        except sa.exc.OperationalError as exc:
            # The lease runs out unless the database comes back in time; when it does,
            # the renewal tells us whether a standby took over meanwhile.
            log.warning("could not renew the scheduler lease: %s", str(exc.orig).strip())


def _install_signals(stop: threading.Event) -> None:
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("received signal %d; stopping after the current step", signum)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
