"""Read models: the queue, one draft in full, the unit tree — as plain dicts.

The queue (and the one-line ``summary`` of a draft) is built in ``reads.py``, whose
statements the lean start of ``pipeline queue`` runs too.

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

from . import reads
from .alerts import alerts_for
from .config import Settings
from .domain import Level
from .drafts import draft_files
from .errors import ReviewError
from .messages import Coded, load_column, text_of
from .models import Draft, Publication, Submission, Unit, WeChatCall, WeChatJob
from .proofread import finding_json, last_run, open_findings
from .reads import SessionReader
from .reads import iso as iso  # (at home in reads.py, with the queue; imported from here too)
from .reads import summary as summary
from .review import (
    changes_since_signoff,
    get_draft,
    history,
    open_stage,
    review_record,
)
from .units import unit_counts

WECHAT_IMAGE_ADDRESS = re.compile(r"https?://mmbiz\.qpic\.cn/", re.IGNORECASE)


def queue(session: Session, settings: Settings, now: datetime, *, include_all: bool = False,
          limit: int = 200, signer: str | None = None, offset: int = 0
          ) -> tuple[list[dict[str, Any]], int]:
    """``reads.queue`` in the session's transaction (see there)."""
    return reads.queue(SessionReader(session), settings, now, include_all=include_all,
                       limit=limit, signer=signer, offset=offset)


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
