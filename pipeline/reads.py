"""The queue's and the deadline sweep's reads: their SQL in one place, and what is built
from the rows, shared by the normal path and the lean start of ``pipeline queue`` and
``pipeline check``.

Both run these very statements through a ``Reader``: the normal path through its
SQLAlchemy session (``SessionReader``, inside the session's transaction), the lean
start through the DB-API alone (``lean.py``). So the rows, and the dicts and flags built
from them, cannot differ between the two (tests/test_lean.py runs both on one database).

This module loads no database library: importing SQLAlchemy and SQLModel and building
our tables is most of a short command's time as a whole process (issue 13).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from .config import Settings
from .deadlines import WAITING, deadline_state, due_soon_limit, hours_left
from .domain import DraftStatus
from .messages import Coded
from .stages import Holders, UserRow, holders_of, open_stage, stage_indexes_of

if TYPE_CHECKING:
    from sqlmodel import Session


class Reader(Protocol):
    """Runs one SELECT with ``:name`` parameters and returns its rows as tuples."""

    @property
    def dialect(self) -> str: ...  # "sqlite" or "postgresql"

    def rows(self, sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]: ...


class SessionReader:
    """The statements through a session, in its transaction (the normal path)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect.name

    def rows(self, sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        from sqlalchemy import text

        self.session.flush()  # what the ORM's autoflush does before a query
        return [tuple(r) for r in self.session.execute(text(sql), dict(params))]


# --- values as the columns hold them -------------------------------------------------

def stored_time(dialect: str, moment: datetime) -> Any:
    """A time as ``models.UTCDateTime`` stores it: naive UTC; on SQLite, SQLAlchemy's
    text form (so comparisons with the column are comparisons of equal formats)."""
    naive = moment.astimezone(UTC).replace(tzinfo=None)
    return naive.strftime("%Y-%m-%d %H:%M:%S.%f") if dialect == "sqlite" else naive


def time_operand(column: str) -> str:
    """A time column as an operand compared with a bound time. SQLite gives DATETIME
    columns NUMERIC affinity, so it would try to read the bound text as a number on every
    comparison of every row (a tenth of the bulletin's instructions over a campaign
    month); ``COALESCE(x, NULL)`` is the same value without affinity, on both databases."""
    return f"COALESCE({column}, NULL)"


def stored_date(dialect: str, day: date) -> Any:
    """A date as SQLAlchemy stores it: ISO text on SQLite, a date on PostgreSQL."""
    return day.isoformat() if dialect == "sqlite" else day


def local_day(value: Any) -> date:
    """A stored date back as a date (SQLite gives text)."""
    return date.fromisoformat(value) if isinstance(value, str) else value


def utc(value: Any) -> datetime:
    """A stored time back as an aware UTC datetime (SQLite gives text, PostgreSQL naive)."""
    if isinstance(value, str):  # parsed with its zone: 4x faster than .replace() after
        return datetime.fromisoformat(value + "+00:00")
    return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]


