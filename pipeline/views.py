"""Read models: the queue, one draft in full, the unit tree — as plain dicts.

The CLI's ``--json`` output and the web API serialise these same dicts, so
the two never disagree about what a draft looks like.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from .alerts import alerts_for
from .config import Settings
from .deadlines import WAITING, deadline_state, hours_left
from .domain import DraftStatus, Level
from .drafts import draft_files
from .errors import ReviewError
from .messages import Coded, load_column, text_of
from .models import Draft, Publication, Push, Submission, Unit, WeChatCall, WeChatJob
from .proofread import finding_json, last_run, open_findings
from .review import (
    changes_since_signoff,
    get_draft,
    history,
    open_stage,
    review_record,
    stage_indexes,
)
from .units import unit_counts

WECHAT_IMAGE_ADDRESS = re.compile(r"https?://mmbiz\.qpic\.cn/", re.IGNORECASE)


def iso(moment: datetime | None, settings: Settings) -> str | None:
    """ISO 8601 in the account's zone, with its offset."""
    return moment.astimezone(settings.tz).isoformat() if moment is not None else None


def summary(draft: Draft, unit: Unit, settings: Settings, now: datetime) -> dict[str, Any]:
    state = deadline_state(draft.status, draft.deadline, draft.late, now, settings)
    return {
        "id": draft.id, "title": draft.title, "unit": unit.name, "level": unit.level,
        "activity_type": draft.activity_type,
        "activity_label": _label(settings, draft.activity_type),
        "status": str(draft.status), "deadline": iso(draft.deadline, settings),
        "deadline_state": state.value, "hours_left": hours_left(draft.deadline, now),
        "late": draft.late, "problems": [Coded.load(p) for p in json.loads(draft.problems)],
        "stage": stage.name if (stage := open_stage(settings, draft)) else None,
    }


def _label(settings: Settings, key: str) -> str:
    kind = settings.activity_types.get(key)
    return kind.label if kind else {"daily_roundup": "每日动态"}.get(key, key)


# Job states in which a push waits for a person (see pipeline.publish.wechat).
# What a person must do for a story whose push stopped at WeChat (``attention.<state>``).
ATTENTION = frozenset({"needs_human", "sent_unconfirmed", "awaiting_manual", "deferred"})


def queue(session: Session, settings: Settings, now: datetime, *, include_all: bool = False,
          limit: int = 200, signer: str | None = None, offset: int = 0
          ) -> tuple[list[dict[str, Any]], int]:
    """Drafts waiting for an editor, earliest deadline first, with every story publishing
    gave up on (``failed``, or in a push that waits for a person) marked ``attention``;
    ``include_all``: every unfinished draft; ``signer``: only the drafts waiting at a
    review stage that person may sign. At most ``limit`` rows (0: no limit) and the total
    count; ``offset`` skips the first rows (stories held in a push come on the first page)."""
    statuses = [*list(WAITING), DraftStatus.FAILED] if include_all else [
        DraftStatus.DRAFTED, DraftStatus.FAILED]
    base = select(Draft, Unit).join(Unit, col(Unit.id) == Draft.unit_id).where(
        col(Draft.status).in_(statuses))
    if signer is not None:
        statuses = [DraftStatus.DRAFTED]
        base = base.where(col(Draft.status) == DraftStatus.DRAFTED,
                          col(Draft.review_stage).in_(stage_indexes(session, settings, signer)))
    query = base.order_by(col(Draft.deadline), col(Draft.id))
    if limit:
        query = query.limit(limit)
    if offset:
        query = query.offset(offset)
    found = list(session.exec(query))
    if not include_all and signer is None and not offset:  # held in a push for a person
        found = sorted(found + _held(session), key=lambda r: (r[0].deadline, r[0].id or 0))
    rows = [summary(d, u, settings, now) for d, u in found]
    _mark_attention(session, rows)
    total = (len(rows) if not offset and (not limit or len(rows) < limit)
             else _count(session, statuses))
    return rows, total


