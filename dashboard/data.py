"""The dashboard's queries as plain functions: the metrics engine in, plain data out.

Every function takes a `Warehouse` (the engine, the settings, and how to get the row-level
basis of a period and scope) and returns dicts, lists and DataFrames that pickle, so
`dashboard.queries` can wrap each one in `st.cache_data`. Nothing here computes a figure:
the numbers come from `metrics` (scorecard, trends, explain-level rows); this module only
selects, joins descriptive columns and shapes them for a page.

Called directly (as `bench/bench_pages.py` does), each function computes its basis afresh:
that is the cost the cache layer saves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, func, select

from metrics import Period, Scope, Settings, details, quality, reliability, sources, trends
from metrics.burndown import forecast_line, load_burndown
from metrics.incidents import UNSPECIFIED, durations
from metrics.scorecard import Basis, assemble, assemble_teams, compute, quality_frames
from metrics.wording import shown_change_fail_tier
from poise.config import AnomalyConfig
from poise.timeutil import ensure_utc, previous_period
from poise.warehouse import schema
from poise.warehouse.engine import read_snapshot


@dataclass(frozen=True)
class Query:
    """A period and a scope: what every page's figures are for."""

    start: datetime
    end: datetime
    team: str | None = None
    service: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", ensure_utc(self.start))
        object.__setattr__(self, "end", ensure_utc(self.end))

    @property
    def period(self) -> Period:
        return Period(self.start, self.end)

    @property
    def scope(self) -> Scope:
        return Scope(team=self.team, service=self.service)

    def previous(self) -> Query:
        """The same scope over the period just before (the previous quarter for a quarter)."""
        start, end = previous_period(self.start, self.end)
        return replace(self, start=start, end=end)

    def org(self) -> Query:
        return replace(self, team=None, service=None)


def compute_basis(engine: Engine, settings: Settings, query: Query) -> Basis:
    """The engine's row-level basis of one period and scope, with the reasons in words."""
    return compute(engine, query.period, query.scope, settings, reasons=True)


@dataclass
class Warehouse:
    """What the queries read from: the engine, the settings, and the basis of a query
    (`basis_of`: memoised by the cache layer, computed afresh by default)."""

    engine: Engine
    settings: Settings
    basis_of: Callable[[Query], Basis] | None = None
    anomaly_rule: AnomalyConfig = field(default_factory=AnomalyConfig)

    def basis(self, query: Query) -> Basis:
        if self.basis_of is not None:
            return self.basis_of(query)
        return compute_basis(self.engine, self.settings, query)


# --- what the warehouse holds -------------------------------------------------------------


def catalog(wh: Warehouse) -> dict[str, Any]:
    """Teams and services (for the filters) and the time span the data covers."""
    t, s, d, i = schema.teams, schema.services, schema.deployments, schema.incidents
    with read_snapshot(wh.engine) as connection:
        teams = [row[0] for row in connection.execute(select(t.c.name).order_by(t.c.name))]
        services = pd.DataFrame(
            [
                tuple(row)
                for row in connection.execute(select(s.c.name, s.c.team).order_by(s.c.name))
            ],
            columns=["name", "team"],
        )
        latest = {
            "deployment": connection.execute(select(func.max(d.c.deployed_at))).scalar(),
            "incident": connection.execute(select(func.max(i.c.started_at))).scalar(),
        }
        earliest = {
            "deployment": connection.execute(select(func.min(d.c.deployed_at))).scalar(),
            "incident": connection.execute(select(func.min(i.c.started_at))).scalar(),
        }
        counts = {
            name: int(connection.execute(select(func.count()).select_from(table)).scalar_one())
            for name, table in (
                ("deployments", d),
                ("incidents", i),
                ("slos", schema.slos),
                ("changes", schema.changes),
            )
        }
    moments = [value for value in latest.values() if value is not None]
    firsts = [value for value in earliest.values() if value is not None]
    return {
        "teams": teams,
        "services": services,
        # the span of the deployments and incidents: what the periods on offer cover
        "latest": max(moments) if moments else None,
        "first": min(firsts) if firsts else None,
        "counts": counts,
        "empty": not teams and not len(services) and not any(counts.values()),
    }


# --- figures -------------------------------------------------------------------------------


def scorecard(wh: Warehouse, query: Query) -> dict[str, Any]:
    """The scorecard of the query, exactly as `poise metrics --format json` prints it."""
    return assemble(wh.basis(query), wh.settings)


def slo_summary(wh: Warehouse, query: Query) -> dict[str, Any]:
    """The scope's SLOs in a few numbers (`metrics.reliability.summarise`)."""
    return reliability.summarise(scorecard(wh, query).get("slos") or [])


