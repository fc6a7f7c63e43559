"""Proofreading findings on drafts: recorded at intake and after every edit, applied or
dismissed by an editor, confirmed at approval. The article text changes only through
``review.edit`` (an applied suggestion is an edit like any other).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from .. import lifecycle
from ..config import Settings
from ..errors import ProofreadError, ReviewError
from ..messages import to_column
from ..models import Draft, DraftEvent, Finding, ProofreadRun
from .check import BLOCKING, Hit, not_run_reason, proofread_text
from .lists import load_lexicon

OPEN = "open"


@dataclass(frozen=True)
class Outcome:
    """What one proofreading pass left on a draft."""

    findings: int       # open findings after the pass
    error: str          # why proofreading did not run ("" when it ran)


def proofread_draft(session: Session, settings: Settings, draft_id: int, markdown: str,
                    title: str, now: datetime) -> Outcome:
    """Check the draft's current text and replace its open findings; never raises for a
    broken list: the draft then records that proofreading did not run, and why."""
    session.execute(sa.delete(Finding).where(col(Finding.draft_id) == draft_id,
                                             col(Finding.state) == OPEN))
    try:
        hits = proofread_text(markdown, title, load_lexicon(settings.paths.proofread),
                              settings.limits.title_chars)
        error = ""
    except ProofreadError as exc:
        hits, error = [], not_run_reason(exc)
    settled = {(f.kind, f.text) for f in session.exec(select(Finding).where(
        Finding.draft_id == draft_id, col(Finding.state).in_(("dismissed", "confirmed"))))}
    fresh = [h for h in hits if (h.kind, h.text) not in settled]
    for hit in fresh:
        session.add(_row(draft_id, hit, now))
    _record_run(session, draft_id, now, error)
    return Outcome(len(fresh), error)


def finding_values(draft_id: int, hit: Hit, now: datetime) -> dict[str, object]:
    """One open finding as the values of a bulk insert."""
    return {"draft_id": draft_id, "kind": hit.kind, "rule": hit.rule, "text": hit.text,
            "offset_start": hit.start, "offset_end": hit.end, "suggestion": hit.suggestion,
            "message": hit.message, "detail": hit.detail, "state": OPEN, "note": "",
            "actor": "", "created_at": now, "resolved_at": None}


def run_values(draft_id: int, version: int, now: datetime, error: str) -> dict[str, object]:
    """The proofreading run of a new draft as the values of a bulk insert."""
    return {"draft_id": draft_id, "at": now, "draft_version": version,
            "error": to_column(error)}


def _row(draft_id: int, hit: Hit, now: datetime) -> Finding:
    return Finding(draft_id=draft_id, kind=hit.kind, rule=hit.rule, text=hit.text,
                   offset_start=hit.start, offset_end=hit.end, suggestion=hit.suggestion,
                   message=hit.message, detail=hit.detail, state=OPEN, created_at=now)


def _record_run(session: Session, draft_id: int, now: datetime, error: str) -> None:
    draft = session.get(Draft, draft_id)
    run = session.get(ProofreadRun, draft_id) or ProofreadRun(draft_id=draft_id, at=now)
    run.at, run.error = now, to_column(error)
    run.draft_version = draft.version if draft is not None else 0
    session.add(run)
    session.flush()


def open_findings(session: Session, draft_id: int) -> list[Finding]:
    """The draft's open findings, title first, then in text order."""
    return list(session.exec(select(Finding).where(
        Finding.draft_id == draft_id, Finding.state == OPEN).order_by(
        col(Finding.offset_start).is_not(None), col(Finding.offset_start), col(Finding.id))))


def last_run(session: Session, draft_id: int) -> ProofreadRun | None:
    return session.get(ProofreadRun, draft_id)


def finding_json(finding: Finding) -> dict[str, object]:
    """The shape ``show --json`` and the API give: offsets into the article Markdown."""
    return {"id": finding.id, "kind": finding.kind, "rule": finding.rule, "text": finding.text,
            "start": finding.offset_start, "end": finding.offset_end,
            "suggestion": finding.suggestion, "message": finding.message,
            "detail": finding.detail}


# ---------------------------------------------------------------- approval

