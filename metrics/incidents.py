"""Incident figures: count and time to detect / acknowledge / resolve, overall and by
severity and by cause.

Definition: metric-definitions.md, "Incidents and on-call". Each time runs from
`started_at`; an incident without the later timestamp (not yet acknowledged, never
resolved) or with it before `started_at` (bad data, counted in data quality) is left out of
that time's sample, and every median comes with its p90 and sample size.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import pandas as pd

from metrics.stats import finite

UNSPECIFIED = "unspecified"
TIMES = (
    # key, column, unit, seconds per unit
    ("mttd", "detected_at", "minutes", 60.0),
    ("mtta", "acknowledged_at", "minutes", 60.0),
    ("mttr", "resolved_at", "hours", 3600.0),
)
KEYS = [key for key, *_ in TIMES]
NO_INCIDENTS_RECORDED = (
    "no incident on record for these services: no incident source synced or imported"
)


def durations(incidents: pd.DataFrame) -> pd.DataFrame:
    """Per incident: `mttd` and `mtta` in minutes, `mttr` in hours (NaN where unknown or
    negative)."""
    out = pd.DataFrame(index=incidents.index)
    for key, column, _unit, divisor in TIMES:
        seconds = (incidents[column] - incidents["started_at"]).dt.total_seconds()
        out[key] = (seconds / divisor).where(seconds >= 0)
    return out


def _label(values: pd.Series) -> pd.Series:
    blank = values.isna() | (values.astype(object) == "")
    return values.astype(object).where(~blank, UNSPECIFIED)


def _empty_block() -> dict[str, Any]:
    block: dict[str, Any] = {"count": 0}
    for key, _column, unit, _divisor in TIMES:
        block.update({f"{key}_median_{unit}": None, f"{key}_p90_{unit}": None, f"{key}_n": 0})
    return block


def _blocks(frame: pd.DataFrame, keys: list[str]) -> dict[Any, dict[str, Any]]:
    """One block (count, medians, p90s, sample sizes) per combination of `keys`."""
    if frame.empty:
        return {}
    grouped = frame.groupby(keys, sort=True, dropna=True)
    sizes = grouped.size().to_dict()
    counts = grouped[KEYS].count().to_dict("index")
    spread = grouped[KEYS].quantile([0.5, 0.9]).unstack(-1).to_dict("index")
    out = {}
    for key, size in sizes.items():
        block: dict[str, Any] = {"count": int(size)}
        for name, _column, unit, _divisor in TIMES:
            block[f"{name}_median_{unit}"] = finite(spread[key][(name, 0.5)])
            block[f"{name}_p90_{unit}"] = finite(spread[key][(name, 0.9)])
            block[f"{name}_n"] = int(counts[key][name])
        out[key] = block
    return out


def incident_figures_by(
    incidents: pd.DataFrame,
    groups: Sequence[Hashable],
    recorded: Mapping[Hashable, bool] | None = None,
) -> dict[Hashable, dict[str, Any]]:
    """The `incidents` block for every group (`incidents` has a `group` column): the
    contract's count and medians, then p90s, sample sizes, and the same per severity and
    per cause (missing ones as `unspecified`). A group whose services never recorded an
    incident (`recorded` False) has no count: 0 would read as a calm period, `reason` says
    why."""
    frame = durations(incidents)
    frame["group"] = incidents["group"].to_numpy()
    frame["severity"] = _label(incidents["severity"]).to_numpy()
    frame["cause"] = _label(incidents["cause"]).to_numpy()
    overall = _blocks(frame, ["group"])
    severity = _blocks(frame, ["group", "severity"])
    cause = _blocks(frame, ["group", "cause"])
    out = {}
    for group in groups:
        key = (group,)
        block = overall.get(key) or overall.get(group) or _empty_block()
        block = dict(block)
        known = block["count"] > 0 or recorded is None or recorded.get(group, True)
        if not known:
            block["count"] = None
        block["reason"] = None if known else NO_INCIDENTS_RECORDED
        block["by_severity"] = {k[1]: v for k, v in severity.items() if k[0] == group}
        block["by_cause"] = {k[1]: v for k, v in cause.items() if k[0] == group}
        out[group] = block
    return out


def incident_figures(incidents: pd.DataFrame) -> dict[str, Any]:
    """The `incidents` block of one scope (see `incident_figures_by`)."""
    return incident_figures_by(incidents.assign(group=0), [0])[0]
