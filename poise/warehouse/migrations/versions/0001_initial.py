"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import poise.warehouse.types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "raw_payloads",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("stream", sa.String(length=100), nullable=False),
        sa.Column("scope", sa.String(length=400), nullable=False),
        sa.Column("request_method", sa.String(length=10), nullable=False),
        sa.Column("request_url", sa.Text(), nullable=False),
        sa.Column("request_params", sa.Text(), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("fetched_at", poise.warehouse.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_raw_payloads")),
    )
    with op.batch_alter_table("raw_payloads", schema=None) as batch_op:
        batch_op.create_index(
            "ix_raw_payloads_source_stream", ["source", "stream", "scope"], unique=False
        )

    op.create_table(
        "sync_state",
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("stream", sa.String(length=100), nullable=False),
        sa.Column("scope", sa.String(length=400), nullable=False),
        sa.Column("bookmark", sa.Text(), nullable=True),
        sa.Column(
            "last_attempt_at", poise.warehouse.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "last_success_at", poise.warehouse.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", poise.warehouse.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("rows_new", sa.Integer(), server_default="0", nullable=False),
        sa.Column("rows_updated", sa.Integer(), server_default="0", nullable=False),
        sa.Column("rows_unchanged", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("source", "stream", "scope", name=op.f("pk_sync_state")),
    )
    op.create_table(
        "teams",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("timezone", sa.String(length=64), server_default="UTC", nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("updated_at", poise.warehouse.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_teams")),
    )
    op.create_table(
        "services",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("team", sa.String(length=200), nullable=False),
        sa.Column(
            "production_environment",
            sa.String(length=100),
            server_default="production",
            nullable=False,
        ),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("source_id", sa.String(length=400), nullable=True),
        sa.Column("raw_id", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", poise.warehouse.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["team"], ["teams.name"], name=op.f("fk_services_team_teams")),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_services")),
    )
    with op.batch_alter_table("services", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_services_team"), ["team"], unique=False)

    op.create_table(
        "toil_entries",
        sa.Column("team", sa.String(length=200), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("category", sa.String(length=200), nullable=False),
        sa.Column("hours", sa.Float(), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("updated_at", poise.warehouse.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["team"], ["teams.name"], name=op.f("fk_toil_entries_team_teams")),
        sa.PrimaryKeyConstraint("team", "day", "category", name=op.f("pk_toil_entries")),
    )
    op.create_table(
        "changes",
        sa.Column("id", sa.String(length=400), nullable=False),
        sa.Column("service", sa.String(length=200), nullable=False),
        sa.Column("sha", sa.String(length=64), nullable=True),
        sa.Column("committed_at", poise.warehouse.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("merged_at", poise.warehouse.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("opened_at", poise.warehouse.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "first_review_at", poise.warehouse.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("pr_number", sa.BigInteger(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("author", sa.String(length=400), nullable=True),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("source_id", sa.String(length=400), nullable=True),
        sa.Column("raw_id", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", poise.warehouse.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["service"], ["services.name"], name=op.f("fk_changes_service_services")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_changes")),
    )
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_changes_service"), ["service"], unique=False)
        batch_op.create_index(batch_op.f("ix_changes_sha"), ["sha"], unique=False)

    op.create_table(
        "ci_runs",
        sa.Column("id", sa.String(length=400), nullable=False),
        sa.Column("service", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=400), nullable=True),
        sa.Column("sha", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("started_at", poise.warehouse.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", poise.warehouse.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("source_id", sa.String(length=400), nullable=True),
        sa.Column("raw_id", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", poise.warehouse.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["service"], ["services.name"], name=op.f("fk_ci_runs_service_services")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ci_runs")),
    )
    with op.batch_alter_table("ci_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ci_runs_service"), ["service"], unique=False)

    op.create_table(
        "deployments",
        sa.Column("id", sa.String(length=400), nullable=False),
        sa.Column("service", sa.String(length=200), nullable=False),
        sa.Column("environment", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("deployed_at", poise.warehouse.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", poise.warehouse.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sha", sa.String(length=64), nullable=True),
        sa.Column("rollback_of", sa.String(length=400), nullable=True),
        sa.Column("remediation_of", sa.String(length=400), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("source_id", sa.String(length=400), nullable=True),
        sa.Column("raw_id", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", poise.warehouse.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["service"], ["services.name"], name=op.f("fk_deployments_service_services")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployments")),
    )
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_deployments_deployed_at"), ["deployed_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_deployments_remediation_of"), ["remediation_of"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_deployments_rollback_of"), ["rollback_of"], unique=False
        )
        batch_op.create_index(
            "ix_deployments_service_deployed_at", ["service", "deployed_at"], unique=False
        )

    op.create_table(
        "incidents",
        sa.Column("id", sa.String(length=400), nullable=False),
        sa.Column("service", sa.String(length=200), nullable=True),
        sa.Column("severity", sa.String(length=40), nullable=True),
        sa.Column("status", sa.String(length=40), nullable=True),
        sa.Column("started_at", poise.warehouse.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("detected_at", poise.warehouse.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "acknowledged_at", poise.warehouse.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("resolved_at", poise.warehouse.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("caused_by_deployment", sa.String(length=400), nullable=True),
        sa.Column("cause", sa.String(length=200), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("postmortem_url", sa.Text(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("source_id", sa.String(length=400), nullable=True),
        sa.Column("raw_id", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", poise.warehouse.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["service"], ["services.name"], name=op.f("fk_incidents_service_services")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
    )
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.create_index(
            "ix_incidents_service_started_at", ["service", "started_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_incidents_started_at"), ["started_at"], unique=False)

    op.create_table(
        "oncall_pages",
        sa.Column("id", sa.String(length=400), nullable=False),
        sa.Column("service", sa.String(length=200), nullable=True),
        sa.Column("team", sa.String(length=200), nullable=True),
        sa.Column("triggered_at", poise.warehouse.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("urgency", sa.String(length=20), nullable=True),
        sa.Column("after_hours", sa.Boolean(), nullable=False),
        sa.Column("incident_id", sa.String(length=400), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("source_id", sa.String(length=400), nullable=True),
        sa.Column("raw_id", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", poise.warehouse.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["service"], ["services.name"], name=op.f("fk_oncall_pages_service_services")
        ),
        sa.ForeignKeyConstraint(["team"], ["teams.name"], name=op.f("fk_oncall_pages_team_teams")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oncall_pages")),
    )
    with op.batch_alter_table("oncall_pages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oncall_pages_service"), ["service"], unique=False)
        batch_op.create_index(batch_op.f("ix_oncall_pages_team"), ["team"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_oncall_pages_triggered_at"), ["triggered_at"], unique=False
        )

    op.create_table(
        "repositories",
        sa.Column("id", sa.String(length=400), nullable=False),
        sa.Column("service", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("branch", sa.String(length=200), nullable=True),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("source_id", sa.String(length=400), nullable=True),
        sa.Column("raw_id", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", poise.warehouse.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["service"], ["services.name"], name=op.f("fk_repositories_service_services")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repositories")),
    )
    with op.batch_alter_table("repositories", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_repositories_service"), ["service"], unique=False)

    op.create_table(
        "slos",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("service", sa.String(length=200), nullable=False),
        sa.Column("display_name", sa.String(length=400), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("target", sa.Float(), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("window_kind", sa.String(length=20), server_default="rolling", nullable=False),
        sa.Column("calendar_unit", sa.String(length=20), nullable=True),
        sa.Column(
            "budgeting_method", sa.String(length=40), server_default="Occurrences", nullable=False
        ),
        sa.Column("datasource", sa.String(length=200), nullable=True),
        sa.Column("good_query", sa.Text(), nullable=True),
        sa.Column("bad_query", sa.Text(), nullable=True),
        sa.Column("total_query", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("source_id", sa.String(length=400), nullable=True),
        sa.Column("raw_id", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", poise.warehouse.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["service"], ["services.name"], name=op.f("fk_slos_service_services")
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_slos")),
    )
    with op.batch_alter_table("slos", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_slos_service"), ["service"], unique=False)

    op.create_table(
        "attributions",
        sa.Column("incident_id", sa.String(length=400), nullable=False),
        sa.Column("deployment_id", sa.String(length=400), nullable=True),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("computed_at", poise.warehouse.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_attributions_deployment_id_deployments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_attributions_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("incident_id", name=op.f("pk_attributions")),
    )
    with op.batch_alter_table("attributions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_attributions_deployment_id"), ["deployment_id"], unique=False
        )

    op.create_table(
        "deployment_changes",
        sa.Column("deployment_id", sa.String(length=400), nullable=False),
        sa.Column("change_id", sa.String(length=400), nullable=False),
        sa.ForeignKeyConstraint(
            ["change_id"],
            ["changes.id"],
            name=op.f("fk_deployment_changes_change_id_changes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_deployment_changes_deployment_id_deployments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("deployment_id", "change_id", name=op.f("pk_deployment_changes")),
    )
    with op.batch_alter_table("deployment_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_deployment_changes_change_id"), ["change_id"], unique=False
        )

    op.create_table(
        "sli_samples",
        sa.Column("slo", sa.String(length=200), nullable=False),
        sa.Column("ts", poise.warehouse.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("good", sa.Float(), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["slo"], ["slos.name"], name=op.f("fk_sli_samples_slo_slos"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("slo", "ts", name=op.f("pk_sli_samples")),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("sli_samples")
    with op.batch_alter_table("deployment_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deployment_changes_change_id"))

    op.drop_table("deployment_changes")
    with op.batch_alter_table("attributions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attributions_deployment_id"))

    op.drop_table("attributions")
    with op.batch_alter_table("slos", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_slos_service"))

    op.drop_table("slos")
    with op.batch_alter_table("repositories", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_repositories_service"))

    op.drop_table("repositories")
    with op.batch_alter_table("oncall_pages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oncall_pages_triggered_at"))
        batch_op.drop_index(batch_op.f("ix_oncall_pages_team"))
        batch_op.drop_index(batch_op.f("ix_oncall_pages_service"))

    op.drop_table("oncall_pages")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incidents_started_at"))
        batch_op.drop_index("ix_incidents_service_started_at")

    op.drop_table("incidents")
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_index("ix_deployments_service_deployed_at")
        batch_op.drop_index(batch_op.f("ix_deployments_rollback_of"))
        batch_op.drop_index(batch_op.f("ix_deployments_remediation_of"))
        batch_op.drop_index(batch_op.f("ix_deployments_deployed_at"))

    op.drop_table("deployments")
    with op.batch_alter_table("ci_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ci_runs_service"))

    op.drop_table("ci_runs")
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_changes_sha"))
        batch_op.drop_index(batch_op.f("ix_changes_service"))

    op.drop_table("changes")
    op.drop_table("toil_entries")
    with op.batch_alter_table("services", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_services_team"))

    op.drop_table("services")
    op.drop_table("teams")
    op.drop_table("sync_state")
    with op.batch_alter_table("raw_payloads", schema=None) as batch_op:
        batch_op.drop_index("ix_raw_payloads_source_stream")

    op.drop_table("raw_payloads")
