"""From validated reports to stored submissions and rendered drafts.

A report is stored (submission + draft + history line) and its files written
inside one savepoint; if anything fails for that report, its rows are rolled
back and its folder removed, and the rest of the batch goes on. The batch is
committed before the caller tells anyone it was accepted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from .config import Settings
from .deadlines import deadline_for
from .domain import DraftStatus, Photo, Report
from .errors import PipelineError
from .models import Draft, DraftEvent, Submission, Unit
from .writer import GuardedWriter

if TYPE_CHECKING:  # the render stage is imported only by the commands that render
    from .intake import Rejection
    from .render import RenderedArticle

log = logging.getLogger(__name__)
ARTICLE_MD = "article.md"
ARTICLE_HTML = "article.html"


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


def photo_name(photo: Photo) -> str:
    """Generated name for a stored photo: never the name the reporter gave it."""
    ext = "jpg" if photo.kind == "jpeg" else "png"
    return f"photos/{photo.sha256[:20]}.{ext}"


class DraftMaker:
    """Stores reports and renders their drafts; one instance per batch (caches templates)."""

    def __init__(self, settings: Settings) -> None:
        from .render import make_environment

        self.settings = settings
        self.env = make_environment(settings)
        self.writer = GuardedWriter(settings.paths.drafts)

    def submit(self, session: Session, reports: Sequence[Report], now: datetime,
               actor: str = "intake", idempotency_key: str | None = None
               ) -> SubmitOutcome:
        """Store each report unless it is a duplicate; the caller commits."""
        units = {u.name: u for u in session.exec(select(Unit))}
        out = SubmitOutcome([], [], [])
        try:
            for report in reports:
                self._submit_one(session, report, units[report.unit], now, actor,
                                 idempotency_key, out)
        except BaseException:
            self.discard(out.accepted)
            raise
        return out

    def discard(self, accepted: Sequence[Accepted]) -> None:
        """Remove the folders of drafts whose rows were not committed after all."""
        for item in accepted:
            self.writer.remove_tree(draft_dir(item.id))

    def _submit_one(self, session: Session, report: Report, unit: Unit, now: datetime,
                    actor: str, idempotency_key: str | None, out: SubmitOutcome) -> None:
        existing = _existing_draft(session, report, idempotency_key)
        if existing is not None:
            out.duplicates.append(Duplicate(report.source, report.row, existing, report.title))
            return
        try:
            out.accepted.append(self._store_one(session, report, unit, now, actor,
                                                idempotency_key))
        except IntegrityError:
            # Another process stored the same report between our check and our insert.
            found = _existing_draft(session, report, idempotency_key)
            if found is None:
                raise
            out.duplicates.append(Duplicate(report.source, report.row, found, report.title))
        except OSError as exc:
            # A photo vanished or the disk refused: this report only. A RenderError
            # (a broken template) propagates and stops the whole batch.
            from .intake import Rejection

            out.rejected.append(Rejection(report.source, report.row, "图片",
                                      f"could not store the draft's files: {exc}"))

    def _store_one(self, session: Session, report: Report, unit: Unit, now: datetime,
                   actor: str, idempotency_key: str | None) -> Accepted:
        with session.begin_nested():
            submission = _submission(report, unit, now, idempotency_key)
            session.add(submission)
            session.flush()
            assert submission.id is not None and unit.id is not None
            deadline = deadline_for(report.end, self.settings)
            draft = Draft(submission_id=submission.id, unit_id=unit.id, title=report.title,
                          activity_type=report.activity_type, status=DraftStatus.DRAFTED,
                          deadline=deadline, created_at=now, updated_at=now)
            session.add(draft)
            session.flush()
            assert draft.id is not None
            try:
                article = self._write(draft.id, report)
            except BaseException:
                self.writer.remove_tree(draft_dir(draft.id))
                raise
            _apply_article(draft, article)
            draft.cover = photo_name(report.photos[0]) if report.photos else None
            session.add(DraftEvent(draft_id=draft.id, at=now, actor=actor, action="submitted",
                                   to_status=DraftStatus.DRAFTED,
                                   note=f"from {report.source}" + (
                                       f", row {report.row}" if report.row else "")))
        return Accepted(draft.id, report.unit, report.title, report.activity_type, deadline,
                        report.source, report.row, article.problems)

    def _write(self, draft_id: int, report: Report) -> RenderedArticle:
        folder = draft_dir(draft_id)
        self.writer.remove_tree(folder)  # leftovers of a crashed attempt that reused this id
        names = []
        for photo in report.photos:
            name = photo_name(photo)
            self.writer.copy_file(photo.path, f"{folder}/{name}")
            names.append(name)
        from .render import render_article

        article = render_article(report, names, self.env, self.settings)
        self.writer.write_text(f"{folder}/{ARTICLE_MD}", article.markdown)
        self.writer.write_text(f"{folder}/{ARTICLE_HTML}", article.html)
        return article


def _apply_article(draft: Draft, article: RenderedArticle) -> None:
    draft.title = article.title
    draft.author = article.author
    draft.digest = article.digest
    draft.problems = json.dumps(list(article.problems), ensure_ascii=False)


def _submission(report: Report, unit: Unit, now: datetime, key: str | None) -> Submission:
    photos = [{"name": photo_name(p), "original": p.original_name, "kind": p.kind,
               "size": p.size, "sha256": p.sha256} for p in report.photos]
    assert unit.id is not None
    return Submission(
        unit_id=unit.id, activity_type=report.activity_type, title=report.title,
        start_at=report.start, end_at=report.end, place=report.place, form=report.form,
        participants=report.participants, body=report.body,
        links=json.dumps(list(report.links), ensure_ascii=False),
        photos=json.dumps(photos, ensure_ascii=False), contact=report.contact,
        extra=json.dumps(report.extra, ensure_ascii=False), source=report.source,
        source_row=report.row, dedupe_key=report.dedupe_key, idempotency_key=key,
        received_at=now)


def _existing_draft(session: Session, report: Report, key: str | None) -> int | None:
    query = select(Draft.id).join(Submission, Submission.id == Draft.submission_id)  # type: ignore[arg-type]
    if key is not None:
        found = session.exec(query.where(Submission.idempotency_key == key)).first()
        if found is not None:
            return found
    return session.exec(query.where(Submission.dedupe_key == report.dedupe_key)).first()


def draft_files(settings: Settings, draft_id: int) -> tuple[Path, Path]:
    """The Markdown and HTML files of a draft."""
    folder = settings.paths.drafts / draft_dir(draft_id)
    return folder / ARTICLE_MD, folder / ARTICLE_HTML


def rerender_draft(settings: Settings, draft: Draft, markdown: str) -> RenderedArticle:
    """Re-render a draft from edited Markdown (no template involved) and rewrite its files."""
    from .render import rerender

    assert draft.id is not None
    article = rerender(markdown, draft.title, draft.author, draft.digest, settings)
    writer = GuardedWriter(settings.paths.drafts)
    writer.write_text(f"{draft_dir(draft.id)}/{ARTICLE_MD}", article.markdown)
    writer.write_text(f"{draft_dir(draft.id)}/{ARTICLE_HTML}", article.html)
    draft.problems = json.dumps(list(article.problems), ensure_ascii=False)
    return article


def read_markdown(settings: Settings, draft_id: int) -> str:
    """The draft's current Markdown.

    Raises:
        PipelineError: when the draft's files are missing.
    """
    md_path, _ = draft_files(settings, draft_id)
    try:
        return md_path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise PipelineError(f"Draft {draft_id} has no Markdown file at {md_path}; "
                            "the drafts folder may have been moved.") from exc
