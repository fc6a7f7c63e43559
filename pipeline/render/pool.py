"""A large batch rendered by worker processes while the submitting process stores it.

Rendering and proofreading a report (Markdown, Jinja, nh3, css-inline, the word lists)
are pure and cost most of a batch; validating, storing and committing it are the
submitting process's (``drafts.DraftMaker``). For a batch of at least ``PARALLEL_MIN``
reports, ``RenderPool`` starts one worker per CPU this process may use: separate
interpreters (``python -m pipeline.render.pool``), not forks of a process that holds
database connections. A worker imports the render stage only (no SQLAlchemy), reads
the settings and then jobs from its stdin as the submitting process reads and
validates the files (``feed``), answers a chunk at a time, and ends when its stdin
ends; a parent killed with SIGKILL leaves no worker behind (its next answer finds no
reader).

Nothing depends on a worker: a report it could not render, and every report of a worker
that stopped, come back as None, and the caller renders them itself, where a broken
template raises the very error it raises without the pool. Results are taken in the
batch's order, so ids, groups and acknowledgements are what they are without workers.
"""

from __future__ import annotations

import logging
import os
import pickle
import queue
import subprocess
import sys
import threading
from collections.abc import Container, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2

    from ..config import Settings
    from ..domain import Report
    from ..proofread.check import Checker, Hit
    from . import RenderedArticle

    Rendered = tuple[RenderedArticle, list[Hit], str]   # article, findings, proofread error

log = logging.getLogger(__name__)

PARALLEL_MIN = 200      # fewer reports are not worth the workers' start (~0.25 s each)
CHUNK = 8               # reports per message: few round trips, early first results
HELD = 256              # a worker's answers waiting to be taken (~15 KB each), at most
PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def render_report(report: Report, names: Sequence[str], env: jinja2.Environment,
                  checker: Checker, settings: Settings) -> Rendered:
    """One report as its article and proofreading findings (pure, no ids needed).

    Raises:
        RenderError: a template is missing or broken.
    """
    from . import render_article

    article = render_article(report, names, env, settings)
    hits, error = checker.check(article.markdown, article.title)
    return article, hits, error


def cpus() -> int:
    """CPUs this process may run on (a container or ``taskset`` may allow fewer)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class RenderPool:
    """Worker processes, started early so their imports overlap the parent's; one batch."""

    def __init__(self, settings: Settings, workers: int) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (PACKAGE_ROOT, os.environ.get("PYTHONPATH", "")) if p)}
        procs: list[subprocess.Popen[bytes]] = []
        try:
            for _ in range(workers):
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "pipeline.render.pool"], stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env))
        except OSError:
            for proc in procs:
                proc.kill()
                proc.wait()
            raise
        self.closing = threading.Event()   # we stop the workers: their silence is no news
        self.results = Results()
        self.index: dict[str, int] = {}     # dedupe key -> job number in ``results``
        self.workers = [_Worker(n, proc, self.results, self.closing)
                        for n, proc in enumerate(procs)]
        self.chunk: list[tuple[int, Report, tuple[str, ...]]] = []
        self.dealt = 0                      # chunks dealt so far (round robin)
        self.sent = False                   # every job of the batch is with the workers
        for worker in self.workers:
            worker.send(settings)

    @classmethod
    def start(cls, settings: Settings, reports: int) -> RenderPool | None:
        """A pool for a batch of ``reports``, or None when it would not pay."""
        workers = cpus()
        if not settings.intake.parallel_render or reports < PARALLEL_MIN or workers < 2:
            return None
        try:
            return cls(settings, workers)
        except OSError as exc:  # no process to be had: this one renders alone
            log.warning("render workers could not start (%s); rendering in this process", exc)
            return None

    def feed(self, report: Report, skip: Container[str] = frozenset()) -> None:
        """One more job, unless its dedupe key was given already or is in ``skip``."""
        key = report.dedupe_key
        if self.sent or key in self.index or key in skip:
            return
        self.index[key] = len(self.index)
        self.chunk.append((self.index[key], report, tuple(p.stored_name for p in report.photos)))
        if len(self.chunk) == CHUNK:
            self._deal()

    def send(self, reports: Sequence[Report], skip: Container[str] = frozenset()) -> None:
        """Every report (the first of a dedupe key, none in ``skip``), and the end."""
        for report in reports:
            self.feed(report, skip)
        self.finish()

    def finish(self) -> None:
        """No more jobs: the workers end once they have answered."""
        if self.chunk:
            self._deal()
        for worker in self.workers:
            worker.finish()
        self.sent = True

    def _deal(self) -> None:
        self.workers[self.dealt % len(self.workers)].give(self.chunk)
        self.dealt += 1
        self.chunk = []

    def take(self, report: Report) -> Rendered | None:
        """The workers' rendering of ``report``; None: render it yourself."""
        index = self.index.pop(report.dedupe_key, None)
        return None if index is None else self.results.take(index)

    def close(self) -> None:
        """Stop the workers; at once if the batch stopped early (its answers are unused)."""
        self.closing.set()
        self.results.stop()  # no thread waits for room any more
        for worker in self.workers:
            worker.stop()
        for proc in (worker.proc for worker in self.workers):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            _close(proc.stdout)


