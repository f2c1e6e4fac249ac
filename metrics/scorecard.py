"""The scorecard: every figure of one period and scope, in the shape of the contract.

`scorecard` answers for one scope; `team_scorecards` answers for every team from a single
load, grouped in pandas, which is what keeps a whole organisation's quarter fast. Both
assemble the same document through `assemble`, so a team's figures are identical whichever
way they were asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from metrics import attribution, budget, delivery, people, policy, quality
from metrics.frames import Frames, load
from metrics.incidents import incident_figures
from metrics.model import Period, Scope, Settings
from metrics.slo_data import Reliability, evaluation_cap, load_reliability
from metrics.stats import to_jsonable
from poise.timeutil import ensure_utc, utcnow
from poise.warehouse.engine import read_snapshot


@dataclass
class Basis:
    """The row-level results every figure is computed from (one load, one scope)."""

    frames: Frames
    reliability: Reliability
    attributions: pd.DataFrame  # one row per loaded incident
    deployments: pd.DataFrame  # the period's production deployments, failed or not, why
    incident_budget: pd.DataFrame  # per incident and SLO
    deployment_budget: pd.DataFrame  # per period deployment and SLO
    freeze_deployments: pd.DataFrame
    cap: datetime  # hour-by-hour evaluation stops here (the period end, or now)

    def for_team(self, team: str) -> Basis:
        frames = self.frames.for_team(team)
        slo_names = set(frames.slos["name"])
        return replace(
            self,
            frames=frames,
            reliability=self.reliability.for_team(team, slo_names),
            attributions=self.attributions[
                self.attributions["incident_id"].isin(frames.incidents["id"])
            ],
            deployments=self.deployments[self.deployments["team"] == team],
            incident_budget=self.incident_budget[self.incident_budget["slo"].isin(slo_names)],
            deployment_budget=self.deployment_budget[self.deployment_budget["slo"].isin(slo_names)],
            freeze_deployments=self.freeze_deployments[self.freeze_deployments["team"] == team],
        )

    @property
    def period_incidents(self) -> pd.DataFrame:
        incidents = self.frames.incidents
        return incidents[incidents["in_period"].astype(bool)]


def compute(
    engine: Engine,
    period: Period,
    scope: Scope,
    settings: Settings,
    *,
    now: datetime | None = None,
    reasons: bool = False,
) -> Basis:
    """Read once and compute the row-level basis of every figure."""
    moment = ensure_utc(now) if now is not None else utcnow()
    with read_snapshot(engine) as connection:  # one state, even while a sync writes
        frames = load(connection, period, scope, settings)
        rel = load_reliability(
            connection,
            frames.slos,
            period,
            settings,
            frames.incidents["id"].tolist(),
            moment,
        )
    attributions = attribution.attribute(
        frames.incidents, frames.deployments, settings.attribution_window
    )
    rows = delivery.deployment_rows(
        frames.deployments, frames.fixers, attributions, frames.incidents, reasons=reasons
    )
    per_incident = budget.incident_budget(rel.incident_bad, rel.evaluated)
    per_deployment = budget.deployment_budget(
        per_incident, attributions[attributions["deployment_id"].isin(rows["id"])]
    )
    return Basis(
        frames=frames,
        reliability=rel,
        attributions=attributions,
        deployments=rows,
        incident_budget=per_incident,
        deployment_budget=per_deployment,
        freeze_deployments=policy.freeze_deployments(rel.freezes, rows),
        cap=evaluation_cap(period, moment),
    )


def assemble(basis: Basis, settings: Settings) -> dict[str, Any]:
    """The scorecard document of a basis: the contract's keys, then the extras."""
    frames = basis.frames
    period = frames.period
    incidents = basis.period_incidents
    burned_incidents = basis.incident_budget[
        basis.incident_budget["incident_id"].isin(incidents["id"])
    ]
    by_incident = budget.summarise(burned_incidents, "incident_id", "incidents")
    by_deployment = budget.summarise(basis.deployment_budget, "deployment_id", "deployments")
    slos = []
    for slo in basis.reliability.evaluated:
        entry = dict(slo)
        entry["burned_by_incidents"] = by_incident.get(slo["name"], _nothing("incidents"))
        entry["burned_by_deployments"] = by_deployment.get(slo["name"], _nothing("deployments"))
        slos.append(entry)
    document = {
        "period": period.as_json(),
        "scope": frames.scope.as_json(),
        "dora": delivery.dora(basis.deployments, frames.changes, period, settings),
        "incidents": incident_figures(incidents),
        "slos": slos,
        "attribution": attribution.counts(
            basis.attributions[basis.attributions["incident_id"].isin(incidents["id"])]
        ),
        "budget_policy": _policy(basis),
        "people": {
            "toil": people.toil(frames.toil, frames.teams, period, frames.scope, settings),
            "oncall": people.oncall(frames.pages, period),
        },
        "data_quality": quality.summary(**quality_frames(basis)),
        "settings": {
            "benchmark_year": settings.benchmark_year,
            "attribution_window_hours": settings.window_hours,
            "min_sample": settings.min_sample,
            "slo_window": settings.slo_window,
        },
    }
    return to_jsonable(document)


def quality_frames(basis: Basis) -> dict[str, pd.DataFrame]:
    return {
        "changes": basis.frames.changes,
        "undeployed": basis.frames.undeployed,
        "deployments": basis.deployments,
        "incidents": basis.period_incidents,
        "gaps": basis.reliability.gaps,
    }


def _nothing(key: str) -> dict[str, Any]:
    return {key: 0, "bad_events": 0.0, "budget_share": 0.0}


def _policy(basis: Basis) -> dict[str, Any]:
    freezes = basis.reliability.freezes
    during = basis.freeze_deployments
    services = []
    for (service, team), frame in freezes.groupby(["service", "team"], sort=True):
        mine = during[during["service"] == service]
        services.append(
            {
                "service": service,
                "team": team,
                "intervals": [
                    {"from": row.start, "to": row.end, "slos": list(row.slos)}
                    for row in frame.itertuples(index=False)
                ],
                "frozen_hours": policy.frozen_hours(frame),
                "deployments": len(mine),
                "exempt": int(mine["exempt"].sum()),
            }
        )
    exhausted = sorted(
        {slo["service"] for slo in basis.reliability.evaluated if slo["status"] == "exhausted"}
    )
    return {
        "frozen_services": services,
        "deployments_during_freeze": len(during),
        "exempt": int(during["exempt"].sum()) if len(during) else 0,
        "frozen_at_end": exhausted,
        "evaluated_until": basis.cap,
    }


def scorecard(
    engine: Engine,
    period: Period,
    scope: Scope | None = None,
    settings: Settings | None = None,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Every figure for one period and scope, as `poise metrics --format json` prints it."""
    settings = settings or Settings()
    basis = compute(engine, period, scope or Scope(), settings, now=now)
    return assemble(basis, settings)


def team_scorecards(
    engine: Engine,
    period: Period,
    settings: Settings | None = None,
    *,
    now: datetime | None = None,
) -> dict[str, dict[str, Any]]:
    """The scorecard of every team, from one load grouped by team."""
    settings = settings or Settings()
    basis = compute(engine, period, Scope(), settings, now=now)
    teams = sorted(basis.frames.teams["name"].tolist())
    return {team: assemble(basis.for_team(team), settings) for team in teams}
