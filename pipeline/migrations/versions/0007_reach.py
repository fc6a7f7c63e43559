"""reach: read figures from WeChat's analytics, account totals, media outlets

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import pipeline.models

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def _text(length: int | None = None) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    with op.batch_alter_table('wechatjob') as batch:
        batch.add_column(sa.Column('msg_data_id', _text(), nullable=True))
    op.create_table(
        'articlestat',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('draft_id', sa.Integer(), nullable=False),
        sa.Column('stat_date', sa.Date(), nullable=False),
        sa.Column('reads', sa.Integer(), nullable=False),
        sa.Column('readers', sa.Integer(), nullable=False),
        sa.Column('shares', sa.Integer(), nullable=False),
        sa.Column('favorites', sa.Integer(), nullable=False),
        sa.Column('likes', sa.Integer(), nullable=True),
        sa.Column('zaikan', sa.Integer(), nullable=True),
        sa.Column('msgid', _text(64), nullable=False),
        sa.Column('matched_by', _text(20), nullable=False),
        sa.Column('source', _text(40), nullable=False),
        sa.Column('fetched_at', pipeline.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['draft_id'], ['draft.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('draft_id', 'stat_date', name='uq_articlestat_day'))
    op.create_index('ix_articlestat_draft_id', 'articlestat', ['draft_id'])
    op.create_index('ix_articlestat_stat_date', 'articlestat', ['stat_date'])
    op.create_table(
        'accountstat',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('account', _text(100), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('followers', sa.Integer(), nullable=True),
        sa.Column('new', sa.Integer(), nullable=True),
        sa.Column('cancelled', sa.Integer(), nullable=True),
        sa.Column('fetched_at', pipeline.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('account', 'day', name='uq_accountstat_day'))
    op.create_table(
        'reachfetch',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('account', _text(100), nullable=False),
        sa.Column('kind', _text(20), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('through', sa.Date(), nullable=True),
        sa.Column('retry_at', pipeline.models.UTCDateTime(), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('note', sa.Text(), nullable=False),
        sa.Column('updated_at', pipeline.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('account', 'kind', 'day', name='uq_reachfetch'))
    op.create_table(
        'reachstate',
        sa.Column('account', _text(100), nullable=False),
        sa.Column('quota_day', sa.Date(), nullable=True),
        sa.Column('calls', sa.Integer(), nullable=False),
        sa.Column('paused_until', pipeline.models.UTCDateTime(), nullable=True),
        sa.Column('family', _text(20), nullable=False),
        sa.Column('refused', sa.Text(), nullable=False),
        sa.Column('refused_at', pipeline.models.UTCDateTime(), nullable=True),
        sa.Column('updated_at', pipeline.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('account'))
    op.create_table(
        'mediaoutlet',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', _text(200), nullable=False),
        sa.Column('outlet', _text(200), nullable=False),
        sa.Column('level', _text(20), nullable=False),
        sa.Column('created_by', _text(), nullable=False),
        sa.Column('created_at', pipeline.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name'))


def downgrade() -> None:
    for table in ('mediaoutlet', 'reachstate', 'reachfetch', 'accountstat', 'articlestat'):
        op.drop_table(table)
    with op.batch_alter_table('wechatjob') as batch:
        batch.drop_column('msg_data_id')
