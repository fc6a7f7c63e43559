"""A large batch rendered by worker processes while the submitting process stores it.

Rendering and proofreading a report (Markdown, Jinja, nh3, css-inline, the word lists)
are pure and cost most of a batch; validating, storing and committing it are the
submitting process's (``drafts.DraftMaker``). For a batch of at least ``PARALLEL_MIN``
reports, ``RenderPool`` starts one worker per CPU this process may use: separate
interpreters (``python -m pipeline.render.pool``), not forks of a process that holds
database connections. A worker imports the render stage only (no SQLAlchemy), reads
the settings and every job from its stdin, and ends when it has answered them all or
its stdin closes: a parent killed with SIGKILL leaves no worker behind.

Nothing depends on a worker: a report it could not render, and every report of a worker
that stopped, come back as None, and the caller renders them itself, where a broken
template raises the very error it raises without the pool. Results are taken in the
batch's order, so ids, groups and acknowledgements are what they are without workers.
"""

from __future__ import annotations

import logging
import os
import pickle
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
        self.procs: list[subprocess.Popen[bytes]] = []
        try:
            for _ in range(workers):
                self.procs.append(subprocess.Popen(
                    [sys.executable, "-m", "pipeline.render.pool"], stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env))
        except OSError:
            for proc in self.procs:
                proc.kill()
                proc.wait()
            raise
        self.settings = settings
        self.threads: list[threading.Thread] = []
        self.closing = threading.Event()   # we stop the workers: their silence is no news
        self.results: Results | None = None
        self.index: dict[str, int] = {}     # dedupe key -> job number in ``results``

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

    @property
    def sent(self) -> bool:
        return self.results is not None

    def send(self, reports: Sequence[Report], skip: Container[str] = frozenset()) -> None:
        """Give the workers their share of the batch now (each report once, the first of
        a dedupe key, none in ``skip``); the answers arrive in the background."""
        jobs: dict[str, Report] = {}
        for report in reports:
            if report.dedupe_key not in skip:
                jobs.setdefault(report.dedupe_key, report)
        self.index = {key: i for i, key in enumerate(jobs)}
        results = self.results = Results(len(jobs))
        numbered = [(i, r, tuple(p.stored_name for p in r.photos))
                    for i, r in enumerate(jobs.values())]
        chunks = [numbered[i:i + CHUNK] for i in range(0, len(numbered), CHUNK)]
        for n, proc in enumerate(self.procs):
            thread = threading.Thread(
                target=_serve, name=f"render-worker-{n}", daemon=True,
                args=(n, proc, self.settings, chunks[n::len(self.procs)], results,
                      self.closing))
            thread.start()
            self.threads.append(thread)

    def take(self, report: Report) -> Rendered | None:
        """The workers' rendering of ``report``; None: render it yourself."""
        index = self.index.pop(report.dedupe_key, None)
        if index is None or self.results is None:
            return None
        return self.results.take(index)

    def close(self) -> None:
        """Stop the workers; at once if the batch stopped early (its answers are unused)."""
        self.closing.set()
        if self.results is not None:
            self.results.stop()  # no thread waits for room any more
        for n, proc in enumerate(self.procs):
            if not self.threads:
                _close(proc.stdin)  # never given work: its stdin ends, so does it
            elif self.threads[n].is_alive():
                proc.kill()
        for thread in self.threads:
            thread.join()
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            _close(proc.stdout)

    def __enter__(self) -> RenderPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Results:
    """The workers' answers, taken in the batch's order by ``take``; None for what failed.

    Taking job ``i`` drops every answer before it (the caller skipped those: duplicates),
    and a worker's thread waits while ``HELD`` of its answers are untaken: a batch of any
    size holds a bounded number of rendered articles. A worker never waits for room that
    only its own next answer would make: answers come in the order they are taken."""

    def __init__(self, count: int) -> None:
        self.count = count
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


def _serve(worker: int, proc: subprocess.Popen[bytes], settings: Settings,
           chunks: list[list[tuple[int, Report, tuple[str, ...]]]], results: Results,
           closing: threading.Event) -> None:
    """One worker's conversation: all its jobs, then its answers until it ends."""
    assert proc.stdin is not None and proc.stdout is not None
    pending = {i for chunk in chunks for i, _, _ in chunk}
    try:
        # The worker reads everything before it writes (see worker_main), so these
        # writes never wait on its answers.
        pickle.dump(settings, proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        for chunk in chunks:
            pickle.dump(chunk, proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        _close(proc.stdin)
        while pending:
            for index, value in pickle.load(proc.stdout):
                pending.discard(index)
                results.put(worker, index, value)
    except Exception as exc:  # noqa: BLE001 - a worker that stopped only costs time
        if not closing.is_set():
            log.warning("a render worker stopped (%s: %s); its %d report(s) are rendered "
                        "by the submitting process", type(exc).__name__, exc, len(pending))
    finally:
        for index in pending:
            results.put(worker, index, None)


def _close(stream: IO[bytes] | None) -> None:
    try:
        if stream is not None:
            stream.close()
    except OSError:
        pass  # the worker is gone already


def worker_main(stdin: IO[bytes], stdout: IO[bytes]) -> int:
    """A worker: the settings, then every job until stdin ends; then the answers, a chunk
    at a time. Reading all first means the parent's writes never wait on ours. (Pickle
    is safe here: both ends are this program, talking over a pipe only they hold.)"""
    from .. import faults
    from ..proofread.check import Checker
    from . import make_environment

    settings = pickle.load(stdin)
    env = make_environment(settings)
    env.auto_reload = False   # one batch, one version of the templates (as DraftMaker)
    checker = Checker(settings)
    chunks: list[list[tuple[int, Report, tuple[str, ...]]]] = []
    while True:
        try:
            chunks.append(pickle.load(stdin))
        except EOFError:
            break
    for chunk in chunks:
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


if __name__ == "__main__":
    try:
        raise SystemExit(worker_main(sys.stdin.buffer, sys.stdout.buffer))
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        raise SystemExit(1) from None  # the parent went away: nothing to answer
