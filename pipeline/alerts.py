"""Alerts: who should be told what, recorded once per subject by a unique key.

Recording is idempotent across sweeps, restarts and processes: the unique key
makes the database refuse a second row, whoever tries.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import import_module
from typing import cast

import sqlalchemy as sa
from sqlmodel import Session, col, select

from .messages import to_column
from .models import Alert


@dataclass(frozen=True)
class NewAlert:
    """An alert to record (see ``record_alerts``)."""

    key: str
    kind: str
    draft_id: int | None = None
    recipients: Sequence[str] = ()
    detail: str = ""


def record_alert(session: Session, key: str, kind: str, now: datetime, *,
                 draft_id: int | None = None, recipients: Sequence[str] = (),
                 detail: str = "") -> bool:
    """Record an alert unless one with this key exists; True when it is new."""
    new = NewAlert(key, kind, draft_id, recipients, detail)
    return bool(record_alerts(session, [new], now))


def record_alerts(session: Session, alerts: Sequence[NewAlert], now: datetime) -> set[str]:
    """Record every alert whose key does not exist yet; returns the keys recorded now.

    One INSERT … ON CONFLICT DO NOTHING RETURNING key, which SQLAlchemy sends as
    multi-row VALUES pages ("insertmanyvalues"), so a sweep over thousands of drafts
    costs a handful of statements, and the unique key still refuses a second row
    whoever tries (another process, a restart).
    """
    if not alerts:
        return set()
    dialect = session.get_bind().dialect.name
    # Imported here: loading the PostgreSQL dialect (and asyncio) at import cost every
    # command on SQLite a tenth of a second (issue 13).
    insert = import_module("sqlalchemy.dialects." + (
        "postgresql" if dialect == "postgresql" else "sqlite")).insert
    # A Core insert: the ORM's bulk path would hide which rows ON CONFLICT skipped.
    table = cast(sa.Table, Alert.__table__)  # type: ignore[attr-defined]
    statement = (insert(table).on_conflict_do_nothing(index_elements=["key"])
                 .returning(table.c.key))
    rows = [{"key": a.key, "kind": a.kind, "draft_id": a.draft_id, "created_at": now,
             "recipients": json.dumps(sorted(set(a.recipients))), "detail": to_column(a.detail)}
            for a in sorted(alerts, key=lambda a: a.key)]
    # In key order, so two processes recording the same alerts on PostgreSQL wait for each
    # other's rows in the same order (never a deadlock) and one of them skips them all.
    return set(session.execute(statement, rows).scalars())


def alerts_for(session: Session, draft_id: int) -> list[Alert]:
    query = select(Alert).where(Alert.draft_id == draft_id).order_by(col(Alert.id))
    return list(session.exec(query))