def blocking_findings(session: Session, draft_id: int) -> list[Finding]:
    """Open privacy and banned findings: the final approval must confirm each one."""
    return [f for f in open_findings(session, draft_id) if f.kind in BLOCKING]


def require_confirmation(session: Session, draft_id: int, confirmed: bool, *, actor: str,
                         now: datetime) -> None:
    """Refuse an approval over open privacy/banned findings unless they are confirmed;
    when confirmed, record each confirmation (finding state and a history line).

    Raises:
        ReviewError: open privacy/banned findings and no confirmation; names them.
    """
    blocking = blocking_findings(session, draft_id)
    if not blocking:
        return
    listed = "; ".join(f"{f.kind} '{f.text}'" for f in blocking)
    if not confirmed:
        raise ReviewError.coded("finding.blocking", id=draft_id, count=len(blocking),
                                findings=[(f.kind, f.text) for f in blocking])
    for finding in blocking:
        lifecycle.move(session, lifecycle.FINDING, finding, "confirm", actor=actor, now=now,
                       note="confirmed at approval",
                       values={"actor": actor, "resolved_at": now,
                               "note": "confirmed at approval"})
    _history(session, draft_id, actor, now, "confirm_findings", f"confirmed: {listed}")


# ---------------------------------------------------------------- apply, dismiss

def get_finding(session: Session, draft_id: int, finding_id: int) -> Finding:
    """An open finding of this draft.

    Raises:
        ReviewError: no such finding, or it was applied or dismissed already.
    """
    finding = session.get(Finding, finding_id)
    if finding is None or finding.draft_id != draft_id:
        raise ReviewError.coded("finding.not_found", id=draft_id, finding=finding_id)
    if finding.state != OPEN:
        raise ReviewError.coded("finding.done", finding=finding_id, state=finding.state)
    return finding


def apply_finding(session: Session, settings: Settings, draft_id: int, finding_id: int, *,
                  actor: str, now: datetime) -> list[str]:
    """Write the finding's suggestion into the article: an edit, recorded in the history.

    Returns the WeChat problems left after the edit.

    Raises:
        ReviewError: no suggestion, the text there changed, or the draft cannot be edited.
    """
    from .. import review
    from ..drafts import read_markdown

    finding = get_finding(session, draft_id, finding_id)
    start, end = finding.offset_start, finding.offset_end
    if start is None or end is None or not (finding.suggestion or finding.rule == "delete"):
        raise ReviewError.coded("finding.no_suggestion", finding=finding_id)
    markdown = read_markdown(session, settings, draft_id)
    if markdown[start:end] != finding.text:
        raise ReviewError.coded("finding.text_changed", id=draft_id, finding=finding_id)
    lifecycle.move(session, lifecycle.FINDING, finding, "apply", actor=actor, now=now,
                   values={"actor": actor, "resolved_at": now})
    edited = markdown[:start] + finding.suggestion + markdown[end:]
    note = f"proofreading: '{finding.text}' -> '{finding.suggestion}'"
    return review.edit(session, settings, draft_id, edited, actor=actor, now=now, note=note)


def dismiss_finding(session: Session, draft_id: int, finding_id: int, reason: str, *,
                    actor: str, now: datetime) -> None:
    """Set a finding aside with a reason (recorded); it does not come back after edits.

    Raises:
        ReviewError: no reason, or no such open finding.
    """
    if not reason.strip():
        raise ReviewError.coded("finding.reason_required")
    finding = get_finding(session, draft_id, finding_id)
    lifecycle.move(session, lifecycle.FINDING, finding, "dismiss", actor=actor, now=now,
                   note=reason.strip(), values={"actor": actor, "resolved_at": now,
                                                "note": reason.strip()})
    _history(session, draft_id, actor, now, "dismiss_finding",
             f"{finding.kind} '{finding.text}': {reason.strip()}")


def _history(session: Session, draft_id: int, actor: str, now: datetime, action: str,
             note: str) -> None:
    draft = session.get(Draft, draft_id)
    status = draft.status if draft is not None else None
    session.add(DraftEvent(draft_id=draft_id, at=now, actor=actor, action=action,
                           from_status=status, to_status=status, note=note))


