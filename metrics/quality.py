"""Data-quality findings: rows the figures had to leave out or could not trust.

Each finding is counted in the scorecard and listable with `rows` (and `poise explain
data_quality`), so a surprising figure can be traced to the data behind it.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import pandas as pd

from metrics.stats import group_sizes

FINDINGS = (
    "lead_time_nonpositive",
    "changes_never_deployed",
    "deployments_without_changes",
    "incidents_without_service",
    "incidents_unresolved",
    "incident_times_out_of_order",
    "sli_gaps",
    "slos_without_data",
)


def _blank(values: pd.Series) -> pd.Series:
    return values.isna() | (values.astype(object) == "")


def out_of_order(incidents: pd.DataFrame) -> pd.Series:
    """An incident whose detected/acknowledged/resolved time is before it started."""
    mask = pd.Series(False, index=incidents.index)
    for column in ("detected_at", "acknowledged_at", "resolved_at"):
        mask |= incidents[column].notna() & (incidents[column] < incidents["started_at"])
    return mask


def rows(
    finding: str,
    *,
    changes: pd.DataFrame,
    undeployed: pd.DataFrame,
    deployments: pd.DataFrame,
    incidents: pd.DataFrame,
    gaps: pd.DataFrame,
) -> pd.DataFrame:
    """The rows behind one finding (`deployments` are the period's production ones,
    `incidents` those started in the period in scope)."""
    if finding == "lead_time_nonpositive":
        return changes[changes["lead_hours"] <= 0]
    if finding == "changes_never_deployed":
        return undeployed
    if finding == "deployments_without_changes":
        return deployments[~deployments["has_changes"].astype(bool)]
    if finding == "incidents_without_service":
        return incidents[_blank(incidents["service"])]
    if finding == "incidents_unresolved":
        return incidents[incidents["resolved_at"].isna()]
    if finding == "incident_times_out_of_order":
        return incidents[out_of_order(incidents)]
    if finding == "sli_gaps":
        return gaps[gaps["missing"].fillna(0) > 0]
    if finding == "slos_without_data":
        return gaps[gaps["first_sample"].isna()]
    raise KeyError(finding)


def summary_by(
    groups: Sequence[Hashable], **frames: pd.DataFrame
) -> dict[Hashable, dict[str, Any]]:
    """Counts of every finding per group (every frame has a `group` column); `sli_gaps`
    counts missing hourly buckets, `slos_with_gaps` the SLOs missing any."""
    per: dict[str, dict[Hashable, Any]] = {}
    for finding in FINDINGS:
        found = rows(finding, **frames)
        if finding == "sli_gaps":
            totals = found.groupby("group")["missing"].sum().to_dict() if len(found) else {}
            per[finding] = {group: int(totals.get(group, 0)) for group in groups}
            per["slos_with_gaps"] = group_sizes(found["group"], groups)
        else:
            per[finding] = group_sizes(found["group"], groups)
    return {group: {name: values[group] for name, values in per.items()} for group in groups}