def _held(session: Session) -> list[tuple[Draft, Unit]]:
    held = select(Draft, Unit).join(Unit, col(Unit.id) == Draft.unit_id).join(
        Publication, col(Publication.draft_id) == Draft.id).join(
        WeChatJob, col(WeChatJob.push_id) == Publication.push_id).where(
        col(Draft.status) == DraftStatus.PUBLISHING, Publication.state == "queued",
        col(WeChatJob.state).in_(list(ATTENTION)))
    return [(d, u) for d, u in session.exec(held)]


def _mark_attention(session: Session, rows: list[dict[str, Any]]) -> None:
    """Say what a person must do for each story publishing could not finish."""
    ids = [r["id"] for r in rows if r["status"] in (DraftStatus.FAILED,
                                                    DraftStatus.PUBLISHING)]
    if not ids:
        return
    found = session.exec(
        select(Publication, Push, WeChatJob)
        .join(Push, col(Push.id) == Publication.push_id)
        .join(WeChatJob, col(WeChatJob.push_id) == Push.id, isouter=True)
        .where(col(Publication.draft_id).in_(ids))
        .order_by(col(Publication.id)))
    notes = {}
    for pub, push, job in found:
        if pub.state == "failed":
            notes[pub.draft_id] = Coded("attention.failed", error=pub.error)
        elif pub.state == "queued" and job is not None and job.state in ATTENTION:
            notes[pub.draft_id] = Coded(f"attention.{job.state}", day=str(push.local_date))
    for row in rows:
        if row["id"] in notes:
            row["attention"] = notes[row["id"]]


def _count(session: Session, statuses: list[DraftStatus]) -> int:
    from sqlalchemy import func

    return int(session.exec(select(func.count()).select_from(Draft)
                            .where(col(Draft.status).in_(statuses))).one())


def detail(session: Session, settings: Settings, draft_id: int, now: datetime
           ) -> dict[str, Any]:
    """One draft with its report, files, history, alerts and publications.

    Raises:
        ReviewError: when there is no such draft.
    """
    draft = get_draft(session, draft_id)
    unit = session.get(Unit, draft.unit_id)
    submission = session.get(Submission, draft.submission_id)
    if unit is None or submission is None:
        raise ReviewError.coded("draft.orphan", id=draft_id)
    md_path, html_path = draft_files(settings, draft)
    data = summary(draft, unit, settings, now)
    data.update({
        "author": draft.author, "digest": draft.digest, "cover": draft.cover,
        "version": draft.version,  # what an edit must name (a save is conditional on it)
        "notes": [Coded.load(n) for n in json.loads(draft.notes)],
        "findings": [finding_json(f) for f in open_findings(session, draft_id)],
        "proofread": _proofread(session, draft_id, settings),
        "published_at": iso(draft.published_at, settings),
        "files": {"markdown": str(md_path), "html": str(html_path)},
        "image_notes": image_notes(md_path),
        "report": _report(submission, settings),
        "history": [{"at": iso(e.at, settings), "actor": e.actor, "action": e.action,
                     "from": e.from_status, "to": e.to_status, "note": text_of(e.note),
                     "remote": e.remote}
                    for e in history(session, draft_id)],
        "review": [{"stage": r["stage"], "by": r["by"], "at": iso(r["at"], settings),
                    "note": r["note"]}
                   for r in review_record(session, settings, draft) if r["by"]],
        "stage_signers": _signers_of_open_stage(session, settings, draft),
        "changes_since_signoff": changes_since_signoff(session, settings, draft),
        "alerts": [{"kind": a.kind, "at": iso(a.created_at, settings),
                    "recipients": json.loads(a.recipients), "sent_at": iso(a.sent_at, settings)}
                   for a in alerts_for(session, draft_id)],
        "publications": [_publication(session, p, settings)
                         for p in session.exec(select(Publication).where(
                             Publication.draft_id == draft_id))],
    })
    return data


