"""Editor actions on drafts and staged review (三审): sign, approve, reject, request
changes, edit, resubmit.

A draft in review waits at one open stage of ``[review] stages`` (初审, 复审, 终审 by
default in a new workspace). ``approve`` signs the open stage; the last signature makes
the draft approved for publishing. Nobody signs two stages of the same draft when
``separate_people`` is on, and every signature is kept (``SignOff``) with the text as
signed, so the next signer sees what changed and the office keeps its 审核记录.

Every state change is a move of ``pipeline.lifecycle``: one conditional update plus a
history line, so two editors acting at once cannot both win, and an illegal move is
refused with a sentence before anything changes. The CLI and the web call these same
functions.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from . import lifecycle
from .alerts import record_alert
from .config import Settings
from .domain import DraftStatus
from .errors import EditConflict, RaceLost, ReviewError, TransitionError
from .lifecycle import DRAFT, Who
from .models import Draft, DraftEvent, SignOff, Submission, Unit
from .proofread import proofread_draft, require_confirmation
from .reads import SessionReader, active_users
from .stages import Holders as Holders  # (at home in stages.py; imported from here too)
from .stages import UserRow, holders_of, signers_of, stage_indexes_of
from .stages import open_stage as open_stage

S = DraftStatus

NEEDS_NOTE = frozenset({"reject", "request_changes"})
EDITABLE = lifecycle.DRAFT_EDITABLE
COVER_EDITABLE = EDITABLE  # a cover can change while the article text can
RESUBMITTABLE = DRAFT.sources("resubmit")
ACTION_WORDS = lifecycle.ACTION_WORDS


@dataclass(frozen=True)
class Outcome:
    draft_id: int
    from_status: DraftStatus
    to_status: DraftStatus
    signed: str | None = None      # the stage signed by an approve
    next_stage: str | None = None  # the stage now open (None: approved or out of review)


def get_draft(session: Session, draft_id: int) -> Draft:
    """The draft with this id.

    Raises:
        ReviewError: when there is no such draft.
    """
    draft = session.get(Draft, draft_id)
    if draft is None:
        raise ReviewError.coded("draft.not_found", id=draft_id)
    return draft


# ----------------------------------------------------------------------- stages

def _users(session: Session) -> list[UserRow]:
    return active_users(SessionReader(session))


def signers(session: Session, settings: Settings, stage: int) -> tuple[str, ...]:
    """Who may sign stage ``stage`` (empty: any editor); see ``stages.signers_of``."""
    return signers_of(settings, _users(session), stage)


def stage_signers(session: Session, settings: Settings) -> dict[str, tuple[str, ...]]:
    users = _users(session)
    return {s.name: signers_of(settings, users, i)
            for i, s in enumerate(settings.review.stages)}


def holders(session: Session, settings: Settings) -> list[Holders]:
    """Every stage's holders, read once (for the sweep and the digest)."""
    return holders_of(settings, _users(session))


def stages_of(session: Session, settings: Settings, name: str) -> list[str]:
    """The stages ``name`` may sign (a stage with no named signers is open to anyone)."""
    return [settings.review.stages[i].name for i in stage_indexes(session, settings, name)]


def stage_indexes(session: Session, settings: Settings, name: str) -> list[int]:
    return stage_indexes_of(settings, _users(session), name)


def _check_signer(session: Session, settings: Settings, draft: Draft, actor: str) -> None:
    stage = draft.review_stage
    spec = settings.review.stages[stage]
    allowed = signers(session, settings, stage)
    if allowed and actor not in allowed:
        raise ReviewError.coded("review.not_signer", id=draft.id, stage=spec.name,
                                signers=list(allowed), actor=actor)
    if not settings.review.separate_people:
        return
    earlier = session.exec(select(SignOff).where(SignOff.draft_id == draft.id,
                                                 SignOff.by == actor,
                                                 SignOff.stage != stage)).first()
    if earlier is not None:
        raise ReviewError.coded("review.signed_other_stage", actor=actor,
                                stage=earlier.stage_name, id=draft.id, open=spec.name)


