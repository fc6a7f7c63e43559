"""Every state machine of the product, declared once, and the one function that moves them.

Six machines: the draft, the day's push, the publication (one story in one push), the
WeChat job, the outbox message and the proofreading finding. Each is a table of moves
``(from, action, to, who)``; ``move`` performs one: a conditional update (``WHERE id = ?
AND state = ? AND version = ?``), the version bump and the history line, in the caller's
transaction. Nothing
else writes a state column: a statement that tries is refused at the engine (see
``_guard``), so the rule holds for the next contributor too.

Questions about what a state means ("is today's push taken?", "may this draft still
be edited?") are answered here, so the desk, the CLI, the digest and the push ask the
same sets instead of keeping their own lists.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import attributes
from sqlmodel import Session, SQLModel

from .domain import PUSH_OUT as PUSH_OUT  # the push's states and their questions live in
from .domain import PUSH_TAKEN as PUSH_TAKEN  # domain (loads no table); asked here too
from .domain import DraftStatus
from .domain import PublicationState as PublicationState
from .domain import PushState as PushState
from .domain import push_taken as push_taken
from .domain import push_went_out as push_went_out
from .errors import TransitionError
from .models import (
    Draft,
    DraftEvent,
    Finding,
    OutboxMessage,
    Publication,
    Push,
    StateEvent,
    WeChatJob,
)


class Who(StrEnum):
    """Who may perform a move."""

    SIGNER = "signer"      # a person allowed to sign the draft's open review stage
    EDITOR = "editor"      # any editor at the desk or the command line
    REPORTER = "reporter"  # the reporting unit, through its link
    SYSTEM = "system"      # the push, the scheduler, the outbox worker


class JobState(StrEnum):
    QUEUED = "queued"
    DRAFTING = "drafting"
    DRAFTED = "drafted"
    SUBMITTING = "submitting"
    SUBMITTED = "submitted"
    PUBLISHED = "published"
    DRAFT_UNKNOWN = "draft_unknown"
    SUBMIT_UNKNOWN = "submit_unknown"
    DEFERRED = "deferred"
    FAILED = "failed"
    NEEDS_HUMAN = "needs_human"
    CANCELLED = "cancelled"
    AWAITING_MANUAL = "awaiting_manual"
    SENT_UNCONFIRMED = "sent_unconfirmed"


class OutboxState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True)
class Move:
    source: frozenset[str]
    action: str
    target: str | None  # None: the state stays as it is (an edit, a poll, a note)
    who: Who


def _m(source: str | Iterable[str], action: str, target: str | None, who: Who) -> Move:
    states = frozenset({source} if isinstance(source, str) else source)
    return Move(states, action, target, who)


@dataclass(frozen=True)
class Machine:
    """One state machine: its table, its columns and its moves."""

    name: str
    model: type[SQLModel]
    column: str                       # the state column
    version: str                      # bumped by every move; guards lost updates
    initial: frozenset[str]           # states a row may be created in
    moves: tuple[Move, ...]
    touch: str | None = None          # a timestamp column set to ``now`` by every move
    _index: dict[tuple[str, str], Move] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for m in self.moves:
            for state in m.source:
                key = (state, m.action)
                if key in self._index:
                    raise ValueError(f"{self.name}: {key} is declared twice")
                self._index[key] = m

    def find(self, state: str, action: str) -> Move | None:
        return self._index.get((str(state), action))

    def sources(self, action: str) -> frozenset[str]:
        return frozenset(s for s, a in self._index if a == action)

    def action_between(self, source: str, target: str) -> str:
        """The one action leading from ``source`` to ``target`` (a self-move: the one
        keeping the state)."""
        # The system's own moves: an editor's move between the same states (a withdrawal
        # restarting a job) is always asked for by name.
        found = sorted(m.action for (state, _), m in self._index.items()
                       if state == source and (m.target or source) == target
                       and m.who is Who.SYSTEM)
        if len(found) != 1:
            raise ValueError(f"{self.name}: {len(found)} moves lead from {source!r} to "
                             f"{target!r}: {found}")
        return found[0]

    def actions(self) -> frozenset[str]:
        return frozenset(a for _, a in self._index)

    def states(self) -> frozenset[str]:
        found = set(self.initial)
        for m in self.moves:
            found |= m.source
            if m.target is not None:
                found.add(m.target)
        return frozenset(found)


D = DraftStatus
REVIEWABLE = (D.DRAFTED, D.CHANGES_REQUESTED, D.APPROVED, D.FAILED)

DRAFT = Machine("draft", Draft, "status", "version", frozenset({D.DRAFTED}), moves=(
    _m(D.DRAFTED, "sign", None, Who.SIGNER),           # a stage before the last
    _m(D.DRAFTED, "approve", D.APPROVED, Who.SIGNER),  # the last stage
    _m((D.DRAFTED, D.APPROVED), "request_changes", D.CHANGES_REQUESTED, Who.SIGNER),
    _m((D.DRAFTED, D.CHANGES_REQUESTED, D.APPROVED), "reject", D.REJECTED, Who.SIGNER),
    _m(D.CHANGES_REQUESTED, "resubmit", D.DRAFTED, Who.REPORTER),
    _m(D.FAILED, "reopen", D.DRAFTED, Who.EDITOR),
    _m(REVIEWABLE, "edit", None, Who.EDITOR),
    _m((D.DRAFTED, D.APPROVED), "edit_reset", D.DRAFTED, Who.EDITOR),  # review.edit_resets
    _m(REVIEWABLE, "cover", None, Who.EDITOR),
    _m(D.APPROVED, "claim", D.PUBLISHING, Who.SYSTEM),
    _m(D.PUBLISHING, "publish", D.PUBLISHED, Who.SYSTEM),
    _m(D.PUBLISHING, "hand_back", D.APPROVED, Who.SYSTEM),  # to the next push (quota, unsent)
    _m(D.PUBLISHING, "fail", D.FAILED, Who.SYSTEM),         # WeChat gave up
    _m(D.PUBLISHING, "take_out", D.DRAFTED, Who.SYSTEM),    # breaks a rule at publish time
    _m(D.PUBLISHING, "withdraw", D.DRAFTED, Who.EDITOR),
), touch="updated_at")

P = PushState
PUSH = Machine("push", Push, "state", "version",
               frozenset({P.RUNNING, P.EMPTY, P.DONE, P.MISSED}), moves=(
                   _m(P.EMPTY, "claim", P.RUNNING, Who.SYSTEM),
                   # The day ended with nothing pushed: a break in the daily regime (断更).
                   # An empty push never takes the day before its end (issue 10).
                   _m(P.EMPTY, "lapse", P.MISSED, Who.SYSTEM),
                   _m(P.RUNNING, "finish", P.DONE, Who.SYSTEM),
                   _m(P.RUNNING, "fail", P.FAILED, Who.SYSTEM),
                   _m(P.RUNNING, "release", P.MISSED, Who.SYSTEM),
               ))

PUB = PublicationState
PUBLICATION = Machine("publication", Publication, "state", "version",
                      frozenset({PUB.QUEUED}), moves=(
                          _m(PUB.QUEUED, "publish", PUB.PUBLISHED, Who.SYSTEM),
                          _m(PUB.QUEUED, "fail", PUB.FAILED, Who.SYSTEM),
                          _m(PUB.QUEUED, "cancel", PUB.CANCELLED, Who.SYSTEM),
                          _m(PUB.QUEUED, "withdraw", PUB.CANCELLED, Who.EDITOR),
                      ))

J = JobState
JOB_OPEN = frozenset({J.QUEUED, J.DRAFTING, J.DRAFTED, J.SUBMITTING, J.SUBMITTED,
                      J.DRAFT_UNKNOWN, J.SUBMIT_UNKNOWN, J.AWAITING_MANUAL,
                      J.SENT_UNCONFIRMED, J.NEEDS_HUMAN, J.DEFERRED})
# In these the job made an external call whose outcome only WeChat knows.
JOB_IN_FLIGHT = frozenset({J.DRAFTING, J.SUBMITTING})
# In these the articles may already be out at WeChat: never hand the stories back.
JOB_MAYBE_OUT = frozenset({J.SUBMIT_UNKNOWN, J.SUBMITTED, J.AWAITING_MANUAL})
# A person must say whether these went out (confirm-sent or release).
JOB_WAITING_FOR_PERSON = frozenset({J.SENT_UNCONFIRMED, J.AWAITING_MANUAL, J.NEEDS_HUMAN})
# A story in a push whose job is in one of these can still be withdrawn.
JOB_WITHDRAWABLE = frozenset({J.QUEUED, J.DRAFTED, J.DEFERRED, J.AWAITING_MANUAL,
                              J.DRAFT_UNKNOWN})

WECHAT_JOB = Machine("wechat_job", WeChatJob, "state", "fence", frozenset({J.QUEUED}), moves=(
    _m(J.QUEUED, "draft", J.DRAFTING, Who.SYSTEM),
    _m(J.QUEUED, "cancel", J.CANCELLED, Who.SYSTEM),   # no article left to publish
    _m(J.DRAFTING, "drafted", J.DRAFTED, Who.SYSTEM),
    _m(J.DRAFTING, "draft_lost", J.DRAFT_UNKNOWN, Who.SYSTEM),
    _m(J.DRAFT_UNKNOWN, "draft_found", J.DRAFTED, Who.SYSTEM),
    _m((J.DRAFTING, J.DRAFT_UNKNOWN), "redraft", J.QUEUED, Who.SYSTEM),
    _m(J.DRAFTED, "await_manual", J.AWAITING_MANUAL, Who.SYSTEM),
    _m(J.DRAFTED, "submit", J.SUBMITTING, Who.SYSTEM),
    _m((J.SUBMITTING, J.SUBMIT_UNKNOWN), "submitted", J.SUBMITTED, Who.SYSTEM),
    _m(J.SUBMITTING, "submit_lost", J.SUBMIT_UNKNOWN, Who.SYSTEM),
    _m((J.SUBMITTING, J.SUBMIT_UNKNOWN), "resubmit", J.DRAFTED, Who.SYSTEM),
    _m((J.SUBMITTING, J.SUBMIT_UNKNOWN, J.SUBMITTED), "published", J.PUBLISHED, Who.SYSTEM),
    _m(J.AWAITING_MANUAL, "sent_unconfirmed", J.SENT_UNCONFIRMED, Who.SYSTEM),
    _m(JOB_WAITING_FOR_PERSON, "confirm", J.PUBLISHED, Who.EDITOR),
    _m(frozenset(JOB_OPEN - {J.DEFERRED}), "defer", J.DEFERRED, Who.SYSTEM),
    _m(JOB_OPEN, "fail", J.FAILED, Who.SYSTEM),
    _m(frozenset(JOB_OPEN - {J.NEEDS_HUMAN}), "needs_human", J.NEEDS_HUMAN, Who.SYSTEM),
    _m((J.DEFERRED, J.SENT_UNCONFIRMED, J.NEEDS_HUMAN), "release", J.CANCELLED, Who.EDITOR),
    _m(JOB_WITHDRAWABLE, "restart", J.QUEUED, Who.EDITOR),  # a story was withdrawn
    _m(frozenset(JOB_OPEN | {J.PUBLISHED}), "wait", None, Who.SYSTEM),  # retry time, polls
))

OB = OutboxState
OUTBOX = Machine("outbox", OutboxMessage, "state", "version", frozenset({OB.PENDING}), moves=(
    _m(OB.PENDING, "claim", OB.SENDING, Who.SYSTEM),
    _m(OB.SENDING, "sent", OB.SENT, Who.SYSTEM),
    _m(OB.SENDING, "retry", OB.PENDING, Who.SYSTEM),
    _m(OB.SENDING, "give_up", OB.FAILED, Who.SYSTEM),
    _m(OB.SENDING, "stale", OB.PENDING, Who.SYSTEM),     # its sender died mid-send
), touch=None)

class FindingState(StrEnum):
    OPEN = "open"
    APPLIED = "applied"        # its suggestion was written into the article (an edit)
    DISMISSED = "dismissed"    # set aside with a reason
    CONFIRMED = "confirmed"    # the final signer confirmed a privacy or banned-word finding


F = FindingState
FINDING = Machine("finding", Finding, "state", "version", frozenset({F.OPEN}), moves=(
    _m(F.OPEN, "apply", F.APPLIED, Who.EDITOR),
    _m(F.OPEN, "dismiss", F.DISMISSED, Who.EDITOR),
    _m(F.OPEN, "confirm", F.CONFIRMED, Who.SIGNER),
))

MACHINES: tuple[Machine, ...] = (DRAFT, PUSH, PUBLICATION, WECHAT_JOB, OUTBOX, FINDING)

# What the states mean, asked by everyone instead of keeping lists of their own (the
# push's, PUSH_TAKEN and PUSH_OUT, are declared with its states in ``domain``, where the
# lean reads of the bulletin and the planner ask them without loading the tables).
DRAFT_EDITABLE = frozenset(DRAFT.sources("edit"))
DRAFT_OPEN = frozenset({D.DRAFTED, D.CHANGES_REQUESTED, D.APPROVED, D.PUBLISHING, D.FAILED})
DRAFT_IN_REVIEW = frozenset({D.DRAFTED})
PUBLICATION_LIVE = frozenset({PUB.QUEUED, PUB.PUBLISHED})


# ----------------------------------------------------------------------- moving

_moving: contextvars.ContextVar[bool] = contextvars.ContextVar("lifecycle_moving",
                                                              default=False)


@dataclass(frozen=True)
class Moved:
    machine: str
    row_id: int
    action: str
    from_state: str
    to_state: str
    version: int


def refusal(machine: Machine, row_id: int, state: str, action: str) -> TransitionError:
    """Why ``action`` is not possible in ``state``, as a coded error."""
    allowed = sorted(machine.sources(action))
    if machine is DRAFT:
        return TransitionError.coded("draft.illegal_move", id=row_id, state=state,
                                     action=action, allowed=allowed)
    return TransitionError.coded("state.illegal_move", machine=machine.name, id=row_id,
                                 state=state, action=action, allowed=allowed)


ACTION_WORDS = {"approve": "approved", "sign": "signed", "reject": "rejected",
                "request_changes": "sent back for changes", "resubmit": "resubmitted",
                "reopen": "reopened", "edit": "edited", "edit_reset": "edited",
                "cover": "given a new cover", "claim": "claimed by a push",
                "publish": "published", "hand_back": "handed back",
                "fail": "marked failed", "take_out": "taken out of a push",
                "withdraw": "withdrawn"}

DRAFT_LABELS: dict[str, str] = {
    D.DRAFTED: "待审核", D.CHANGES_REQUESTED: "退回修改", D.APPROVED: "已通过，待推送",
    D.PUBLISHING: "推送中", D.PUBLISHED: "已发布", D.REJECTED: "未采用", D.FAILED: "发布失败",
}

ACTION_LABELS: dict[str, str] = {
    "submitted": "提交", "sign": "签审", "approve": "通过", "reject": "不予采用",
    "request_changes": "退回修改", "resubmit": "修改后重新提交", "reopen": "重新打开",
    "edit": "编辑正文", "edit_reset": "编辑正文（重新审核）", "cover": "更换封面",
    "published": "发布", "publish": "发布", "claim": "进入推送", "hand_back": "转入下次推送",
    "fail": "发布失败", "take_out": "移出推送", "withdraw": "撤回",
}


def move(session: Session, machine: Machine, row: Any, action: str, *, actor: str,
         now: datetime, note: str = "", remote: str = "", who: Who | None = None,
         values: Mapping[str, Any] | None = None) -> Moved:
    """Perform one move of ``row`` (an ORM object read in this session or another).

    The update is conditional on the state and version the caller saw; the row object
    is brought up to date afterwards without marking it dirty.

    Raises:
        TransitionError: the move is not in the table for the row's state, ``who`` may
            not perform it, or someone else moved the row first (``lost_race``).
    """
    state = str(getattr(row, machine.column))
    row_id = int(row.id)
    found = machine.find(state, action)
    if found is None or (who is not None and not _may(who, found.who)):
        raise refusal(machine, row_id, state, action)
    target = found.target if found.target is not None else state
    version = int(getattr(row, machine.version))
    changes = dict(values or {})
    changes[machine.column] = target
    changes[machine.version] = version + 1
    if machine.touch:
        changes.setdefault(machine.touch, now)
    table: Any = machine.model
    statement = (sa.update(table)
                 .where(table.id == row_id,
                        getattr(table, machine.column) == state,
                        getattr(table, machine.version) == version)
                 .values(**changes)
                 .execution_options(synchronize_session=False))
    rowcount = _update(session, statement)
    if rowcount != 1:
        raise _lost(machine, row_id)
    for key, value in changes.items():
        attributes.set_committed_value(row, key, value)
    _history(session, machine, [row_id], action, state, target, actor, now, note, remote)
    return Moved(machine.name, row_id, action, state, target, version + 1)


def _update(session: Session, statement: Any) -> int:
    """Run a state UPDATE as a move (the engine guard lets it through); rows changed."""
    token = _moving.set(True)
    try:
        return int(session.execute(statement).rowcount)  # type: ignore[attr-defined]
    finally:
        _moving.reset(token)


def _may(who: Who, needed: Who) -> bool:
    # A signer is an editor too, and an editor may act for a unit (a resubmission by hand).
    return who is needed or (needed is Who.EDITOR and who is Who.SIGNER) or (
        needed is Who.REPORTER and who in (Who.EDITOR, Who.SIGNER))


def try_move(session: Session, machine: Machine, row: Any, action: str, **kw: Any) -> bool:
    """``move``, but a lost race answers False (for system moves racing each other)."""
    try:
        move(session, machine, row, action, **kw)
    except TransitionError as exc:
        if exc.lost_race:
            return False
        raise
    return True


def move_all(session: Session, machine: Machine, ids: Collection[int], action: str, *,
             actor: str, now: datetime, note: str = "",
             notes: Mapping[int, str] | None = None,
             values: Mapping[str, Any] | None = None,
             where: Any = None) -> list[int]:
    """Move a set of rows in one statement (a push claiming its stories, a hand-back).

    Only rows in a source state of ``action`` move; returns the ids that moved. The
    history lines go in as one batch. Rows must share the source state for the history
    to be exact, so callers pass rows they selected by state.
    """
    if not ids:
        return []
    sources = machine.sources(action)
    targets = {machine.find(s, action).target for s in sources}  # type: ignore[union-attr]
    if len(targets) != 1 or None in targets:
        raise ValueError(f"{machine.name}.{action} is not a set move")
    target = next(iter(targets))
    assert target is not None
    table: Any = machine.model
    column = getattr(table, machine.column)
    conditions = [table.id.in_(list(ids)), column.in_(sources)]
    if where is not None:
        conditions.append(where)
    # Lock the rows first (PostgreSQL; SQLite's BEGIN IMMEDIATE serialises writers anyway)
    # so the history names the state each row really left.
    rows = session.execute(sa.select(table.id, column).where(*conditions)
                           .with_for_update()).all()
    if not rows:
        return []
    changes: dict[str, Any] = dict(values or {})
    changes[machine.column] = target
    changes[machine.version] = getattr(table, machine.version) + 1
    if machine.touch:
        changes.setdefault(machine.touch, now)
    moved_ids = [int(r[0]) for r in rows]
    statement = (sa.update(table)
                 .where(table.id.in_(moved_ids), *conditions[1:])
                 .values(**changes).execution_options(synchronize_session=False))
    rowcount = _update(session, statement)
    if rowcount != len(moved_ids):
        raise _lost(machine, moved_ids[0])
    by_state: dict[str, list[int]] = {}
    for row_id, state in rows:
        by_state.setdefault(str(state), []).append(int(row_id))
    for state, group in by_state.items():
        _history(session, machine, group, action, state, target, actor, now, note, "",
                 notes=notes)
    return moved_ids


def _lost(machine: Machine, row_id: int) -> TransitionError:
    if machine is DRAFT:
        error = TransitionError.coded("draft.changed", id=row_id)
    else:
        error = TransitionError.coded("state.changed", machine=machine.name, id=row_id)
    error.lost_race = True
    return error


def _history(session: Session, machine: Machine, ids: list[int], action: str, source: str,
             target: str, actor: str, now: datetime, note: str, remote: str,
             notes: Mapping[int, str] | None = None) -> None:
    # One batched INSERT: the history of a set move costs one statement, not one per row.
    def text(row_id: int) -> str:
        return (notes or {}).get(row_id, note)

    if machine is DRAFT:
        session.execute(sa.insert(DraftEvent), [
            {"draft_id": i, "at": now, "actor": actor, "action": action,
             "from_status": source, "to_status": target, "note": text(i), "remote": remote}
            for i in ids])
        return
    session.execute(sa.insert(StateEvent), [
        {"machine": machine.name, "row_id": i, "at": now, "actor": actor, "action": action,
         "from_state": source, "to_state": target, "note": text(i)[:2000]} for i in ids])


def record_created(session: Session, machine: Machine, row_id: int, action: str, *,
                   state: str, actor: str, now: datetime, note: str = "",
                   remote: str = "") -> None:
    """The history line of a row created in one of its machine's initial states."""
    _history(session, machine, [row_id], action, "", state, actor, now, note, remote)


