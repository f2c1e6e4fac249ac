"""Sums of SLI samples over time windows, computed in SQL.

Samples are hourly buckets keyed by their start (`sli_samples.ts`). A window `[a, b)` holds
the buckets whose start falls inside it. While the daily rollup (`sli_daily`, see
metrics.derived) is fresh, the whole days inside a long window come from it and only the
partial days at its edges from the samples; otherwise everything comes from the samples.
Either way the sums are the same.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Connection, case, func, literal, literal_column, select, text
from sqlalchemy.sql.elements import ColumnElement

from metrics.derived import day_floor
from metrics.frames import fetch_frame, raw_time, read, sort_rows, to_utc
from poise.timeutil import to_sqlite_text
from poise.warehouse import schema
from poise.warehouse.types import UTCDateTime

X = schema.sli_samples
DAILY = schema.sli_daily
DAY = timedelta(days=1)
SUM_COLUMNS = ["slo", "key", "good", "total", "samples"]
DAILY_COLUMNS = ["slo", "day", "good", "total", "samples"]

Interval = tuple[str, datetime, datetime]  # (key, start, end): the half-open [start, end)


def floor_day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def ceil_day(moment: datetime) -> datetime:
    floor = floor_day(moment)
    return floor if floor == moment else floor + DAY


def interval_sums(
    connection: Connection,
    requests: dict[str, Sequence[Interval]],
    daily: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Σgood, Σtotal and the number of samples per SLO and interval.

    `requests` maps an SLO name to its intervals. With `daily` (rows of the fresh rollup
    covering the whole days asked for), intervals of two days or more take their whole days
    from it. Returns `slo, key, good, total, samples`, a row for every requested pair.
    """
    raw: dict[str, list[Interval]] = defaultdict(list)
    cores: list[tuple[str, str, datetime, datetime]] = []
    days: dict[tuple[datetime, datetime], tuple[datetime, datetime]] = {}  # SLOs share them
    for slo, intervals in requests.items():
        for key, start, end in intervals:
            if (start, end) not in days:
                days[start, end] = ceil_day(start), floor_day(end)
            first, last = days[start, end]
            if daily is not None and end - start >= 2 * DAY and first < last:
                if start < first:
                    raw[slo].append((key, start, first))
                if last < end:
                    raw[slo].append((key, last, end))
                cores.append((slo, key, first, last))
            else:
                raw[slo].append((key, start, end))
    parts = [_raw_sums(connection, raw)]
    if cores:
        parts.append(_daily_sums_of(daily, cores))  # type: ignore[arg-type]
    summed = (
        pd.concat([p for p in parts if len(p)], ignore_index=True)
        if any(len(p) for p in parts)
        else None
    )
    wanted = pd.DataFrame(
        [(slo, key) for slo, intervals in requests.items() for key, _, _ in intervals],
        columns=["slo", "key"],
    ).drop_duplicates()
    if summed is None:
        totals = wanted.assign(good=0.0, total=0.0, samples=0)
    else:
        grouped = summed.groupby(["slo", "key"], as_index=False)[["good", "total", "samples"]].sum()
        totals = wanted.merge(grouped, on=["slo", "key"], how="left")
    totals[["good", "total"]] = totals[["good", "total"]].fillna(0.0).astype(float)
    totals["samples"] = totals["samples"].fillna(0).astype(int)
    return totals[SUM_COLUMNS]


def _daily_sums_of(
    daily: pd.DataFrame, cores: list[tuple[str, str, datetime, datetime]]
) -> pd.DataFrame:
    """Sums of whole days from the rollup, for (slo, key, first day, end day) requests."""
    frame = pd.DataFrame(cores, columns=["slo", "key", "lo", "hi"])
    # SLOs as integer codes, found once: filtering and grouping by them is cheaper than by
    # name, and groups the same rows in the same order (so the same sums)
    codes, names = pd.factorize(daily["slo"])
    frame["code"] = pd.Index(names).get_indexer(frame["slo"])
    days = daily["day"]
    values = daily[["good", "total", "samples"]]
    out = []
    for (lo, hi), group in frame.groupby(["lo", "hi"], sort=False):
        mask = (days >= lo).to_numpy() & (days < hi).to_numpy() & np.isin(codes, group["code"])
        sums = values[mask].groupby(codes[mask]).sum()
        picked = group[["slo", "key", "code"]].join(sums, on="code").drop(columns="code")
        out.append(picked)
    result = pd.concat(out, ignore_index=True)
    return result.fillna({"good": 0.0, "total": 0.0, "samples": 0})


