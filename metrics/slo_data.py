"""Everything SLO-shaped one scorecard needs, read in a handful of SQL aggregations.

- window and burn-window sums at the evaluation time, and sample counts for gap checks;
- daily sums to rule SLOs out of hour-by-hour budget-policy evaluation, and the hourly
  samples of the few that remain;
- bad events during each incident.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Connection

from metrics import budget, policy, reliability, sli
from metrics.model import Period, Settings

HOUR = timedelta(hours=1)


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
    (or the SLO's first sample, if later) to `cap`; and the expected bucket counts."""
    windows: dict[str, tuple[datetime, datetime]] = {}
    rows = []
    for slo in slos.itertuples(index=False):
        first_sample = first.get(slo.name, pd.NaT)
        if pd.isna(first_sample):
            rows.append((slo.name, slo.team, None, 0, pd.NaT))
            continue
        start = max(pd.Timestamp(period.start), pd.Timestamp(first_sample).floor("h"))
        if start >= pd.Timestamp(cap):
            rows.append((slo.name, slo.team, 0, 0, first_sample))
            continue
        expected = len(
            pd.date_range(start.ceil("h"), pd.Timestamp(cap), freq="h", inclusive="left")
        )
        windows[slo.name] = (start.to_pydatetime(), cap)
        rows.append((slo.name, slo.team, expected, 0, first_sample))
    frame = pd.DataFrame(rows, columns=["slo", "team", "expected", "present", "first_sample"])
    return windows, frame


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
    first = (
        sli.first_samples(connection, names) if names else pd.Series(dtype="datetime64[ns, UTC]")
    )
    windows, gaps = gap_windows(slos, first, period, cap)
    sums = sli.interval_sums(connection, reliability.requests_for(slos, at, settings, windows))
    evaluated = reliability.evaluate_all(slos, sums, at, settings)

    present = sums[sums["key"] == "gaps"].set_index("slo")["samples"]
    gaps["present"] = gaps["slo"].map(present).fillna(0).astype(int)
    gaps["missing"] = (gaps["expected"] - gaps["present"]).clip(lower=0)

    intervals = _exhausted_intervals(connection, slos, period.start, cap, settings)
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
    connection: Connection, slos: pd.DataFrame, start: datetime, cap: datetime, settings: Settings
) -> pd.DataFrame:
    if slos.empty or cap <= start:
        return pd.DataFrame(columns=policy.INTERVAL_COLUMNS)
    since = policy.history_start(slos, start, settings)
    since = pd.Timestamp(since).floor("D").to_pydatetime()
    daily = sli.daily_sums(connection, slos["name"].tolist(), since, cap)
    chosen = policy.candidates(slos, daily, start, cap, settings)
    if not chosen:
        return pd.DataFrame(columns=policy.INTERVAL_COLUMNS)
    subset = slos[slos["name"].isin(chosen)]
    hourly = sli.hourly_rows(connection, chosen, policy.history_start(subset, start, settings), cap)
    return policy.exhausted_intervals(subset, hourly, start, cap, settings)


def incident_budgets(rel: Reliability) -> pd.DataFrame:
    return budget.incident_budget(rel.incident_bad, rel.evaluated)
