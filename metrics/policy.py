"""Budget policy: when each service was in release freeze, and what shipped during one.

Definition: metric-definitions.md, "budget policy". A service is frozen while any of its
SLOs has its budget exhausted (budget remaining <= 0). The state is evaluated at the start
of the period and at every hour boundary after it: the state at instant e holds for the
hour [e, e + 1 h) (clipped to the period), over the window an SLO would report at e.

Hour-by-hour evaluation needs the samples themselves, so it runs only for SLOs that could
be exhausted at some point: a bound from daily sums rules the others out exactly (see
`candidates`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from metrics.model import Settings
from metrics.windows import window_for

DAY = pd.Timedelta(days=1)
HOUR = pd.Timedelta(hours=1)
INTERVAL_COLUMNS = ["slo", "service", "team", "start", "end"]


def _exhausted(good: np.ndarray, total: np.ndarray, target: float) -> np.ndarray:
    """Budget remaining <= 0 (exactly as `reliability.evaluate` computes it)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        remaining = 1.0 - (total - good) / ((1.0 - target) * total)
    return (total > 0) & (remaining <= 0)


def evaluation_instants(start: datetime, cap: datetime) -> pd.DatetimeIndex:
    """The period's start, then every hour boundary after it, before `cap`."""
    first = pd.Timestamp(start)
    following = pd.date_range(
        first.floor("h") + HOUR, pd.Timestamp(cap), freq="h", inclusive="left"
    )
    return (
        pd.DatetimeIndex([first]).append(following)
        if first < pd.Timestamp(cap)
        else pd.DatetimeIndex([], tz="UTC")
    )


def _unit_starts(moments: pd.DatetimeIndex, unit: str) -> pd.DatetimeIndex:
    naive = moments.tz_convert("UTC").tz_localize(None)
    starts = naive.to_period("M" if unit == "month" else "Q").to_timestamp()
    return pd.DatetimeIndex(starts).tz_localize("UTC")


def _state_starts(slo: object, moments: pd.DatetimeIndex, settings: Settings) -> pd.DatetimeIndex:
    window = window_for(slo, settings)
    if window.kind == "rolling" or window.unit is None:
        return moments - pd.Timedelta(days=window.days)
    return _unit_starts(moments, window.unit)


def history_start(slos: pd.DataFrame, start: datetime, settings: Settings) -> datetime:
    """How far back samples are needed to evaluate every SLO from `start` on."""
    earliest = start
    for slo in slos.itertuples(index=False):
        earliest = min(earliest, window_for(slo, settings).state_start(start))
    return earliest


def candidates(
    slos: pd.DataFrame, daily: pd.DataFrame, start: datetime, cap: datetime, settings: Settings
) -> list[str]:
    """SLOs whose budget may be exhausted at some instant in [start, cap).

    With x = target·total − good per day (budget remaining <= 0 exactly when Σx >= 0 over
    the window) and bad = total − good >= x, any window ending inside day d is covered by
    whole days strictly inside it plus parts of at most two edge days, so
    Σx <= Σ(whole days) x + bad(first edge day) + bad(day d). Where that bound stays below
    zero all period long, the SLO cannot have been exhausted; the others are evaluated
    hour by hour.
    """
    if daily.empty or slos.empty:
        return []
    out = []
    first_day = pd.Timestamp(start).floor("D")
    last_day = (pd.Timestamp(cap) - pd.Timedelta(microseconds=1)).floor("D")
    grouped = {name: frame for name, frame in daily.groupby("slo", sort=False)}
    for slo in slos.itertuples(index=False):
        frame = grouped.get(slo.name)
        if frame is None:
            continue
        target = float(slo.target)
        window = window_for(slo, settings)
        lo = pd.Timestamp(window.state_start(first_day.to_pydatetime())).floor("D")
        days = pd.date_range(lo, last_day, freq="D")
        series = (
            frame.set_index("day")[["good", "total"]].astype(float).reindex(days, fill_value=0.0)
        )
        good, total = series["good"].to_numpy(), series["total"].to_numpy()
        x = target * total - good
        bad = total - good
        prefix = np.concatenate([[0.0], np.cumsum(x)])
        evaluated = pd.date_range(first_day, last_day, freq="D")
        d = ((evaluated - lo) / DAY).to_numpy().astype(int)
        if window.kind == "rolling" or window.unit is None:
            edge = d - window.days
            inner = prefix[d] - prefix[np.maximum(edge + 1, 0)]
            bound = inner + np.where(edge >= 0, bad[np.maximum(edge, 0)], 0.0) + bad[d]
        else:
            unit = ((_unit_starts(evaluated, window.unit) - lo) / DAY).to_numpy().astype(int)
            bound = prefix[d] - prefix[np.maximum(unit, 0)] + bad[d]
        tolerance = 1e-9 * max(1.0, float(total.max()))
        if (bound >= -tolerance).any():
            out.append(slo.name)
    return out


