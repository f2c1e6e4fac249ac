"""Sums of SLI samples over time windows, computed in SQL.

Samples are hourly buckets keyed by their start (`sli_samples.ts`). A window `[a, b)` holds
the buckets whose start falls inside it. Nothing here loads samples row by row except
`hourly_rows`, which callers use only for the few SLOs that need hour-by-hour evaluation.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime

import pandas as pd
from sqlalchemy import Connection, case, func, literal, literal_column, select, text
from sqlalchemy.sql.elements import ColumnElement

from metrics.frames import raw_time, read, to_utc
from poise.warehouse import schema
from poise.warehouse.types import UTCDateTime

X = schema.sli_samples


def floor_sql(connection: Connection, column: ColumnElement[datetime], unit: str) -> ColumnElement:
    """`column` truncated to the UTC hour or day, in the column's own storage form."""
    if connection.dialect.name == "sqlite":
        width, tail = (13, ":00:00.000000Z") if unit == "hour" else (10, "T00:00:00.000000Z")
        return func.substr(column, 1, width).op("||")(literal_column(f"'{tail}'"))
    return func.date_trunc(unit, column.op("AT TIME ZONE")(text("'UTC'"))).op("AT TIME ZONE")(
        text("'UTC'")
    )


Interval = tuple[str, datetime, datetime]  # (key, start, end): the half-open [start, end)


def interval_sums(connection: Connection, requests: dict[str, Sequence[Interval]]) -> pd.DataFrame:
    """Σgood, Σtotal and the number of samples per SLO and interval.

    `requests` maps an SLO name to its intervals; SLOs asking for the same intervals share
    one query (CASE sums over one index range scan). Returns `slo, key, good, total,
    samples` with a row for every requested pair (zeros where there were no samples).
    """
    groups: dict[tuple[Interval, ...], list[str]] = defaultdict(list)
    for slo, intervals in requests.items():
        groups[tuple(intervals)].append(slo)
    parts = []
    for intervals, slos in groups.items():
        if not intervals:
            continue
        lo = min(start for _, start, _ in intervals)
        hi = max(end for _, _, end in intervals)
        columns = []
        for index, (_key, start, end) in enumerate(intervals):
            inside = (X.c.ts >= start) & (X.c.ts < end)
            columns += [
                func.coalesce(func.sum(case((inside, X.c.good), else_=0.0)), 0.0).label(
                    f"g{index}"
                ),
                func.coalesce(func.sum(case((inside, X.c.total), else_=0.0)), 0.0).label(
                    f"t{index}"
                ),
                func.count(case((inside, 1))).label(f"n{index}"),
            ]
        for chunk in _chunks(slos, 900):
            statement = (
                select(X.c.slo, *columns)
                .where(X.c.slo.in_(chunk), X.c.ts >= lo, X.c.ts < hi)
                .group_by(X.c.slo)
            )
            wide = read(connection, statement).set_index("slo").reindex(chunk)
            for index, (key, _start, _end) in enumerate(intervals):
                parts.append(
                    pd.DataFrame(
                        {
                            "slo": chunk,
                            "key": key,
                            "good": wide[f"g{index}"].fillna(0.0).astype(float).to_numpy(),
                            "total": wide[f"t{index}"].fillna(0.0).astype(float).to_numpy(),
                            "samples": wide[f"n{index}"].fillna(0).astype(int).to_numpy(),
                        }
                    )
                )
    if not parts:
        return pd.DataFrame(columns=["slo", "key", "good", "total", "samples"])
    return pd.concat(parts, ignore_index=True)


def daily_sums(
    connection: Connection, slos: Sequence[str], start: datetime, end: datetime
) -> pd.DataFrame:
    """Σgood, Σtotal, samples per SLO and UTC day for buckets in [start, end)."""
    day = floor_sql(connection, X.c.ts, "day")
    frames = []
    for chunk in _chunks(list(slos), 900):
        statement = (
            select(
                X.c.slo,
                day.label("day"),
                func.sum(X.c.good).label("good"),
                func.sum(X.c.total).label("total"),
                func.count().label("samples"),
            )
            .where(X.c.slo.in_(chunk), X.c.ts >= start, X.c.ts < end)
            .group_by(X.c.slo, day)
        )
        frames.append(read(connection, statement, times=["day"]))
    return _concat(frames, ["slo", "day", "good", "total", "samples"])


def hourly_rows(
    connection: Connection, slos: Sequence[str], start: datetime, end: datetime
) -> pd.DataFrame:
    """The samples themselves (slo, ts, good, total) in [start, end), ordered."""
    frames = []
    for chunk in _chunks(list(slos), 900):
        statement = (
            select(X.c.slo, raw_time(connection, X.c.ts), X.c.good, X.c.total)
            .where(X.c.slo.in_(chunk), X.c.ts >= start, X.c.ts < end)
            .order_by(X.c.slo, X.c.ts)
        )
        frames.append(read(connection, statement, times=["ts"]))
    return _concat(frames, ["slo", "ts", "good", "total"])


def first_samples(connection: Connection, slos: Sequence[str]) -> pd.Series:
    """The earliest sample of each SLO (NaT when it has none), one index seek each."""
    o = schema.slos
    first = select(func.min(X.c.ts)).where(X.c.slo == o.c.name).scalar_subquery()
    rows = []
    for chunk in _chunks(list(slos), 900):
        statement = select(o.c.name, raw_time(connection, first).label("first")).where(
            o.c.name.in_(chunk)
        )
        rows.append(read(connection, statement))
    frame = _concat(rows, ["name", "first"])
    return pd.Series(to_utc(frame["first"]).to_numpy(), index=frame["name"], name="first")


def incident_bad_events(
    connection: Connection,
    incident_ids: Iterable[str],
    until: datetime,
) -> pd.DataFrame:
    """Bad and total events of each incident's service SLOs during the incident: the
    buckets overlapping [started_at, resolved_at) (an unresolved incident runs to `until`).
    Returns `incident_id, slo, bad, total`."""
    i, o = schema.incidents, schema.slos
    start_hour = floor_sql(connection, i.c.started_at, "hour")
    frames = []
    for chunk in _chunks(list(incident_ids), 900):
        statement = (
            select(
                i.c.id.label("incident_id"),
                o.c.name.label("slo"),
                func.sum(X.c.total - X.c.good).label("bad"),
                func.sum(X.c.total).label("total"),
            )
            .select_from(
                i.join(o, o.c.service == i.c.service).join(
                    X,
                    (X.c.slo == o.c.name)
                    & (X.c.ts >= start_hour)
                    & (X.c.ts < func.coalesce(i.c.resolved_at, literal(until, UTCDateTime()))),
                )
            )
            .where(i.c.id.in_(chunk))
            .group_by(i.c.id, o.c.name)
        )
        frames.append(read(connection, statement))
    frame = _concat(frames, ["incident_id", "slo", "bad", "total"])
    frame["bad"] = frame["bad"].astype(float)
    frame["total"] = frame["total"].astype(float)
    return frame


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    frames = [frame for frame in frames if len(frame)]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)