# ----------------------------------------------------------------------- actions

def transition(session: Session, settings: Settings, draft_id: int, action: str, *,
               actor: str, note: str, now: datetime, remote: str = "",
               confirm_findings: bool = False, stage: str | None = None) -> Outcome:
    """Apply an editor action, or refuse it with a sentence saying why.

    ``approve`` signs the open review stage; only the last stage approves the draft, and
    its signer confirms the open privacy/banned proofreading findings
    (``confirm_findings``, see ``proofread.require_confirmation``). ``stage`` names the
    stage the signer means to sign (the one the page showed): when it is no longer
    open, the answer says who signed it or what happened instead.

    Raises:
        RaceLost: another person signed or moved the draft first (who, what, when;
            ``already_done`` when the stage this signer meant is signed).
        ReviewError: unknown draft, illegal move, wrong signer, missing note, unconfirmed
            privacy/banned findings.
    """
    draft = get_draft(session, draft_id)
    note = note.strip()
    if action in NEEDS_NOTE and not note:
        raise ReviewError.coded("review.note_required", action=action)
    if action == "approve":
        return _sign(session, settings, draft, actor=actor, note=note, now=now, remote=remote,
                     confirm_findings=confirm_findings, meant=_stage_index(settings, stage))
    if action in NEEDS_NOTE and draft.status == S.DRAFTED:
        _check_signer(session, settings, draft, actor)
    current = DraftStatus(draft.status)
    values: dict[str, Any] = {}
    if action in ("resubmit", "reopen"):
        values = _new_round(draft)
    try:
        moved = lifecycle.move(session, DRAFT, draft, action, actor=actor, now=now,
                               note=note, remote=remote, who=Who.SIGNER, values=values)
    except TransitionError as exc:
        if not exc.lost_race:
            raise
        session.refresh(draft)  # the winner has committed (our update waited for it)
        raise _moved_meanwhile(session, settings, draft, action) from exc
    if action in NEEDS_NOTE:
        _tell_unit(session, draft, action, note, now)
    return Outcome(draft_id, current, DraftStatus(moved.to_state),
                   next_stage=_stage_name(settings, draft))


def _sign(session: Session, settings: Settings, draft: Draft, *, actor: str, note: str,
          now: datetime, remote: str, confirm_findings: bool = False,
          meant: int | None = None) -> Outcome:
    stages = settings.review.stages
    signed_round = draft.review_round
    stage = min(draft.review_stage, len(stages) - 1)
    if meant is not None and (draft.status != S.DRAFTED or stage != meant):
        # The page showed another stage: someone acted between (a racing signer on
        # SQLite, whose writers take turns, finds the draft already moved on here).
        raise _lost_sign(session, settings, draft, signed_round, meant)
    if DRAFT.find(draft.status, "approve") is None:
        raise lifecycle.refusal(DRAFT, draft.id or 0, draft.status, "approve")
    problems = json.loads(draft.problems)
    if problems:
        raise ReviewError.coded("review.problems", id=draft.id, problems=problems)
    _check_signer(session, settings, draft, actor)
    last = stage == len(stages) - 1
    from .drafts import read_markdown  # the signed text is kept for the next signer's diff

    text = read_markdown(session, settings, draft.id or 0)
    words = f"{stages[stage].name}: " + (note or "signed")
    try:
        if last:  # the final signer answers for what is published: privacy, banned words
            require_confirmation(session, draft.id or 0, confirm_findings, actor=actor,
                                 now=now)
        # The move first: of two signers racing, the second waits on the row and then
        # loses the conditional update, before it writes a sign-off of its own.
        lifecycle.move(session, DRAFT, draft, "approve" if last else "sign", actor=actor,
                       now=now, note=words, remote=remote, who=Who.SIGNER,
                       values={} if last else {"review_stage": stage + 1})
    except TransitionError as exc:
        if not exc.lost_race:
            raise
        session.refresh(draft)  # the winner has committed (our update waited for it)
        raise _lost_sign(session, settings, draft, signed_round, stage) from exc
    session.add(SignOff(draft_id=draft.id or 0, round=signed_round, stage=stage,
                        stage_name=stages[stage].name, by=actor, at=now, note=note,
                        markdown=text))
    return Outcome(draft.id or 0, S.DRAFTED, DraftStatus(draft.status), signed=stages[stage].name,
                   next_stage=_stage_name(settings, draft))