def exhausted_intervals(
    slos: pd.DataFrame, hourly: pd.DataFrame, start: datetime, cap: datetime, settings: Settings
) -> pd.DataFrame:
    """Per SLO, the stretches of [start, cap) during which its budget was exhausted."""
    instants = evaluation_instants(start, cap)
    if hourly.empty or instants.empty:
        return pd.DataFrame(columns=INTERVAL_COLUMNS)
    rows = []
    by_slo = {name: frame for name, frame in hourly.groupby("slo", sort=False)}
    ends = instants[1:].append(pd.DatetimeIndex([pd.Timestamp(cap)]))
    for slo in slos.itertuples(index=False):
        frame = by_slo.get(slo.name)
        if frame is None:
            continue
        ts = frame["ts"].to_numpy(dtype="datetime64[ns]")
        good_sum = np.concatenate([[0.0], np.cumsum(frame["good"].to_numpy(dtype=float))])
        total_sum = np.concatenate([[0.0], np.cumsum(frame["total"].to_numpy(dtype=float))])
        moments = instants.tz_convert("UTC").tz_localize(None).to_numpy(dtype="datetime64[ns]")
        starts = _state_starts(slo, instants, settings)
        starts = starts.tz_convert("UTC").tz_localize(None).to_numpy(dtype="datetime64[ns]")
        hi = np.searchsorted(ts, moments, side="left")
        lo = np.searchsorted(ts, starts, side="left")
        good = good_sum[hi] - good_sum[lo]
        total = total_sum[hi] - total_sum[lo]
        flags = _exhausted(good, total, float(slo.target))
        for first, last in _runs(flags):
            rows.append((slo.name, slo.service, slo.team, instants[first], ends[last]))
    return pd.DataFrame(rows, columns=INTERVAL_COLUMNS)


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index pairs of the runs of True."""
    if not flags.any():
        return []
    padded = np.concatenate([[False], flags, [False]]).astype(int)
    changes = np.diff(padded)
    firsts = np.flatnonzero(changes == 1)
    lasts = np.flatnonzero(changes == -1) - 1
    return list(zip(firsts.tolist(), lasts.tolist(), strict=True))


def service_freezes(intervals: pd.DataFrame) -> pd.DataFrame:
    """Merge the SLOs' exhausted stretches into each service's freeze intervals:
    `service, team, start, end, slos` (the SLOs exhausted at some point inside)."""
    columns = ["service", "team", "start", "end", "slos"]
    if intervals.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for (service, team), frame in intervals.sort_values("start").groupby(
        ["service", "team"], sort=True
    ):
        current: list = []
        for item in frame.itertuples(index=False):
            if current and item.start <= current[1]:
                current[1] = max(current[1], item.end)
                current[2].add(item.slo)
            else:
                if current:
                    rows.append((service, team, current[0], current[1], sorted(current[2])))
                current = [item.start, item.end, {item.slo}]
        rows.append((service, team, current[0], current[1], sorted(current[2])))
    return pd.DataFrame(rows, columns=columns)


def freeze_deployments(freezes: pd.DataFrame, deployments: pd.DataFrame) -> pd.DataFrame:
    """The production deployments that shipped while their service was frozen, with
    `exempt` True for rollbacks and remediations (which the policy allows)."""
    columns = ["id", "service", "team", "deployed_at", "freeze_start", "freeze_end", "exempt"]
    if freezes.empty or deployments.empty:
        return pd.DataFrame(columns=columns)
    merged = deployments[["id", "service", "team", "deployed_at", "rework"]].merge(
        freezes[["service", "start", "end"]], on="service"
    )
    inside = merged[
        (merged["deployed_at"] >= merged["start"]) & (merged["deployed_at"] < merged["end"])
    ]
    inside = inside.rename(
        columns={"start": "freeze_start", "end": "freeze_end", "rework": "exempt"}
    )
    return inside[columns].sort_values(["deployed_at", "id"]).reset_index(drop=True)


def frozen_hours(freezes: pd.DataFrame) -> float:
    if freezes.empty:
        return 0.0
    return float(((freezes["end"] - freezes["start"]) / timedelta(hours=1)).sum())
