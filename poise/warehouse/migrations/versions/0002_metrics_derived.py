"""metrics derived tables: change_leads and sli_daily

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import poise.warehouse.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "change_leads",
        sa.Column("change_id", sa.String(length=400), nullable=False),
        sa.Column("service", sa.String(length=200), nullable=False),
        sa.Column("committed_at", poise.warehouse.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deployment_id", sa.String(length=400), nullable=True),
        sa.Column("deployed_at", poise.warehouse.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["change_id"],
            ["changes.id"],
            name=op.f("fk_change_leads_change_id_changes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("change_id", name=op.f("pk_change_leads")),
    )
    with op.batch_alter_table("change_leads", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_change_leads_committed_at"), ["committed_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_change_leads_deployed_at"), ["deployed_at"], unique=False
        )
    op.create_table(
        "sli_daily",
        sa.Column("slo", sa.String(length=200), nullable=False),
        sa.Column("day", poise.warehouse.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("good", sa.Float(), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("first_ts", poise.warehouse.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["slo"], ["slos.name"], name=op.f("fk_sli_daily_slo_slos"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("slo", "day", name=op.f("pk_sli_daily")),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("sli_daily")
    with op.batch_alter_table("change_leads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_change_leads_deployed_at"))
        batch_op.drop_index(batch_op.f("ix_change_leads_committed_at"))
    op.drop_table("change_leads")
