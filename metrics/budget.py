"""Error budget burned per incident and per attributed deployment.

An incident burns the bad events its service's SLOs recorded while it lasted (the hourly
buckets overlapping [started_at, resolved_at); an open incident runs to the evaluation
time), as a share of each SLO's error budget in the window reported at the period's end.
A deployment burns what its attributed incidents burned.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
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
    the rows came in, so SQLite and PostgreSQL give the same figures to the last bit.

    pandas' groupby finds the groups (sorted by `keys`) and counts; the sums are one
    `fsum` per group over plain lists, not a pandas aggregation calling Python per group."""
    shares = pd.to_numeric(frame["budget_share"])
    grouped = frame.groupby(keys, sort=True)
    codes = grouped.ngroup().fillna(-1).to_numpy(dtype=np.int64)
    out = pd.DataFrame(index=grouped.size().index)
    kept = np.flatnonzero(codes >= 0)  # rows with a null key belong to no group
    # distinct ids per group (`nunique`): distinct (group, id) pairs, null ids left out
    ids = pd.factorize(frame[id_column])[0]
    named = kept[ids[kept] >= 0]
    width = max(int(ids.max(initial=-1)) + 1, 1)
    pairs = np.unique(codes[named] * width + ids[named])
    out[count_key] = np.bincount(pairs // width, minlength=len(out))
    order = kept[np.argsort(codes[kept], kind="stable")]
    bounds = np.searchsorted(codes[order], np.arange(len(out) + 1)).tolist()
    bad = frame["bad_events"].to_numpy(dtype=float)[order].tolist()
    share = shares.to_numpy(dtype=float)[order].tolist()
    spans = list(itertools.pairwise(bounds))
    out["bad_events"] = [math.fsum(bad[lo:hi]) for lo, hi in spans]
    out["budget_share"] = [math.fsum(share[lo:hi]) for lo, hi in spans]
    unknown = np.bincount(codes[kept], weights=shares.isna().to_numpy()[kept], minlength=len(out))
    out["budget_share"] = out["budget_share"].astype(object).where(unknown == 0, None)
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
