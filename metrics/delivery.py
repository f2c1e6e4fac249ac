"""The five DORA delivery figures, as pure functions over the frames.

Definitions: metric-definitions.md, "Delivery (DORA)". Only production deployments (the
service's production environment, status `success`) count anywhere here.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from metrics.model import Period, Settings
from metrics.stats import quantile, ratio
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
    ].merge(
        incidents[["id", "started_at", "resolved_at"]].rename(columns={"id": "incident_id"}),
        on="incident_id",
    )
    linked = linked.sort_values(["started_at", "incident_id"], kind="stable")
    by_deployment = linked.groupby("deployment_id", sort=False)
    incident_lists = by_deployment["incident_id"].agg(list)
    rows["incidents"] = [
        incident_lists.get(key, []) if len(incident_lists) else [] for key in rows["id"]
    ]
    open_incident = linked["resolved_at"].isna().groupby(linked["deployment_id"]).any()
    rows["incident_open"] = _lookup(open_incident, rows["id"]).fillna(False).astype(bool)
    rows["last_resolved"] = _lookup(by_deployment["resolved_at"].max(), rows["id"])

    has_incident = rows["incidents"].str.len() > 0
    rows["failed"] = rows["fixed_by"].notna() | has_incident
    by_incidents = rows["last_resolved"].where(has_incident & ~rows["incident_open"])
    recovered_at = rows["fixed_at"].where(rows["fixed_by"].notna(), by_incidents)
    rows["recovered_at"] = pd.to_datetime(recovered_at, utc=True)
    rows["recovery_hours"] = (
        rows["recovered_at"] - rows["deployed_at"]
    ).dt.total_seconds() / 3600.0
    rows["reason"] = _reasons(rows, linked) if reasons else ""
    return rows[[*DEPLOYMENT_COLUMNS, "fixed_how"]].reset_index(drop=True)


def _lookup(values: pd.Series, keys: pd.Series) -> pd.Series:
    """`values[key]` for every key (missing: NaN/NaT), keeping the values' dtype."""
    return pd.Series(values.reindex(keys.to_numpy()).to_numpy(), index=keys.index)


def _reasons(rows: pd.DataFrame, linked: pd.DataFrame) -> list[str]:
    """Why each deployment failed (or did not), in words."""
    deployed = rows.set_index("id")["deployed_at"]
    parts: dict[str, list[str]] = {}
    for item in linked.itertuples(index=False):
        if item.method == "explicit":
            text = f"{item.incident_id} names it in caused_by_deployment"
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


def deployment_frequency(rows: pd.DataFrame, period: Period, settings: Settings) -> dict[str, Any]:
    """ "Deployment frequency": the period's production deployments and their rate per week."""
    count = len(rows)
    per_week = count / period.weeks
    return {
        "deployments": count,
        "per_week": float(per_week),
        **_graded("deployment_frequency", per_week, count, "deployments", settings),
    }


def lead_time(changes: pd.DataFrame, settings: Settings) -> dict[str, Any]:
    """ "Change lead time": committed_at to first production deployment, for the changes
    first deployed in the period; lead times <= 0 are left out (and counted)."""
    values = changes["lead_hours"]
    valid = values[values > 0]
    median = quantile(valid, 0.5)
    return {
        "median_hours": median,
        "p90_hours": quantile(valid, 0.9),
        "changes": len(valid),
        "excluded_nonpositive": int((values <= 0).sum()),
        **_graded("lead_time", median, len(valid), "changes", settings),
    }


def change_failure_rate(rows: pd.DataFrame, settings: Settings) -> dict[str, Any]:
    """ "Change fail rate": failed / all production deployments of the period."""
    total = len(rows)
    failed = int(rows["failed"].sum()) if total else 0
    rate = ratio(failed, total)
    return {
        "rate": rate,
        "failed": failed,
        "deployments": total,
        **_graded("change_failure_rate", rate, total, "deployments", settings),
    }


def recovery_time(rows: pd.DataFrame, settings: Settings) -> dict[str, Any]:
    """ "Failed deployment recovery time": median hours from a failed deployment to its
    earliest rollback/remediation, else to the last resolution of its incidents.

    `failures` is the sample behind the median (failed deployments whose recovery is
    known); `unrecovered` counts the failed ones still waiting (an incident unresolved).
    """
    failed = rows[rows["failed"]] if len(rows) else rows
    values = failed["recovery_hours"].astype(float) if len(failed) else pd.Series(dtype=float)
    known = values[values.notna() & (values >= 0)]
    median = quantile(known, 0.5)
    return {
        "median_hours": median,
        "p90_hours": quantile(known, 0.9),
        "failures": len(known),
        "unrecovered": int(values.isna().sum()),
        **_graded("recovery_time", median, len(known), "failures", settings),
    }


def rework_rate(rows: pd.DataFrame) -> dict[str, Any]:
    """ "Rework rate": deployments that roll back or remediate another / all deployments."""
    total = len(rows)
    rework = int(rows["rework"].sum()) if total else 0
    return {"rate": ratio(rework, total), "rework": rework, "deployments": total}


def dora(
    rows: pd.DataFrame, changes: pd.DataFrame, period: Period, settings: Settings
) -> dict[str, Any]:
    """The `dora` block of the scorecard."""
    return {
        "deployment_frequency": deployment_frequency(rows, period, settings),
        "lead_time": lead_time(changes, settings),
        "change_failure_rate": change_failure_rate(rows, settings),
        "recovery_time": recovery_time(rows, settings),
        "rework_rate": rework_rate(rows),
    }
