"""Editor actions on drafts: approve, reject, request changes, edit, resubmit.

Each action is one conditional update (``WHERE id = ? AND version = ?``) plus a
history line, so two editors acting at once cannot both win, and an illegal
transition is refused with a sentence before anything changes. The CLI and the
web layer call these same functions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, select

from .alerts import record_alert
from .config import Settings
from .domain import DraftStatus
from .errors import PipelineError, ReviewError
from .models import Draft, DraftEvent, Submission, Unit
from .proofread import proofread_draft, require_confirmation

S = DraftStatus

# action -> (statuses it may start from, status it leads to, whether a note is required)
TRANSITIONS: dict[str, tuple[frozenset[DraftStatus], DraftStatus, bool]] = {
    "approve": (frozenset({S.DRAFTED}), S.APPROVED, False),
    "reject": (frozenset({S.DRAFTED, S.CHANGES_REQUESTED, S.APPROVED}), S.REJECTED, True),
    "request_changes": (frozenset({S.DRAFTED, S.APPROVED}), S.CHANGES_REQUESTED, True),
    "resubmit": (frozenset({S.CHANGES_REQUESTED}), S.DRAFTED, False),
    "reopen": (frozenset({S.FAILED}), S.DRAFTED, False),
}
EDITABLE = frozenset({S.DRAFTED, S.CHANGES_REQUESTED, S.APPROVED, S.FAILED})
ACTION_WORDS = {"approve": "approved", "reject": "rejected",
                "request_changes": "sent back for changes", "resubmit": "resubmitted",
                "reopen": "reopened"}


@dataclass(frozen=True)
class Outcome:
    draft_id: int
    from_status: DraftStatus
    to_status: DraftStatus


def get_draft(session: Session, draft_id: int) -> Draft:
    """The draft with this id.

    Raises:
        ReviewError: when there is no such draft.
    """
    draft = session.get(Draft, draft_id)
    if draft is None:
        raise ReviewError(f"There is no draft {draft_id}; 'pipeline queue --all' lists them.")
    return draft


def transition(session: Session, draft_id: int, action: str, *, actor: str, note: str,
               now: datetime, confirm_findings: bool = False) -> Outcome:
    """Apply an editor action, or refuse it with a sentence saying why.

    ``confirm_findings``: the approver confirms the open privacy/banned proofreading
    findings (see ``proofread.require_confirmation``).

    Raises:
        ReviewError: unknown draft, illegal transition, missing note, unconfirmed
            privacy/banned findings, or a lost race.
    """
    allowed, target, needs_note = TRANSITIONS[action]
    draft = get_draft(session, draft_id)
    current = DraftStatus(draft.status)
    if current not in allowed:
        starts = " or ".join(sorted(f"'{s.value}'" for s in allowed))
        raise ReviewError(f"Draft {draft_id} is '{current.value}'; only {starts} drafts can be "
                          f"{ACTION_WORDS[action]}.")
    if needs_note and not note.strip():
        raise ReviewError(f"A note is required when a draft is {ACTION_WORDS[action]}: tell "
                          "the reporting unit what to change or why.")
    if action == "approve":
        problems = json.loads(draft.problems)
        if problems:
            raise ReviewError(f"Draft {draft_id} cannot be approved until it is fixed: "
                              + "; ".join(problems) + ".")
        # issue 9: the lead moves this to the final review stage at merge
        require_confirmation(session, draft_id, confirm_findings, actor=actor, now=now)
    _update(session, draft, target, now)
    session.add(DraftEvent(draft_id=draft_id, at=now, actor=actor, action=action,
                           from_status=current, to_status=target, note=note.strip()))
    if action in ("reject", "request_changes"):
        _tell_unit(session, draft, action, note.strip(), now)
    return Outcome(draft_id, current, target)


def _tell_unit(session: Session, draft: Draft, action: str, note: str, now: datetime) -> None:
    # Keyed by version: a draft sent back twice gets two alerts, a retried command one.
    unit = session.get(Unit, draft.unit_id)
    kind = "changes_requested" if action == "request_changes" else "rejected"
    record_alert(session, f"{kind}:{draft.id}:{draft.version}", kind, now, draft_id=draft.id,
                 recipients=(unit.email,) if unit and unit.email else (),
                 detail=f"Draft {draft.id} '{draft.title}': {note}")


def _update(session: Session, draft: Draft, target: DraftStatus, now: datetime) -> None:
    result = session.execute(
        sa.update(Draft)
        .where(Draft.id == draft.id, Draft.version == draft.version)  # type: ignore[arg-type]
        .values(status=target, updated_at=now, version=draft.version + 1))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise ReviewError(f"Draft {draft.id} was changed by someone else just now; "
                          "look at it again and retry.")
    session.refresh(draft)


def edit(session: Session, settings: Settings, draft_id: int, markdown: str, *, actor: str,
         now: datetime, note: str = "") -> list[str]:
    """Replace a draft's Markdown, re-render and proofread it, and return the remaining
    WeChat problems. ``note`` says why (an applied proofreading suggestion).

    Raises:
        ReviewError: when the draft can no longer be edited.
    """
    draft = get_draft(session, draft_id)
    if draft.status not in EDITABLE:
        raise ReviewError(f"Draft {draft_id} is '{draft.status}' and can no longer be edited.")
    from .drafts import rerender_draft  # the render stage loads only for edits

    article = rerender_draft(settings, draft, markdown)
    draft.updated_at = now
    draft.version += 1
    session.add(draft)
    session.add(DraftEvent(draft_id=draft_id, at=now, actor=actor, action="edit",
                           from_status=draft.status, to_status=draft.status,
                           note="; ".join(filter(None, [note, f"{len(article.problems)} "
                                                        "problem(s) left"
                                                        if article.problems else ""]))))
    proofread_draft(session, settings, draft_id, article.markdown, draft.title, now)
    return list(article.problems)


def history(session: Session, draft_id: int) -> list[DraftEvent]:
    query = select(DraftEvent).where(DraftEvent.draft_id == draft_id).order_by(
        DraftEvent.at, DraftEvent.id)  # type: ignore[arg-type]
    return list(session.exec(query))


COVER_EDITABLE = EDITABLE  # a cover can change while the article text can


def set_cover(session: Session, draft_id: int, cover: str, *, actor: str,
              now: datetime) -> None:
    """Make one of the report's photos the article's cover.

    Raises:
        ReviewError: no such draft or photo, or the draft is already out.
    """
    draft = get_draft(session, draft_id)
    if draft.status not in COVER_EDITABLE:
        raise ReviewError(f"Draft {draft_id} is '{draft.status}' and can no longer be edited.")
    submission = session.get(Submission, draft.submission_id)
    names = [p["name"] for p in json.loads(submission.photos)] if submission else []
    if cover not in names:
        raise PipelineError(f"Draft {draft_id} has no photo {cover!r}.")
    draft.cover, draft.updated_at, draft.version = cover, now, draft.version + 1
    session.add(draft)
    session.add(DraftEvent(draft_id=draft_id, at=now, actor=actor, action="cover",
                           from_status=draft.status, to_status=draft.status, note=cover))
