"""CLI hooks for the web layer: ``user add|passwd``, ``serve`` (web + scheduler) and
``worker`` (scheduler only). ``pipeline.cli`` registers them; each takes the
CLI's ``Context`` (``.args``, ``.settings``, ``.store``, ``.clock``, ``.now()``).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import getpass
import json
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from typing import Any, Protocol

import uvicorn

from ..clock import Clock
from ..config import Settings
from ..errors import PipelineError
from ..schedule import serve
from ..store import Store
from .app import SECRET_ENV, create_app
from .auth import add_user, disable_user
from .serving import server_config

log = logging.getLogger(__name__)


class Ctx(Protocol):
    args: argparse.Namespace

    @property
    def settings(self) -> Settings: ...

    @property
    def store(self) -> Store: ...

    @property
    def clock(self) -> Clock: ...


def read_password(stdin: Any = None) -> str:
    """Ask twice on a terminal; otherwise read one line (for scripts and tests).

    Raises:
        PipelineError: the two entries differ or nothing was given.
    """
    stdin = stdin or sys.stdin
    if stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise PipelineError.coded("auth.passwords_differ")
        return first
    line = stdin.readline()
    if not line:
        raise PipelineError.coded("auth.no_password")
    return str(line.rstrip("\r\n"))


def cmd_user_add(ctx: Ctx) -> int:
    return _set_user(ctx, replace=False)


def cmd_user_passwd(ctx: Ctx) -> int:
    return _set_user(ctx, replace=True)


def cmd_user_disable(ctx: Ctx) -> int:
    with ctx.store.session() as session:
        user = disable_user(session, ctx.args.name)
    print(f"disabled {user.name}; its sessions have ended")
    return 0


def _set_user(ctx: Ctx, *, replace: bool) -> int:
    password = read_password()
    with ctx.store.session() as session:
        user = add_user(session, ctx.args.name, password, ctx.clock.now(), replace=replace,
                        stages=_stages(ctx, getattr(ctx.args, "stage", [])),
                        email=getattr(ctx.args, "email", None))
    signs = json.loads(user.stages)
    print(f"{'password set for' if replace else 'created editor'} {user.name}"
          + (f", signs {'、'.join(signs)}" if signs else ""))
    return 0


def _stages(ctx: Ctx, names: list[str]) -> list[str]:
    known = [s.name for s in ctx.settings.review.stages]
    for name in names:
        if name not in known:
            raise PipelineError.coded("auth.no_stage", name=name, known=list(known))
    return list(dict.fromkeys(names))


def _tick_seconds() -> float | None:
    return float(os.environ.get("PIPELINE_TICK_SECONDS", "0")) or None


def check_wechat(settings: Settings, store: Store) -> None:
    """A misconfigured WeChat account stops us before anything is sent (as ``serve`` did).

    Raises:
        PipelineError: the credentials or the IP whitelist are refused.
    """
    if settings.wechat.enabled:
        from ..publish.wechat import check_account  # only WeChat mode pays for the import

        check_account(settings, store)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that a busy port is one sentence, not
    uvicorn's ``[Errno 98]`` and an exit code outside 0/1/2.

    Raises:
        PipelineError: the address is in use, not ours to take, or not an address here.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise PipelineError.coded("serve.bad_host", host=host, reason=str(exc.strerror)
                                  ) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PipelineError.coded("serve.port_in_use", host=host, port=port,
                                      next=port + 1) from None
        if exc.errno == errno.EACCES:
            raise PipelineError.coded("serve.port_privileged", host=host, port=port) from None
        raise PipelineError.coded("serve.cannot_listen", host=host, port=port,
                                  reason=str(exc.strerror)) from None
    sock.set_inheritable(True)
    return sock


def warn_frozen_clock(args: argparse.Namespace) -> None:
    """A long-running process on a replaced clock says so before anything else."""
    if args.now:
        print(f"warning: running on a pretend clock that starts at {args.now} (--now); "
              "pushes and alerts follow that clock, not the real time", file=sys.stderr,
              flush=True)
    elif os.environ.get("PIPELINE_NOW"):
        print(f"warning: PIPELINE_NOW={os.environ['PIPELINE_NOW']} is set in this shell, so "
              "pushes and alerts follow a pretend clock that starts then, not the real time; "
              "run 'unset PIPELINE_NOW' and start again to use the real clock",
              file=sys.stderr, flush=True)


def worker(ctx: Ctx) -> int:
    """The scheduler alone, in the foreground, until SIGINT/SIGTERM."""
    warn_frozen_clock(ctx.args)
    settings = ctx.settings
    check_wechat(settings, ctx.store)
    standby = bool(getattr(ctx.args, "standby", False))
    print(f"pipeline worker{' (standby)' if standby else ''}: push at "
          f"{settings.schedule.push_time:%H:%M} {settings.tz.key}; Ctrl-C to stop", flush=True)
    serve(ctx.store, settings, ctx.clock, tick_seconds=_tick_seconds(), standby=standby)
    return 0


class SchedulerThread:
    """The scheduler in a background thread of the web process, stopped with the server."""

    def __init__(self, store: Store, settings: Settings, clock: Clock) -> None:
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(store, settings, clock),
                                       name="scheduler", daemon=True)

    def _run(self, store: Store, settings: Settings, clock: Clock) -> None:
        try:
            serve(store, settings, clock, stop=self.stop, tick_seconds=_tick_seconds(),
                  on_ready=self.ready.set)
        except Exception as exc:  # noqa: BLE001 - handed to start() or logged at exit
            self.error = exc
            self.ready.set()

    def start(self) -> None:
        """Start and wait for the catch-up to finish (or the lock to be refused).

        Raises:
            PipelineError: another scheduler holds the database.
        """
        self.thread.start()
        self.ready.wait()
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=60)
        if self.error is not None:
            log.error("the scheduler stopped with an error: %s", self.error)


class _Server(uvicorn.Server):
    """uvicorn, except that a SIGINT/SIGTERM is not raised again after the graceful
    shutdown: the process must live on to stop the scheduler thread cleanly."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if sockets and self.started:  # uvicorn says where it listens only for its own sockets
            host, port = sockets[0].getsockname()[:2]
            logging.getLogger("uvicorn.error").info(
                "Uvicorn running on http://%s:%d (Press CTRL+C to quit)", host, port)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {s: signal.signal(s, self.handle_exit) for s in (signal.SIGINT,
                                                                    signal.SIGTERM)}
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)


