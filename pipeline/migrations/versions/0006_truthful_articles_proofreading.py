"""truthful articles and proofreading: participants as written, timed, notes, findings

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import pipeline.models


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('submission', schema=None) as batch_op:
        batch_op.add_column(sa.Column('participants_text', sqlmodel.sql.sqltypes.AutoString(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('participants_unit', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('timed', sa.Boolean(), nullable=False, server_default=sa.true()))
        batch_op.add_column(sa.Column('notes', sa.Text(), nullable=False, server_default=''))
    # Existing reports: their count was the text they gave.
    op.execute("UPDATE submission SET participants_text = CAST(participants AS VARCHAR), "
               "participants_unit = '人' WHERE participants IS NOT NULL")
    with op.batch_alter_table('draft', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notes', sa.Text(), nullable=False, server_default='[]'))
    op.create_table('finding',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('draft_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('rule', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('text', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('offset_start', sa.Integer(), nullable=True),
    sa.Column('offset_end', sa.Integer(), nullable=True),
    sa.Column('suggestion', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', pipeline.models.UTCDateTime(), nullable=False),
    sa.Column('resolved_at', pipeline.models.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['draft_id'], ['draft.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('finding', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_finding_draft_id'), ['draft_id'], unique=False)
    op.create_table('proofreadrun',
    sa.Column('draft_id', sa.Integer(), nullable=False),
    sa.Column('at', pipeline.models.UTCDateTime(), nullable=False),
    sa.Column('draft_version', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['draft_id'], ['draft.id'], ),
    sa.PrimaryKeyConstraint('draft_id')
    )


def downgrade() -> None:
    op.drop_table('proofreadrun')
    with op.batch_alter_table('finding', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_finding_draft_id'))
    op.drop_table('finding')
    with op.batch_alter_table('draft', schema=None) as batch_op:
        batch_op.drop_column('notes')
    with op.batch_alter_table('submission', schema=None) as batch_op:
        batch_op.drop_column('notes')
        batch_op.drop_column('timed')
        batch_op.drop_column('participants_unit')
        batch_op.drop_column('participants_text')