class _Worker:
    """One worker process: its jobs go in from the caller's thread (the worker drains its
    stdin at once, so these writes never wait on its answers), its answers come out on
    a thread of their own."""

    def __init__(self, n: int, proc: subprocess.Popen[bytes], results: Results,
                 closing: threading.Event) -> None:
        self.n, self.proc, self.results, self.closing = n, proc, results, closing
        self.lock = threading.Lock()
        self.waiting: set[int] = set()     # jobs given and not answered
        self.gone = False                  # its answers ended: nothing more comes
        self.reader = threading.Thread(target=self._receive, daemon=True,
                                       name=f"render-worker-{n}")
        self.reader.start()

    def send(self, message: object) -> bool:
        try:
            assert self.proc.stdin is not None
            pickle.dump(message, self.proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self.proc.stdin.flush()
            return True
        except (OSError, ValueError):  # it is gone (or its stdin closed): answers tell
            return False

    def give(self, chunk: list[tuple[int, Report, tuple[str, ...]]]) -> None:
        indices = [i for i, _, _ in chunk]
        with self.lock:
            failed = self.gone
            if not failed:
                self.waiting.update(indices)
        if failed or not self.send(chunk):
            self._fail(indices)

    def finish(self) -> None:
        _close(self.proc.stdin)

    def stop(self) -> None:
        _close(self.proc.stdin)
        if self.reader.is_alive() and self.proc.poll() is None:
            self.proc.kill()   # the batch stopped early: its answers are not needed
        self.reader.join()

    def _receive(self) -> None:
        assert self.proc.stdout is not None
        reason = "its answers ended"
        try:
            while True:
                for index, value in pickle.load(self.proc.stdout):
                    with self.lock:
                        self.waiting.discard(index)
                    self.results.put(self.n, index, value)
        except EOFError:
            pass
        except Exception as exc:  # noqa: BLE001 - a worker that stopped only costs time
            reason = f"{type(exc).__name__}: {exc}"
        with self.lock:
            self.gone = True
            left, self.waiting = sorted(self.waiting), set()
        if left and not self.closing.is_set():
            log.warning("a render worker stopped (%s); its %d report(s) are rendered by the "
                        "submitting process", reason, len(left))
        self._fail(left)

    def _fail(self, indices: Sequence[int]) -> None:
        for index in indices:
            self.results.put(self.n, index, None)


class Results:
    """The workers' answers, taken in the batch's order by ``take``; None for what failed.

    Taking job ``i`` drops every answer before it (the caller skipped those: duplicates),
    and a worker's thread waits while ``HELD`` of its answers are untaken: a batch of any
    size holds a bounded number of rendered articles. A worker never waits for room that
    only its own next answer would make: answers come in the order they are taken."""

    def __init__(self) -> None:
        self.found: dict[int, tuple[int, Rendered | None]] = {}   # index -> (worker, answer)
        self.held: dict[int, int] = {}                             # worker -> untaken answers
        self.low = 0                                               # every index below: gone
        self.stopped = False
        self.ready = threading.Condition()

    def put(self, worker: int, index: int, value: Rendered | None) -> None:
        with self.ready:
            if value is not None:  # a failure is tiny and must never wait
                self.ready.wait_for(lambda: self.stopped or self.held.get(worker, 0) < HELD)
            if self.stopped or index < self.low:
                return
            self.found[index] = (worker, value)
            self.held[worker] = self.held.get(worker, 0) + 1
            self.ready.notify_all()

    def take(self, index: int) -> Rendered | None:
        """Job ``index``'s answer once it is there; None: render it yourself."""
        with self.ready:
            for skipped in range(self.low, index):
                self._drop(skipped)
            self.low = max(self.low, index)
            self.ready.wait_for(lambda: index in self.found or self.stopped)
            self.low = max(self.low, index + 1)
            return self._drop(index)

    def stop(self) -> None:
        with self.ready:
            self.stopped = True
            self.ready.notify_all()

    def _drop(self, index: int) -> Rendered | None:
        worker, value = self.found.pop(index, (-1, None))
        if worker >= 0:
            self.held[worker] -= 1
            self.ready.notify_all()
        return value


def _close(stream: IO[bytes] | None) -> None:
    try:
        if stream is not None:
            stream.close()
    except OSError:
        pass  # the worker is gone already


def worker_main(stdin: IO[bytes], stdout: IO[bytes]) -> int:
    """A worker: the settings, then jobs until stdin ends, answered a chunk at a time. A
    thread drains stdin as the jobs come, so the parent never waits to give one. (Pickle
    is safe here: both ends are this program, talking over a pipe only they hold.)"""
    from .. import faults
    from ..proofread.check import Checker
    from . import make_environment

    settings = pickle.load(stdin)
    env = make_environment(settings)
    env.auto_reload = False   # one batch, one version of the templates (as DraftMaker)
    checker = Checker(settings)
    jobs: queue.SimpleQueue[list[tuple[int, Report, tuple[str, ...]]] | None] = (
        queue.SimpleQueue())
    threading.Thread(target=_drain, args=(stdin, jobs), daemon=True).start()
    while (chunk := jobs.get()) is not None:
        answers: list[tuple[int, Any]] = []
        for index, report, names in chunk:
            try:
                answers.append((index, render_report(report, names, env, checker, settings)))
            except Exception:  # noqa: BLE001 - the parent renders it again and says why
                answers.append((index, None))
        pickle.dump(answers, stdout, protocol=pickle.HIGHEST_PROTOCOL)
        stdout.flush()
        faults.crash_point("render_worker_answered")
    return 0


def _drain(stdin: IO[bytes], jobs: queue.SimpleQueue[Any]) -> None:
    try:
        while True:
            jobs.put(pickle.load(stdin))
    except Exception:  # noqa: BLE001 - the end, a closed pipe, a message cut off
        jobs.put(None)  # the parent has no more (or is gone)


if __name__ == "__main__":
    try:
        raise SystemExit(worker_main(sys.stdin.buffer, sys.stdout.buffer))
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        raise SystemExit(1) from None  # the parent went away: nothing to answer
