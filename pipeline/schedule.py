"""The scheduler: APScheduler 3.x wakes us up; our tables decide what is owed.

One scheduler per database: an OS file lock beside a SQLite file, a session
advisory lock on PostgreSQL. Both vanish with the process (also on kill -9),
and correctness never depends on them: every job only claims rows guarded by
unique constraints. A start-up catch-up (our code, not APScheduler's misfire
logic) finishes interrupted pushes, records missed days and pushes today if
its time has passed.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

import sqlalchemy as sa
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
from apscheduler.schedulers.background import BackgroundScheduler

from .clock import Clock
from .config import Settings
from .errors import PipelineError, ScheduleError, StoreError
from .models import SchedulerLease
from .notify.commands import notify_tick
from .push import catch_up
from .reach import reach_tick
from .store import Store
from .sweep import sweep

log = logging.getLogger(__name__)
LOCK_KEY = 0x5049_5045  # "PIPE": the advisory lock id on PostgreSQL


class InstanceLock:
    """Held while a scheduler runs; a second one against the same database is refused."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._file: Any = None
        self._connection: sa.Connection | None = None

    def acquire(self, now: datetime) -> None:
        """Take the lock or raise ScheduleError naming the process that holds it."""
        if self.store.is_sqlite:
            self._lock_file()
        else:
            self._lock_advisory()
        with self.store.session() as session:
            lease = session.get(SchedulerLease, "scheduler") or SchedulerLease(
                name="scheduler", started_at=now, heartbeat_at=now)
            lease.pid, lease.host = os.getpid(), socket.gethostname()
            lease.holder = f"pid {lease.pid} on {lease.host}"
            lease.started_at = lease.heartbeat_at = now
            session.add(lease)

    def _holder(self) -> str:
        try:
            with self.store.session() as session:
                lease = session.get(SchedulerLease, "scheduler")
        except PipelineError:
            lease = None
        if lease is None:
            return "another process"
        return f"{lease.holder}, started {lease.started_at.isoformat(timespec='seconds')}"

    def _refuse(self) -> ScheduleError:
        return ScheduleError(f"Another scheduler is already running against this database "
                             f"({self._holder()}); stop it before starting a new one.")

    def _lock_file(self) -> None:
        path = Path(str(self.settings.paths.database) + ".lock")
        handle = path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise self._refuse() from None
        self._file = handle

    def _lock_advisory(self) -> None:
        connection = self.store.engine.connect()
        locked = connection.execute(sa.text("SELECT pg_try_advisory_lock(:k)"),
                                    {"k": LOCK_KEY}).scalar()
        connection.commit()
        if not locked:
            connection.close()
            raise self._refuse()
        self._connection = connection

    def ensure(self) -> None:
        """After the database came back, hold the advisory lock again (PostgreSQL ends
        a session's locks with its connection), or refuse if another scheduler took it.

        Raises:
            ScheduleError: ``schedule.lock_lost``: another scheduler holds it now.
        """
        if self._connection is None:
            return
        try:
            self._connection.execute(sa.text("SELECT 1")).scalar()
            self._connection.commit()
            return
        except sa.exc.DBAPIError:
            with contextlib.suppress(sa.exc.DBAPIError):
                self._connection.close()
        try:
            connection = self.store.engine.connect()
            locked = connection.execute(sa.text("SELECT pg_try_advisory_lock(:k)"),
                                        {"k": LOCK_KEY}).scalar()
            connection.commit()
        except sa.exc.DBAPIError as exc:
            log.error("the scheduler lock cannot be taken again yet (%s); trying again at "
                      "the next tick", str(exc.orig).strip().splitlines()[0] if exc.orig else exc)
            return  # still down: self._connection stays the dead one, tried again later
        if not locked:
            connection.close()
            self._connection = None
            raise ScheduleError.coded("schedule.lock_lost", holder=self._holder())
        log.info("the scheduler lock was taken again after the database came back")
        self._connection = connection

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        if self._connection is not None:
            with contextlib.suppress(sa.exc.DBAPIError):  # gone with the database
                self._connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"),
                                         {"k": LOCK_KEY})
                self._connection.close()
            self._connection = None


def tick(store: Store, settings: Settings, clock: Clock, takeover: bool = False) -> None:
    """One wake-up: catch up on pushes, then sweep deadlines. Never raises.

    ``takeover``: the start-up tick, run while holding the instance lock, may reconcile
    in-flight WeChat calls at once (their process is gone).
    """
    now = clock.now()
    try:
        report = catch_up(store, settings, now, takeover=takeover)
        if report is not None and report.articles:
            log.info("pushed %d article(s) for %s", len(report.articles), report.day)
        with store.session() as session:
            result = sweep(session, settings, now)
        log.debug("sweep: %d due soon, %d overdue", len(result.due_soon), len(result.overdue))
        notify_tick(store, settings, now)  # alerts, the digest and the bulletin when due
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
                    tick_seconds: float) -> BackgroundScheduler:
    """The in-memory scheduler: the push at push time and a tick every few minutes."""
    scheduler = BackgroundScheduler(timezone=settings.tz, job_defaults={
        "coalesce": True, "max_instances": 1, "misfire_grace_time": 6 * 3600})
    push_at = settings.schedule.push_time
    scheduler.add_job(tick, "cron", args=(store, settings, clock), id="push",
                      hour=push_at.hour, minute=push_at.minute, replace_existing=True)
    scheduler.add_job(tick, "interval", args=(store, settings, clock), id="tick",
                      seconds=tick_seconds, replace_existing=True)
    scheduler.add_listener(_on_event, EVENT_JOB_MISSED | EVENT_JOB_ERROR | EVENT_JOB_MAX_INSTANCES)
    return scheduler


def _on_event(event: Any) -> None:
    log.warning("scheduler event %s for job %s", event.code, getattr(event, "job_id", "?"))


def serve(store: Store, settings: Settings, clock: Clock, *,
          stop: threading.Event | None = None, tick_seconds: float | None = None,
          on_ready: Callable[[], None] | None = None) -> None:
    """Run the scheduler in the foreground until SIGINT/SIGTERM (or ``stop`` is set).

    Raises:
        ScheduleError: when another scheduler holds the database.
    """
    stop = stop or threading.Event()
    _install_signals(stop)
    lock = InstanceLock(store, settings)
    lock.acquire(clock.now())
    scheduler: BackgroundScheduler | None = None
    try:
        tick(store, settings, clock, takeover=True)  # the start-up catch-up
        seconds = tick_seconds or settings.schedule.sweep_minutes * 60
        scheduler = build_scheduler(store, settings, clock, seconds)
        scheduler.start()
        log.info("scheduler running: push at %s %s, tick every %ss",
                 settings.schedule.push_time.strftime("%H:%M"), settings.tz.key, seconds)
        if on_ready:
            on_ready()
        waited = 0.0
        while not stop.wait(1.0):
            waited += 1.0
            if waited >= min(seconds, 5.0):  # the lock went with a dropped connection?
                waited = 0.0
                lock.ensure()
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=True)  # let a running push finish its current step
        lock.release()
        log.info("scheduler stopped")


def _install_signals(stop: threading.Event) -> None:
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("received signal %d; stopping after the current step", signum)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
