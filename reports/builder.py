"""Build the quarterly report: ask the metrics engine for every figure, then compose sections.

One load of the quarter (`metrics.scorecard.compute`) serves the scope's scorecard, every
team's scorecard and the row-level frames behind them; the quarter before, the SLOs over the
calendar quarter and the weekly trends are further calls to the engine. Nothing here
computes a figure.
"""

from __future__ import annotations

import difflib
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select

from metrics import Period, Scope, Settings, delivery, reliability, sli, trends
from metrics.details import incident_details
from metrics.incidents import durations
from metrics.scorecard import Basis, assemble, compute
from metrics.stats import to_jsonable
from poise.config import AnomalyConfig
from poise.errors import PoiseError
from poise.timeutil import TimestampError, previous_period, quarter_bounds, quarter_of, utcnow
from poise.warehouse import schema
from reports.coverage import coverage_notes
from reports.definitions import definitions
from reports.figures import Inputs
from reports.guardrail_sections import guardrails_section
from reports.incident_sections import incidents_section
from reports.model import Evidence, Report
from reports.reliability_sections import reliability_section
from reports.sections import (
    appendix_section,
    coverage_section,
    summary_section,
    teams_section,
    trends_section,
)


def build_report(
    engine: Engine,
    quarter: str,
    *,
    team: str | None = None,
    settings: Settings | None = None,
    now: datetime | None = None,
    rule: AnomalyConfig | None = None,
) -> Report:
    settings = settings or Settings()
    generated = now or utcnow()
    try:
        period, cut = Period.quarter_to_date(quarter, now=generated)
    except TimestampError as exc:
        raise PoiseError(str(exc)) from None
    label = quarter_of(period.start)
    if team is not None:
        _check_team(engine, team)
    inputs = gather(engine, label, period, team, settings, now=now)
    inputs.unfinished = unfinished_note(label, period) if cut else ""
    guards, guard_evidence = guardrails_section(
        engine, period, Scope(team=team), settings, generated, rule
    )
    scope_label = f"Team {team}" if team else "Whole organisation"
    return Report(
        title=f"Quarterly report {label}",
        subtitle=scope_label,
        period_label=_period_label(f"{label} to date" if cut else label, period),
        generated_at=generated,
        sections=[
            summary_section(inputs),
            teams_section(inputs),
            trends_section(inputs),
            reliability_section(inputs),
            guards,
            incidents_section(inputs),
            coverage_section(inputs),
            appendix_section(inputs),
        ],
        evidence=[*inputs.evidence, *guard_evidence],
        facts=(
            ("Scope", scope_label),
            ("Teams", str(len(inputs.teams))),
            ("Services", str(inputs.services)),
            ("SLOs", str(len(inputs.current.get("slos", [])))),
            ("Benchmark for tiers", f"State of DevOps {settings.benchmark_year}"),
        ),
    )


def unfinished_note(label: str, period: Period) -> str:
    """What a report of a quarter not yet over says first: it covers the days so far, and
    what of it compares with the whole quarter before and what does not."""
    quarter_start, quarter_end = quarter_bounds(label)
    last = period.end - timedelta(days=1)
    return (
        f"{label} is not over: this report covers it to date, {period.start:%-d %B} – "
        f"{last:%-d %B %Y}, {period.days:.0f} of its {(quarter_end - quarter_start).days} days "
        "(the day it was generated, unfinished, is left out). Figures per week, medians and "
        "shares (change fail rate, SLO attainment) compare with the whole quarter before; "
        "counts (deployments, incidents, freezes) hold these days only. Each SLO is judged "
        "over its window ending "
        f"{last:%-d %B}."
    )


def _period_label(label: str, period: Period) -> str:
    last = period.end - timedelta(days=1)
    return f"{label}: {period.start:%-d %B} – {last:%-d %B %Y} (UTC)"


def _check_team(engine: Engine, team: str) -> None:
    with engine.connect() as connection:
        names = [row[0] for row in connection.execute(select(schema.teams.c.name))]
    if team not in names:
        raise PoiseError(f"--team {team!r}: no such team in the warehouse{_team_hint(team, names)}")


LISTED_TEAMS = 10


def _team_hint(team: str, names: list[str]) -> str:
    """ " (did you mean 'billing'?)", or the teams there are: a name that differs only in
    case ("BILLING") is the likeliest meant (difflib compares case), and a warehouse of 300
    teams is named by its first ten, each on one line, so the message stays one line."""
    folded = {name.casefold(): name for name in sorted(names)}
    close = difflib.get_close_matches(team.casefold(), list(folded), n=1)
    if close:
        return f" (did you mean {folded[close[0]]!r}?)"
    if not names:
        return " (teams: none)"
    listed = ", ".join(" ".join(name.split()) for name in sorted(names)[:LISTED_TEAMS])
    more = len(names) - LISTED_TEAMS
    return f" (teams: {listed}{f' and {more:,} more' if more > 0 else ''})"


