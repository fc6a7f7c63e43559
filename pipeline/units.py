"""The unit tree: district; streets/towns and industry branches; communities/villages.

Units from ``config.toml`` are synchronised into the database at start; more
can be added with ``pipeline units add`` or imported from a ledger.
"""

from __future__ import annotations

import csv
import hashlib
import io
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session, col, select

from .config import EMAIL_RE, UnitSpec, parent_problem
from .domain import DraftStatus, Level, parse_level
from .domain import tree_order as tree_order  # (pure: with the domain types)
from .errors import PipelineError, SubmissionError
from .models import Draft, Unit, UnitLink

HEADERS = {"name": ("名称", "单位", "单位名称", "name"), "level": ("级别", "层级", "level"),
           "parent": ("上级", "上级单位", "parent"), "email": ("邮箱", "联系邮箱", "email")}


def _spec(unit: Unit, names: dict[int, str]) -> UnitSpec:
    parent = names.get(unit.parent_id) if unit.parent_id else None
    return UnitSpec(unit.name, Level(unit.level), parent, unit.email)


def all_units(session: Session) -> list[Unit]:
    return list(session.exec(select(Unit).order_by(Unit.id)))  # type: ignore[arg-type]


def unit_names(session: Session) -> set[str]:
    return set(session.exec(select(Unit.name)))


def sync_units(session: Session, specs: Sequence[UnitSpec], now: datetime) -> None:
    """Create or update the configured units (config wins for the units it names)."""
    existing = {u.name: u for u in all_units(session)}
    for spec in specs:
        unit = existing.get(spec.name)
        if unit is None:
            unit = Unit(name=spec.name, level=spec.level, email=spec.email, created_at=now)
            session.add(unit)
            existing[spec.name] = unit
        else:
            unit.level, unit.email = spec.level, spec.email
    session.flush()
    for spec in specs:
        parent = existing.get(spec.parent) if spec.parent else None
        existing[spec.name].parent_id = parent.id if parent else None
    session.flush()


def add_unit(session: Session, spec: UnitSpec, now: datetime) -> Unit:
    """Add one unit after checking its name, parent, level and email.

    Raises:
        PipelineError: with a sentence naming what is wrong.
    """
    units = {u.name: u for u in all_units(session)}
    names = {u.id: u.name for u in units.values() if u.id is not None}
    if spec.name in units:
        raise PipelineError.coded("unit.exists", name=spec.name)
    if not spec.name.strip():
        raise PipelineError.coded("unit.name_empty")
    parent = units.get(spec.parent) if spec.parent else None
    problem = parent_problem(spec.level, _spec(parent, names) if parent else None, spec.parent)
    if problem is not None:
        raise PipelineError.coded("unit.cannot_add", name=spec.name, problem=problem)
    if spec.email and not EMAIL_RE.match(spec.email):
        raise PipelineError.coded("unit.bad_email", name=spec.name, email=spec.email)
    unit = Unit(name=spec.name.strip(), level=spec.level, email=spec.email,
                parent_id=parent.id if parent else None, created_at=now)
    session.add(unit)
    session.flush()
    return unit


@dataclass
class ImportResult:
    added: list[str] = field(default_factory=list)
    rejected: list[SubmissionError] = field(default_factory=list)


def import_units(session: Session, path: Path, now: datetime) -> ImportResult:
    """Add the units listed in a .csv or .xlsx ledger; bad rows are reported, others kept."""
    result = ImportResult()
    for row_number, row in _read_rows(path):
        spec = _row_spec(row, path.name, row_number, result)
        if spec is None:
            continue
        try:
            with session.begin_nested():
                add_unit(session, spec, now)
            result.added.append(spec.name)
        except PipelineError as exc:
            result.rejected.append(SubmissionError.rule(exc.code, exc.params, source=path.name,
                                                        row=row_number, field="名称")
                                   if exc.code else
                                   SubmissionError(str(exc), source=path.name, row=row_number,
                                                   field="名称"))
    return result


def _row_spec(row: dict[str, str], source: str, number: int, result: ImportResult
              ) -> UnitSpec | None:
    name = row.get("name", "").strip()
    level = parse_level(row.get("level", ""))
    if not name:
        result.rejected.append(SubmissionError.rule("unit.row_name_empty", {}, source=source,
                                                    row=number, field="名称"))
        return None
    if level is None:
        result.rejected.append(SubmissionError.rule(
            "unit.level_unknown", {"value": row.get("level", "")}, source=source, row=number,
            field="级别"))
        return None
    return UnitSpec(name, level, row.get("parent", "").strip() or None,
                    row.get("email", "").strip() or None)


