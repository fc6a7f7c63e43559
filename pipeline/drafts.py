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
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, col, select

from .config import Settings
from .deadlines import deadline_for
from .domain import DraftStatus, Photo, Report
from .errors import PipelineError, SubmissionError
from .messages import dump, render
from .models import Draft, DraftEvent, Submission, Unit
from .proofread import proofread_draft
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
        known = _known_keys(session, [r.dedupe_key for r in reports])
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

        names = [photo_name(p) for p in report.photos]
        article = render_article(report, names, self.env, self.settings)  # pure, no id needed
        deadline = deadline_for(report.end, self.settings)
        # Core inserts inside a savepoint: a duplicate found by the database rolls back
        # this report only (PostgreSQL would otherwise abort the whole batch).
        with session.begin_nested():
            sub_id = _insert(session, Submission, _submission(report, unit, now,
                                                              idempotency_key))
            draft_id = self._insert_draft(
                session, sub_id, unit, article, report.activity_type, deadline,
                names[0] if names else None, now, actor,
                report.source + (f" 第{report.row}行" if report.row else ""))
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
                "notes": ""})
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
        draft_id = _insert(session, Draft, {
            "submission_id": sub_id, "unit_id": unit.id, "title": article.title,
            "author": article.author, "digest": article.digest,
            "activity_type": activity_type, "status": DraftStatus.DRAFTED,
            "deadline": deadline, "cover": cover,
            "problems": json.dumps(dump(article.problems), ensure_ascii=False),
            "notes": json.dumps(dump(article.notes), ensure_ascii=False),
            "created_at": now, "updated_at": now, "late": False, "version": 1})
        _insert(session, DraftEvent, {
            "draft_id": draft_id, "at": now, "actor": actor, "action": "submitted",
            "to_status": DraftStatus.DRAFTED, "note": note})
        return draft_id

    def _write(self, draft_id: int, report: Report, names: Sequence[str],
               article: RenderedArticle) -> None:
        folder = draft_dir(draft_id)
        self.writer.remove_tree(folder)  # leftovers of a crashed attempt that reused this id
        for photo, name in zip(report.photos, names, strict=True):
            self.writer.copy_file(photo.path, f"{folder}/{name}")
        self.writer.write_text(f"{folder}/{ARTICLE_MD}", article.markdown)
        self.writer.write_text(f"{folder}/{ARTICLE_HTML}", article.html)


def _insert(session: Session, model: type[SQLModel], values: dict[str, Any]) -> int:
    # Values as parameters, not .values(): the compiled statement is then cached.
    table = cast(sa.Table, model.__table__)  # type: ignore[attr-defined]
    return int(session.execute(sa.insert(table).returning(table.c.id), values).scalar_one())


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
    photos = [{"name": photo_name(p), "original": p.original_name, "kind": p.kind,
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
        "notes": report.notes}


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
    draft.problems = json.dumps(dump(article.problems), ensure_ascii=False)
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
        name = photo_name(photo)
        writer.copy_file(photo.path, f"{draft_dir(draft.id)}/{name}")
        stored.append({"name": name, "original": photo.original_name, "kind": photo.kind,
                       "size": photo.size, "sha256": photo.sha256})
        lines.append(f"![活动现场]({name})\n\n▲ 活动现场\n{{: .caption }}\n")
    submission.photos = json.dumps(stored, ensure_ascii=False)
    session.add(submission)
    return "".join(f"\n{line}" for line in lines)
