"""The five DORA delivery figures, as pure functions over the frames.

Definitions: metric-definitions.md, "Delivery (DORA)". Only production deployments (the
service's production environment, status `success`) count anywhere here.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import pandas as pd

from metrics.model import Period, Settings
from metrics.stats import group_counts, group_sizes, group_stats, ratio
from metrics.tiers import grade
from metrics.wording import duration

DEPLOYMENT_COLUMNS = [
    "id",
    "service",
    "team",
    "deployed_at",
    "rollback_of",
    "remediation_of",
    "has_changes",
    "failed",
    "incidents",
    "fixed_by",
    "fixed_at",
    "recovered_at",
    "recovery_hours",
    "recovery_left_out",
    "rework",
    "reason",
]


def _present(values: pd.Series) -> pd.Series:
    return values.notna() & (values.astype(object) != "")


def deployment_rows(
    deployments: pd.DataFrame,
    fixers: pd.DataFrame,
    attributions: pd.DataFrame,
    incidents: pd.DataFrame,
    *,
    reasons: bool = True,
) -> pd.DataFrame:
    """Every production deployment of the period with whether it failed, why, and when it
    recovered ("Failed deployment", "Failed deployment recovery time", "Rework rate").

    `attributions` is `attribution.attribute` over `incidents`. With `reasons`, a `reason`
    column says in words why each deployment counts as failed or not.
    """
    rows = deployments[deployments["in_period"]].copy()
    if rows.empty:
        return pd.DataFrame(columns=[*DEPLOYMENT_COLUMNS, "fixed_how"])
    rows["rework"] = (_present(rows["rollback_of"]) & (rows["rollback_of"] != rows["id"])) | (
        _present(rows["remediation_of"]) & (rows["remediation_of"] != rows["id"])
    )

    # (b) a later production deployment names it: the earliest such one recovers it
    named = fixers.merge(
        rows[["id", "deployed_at"]].rename(columns={"id": "target", "deployed_at": "target_at"}),
        on="target",
    )
    named = named[named["deployed_at"] > named["target_at"]]
    named = named.sort_values(["deployed_at", "id"], kind="stable").drop_duplicates("target")
    fix = named.set_index("target")
    rows["fixed_by"] = _lookup(fix["id"], rows["id"])
    rows["fixed_how"] = _lookup(fix["how"], rows["id"])
    rows["fixed_at"] = _lookup(fix["deployed_at"], rows["id"])

    # (a) incidents attributed to it
    linked = attributions[
        attributions["method"].isin(["explicit", "inferred"])
        & attributions["deployment_id"].isin(rows["id"])
    ].astype({"incident_id": object})
    times = incidents[["id", "started_at", "resolved_at"]].rename(columns={"id": "incident_id"})
    linked = linked.merge(times.astype({"incident_id": object}), on="incident_id")
    linked = linked.sort_values(["started_at", "incident_id"], kind="stable")
    by_deployment = linked.groupby("deployment_id", sort=False)
    incident_lists: dict[str, list[str]] = {}
    for deployment, incident in zip(linked["deployment_id"], linked["incident_id"], strict=True):
        incident_lists.setdefault(deployment, []).append(incident)
    rows["incidents"] = [incident_lists.get(key, []) for key in rows["id"]]
    open_incident = linked["resolved_at"].isna().groupby(linked["deployment_id"]).any()
    rows["incident_open"] = _lookup(open_incident, rows["id"]).fillna(False).astype(bool)
    rows["last_resolved"] = _lookup(by_deployment["resolved_at"].max(), rows["id"])

    has_incident = rows["incidents"].str.len() > 0
    rows["failed"] = rows["fixed_by"].notna() | has_incident
    by_incidents = rows["last_resolved"].where(has_incident & ~rows["incident_open"])
    recovered_at = pd.to_datetime(
        rows["fixed_at"].where(rows["fixed_by"].notna(), by_incidents), utc=True
    )
    # Explicit attribution is not bounded in time, so an incident may name a deployment
    # that finished after the incident was already resolved (or one resolved "before" it
    # started): the contract's recovery time would be negative. No recovery happens
    # before the deployment, so that time is left out (neither a recovery nor still
    # waiting) and flagged; data quality lists the incidents behind it.
    left_out = recovered_at.notna() & (recovered_at < rows["deployed_at"])
    rows["recovery_left_out"] = left_out.astype(bool)
    rows["recovered_at"] = recovered_at.where(~left_out)
    rows["recovery_hours"] = (
        rows["recovered_at"] - rows["deployed_at"]
    ).dt.total_seconds() / 3600.0
    rows["reason"] = _reasons(rows, linked) if reasons else ""
    return rows[[*DEPLOYMENT_COLUMNS, "fixed_how"]].reset_index(drop=True)


def _lookup(values: pd.Series, keys: pd.Series) -> pd.Series:
    """`values[key]` for every key (missing: NaN/NaT), keeping the values' dtype (the
    array itself, not a round trip through Python objects: aware times stay aware even
    when none is found)."""
    found = values.reindex(pd.Index(keys.to_numpy(), dtype=object))
    return pd.Series(found.array, index=keys.index)


def _reasons(rows: pd.DataFrame, linked: pd.DataFrame) -> list[str]:
    """Why each deployment failed (or did not), in words."""
    deployed = rows.set_index("id")["deployed_at"]
    parts: dict[str, list[str]] = {}
    for item in linked.itertuples(index=False):
        if item.method == "explicit":
            text = f"{item.incident_id} names it in caused_by_deployment"
            early = deployed[item.deployment_id] - item.started_at
            if early > pd.Timedelta(0):
                # counted as the contract says (explicit attribution has no time bound),
                # but said, since it is likely a wrong id: see data quality
                text += (
                    f", though it started {duration(early)} before it deployed "
                    "(data quality: incidents blaming later deployments)"
                )
        else:
            lag = item.started_at - deployed[item.deployment_id]
            text = (
                f"{item.incident_id} attributed by inference, deployed {duration(lag)} "
                "before the incident on the same service"
            )
        parts.setdefault(item.deployment_id, []).append(text)
    out = []
    for row in rows.itertuples(index=False):
        mine = list(parts.get(row.id, []))
        if isinstance(row.fixed_by, str):
            word = "rolled back" if row.fixed_how == "rollback" else "remediated"
            mine.append(
                f"{word} by {row.fixed_by} {duration(row.fixed_at - row.deployed_at)} later"
            )
        if row.recovery_left_out:
            mine.append(
                f"recovery time left out: the last of its incidents was resolved "
                f"{duration(row.deployed_at - row.last_resolved)} before it deployed"
            )
        if mine:
            out.append(f"{row.id} failed: " + "; ".join(mine))
        else:
            out.append(
                f"{row.id} did not fail: no incident is attributed to it and no later "
                "production deployment rolls it back or remediates it"
            )
    return out


def _graded(
    figure: str, value: float | None, sample: int, noun: str, settings: Settings
) -> dict[str, object]:
    return grade(
        figure,
        value,
        sample,
        year=settings.benchmark_year,
        min_sample=settings.min_sample,
        sample_noun=noun,
    )


def dora_by(
    rows: pd.DataFrame,
    changes: pd.DataFrame,
    periods: Mapping[Hashable, Period],
    settings: Settings,
) -> dict[Hashable, dict[str, Any]]:
    """The `dora` block for every group at once; `rows` (from `deployment_rows`) and
    `changes` carry a `group` column, `periods` names each group's period.

    - "Deployment frequency": the group's production deployments, and per week.
    - "Change lead time": committed_at to first production deployment, median and p90 in
      hours over the changes first deployed in the period; lead times <= 0 left out and
      counted (`excluded_nonpositive`).
    - "Change fail rate": failed / all production deployments.
    - "Failed deployment recovery time": hours from a failed deployment to its earliest
      rollback/remediation, else to the last resolution of its incidents. `failures` is
      the sample behind the median; `unrecovered` counts failed ones still waiting. A
      recovery that would be negative (incidents resolved before the deployment they
      blame) is in neither: left out, flagged in `recovery_left_out`.
    - "Rework rate": deployments that roll back or remediate another / all deployments.
    """
    groups = list(periods)
    keys, change_keys = rows["group"], changes["group"]
    deployments = group_sizes(keys, groups)
    failed_mask = rows["failed"].astype(bool)
    failed = group_counts(failed_mask, keys, groups)
    rework = group_counts(rows["rework"].astype(bool), keys, groups)
    lead_hours = changes["lead_hours"].astype(float)
    lead = group_stats(lead_hours.where(lead_hours > 0), change_keys, groups)
    nonpositive = group_counts(lead_hours <= 0, change_keys, groups)
    recovery_hours = rows["recovery_hours"].astype(float)
    recovered = recovery_hours.where(failed_mask & (recovery_hours >= 0))
    recovery = group_stats(recovered, keys, groups)
    # a recovery left out as negative is not one still waiting
    waiting = failed_mask & recovery_hours.isna() & ~rows["recovery_left_out"].astype(bool)
    unrecovered = group_counts(waiting, keys, groups)
    out: dict[Hashable, dict[str, Any]] = {}
    for group in groups:
        count = deployments[group]
        per_week = periods[group].per_week(count)
        rate = ratio(failed[group], count)
        lead_median, lead_p90, lead_n = lead[group]
        rec_median, rec_p90, rec_n = recovery[group]
        out[group] = {
            "deployment_frequency": {
                "deployments": count,
                "per_week": per_week,
                **_graded("deployment_frequency", per_week, count, "deployments", settings),
            },
            "lead_time": {
                "median_hours": lead_median,
                "p90_hours": lead_p90,
                "changes": lead_n,
                "excluded_nonpositive": nonpositive[group],
                **_graded("lead_time", lead_median, lead_n, "changes", settings),
            },
            "change_failure_rate": {
                "rate": rate,
                "failed": failed[group],
                "deployments": count,
                **_graded("change_failure_rate", rate, count, "deployments", settings),
            },
            "recovery_time": {
                "median_hours": rec_median,
                "p90_hours": rec_p90,
                "failures": rec_n,
                "unrecovered": unrecovered[group],
                **_graded("recovery_time", rec_median, rec_n, "failures", settings),
            },
            "rework_rate": {
                "rate": ratio(rework[group], count),
                "rework": rework[group],
                "deployments": count,
            },
        }
    return out


def dora(
    rows: pd.DataFrame, changes: pd.DataFrame, period: Period, settings: Settings
) -> dict[str, Any]:
    """The `dora` block of one scope and period (see `dora_by`)."""
    return dora_by(rows.assign(group=0), changes.assign(group=0), {0: period}, settings)[0]


def deployment_frequency(rows: pd.DataFrame, period: Period, settings: Settings) -> dict[str, Any]:
    """ "Deployment frequency" of one scope and period (see `dora_by`)."""
    changes = pd.DataFrame({"lead_hours": pd.Series(dtype=float)})
    return dora(rows, changes, period, settings)["deployment_frequency"]
