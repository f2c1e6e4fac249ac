"""slos: retired_at (an SLO taken out of the config is left out of the figures, kept)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import poise.warehouse.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UTC_DATETIME = poise.warehouse.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("slos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retired_at", UTC_DATETIME, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("slos", schema=None) as batch_op:
        batch_op.drop_column("retired_at")