def _raw_sums(connection: Connection, requests: dict[str, list[Interval]]) -> pd.DataFrame:
    """CASE sums over one index range scan per set of SLOs asking for the same intervals."""
    groups: dict[tuple[Interval, ...], list[str]] = defaultdict(list)
    for slo, intervals in requests.items():
        if intervals:
            groups[tuple(intervals)].append(slo)
    parts = []
    for intervals, slos in groups.items():
        lo = min(start for _, start, _ in intervals)
        hi = max(end for _, _, end in intervals)
        columns = []
        for index, (_key, start, end) in enumerate(intervals):
            inside = (X.c.ts >= start) & (X.c.ts < end)
            columns += [
                func.sum(case((inside, X.c.good), else_=0.0)).label(f"g{index}"),
                func.sum(case((inside, X.c.total), else_=0.0)).label(f"t{index}"),
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
                            "good": wide[f"g{index}"].astype(float).fillna(0.0).to_numpy(),
                            "total": wide[f"t{index}"].astype(float).fillna(0.0).to_numpy(),
                            "samples": wide[f"n{index}"].fillna(0).astype(int).to_numpy(),
                        }
                    )
                )
    return _concat(parts, SUM_COLUMNS)


def daily_sums(
    connection: Connection,
    slos: Sequence[str],
    start: datetime,
    end: datetime,
    *,
    rollup: bool,
) -> pd.DataFrame:
    """Σgood, Σtotal, samples per SLO and UTC day, for the days in [start, end) (whole
    days: `start` is a midnight; the last day may reach past `end`)."""
    frames = []
    # chunks of sorted names, each read in (slo, day) order: the rows arrive in the order
    # the frame is sorted by, and the sort is skipped (where the database agrees)
    for chunk in _chunks(sorted(slos), 900):
        if rollup:
            statement = (
                select(
                    DAILY.c.slo,
                    raw_time(connection, DAILY.c.day),
                    DAILY.c.good,
                    DAILY.c.total,
                    DAILY.c.samples,
                )
                .where(DAILY.c.slo.in_(chunk), DAILY.c.day >= start, DAILY.c.day < end)
                .order_by(DAILY.c.slo, DAILY.c.day)
            )
        else:
            day = day_floor(connection, X.c.ts)
            statement = (
                select(
                    X.c.slo,
                    day.label("day"),
                    func.sum(X.c.good).label("good"),
                    func.sum(X.c.total).label("total"),
                    func.count().label("samples"),
                )
                .where(X.c.slo.in_(chunk), X.c.ts >= start, X.c.ts < ceil_day(end))
                .group_by(X.c.slo, day)
                .order_by(X.c.slo, day)
            )
        frames.append(read(connection, statement, times=["day"]))
    frame = _concat(frames, DAILY_COLUMNS)
    frame["good"] = frame["good"].astype(float)
    frame["total"] = frame["total"].astype(float)
    # a fixed row order keeps float sums identical whichever engine answered
    return sort_rows(frame, ["slo", "day"])


