"""server-side sessions, hashed reporter link tokens, the calendar feed token

Revision ID: 0009
Revises: 0007
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
import sqlmodel
from alembic import op

import pipeline.models

revision = '0009'
down_revision = '0007'
branch_labels = None
depends_on = None


def _text(length: int | None = None) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        'websession',
        sa.Column('id_hash', _text(64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('created_at', pipeline.models.UTCDateTime(), nullable=False),
        sa.Column('seen_at', pipeline.models.UTCDateTime(), nullable=False),
        sa.Column('remote', _text(100), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['user.id']),
        sa.PrimaryKeyConstraint('id_hash'),
    )
    op.create_index('ix_websession_user_id', 'websession', ['user_id'])
    op.create_table(
        'feedtoken',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token_hash', _text(64), nullable=False),
        sa.Column('created_at', pipeline.models.UTCDateTime(), nullable=False),
        sa.Column('created_by', _text(), nullable=False),
        sa.Column('revoked_at', pipeline.models.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token_hash'),
    )
    # Reporter links: keep working, but only their sha256 stays in the database.
    with op.batch_alter_table('unitlink') as batch:
        batch.add_column(sa.Column('token_hash', _text(64), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.text('SELECT id, token FROM unitlink')).all()
    for row_id, token in rows:
        bind.execute(sa.text('UPDATE unitlink SET token_hash = :h WHERE id = :i'),
                     {'h': hashlib.sha256(token.encode()).hexdigest(), 'i': row_id})
    with op.batch_alter_table('unitlink') as batch:
        batch.alter_column('token_hash', existing_type=_text(64), nullable=False)
        batch.create_unique_constraint('uq_unitlink_token_hash', ['token_hash'])
        batch.drop_column('token')


def downgrade() -> None:
    raise NotImplementedError('hashed link tokens cannot be turned back into tokens')