def _read_rows(path: Path) -> Iterable[tuple[int, dict[str, str]]]:
    if path.suffix.lower() not in (".csv", ".xlsx"):
        raise PipelineError.coded("unit.file_kind", file=path.name)
    if not path.is_file():
        raise PipelineError.coded("unit.no_file", path=str(path))
    if path.suffix.lower() == ".xlsx":
        rows = _xlsx_rows(path)
    else:
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise PipelineError.coded("unit.not_utf8", file=path.name,
                                      byte=exc.start) from exc
        rows = [list(r) for r in csv.reader(io.StringIO(text))]
    if not rows:
        raise PipelineError.coded("unit.file_empty", file=path.name)
    columns = _columns(rows[0], path.name)
    for number, values in enumerate(rows[1:], start=2):
        if any(v.strip() for v in values):
            yield number, {key: (values[i] if i < len(values) else "")
                           for key, i in columns.items()}


def _xlsx_rows(path: Path) -> list[list[str]]:
    import openpyxl  # imported here: only ledgers need it

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise PipelineError.coded("unit.bad_xlsx", file=path.name, detail=str(exc)) from exc
    sheet = book.worksheets[0]
    return [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]


def _columns(header: list[str], source: str) -> dict[str, int]:
    columns: dict[str, int] = {}
    for i, title in enumerate(header):
        for key, names in HEADERS.items():
            if title.strip().lower() in names:
                columns[key] = i
    if "name" not in columns or "level" not in columns:
        raise PipelineError.coded("unit.no_columns", file=source, found=", ".join(header))
    return columns


@dataclass
class UnitCounts:
    unit: Unit
    parent: str | None
    submitted: int
    waiting: int
    published: int
    late: int


def unit_counts(session: Session, now: datetime) -> list[UnitCounts]:
    """Every unit with its report counts, in tree order (parents before children).

    ``late`` counts stories published late and stories past their deadline that are
    not out yet: a unit whose drafts are days overdue is late even before they go out.
    """
    waiting = [DraftStatus.DRAFTED, DraftStatus.CHANGES_REQUESTED, DraftStatus.APPROVED]
    unfinished = [*waiting, DraftStatus.PUBLISHING, DraftStatus.FAILED]
    overdue = sa.and_(col(Draft.status).in_(unfinished), col(Draft.deadline) <= now)
    stats = session.execute(
        sa.select(col(Draft.unit_id), sa.func.count(),
               sa.func.sum(sa.case((col(Draft.status).in_(waiting), 1), else_=0)),
               sa.func.sum(sa.case((col(Draft.status) == DraftStatus.PUBLISHED, 1), else_=0)),
               sa.func.sum(sa.case((sa.or_(col(Draft.late), overdue), 1), else_=0)))
        .group_by(col(Draft.unit_id))).all()
    by_unit = {row[0]: row[1:] for row in stats}
    units = all_units(session)
    names = {u.id: u.name for u in units}
    result = []
    for unit in tree_order(units):
        submitted, wait, published, late = by_unit.get(unit.id, (0, 0, 0, 0))
        result.append(UnitCounts(unit, names.get(unit.parent_id) if unit.parent_id else None,
                                 int(submitted), int(wait or 0), int(published or 0),
                                 int(late or 0)))
    return result


def hash_token(token: str) -> str:
    """What the database keeps of a secret token: its sha256 (the token is shown once)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class NewLink:
    """A link just made: ``token`` exists only here, the database keeps its hash."""

    link: UnitLink
    token: str


def create_link(session: Session, unit_id: int, *, actor: str, now: datetime,
                replace: bool = False) -> NewLink:
    """A new secret submission link for a unit (``replace``: revoke the old ones first).

    Raises:
        PipelineError: there is no such unit.
    """
    if session.get(Unit, unit_id) is None:
        raise PipelineError.coded("unit.not_found", id=unit_id)
    if replace:
        revoke_links(session, unit_id, now)
    token = secrets.token_urlsafe(24)
    link = UnitLink(unit_id=unit_id, token_hash=hash_token(token), created_at=now,
                    created_by=actor)
    session.add(link)
    session.flush()
    return NewLink(link, token)


def revoke_links(session: Session, unit_id: int, now: datetime) -> int:
    """Stop every live link of a unit at once; returns how many were live."""
    result = session.execute(sa.update(UnitLink)
                             .where(col(UnitLink.unit_id) == unit_id,
                                    col(UnitLink.revoked_at).is_(None))
                             .values(revoked_at=now))
    return int(result.rowcount)  # type: ignore[attr-defined]