# ----------------------------------------------------------------------- the guard

_BY_TABLE = {str(m.model.__tablename__): m for m in MACHINES}
_UPDATE = re.compile(r'^\s*UPDATE\s+"?(\w+)"?\s+SET\s+(.*?)(?:\s+WHERE\s|$)',
                     re.IGNORECASE | re.DOTALL)


def state_write_outside_move(statement: str) -> str | None:
    """The machine whose state column ``statement`` sets, when it does."""
    found = _UPDATE.match(statement)
    if found is None:
        return None
    machine = _BY_TABLE.get(found[1].lower())
    if machine is None:
        return None
    assignments = re.findall(r'"?(\w+)"?\s*=', found[2])
    return machine.name if machine.column in assignments else None


def _guard(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
           executemany: bool) -> None:
    if _moving.get() or not statement.lstrip()[:6].upper() == "UPDATE":
        return
    name = state_write_outside_move(statement)
    if name is not None:
        raise RuntimeError(f"the {name} state column was written outside lifecycle.move: "
                           f"{statement[:200]}")


def _check_new_rows(session: Session, flush_context: Any, instances: Any) -> None:
    for obj in session.new:
        for machine in MACHINES:
            if isinstance(obj, machine.model):
                state = getattr(obj, machine.column)
                if state is not None and str(state) not in machine.initial:
                    raise RuntimeError(f"a {machine.name} row may not be created in state "
                                       f"{state!r}; it starts in one of "
                                       f"{sorted(machine.initial)}")


sa.event.listen(Engine, "before_cursor_execute", _guard)
sa.event.listen(Session, "before_flush", _check_new_rows)