def hourly_rows(
    connection: Connection, ranges: Sequence[tuple[str, datetime, datetime]]
) -> pd.DataFrame:
    """The samples themselves (slo, ts, good, total) in each (slo, start, end) range.

    Written as driver SQL: building a thousand-term OR with expression objects costs more
    than running it."""
    sqlite = connection.dialect.name == "sqlite"
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    frames = []
    # ranges in (slo, start) order, rows in (slo, ts) order: the frame arrives sorted
    for chunk in _chunks(sorted(ranges), 200):
        terms = " OR ".join(f"(slo = {mark} AND ts >= {mark} AND ts < {mark})" for _ in chunk)
        params: list[object] = []
        for slo, start, end in chunk:
            params += (
                [slo, to_sqlite_text(start), to_sqlite_text(end)] if sqlite else [slo, start, end]
            )
        cursor = connection.exec_driver_sql(
            f"SELECT slo, ts, good, total FROM sli_samples WHERE {terms} ORDER BY slo, ts",
            tuple(params),
        )
        frames.append(fetch_frame(cursor.cursor, ["slo", "ts", "good", "total"]))
    frame = _concat(frames, ["slo", "ts", "good", "total"])
    frame["ts"] = to_utc(frame["ts"])
    frame["good"] = pd.to_numeric(frame["good"]).astype(float)
    frame["total"] = pd.to_numeric(frame["total"]).astype(float)
    return sort_rows(frame.drop_duplicates(["slo", "ts"]), ["slo", "ts"])


def first_samples(connection: Connection, slos: Sequence[str], *, rollup: bool) -> pd.Series:
    """The earliest sample of each SLO (NaT when it has none)."""
    o = schema.slos
    if rollup:
        # the earliest day's first sample (days partition time), one index seek per SLO
        first = (
            select(DAILY.c.first_ts).where(DAILY.c.slo == o.c.name).order_by(DAILY.c.day).limit(1)
        )
    else:
        first = select(func.min(X.c.ts)).where(X.c.slo == o.c.name)
    rows = []
    for chunk in _chunks(list(slos), 900):
        statement = select(o.c.name, raw_time(connection, first.scalar_subquery()).label("first"))
        rows.append(read(connection, statement.where(o.c.name.in_(chunk))))
    frame = _concat(rows, ["name", "first"])
    return pd.Series(to_utc(frame["first"]).to_numpy(), index=frame["name"], name="first")


def incident_bad_events(
    connection: Connection,
    incident_ids: Iterable[str],
    until: datetime,
) -> pd.DataFrame:
    """Bad and total events of each incident's service SLOs during the incident: the
    buckets overlapping [started_at, resolved_at) (an unresolved incident runs to `until`).
    Returns `incident_id, slo, bad, total`, a row for each pair with samples, in
    (incident_id, slo) order.

    Each sum is a correlated subquery over one (slo, ts) primary-key range: a join and
    GROUP BY gave PostgreSQL's planner a row estimate that made it hash-join every sample
    (a second per thousand incidents); SQLite walked the same ranges either way."""
    i, o = schema.incidents, schema.slos
    during = (
        (X.c.slo == o.c.name)
        & (X.c.ts >= _hour_floor(connection, i.c.started_at))
        & (X.c.ts < func.coalesce(i.c.resolved_at, literal(until, UTCDateTime())))
    )
    frames = []
    for chunk in _chunks(list(incident_ids), 900):
        pairs = (
            select(
                i.c.id.label("incident_id"),
                o.c.name.label("slo"),
                select(func.sum(X.c.total - X.c.good)).where(during).scalar_subquery().label("bad"),
                select(func.sum(X.c.total)).where(during).scalar_subquery().label("total"),
            )
            .select_from(i.join(o, o.c.service == i.c.service))
            .where(i.c.id.in_(chunk), o.c.retired_at.is_(None))
            .subquery()
        )
        statement = (
            select(pairs)
            .where(pairs.c.total.is_not(None))  # no sample during it: no row, as a join gives
            .order_by(pairs.c.incident_id, pairs.c.slo)
        )
        frames.append(read(connection, statement))
    frame = _concat(frames, ["incident_id", "slo", "bad", "total"])
    frame["bad"] = frame["bad"].astype(float)
    frame["total"] = frame["total"].astype(float)
    return frame


def _hour_floor(connection: Connection, column: ColumnElement[datetime]) -> ColumnElement[object]:
    if connection.dialect.name == "sqlite":
        return func.substr(column, 1, 13).op("||")(literal_column("':00:00.000000Z'"))
    return func.date_trunc("hour", column.op("AT TIME ZONE")(text("'UTC'"))).op("AT TIME ZONE")(
        text("'UTC'")
    )


def _chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    frames = [frame for frame in frames if len(frame)]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)
