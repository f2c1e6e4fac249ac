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
    "incidents_blaming_later_deployments",
    "rework_before_its_target",
    "deployments_without_incident_data",
)

BLAMED_COLUMNS = [
    "id",
    "service",
    "started_at",
    "resolved_at",
    "deployment_id",
    "deployed_at",
    "team",
    "hours_before",
]


def _blank(values: pd.Series) -> pd.Series:
    return values.isna() | (values.astype(object) == "")


def out_of_order(incidents: pd.DataFrame) -> pd.Series:
    """An incident whose detected/acknowledged/resolved time is before it started."""
    mask = pd.Series(False, index=incidents.index)
    for column in ("detected_at", "acknowledged_at", "resolved_at"):
        mask |= incidents[column].notna() & (incidents[column] < incidents["started_at"])
    return mask


def blamed_later(
    attributions: pd.DataFrame, incidents: pd.DataFrame, deployments: pd.DataFrame
) -> pd.DataFrame:
    """Incidents that name, in `caused_by_deployment`, one of `deployments` (the period's
    production ones) which finished after the incident started.

    The contract attributes them anyway ("an incident with `caused_by_deployment` is
    attributed to that deployment", with no time bound), so the deployment counts as
    failed; a deployment cannot have caused what began before it, so the row is most
    likely a wrong id and is listed. One row per incident, in the period and scope of the
    blamed deployment (whose change fail rate it moves): `team` is the deployment's team,
    `hours_before` how long before the deployment the incident started.
    """
    explicit = attributions[attributions["method"] == "explicit"]
    named = dict(zip(explicit["incident_id"], explicit["deployment_id"], strict=True))
    # plain lookups over the few explicit links rather than merges of whole frames: this
    # runs on every scorecard, and mostly finds nothing
    blamed = deployments.loc[
        deployments["id"].isin(list(named.values())), ["id", "deployed_at", "team"]
    ]
    deployed = {row.id: (row.deployed_at, row.team) for row in blamed.itertuples(index=False)}
    found = incidents.loc[
        incidents["id"].isin(list(named)), ["id", "service", "started_at", "resolved_at"]
    ]
    records = [
        {
            "id": row.id,
            "service": row.service,
            "started_at": row.started_at,
            "resolved_at": row.resolved_at,
            "deployment_id": named[row.id],
            "deployed_at": deployed[named[row.id]][0],
            "team": deployed[named[row.id]][1],
            "hours_before": (deployed[named[row.id]][0] - row.started_at).total_seconds() / 3600,
        }
        for row in found.itertuples(index=False)
        if named[row.id] in deployed and deployed[named[row.id]][0] > row.started_at
    ]
    frame = pd.DataFrame(records, columns=BLAMED_COLUMNS)
    return frame.sort_values(["started_at", "id"], kind="stable").reset_index(drop=True)


def rows(
    finding: str,
    *,
    changes: pd.DataFrame,
    undeployed: pd.DataFrame,
    deployments: pd.DataFrame,
    incidents: pd.DataFrame,
    gaps: pd.DataFrame,
    blamed: pd.DataFrame,
    rework_targets: pd.DataFrame,
    services: pd.DataFrame,
) -> pd.DataFrame:
    """The rows behind one finding (`deployments` are the period's production ones,
    `incidents` those started in the period in scope, `blamed` is `blamed_later`,
    `rework_targets` the period's rework deployments with when their target deployed,
    `services` those in scope with `records_incidents`)."""
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
    if finding == "incidents_blaming_later_deployments":
        return blamed
    if finding == "rework_before_its_target":
        # rework rate counts these ("name another"), change fail rate does not count
        # their target as failed ("a *later* production deployment names it"): the two
        # figures disagree on these rows, so they are listed (a tie in time is not later)
        early = rework_targets[rework_targets["target_at"] >= rework_targets["deployed_at"]]
        return early.drop_duplicates(["id", "target"])  # one row even if it names it twice
    if finding == "deployments_without_incident_data":
        # counted as the contract says, but "not failed" only means no rollback or fix named
        # them: no incident source speaks for their service
        silent = services.loc[~services["records_incidents"].astype(bool), "name"]
        return deployments[deployments["service"].isin(silent)]
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