def serve_web(ctx: Ctx) -> int:
    """``pipeline serve``: the web app, and the scheduler in the same process unless
    ``--no-scheduler``. uvicorn owns the main thread and its signals; the scheduler
    thread is stopped after the server has shut down."""
    settings, args = ctx.settings, ctx.args
    warn_frozen_clock(args)
    if not os.environ.get(SECRET_ENV) and not settings.database_url.startswith("sqlite"):
        # Several processes share one PostgreSQL: each would sign sessions, CSRF tokens
        # and the calendar feed with its own random key, and editors would be thrown out.
        raise PipelineError.coded("serve.no_secret", name=SECRET_ENV)
    listener = bind(args.host, args.port)  # a busy port stops us before anything starts
    store = ctx.store
    if not args.no_scheduler:
        check_wechat(settings, store)
    # A signal during the catch-up (before uvicorn takes the signals over) still ends
    # in a clean stop rather than Python's default of dying on the spot.
    early = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, lambda *_: early.set())
    scheduler = None if args.no_scheduler else SchedulerThread(store, settings, ctx.clock)
    if scheduler is not None:
        scheduler.start()
    if early.is_set():
        if scheduler is not None:
            scheduler.close()
        listener.close()
        return 0
    app = create_app(settings, store, ctx.clock)
    where = f"http://{args.host}:{listener.getsockname()[1]}/"
    print(f"pipeline serve: {where}" + ("" if scheduler is None else
          f"; push at {settings.schedule.push_time:%H:%M} {settings.tz.key}") +
          "; Ctrl-C to stop", flush=True)
    config = server_config(app, settings.web, args.host, args.port)
    try:
        _Server(config).run(sockets=[listener])
    finally:
        listener.close()
        if scheduler is not None:
            scheduler.close()
    return 0
