"""The store: engine and sessions for SQLite (default) or PostgreSQL, and migrations.

SQLite runs in WAL mode with ``synchronous=FULL`` (a committed publishing
intent must survive power loss), a busy timeout, foreign keys on, and every
transaction opened with ``BEGIN IMMEDIATE`` so a writer waits for the lock
instead of failing with SQLITE_BUSY half-way. The schema is managed by Alembic
(``pipeline/migrations``) from the first table on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlmodel import Session

from . import lifecycle  # noqa: F401  (installs the guard: states change only by a move)
from .config.settings import DatabaseSettings
from .errors import StoreError

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"
# The newest revision; a test checks it against Alembic's own idea of the head, so a
# current database is recognised with one query instead of loading Alembic.
HEAD = "0011"


def normalise_url(url: str) -> str:
    """Use the psycopg 3 driver for plain ``postgresql://`` URLs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def create_db_engine(url: str, pool: DatabaseSettings | None = None) -> Engine:
    """Create an engine with the project's connection settings applied.

    On PostgreSQL the pool is sized by ``[database]``; a connection the server refuses
    because it has no slot left ("too many clients") is tried again until
    ``pool_timeout``, like a wait for a pooled connection, and then fails.
    """
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 15})
        sa.event.listen(engine, "connect", _sqlite_on_connect)
        sa.event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    pool = pool or DatabaseSettings()
    engine = sa.create_engine(url, pool_pre_ping=True, pool_size=pool.pool_size,
                              max_overflow=pool.max_overflow, pool_timeout=pool.pool_timeout)
    sa.event.listen(engine, "do_connect", _patient_connect(pool.pool_timeout))
    return engine


def server_full(exc: BaseException) -> bool:
    """Whether a connection error says the server has no connection slot left."""
    text = str(getattr(exc, "orig", exc)).lower()
    return any(words in text for words in (
        "too many clients", "too many connections", "remaining connection slots",
        "connection limit exceeded", "no more connections allowed"))


def _patient_connect(timeout: float) -> Callable[..., Any]:
    def connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        deadline = time.monotonic() + timeout
        pause = 0.05
        while True:
            try:
                return dialect.connect(*cargs, **cparams)
            except Exception as exc:
                if not server_full(exc) or time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 1.0)
    return connect


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


# The advisory lock id that serialises migrations on PostgreSQL ("MIGR").
MIGRATE_LOCK_KEY = 0x4D49_4752


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (a no-op when it is current).

    Any number of processes may call this at once on a fresh database: the migration
    runs under a lock (a transaction-scoped advisory lock on PostgreSQL, the write lock
    of ``BEGIN IMMEDIATE`` on SQLite), and whoever gets the lock second finds the schema
    current and does nothing.

    Raises:
        StoreError: when the database cannot be opened or migrated.
    """
    try:
        if _current_revision(engine) == HEAD:
            return
        from alembic import command

        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"),
                                   {"k": MIGRATE_LOCK_KEY})
            # (SQLite: BEGIN IMMEDIATE has already taken the database's write lock.)
            if _revision_on(connection) == HEAD:
                return  # another process migrated while we waited for the lock
            log.info("migrating database to %s", HEAD)
            command.upgrade(_alembic_config(connection), "head")
    except OperationalError as exc:
        detail = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        if _read_only(detail):
            raise StoreError.coded("store.read_only", database=engine.url.render_as_string(
                hide_password=True)) from exc
        raise StoreError.coded("store.unavailable", detail=detail[:200]) from exc


def _current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return _revision_on(connection)


def _revision_on(connection: sa.Connection) -> str | None:
    if not sa.inspect(connection).has_table("alembic_version"):
        return None
    found = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    return str(found) if found is not None else None


class Store:
    """An engine plus a session factory; the one way the stages reach the database."""

    def __init__(self, url: str, pool: DatabaseSettings | None = None) -> None:
        self.url = normalise_url(url)
        self.engine = create_db_engine(self.url, pool)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error.

        Raises:
            StoreError: ``store.unavailable`` or ``store.read_only`` when the database
                is lost or cannot be written (the transaction rolled back whole).
        """
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                try:
                    yield session
                    session.commit()
                except BaseException:
                    session.rollback()
                    raise
        except DBAPIError as exc:
            if not _outage(exc):
                raise
            raise self.outage(exc) from exc

    def outage(self, exc: DBAPIError) -> StoreError:
        """The database's failure as the vocabulary's error."""
        detail = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        if _read_only(detail):
            where = self.engine.url.render_as_string(hide_password=True)
            return StoreError.coded("store.read_only", database=where)
        return StoreError.coded("store.unavailable", detail=detail[:200])

    def close(self) -> None:
        self.engine.dispose()


def _read_only(detail: str) -> bool:
    text = detail.lower()
    return "readonly" in text or "read-only" in text or "read only" in text


def _outage(exc: DBAPIError) -> bool:
    """A lost, unreachable or read-only database (not a bug in a statement)."""
    if isinstance(exc, OperationalError | InterfaceError) or exc.connection_invalidated:
        return True
    return _read_only(str(exc.orig))


def open_store(url: str, *, upgrade: bool = True, pool: DatabaseSettings | None = None
               ) -> Store:
    """Open the database at ``url`` and migrate it to the newest schema.

    Raises:
        StoreError: when the database cannot be opened or migrated.
    """
    if url.startswith("sqlite:///") and "?" not in url:
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    store = Store(url, pool)
    if upgrade:
        migrate(store.engine)
    return store
