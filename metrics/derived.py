"""Derived tables the metrics keep in the warehouse, and when they can be trusted.

- `attributions`: every incident's attribution and its reason (for pages and SQL users;
  the figures compute attribution afresh, with the settings of the call);
- `change_leads`: each change's first production deployment, so lead times need not join
  changes, links and deployments at read time;
- `sli_daily`: SLI samples summed per SLO and UTC day, so windows of weeks read tens of
  rows per SLO instead of hundreds.

Call `refresh_derived(engine, settings)` after an import or a sync (`poise import` and
`poise demo` do). The figures use `change_leads` and `sli_daily` only while they are
fresh: refreshed after the last import or sync that wrote rows (as `sync_state` records
it) and after the last change to a service. Otherwise they read the source rows instead,
which gives the same figures, only slower.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    and_,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.elements import ColumnElement

from metrics.attribution import refresh_attributions
from metrics.freshness import ATTRIBUTION_WINDOW, SCOPE, SOURCE, STREAM
from metrics.model import Settings
from poise.timeutil import utcnow
from poise.warehouse import schema
from poise.warehouse.engine import refresh_planner_statistics
from poise.warehouse.sync_state import record_attempt, save_bookmark

# what the refresh reads: their planner statistics are brought up to date first
READ_TABLES = (
    schema.services,
    schema.changes,
    schema.deployments,
    schema.deployment_changes,
    schema.incidents,
    schema.slos,
    schema.sli_samples,
)


def day_floor(connection: Connection, column: ColumnElement[datetime]) -> ColumnElement[Any]:
    """`column` truncated to its UTC day, in the column's own storage form."""
    if connection.dialect.name == "sqlite":
        return func.substr(column, 1, 10).op("||")(literal_column("'T00:00:00.000000Z'"))
    return func.date_trunc("day", column.op("AT TIME ZONE")(text("'UTC'"))).op("AT TIME ZONE")(
        text("'UTC'")
    )


def refresh_change_leads(connection: Connection) -> int:
    """Recompute every change's first production deployment (earliest; ties by id)."""
    c, dc, d, s, leads = (
        schema.changes,
        schema.deployment_changes,
        schema.deployments,
        schema.services,
        schema.change_leads,
    )
    partition: ColumnElement[Any] = dc.c.change_id
    if connection.dialect.name == "sqlite":
        # an expression, so SQLite reads the links deployment by deployment and sorts them,
        # instead of walking the change_id index and fetching each link's row at random:
        # 2.1 s instead of 6.4 s for 736,000 links (docs/performance.md)
        partition = dc.c.change_id.concat("")
    ranked = (
        select(
            dc.c.change_id,
            d.c.id.label("deployment_id"),
            d.c.deployed_at,
            func.row_number()
            .over(partition_by=partition, order_by=(d.c.deployed_at, d.c.id))
            .label("n"),
        )
        .join(d, d.c.id == dc.c.deployment_id)
        .join(s, s.c.name == d.c.service)
        .where(d.c.environment == s.c.production_environment, d.c.status == "success")
        .subquery()
    )
    rows = select(
        c.c.id, c.c.service, c.c.committed_at, ranked.c.deployment_id, ranked.c.deployed_at
    ).outerjoin(ranked, and_(ranked.c.change_id == c.c.id, ranked.c.n == 1))
    columns = ["change_id", "service", "committed_at", "deployment_id", "deployed_at"]
    if connection.execute(select(leads.c.change_id).limit(1)).first() is None:
        # a first build: in deployment order, so most index pages fill one after another
        rows = rows.order_by(ranked.c.deployed_at, c.c.id)
        connection.execute(insert(leads).from_select(columns, rows))
        return _count(connection, leads)
    # A rebuild writes only the rows whose values changed (a sync changes a few of
    # 600,000): rewriting the whole table and its indexes took 2.5 times the CPU. A
    # change deleted since takes its row with it (the foreign key cascades).
    upsert = (sqlite_insert if connection.dialect.name == "sqlite" else postgresql_insert)(leads)
    statement = upsert.from_select(
        columns,
        rows.where(true()).order_by(c.c.id),  # WHERE: SQLite's upsert-from-select rule
    )
    fresh = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=[leads.c.change_id],
        set_={name: fresh[name] for name in columns[1:]},
        where=or_(*(leads.c[name].is_distinct_from(fresh[name]) for name in columns[1:])),
    )
    connection.execute(statement)
    count = _count(connection, leads)
    if count != _count(connection, c):  # rows of changes deleted with foreign keys off
        connection.execute(delete(leads).where(~leads.c.change_id.in_(select(c.c.id))))
        count = _count(connection, leads)
    return count


def refresh_sli_daily(connection: Connection) -> int:
    """Recompute the daily SLI rollup."""
    x, daily = schema.sli_samples, schema.sli_daily
    day = day_floor(connection, x.c.ts)
    rows = select(
        x.c.slo, day, func.sum(x.c.good), func.sum(x.c.total), func.count(), func.min(x.c.ts)
    ).group_by(x.c.slo, day)
    connection.execute(delete(daily))
    connection.execute(
        insert(daily).from_select(["slo", "day", "good", "total", "samples", "first_ts"], rows)
    )
    return _count(connection, daily)


def _count(connection: Connection, table: Table) -> int:
    # the drivers disagree on rowcount after INSERT … SELECT, so count what is there
    return int(connection.execute(select(func.count()).select_from(table)).scalar() or 0)


def refresh_derived(
    engine: Engine, settings: Settings, *, kind: str | None = None
) -> dict[str, Any]:
    """Bring every derived table up to date (after importing `kind`, or after a sync when
    None: the kind is only reported). Returns what was refreshed."""
    started = utcnow()
    with engine.begin() as connection:
        refresh_planner_statistics(connection, READ_TABLES)
    done: dict[str, Any] = {"attributions": refresh_attributions(engine, settings)}
    with engine.begin() as connection:
        done["change_leads"] = refresh_change_leads(connection)
        done["sli_daily"] = refresh_sli_daily(connection)
        # the figures read these next
        refresh_planner_statistics(
            connection, (schema.change_leads, schema.sli_daily, schema.attributions)
        )
        record_attempt(connection, SOURCE, STREAM, SCOPE, error=None, new=0, updated=0)
        # what `attributions` was worked out with: a new window makes it stale too
        save_bookmark(
            connection, SOURCE, STREAM, SCOPE, {ATTRIBUTION_WINDOW: settings.window_hours}
        )
        # the refresh counts from when it started reading: later writes make it stale
        connection.execute(
            schema.sync_state.update()
            .where(
                schema.sync_state.c.source == SOURCE,
                schema.sync_state.c.stream == STREAM,
                schema.sync_state.c.scope == SCOPE,
            )
            .values(last_success_at=started)
        )
    done["kind"] = kind
    return done
