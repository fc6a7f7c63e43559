"""The scheduler lease: which process runs the scheduler, with a heartbeat and a
fencing token, so a standby can take over and a holder that lost it stops.

The lease is the ``schedulerlease`` row. Taking it bumps ``token``; the holder renews
``heartbeat_at`` every ``schedule.lease_seconds / 3`` with an update conditional on its
token, and every job checks the token again before each external call (WeChat, SMTP)
through ``fence()``. A process whose renewal or check finds another token has lost the
lease (it was frozen, or its database connection was cut, and a standby took over): it
logs one line and stops, and whatever it was doing ends like a crash at that point,
which every job already resumes from its committed rows.

Another process may take the lease when the heartbeat is older than ``lease_seconds``,
or at once when the holder's OS-level lock is free (an accelerator only: an OS file
lock beside a SQLite file, a session advisory lock on PostgreSQL, both gone with the
holder's process or its connection). Times are the hosts' wall clocks in UTC.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from .config import Settings
from .models import SchedulerLease
from .store import Store

log = logging.getLogger(__name__)
NAME = "scheduler"
LOCK_KEY = 0x5049_5045  # "PIPE": the advisory lock id on PostgreSQL
RELEASED = datetime(2000, 1, 1, tzinfo=UTC)  # the heartbeat of a lease given up cleanly


class LeaseLost(BaseException):  # not an error to handle: a stop, like SIGTERM
    """This process no longer holds the scheduler lease; stop before any external call.

    A BaseException so that no ``except Exception`` on the way records it as a failure
    of the job: it unwinds like a crash, and the new holder resumes from the rows.
    """


def wall_now() -> datetime:
    return datetime.now(UTC)


class Lease:
    """The scheduler lease as held (or wanted) by this process."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.seconds = settings.schedule.lease_seconds
        self.token = 0
        self.lost = threading.Event()
        self._file: Any = None
        self._connection: sa.Connection | None = None

    @property
    def renew_every(self) -> float:
        return max(1.0, self.seconds / 3)

    def try_take(self) -> bool:
        """Take the lease if it is free, stale, or its holder's lock is gone."""
        fast = self._try_os_lock()
        now = wall_now()
        try:
            with self.store.session() as session:
                row = session.exec(select(SchedulerLease).where(SchedulerLease.name == NAME)
                                   .with_for_update()).first()
                if row is None:
                    row = SchedulerLease(name=NAME, started_at=now, heartbeat_at=now)
                elif not fast and row.heartbeat_at > now - timedelta(seconds=self.seconds):
                    self._release_os_lock()
                    return False  # a live holder (or one frozen for less than the lease)
                previous = row.holder
                row.pid, row.host = os.getpid(), socket.gethostname()
                row.holder = f"pid {row.pid} on {row.host}"
                row.started_at = row.heartbeat_at = now
                row.token = (row.token or 0) + 1
                session.add(row)
                session.flush()
                self.token = row.token
        except IntegrityError:
            self._release_os_lock()
            return False  # another process created the row at the same moment
        if previous and previous != row.holder:
            log.info("took over the scheduler lease from %s (token %d)", previous, self.token)
        return True

    def holder(self) -> str:
        """Who holds the lease, for the "already running" sentence."""
        with self.store.session() as session:
            row = session.get(SchedulerLease, NAME)
        if row is None or not row.holder:
            return "another process"
        return (f"{row.holder}, started {row.started_at.isoformat(timespec='seconds')}, "
                f"last heartbeat {row.heartbeat_at.isoformat(timespec='seconds')}")

    def renew(self) -> bool:
        """Renew the heartbeat; False (and ``lost`` set) when someone else took over."""
        if self.lost.is_set():
            return False
        with self.store.session() as session:
            result = session.execute(
                sa.update(SchedulerLease)
                .where(col(SchedulerLease.name) == NAME, col(SchedulerLease.token) == self.token)
                .values(heartbeat_at=wall_now()))
        if result.rowcount != 1:  # type: ignore[attr-defined]
            self._lose()
            return False
        if self._file is None and self._connection is None:
            self._try_os_lock()  # taken over from a frozen holder: its lock may be gone now
        return True

    def check(self) -> None:
        """Raise LeaseLost unless the row still carries our token."""
        if not self.lost.is_set():
            if self._read_token() == self.token:
                return
            self._lose()
        raise LeaseLost(f"the scheduler lease (token {self.token}) was taken over")

    def _read_token(self) -> int | None:
        # A plain read outside any transaction: the job calling us may hold SQLite's
        # write lock (BEGIN IMMEDIATE would wait for it), and it must cost one round trip.
        query = f"SELECT token FROM schedulerlease WHERE name = '{NAME}'"
        connection = self.store.engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute(query)
            row = cursor.fetchone()
            cursor.close()
            connection.rollback()
        except Exception as exc:
            # Like any database failure in a job: the job stops, the next tick resumes.
            connection.invalidate()
            raise sa.exc.OperationalError(query, None, exc) from exc
        finally:
            connection.close()
        return int(row[0]) if row else None

    def _lose(self) -> None:
        if self.lost.is_set():
            return
        self.lost.set()
        try:
            who = self.holder()
        except Exception:  # noqa: BLE001 - the one log line must not fail on a dead database
            who = "another process"
        log.error("the scheduler lease was taken over by %s while this process (token %d) "
                  "was frozen or cut off from the database; stopping without another step",
                  who, self.token)

    def release(self) -> None:
        """Give the lease up (a standby may take it at once) and drop the OS lock.
        Never raises: this runs on the way out, also after the database went away."""
        if self.token and not self.lost.is_set():
            try:
                with self.store.session() as session:
                    session.execute(
                        sa.update(SchedulerLease)
                        .where(col(SchedulerLease.name) == NAME,
                               col(SchedulerLease.token) == self.token)
                        .values(heartbeat_at=RELEASED, pid=0, holder=""))
            except Exception as exc:  # noqa: BLE001 - a standby takes over after the lease
                log.warning("could not release the scheduler lease (%s); a standby takes "
                            "over after %d seconds", str(exc).splitlines()[0], self.seconds)
        self._release_os_lock()

    # --- the accelerator --------------------------------------------------------------

    def _try_os_lock(self) -> bool:
        if self._file is not None or self._connection is not None:
            return True
        try:
            return self._lock_file() if self.store.is_sqlite else self._lock_advisory()
        except Exception as exc:  # noqa: BLE001 - only an accelerator: the row decides
            log.debug("no scheduler lock: %s", exc)
            return False

    def _lock_file(self) -> bool:
        path = Path(str(self.settings.paths.database) + ".lock")
        handle = path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._file = handle
        return True

    def _lock_advisory(self) -> bool:
        connection = self.store.engine.connect()
        locked = connection.execute(sa.text("SELECT pg_try_advisory_lock(:k)"),
                                    {"k": LOCK_KEY}).scalar()
        connection.commit()
        if not locked:
            connection.close()
            return False
        self._connection = connection
        return True

    def _release_os_lock(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._file, fcntl.LOCK_UN)
                self._file.close()
            self._file = None
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
                connection.close()
            except Exception:  # noqa: BLE001 - the server cut it: the lock went with it
                with contextlib.suppress(Exception):
                    connection.invalidate()
                    connection.close()
