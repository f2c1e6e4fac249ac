"""The warehouse schema: the canonical entities every collector and importer produces.

This module is the one description of the tables. Alembic migrations create them
(`poise/warehouse/migrations/versions`), and a test checks that a migrated database
matches this metadata exactly.

Lineage: every collected row keeps `source` (where it came from: `import`, `git`,
`github`, …), `source_id` (its id at that source) and, where a collector stored the
page it came in, `raw_id` (a row of `raw_payloads`).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from poise.warehouse.types import UTCDateTime

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

# SQLite's INTEGER is 64-bit and is the rowid alias only when spelt INTEGER.
RowId = BigInteger().with_variant(Integer(), "sqlite")


def _lineage() -> list[Column]:
    return [
        Column("source", String(40), nullable=False),
        Column("source_id", String(400)),
        Column("raw_id", BigInteger),
        Column("updated_at", UTCDateTime, nullable=False),
    ]


teams = Table(
    "teams",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("size", Integer),
    Column("timezone", String(64), nullable=False, server_default="UTC"),
    Column("source", String(40), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

services = Table(
    "services",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("team", String(200), ForeignKey("teams.name"), nullable=False, index=True),
    Column("production_environment", String(100), nullable=False, server_default="production"),
    *_lineage(),
)

repositories = Table(
    "repositories",
    metadata,
    Column("id", String(400), primary_key=True),
    Column("service", String(200), ForeignKey("services.name"), nullable=False, index=True),
    Column("kind", String(40), nullable=False),
    Column("location", Text, nullable=False),
    Column("branch", String(200)),
    *_lineage(),
)

changes = Table(
    "changes",
    metadata,
    Column("id", String(400), primary_key=True),
    Column("service", String(200), ForeignKey("services.name"), nullable=False, index=True),
    Column("sha", String(64), index=True),
    Column("committed_at", UTCDateTime, nullable=False),
    # Local Git: the commit's committer time and its parents' shas, space-separated
    # (committed_at is the author time, as the contract defines it)
    Column("committer_at", UTCDateTime),
    Column("parents", Text),
    Column("merged_at", UTCDateTime),
    Column("opened_at", UTCDateTime),
    Column("first_review_at", UTCDateTime),
    Column("pr_number", BigInteger),
    Column("title", Text),
    Column("author", String(400)),
    *_lineage(),
)

deployments = Table(
    "deployments",
    metadata,
    Column("id", String(400), primary_key=True),
    Column("service", String(200), ForeignKey("services.name"), nullable=False),
    Column("environment", String(100), nullable=False),
    Column("status", String(20), nullable=False),
    Column("deployed_at", UTCDateTime, nullable=False, index=True),
    Column("started_at", UTCDateTime),
    Column("sha", String(64)),
    Column("rollback_of", String(400), index=True),
    Column("remediation_of", String(400), index=True),
    Column("url", Text),
    *_lineage(),
    Index("ix_deployments_service_deployed_at", "service", "deployed_at"),
)

deployment_changes = Table(
    "deployment_changes",
    metadata,
    Column(
        "deployment_id",
        String(400),
        ForeignKey("deployments.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "change_id",
        String(400),
        ForeignKey("changes.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", String(400), primary_key=True),
    Column("service", String(200), ForeignKey("services.name")),
    Column("severity", String(40)),
    Column("status", String(40)),
    Column("started_at", UTCDateTime, nullable=False, index=True),
    Column("detected_at", UTCDateTime),
    Column("acknowledged_at", UTCDateTime),
    Column("resolved_at", UTCDateTime),
    Column("caused_by_deployment", String(400)),
    Column("cause", String(200)),
    Column("title", Text),
    Column("postmortem_url", Text),
    Column("url", Text),
    *_lineage(),
    Index("ix_incidents_service_started_at", "service", "started_at"),
)

slos = Table(
    "slos",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("service", String(200), ForeignKey("services.name"), nullable=False, index=True),
    Column("display_name", String(400)),
    Column("description", Text),
    Column("target", Float, nullable=False),
    Column("window_days", Integer, nullable=False),
    # rolling (the default) or calendar; a calendar window names its unit.
    Column("window_kind", String(20), nullable=False, server_default="rolling"),
    Column("calendar_unit", String(20)),
    Column("budgeting_method", String(40), nullable=False, server_default="Occurrences"),
    Column("datasource", String(200)),
    Column("good_query", Text),
    Column("bad_query", Text),
    Column("total_query", Text),
    # set when the config that declared it no longer does: left out of every figure, its
    # samples kept, cleared when it is declared again (poise/catalog.py)
    Column("retired_at", UTCDateTime),
    *_lineage(),
)

sli_samples = Table(
    "sli_samples",
    metadata,
    Column("slo", String(200), ForeignKey("slos.name", ondelete="CASCADE"), primary_key=True),
    Column("ts", UTCDateTime, primary_key=True),
    Column("good", Float, nullable=False),
    Column("total", Float, nullable=False),
    Column("source", String(40), nullable=False),
    sqlite_with_rowid=False,
)

ci_runs = Table(
    "ci_runs",
    metadata,
    Column("id", String(400), primary_key=True),
    Column("service", String(200), ForeignKey("services.name"), nullable=False),
    Column("name", String(400)),
    Column("sha", String(64)),
    Column("status", String(20), nullable=False),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Column("url", Text),
    *_lineage(),
    # the newest build of a job, the runs since a time: each sync asks (not the service alone)
    Index("ix_ci_runs_service_started_at", "service", "started_at"),
)

oncall_pages = Table(
    "oncall_pages",
    metadata,
    Column("id", String(400), primary_key=True),
    Column("service", String(200), ForeignKey("services.name"), index=True),
    Column("team", String(200), ForeignKey("teams.name"), index=True),
    Column("triggered_at", UTCDateTime, nullable=False, index=True),
    Column("urgency", String(20)),
    Column("after_hours", Boolean, nullable=False),
    Column("incident_id", String(400)),
    Column("title", Text),
    *_lineage(),
)

toil_entries = Table(
    "toil_entries",
    metadata,
    Column("team", String(200), ForeignKey("teams.name"), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("category", String(200), primary_key=True),
    Column("hours", Float, nullable=False),
    Column("source", String(40), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

attributions = Table(
    "attributions",
    metadata,
    Column(
        "incident_id",
        String(400),
        ForeignKey("incidents.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "deployment_id",
        String(400),
        ForeignKey("deployments.id", ondelete="CASCADE"),
        index=True,
    ),
    # explicit | inferred | none
    Column("method", String(20), nullable=False),
    Column("reason", Text, nullable=False),
    Column("computed_at", UTCDateTime, nullable=False),
)

# --- derived tables: recomputed from the rows above by metrics.derived.refresh_derived ----
# (after an import or a sync); the figures read them only while they are fresh.

change_leads = Table(
    "change_leads",
    metadata,
    Column(
        "change_id",
        String(400),
        ForeignKey("changes.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("service", String(200), nullable=False),
    Column("committed_at", UTCDateTime, nullable=False, index=True),
    # the change's first production deployment (earliest, ties by id); NULL: never deployed
    Column("deployment_id", String(400)),
    Column("deployed_at", UTCDateTime, index=True),
)

sli_daily = Table(
    "sli_daily",
    metadata,
    Column("slo", String(200), ForeignKey("slos.name", ondelete="CASCADE"), primary_key=True),
    Column("day", UTCDateTime, primary_key=True),
    Column("good", Float, nullable=False),
    Column("total", Float, nullable=False),
    Column("samples", Integer, nullable=False),
    Column("first_ts", UTCDateTime, nullable=False),
    sqlite_with_rowid=False,
)

sync_state = Table(
    "sync_state",
    metadata,
    Column("source", String(40), primary_key=True),
    Column("stream", String(100), primary_key=True),
    Column("scope", String(400), primary_key=True),
    Column("bookmark", Text),
    Column("last_attempt_at", UTCDateTime),
    Column("last_success_at", UTCDateTime),
    Column("last_error", Text),
    Column("last_error_at", UTCDateTime),
    Column("rows_new", Integer, nullable=False, server_default="0"),
    Column("rows_updated", Integer, nullable=False, server_default="0"),
    Column("rows_unchanged", Integer, nullable=False, server_default="0"),
)

raw_payloads = Table(
    "raw_payloads",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("source", String(40), nullable=False),
    Column("stream", String(100), nullable=False),
    Column("scope", String(400), nullable=False),
    Column("request_method", String(10), nullable=False),
    Column("request_url", Text, nullable=False),
    Column("request_params", Text),
    Column("status_code", Integer),
    Column("fetched_at", UTCDateTime, nullable=False),
    Column("payload", Text, nullable=False),
    Index("ix_raw_payloads_source_stream", "source", "stream", "scope"),
)

# --- guardrails (docs/guardrails.md) ------------------------------------------------------

# The TLS certificate each configured endpoint served at its last check (collectors/tls.py).
# The certificate's fields are kept from the last successful read when a later check fails.
certificates = Table(
    "certificates",
    metadata,
    Column("id", String(600), primary_key=True),  # host:port[/server_name]
    Column("service", String(200), nullable=False, index=True),
    Column("host", String(400), nullable=False),
    Column("port", Integer, nullable=False),
    Column("server_name", String(400)),
    Column("subject", Text),
    Column("issuer", Text),
    Column("serial", String(100)),
    Column("dns_names", Text),
    Column("not_before", UTCDateTime),
    Column("not_after", UTCDateTime),
    # the system's (or ca_file's) verdict on the chain and the name; NULL: never read
    Column("verified", Boolean),
    Column("verify_error", Text),
    Column("error", Text),  # why the last check read no certificate; NULL when it did
    Column("checked_at", UTCDateTime, nullable=False),
    Column("read_at", UTCDateTime),  # when the stored certificate was read
    *_lineage(),
)

# Every answer `poise gate` gave: the release gate's ledger.
gate_decisions = Table(
    "gate_decisions",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("decided_at", UTCDateTime, nullable=False),
    Column("service", String(200), nullable=False),
    Column("change_type", String(20), nullable=False),  # feature | fix | rollback
    Column("decision", String(20), nullable=False),  # ship | warn | freeze | exception
    Column("reason", Text, nullable=False),
    Column("details", JSON),
    Column("ref", String(400)),
    Column("actor", String(200)),
    Index("ix_gate_decisions_service_decided_at", "service", "decided_at"),
    Index("ix_gate_decisions_decided_at", "decided_at"),
)

# Tables that hold canonical rows, in the order a loader must fill them.
CANONICAL_TABLES = (
    teams,
    services,
    repositories,
    changes,
    deployments,
    deployment_changes,
    incidents,
    slos,
    sli_samples,
    ci_runs,
    oncall_pages,
    toil_entries,
    attributions,
)
