"""ci_runs: index (service, started_at) in place of (service)

Jenkins asks at every sync for the newest stored build of each job, and GitHub for the runs
stored since a time; with only `service` indexed both read every run of the service
(≈ 55 ms a job at 100,000 builds, on SQLite and PostgreSQL alike; 0.1–0.5 ms with this
index). The pair serves lookups by service alone as well, so the old index goes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ci_runs", schema=None) as batch_op:
        batch_op.create_index("ix_ci_runs_service_started_at", ["service", "started_at"])
        batch_op.drop_index("ix_ci_runs_service")


def downgrade() -> None:
    with op.batch_alter_table("ci_runs", schema=None) as batch_op:
        batch_op.create_index("ix_ci_runs_service", ["service"], unique=False)
        batch_op.drop_index("ix_ci_runs_service_started_at")
