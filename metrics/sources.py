"""Where the data came from, how fresh it is, and how much of it the figures can use.

- `sync_status`: the outcome of every source's last sync or import (sync_state);
- `freshness`: per table and source, how many rows and the latest event among them;
- `slo_freshness`: each SLO's first and latest SLI sample;
- `coverage`: the shares the figures rest on (changes linked to deployments, deployments
  naming their changes, incidents attributed, SLOs with data), from a scorecard document
  and the count of changes committed in its period.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import Engine, func, select

from metrics.frames import in_scope, raw_time, read, to_utc
from metrics.model import Period, Scope
from metrics.stats import ratio
from poise.timeutil import utcnow
from poise.warehouse import schema
from poise.warehouse.engine import read_snapshot
from poise.warehouse.sync_state import WRITES

S = schema
SYNC_COLUMNS = [
    "source",
    "stream",
    "scope",
    "state",
    "last_attempt_at",
    "last_success_at",
    "last_error_at",
    "last_error",
    "rows_new",
    "rows_updated",
    "rows_unchanged",
]
# table, the column saying when each row happened
EVENT_TIMES = (
    ("changes", "committed_at"),
    ("deployments", "deployed_at"),
    ("incidents", "started_at"),
    ("sli_samples", "ts"),
    ("oncall_pages", "triggered_at"),
    ("ci_runs", "finished_at"),
)


def sync_status(engine: Engine) -> pd.DataFrame:
    """One row per source, stream and scope: when it last ran, last succeeded, and the
    last error (kept until a later success); `state` is ok, failing or never succeeded."""
    t = S.sync_state
    times = ("last_attempt_at", "last_success_at", "last_error_at")
    with engine.connect() as connection:
        frame = read(
            connection,
            select(
                t.c.source,
                t.c.stream,
                t.c.scope,
                *(raw_time(connection, t.c[name]) for name in times),
                t.c.last_error,
                t.c.rows_new,
                t.c.rows_updated,
                t.c.rows_unchanged,
            )
            .where(~((t.c.source == WRITES[0]) & (t.c.stream == WRITES[1])))  # not a source
            .order_by(t.c.source, t.c.stream, t.c.scope),
            times=times,
        )
    failing = frame["last_error"].notna() & (frame["last_error"].astype(object) != "")
    frame["state"] = "ok"
    frame.loc[failing, "state"] = "failing"
    frame.loc[frame["last_success_at"].isna(), "state"] = "never succeeded"
    return frame[SYNC_COLUMNS]


def freshness(engine: Engine) -> pd.DataFrame:
    """Per table and source: rows, the earliest and latest event, and how long ago the
    latest event happened (hours, at the time of reading). A table with no row at all is
    listed too (0 rows, no source), so a missing kind of data shows as missing."""
    now = pd.Timestamp(utcnow())
    frames = []
    with read_snapshot(engine) as connection:  # the tables as of one moment
        for name, column in EVENT_TIMES:
            table = S.metadata.tables[name]
            when = table.c[column]
            statement = select(
                table.c.source,
                func.count().label("rows"),
                raw_time(connection, func.min(when)).label("first"),
                raw_time(connection, func.max(when)).label("latest"),
            ).group_by(table.c.source)
            frame = read(connection, statement, times=["first", "latest"])
            frame.insert(0, "table", name)
            frames.append(frame)
        toil = S.toil_entries
        frame = read(
            connection,
            select(
                toil.c.source,
                func.count().label("rows"),
                func.min(toil.c.day).label("first"),
                func.max(toil.c.day).label("latest"),
            ).group_by(toil.c.source),
        )
        for column in ("first", "latest"):
            frame[column] = to_utc(frame[column].astype(str)) if len(frame) else frame[column]
        frame.insert(0, "table", "toil_entries")
        frames.append(frame)
    frames = [frame for frame in frames if len(frame)]
    present = {frame["table"].iloc[0] for frame in frames}
    names = [name for name, _ in EVENT_TIMES] + ["toil_entries"]
    missing = [name for name in names if name not in present]
    if missing:
        frames.append(
            pd.DataFrame(
                {"table": missing, "source": None, "rows": 0, "first": pd.NaT, "latest": pd.NaT}
            )
        )
    out = pd.concat(frames, ignore_index=True)
    out["latest"] = pd.to_datetime(out["latest"], utc=True)
    out["first"] = pd.to_datetime(out["first"], utc=True)
    out["age_hours"] = (now - out["latest"]).dt.total_seconds() / 3600.0
    return out


def slo_freshness(engine: Engine, scope: Scope | None = None) -> pd.DataFrame:
    """Each SLO in scope with its first and latest SLI sample (NaT when it has none); one
    index seek per SLO."""
    o, s, x = S.slos, S.services, S.sli_samples
    first = select(func.min(x.c.ts)).where(x.c.slo == o.c.name).scalar_subquery()
    latest = select(func.max(x.c.ts)).where(x.c.slo == o.c.name).scalar_subquery()
    with engine.connect() as connection:
        return read(
            connection,
            select(
                o.c.name.label("slo"),
                o.c.service,
                s.c.team,
                raw_time(connection, first).label("first_sample"),
                raw_time(connection, latest).label("latest_sample"),
            )
            .join(s, s.c.name == o.c.service)
            .where(in_scope(s, scope or Scope()), o.c.retired_at.is_(None))
            .order_by(o.c.service, o.c.name),
            times=["first_sample", "latest_sample"],
        )


def committed_changes(engine: Engine, period: Period, scope: Scope) -> int:
    """How many changes in scope were committed in the period."""
    c, s = S.changes, S.services
    statement = (
        select(func.count())
        .select_from(c.join(s, s.c.name == c.c.service))
        .where(c.c.committed_at >= period.start, c.c.committed_at < period.end, in_scope(s, scope))
    )
    with engine.connect() as connection:
        return int(connection.execute(statement).scalar_one())


def _dig(document: dict[str, Any], *path: str) -> int:
    value: Any = document
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return int(value or 0)


def coverage(document: dict[str, Any], committed: int) -> list[dict[str, Any]]:
    """The shares a scorecard rests on: `measure` (a glossary key), `covered`, `total` and
    `share` (None when there is nothing to cover)."""
    quality = document.get("data_quality") or {}
    deployments = _dig(document, "dora", "deployment_frequency", "deployments")
    unlinked_deployments = int(quality.get("deployments_without_changes", 0))
    never = int(quality.get("changes_never_deployed", 0))
    incidents = _dig(document, "incidents", "count")
    attributed = _dig(document, "attribution", "explicit") + _dig(
        document, "attribution", "inferred"
    )
    slos = list(document.get("slos") or [])
    with_data = sum(1 for slo in slos if slo.get("sli") is not None)
    rows = [
        ("changes_linked", max(committed - never, 0), committed),
        ("deployments_with_changes", deployments - unlinked_deployments, deployments),
        ("incidents_attributed", attributed, incidents),
        ("slos_with_data", with_data, len(slos)),
    ]
    return [
        {"measure": key, "covered": covered, "total": total, "share": ratio(covered, total)}
        for key, covered, total in rows
    ]
