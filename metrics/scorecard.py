"""The scorecard: every figure of one period and scope, in the shape of the contract.

`scorecard` answers for one scope; `team_scorecards` answers for every team from a single
load, grouped in pandas, which is what keeps a whole organisation's quarter fast. Both
assemble the same document through `assemble`, so a team's figures are identical whichever
way they were asked for.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine

from metrics import attribution, budget, delivery, people, policy, quality
from metrics.frames import Frames, collector_paused, load
from metrics.incidents import incident_figures_by
from metrics.model import Period, Scope, Settings
from metrics.slo_data import Reliability, evaluation_cap, load_reliability
from metrics.stats import to_jsonable
from poise.timeutil import ensure_utc, utcnow
from poise.warehouse.engine import read_consistently


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
    with collector_paused():
        return _compute(engine, period, scope, settings, moment, reasons)


def _compute(
    engine: Engine,
    period: Period,
    scope: Scope,
    settings: Settings,
    moment: datetime,
    reasons: bool,
) -> Basis:

    def read(connection: Connection) -> tuple[Frames, Reliability]:
        frames = load(connection, period, scope, settings)
        incident_ids = frames.incidents["id"].tolist()
        return frames, load_reliability(
            connection, frames.slos, period, settings, incident_ids, moment
        )

    # one state, even while a sync writes
    frames, rel = read_consistently(engine, read)
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


@dataclass
class Grouping:
    """How a basis is cut into scorecards: a group key for every row-level frame."""

    groups: list[Hashable]
    periods: dict[Hashable, Period]
    scopes: dict[Hashable, Scope]
    capacity: dict[Hashable, people.Capacity]
    column: str | None  # the frames' column holding the group (None: one group, 0)
    # whether each group ever recorded an incident (without one its count is no data)
    incidents_recorded: dict[Hashable, bool]

    def keys(self, frame: pd.DataFrame) -> pd.Series:
        if self.column is None:
            return pd.Series(0, index=frame.index)
        return frame[self.column]

    def tag(self, frame: pd.DataFrame) -> pd.DataFrame:
        # the keys as a Series (same index): no copy, and no re-inferring of their dtype
        return frame.assign(group=self.keys(frame))

    @classmethod
    def single(cls, basis: Basis) -> Grouping:
        frames = basis.frames
        owner = None
        if frames.scope.service is not None and len(frames.teams):
            owner = str(frames.teams["name"].iloc[0])
        return cls(
            groups=[0],
            periods={0: frames.period},
            scopes={0: frames.scope},
            capacity={0: people.Capacity.of(frames.teams, owner=owner)},
            column=None,
            incidents_recorded={0: frames.records_incidents},
        )

    @classmethod
    def by_team(cls, basis: Basis) -> Grouping:
        frames = basis.frames
        teams = sorted(frames.teams["name"].tolist())
        return cls(
            groups=list(teams),
            periods=dict.fromkeys(teams, frames.period),
            scopes={team: Scope(team=team) for team in teams},
            capacity=people.Capacity.each(frames.teams),
            column="team",
            incidents_recorded=_recording_incidents(frames.services, teams),
        )


def _recording_incidents(services: pd.DataFrame, teams: list[str]) -> dict[Hashable, bool]:
    """Per team: whether any of its services ever recorded an incident."""
    recording = set(services.loc[services["records_incidents"].astype(bool), "team"])
    return {team: team in recording for team in teams}


def assemble_groups(
    basis: Basis, grouping: Grouping, settings: Settings
) -> dict[Hashable, dict[str, Any]]:
    """The scorecard document of every group of a basis, each figure computed for all
    groups at once."""
    groups, periods = grouping.groups, grouping.periods
    incidents = grouping.tag(basis.period_incidents)
    links = basis.attributions.merge(
        incidents[["id", "group"]].rename(columns={"id": "incident_id"}), on="incident_id"
    )
    dora = delivery.dora_by(
        grouping.tag(basis.deployments), grouping.tag(basis.frames.changes), periods, settings
    )
    incident_blocks = incident_figures_by(incidents, groups, grouping.incidents_recorded)
    attributed = attribution.counts_by(links, links["group"], groups)
    toil = people.toil_by(grouping.tag(basis.frames.toil), grouping.capacity, periods, settings)
    oncall = people.oncall_by(grouping.tag(basis.frames.pages), periods, grouping.capacity)
    tagged = {name: grouping.tag(frame) for name, frame in quality_frames(basis).items()}
    findings = quality.summary_by(groups, **tagged)
    by_incident = budget.summarise(
        basis.incident_budget[basis.incident_budget["incident_id"].isin(incidents["id"])],
        "incident_id",
        "incidents",
    )
    by_deployment = budget.summarise(basis.deployment_budget, "deployment_id", "deployments")
    slos: dict[Hashable, list[dict[str, Any]]] = {group: [] for group in groups}
    for slo in basis.reliability.evaluated:
        group = 0 if grouping.column is None else slo[grouping.column]
        if group in slos:
            entry = dict(slo)
            entry["burned_by_incidents"] = by_incident.get(slo["name"], _nothing("incidents"))
            entry["burned_by_deployments"] = by_deployment.get(slo["name"], _nothing("deployments"))
            slos[group].append(entry)
    blocks = _freeze_blocks(basis.reliability.freezes, basis.freeze_deployments)
    services_of = _services_of(basis, grouping)
    documents = {}
    for group in groups:
        document = {
            "period": periods[group].as_json(),
            "scope": grouping.scopes[group].as_json(),
            "dora": dora[group],
            "incidents": incident_blocks[group],
            "slos": slos[group],
            "attribution": attributed[group],
            "budget_policy": _policy(
                blocks,
                None if grouping.column is None else services_of.get(group, set()),
                slos[group],
                basis.cap,
            ),
            "people": {"toil": toil[group], "oncall": oncall[group]},
            "data_quality": findings[group],
            "settings": {
                "benchmark_year": settings.benchmark_year,
                "attribution_window_hours": settings.window_hours,
                "min_sample": settings.min_sample,
                "slo_window": settings.slo_window,
            },
        }
        documents[group] = to_jsonable(document)
    return documents


def _services_of(basis: Basis, grouping: Grouping) -> dict[Hashable, set[str]]:
    if grouping.column is None:
        return {}
    services = basis.frames.services
    return {key: set(frame["name"]) for key, frame in services.groupby(grouping.column)}


def assemble(basis: Basis, settings: Settings) -> dict[str, Any]:
    """The scorecard document of a basis: the contract's keys, then the extras."""
    return assemble_groups(basis, Grouping.single(basis), settings)[0]