def comparison(wh: Warehouse, query: Query) -> dict[str, Any]:
    """The change of the headline figures from the previous period (`trends.change`)."""
    return trends.change(scorecard(wh, query), scorecard(wh, query.previous()))


def _dig(document: dict[str, Any], *path: str) -> Any:
    value: Any = document
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


TEAM_FIGURES = {
    # column: path in the scorecard
    "deploys_per_week": ("dora", "deployment_frequency", "per_week"),
    "deployments": ("dora", "deployment_frequency", "deployments"),
    "deploys_tier": ("dora", "deployment_frequency", "tier"),
    "lead_time_hours": ("dora", "lead_time", "median_hours"),
    "lead_time_p90_hours": ("dora", "lead_time", "p90_hours"),
    "changes": ("dora", "lead_time", "changes"),
    "lead_time_tier": ("dora", "lead_time", "tier"),
    "change_fail_rate": ("dora", "change_failure_rate", "rate"),
    "recovery_hours": ("dora", "recovery_time", "median_hours"),
    "failures": ("dora", "recovery_time", "failures"),
    "recovery_tier": ("dora", "recovery_time", "tier"),
    "incidents": ("incidents", "count"),
    "toil_share": ("people", "toil", "share"),
    "pages_per_week": ("people", "oncall", "per_week"),
    "deployments_during_freeze": ("budget_policy", "deployments_during_freeze"),
    "deployments_without_incident_data": ("data_quality", "deployments_without_incident_data"),
}
COMPARED = {
    "deploys_per_week": "deployments_per_week",
    "lead_time_hours": "lead_time_median_hours",
    "change_fail_rate": "change_failure_rate",
    "recovery_hours": "recovery_median_hours",
}


