"""Error budget burned per incident and per attributed deployment.

An incident burns the bad events its service's SLOs recorded while it lasted (the hourly
buckets overlapping [started_at, resolved_at); an open incident runs to the evaluation
time), as a share of each SLO's error budget in the window reported at the period's end.
A deployment burns what its attributed incidents burned.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from metrics.stats import finite

INCIDENT_COLUMNS = ["incident_id", "slo", "bad_events", "budget_share"]
DEPLOYMENT_COLUMNS = ["deployment_id", "slo", "incidents", "bad_events", "budget_share"]


def incident_budget(bad: pd.DataFrame, evaluated: list[dict[str, Any]]) -> pd.DataFrame:
    """Per incident and SLO: bad events during it and their share of the window budget
    (None when the window has no budget to share, e.g. no traffic)."""
    if bad.empty:
        return pd.DataFrame(columns=INCIDENT_COLUMNS)
    budgets = {slo["name"]: slo["budget_events"] for slo in evaluated}
    frame = bad[bad["slo"].isin(budgets)].copy()
    frame["bad_events"] = frame["bad"].astype(float)
    frame["budget_share"] = [
        finite(value / budgets[slo]) if budgets[slo] else None
        for slo, value in zip(frame["slo"], frame["bad_events"], strict=True)
    ]
    return frame[INCIDENT_COLUMNS].reset_index(drop=True)


def deployment_budget(per_incident: pd.DataFrame, attributions: pd.DataFrame) -> pd.DataFrame:
    """Per deployment and SLO: the sum over the incidents attributed to it (None when any
    of those shares is unknown)."""
    linked = attributions[attributions["method"].isin(["explicit", "inferred"])]
    if per_incident.empty or linked.empty:
        return pd.DataFrame(columns=DEPLOYMENT_COLUMNS)
    merged = per_incident.merge(linked[["incident_id", "deployment_id"]], on="incident_id")
    if merged.empty:
        return pd.DataFrame(columns=DEPLOYMENT_COLUMNS)
    out = _totals(merged, ["deployment_id", "slo"], "incident_id", "incidents")
    return out[DEPLOYMENT_COLUMNS]


def _totals(frame: pd.DataFrame, keys: list[str], id_column: str, count_key: str) -> pd.DataFrame:
    """Counts and sums per group. Sums use math.fsum, which does not depend on the order
    the rows came in, so SQLite and PostgreSQL give the same figures to the last bit."""
    shares = pd.to_numeric(frame["budget_share"])
    grouped = frame.assign(budget_share=shares).groupby(keys, sort=True)
    out = grouped.agg(
        **{count_key: (id_column, "nunique")},
        bad_events=("bad_events", math.fsum),
        budget_share=("budget_share", math.fsum),
    )
    unknown = shares.isna().groupby([frame[k] for k in keys]).any()
    out["budget_share"] = (
        out["budget_share"].astype(object).where(~unknown.reindex(out.index), None)
    )
    return out.reset_index()


def summarise(frame: pd.DataFrame, id_column: str, count_key: str) -> dict[str, dict[str, Any]]:
    """Per SLO: how many incidents (or deployments) burned its budget, and how much."""
    if frame.empty:
        return {}
    totals = _totals(frame, ["slo"], id_column, count_key)
    return {
        str(row["slo"]): {
            count_key: int(row[count_key]),
            "bad_events": float(row["bad_events"]),
            "budget_share": finite(row["budget_share"]),
        }
        for row in totals.to_dict("records")
    }
