"""guardrails: certificates (TLS expiry checks) and gate_decisions (the release gate's ledger)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import poise.warehouse.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UTC_DATETIME = poise.warehouse.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "certificates",
        sa.Column("id", sa.String(length=600), nullable=False),
        sa.Column("service", sa.String(length=200), nullable=False),
        sa.Column("host", sa.String(length=400), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("server_name", sa.String(length=400), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("issuer", sa.Text(), nullable=True),
        sa.Column("serial", sa.String(length=100), nullable=True),
        sa.Column("dns_names", sa.Text(), nullable=True),
        sa.Column("not_before", UTC_DATETIME, nullable=True),
        sa.Column("not_after", UTC_DATETIME, nullable=True),
        sa.Column("verified", sa.Boolean(), nullable=True),
        sa.Column("verify_error", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("checked_at", UTC_DATETIME, nullable=False),
        sa.Column("read_at", UTC_DATETIME, nullable=True),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("source_id", sa.String(length=400), nullable=True),
        sa.Column("raw_id", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificates")),
    )
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_certificates_service"), ["service"], unique=False)

    op.create_table(
        "gate_decisions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("decided_at", UTC_DATETIME, nullable=False),
        sa.Column("service", sa.String(length=200), nullable=False),
        sa.Column("change_type", sa.String(length=20), nullable=False),
        sa.Column("decision", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("ref", sa.String(length=400), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gate_decisions")),
    )
    with op.batch_alter_table("gate_decisions", schema=None) as batch_op:
        batch_op.create_index("ix_gate_decisions_decided_at", ["decided_at"], unique=False)
        batch_op.create_index(
            "ix_gate_decisions_service_decided_at", ["service", "decided_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("gate_decisions", schema=None) as batch_op:
        batch_op.drop_index("ix_gate_decisions_service_decided_at")
        batch_op.drop_index("ix_gate_decisions_decided_at")
    op.drop_table("gate_decisions")
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_certificates_service"))
    op.drop_table("certificates")
