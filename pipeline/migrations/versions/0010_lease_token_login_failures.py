"""several processes: the scheduler lease's fencing token, login failures in the database

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import pipeline.models

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('schedulerlease') as batch:
        batch.add_column(sa.Column('token', sa.Integer(), nullable=False, server_default='0'))
    op.create_table(
        'loginfailure',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column('at', pipeline.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_loginfailure_key'), 'loginfailure', ['key'], unique=False)
    op.create_index(op.f('ix_loginfailure_at'), 'loginfailure', ['at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_loginfailure_at'), table_name='loginfailure')
    op.drop_index(op.f('ix_loginfailure_key'), table_name='loginfailure')
    op.drop_table('loginfailure')
    with op.batch_alter_table('schedulerlease') as batch:
        batch.drop_column('token')