def _stage_index(settings: Settings, name: str | None) -> int | None:
    if not name:
        return None
    for i, stage in enumerate(settings.review.stages):
        if stage.name == name:
            return i
    raise ReviewError.coded("review.no_stage", stage=name,
                            stages=[s.name for s in settings.review.stages])


def _lost_sign(session: Session, settings: Settings, draft: Draft, round_: int, stage: int
               ) -> RaceLost:
    """The truth for a signer who came second: who signed the stage meant, or what
    happened to the draft instead."""
    signed = session.exec(select(SignOff).where(SignOff.draft_id == draft.id,
                                                SignOff.round == round_,
                                                SignOff.stage == stage)).first()
    if signed is not None:
        return RaceLost.of("review.signed_meanwhile", True, by=signed.by, id=draft.id,
                           stage=signed.stage_name, at=_clock(settings, signed.at))
    return _moved_meanwhile(session, settings, draft, "approve")


def _moved_meanwhile(session: Session, settings: Settings, draft: Draft, action: str
                     ) -> RaceLost:
    """What the person who moved the draft first did (its newest history line)."""
    last = session.exec(select(DraftEvent).where(DraftEvent.draft_id == draft.id)
                        .order_by(col(DraftEvent.id).desc())).first()
    assert last is not None  # every draft has its "submitted" line
    return RaceLost.of("review.moved_meanwhile", last.action == action, by=last.actor or "?",
                       id=draft.id, action=last.action, state=str(draft.status),
                       at=_clock(settings, last.at))


def _clock(settings: Settings, moment: datetime) -> str:
    return moment.astimezone(settings.tz).strftime("%H:%M")


def _stage_name(settings: Settings, draft: Draft) -> str | None:
    stage = open_stage(settings, draft)
    return stage.name if stage else None


def _new_round(draft: Draft) -> dict[str, Any]:
    """Back to the first stage: the text changed or the story left review."""
    return {"review_stage": 0, "review_round": draft.review_round + 1}


def _tell_unit(session: Session, draft: Draft, action: str, note: str, now: datetime) -> None:
    # Keyed by version: a draft sent back twice gets two alerts, a retried command one.
    unit = session.get(Unit, draft.unit_id)
    kind = "changes_requested" if action == "request_changes" else "rejected"
    record_alert(session, f"{kind}:{draft.id}:{draft.version}", kind, now, draft_id=draft.id,
                 recipients=(unit.email,) if unit and unit.email else (),
                 detail=f"Draft {draft.id} '{draft.title}': {note}")


