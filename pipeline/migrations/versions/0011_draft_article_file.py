"""draft files: the row names its current article files (written under a new name,
switched in the edit's transaction)

Revision ID: 0011
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0011'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL: the files of a draft never edited since, article.md and article.html.
    with op.batch_alter_table('draft', schema=None) as batch_op:
        batch_op.add_column(sa.Column('article_file', sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('draft', schema=None) as batch_op:
        batch_op.drop_column('article_file')
