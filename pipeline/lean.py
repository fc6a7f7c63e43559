"""The lean start of ``pipeline queue``, ``check``, ``push --dry-run`` and ``bulletin``
(without ``--send``): their reads through the DB-API alone (sqlite3 or psycopg), without
SQLAlchemy, SQLModel and our table classes.

Importing those and building the tables is most of what these commands cost as whole
processes (issue 13: 0.65-0.75 s, of which the queries take 20-40 ms), and most runs of
them only read. The lean start is taken only when the normal path would do nothing but
read too: the database exists, its schema is at the newest migration, the configured
units are in it as configured (else the normal start would migrate or sync them), and
the command's own work writes nothing to the database (``check`` asks ``reads`` first;
the bulletin writes only its files). Otherwise, and on any database error, the command
runs the normal way, which migrates, syncs, writes and words every error as it always
has.

The statements are the normal path's own (``reads.py``, ``push.plan``, ``push.days``,
``notify.bulletin``), so both answer alike; ``PIPELINE_LEAN=0`` turns the lean start off
(tests compare the two).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from .config import Settings, UnitSpec
from .reads import Reader, UnitRow, units

log = logging.getLogger(__name__)
T = TypeVar("T")
VERSIONS = Path(__file__).parent / "migrations" / "versions"
# revision = '0010' / down_revision: str | None = "0009" (any template Alembic writes)
_REVISION = re.compile(r"""^(down_revision|revision)\s*(?::[^=\n]*)?=\s*['"]?(\w+)""", re.M)


class DbapiReader:
    """``reads``' statements on a DB-API connection, inside one transaction."""

    def __init__(self, connection: Any, dialect: str) -> None:
        self.connection = connection
        self.dialect = dialect

    def rows(self, sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        if self.dialect == "postgresql":  # psycopg's placeholders are %(name)s
            sql = re.sub(r":(\w+)", r"%(\1)s", sql)
        return [tuple(r) for r in self.connection.execute(sql, dict(params)).fetchall()]


def attempt(settings: Settings, work: Callable[[Reader], T | None]) -> T | None:
    """``work`` on a lean reader of the database, or None when the normal path must run:
    the lean start does not apply, or ``work`` returned None (it would have to write)."""
    if os.environ.get("PIPELINE_LEAN") == "0":
        return None
    opened = _connect(settings.database_url)
    if opened is None:
        return None
    reader, errors = opened
    try:
        if not _current(reader, settings.units):
            return None
        answer = work(reader)
        if answer is not None:
            log.debug("answered from the lean start")
        return answer
    except errors as exc:  # whatever it is, the normal path says it properly
        log.debug("lean start not taken: %s", exc)
        return None
    finally:
        reader.connection.close()


def _connect(url: str) -> tuple[DbapiReader, type[Exception]] | None:
    if url.startswith("sqlite:///") and not any(c in url for c in "?%"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.is_file():  # the normal start creates and migrates it
            return None
        import sqlite3

        # Autocommit off by hand: one deferred BEGIN, so every read sees one snapshot
        # without taking the write lock (the store's sessions begin IMMEDIATE).
        connection = sqlite3.connect(path, timeout=15, isolation_level=None)
        try:
            connection.execute("BEGIN")
        except sqlite3.Error:
            connection.close()
            return None
        return DbapiReader(connection, "sqlite"), sqlite3.Error
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg://"):
        if url.startswith(prefix):
            import psycopg

            try:
                server = psycopg.connect("postgresql://" + url[len(prefix):],
                                         connect_timeout=10)
            except psycopg.Error as exc:  # too many clients, down: the normal start copes
                log.debug("lean start not taken: %s", exc)
                return None
            return DbapiReader(server, "postgresql"), psycopg.Error
    return None


def _current(reader: Reader, specs: Sequence[UnitSpec]) -> bool:
    """The schema is at the newest migration and the configured units are as configured."""
    found = reader.rows("SELECT version_num FROM alembic_version", {})
    return [r[0] for r in found] == [migration_head()] and units_in_sync(specs, units(reader))


def migration_head() -> str | None:
    """The newest revision of ``migrations/versions`` (the one no other revision follows),
    read from the scripts as Alembic would, without loading Alembic."""
    revisions, followed = set(), set()
    for script in VERSIONS.glob("*.py"):
        text = script.read_text("utf-8")
        fields = {m[1]: m[2] for m in _REVISION.finditer(text)}
        if "revision" in fields:
            revisions.add(fields["revision"])
            followed.add(fields.get("down_revision"))
    heads = revisions - followed
    return heads.pop() if len(heads) == 1 else None


def units_in_sync(specs: Sequence[UnitSpec], found: Sequence[UnitRow]) -> bool:
    """Whether ``units.sync_units`` would leave every row as it is."""
    by_name = {u.name: u for u in found}
    for spec in specs:
        unit = by_name.get(spec.name)
        parent = by_name.get(spec.parent) if spec.parent else None
        if unit is None or (unit.level, unit.email, unit.parent_id) != (
                spec.level, spec.email, parent.id if parent else None):
            return False
    return True