def edit(session: Session, settings: Settings, draft_id: int, markdown: str, *, actor: str,
         now: datetime, remote: str = "", note: str = "",
         expected_version: int | None = None) -> list[str]:
    """Replace a draft's Markdown, re-render and proofread it, and return the remaining
    WeChat problems. ``note`` says why (an applied proofreading suggestion).

    ``expected_version`` is the version the editor opened: the update is conditional on
    it, and the new files are written under a new name only after the row was won; the
    row switches to them in the same transaction (see ``write_draft_files``).
    An edit after a sign-off is recorded as such; with ``review.edit_resets`` it sends
    the draft back to the first stage.

    Raises:
        EditConflict: someone else saved the draft first.
        ReviewError: when the draft can no longer be edited.
    """
    draft = get_draft(session, draft_id)
    if expected_version is not None and draft.version != expected_version:
        raise EditConflict(draft_id, draft.version)
    if draft.status not in EDITABLE:
        raise ReviewError.coded("draft.not_editable", id=draft_id, state=draft.status)
    from .drafts import next_stem, rerender_draft, write_draft_files  # loads the renderer

    signed = _signed_this_round(session, draft)
    resets = settings.review.edit_resets and bool(signed) and draft.status in (
        DRAFT.sources("edit_reset"))
    article = rerender_draft(settings, draft, markdown)
    left = f"{len(article.problems)} problem(s) left" if article.problems else ""
    after = f"after {signed[-1].stage_name} signed by {signed[-1].by}" if signed else ""
    try:
        lifecycle.move(session, DRAFT, draft, "edit_reset" if resets else "edit", actor=actor,
                       now=now, note="; ".join(x for x in (note, after, left) if x),
                       remote=remote, values={"problems": draft.problems,
                                              "article_file": next_stem(draft),
                                              **(_new_round(draft) if resets else {})})
    except TransitionError as exc:
        if not exc.lost_race:
            raise
        raise EditConflict(draft_id, _committed_version(session, draft_id)) from exc
    write_draft_files(session, settings, draft, article)
    proofread_draft(session, settings, draft_id, article.markdown, draft.title, now)
    return list(article.problems)


def _committed_version(session: Session, draft_id: int) -> int:
    # The winner has committed by now (our conditional update waited for it on PostgreSQL).
    found = session.execute(sa.select(col(Draft.version)).where(col(Draft.id) == draft_id)).scalar()
    return int(found or 0)


def _signed_this_round(session: Session, draft: Draft) -> list[SignOff]:
    return list(session.exec(select(SignOff).where(SignOff.draft_id == draft.id,
                                                   SignOff.round == draft.review_round)
                             .order_by(col(SignOff.stage))))


def sign_offs(session: Session, draft: Draft) -> list[SignOff]:
    """The signatures of the draft's current review round, stage by stage."""
    return _signed_this_round(session, draft)


def changes_since_signoff(session: Session, settings: Settings, draft: Draft) -> str:
    """A unified diff of the Markdown since the last signature ('' when unchanged)."""
    last = session.exec(select(SignOff).where(SignOff.draft_id == draft.id)
                        .order_by(col(SignOff.at).desc(), col(SignOff.id).desc())).first()
    if last is None:
        return ""
    from .drafts import read_markdown

    current = read_markdown(session, settings, draft.id or 0)
    if current == last.markdown:
        return ""
    return "".join(difflib.unified_diff(
        last.markdown.splitlines(keepends=True), current.splitlines(keepends=True),
        fromfile=f"{last.stage_name} {last.by}", tofile="now", n=1))


def history(session: Session, draft_id: int) -> list[DraftEvent]:
    query = select(DraftEvent).where(DraftEvent.draft_id == draft_id).order_by(
        col(DraftEvent.at), col(DraftEvent.id))
    return list(session.exec(query))


def set_cover(session: Session, draft_id: int, cover: str, *, actor: str,
              now: datetime) -> None:
    """Make one of the report's photos the article's cover.

    Raises:
        ReviewError: no such draft or photo, or the draft is already out.
    """
    draft = get_draft(session, draft_id)
    if draft.status not in COVER_EDITABLE:
        raise ReviewError.coded("draft.not_editable", id=draft_id, state=draft.status)
    submission = session.get(Submission, draft.submission_id)
    names = [p["name"] for p in json.loads(submission.photos)] if submission else []
    if cover not in names:
        raise ReviewError.coded("draft.no_photo", id=draft_id, photo=cover)
    lifecycle.move(session, DRAFT, draft, "cover", actor=actor, now=now, note=cover,
                   values={"cover": cover})


def review_record(session: Session, settings: Settings, draft: Draft) -> list[dict[str, Any]]:
    """The 审核记录: each stage of the current round with who signed it and when."""
    signed = {s.stage: s for s in _signed_this_round(session, draft)}
    rows = []
    for i, stage in enumerate(settings.review.stages):
        s = signed.get(i)
        rows.append({"stage": stage.name, "by": s.by if s else None,
                     "at": s.at if s else None, "note": s.note if s else ""})
    return rows