def _in(name: str, values: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """``(:name0, :name1, …)`` and its parameters; ``(NULL)`` (matches nothing) when empty."""
    # Plain str: psycopg would write an Enum by its name, not its value.
    params = {f"{name}{i}": str(v) if isinstance(v, str) else v for i, v in enumerate(values)}
    return "(" + (", ".join(f":{k}" for k in params) or "NULL") + ")", params


# --- rows ----------------------------------------------------------------------------

class DraftRow(NamedTuple):
    """The columns of a draft that the queue and the sweep read."""

    id: int
    title: str
    unit_id: int
    activity_type: str
    status: str
    deadline: datetime
    late: bool
    problems: str
    review_stage: int


class UnitRow(NamedTuple):
    id: int
    name: str
    level: str
    parent_id: int | None
    email: str | None


class DraftLike(Protocol):
    """What ``summary`` reads of a draft: a ``DraftRow`` or a ``models.Draft``."""

    @property
    def id(self) -> int | None: ...
    @property
    def title(self) -> str: ...
    @property
    def activity_type(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def deadline(self) -> datetime: ...
    @property
    def late(self) -> bool: ...
    @property
    def problems(self) -> str: ...
    @property
    def review_stage(self) -> int: ...


class UnitLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def level(self) -> str: ...


_PAIRS = ("SELECT d.id, d.title, d.unit_id, d.activity_type, d.status, d.deadline, d.late, "
          "d.problems, d.review_stage, u.id, u.name, u.level, u.parent_id, u.email "
          "FROM draft d JOIN unit u ON u.id = d.unit_id")
UNITS = "SELECT id, name, level, parent_id, email FROM unit ORDER BY id"
ACTIVE_USERS = 'SELECT name, stages, email FROM "user" WHERE active = :yes ORDER BY id'


def _pair(row: Sequence[Any]) -> tuple[DraftRow, UnitRow]:
    draft = DraftRow(row[0], row[1], row[2], row[3], str(row[4]), utc(row[5]), bool(row[6]),
                     row[7], int(row[8]))
    return draft, UnitRow(*row[9:14])


def units(reader: Reader) -> list[UnitRow]:
    return [UnitRow(*r) for r in reader.rows(UNITS, {})]


def active_users(reader: Reader) -> list[UserRow]:
    """The active web users, in the order they were added."""
    return [UserRow(*r) for r in reader.rows(ACTIVE_USERS, {"yes": True})]


# --- the queue -----------------------------------------------------------------------

def iso(moment: datetime | None, settings: Settings) -> str | None:
    """ISO 8601 in the account's zone, with its offset."""
    return moment.astimezone(settings.tz).isoformat() if moment is not None else None


def summary(draft: DraftLike, unit: UnitLike, settings: Settings, now: datetime
            ) -> dict[str, Any]:
    """A draft as the queue, the CLI's ``--json`` and the web API show it."""
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


# Job states in which a push waits for a person (see pipeline.publish.wechat); what a
# person must do then is the message ``attention.<state>``.
ATTENTION = frozenset({"needs_human", "sent_unconfirmed", "awaiting_manual", "deferred"})


def queue(reader: Reader, settings: Settings, now: datetime, *, include_all: bool = False,
          limit: int = 200, signer: str | None = None, offset: int = 0
          ) -> tuple[list[dict[str, Any]], int]:
    """Drafts waiting for an editor, earliest deadline first, with every story publishing
    gave up on (``failed``, or in a push that waits for a person) marked ``attention``;
    ``include_all``: every unfinished draft; ``signer``: only the drafts waiting at a
    review stage that person may sign. At most ``limit`` rows (0: no limit) and the total
    count; ``offset`` skips the first rows (stories held in a push come on the first page)."""
    statuses = [*list(WAITING), DraftStatus.FAILED] if include_all else [
        DraftStatus.DRAFTED, DraftStatus.FAILED]
    where, params = _in("s", statuses)
    sql = f"{_PAIRS} WHERE d.status IN {where}"
    if signer is not None:
        statuses = [DraftStatus.DRAFTED]
        stages, more = _in("r", stage_indexes_of(settings, active_users(reader), signer))
        sql += f" AND d.status = :drafted AND d.review_stage IN {stages}"
        params |= {"drafted": str(DraftStatus.DRAFTED), **more}
    sql += " ORDER BY d.deadline, d.id"
    if limit:
        sql += " LIMIT :limit"
        params["limit"] = limit
    if offset:  # SQLite takes OFFSET only after a LIMIT (-1: none)
        sql += (" LIMIT -1" if not limit and reader.dialect == "sqlite" else "") + " OFFSET :offset"
        params["offset"] = offset
    found = [_pair(r) for r in reader.rows(sql, params)]
    if not include_all and signer is None and not offset:  # held in a push for a person
        found = sorted(found + _held(reader), key=lambda r: (r[0].deadline, r[0].id))
    rows = [summary(d, u, settings, now) for d, u in found]
    _mark_attention(reader, rows)
    total = (len(rows) if not offset and (not limit or len(rows) < limit)
             else _count(reader, statuses))
    return rows, total


def _held(reader: Reader) -> list[tuple[DraftRow, UnitRow]]:
    jobs, params = _in("j", list(ATTENTION))
    sql = (f"{_PAIRS} JOIN publication p ON p.draft_id = d.id "
           f"JOIN wechatjob j ON j.push_id = p.push_id "
           f"WHERE d.status = :publishing AND p.state = 'queued' AND j.state IN {jobs}")
    return [_pair(r) for r in reader.rows(sql, {"publishing": str(DraftStatus.PUBLISHING),
                                                 **params})]


def _mark_attention(reader: Reader, rows: list[dict[str, Any]]) -> None:
    """Say what a person must do for each story publishing could not finish."""
    ids = [r["id"] for r in rows if r["status"] in (DraftStatus.FAILED,
                                                    DraftStatus.PUBLISHING)]
    if not ids:
        return
    where, params = _in("i", ids)
    found = reader.rows(
        "SELECT p.draft_id, p.state, p.error, push.local_date, j.state FROM publication p "
        "JOIN push ON push.id = p.push_id LEFT OUTER JOIN wechatjob j ON j.push_id = push.id "
        f"WHERE p.draft_id IN {where} ORDER BY p.id", params)
    notes = {}
    for draft_id, state, error, day, job_state in found:
        if state == "failed":
            notes[draft_id] = Coded("attention.failed", error=error)
        elif state == "queued" and job_state in ATTENTION:
            notes[draft_id] = Coded(f"attention.{job_state}", day=str(day))
    for row in rows:
        if row["id"] in notes:
            row["attention"] = notes[row["id"]]


def _count(reader: Reader, statuses: Sequence[str]) -> int:
    where, params = _in("s", statuses)
    return int(reader.rows(f"SELECT COUNT(*) FROM draft WHERE status IN {where}", params)[0][0])


# --- the deadline sweep ----------------------------------------------------------------

class Wanted(NamedTuple):
    """An alert the sweep wants recorded, and what it is about."""

    key: str
    kind: str
    draft: DraftRow
    unit: UnitRow
    recipients: tuple[str, ...]
    held: Holders | None        # the review stage the draft waits at, and its holders


@dataclass(frozen=True)
class Flagged:
    id: int
    title: str
    unit: str
    status: str
    deadline: datetime
    hours_left: float
    notify: tuple[str, ...]     # addresses recorded for the alert (may be empty)
    new: bool                   # recorded by this sweep (False: already recorded before)


@dataclass
class SweepResult:
    due_soon: list[Flagged] = field(default_factory=list)
    overdue: list[Flagged] = field(default_factory=list)
    escalated: list[Flagged] = field(default_factory=list)


def sweep_reads(reader: Reader, settings: Settings, now: datetime
                ) -> tuple[list[Wanted], set[str]]:
    """The alerts the sweep wants, and the keys of those recorded before.

    A constant number of statements whatever the backlog: the waiting drafts, the units,
    the keys recorded before (read through the drafts' query: no id list to bind), and
    the active users when some draft is flagged.
    """
    limit = stored_time(reader.dialect, due_soon_limit(now, settings))
    waiting, params = _in("s", list(WAITING))
    params["limit"] = limit
    rows = [_pair(r) for r in reader.rows(
        f"{_PAIRS} WHERE d.status IN {waiting} AND d.deadline < :limit "
        "ORDER BY d.deadline, d.id", params)]
    found = {u.id: u for u in units(reader)}
    known = {k for (k,) in reader.rows(
        "SELECT a.key FROM alert a JOIN draft d ON d.id = a.draft_id "
        f"WHERE d.status IN {waiting} AND d.deadline < :limit", params)}
    stages = holders_of(settings, active_users(reader)) if rows else []
    return _wanted(rows, found, settings.notify.editors, now, stages), known


def _wanted(rows: Sequence[tuple[DraftRow, UnitRow]], units: dict[int, UnitRow],
            editors: tuple[str, ...], now: datetime, stages: Sequence[Holders]
            ) -> list[Wanted]:
    """Due soon: the editors; overdue: the editors and the unit; a day later: its parent.
    A draft waiting at a review stage is flagged to that stage's holders too."""
    wanted: list[Wanted] = []
    for draft, unit in rows:
        held = _holders(draft, stages)
        signers = held.emails if held else ()
        if draft.deadline > now:
            wanted.append(Wanted(f"due_soon:{draft.id}", "due_soon", draft, unit,
                                 (*editors, *signers), held))
            continue
        wanted.append(Wanted(f"overdue:{draft.id}", "overdue", draft, unit,
                             (*editors, *signers, *_emails(unit)), held))
        if now - draft.deadline >= timedelta(days=1) and unit.parent_id in units:
            wanted.append(Wanted(f"overdue_escalated:{draft.id}", "overdue_escalated", draft,
                                 unit, _emails(units[unit.parent_id]), held))
    return wanted


def _emails(unit: UnitRow) -> tuple[str, ...]:
    return (unit.email,) if unit.email else ()


def _holders(draft: DraftRow, stages: Sequence[Holders]) -> Holders | None:
    """The holders of the review stage a draft waits at (None: not in review)."""
    if draft.status != DraftStatus.DRAFTED or not stages:
        return None
    return stages[min(draft.review_stage, len(stages) - 1)]


def flagged(wanted: Sequence[Wanted], new: set[str], now: datetime) -> SweepResult:
    """The sweep's answer: each wanted alert, ``new`` when its key is in ``new``."""
    result = SweepResult()
    lists = {"due_soon": result.due_soon, "overdue": result.overdue,
             "overdue_escalated": result.escalated}
    for w in wanted:
        lists[w.kind].append(Flagged(w.draft.id, w.draft.title, w.unit.name, w.draft.status,
                                     w.draft.deadline, hours_left(w.draft.deadline, now),
                                     w.recipients, new=w.key in new))
    return result


# --- what `check` would write besides the sweep ----------------------------------------

# lifecycle.OutboxState's values (lifecycle loads the tables; a test compares them).
PENDING, SENDING = "pending", "sending"


def pending_emails(reader: Reader) -> int:
    """Emails waiting in the outbox (what ``check`` reports when no SMTP host is set)."""
    return int(reader.rows("SELECT COUNT(*) FROM outboxmessage WHERE state = :state",
                           {"state": PENDING})[0][0])


def work_after_sweep(reader: Reader, settings: Settings, now: datetime) -> bool:
    """Whether ``check``'s alert step would write: an alert not emailed yet, an email left
    'sending' past its lease (to release), or one due to send when SMTP is set up."""
    if reader.rows("SELECT COUNT(*) FROM alert WHERE sent_at IS NULL", {})[0][0]:
        return True
    due = [SENDING, PENDING] if settings.smtp.host else [SENDING]
    states, params = _in("s", due)
    params["now"] = stored_time(reader.dialect, now)
    return bool(reader.rows("SELECT COUNT(*) FROM outboxmessage WHERE state IN "
                            f"{states} AND next_attempt_at <= :now", params)[0][0])