def _signers_of_open_stage(session: Session, settings: Settings, draft: Draft) -> list[str]:
    from .review import signers

    return list(signers(session, settings, draft.review_stage)) if open_stage(
        settings, draft) else []


def _proofread(session: Session, draft_id: int, settings: Settings) -> dict[str, Any]:
    run = last_run(session, draft_id)
    if run is None:
        return {"ran_at": None, "error": "this draft has not been proofread yet"}
    return {"ran_at": iso(run.at, settings), "error": load_column(run.error)}


# An image the article names by a web address (render turns it into a numbered reference).
_REMOTE_IMAGE = re.compile(r"!\[[^\]]*\]\((https?://[^)\s]+)")


def image_notes(md_path: Path) -> list[str]:
    """What the editor should know about images from elsewhere in the draft: they are
    listed as references, not shown (WeChat shows only uploaded images). Not blocking."""
    try:
        text = md_path.read_text(encoding="utf-8")
    except OSError:
        return []
    return [Coded("render.remote_image", src=repr(src)) for src in
            dict.fromkeys(m[1] for m in _REMOTE_IMAGE.finditer(text))
            if not WECHAT_IMAGE_ADDRESS.match(src)]


def _publication(session: Session, pub: Publication, settings: Settings) -> dict[str, Any]:
    data: dict[str, Any] = {
        "push_id": pub.push_id, "position": pub.position, "state": pub.state,
        "late": pub.late, "published_at": iso(pub.published_at, settings),
        "path": pub.output_path, "url": pub.url, "error": pub.error}
    job = session.exec(select(WeChatJob).where(WeChatJob.push_id == pub.push_id)).first()
    if job is not None:
        calls = session.exec(select(WeChatCall).where(WeChatCall.job_id == job.id)
                             .order_by(col(WeChatCall.id)))
        data["wechat"] = {
            "mode": job.mode, "state": job.state, "media_id": job.media_id,
            "publish_id": job.publish_id, "msg_id": job.msg_id, "article_id": job.article_id,
            "error": job.error,
            "attempts": [{"at": iso(c.at, settings), "step": c.step, "outcome": c.outcome,
                          "detail": c.detail} for c in calls]}
    return data


def _report(sub: Submission, settings: Settings) -> dict[str, Any]:
    return {"activity_type": sub.activity_type, "title": sub.title,
            "start": iso(sub.start_at, settings), "end": iso(sub.end_at, settings),
            "timed": sub.timed, "place": sub.place, "form": sub.form,
            "participants": sub.participants, "participants_unit": sub.participants_unit,
            "participants_text": sub.participants_text,
            "body": sub.body, "links": json.loads(sub.links),
            "partners": json.loads(sub.partners or "[]"),
            "photos": json.loads(sub.photos), "contact": sub.contact, "notes": sub.notes,
            "kept_fields": _notes(sub), "source": sub.source, "row": sub.source_row,
            "received_at": iso(sub.received_at, settings)}


def _notes(sub: Submission) -> list[dict[str, str]]:
    """Fields of the report the product does not know: for the editors, never published."""
    from .intake.unknown import notes_of  # the intake stage loads only when there are some

    extra = json.loads(sub.extra)
    return notes_of(extra) if extra else []


def units_tree(session: Session, now: datetime) -> list[dict[str, Any]]:
    """The unit tree with counts; ``late`` includes stories overdue and not out yet."""
    units = {u.id: u for u in session.exec(select(Unit))}
    rows = []
    for c in unit_counts(session, now):
        rows.append({"id": c.unit.id, "name": c.unit.name, "level": c.unit.level,
                     "level_label": Level(c.unit.level).label, "parent": c.parent,
                     "email": c.unit.email, "depth": _depth(c.unit, units),
                     "submitted": c.submitted, "waiting": c.waiting,
                     "published": c.published, "late": c.late})
    return rows


def _depth(unit: Unit, units: dict[int | None, Unit]) -> int:
    depth = 0
    while unit.parent_id is not None and unit.parent_id in units:
        unit = units[unit.parent_id]
        depth += 1
    return depth
