"""Alerts: who should be told what, recorded once per subject by a unique key.

Recording is idempotent across sweeps, restarts and processes: the unique key
makes the database refuse a second row, whoever tries.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from .models import Alert


def record_alert(session: Session, key: str, kind: str, now: datetime, *,
                 draft_id: int | None = None, recipients: Sequence[str] = (),
                 detail: str = "") -> bool:
    """Record an alert unless one with this key exists; True when it is new."""
    values = {"key": key, "kind": kind, "draft_id": draft_id, "created_at": now,
              "recipients": json.dumps(sorted(set(recipients))), "detail": detail}
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # A Core insert: the ORM's bulk path would hide whether ON CONFLICT skipped the row.
    table = cast(sa.Table, Alert.__table__)  # type: ignore[attr-defined]
    statement = (insert(table).values(**values)
                 .on_conflict_do_nothing(index_elements=["key"]).returning(table.c.id))
    return session.execute(statement).scalar() is not None


def alerts_for(session: Session, draft_id: int) -> list[Alert]:
    query = select(Alert).where(Alert.draft_id == draft_id).order_by(col(Alert.id))
    return list(session.exec(query))
