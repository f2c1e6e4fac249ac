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

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from metrics.model import Settings
from metrics.stats import settled
from metrics.windows import Window, window_for

DAY = pd.Timedelta(days=1)
ONE_DAY = timedelta(days=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NO_DAYS = np.array([], dtype=np.int64)
HOUR = pd.Timedelta(hours=1)
INTERVAL_COLUMNS = ["slo", "service", "team", "start", "end"]


def _exhausted(good: np.ndarray, total: np.ndarray, target: float | np.ndarray) -> np.ndarray:
    """Budget remaining <= 0 (exactly as `reliability.evaluate` computes it)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        remaining = settled(1.0 - (total - good) / ((1.0 - target) * total))
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


def history_start(slos: pd.DataFrame, start: datetime, settings: Settings) -> datetime:
    """How far back samples are needed to evaluate every SLO from `start` on."""
    earliest = start
    for window in {window_for(slo, settings) for slo in slos.itertuples(index=False)}:
        earliest = min(earliest, window.state_start(start))
    return earliest


def candidates(
    slos: pd.DataFrame, daily: pd.DataFrame, start: datetime, cap: datetime, settings: Settings
) -> dict[str, np.ndarray]:
    """For each SLO whose budget may be exhausted at some instant in [start, cap), the UTC
    days holding such instants (as days since 1970-01-01).

    With x = target·total − good per day (budget remaining <= 0 exactly when Σx >= 0 over
    the window) and bad = total − good >= x, any window ending inside day d is covered by
    whole days strictly inside it plus parts of at most two edge days, so
    Σx <= Σ(whole days) x + bad(first edge day) + bad(day d). Where that bound stays below
    zero the SLO cannot be exhausted that day; the days left are evaluated hour by hour.
    Computed for all SLOs at once on a (SLO × day) matrix.
    """
    if daily.empty or slos.empty:
        return {}
    first_day = pd.Timestamp(start).floor("D")
    last_day = (pd.Timestamp(cap) - pd.Timedelta(microseconds=1)).floor("D")
    if last_day < first_day:
        return {}
    windows = [window_for(slo, settings) for slo in slos.itertuples(index=False)]
    lo = min(  # SLOs share a handful of windows: each one's start once
        pd.Timestamp(window.state_start(first_day.to_pydatetime())).floor("D")
        for window in set(windows)
    )
    days = pd.date_range(lo, last_day, freq="D")
    names = slos["name"].tolist()
    wide = daily[daily["slo"].isin(names)]
    position = ((pd.DatetimeIndex(wide["day"]) - lo) / DAY).to_numpy().astype(int)
    inside = (position >= 0) & (position < len(days))
    row = pd.Index(names).get_indexer(wide["slo"])
    good = np.zeros((len(names), len(days)))
    total = np.zeros((len(names), len(days)))
    np.add.at(good, (row[inside], position[inside]), wide["good"].to_numpy(dtype=float)[inside])
    np.add.at(total, (row[inside], position[inside]), wide["total"].to_numpy(dtype=float)[inside])
    target = slos["target"].to_numpy(dtype=float)[:, None]
    x = target * total - good
    bad = total - good
    prefix = np.concatenate([np.zeros((len(names), 1)), np.cumsum(x, axis=1)], axis=1)
    evaluated = pd.date_range(first_day, last_day, freq="D")
    d = ((evaluated - lo) / DAY).to_numpy().astype(int)
    bound = np.empty((len(names), len(d)))
    for window in set(windows):
        rows_of = np.array([w == window for w in windows])
        if window.kind == "rolling" or window.unit is None:
            edge = d - window.days
            part = prefix[rows_of][:, d] - prefix[rows_of][:, edge + 1]
            part += bad[rows_of][:, edge] + bad[rows_of][:, d]
        else:
            unit = ((_unit_starts(evaluated, window.unit) - lo) / DAY).to_numpy().astype(int)
            part = prefix[rows_of][:, d] - prefix[rows_of][:, unit] + bad[rows_of][:, d]
        bound[rows_of] = part
    tolerance = 1e-9 * np.maximum(1.0, total.max(axis=1, initial=0.0))[:, None]
    possible = bound >= -tolerance
    epoch_days = _epoch_days(evaluated)
    return {
        name: epoch_days[possible[index]]
        for index, name in enumerate(names)
        if possible[index].any()
    }


def sample_ranges(
    slos: pd.DataFrame, days: dict[str, np.ndarray], cap: datetime, settings: Settings
) -> list[tuple[str, datetime, datetime]]:
    """The stretches of samples hour-by-hour evaluation of those days needs, per SLO:
    for each day d, from the window start of d's first instant to the end of d."""
    out = []
    by_name = {slo.name: slo for slo in slos.itertuples(index=False)}
    for name, chosen in days.items():
        window = window_for(by_name[name], settings)
        if window.kind == "rolling" or window.unit is None:
            begins = chosen - window.days
        else:
            months = chosen.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
            if window.unit == "quarter":
                months = months - months % 3
            begins = months.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
        merged: list[list[int]] = []
        for begin, day in zip(begins.tolist(), chosen.tolist(), strict=True):
            if merged and begin <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], day + 1)
            else:
                merged.append([begin, day + 1])
        out += [
            (name, EPOCH + begin * ONE_DAY, min(EPOCH + end * ONE_DAY, cap))
            for begin, end in merged
        ]
    return out


def _epoch_days(moments: pd.DatetimeIndex) -> np.ndarray:
    return (
        moments.tz_convert("UTC").tz_localize(None).floor("D").to_numpy(dtype="datetime64[D]")
    ).astype(np.int64)


