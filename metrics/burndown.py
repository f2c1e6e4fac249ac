"""Error-budget burn-down: how an SLO's budget was spent across the window it is reported over.

For the window the scorecard evaluates an SLO over (`window.from` to `window.to`, see
`reliability.evaluate`), the budget is (1 − target) × Σtotal of that window; after each
hourly bucket the remaining share is 1 − (bad events so far) / budget, so the last point
is the scorecard's `budget_remaining`. Beside it, `even_burn` is where the budget would
stand had it been spent evenly over the window's full length (a burn rate of exactly 1);
the forecast of exhaustion is the evaluation's own `forecast_exhausted_at`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select

from metrics.frames import raw_time, read
from metrics.sli import hourly_rows
from poise.warehouse import schema
from poise.warehouse.engine import read_snapshot

COLUMNS = ["ts", "good", "total", "bad", "bad_so_far", "remaining", "even_burn"]
HOUR = timedelta(hours=1)


def burndown(slo: dict[str, Any], samples: pd.DataFrame) -> pd.DataFrame:
    """The burn-down of one evaluated SLO (an entry of the scorecard's `slos`) from its
    hourly samples (`ts, good, total`) in the window; `ts` is the end of each bucket."""
    window = slo["window"]
    start = pd.Timestamp(window["from"])
    end = pd.Timestamp(window["to"])
    full_end = pd.Timestamp(window.get("ends") or window["to"])
    budget = slo.get("budget_events")
    if samples.empty or not budget:
        return pd.DataFrame(columns=COLUMNS)
    frame = samples[(samples["ts"] >= start) & (samples["ts"] < end)].sort_values("ts")
    frame = frame[["ts", "good", "total"]].astype({"good": float, "total": float})
    frame = frame.reset_index(drop=True)
    frame["ts"] = frame["ts"] + HOUR
    frame["bad"] = frame["total"] - frame["good"]
    frame["bad_so_far"] = frame["bad"].cumsum()
    frame["remaining"] = 1.0 - frame["bad_so_far"] / float(budget)
    elapsed = (frame["ts"] - start) / (full_end - start)
    frame["even_burn"] = 1.0 - elapsed.clip(upper=1.0)
    return frame[COLUMNS]


def forecast_line(slo: dict[str, Any]) -> pd.DataFrame:
    """Two points, from the evaluation (`window.to`, budget remaining) to the forecast
    exhaustion (its time, 0); empty when no exhaustion is forecast."""
    forecast = slo.get("forecast_exhausted_at")
    remaining = slo.get("budget_remaining")
    if forecast is None or remaining is None or remaining <= 0:
        return pd.DataFrame(columns=["ts", "remaining"])
    return pd.DataFrame(
        {
            "ts": [pd.Timestamp(slo["window"]["to"]), pd.Timestamp(forecast)],
            "remaining": [float(remaining), 0.0],
        }
    )


def load_burndown(engine: Engine, slo: dict[str, Any]) -> pd.DataFrame:
    """Read the SLO's hourly samples in its window and return its burn-down."""
    window = slo["window"]
    start = pd.Timestamp(window["from"]).to_pydatetime()
    end = pd.Timestamp(window["to"]).to_pydatetime()
    x = schema.sli_samples
    with engine.connect() as connection:
        statement = (
            select(raw_time(connection, x.c.ts), x.c.good, x.c.total)
            .where(x.c.slo == slo["name"], x.c.ts >= start, x.c.ts < end)
            .order_by(x.c.ts)
        )
        samples = read(connection, statement, times=["ts"])
    return burndown(slo, samples)


def spent_since(slo: Mapping[str, Any], burned: pd.DataFrame, start: datetime) -> float | None:
    """The error budget one SLO spent since `start` (a sprint's first instant): the bad events
    of the hourly buckets ending after it, from `burned` (the burn-down of the window ending
    with the sprint, as `burndown` gives it), as a share of that window's budget. Never
    negative; over 1 when the sprint alone spent more than the whole window's budget. Where
    the window began after `start` (a calendar window that reset, or a window shorter than
    the sprint) only the part inside counts.

    The drop in "budget left" from the sprint's start to its end is not this: the window
    rolls, so bad events older than the window stop counting and the level can rise."""
    budget = slo.get("budget_events")
    if not budget or burned.empty:
        return None
    # `ts` is the end of each hourly bucket: a bucket belongs to the sprint when it ends
    # after the sprint began
    inside = burned[burned["ts"] > pd.Timestamp(start)]
    return float(inside["bad"].sum()) / float(budget)


def load_spent(
    engine: Engine, slos: Iterable[Mapping[str, Any]], start: datetime
) -> dict[str, float | None]:
    """`spent_since` of every SLO at once (evaluated SLOs: a scorecard's `slos`), each
    value equal to `spent_since(slo, load_burndown(engine, slo), start)`.

    One read for all SLOs (`sli.hourly_rows`) instead of a burn-down per SLO (a query and
    a frame each: seconds for a team of 100 SLOs), and of the buckets that can end after
    `start` only, not the whole window; the same rows, in the same (ts) order, summed
    the same way per SLO, so each sum is the same to the last bit."""
    spent: dict[str, float | None] = {}
    budgets: dict[str, float] = {}
    windows: dict[str, tuple[datetime, datetime]] = {}
    for slo in slos:
        name, budget = slo["name"], slo.get("budget_events")
        spent[name] = None  # no budget, or no sample in the window: as `spent_since`
        if not budget:
            continue
        budgets[name] = float(budget)
        window = slo["window"]
        windows[name] = (
            pd.Timestamp(window["from"]).to_pydatetime(),
            pd.Timestamp(window["to"]).to_pydatetime(),
        )
    if not windows:
        return spent
    # a bucket (ts is its start) counts when it ends after `start`: ts > start - 1 h
    first = start - HOUR
    with read_snapshot(engine) as connection:
        samples = hourly_rows(
            connection, [(name, max(lo, first), hi) for name, (lo, hi) in windows.items()]
        )
        found = set(samples["slo"])
        # without a bucket in the sprint, an SLO spent 0 if its window holds samples
        # before it, and None (`spent_since` of an empty burn-down) if not
        earlier = [
            (name, lo, min(first, hi))
            for name, (lo, hi) in windows.items()
            if name not in found and lo < first
        ]
        before = set(hourly_rows(connection, earlier)["slo"]) if earlier else set()
    for name in before:
        spent[name] = 0.0
    if samples.empty:
        return spent
    names = samples["slo"].to_numpy()
    bad = samples["total"].to_numpy(dtype=float) - samples["good"].to_numpy(dtype=float)
    inside = (samples["ts"] + HOUR > pd.Timestamp(start)).to_numpy()
    edges = np.flatnonzero(names[1:] != names[:-1]) + 1
    for begin, stop in zip(np.r_[0, edges], np.r_[edges, len(names)], strict=True):
        # per SLO over its own rows in ts order, as `spent_since` sums its frame: a
        # grouped sum adds in another order and can differ in the last bit
        chunk = bad[begin:stop][inside[begin:stop]]
        name = str(names[begin])
        spent[name] = float(pd.Series(chunk, dtype=float).sum()) / budgets[name]
    return spent
