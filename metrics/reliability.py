"""SLOs and error budgets: attainment, budget, burn rates, status, alerts and forecast.

Definitions: metric-definitions.md, "Reliability (SLOs and error budgets)". Everything is
computed from sums of SLI samples over windows ending at the evaluation time `at` (the
period's end); an empty window gives None and a `reason`, never a division error or a
flattering 100 %.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from metrics.model import Settings
from metrics.sli import Interval
from metrics.stats import finite, settled
from metrics.windows import Window, window_for

BURN_WINDOWS: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "2h": timedelta(hours=2),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "72h": timedelta(hours=72),
}
REPORTED_BURNS = ("1h", "6h", "24h", "72h")
# SRE Workbook multiwindow, multi-burn-rate alerts: (severity, long, short, threshold).
ALERT_RULES = (
    ("page", "1h", "5m", 14.4),
    ("page", "6h", "30m", 6.0),
    ("ticket", "24h", "2h", 3.0),
    ("ticket", "72h", "6h", 1.0),
)
# SLI buckets are hourly: the finest short window available is one hour.
SHORT_WINDOW_DATA = {"5m": "1h", "30m": "1h", "2h": "2h", "6h": "6h"}
ALERT_NOTE = "SLI buckets are hourly, so the 5m and 30m confirming windows use the last 1h"


def requests_for(
    slos: pd.DataFrame, at: datetime, settings: Settings, gaps: dict[str, tuple[datetime, datetime]]
) -> dict[str, list[Interval]]:
    """The windows each SLO needs summed: its budget window, the burn windows and the
    stretch checked for gaps."""
    out: dict[str, list[Interval]] = {}
    for slo in slos.itertuples(index=False):
        start, _end = window_for(slo, settings).at(at)
        intervals: list[Interval] = [("window", start, at)]
        intervals += [(key, at - length, at) for key, length in BURN_WINDOWS.items()]
        if slo.name in gaps:
            intervals.append(("gaps", *gaps[slo.name]))
        out[slo.name] = intervals
    return out


def burn_rate(good: float, total: float, target: float) -> float | None:
    """(bad / total) / (1 − target); None when no events were seen."""
    if total <= 0:
        return None
    return finite(settled(((total - good) / total) / (1.0 - target)))


def evaluate(
    slo: Any, sums: dict[str, tuple[float, float, int]], at: datetime, settings: Settings
) -> dict[str, Any]:
    """One SLO at `at`: the contract's fields plus the evidence behind them.

    `sums` maps a window key (`window`, `1h` … `72h`) to (Σgood, Σtotal, samples).
    """
    window = window_for(slo, settings)
    target = float(slo.target)
    good, total, samples = sums["window"]
    bad = total - good
    burns = {key: burn_rate(*sums[key][:2], target) for key in BURN_WINDOWS}
    result: dict[str, Any] = {
        "name": slo.name,
        "service": slo.service,
        "team": slo.team,
        "target": target,
        "window_days": int(slo.window_days),
        "window": window.describe(at),
        "sli": None,
        "budget_remaining": None,
        "status": None,
        "burn_rate": {key: burns[key] for key in REPORTED_BURNS},
        "good": float(good),
        "total": float(total),
        "bad": float(bad),
        "samples": int(samples),
        "budget_events": None,
        "budget_minutes": finite((1.0 - target) * window.length(at).total_seconds() / 60.0),
        "reason": None,
        "alert": alert(burns),
        "forecast_exhausted_at": None,
        "forecast_reason": None,
    }
    if total <= 0:
        reason = "no events in the window: attainment and budget are unknown, not 100 %"
        result.update(reason=reason, forecast_reason=reason)
        return result
    budget = (1.0 - target) * total
    remaining = settled(1.0 - bad / budget)
    result.update(
        sli=finite(good / total),
        budget_events=finite(budget),
        budget_remaining=finite(remaining),
    )
    status, forecast, why = _status(window, at, remaining, burns["24h"])
    result.update(status=status, forecast_exhausted_at=forecast, forecast_reason=why)
    return result


def _status(
    window: Window, at: datetime, remaining: float, burn_24h: float | None
) -> tuple[str, datetime | None, str | None]:
    """exhausted / at_risk / ok, and when the budget runs out at the 24 h burn rate.

    Linear projection: with a window of length T of which E has elapsed (E = T for a
    rolling window) and a share C = 1 − remaining spent, the budget lasts
    (T − C·E) / burn more (= remaining·T / burn for a rolling window).
    """
    if remaining <= 0:
        return "exhausted", None, "the budget is already spent"
    if burn_24h is None:
        return "ok", None, "no events in the last 24 h to project from"
    if burn_24h <= 0:
        return "ok", None, "not burning: no bad events in the last 24 h"
    start, end = window.at(at)
    length = window.length(at)
    elapsed = length if window.kind == "rolling" else at - start
    spent = 1.0 - remaining
    lasts = (length - elapsed * spent) / burn_24h
    time_left = length if window.kind == "rolling" else end - at
    forecast = at + lasts
    status = "at_risk" if lasts < time_left else "ok"
    return status, forecast, None


def alert(burns: dict[str, float | None]) -> dict[str, Any]:
    """The multiwindow, multi-burn-rate alert state: page, ticket or none."""
    fired = []
    for severity, long, short, threshold in ALERT_RULES:
        long_rate, short_rate = burns.get(long), burns.get(SHORT_WINDOW_DATA[short])
        if long_rate is None or short_rate is None:
            continue
        if long_rate >= threshold and short_rate >= threshold:
            fired.append(f"{severity}: {threshold:g}× over {long} and {short}")
    state = "page" if any(f.startswith("page") for f in fired) else "ticket" if fired else "none"
    return {"state": state, "fired": fired, "note": ALERT_NOTE}


def evaluate_all(
    slos: pd.DataFrame, sums: pd.DataFrame, at: datetime, settings: Settings
) -> list[dict[str, Any]]:
    """`evaluate` for every SLO, from the long frame of `sli.interval_sums`."""
    table: dict[tuple[str, str], tuple[float, float, int]] = {
        (slo, key): (good, total, samples)
        for slo, key, good, total, samples in zip(
            sums["slo"], sums["key"], sums["good"], sums["total"], sums["samples"], strict=True
        )
    }
    empty = (0.0, 0.0, 0)
    out = []
    for slo in slos.itertuples(index=False):
        keys = ["window", *BURN_WINDOWS]
        out.append(evaluate(slo, {k: table.get((slo.name, k), empty) for k in keys}, at, settings))
    return out


def summarise(slos: list[dict[str, Any]]) -> dict[str, Any]:
    """A scope's SLOs in a few numbers (entries of the scorecard's `slos`):

    - `slos`: how many; `with_data`: how many had events in their window;
    - `met`: SLI at or above target, and `met_share` = met / with_data;
    - `lowest_budget_remaining` and `lowest_budget_slo`: the SLO closest to (or furthest
      past) exhaustion;
    - `exhausted`, `at_risk`: how many have each status, and `worst_status` of them all
      (None when no SLO had data); `alerts`: how many page or ticket.
    """
    evaluated = [slo for slo in slos if slo.get("sli") is not None]
    met = sum(1 for slo in evaluated if slo["sli"] >= slo["target"])
    budgets = [slo for slo in evaluated if slo.get("budget_remaining") is not None]
    lowest = min(budgets, key=lambda slo: (slo["budget_remaining"], slo["name"]), default=None)
    exhausted = sum(1 for slo in slos if slo.get("status") == "exhausted")
    at_risk = sum(1 for slo in slos if slo.get("status") == "at_risk")
    return {
        "slos": len(slos),
        "with_data": len(evaluated),
        "met": met,
        "met_share": met / len(evaluated) if evaluated else None,
        "lowest_budget_remaining": lowest["budget_remaining"] if lowest else None,
        "lowest_budget_slo": lowest["name"] if lowest else None,
        "exhausted": exhausted,
        "at_risk": at_risk,
        "worst_status": "exhausted"
        if exhausted
        else "at_risk"
        if at_risk
        else "ok"
        if evaluated
        else None,
        "alerts": sum(
            1 for slo in slos if (slo.get("alert") or {}).get("state") in ("page", "ticket")
        ),
    }
