"""From validated reports to stored submissions and rendered drafts.

A group of reports is stored in one transaction: rendered and proofread first
(pure), then its rows inserted with one multi-row statement per table inside a
savepoint, its folders written, and the group committed (one fsync) before the
caller tells anyone a report of it was accepted. When anything in the fast path
fails (a duplicate stored meanwhile by another process, a photo that vanished, a
full disk), the savepoint is rolled back and the group goes again report by
report, each in its own savepoint, so one bad report never costs the others.

Crash safety: a group's draft ids are written to a journal (``drafts/.intake/``,
locked while its process lives) before any of its folders; a later batch removes
the folders of a dead process's journal whose rows never committed. So a crash
(even ``kill -9``) leaves neither a folder without its rows nor rows without their
folder, and every report acknowledged before it is stored for good.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, col, select

from . import faults
from .config import Settings
from .deadlines import deadline_for
from .domain import DraftStatus, Photo, Report
from .errors import PipelineError, SubmissionError
from .messages import dump, render
from .models import Draft, DraftEvent, Finding, ProofreadRun, Submission, Unit
from .proofread import Hit, proofread_draft
from .proofread.check import Checker
from .proofread.record import finding_values, run_values
from .writer import GuardedWriter

if TYPE_CHECKING:  # the render stage is imported only by the commands that render
    from .intake import Rejection
    from .render import RenderedArticle
    from .render.pool import Rendered, RenderPool
    from .store import Store

log = logging.getLogger(__name__)
ARTICLE = "article"  # the stem of a draft's files until its first edit (see draft_files)
ARTICLE_MD = f"{ARTICLE}.md"
ARTICLE_HTML = f"{ARTICLE}.html"
JOURNALS = ".intake"
GROUP_SIZE = 200   # reports per transaction in a batch: one commit (one fsync) per group


@dataclass(frozen=True)
class Accepted:
    id: int
    unit: str
    title: str
    activity_type: str
    deadline: datetime
    source: str
    row: int | None
    problems: tuple[str, ...]
    findings: int = 0          # open proofreading findings
    proofread_error: str = ""  # why proofreading did not run


@dataclass(frozen=True)
class Duplicate:
    source: str
    row: int | None
    id: int
    title: str


@dataclass
class SubmitOutcome:
    accepted: list[Accepted]
    duplicates: list[Duplicate]
    rejected: list[Rejection]


def draft_dir(draft_id: int) -> str:
    return str(draft_id)


class Journal:
    """The ids of the drafts a group is writing, kept until the group commits.

    One file per batch (``drafts/.intake/<pid>-<random>.ids``) under an exclusive
    ``flock``: the kernel drops the lock when the process dies, even by SIGKILL, so a
    journal whose lock is free belongs to a dead batch (see ``recover``).
    """

    def __init__(self, writer: GuardedWriter) -> None:
        self.path = writer.path(f"{JOURNALS}/{os.getpid()}-{secrets.token_hex(6)}.ids")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def add(self, ids: Sequence[int]) -> None:
        # Before the folders exist. No fsync: this guards against a crashed process (the
        # page cache survives it), and without one the folders are not durable either.
        os.write(self.fd, "".join(f"{i}\n" for i in ids).encode("ascii"))

    def clear(self) -> None:
        """The group committed (or rolled back and its folders are gone)."""
        os.ftruncate(self.fd, 0)
        os.lseek(self.fd, 0, os.SEEK_SET)

    def close(self) -> None:
        self.path.unlink(missing_ok=True)
        os.close(self.fd)


def recover(session: Session, writer: GuardedWriter) -> int:
    """Remove the folders that dead batches wrote for rows that never committed.

    Run inside a write transaction (SQLite's ``BEGIN IMMEDIATE``), so no other writer
    is between storing its rows and committing them; PostgreSQL never reuses an id.
    Returns how many folders were removed.
    """
    folder = writer.path(JOURNALS)
    removed = 0
    for path in sorted(folder.glob("*.ids")) if folder.is_dir() else []:
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            continue  # its batch just finished
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live batch
            ids = {int(x) for x in path.read_text(encoding="ascii").split() if x.isdigit()}
            stored = {i for (i,) in session.execute(
                sa.select(col(Draft.id)).where(col(Draft.id).in_(ids)))} if ids else set()
            for draft_id in sorted(ids - stored):
                log.warning("removing draft folder %s: its batch stopped before committing",
                            draft_id)
                writer.remove_tree(draft_dir(draft_id))
                removed += 1
            path.unlink(missing_ok=True)
        finally:
            os.close(fd)
    return removed


@dataclass
class _Prepared:
    """A report rendered and proofread, before it has an id."""

    report: Report
    names: list[str]
    article: RenderedArticle
    deadline: datetime
    hits: list[Hit]
    proofread_error: str


class DraftMaker:
    """Stores reports and renders their drafts; one instance per batch (caches templates)."""

    def __init__(self, settings: Settings) -> None:
        from .render import make_environment

        self.settings = settings
        self.env = make_environment(settings)
        # One batch, one version of the templates: no stat of each template file per report.
        self.env.auto_reload = False
        self.writer = GuardedWriter(settings.paths.drafts)
        self.journal: Journal | None = None
        self._checker: Checker | None = None
        self.pool: RenderPool | None = None   # the batch's render workers, if it has any

    @property
    def checker(self) -> Checker:
        if self._checker is None:
            self._checker = Checker(self.settings)
        return self._checker

    def submit_groups(self, store: Store, reports: Sequence[Report], now: datetime,
                      actor: str = "intake", group_size: int = GROUP_SIZE,
                      pool: RenderPool | None = None) -> Iterator[SubmitOutcome]:
        """Store the reports a group at a time; yield each group's outcome after its commit.
        A large batch is rendered by worker processes meanwhile (``render.pool``): ``pool``
        if the caller started one early (it is closed here), else one started here.

        Raises:
            RenderError: a template is broken (groups committed before stay).
        """
        from .render.pool import RenderPool

        with store.session() as session:
            recover(session, self.writer)
            known = set() if pool and pool.sent else _known_keys(
                session, [r.dedupe_key for r in reports])
        pool = pool or RenderPool.start(self.settings, len(reports) - len(known))
        if pool is not None and not pool.sent:
            pool.send(reports, skip=known)
        self.pool = pool
        self.journal = Journal(self.writer)
        try:
            for start in range(0, len(reports), group_size):
                outcome = None
                try:
                    with store.session() as session:
                        outcome = self.submit(session, reports[start:start + group_size],
                                              now, actor)
                except BaseException:
                    if outcome is not None:  # the commit failed: the rows are not there
                        self.discard(outcome.accepted)
                    raise
                self.journal.clear()
                yield outcome
        finally:
            self.journal.close()
            self.journal = None
            if pool is not None:
                pool.close()
            self.pool = None

    def submit(self, session: Session, reports: Sequence[Report], now: datetime,
               actor: str = "intake", idempotency_key: str | None = None
               ) -> SubmitOutcome:
        """Store each report unless it is a duplicate; the caller commits."""
        units = {u.name: u for u in session.exec(select(Unit))}
        known = _known_keys(session, [r.dedupe_key for r in reports])
        if idempotency_key is None and len(reports) > 1:
            fast = self._submit_group(session, reports, units, known, now, actor)
            if fast is not None:
                return fast
        out = SubmitOutcome([], [], [])
        try:
            for report in reports:
                existing = known.get(report.dedupe_key) or (
                    _existing_draft(session, report, idempotency_key)
                    if idempotency_key else None)
                if existing is not None:
                    out.duplicates.append(Duplicate(report.source, report.row, existing,
                                                    report.title))
                    continue
                accepted = self._submit_one(session, report, units[report.unit], now, actor,
                                            idempotency_key, out)
                if accepted is not None:
                    known[report.dedupe_key] = accepted.id  # the same report twice in a batch
        except BaseException:
            self.discard(out.accepted)
            raise
        return out

    def discard(self, accepted: Sequence[Accepted]) -> None:
        """Remove the folders of drafts whose rows were not committed after all."""
        for item in accepted:
            self.writer.remove_tree(draft_dir(item.id))

    def _submit_group(self, session: Session, reports: Sequence[Report],
                      units: dict[str, Unit], known: dict[str, int], now: datetime,
                      actor: str) -> SubmitOutcome | None:
        """The whole group with one insert per table; None when it must go report by
        report instead (the savepoint is then rolled back and no folder is left)."""
        out = SubmitOutcome([], [], [])
        fresh: list[_Prepared] = []
        again: list[tuple[Report, int]] = []   # the same report twice: index of the first
        first: dict[str, int] = {}
        for report in reports:
            if report.dedupe_key in known:
                out.duplicates.append(Duplicate(report.source, report.row,
                                                known[report.dedupe_key], report.title))
            elif report.dedupe_key in first:
                again.append((report, first[report.dedupe_key]))
            else:
                first[report.dedupe_key] = len(fresh)
                names = [p.stored_name for p in report.photos]
                article, hits, error = self._render(report, names)
                fresh.append(_Prepared(report, names, article,
                                       deadline_for(report.end, self.settings), hits, error))
        if not fresh:
            return out
        written: list[int] = []
        savepoint = session.begin_nested()
        try:
            ids = self._insert_group(session, fresh, units, now, actor)
            if self.journal is not None:
                self.journal.add(ids)
            for draft_id, item in zip(ids, fresh, strict=True):
                written.append(draft_id)
                self._write(draft_id, item.report, item.names, item.article, new=True)
            faults.crash_point("intake_group_written")  # rows inserted, folders written
            savepoint.commit()
        except (IntegrityError, OSError) as exc:
            log.info("storing the group at once failed (%s); storing it report by report", exc)
            savepoint.rollback()
            for draft_id in written:
                self.writer.remove_tree(draft_dir(draft_id))
            return None
        except BaseException:
            for draft_id in written:
                self.writer.remove_tree(draft_dir(draft_id))
            raise
        for draft_id, item in zip(ids, fresh, strict=True):
            r = item.report
            out.accepted.append(Accepted(
                draft_id, r.unit, r.title, r.activity_type, item.deadline, r.source, r.row,
                item.article.problems, len(item.hits), item.proofread_error))
        for report, index in again:
            out.duplicates.append(Duplicate(report.source, report.row, ids[index],
                                            report.title))
        return out

    def _render(self, report: Report, names: Sequence[str]) -> Rendered:
        """The pool's rendering of the report if it has one, else our own (also when a
        worker failed: a broken template then raises here, as without the pool)."""
        from .render.pool import render_report

        done = self.pool.take(report) if self.pool is not None else None
        if done is not None:
            return done
        return render_report(report, names, self.env, self.checker, self.settings)

    def _insert_group(self, session: Session, fresh: Sequence[_Prepared],
                      units: dict[str, Unit], now: datetime, actor: str) -> list[int]:
        sub_ids = _insert_many(session, Submission, [
            _submission(p.report, units[p.report.unit], now, None) for p in fresh],
            key="dedupe_key")
        draft_ids = _insert_many(session, Draft, key="submission_id", rows=[
            _draft_values(sub_id, units[p.report.unit], p.article, p.report.activity_type,
                          p.deadline, p.names[0] if p.names else None, now)
            for sub_id, p in zip(sub_ids, fresh, strict=True)])
        _insert_many(session, DraftEvent, [
            _event_values(draft_id, now, actor, _origin(p.report))
            for draft_id, p in zip(draft_ids, fresh, strict=True)])
        findings = [finding_values(draft_id, hit, now)
                    for draft_id, p in zip(draft_ids, fresh, strict=True) for hit in p.hits]
        if findings:
            _insert_many(session, Finding, findings)
        _insert_many(session, ProofreadRun, [
            run_values(draft_id, 1, now, p.proofread_error)
            for draft_id, p in zip(draft_ids, fresh, strict=True)])
        return draft_ids

    def _submit_one(self, session: Session, report: Report, unit: Unit, now: datetime,
                    actor: str, idempotency_key: str | None, out: SubmitOutcome
                    ) -> Accepted | None:
        try:
            accepted = self._store_one(session, report, unit, now, actor, idempotency_key)
        except IntegrityError:
            # Another process stored the same report between our check and our insert.
            found = _existing_draft(session, report, idempotency_key)
            if found is None:
                raise
            out.duplicates.append(Duplicate(report.source, report.row, found, report.title))
            return None
        except OSError as exc:
            # A photo vanished or the disk refused: this report only. A RenderError
            # (a broken template) propagates and stops the whole batch.
            from .intake import Rejection

            params = {"reason": str(exc)}
            out.rejected.append(Rejection(report.source, report.row, "图片",
                                          render("files.draft_unstored", "en", **params),
                                          "files.draft_unstored", params))
            return None
        out.accepted.append(accepted)
        return accepted

    def _store_one(self, session: Session, report: Report, unit: Unit, now: datetime,
                   actor: str, idempotency_key: str | None) -> Accepted:
        from .render import render_article

        names = [p.stored_name for p in report.photos]
        article = render_article(report, names, self.env, self.settings)  # pure, no id needed
        deadline = deadline_for(report.end, self.settings)
        # Core inserts inside a savepoint: a duplicate found by the database rolls back
        # this report only (PostgreSQL would otherwise abort the whole batch).
        with session.begin_nested():
            sub_id = _insert(session, Submission, _submission(report, unit, now,
                                                              idempotency_key))
            draft_id = self._insert_draft(
                session, sub_id, unit, article, report.activity_type, deadline,
                names[0] if names else None, now, actor, _origin(report))
            if self.journal is not None:
                self.journal.add([draft_id])
            try:
                self._write(draft_id, report, names, article)
            except BaseException:
                self.writer.remove_tree(draft_dir(draft_id))
                raise
            checked = proofread_draft(session, self.settings, draft_id, article.markdown,
                                      article.title, now)
        return Accepted(draft_id, report.unit, report.title, report.activity_type, deadline,
                        report.source, report.row, article.problems, checked.findings,
                        checked.error)

    def store_article(self, session: Session, unit: Unit, *, title: str, markdown: str,
                      activity_type: str, key: str, at: datetime, now: datetime,
                      actor: str) -> Accepted | None:
        """Store an article the pipeline wrote itself (the daily round-up) as a draft in
        the same queue; ``key`` makes it once only. None when it exists already."""
        from .render import make_digest, rerender

        if _known_keys(session, [key]):
            return None
        author = self.settings.account.author or unit.name
        article = rerender(markdown, title, author,
                           make_digest(markdown, self.settings.limits.digest_chars),
                           self.settings)
        deadline = deadline_for(at, self.settings)
        with session.begin_nested():
            sub_id = _insert(session, Submission, {
                "unit_id": unit.id, "activity_type": activity_type, "title": title,
                "start_at": at, "end_at": at, "place": "", "form": "", "body": markdown,
                "links": "[]", "photos": "[]", "contact": "", "extra": "{}",
                "source": actor, "dedupe_key": key, "received_at": now,
                "participants_text": "", "participants_unit": "", "timed": True,
                "notes": "", "partners": "[]"})
            draft_id = self._insert_draft(session, sub_id, unit, article, activity_type,
                                          deadline, None, now, actor, actor)
            try:
                self.writer.write_text(f"{draft_dir(draft_id)}/{ARTICLE_MD}", article.markdown)
                self.writer.write_text(f"{draft_dir(draft_id)}/{ARTICLE_HTML}", article.html)
            except BaseException:
                self.writer.remove_tree(draft_dir(draft_id))
                raise
            checked = proofread_draft(session, self.settings, draft_id, article.markdown,
                                      title, now)
        return Accepted(draft_id, unit.name, title, activity_type, deadline, actor, None,
                        article.problems, checked.findings, checked.error)

    @staticmethod
    def _insert_draft(session: Session, sub_id: int, unit: Unit, article: RenderedArticle,
                      activity_type: str, deadline: datetime, cover: str | None,
                      now: datetime, actor: str, note: str) -> int:
        draft_id = _insert(session, Draft, _draft_values(sub_id, unit, article, activity_type,
                                                         deadline, cover, now))
        _insert(session, DraftEvent, _event_values(draft_id, now, actor, note))
        return draft_id

    def _write(self, draft_id: int, report: Report, names: Sequence[str],
               article: RenderedArticle, new: bool = False) -> None:
        """The draft's folder. ``new``: its row is not committed yet, so no reader can be
        looking at the folder and its files are written in place (no temporary names)."""
        folder = draft_dir(draft_id)
        files = {name: photo.path.read_bytes()
                 for photo, name in zip(report.photos, names, strict=True)}
        files[ARTICLE_MD] = article.markdown.encode("utf-8")
        files[ARTICLE_HTML] = article.html.encode("utf-8")
        if new:
            try:
                self.writer.create_folder(folder, files)
                return
            except FileExistsError:
                pass  # leftovers of a crashed attempt that reused this id
        self.writer.remove_tree(folder)
        for name, data in files.items():
            self.writer.write_bytes(f"{folder}/{name}", data)


def _origin(report: Report) -> str:
    return report.source + (f" 第{report.row}行" if report.row else "")


def _draft_values(sub_id: int, unit: Unit, article: RenderedArticle, activity_type: str,
                  deadline: datetime, cover: str | None, now: datetime) -> dict[str, Any]:
    return {"submission_id": sub_id, "unit_id": unit.id, "title": article.title,
            "author": article.author, "digest": article.digest,
            "activity_type": activity_type, "status": DraftStatus.DRAFTED,
            "deadline": deadline, "cover": cover,
            "problems": json.dumps(dump(article.problems), ensure_ascii=False),
            "notes": json.dumps(dump(article.notes), ensure_ascii=False),
            "created_at": now, "updated_at": now, "late": False, "version": 1}


def _event_values(draft_id: int, now: datetime, actor: str, note: str) -> dict[str, Any]:
    return {"draft_id": draft_id, "at": now, "actor": actor, "action": "submitted",
            "to_status": DraftStatus.DRAFTED, "note": note}


def _insert(session: Session, model: type[SQLModel], values: dict[str, Any]) -> int:
    # Values as parameters, not .values(): the compiled statement is then cached.
    table = cast(sa.Table, model.__table__)  # type: ignore[attr-defined]
    return int(session.execute(sa.insert(table).returning(table.c.id), values).scalar_one())


def _insert_many(session: Session, model: type[SQLModel], rows: list[dict[str, Any]],
                 key: str | None = None) -> list[int]:
    """Multi-row INSERTs (SQLAlchemy's insertmanyvalues: pages of up to 1,000 rows) for
    all ``rows``; with ``key``, a unique column, their new ids in the order of ``rows``.

    The ids come back with the key and are matched by it, because asking SQLAlchemy to
    sort RETURNING rows (``sort_by_parameter_order``) makes it send one statement per
    row on SQLite, which cannot promise their order: inside the group's savepoint every
    such statement journals the pages it touches (90 MB of temporary file writes for
    2,000 reports). Rows without ``key`` still ask for their primary key: that is what
    makes SQLAlchemy page them (a plain executemany runs row by row on SQLite too).
    """
    table = cast(sa.Table, model.__table__)  # type: ignore[attr-defined]
    if key is None:
        session.execute(sa.insert(table).returning(*table.primary_key.columns), rows).all()
        return []
    statement = sa.insert(table).returning(table.c[key], table.c.id)
    found = {value: int(new_id) for value, new_id in session.execute(statement, rows)}
    return [found[row[key]] for row in rows]


def _known_keys(session: Session, keys: list[str]) -> dict[str, int]:
    """Drafts already stored for these reports, by dedupe key (one query per 500)."""
    found: dict[str, int] = {}
    for start in range(0, len(keys), 500):
        rows = session.execute(
            sa.select(col(Submission.dedupe_key), col(Draft.id))
            .join(Draft, col(Draft.submission_id) == Submission.id)
            .where(col(Submission.dedupe_key).in_(keys[start:start + 500])))
        found.update({key: draft_id for key, draft_id in rows})
    return found


def _submission(report: Report, unit: Unit, now: datetime, key: str | None
                ) -> dict[str, Any]:
    photos = [{"name": p.stored_name, "original": p.original_name, "kind": p.kind,
               "size": p.size, "sha256": p.sha256} for p in report.photos]
    return {
        "unit_id": unit.id, "activity_type": report.activity_type, "title": report.title,
        "start_at": report.start, "end_at": report.end, "place": report.place,
        "form": report.form, "participants": report.participants, "body": report.body,
        "links": json.dumps(list(report.links), ensure_ascii=False),
        "photos": json.dumps(photos, ensure_ascii=False), "contact": report.contact,
        "extra": json.dumps(report.extra, ensure_ascii=False), "source": report.source,
        "source_row": report.row, "dedupe_key": report.dedupe_key, "idempotency_key": key,
        "received_at": now, "participants_text": report.participants_text,
        "participants_unit": report.participants_unit, "timed": report.timed,
        "notes": report.notes,
        "partners": json.dumps(list(report.partners), ensure_ascii=False)}


def _existing_draft(session: Session, report: Report, key: str | None) -> int | None:
    query = select(Draft.id).join(Submission, Submission.id == Draft.submission_id)  # type: ignore[arg-type]
    if key is not None:
        found = session.exec(query.where(Submission.idempotency_key == key)).first()
        if found is not None:
            return found
    return session.exec(query.where(Submission.dedupe_key == report.dedupe_key)).first()


def article_stem(draft: Draft) -> str:
    """The stem of the draft's current article files, as its row names them."""
    return _stem(draft.id or 0, draft.article_file)


def _stem(draft_id: int, article_file: str | None) -> str:
    stem = article_file or ARTICLE
    if not _STEM.fullmatch(stem):  # the row is ours, but a path is built from it
        raise PipelineError.coded("draft.bad_article_name", id=draft_id, stem=stem)
    return stem


def draft_files(settings: Settings, draft: Draft) -> tuple[Path, Path]:
    """The Markdown and HTML files the draft's row names: the one way to find them.

    What the row names was committed with those files already written (see
    ``write_draft_files``), so every reader gets the committed text.
    """
    return _files(settings, draft.id or 0, draft.article_file)


def _files(settings: Settings, draft_id: int, article_file: str | None) -> tuple[Path, Path]:
    folder = settings.paths.drafts / draft_dir(draft_id)
    stem = _stem(draft_id, article_file)
    return folder / f"{stem}.md", folder / f"{stem}.html"


def current_files(session: Session, settings: Settings, draft_id: int) -> tuple[Path, Path]:
    """``draft_files`` of the row as committed now (not as this session first saw it).

    Raises:
        ReviewError: when there is no such draft.
    """
    row = session.execute(sa.select(col(Draft.article_file))
                          .where(col(Draft.id) == draft_id)).first()
    if row is None:
        from .errors import ReviewError

        raise ReviewError.coded("draft.not_found", id=draft_id)
    return _files(settings, draft_id, row[0])


def read_article(session: Session, settings: Settings, draft_id: int, html: bool = False
                 ) -> str:
    """The draft's current Markdown (or HTML), read from the files its row names.

    An edit committed by another process between reading the row and opening the file
    may have removed the older file (PostgreSQL; on SQLite the session holds the write
    lock): the row is read again and the newer file taken.

    Raises:
        PipelineError: when the files the row names are missing.
    """
    seen: set[Path] = set()
    while True:
        path = current_files(session, settings, draft_id)[1 if html else 0]
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            if path in seen:
                raise PipelineError.coded("draft.no_article_file", id=draft_id,
                                          path=str(path)) from exc
            seen.add(path)


def read_markdown(session: Session, settings: Settings, draft_id: int) -> str:
    """The draft's current Markdown (see ``read_article``)."""
    return read_article(session, settings, draft_id)


def rerender_draft(settings: Settings, draft: Draft, markdown: str) -> RenderedArticle:
    """Re-render a draft from edited Markdown (no template involved); nothing is written."""
    from .render import rerender

    assert draft.id is not None
    article = rerender(markdown, draft.title, draft.author, draft.digest, settings)
    draft.problems = json.dumps(dump(article.problems), ensure_ascii=False)
    return article


def next_stem(draft: Draft) -> str:
    """The stem of the files an edit of ``draft`` writes: named after the version the
    edit's move gives the row, so never one a committed row named before."""
    return f"{ARTICLE}.v{draft.version + 1}"


def write_draft_files(session: Session, settings: Settings, draft: Draft,
                      article: RenderedArticle) -> None:
    """Write an edited draft's files under the new name its row now holds.

    The caller has moved the row (conditionally, with ``article_file=next_stem``), so
    this transaction holds it until commit. The files are written under a name no
    committed row has named, and the row switches to them only when the transaction
    commits: a crash (even ``kill -9``) before the commit leaves the old row with its old
    files, one after it the new row with its new files. The files the row named before
    are removed after the commit (best effort, never before).
    """
    # A savepoint that rolled back on its own would leave the old name current while
    # the commit removed its files.
    assert not session.in_nested_transaction(), "edits are not made inside a savepoint"
    writer = GuardedWriter(settings.paths.drafts)
    folder = draft_dir(draft.id or 0)
    stem = article_stem(draft)
    writer.write_text(f"{folder}/{stem}.md", article.markdown)
    writer.write_text(f"{folder}/{stem}.html", article.html)
    faults.crash_point("edit_files_written")  # new files on disk, the row not committed
    session.info.setdefault(_CLEANUP, []).append((settings.paths.drafts / folder, stem))


def remove_older_files(folder: Path, stem: str) -> int:
    """Remove the article files older than ``stem`` (a committed row's): earlier
    versions, the first ``article`` files and those of edits that never committed.
    Later versions are left: another edit may be writing them. Returns how many."""
    keep = _version(stem)
    removed = 0
    for path in folder.glob(f"{ARTICLE}*"):
        found = _STEM.fullmatch(path.stem) if path.suffix in (".md", ".html") else None
        if found is not None and _version(path.stem) < keep:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _version(stem: str) -> int:
    return int(stem.rpartition(".v")[2]) if ".v" in stem else 0


_STEM = re.compile(rf"{ARTICLE}(?:\.v[0-9]{{1,9}})?")
_CLEANUP = "pipeline.older_files"


@sa.event.listens_for(Session, "after_commit")
def _files_committed(session: Session) -> None:
    cleanups = session.info.pop(_CLEANUP, [])
    if cleanups:
        faults.crash_point("edit_committed")  # the row switched, the old files still there
    for folder, stem in cleanups:
        try:
            remove_older_files(folder, stem)
        except OSError as exc:  # left for the next edit's cleanup
            log.warning("could not remove older files of %s: %s", folder, exc)


@sa.event.listens_for(Session, "after_transaction_end")
def _files_rolled_back(session: Session, transaction: Any) -> None:
    if transaction.nested or transaction.parent is not None:
        return  # a savepoint ended; the outer transaction decides
    # No commit: the row keeps its files; the new ones are never read (the next edit of
    # the same version overwrites them, a later one removes them).
    session.info.pop(_CLEANUP, None)


def add_photos(session: Session, settings: Settings, draft: Draft, photos: Sequence[Photo]
               ) -> str:
    """Photos a reporter adds when correcting a report sent back for changes: copied into
    the draft's folder under generated names and recorded on the report. Returns the
    Markdown that shows them, for the caller to append to the article.

    Raises:
        SubmissionError: the report would hold more photos than the limit.
    """
    submission = session.get(Submission, draft.submission_id)
    assert submission is not None and draft.id is not None
    stored = json.loads(submission.photos)
    known = {p["sha256"] for p in stored}
    fresh = list({p.sha256: p for p in photos if p.sha256 not in known}.values())
    limit = settings.limits.photos_per_report
    if len(stored) + len(fresh) > limit:
        raise SubmissionError.rule("photo.too_many", {"count": len(stored) + len(fresh),
                                                      "limit": limit}, field="photos")
    writer = GuardedWriter(settings.paths.drafts)
    lines = []
    for photo in fresh:
        name = photo.stored_name
        writer.copy_file(photo.path, f"{draft_dir(draft.id)}/{name}")
        stored.append({"name": name, "original": photo.original_name, "kind": photo.kind,
                       "size": photo.size, "sha256": photo.sha256})
        lines.append(f"![活动现场]({name})\n\n▲ 活动现场\n{{: .caption }}\n")
    submission.photos = json.dumps(stored, ensure_ascii=False)
    session.add(submission)
    return "".join(f"\n{line}" for line in lines)