def assemble_teams(basis: Basis, settings: Settings) -> dict[str, dict[str, Any]]:
    """Every team's scorecard from one all-teams basis (the fast path for many teams)."""
    return {str(k): v for k, v in assemble_groups(basis, Grouping.by_team(basis), settings).items()}


def quality_frames(basis: Basis) -> dict[str, pd.DataFrame]:
    return {
        "changes": basis.frames.changes,
        "undeployed": basis.frames.undeployed,
        "deployments": basis.deployments,
        "incidents": basis.period_incidents,
        "gaps": basis.reliability.gaps,
        "blamed": quality.blamed_later(
            basis.attributions, basis.frames.incidents, basis.deployments
        ),
        "rework_targets": basis.frames.rework_targets,
        "services": basis.frames.services,
    }


def _nothing(key: str) -> dict[str, Any]:
    return {key: 0, "bad_events": 0.0, "budget_share": 0.0}


def _freeze_blocks(freezes: pd.DataFrame, during: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per frozen service: its freeze intervals and what shipped during them."""
    shipped = during.groupby("service")["exempt"].agg(["size", "sum"]) if len(during) else None
    blocks: dict[str, dict[str, Any]] = {}
    for row in freezes.sort_values(["service", "start"]).itertuples(index=False):
        block = blocks.setdefault(
            row.service,
            {
                "service": row.service,
                "team": row.team,
                "intervals": [],
                "frozen_hours": 0.0,
                "deployments": 0,
                "exempt": 0,
            },
        )
        block["intervals"].append({"from": row.start, "to": row.end, "slos": list(row.slos)})
        block["frozen_hours"] += (row.end - row.start).total_seconds() / 3600.0
    if shipped is not None:
        for service, block in blocks.items():
            if service in shipped.index:
                block["deployments"] = int(shipped.at[service, "size"])
                block["exempt"] = int(shipped.at[service, "sum"])
    return blocks


def _policy(
    blocks: dict[str, dict[str, Any]],
    services: set[str] | None,
    slos: list[dict[str, Any]],
    cap: datetime,
) -> dict[str, Any]:
    """The budget_policy block of the scorecard of `services` (None: all)."""
    mine = [block for name, block in sorted(blocks.items()) if services is None or name in services]
    return {
        "frozen_services": mine,
        "deployments_during_freeze": sum(block["deployments"] for block in mine),
        "exempt": sum(block["exempt"] for block in mine),
        "frozen_at_end": sorted({slo["service"] for slo in slos if slo["status"] == "exhausted"}),
        "evaluated_until": cap,
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
    with collector_paused():
        return assemble(compute(engine, period, scope or Scope(), settings, now=now), settings)


def team_scorecards(
    engine: Engine,
    period: Period,
    settings: Settings | None = None,
    *,
    now: datetime | None = None,
) -> dict[str, dict[str, Any]]:
    """The scorecard of every team, from one load grouped by team."""
    settings = settings or Settings()
    with collector_paused():
        return assemble_teams(compute(engine, period, Scope(), settings, now=now), settings)
