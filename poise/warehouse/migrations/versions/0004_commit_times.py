"""changes: committer_at and parents (Local Git keeps a commit's committer time and parents)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import poise.warehouse.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UTC_DATETIME = poise.warehouse.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("committer_at", UTC_DATETIME, nullable=True))
        batch_op.add_column(sa.Column("parents", sa.Text(), nullable=True))
    # Commits stored before this revision lack both: forgetting the Local Git bookmarks
    # makes the next sync of each repository a full read, which fills them in (an upsert:
    # no row is duplicated, and a full read costs seconds even for a long history).
    op.execute("UPDATE sync_state SET bookmark = NULL WHERE source = 'git' AND stream = 'history'")


def downgrade() -> None:
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.drop_column("parents")
        batch_op.drop_column("committer_at")