def gather(
    engine: Engine,
    label: str,
    period: Period,
    team: str | None,
    settings: Settings,
    *,
    now: datetime | None = None,
) -> Inputs:
    """Every figure and frame the report shows, from the metrics engine."""
    scope = Scope(team=team)
    basis = compute(engine, period, scope, settings, now=now)
    current = assemble(basis, settings)
    team_names = sorted(basis.frames.teams["name"].tolist())
    teams = (
        {team: current}
        if team is not None
        else {name: assemble(basis.for_team(name), settings) for name in team_names}
    )
    # the whole quarter before, even when this one is cut at today
    before = Period(*previous_period(*quarter_bounds(label)))
    previous_basis = compute(engine, before, scope, settings, now=now)
    previous = assemble(previous_basis, settings)
    previous_teams = (
        {team: previous}
        if team is not None
        else {name: assemble(previous_basis.for_team(name), settings) for name in team_names}
    )
    quarter_slos = slos_over_quarter(engine, basis, settings)
    incidents = _incident_rows(engine, basis)
    return Inputs(
        quarter=label,
        scope_team=team,
        current=current,
        previous=previous,
        teams=teams,
        previous_teams=previous_teams,
        quarter_slos=quarter_slos,
        weekly=weekly_trends(basis, settings, by_team=team is None),
        min_sample=settings.min_sample,
        freezes=basis.reliability.freezes,
        freeze_deployments=basis.freeze_deployments,
        incidents=incidents,
        coverage=coverage_notes(current),
        definitions=definitions(settings),
        evidence=_evidence(basis, incidents),
        services=len(basis.frames.services),
    )


def slos_over_quarter(engine: Engine, basis: Basis, settings: Settings) -> list[dict[str, Any]]:
    """The scope's SLOs evaluated over the calendar quarter: what `poise metrics --slo-window
    quarter` shows, through the same engine calls as the scorecard's SLO block
    (`reliability.requests_for`, `sli.interval_sums`, `reliability.evaluate_all`), without
    recomputing the budget-policy history the scorecard also does."""
    quarter = replace(settings, slo_window="quarter")
    slos, at = basis.frames.slos, basis.frames.period.end
    with engine.connect() as connection:
        sums = sli.interval_sums(connection, reliability.requests_for(slos, at, quarter, {}))
    return [to_jsonable(slo) for slo in reliability.evaluate_all(slos, sums, at, quarter)]


def _incident_rows(engine: Engine, basis: Basis) -> pd.DataFrame:
    """The quarter's incidents with the engine's durations, attribution and postmortem link."""
    incidents = basis.period_incidents
    rows = incidents.join(durations(incidents))
    links = basis.attributions[["incident_id", "deployment_id", "method"]]
    rows = rows.merge(links, left_on="id", right_on="incident_id", how="left")
    if "postmortem_url" not in rows.columns:
        rows["postmortem_url"] = rows["id"].map(_postmortems(engine, rows["id"].tolist()))
    return rows


def _postmortems(engine: Engine, ids: list[str]) -> dict[str, str]:
    """The postmortem links of these incidents (`metrics.details`)."""
    with engine.connect() as connection:
        found = incident_details(connection, ids)
    found = found[found["postmortem_url"].notna()]
    return dict(zip(found["id"], found["postmortem_url"], strict=True))


def weekly_trends(basis: Basis, settings: Settings, *, by_team: bool) -> pd.DataFrame:
    """The engine's figures per week (`metrics.trends.bucket_figures`) for the whole scope
    (`team` ""), and with `by_team` each team's weekly deployment count
    (`metrics.delivery.deployment_frequency` of the team's deployments in the week), all
    from the quarter's one load."""
    weeks = trends.buckets(basis.frames.period, "W")
    rows = [
        {
            "week": week.start,
            "week_end": week.end,  # the first and last weeks are clipped to the quarter
            "team": "",
            **trends.bucket_figures(basis, week, settings),
        }
        for week in weeks
    ]
    if by_team:
        deployments = basis.deployments
        for team in sorted(basis.frames.teams["name"]):
            mine = deployments[deployments["team"] == team]
            for week in weeks:
                shipped = mine[
                    (mine["deployed_at"] >= week.start) & (mine["deployed_at"] < week.end)
                ]
                figure = delivery.deployment_frequency(shipped, week, settings)
                rows.append(
                    {"week": week.start, "team": team, "deployments": figure["deployments"]}
                )
    return pd.DataFrame(rows)


def _evidence(basis: Basis, incidents: pd.DataFrame) -> list[Evidence]:
    frames = basis.frames
    return [
        Evidence(
            "Production deployments of the quarter, failed or not, and why",
            "Rows deployments",
            basis.deployments,
            "behind deployment frequency, change fail rate, recovery time and rework rate",
        ),
        Evidence(
            "Changes whose first production deployment is in the quarter",
            "Rows changes",
            frames.changes,
            "behind change lead time",
        ),
        Evidence(
            "Incidents of the quarter", "Rows incidents", incidents, "behind the incident figures"
        ),
        Evidence(
            "Incident attributions",
            "Rows attributions",
            # the quarter's incidents in scope, as the scorecard's `attribution` counts them
            basis.attributions[basis.attributions["incident_id"].isin(incidents["id"])],
            "how each incident of the quarter was tied to a deployment, or why not",
        ),
        Evidence("Release freezes", "Rows freezes", basis.reliability.freezes, "budget policy"),
        Evidence(
            "Deployments during a freeze",
            "Rows freeze deployments",
            basis.freeze_deployments,
            "budget policy",
        ),
        Evidence(
            "SLI coverage per SLO",
            "Rows SLI coverage",
            basis.reliability.gaps,
            "missing hourly SLI buckets",
        ),
    ]
