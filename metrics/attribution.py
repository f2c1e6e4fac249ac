"""Incident attribution: which production deployment, if any, an incident is blamed on.

Definition: metric-definitions.md, "Incident attribution".

- explicit: the incident names a deployment in `caused_by_deployment`;
- inferred: it names none and has no `cause`; it goes to the latest production deployment
  of its own service with `deployed_at` in `[started_at − window, started_at]` (both ends
  included; ties go to the greater deployment id, so the answer never depends on row order);
- none: anything else, with the reason (a known cause, no service, no deployment in the
  window).

Every row carries the reason in words, which is what `poise explain` prints and what
`refresh_attributions` stores in the `attributions` table.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from datetime import timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select

from metrics.frames import production, raw_time, read, sort_rows
from metrics.model import Settings
from metrics.stats import group_counts
from metrics.wording import duration
from poise.timeutil import utcnow
from poise.warehouse import schema
from poise.warehouse.upsert import upsert_rows

COLUMNS = ["incident_id", "deployment_id", "method", "reason", "lag_hours"]


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value == "":
        return None
    return str(value)


def attribute(
    incidents: pd.DataFrame, deployments: pd.DataFrame, window: timedelta
) -> pd.DataFrame:
    """One row per incident: `incident_id`, `deployment_id`, `method`
    (explicit | inferred | none), `reason`, `lag_hours` (deployment to incident start).

    `incidents` needs id, service, started_at, caused_by_deployment, cause;
    `deployments` the production deployments: id, service, deployed_at.
    """
    if incidents.empty:
        return pd.DataFrame(columns=COLUMNS)
    frame = incidents[["id", "service", "started_at", "caused_by_deployment", "cause"]].copy()
    frame["caused_by_deployment"] = frame["caused_by_deployment"].map(_text)
    frame["cause"] = frame["cause"].map(_text)
    frame["service"] = frame["service"].map(_text)
    explicit = frame["caused_by_deployment"].notna()
    known_cause = ~explicit & frame["cause"].notna()
    no_service = ~explicit & ~known_cause & frame["service"].isna()
    open_ = ~explicit & ~known_cause & ~no_service

    inferred = _infer(frame[open_], deployments, window)
    # plain object columns: pandas' arrow strings make the isin() lookups downstream slow
    out = pd.DataFrame(
        {
            "incident_id": frame["id"].astype(object),
            "deployment_id": frame["caused_by_deployment"].astype(object),
            "method": pd.Series("none", index=frame.index, dtype=object),
            "reason": pd.Series("", index=frame.index, dtype=object),
            "lag_hours": float("nan"),
        },
        index=frame.index,
    )
    out.loc[explicit, "method"] = "explicit"
    out.loc[explicit, "reason"] = [
        f"{incident} names {deployment} in caused_by_deployment"
        for incident, deployment in zip(
            frame.loc[explicit, "id"], frame.loc[explicit, "caused_by_deployment"], strict=True
        )
    ]
    out.loc[known_cause, "reason"] = [
        f"cause is {cause!r}: an incident with a known cause is never attributed by inference"
        for cause in frame.loc[known_cause, "cause"]
    ]
    out.loc[no_service, "reason"] = "no service, so no deployment to infer it from"
    window_text = f"{window.total_seconds() / 3600:g} h"
    if not inferred.empty:
        found = inferred["deployment_id"].notna()
        hit, miss = inferred.index[found], inferred.index[~found]
        out.loc[hit, "method"] = "inferred"
        out.loc[hit, "deployment_id"] = inferred.loc[hit, "deployment_id"]
        out.loc[hit, "lag_hours"] = inferred.loc[hit, "lag_hours"]
        out.loc[hit, "reason"] = [
            f"{deployment} is the latest production deployment of {service} in the "
            f"{window_text} before {incident} started (deployed {duration(lag)} before it)"
            for deployment, service, incident, lag in zip(
                inferred.loc[hit, "deployment_id"],
                frame.loc[hit, "service"],
                frame.loc[hit, "id"],
                inferred.loc[hit, "lag_hours"],
                strict=True,
            )
        ]
        out.loc[miss, "reason"] = [
            f"no production deployment of {service} in the {window_text} before it started"
            for service in frame.loc[miss, "service"]
        ]
    return out.reset_index(drop=True)


def _infer(open_: pd.DataFrame, deployments: pd.DataFrame, window: timedelta) -> pd.DataFrame:
    """For each open incident, the latest same-service deployment within the window."""
    if open_.empty:
        return pd.DataFrame(columns=["deployment_id", "lag_hours"], index=open_.index)
    left = open_[["service", "started_at"]].copy()
    left["_row"] = open_.index
    left = left.sort_values("started_at", kind="stable")
    right = sort_rows(  # the loaded deployments come in this order already
        deployments[["id", "service", "deployed_at"]].rename(columns={"id": "deployment_id"}),
        ["deployed_at", "deployment_id"],
    )
    right = right[right["service"].isin(left["service"])].copy()
    left["service"] = left["service"].astype(object)
    right["service"] = right["service"].astype(object)
    right["deployed_at"] = right["deployed_at"].astype(left["started_at"].dtype)
    merged = pd.merge_asof(
        left,
        right,
        left_on="started_at",
        right_on="deployed_at",
        by="service",
        direction="backward",
        allow_exact_matches=True,
        tolerance=pd.Timedelta(window),
    )
    merged["lag_hours"] = (merged["started_at"] - merged["deployed_at"]).dt.total_seconds() / 3600
    return merged.set_index("_row")[["deployment_id", "lag_hours"]].reindex(open_.index)


def counts_by(
    attributions: pd.DataFrame, keys: pd.Series, groups: Sequence[Hashable]
) -> dict[Hashable, dict[str, int]]:
    """`explicit`, `inferred`, `unattributed` per group (`keys` aligned with the rows)."""
    methods = attributions["method"]
    per = {
        name: group_counts(methods == method, keys, groups)
        for name, method in (
            ("explicit", "explicit"),
            ("inferred", "inferred"),
            ("unattributed", "none"),
        )
    }
    return {group: {name: per[name][group] for name in per} for group in groups}


def counts(attributions: pd.DataFrame) -> dict[str, int]:
    """How one scope's incidents were attributed (see `counts_by`)."""
    keys = pd.Series(0, index=attributions.index)
    return counts_by(attributions, keys, [0])[0]


def refresh_attributions(engine: Engine, settings: Settings) -> dict[str, int]:
    """Recompute every incident's attribution and store it (with its reason) in
    `attributions`. Call after import or sync; returns the counts by method."""
    i, d, s = schema.incidents, schema.deployments, schema.services
    with engine.connect() as connection:
        incidents = read(
            connection,
            select(
                i.c.id,
                i.c.service,
                raw_time(connection, i.c.started_at),
                i.c.caused_by_deployment,
                i.c.cause,
            ),
            times=["started_at"],
        )
        deployments = read(
            connection,
            select(d.c.id, d.c.service, raw_time(connection, d.c.deployed_at))
            .join(s, s.c.name == d.c.service)
            .where(production(d, s)),
            times=["deployed_at"],
        )
    result = attribute(incidents, deployments, settings.attribution_window)
    now = utcnow()
    rows = [
        {
            "incident_id": row.incident_id,
            "deployment_id": row.deployment_id if isinstance(row.deployment_id, str) else None,
            "method": row.method,
            "reason": row.reason,
            "computed_at": now,
        }
        for row in result.itertuples(index=False)
    ]
    with engine.begin() as connection:
        upsert_rows(connection, schema.attributions, rows, count=False)
    return counts(result)
