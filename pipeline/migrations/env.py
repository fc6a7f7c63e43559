"""Alembic environment: runs on the connection handed over by pipeline.store.migrate."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from pipeline import models  # registers the tables on SQLModel.metadata

models.live_draft_index()  # attached here only (see its docstring)

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through pipeline.store.migrate()")
context.configure(connection=connection, target_metadata=SQLModel.metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
