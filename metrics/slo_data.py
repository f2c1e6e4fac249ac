"""Everything SLO-shaped one scorecard needs, read in a handful of SQL aggregations.

- window and burn-window sums at the evaluation time, and sample counts for gap checks;
- daily sums to rule SLOs out of hour-by-hour budget-policy evaluation, and the hourly
  samples of the few that remain;
- bad events during each incident.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, select

from metrics import budget, policy, reliability, sli
from metrics.frames import TIME_DTYPE, read
from metrics.freshness import is_fresh
from metrics.model import Period, Settings
from metrics.stats import settled
from metrics.windows import window_for
from poise.errors import PoiseError
from poise.timeutil import ensure_utc, utcnow
from poise.warehouse import schema
from poise.warehouse.engine import read_snapshot

HOUR = timedelta(hours=1)
HOUR_DELTA = pd.Timedelta(hours=1)


@dataclass
class Reliability:
    """The evaluated SLOs and budget policy of one load (all teams, or one scope)."""

    evaluated: list[dict[str, Any]]
    gaps: pd.DataFrame  # slo, team, expected, present, missing, first_sample
    intervals: pd.DataFrame  # exhausted stretches per SLO
    freezes: pd.DataFrame  # per service
    incident_bad: pd.DataFrame  # incident_id, slo, bad, total

    def for_team(self, team: str, slo_names: set[str]) -> Reliability:
        return replace(
            self,
            evaluated=[slo for slo in self.evaluated if slo["team"] == team],
            gaps=self.gaps[self.gaps["team"] == team],
            intervals=self.intervals[self.intervals["team"] == team],
            freezes=self.freezes[self.freezes["team"] == team],
            incident_bad=self.incident_bad[self.incident_bad["slo"].isin(slo_names)],
        )


def evaluation_cap(period: Period, now: datetime) -> datetime:
    """Evaluate no later than the last finished hour: later buckets cannot exist yet."""
    floor = now.replace(minute=0, second=0, microsecond=0)
    return min(period.end, max(floor, period.start))


def gap_windows(
    slos: pd.DataFrame, first: pd.Series, period: Period, cap: datetime
) -> tuple[dict[str, tuple[datetime, datetime]], pd.DataFrame]:
    """Per SLO, the stretch checked for missing hourly buckets: from the period's start
    (or the SLO's first sample's hour, if later) to `cap`; and how many hourly buckets
    start inside it (the expected count)."""
    frame = pd.DataFrame({"slo": slos["name"].to_numpy(), "team": slos["team"].to_numpy()})
    columns = ["slo", "team", "expected", "present", "first_sample"]
    if frame.empty:
        return {}, pd.DataFrame(columns=columns)
    known = first.reindex(frame["slo"]).to_numpy()
    frame["first_sample"] = pd.to_datetime(known, utc=True)
    starts = (
        frame["first_sample"]
        .dt.floor("h")
        .where(
            frame["first_sample"].dt.floor("h") > pd.Timestamp(period.start),
            pd.Timestamp(period.start),
        )
    )
    end = pd.Timestamp(cap)
    first_bucket = starts.dt.ceil("h")
    hours = ((end - first_bucket) / HOUR_DELTA).apply(math.ceil)
    expected = hours.where(first_bucket < end, 0).clip(lower=0)
    frame["expected"] = expected.where(frame["first_sample"].notna(), None)
    frame["present"] = 0
    windows = {
        slo: (start.to_pydatetime(), cap)
        for slo, start, has in zip(frame["slo"], starts, frame["first_sample"].notna(), strict=True)
        if has and start < end
    }
    return windows, frame[columns]


def load_reliability(
    connection: Connection,
    slos: pd.DataFrame,
    period: Period,
    settings: Settings,
    incident_ids: list[str],
    now: datetime,
) -> Reliability:
    at = period.end
    cap = evaluation_cap(period, now)
    names = slos["name"].tolist()
    rollup = is_fresh(connection)
    empty = pd.Series(dtype=TIME_DTYPE)
    first = sli.first_samples(connection, names, rollup=rollup) if names else empty
    windows, gaps = gap_windows(slos, first, period, cap)

    # one read of daily sums serves the budget policy bound and the long windows' whole days
    since = (
        min(
            policy.history_start(slos, period.start, settings),
            *(
                window.at(at)[0]
                for window in {window_for(slo, settings) for slo in slos.itertuples(index=False)}
            ),
            *(start for start, _ in windows.values()),
        )
        if names
        else period.start
    )
    since = sli.floor_day(since)
    daily = (
        sli.daily_sums(connection, names, since, max(cap, at), rollup=rollup)
        if names
        else pd.DataFrame(columns=sli.DAILY_COLUMNS)
    )
    requests = reliability.requests_for(slos, at, settings, windows)
    sums = sli.interval_sums(connection, requests, daily if rollup else None)
    evaluated = reliability.evaluate_all(slos, sums, at, settings)

    present = sums[sums["key"] == "gaps"].set_index("slo")["samples"]
    gaps["present"] = gaps["slo"].map(present).fillna(0).astype(int)
    gaps["missing"] = (gaps["expected"] - gaps["present"]).clip(lower=0)

    intervals = _exhausted_intervals(connection, slos, daily, period.start, cap, settings)
    bad = sli.incident_bad_events(connection, incident_ids, cap) if incident_ids else None
    return Reliability(
        evaluated=evaluated,
        gaps=gaps,
        intervals=intervals,
        freezes=policy.service_freezes(intervals),
        incident_bad=bad
        if bad is not None
        else pd.DataFrame(columns=["incident_id", "slo", "bad", "total"]),
    )


def _exhausted_intervals(
    connection: Connection,
    slos: pd.DataFrame,
    daily: pd.DataFrame,
    start: datetime,
    cap: datetime,
    settings: Settings,
) -> pd.DataFrame:
    if slos.empty or cap <= start:
        return pd.DataFrame(columns=policy.INTERVAL_COLUMNS)
    days = policy.candidates(slos, daily, start, cap, settings)
    if not days:
        return pd.DataFrame(columns=policy.INTERVAL_COLUMNS)
    subset = slos[slos["name"].isin(days)]
    hourly = sli.hourly_rows(connection, policy.sample_ranges(subset, days, cap, settings))
    return policy.exhausted_intervals(subset, hourly, start, cap, settings, days)


def incident_budgets(rel: Reliability) -> pd.DataFrame:
    return budget.incident_budget(rel.incident_bad, rel.evaluated)


def burn_down(
    engine: Engine,
    slo: str,
    period: Period,
    settings: Settings,
    *,
    now: datetime | None = None,
) -> pd.DataFrame:
    """An SLO's error budget day by day over the period, and where it is heading.

    One row per UTC midnight in (start, end] (and the period's end): `at`, the window's
    `good`, `total`, `sli`, `budget_remaining` (None without events), `kind` = `actual`;
    then, when the budget is burning, two `forecast` rows: the value at the period's end
    and 0 at the forecast date (the 24 h burn rate held)."""
    moment = ensure_utc(now) if now is not None else utcnow()
    with read_snapshot(engine) as connection:
        rows = read(
            connection,
            select(
                schema.slos.c.name,
                schema.slos.c.service,
                schema.services.c.team,
                schema.slos.c.target,
                schema.slos.c.window_days,
                schema.slos.c.window_kind,
                schema.slos.c.calendar_unit,
            )
            .join(schema.services, schema.services.c.name == schema.slos.c.service)
            .where(schema.slos.c.name == slo),
        )
        if rows.empty:
            raise PoiseError(f"unknown SLO {slo!r}")
        row = next(rows.itertuples(index=False))
        window = window_for(row, settings)
        ticks = [t.to_pydatetime() for t in pd.date_range(period.start, period.end, freq="D")[1:]]
        if not ticks or ticks[-1] != period.end:
            ticks.append(period.end)
        requests = {slo: [(str(i), window.at(t)[0], t) for i, t in enumerate(ticks)]}
        sums = sli.interval_sums(connection, requests).set_index("key")
    target = float(row.target)
    out = []
    for index, tick in enumerate(ticks):
        good, total = float(sums.at[str(index), "good"]), float(sums.at[str(index), "total"])
        remaining = settled(1 - (total - good) / ((1 - target) * total)) if total > 0 else None
        out.append((tick, good, total, good / total if total else None, remaining, "actual"))
    evaluated = load_at(engine, rows, period, settings, moment)
    if evaluated["forecast_exhausted_at"] is not None and evaluated["budget_remaining"]:
        out.append((period.end, None, None, None, evaluated["budget_remaining"], "forecast"))
        out.append((evaluated["forecast_exhausted_at"], None, None, None, 0.0, "forecast"))
    return pd.DataFrame(out, columns=["at", "good", "total", "sli", "budget_remaining", "kind"])


def load_at(
    engine: Engine, slos: pd.DataFrame, period: Period, settings: Settings, now: datetime
) -> dict[str, Any]:
    """The evaluation of one SLO at the period's end (as the scorecard shows it)."""
    with engine.connect() as connection:
        rel = load_reliability(connection, slos, period, settings, [], now)
    return rel.evaluated[0]