def team_row(team: str, card: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
    """One team's line of the overview: its figures, tiers, SLOs, freezes and changes."""
    row: dict[str, Any] = {"team": team}
    for column, path in TEAM_FIGURES.items():
        row[column] = _dig(card, *path)
    # as the cards show it: no tier where no incident could have raised the rate
    row["change_fail_tier"] = shown_change_fail_tier(
        _dig(card, "dora", "change_failure_rate") or {}, card.get("data_quality")
    )
    slos = reliability.summarise(card.get("slos") or [])
    row.update(
        slos=slos["slos"],
        slos_with_data=slos["with_data"],
        slos_met=slos["met"],
        slos_met_share=slos["met_share"],
        lowest_budget_remaining=slos["lowest_budget_remaining"],
        lowest_budget_slo=slos["lowest_budget_slo"],
        slos_exhausted=slos["exhausted"],
        slos_at_risk=slos["at_risk"],
        budget_state=slos["worst_status"] or "no data",
    )
    policy = card.get("budget_policy") or {}
    frozen_at_end = list(policy.get("frozen_at_end") or [])
    frozen_during = [entry["service"] for entry in policy.get("frozen_services") or []]
    row["frozen_at_end"] = ", ".join(frozen_at_end)
    row["frozen_in_period"] = ", ".join(frozen_during)
    change = trends.change(card, previous)
    for column, key in COMPARED.items():
        row[f"{column}_change"] = change[key]["delta"]
        row[f"{column}_previous"] = change[key]["previous"]
    return row


def team_table(wh: Warehouse, query: Query) -> pd.DataFrame:
    """Every team's line of the overview for the query's period (all teams, whatever the
    scope), from one all-teams basis of the period and one of the period before, each
    assembled for all teams at once (`assemble_teams`: the same documents as one team's
    scorecard, without a pass over the basis per team)."""
    org = query.org()
    cards = assemble_teams(wh.basis(org), wh.settings)
    before = assemble_teams(wh.basis(org.previous()), wh.settings)
    rows = [team_row(team, card, before.get(team, {})) for team, card in cards.items()]
    return pd.DataFrame(rows)


def weekly(wh: Warehouse, query: Query) -> pd.DataFrame:
    """Every delivery, incident and people figure by week (Monday to Monday, UTC), each
    week computed as a period of its own (`metrics.trends`)."""
    basis = wh.basis(query)
    buckets = trends.buckets(query.period, "W")
    return pd.DataFrame([trends.bucket_figures(basis, week, wh.settings) for week in buckets])


# --- delivery rows ---------------------------------------------------------------------------


def lead_times(wh: Warehouse, query: Query) -> dict[str, pd.DataFrame]:
    """The changes first deployed in the period (lead time in hours, whether it counts,
    title, author, and the stages of each counted change), and the stage summary."""
    changes = wh.basis(query).frames.changes
    with wh.engine.connect() as connection:
        described = details.change_details(connection, changes["change_id"])
    stages = details.lead_time_stages(changes, described)
    rows = changes.merge(described.rename(columns={"id": "change_id"}), on="change_id", how="left")
    stage_columns = ["change_id", *details.STAGES]
    rows = rows.merge(stages[stage_columns], on="change_id", how="left")
    rows["counts"] = rows["lead_hours"] > 0
    return {"changes": rows, "stages": details.stage_summary(stages)}


def deployments(wh: Warehouse, query: Query) -> pd.DataFrame:
    """The period's production deployments: failed or not and why, recovery, whether it
    shipped during a freeze, and the error budget its attributed incidents burned."""
    basis = wh.basis(query)
    rows = basis.deployments.copy()
    # typed even when empty: pages select with `rows[rows["failed"]]`, which an empty
    # object column would turn into a selection of no columns
    rows = rows.astype({"failed": bool, "rework": bool})
    rows["incidents"] = [", ".join(map(str, value)) for value in rows["incidents"]]
    during = basis.freeze_deployments.set_index("id")["exempt"]
    rows["during_freeze"] = rows["id"].isin(during.index)
    burned = basis.deployment_budget.groupby("deployment_id")["budget_share"].sum(min_count=1)
    rows["budget_share"] = rows["id"].map(burned)
    # the row names the deployment already: its sentence starts at "failed: …" / "did not fail"
    rows["reason"] = [
        str(reason).removeprefix(f"{ident} ")
        for ident, reason in zip(rows["id"], rows["reason"], strict=True)
    ]
    return rows.sort_values(["deployed_at", "id"], ascending=[False, True]).reset_index(drop=True)


# --- reliability --------------------------------------------------------------------------------


def slo_rows(card: dict[str, Any]) -> pd.DataFrame:
    """The scorecard's SLOs as a table: SLI against target, budget, burn rates, status,
    alert state and the forecast of exhaustion."""
    rows = []
    for slo in card.get("slos") or []:
        burn = slo.get("burn_rate") or {}
        alert = slo.get("alert") or {}
        rows.append(
            {
                "slo": slo["name"],
                "service": slo["service"],
                "team": slo.get("team"),
                "target": slo["target"],
                "window_days": slo["window_days"],
                "sli": slo["sli"],
                "budget_remaining": slo["budget_remaining"],
                "burn_1h": burn.get("1h"),
                "burn_6h": burn.get("6h"),
                "burn_24h": burn.get("24h"),
                "burn_72h": burn.get("72h"),
                "status": slo["status"] or "no data",
                "alert": alert.get("state", "none"),
                "alert_rules": "; ".join(alert.get("fired") or []),
                "forecast_exhausted_at": pd.to_datetime(slo.get("forecast_exhausted_at"), utc=True),
                "reason": slo.get("reason") or slo.get("forecast_reason") or "",
            }
        )
    return pd.DataFrame(rows)


def reliability_view(
    wh: Warehouse, query: Query, card: dict[str, Any] | None = None
) -> dict[str, Any]:
    """SLO table, freezes, deployments during freezes, and budget burned per incident and
    per deployment (with the incident's title and service); `card`: the query's
    scorecard, when the caller has it already."""
    basis = wh.basis(query)
    card = card if card is not None else scorecard(wh, query)
    incidents = basis.frames.incidents[["id", "service", "title", "started_at", "severity"]]
    per_incident = basis.incident_budget.merge(
        incidents.rename(columns={"id": "incident_id"}), on="incident_id", how="left"
    )
    per_incident = per_incident[per_incident["incident_id"].isin(basis.period_incidents["id"])]
    return {
        "slos": slo_rows(card),
        "freezes": basis.reliability.freezes.assign(
            slos=lambda f: [", ".join(value) for value in f["slos"]]
        ),
        "freeze_deployments": basis.freeze_deployments,
        "deployments": basis.deployments[["id", "service", "deployed_at", "failed", "rework"]],
        "budget_by_incident": per_incident.sort_values("bad_events", ascending=False),
        "budget_by_deployment": basis.deployment_budget.sort_values("bad_events", ascending=False),
        "policy": card.get("budget_policy") or {},
    }


def burndown(
    wh: Warehouse, query: Query, slo_name: str, card: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One SLO's burn-down over the window it is reported over, and the forecast line
    (`card`: the query's scorecard, when the caller has it already)."""
    card = card if card is not None else scorecard(wh, query)
    found = [slo for slo in card.get("slos") or [] if slo["name"] == slo_name]
    if not found:
        return {"series": pd.DataFrame(), "forecast": pd.DataFrame(), "slo": None}
    slo = found[0]
    return {"series": load_burndown(wh.engine, slo), "forecast": forecast_line(slo), "slo": slo}


# --- incidents ----------------------------------------------------------------------------------


def incidents(wh: Warehouse, query: Query) -> pd.DataFrame:
    """The period's incidents: times to detect/acknowledge/resolve, cause, attribution (to
    which deployment, how, and why) and the postmortem link."""
    basis = wh.basis(query)
    rows = basis.period_incidents.copy()
    rows = rows.join(durations(rows))
    links = basis.attributions.rename(
        columns={"incident_id": "id", "reason": "attribution_reason", "method": "attribution"}
    )[["id", "deployment_id", "attribution", "attribution_reason"]]
    rows = rows.merge(links, on="id", how="left")
    with wh.engine.connect() as connection:
        described = details.incident_details(connection, rows["id"])
    rows = rows.merge(described, on="id", how="left")
    for column in ("postmortem_url", "url"):
        rows[column] = web_links(rows[column])
    columns = [
        "id",
        "service",
        "team",
        "severity",
        "cause",
        "title",
        "started_at",
        "detected_at",
        "acknowledged_at",
        "resolved_at",
        "mttd",
        "mtta",
        "mttr",
        "deployment_id",
        "attribution",
        "attribution_reason",
        "status",
        "postmortem_url",
        "url",
    ]
    return rows[columns].sort_values("started_at", ascending=False).reset_index(drop=True)


def web_links(values: pd.Series) -> pd.Series:
    """Links a page may make clickable: http(s) only (a `javascript:` link stays text)."""
    text = values.astype(object).where(values.notna(), None)
    ok = text.map(lambda v: isinstance(v, str) and v.lower().startswith(("http://", "https://")))
    return text.where(ok, None)


# --- data and sources ---------------------------------------------------------------------------


def source_view(wh: Warehouse, query: Query, card: dict[str, Any] | None = None) -> dict[str, Any]:
    """Sync outcomes per source, freshness per table and source, SLO sample freshness,
    coverage of the query's figures, and the data-quality findings with their rows;
    `card`: the query's scorecard, when the caller has it already."""
    basis = wh.basis(query)
    card = card if card is not None else assemble(basis, wh.settings)
    committed = sources.committed_changes(wh.engine, query.period, query.scope)
    frames = quality_frames(basis)
    findings = {name: quality.rows(name, **frames) for name in quality.FINDINGS}
    return {
        "sync": sources.sync_status(wh.engine),
        "freshness": sources.freshness(wh.engine),
        "slo_freshness": sources.slo_freshness(wh.engine, query.scope),
        "coverage": pd.DataFrame(sources.coverage(card, committed)),
        "findings": {name: frame.reset_index(drop=True) for name, frame in findings.items()},
    }


# --- reports ------------------------------------------------------------------------------------


def report(wh: Warehouse, quarter: str, team: str | None) -> Any:
    """The quarterly report document of `quarter` for the organisation or one team
    (`reports.builder.build_report`), ready to be laid out in any format."""
    from reports.builder import build_report

    return build_report(wh.engine, quarter, team=team, settings=wh.settings, rule=wh.anomaly_rule)


def report_file(document: Any, fmt: str) -> bytes:
    """A built report laid out in one format (`reports.render_document`)."""
    from reports import render_document

    return render_document(document, fmt)


OPEN, RESOLVED = "open", "resolved"
# the chart helper's word for an incident without a service (`charts.incident_timeline`)
NO_SERVICE = "(no service)"


def labelled_incidents(incidents: pd.DataFrame) -> pd.DataFrame:
    """The incidents as the page shows them: a missing severity or cause reads
    `unspecified`, as in the engine's figures by severity and cause (one word for the same
    incident in charts, tables and search), and `state` says whether each is still open,
    so an open incident's empty time to resolve is not taken for missing data."""
    rows = incidents.copy()
    for column in ("severity", "cause"):
        blank = rows[column].isna() | (rows[column].astype(object) == "")
        rows[column] = rows[column].astype(object).where(~blank, UNSPECIFIED)
    rows["service"] = rows["service"].astype(object).where(rows["service"].notna(), NO_SERVICE)
    # the figures count an incident as unresolved by its resolved_at, whatever its source's
    # status says: the page follows the figures
    rows["state"] = np.where(rows["resolved_at"].isna(), OPEN, RESOLVED)
    return rows
