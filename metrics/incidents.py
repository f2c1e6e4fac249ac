"""Incident figures: count and time to detect / acknowledge / resolve, overall and by
severity and by cause.

Definition: metric-definitions.md, "Incidents and on-call". Each time runs from
`started_at`; an incident without the later timestamp (not yet acknowledged, never
resolved) or with it before `started_at` (bad data, counted in data quality) is left out of
that time's sample, and every median comes with its p90 and sample size.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from metrics.stats import quantile

UNSPECIFIED = "unspecified"
TIMES = (
    # key, column, unit, divisor (seconds per unit)
    ("mttd", "detected_at", "minutes", 60.0),
    ("mtta", "acknowledged_at", "minutes", 60.0),
    ("mttr", "resolved_at", "hours", 3600.0),
)


def durations(incidents: pd.DataFrame) -> pd.DataFrame:
    """Per incident: `mttd` and `mtta` in minutes, `mttr` in hours (None where unknown or
    negative)."""
    out = pd.DataFrame(index=incidents.index)
    for key, column, _unit, divisor in TIMES:
        seconds = (incidents[column] - incidents["started_at"]).dt.total_seconds()
        out[key] = (seconds / divisor).where(seconds >= 0)
    return out


def _block(incidents: pd.DataFrame, times: pd.DataFrame) -> dict[str, Any]:
    block: dict[str, Any] = {"count": len(incidents)}
    for key, _column, unit, _divisor in TIMES:
        values = times.loc[incidents.index, key].dropna()
        block[f"{key}_median_{unit}"] = quantile(values, 0.5)
        block[f"{key}_p90_{unit}"] = quantile(values, 0.9)
        block[f"{key}_n"] = len(values)
    return block


def incident_figures(incidents: pd.DataFrame) -> dict[str, Any]:
    """The `incidents` block: the contract's count and medians, then p90s, sample sizes,
    and the same per severity and per cause (missing ones as `unspecified`)."""
    times = durations(incidents)
    figures = _block(incidents, times)
    for name, column in (("by_severity", "severity"), ("by_cause", "cause")):
        keys = incidents[column].where(
            incidents[column].notna() & (incidents[column].astype(object) != ""), UNSPECIFIED
        )
        figures[name] = {
            str(key): _block(group, times) for key, group in incidents.groupby(keys, sort=True)
        }
    return figures
