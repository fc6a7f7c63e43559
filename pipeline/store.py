"""The store: engine and sessions for SQLite (default) or PostgreSQL, and migrations.

SQLite runs in WAL mode with ``synchronous=FULL`` (a committed publishing
intent must survive power loss), a busy timeout, foreign keys on, and every
transaction opened with ``BEGIN IMMEDIATE`` so a writer waits for the lock
instead of failing with SQLITE_BUSY half-way. The schema is managed by Alembic
(``pipeline/migrations``) from the first table on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from . import lifecycle  # noqa: F401  (installs the guard: states change only by a move)
from .errors import StoreError

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"
# The newest revision; a test checks it against Alembic's own idea of the head, so a
# current database is recognised with one query instead of loading Alembic.
HEAD = "0008"


def normalise_url(url: str) -> str:
    """Use the psycopg 3 driver for plain ``postgresql://`` URLs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def create_db_engine(url: str) -> Engine:
    """Create an engine with the project's connection settings applied."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 15})
        sa.event.listen(engine, "connect", _sqlite_on_connect)
        sa.event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let us issue BEGIN ourselves (the driver would delay it until the first write).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=15000",
                   "foreign_keys=ON"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_on_begin(connection: sa.Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _alembic_config(connection: sa.Connection) -> Any:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (a no-op when it is current).

    Raises:
        StoreError: when the database cannot be opened or migrated.
    """
    try:
        if _current_revision(engine) == HEAD:
            return
        from alembic import command

        with engine.begin() as connection:
            log.info("migrating database to %s", HEAD)
            command.upgrade(_alembic_config(connection), "head")
    except OperationalError as exc:
        raise StoreError(f"The database {engine.url.render_as_string(hide_password=True)} "
                         f"cannot be opened or migrated: {exc.orig}") from exc


def _current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


class Store:
    """An engine plus a session factory; the one way the stages reach the database."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.engine = create_db_engine(self.url)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error."""
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def close(self) -> None:
        self.engine.dispose()


def open_store(url: str, *, upgrade: bool = True) -> Store:
    """Open the database at ``url`` and migrate it to the newest schema.

    Raises:
        StoreError: when the database cannot be opened or migrated.
    """
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    store = Store(url)
    if upgrade:
        migrate(store.engine)
    return store