def exhausted_intervals(
    slos: pd.DataFrame,
    hourly: pd.DataFrame,
    start: datetime,
    cap: datetime,
    settings: Settings,
    days: dict[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """Per SLO, the stretches of [start, cap) during which its budget was exhausted.

    With `days` (from `candidates`), only instants on those days are evaluated (the bound
    rules the others out) and `hourly` need only hold the samples their windows cover.
    All SLOs are evaluated at once: the samples are laid end to end, SLO after SLO, and
    every (SLO, instant) window is two binary searches into one running sum.
    """
    instants = evaluation_instants(start, cap)
    present = set(hourly["slo"])
    names = [name for name in slos["name"] if name in present]
    if hourly.empty or instants.empty or not names:
        return pd.DataFrame(columns=INTERVAL_COLUMNS)
    chosen = slos.set_index("name").loc[names].reset_index()
    windows = [window_for(slo, settings) for slo in chosen.itertuples(index=False)]
    begins = {window: _state_starts_of(window, instants) for window in set(windows)}
    base = min(begun.min() for begun in begins.values())
    frame = hourly[hourly["slo"].isin(names) & (hourly["ts"] >= base)]
    shift = 62 - len(names).bit_length()  # time in the low bits, the SLO above them
    if (pd.Timestamp(cap) - base) // pd.Timedelta(microseconds=1) >= 1 << shift:
        raise ValueError("period too long to evaluate hour by hour")
    code = pd.Index(names).get_indexer(frame["slo"])
    micros = ((frame["ts"] - base) // pd.Timedelta(microseconds=1)).to_numpy(dtype=np.int64)
    order = np.lexsort((micros, code))
    key = (code[order].astype(np.int64) << shift) + micros[order]
    good_sum = np.concatenate([[0.0], np.cumsum(frame["good"].to_numpy(dtype=float)[order])])
    total_sum = np.concatenate([[0.0], np.cumsum(frame["total"].to_numpy(dtype=float)[order])])

    micro = pd.Timedelta(microseconds=1)
    moments = ((instants - base) // micro).to_numpy(dtype=np.int64)
    # which (SLO, instant) pairs to evaluate: all, or those on the SLO's candidate days
    if days is None:
        wanted = np.ones((len(names), len(instants)), dtype=bool)
    else:
        day_of = _epoch_days(instants)
        first_day = int(day_of.min())
        allowed = np.zeros((len(names), int(day_of.max()) - first_day + 1), dtype=bool)
        for index, name in enumerate(names):
            picked = days.get(name, NO_DAYS) - first_day
            allowed[index, picked[(picked >= 0) & (picked < allowed.shape[1])]] = True
        wanted = allowed[:, day_of - first_day]
    slo_of, instant_of = np.nonzero(wanted)  # sorted by SLO, then instant
    starts = np.empty(len(slo_of), dtype=np.int64)
    window_codes = np.array([list(begins).index(w) for w in windows])
    for code_index, begun in enumerate(begins.values()):
        mine = window_codes[slo_of] == code_index
        starts[mine] = ((begun - base) // micro).to_numpy(dtype=np.int64)[instant_of[mine]]
    prefix = slo_of.astype(np.int64) << shift
    hi = np.searchsorted(key, prefix + moments[instant_of], side="left")
    lo = np.searchsorted(key, prefix + starts, side="left")
    good = good_sum[hi] - good_sum[lo]
    total = total_sum[hi] - total_sum[lo]
    target = chosen["target"].to_numpy(dtype=float)[slo_of]
    flags = _exhausted(good, total, target)

    # runs of consecutive exhausted instants of one SLO
    slo_hit, instant_hit = slo_of[flags], instant_of[flags]
    if not len(slo_hit):
        return pd.DataFrame(columns=INTERVAL_COLUMNS)
    breaks = np.ones(len(slo_hit), dtype=bool)
    breaks[1:] = (slo_hit[1:] != slo_hit[:-1]) | (instant_hit[1:] != instant_hit[:-1] + 1)
    first_at = np.flatnonzero(breaks)
    last_at = np.append(first_at[1:] - 1, len(slo_hit) - 1)
    ends = instants[1:].append(pd.DatetimeIndex([pd.Timestamp(cap)]))
    services, teams = chosen["service"].tolist(), chosen["team"].tolist()
    rows = [
        (
            names[slo_hit[first]],
            services[slo_hit[first]],
            teams[slo_hit[first]],
            instants[instant_hit[first]],
            ends[instant_hit[last]],
        )
        for first, last in zip(first_at.tolist(), last_at.tolist(), strict=True)
    ]
    return pd.DataFrame(rows, columns=INTERVAL_COLUMNS)


def _state_starts_of(window: Window, moments: pd.DatetimeIndex) -> pd.DatetimeIndex:
    if window.kind == "rolling" or window.unit is None:
        return moments - pd.Timedelta(days=window.days)
    return _unit_starts(moments, window.unit)


def service_freezes(intervals: pd.DataFrame) -> pd.DataFrame:
    """Merge the SLOs' exhausted stretches into each service's freeze intervals:
    `service, team, start, end, slos` (the SLOs exhausted at some point inside)."""
    columns = ["service", "team", "start", "end", "slos"]
    if intervals.empty:
        return pd.DataFrame(columns=columns)
    rows: list[list] = []
    ordered = intervals.sort_values(["service", "start"], kind="stable")
    for slo, service, team, start, end in zip(
        ordered["slo"],
        ordered["service"],
        ordered["team"],
        ordered["start"],
        ordered["end"],
        strict=True,
    ):
        if rows and rows[-1][0] == service and start <= rows[-1][3]:
            rows[-1][3] = max(rows[-1][3], end)
            rows[-1][4].add(slo)
        else:
            rows.append([service, team, start, end, {slo}])
    return pd.DataFrame([[*row[:4], sorted(row[4])] for row in rows], columns=columns)


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
