"""`explain`: the rows behind a figure, and why each one counts (or does not).

Every figure of the scorecard can be traced here to the deployments, changes, incidents,
SLI sums and findings it was computed from; the reasons are the same words the pages show.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from metrics import quality
from metrics.model import Period, Scope, Settings
from metrics.scorecard import Basis, compute, quality_frames
from metrics.stats import to_jsonable
from metrics.wording import counted, duration, percent
from poise.errors import PoiseError

Row = dict[str, Any]


def _row(kind: str, id: Any, service: Any, at: Any, value: Any, counts: bool, reason: str) -> Row:
    return {
        "kind": kind,
        "id": id,
        "service": service,
        "at": at,
        "value": value,
        "counts": counts,
        "reason": reason,
    }


def _deployment_frequency(basis: Basis) -> list[Row]:
    return [
        _row(
            "deployment",
            row.id,
            row.service,
            row.deployed_at,
            None,
            True,
            f"{row.id}: production deployment of {row.service} in the period",
        )
        for row in basis.deployments.itertuples(index=False)
    ]


def _lead_time(basis: Basis) -> list[Row]:
    out = []
    for row in basis.frames.changes.itertuples(index=False):
        counts = row.lead_hours > 0
        if counts:
            reason = (
                f"{row.change_id}: first production deployment {row.deployment_id}, "
                f"{duration(row.lead_hours)} after it was committed"
            )
        else:
            reason = (
                f"{row.change_id}: left out, lead time {duration(row.lead_hours)} is not "
                "positive (clock skew or an automated change); counted in data quality"
            )
        out.append(
            _row(
                "change",
                row.change_id,
                row.service,
                row.deployed_at,
                row.lead_hours,
                counts,
                reason,
            )
        )
    return out


def _change_failure_rate(basis: Basis) -> list[Row]:
    return [
        _row("deployment", row.id, row.service, row.deployed_at, bool(row.failed), True, row.reason)
        for row in basis.deployments.itertuples(index=False)
    ]


def _recovery_time(basis: Basis) -> list[Row]:
    out = []
    failed = basis.deployments[basis.deployments["failed"]]
    if failed.empty:  # an empty period's frame has none of the recovery columns
        return out
    # when the incidents of a recovery left out were resolved (the rows keep no negative time)
    resolved = _last_resolved(basis, failed[failed["recovery_left_out"].astype(bool)])
    for row in failed.assign(recovered_before=resolved).itertuples(index=False):
        hours = row.recovery_hours
        if isinstance(row.fixed_by, str):
            how = "rolled back" if row.fixed_how == "rollback" else "remediated"
            reason = f"{row.id}: {how} by {row.fixed_by} after {duration(hours)}"
        elif pd.notna(hours):
            reason = (
                f"{row.id}: recovered when the last of {', '.join(row.incidents)} was "
                f"resolved, {duration(hours)} after it deployed"
            )
        elif row.recovery_left_out:
            reason = (
                f"{row.id}: left out: the last of {', '.join(row.incidents)} was resolved "
                f"{duration(row.deployed_at - row.recovered_before)} before it deployed, so "
                "its recovery time would be negative; counted in data quality"
            )
        else:
            reason = f"{row.id}: not recovered yet: {', '.join(row.incidents)} not all resolved"
        counts = pd.notna(hours) and hours >= 0
        out.append(_row("deployment", row.id, row.service, row.deployed_at, hours, counts, reason))
    return out


def _last_resolved(basis: Basis, deployments: pd.DataFrame) -> pd.Series:
    """The latest `resolved_at` of the incidents attributed to each of `deployments`."""
    links = basis.attributions[basis.attributions["deployment_id"].isin(deployments["id"])]
    resolved = links.merge(
        basis.frames.incidents[["id", "resolved_at"]].rename(columns={"id": "incident_id"}),
        on="incident_id",
    )
    latest = resolved.groupby("deployment_id")["resolved_at"].max()
    if latest.empty:  # mapping through nothing would make a float column of the times
        return pd.Series(pd.NaT, index=deployments.index, dtype=resolved["resolved_at"].dtype)
    return deployments["id"].map(latest)


def _rework_rate(basis: Basis) -> list[Row]:
    out = []
    found = quality.rows("rework_before_its_target", **quality_frames(basis))
    early = {
        row.id: (row.target, row.target_at - row.deployed_at)
        for row in found.itertuples(index=False)
    }
    for row in basis.deployments.itertuples(index=False):
        if row.rework:
            target = (
                row.rollback_of if isinstance(row.rollback_of, str) and row.rollback_of else None
            )
            # worded as change fail rate's rows are ("d1 failed: …", "d1 did not fail: …"):
            # every deployment counts in the denominator, the verdict says which are rework
            reason = (
                f"{row.id} is rework: it rolls back {target}"
                if target
                else f"{row.id} is rework: it remediates {row.remediation_of}"
            )
            if row.id in early:
                # rework counts it, but change fail rate does not count the target as
                # failed by it (only a later deployment's rollback or remediation does)
                named, gap = early[row.id]
                when = f"{duration(gap)} after it" if gap else "at the same moment"
                reason += (
                    f", though {named} deployed {when}: {named} does not count as failed "
                    "by it; counted in data quality"
                )
        else:
            reason = (
                f"{row.id} is not rework: it names no deployment in rollback_of or remediation_of"
            )
        out.append(
            _row("deployment", row.id, row.service, row.deployed_at, bool(row.rework), True, reason)
        )
    return out


def _incidents(basis: Basis) -> list[Row]:
    incidents = basis.period_incidents
    attributed = basis.attributions.set_index("incident_id")
    out = []
    for row in incidents.itertuples(index=False):
        times = []
        for label, column in (
            ("detected", "detected_at"),
            ("acknowledged", "acknowledged_at"),
            ("resolved", "resolved_at"),
        ):
            moment = getattr(row, column)
            times.append(
                f"{label} {'never' if pd.isna(moment) else 'after ' + duration(moment - row.started_at)}"
            )
        method = attributed["method"].get(row.id, "none")
        why = attributed["reason"].get(row.id, "")
        reason = (
            f"{row.id} ({row.severity or 'no severity'}): "
            + ", ".join(times)
            + f"; attribution {method}: {why}"
        )
        out.append(_row("incident", row.id, row.service, row.started_at, method, True, reason))
    return out


def _slos(basis: Basis) -> list[Row]:
    out = []
    for slo in basis.reliability.evaluated:
        window = slo["window"]
        if slo["sli"] is None:
            reason = f"{slo['name']}: {slo['reason']}"
        else:
            reason = (
                f"{slo['name']}: {slo['good']:,.0f} good of {slo['total']:,.0f} events from "
                f"{window['from']:%Y-%m-%d %H:%M} to {window['to']:%Y-%m-%d %H:%M} UTC, SLI "
                f"{percent(slo['sli'], 3)}; budget (1 − {slo['target']}) × {slo['total']:,.0f} = "
                f"{slo['budget_events']:,.1f} bad events, {slo['bad']:,.0f} spent, "
                f"{percent(slo['budget_remaining'])} left; status {slo['status']}"
            )
            burn = slo["burn_rate"]["24h"]
            if burn is not None:
                reason += f"; burn rate over 24 h {burn:.2f}"
            if slo["forecast_exhausted_at"] is not None:
                reason += f"; at that rate the budget runs out {slo['forecast_exhausted_at']:%Y-%m-%d %H:%M} UTC"
        out.append(
            _row(
                "slo",
                slo["name"],
                slo["service"],
                window["to"],
                slo["budget_remaining"],
                True,
                reason,
            )
        )
    return out


def _budget_policy(basis: Basis) -> list[Row]:
    out = []
    for row in basis.reliability.freezes.itertuples(index=False):
        out.append(
            _row(
                "freeze",
                row.service,
                row.service,
                row.start,
                (row.end - row.start).total_seconds() / 3600,
                True,
                f"{row.service} frozen from {row.start:%Y-%m-%d %H:%M} to {row.end:%Y-%m-%d %H:%M} "
                f"UTC: budget exhausted on {', '.join(row.slos)}",
            )
        )
    for row in basis.freeze_deployments.itertuples(index=False):
        note = "allowed: a rollback or remediation" if row.exempt else "shipped against the freeze"
        out.append(
            _row(
                "deployment",
                row.id,
                row.service,
                row.deployed_at,
                bool(row.exempt),
                True,
                f"{row.id} deployed during the freeze that began {row.freeze_start:%Y-%m-%d %H:%M} UTC: {note}",
            )
        )
    return out


def _budget(basis: Basis) -> list[Row]:
    out = []
    for row in basis.incident_budget.itertuples(index=False):
        share = percent(row.budget_share) if pd.notna(row.budget_share) else "an unknown share"
        out.append(
            _row(
                "incident",
                row.incident_id,
                None,
                None,
                row.budget_share,
                True,
                f"{row.incident_id} burned {row.bad_events:,.0f} bad events of {row.slo}: {share} of its window budget",
            )
        )
    for row in basis.deployment_budget.itertuples(index=False):
        share = percent(row.budget_share) if pd.notna(row.budget_share) else "an unknown share"
        out.append(
            _row(
                "deployment",
                row.deployment_id,
                None,
                None,
                row.budget_share,
                True,
                f"{row.deployment_id} burned {share} of {row.slo}'s budget through "
                f"{counted(row.incidents, 'attributed incident')}",
            )
        )
    return out


COUNTED_FINDINGS = (
    "incidents_blaming_later_deployments",
    "rework_before_its_target",
    "deployments_without_incident_data",
)


def _data_quality(basis: Basis) -> list[Row]:
    frames = quality_frames(basis)
    out = []
    for finding in quality.FINDINGS:
        found = quality.rows(finding, **frames)
        for record in found.to_dict("records"):
            ident = record.get("id") or record.get("change_id") or record.get("slo")
            if finding == "sli_gaps":
                reason = (
                    f"{ident}: {record['missing']} of {record['expected']} hourly buckets missing"
                )
            elif finding == "slos_without_data":
                reason = f"{ident}: no SLI samples at all"
            elif finding == "incidents_blaming_later_deployments":
                reason = (
                    f"{ident} started {record['started_at']:%Y-%m-%d %H:%M} UTC, "
                    f"{duration(record['hours_before'])} before {record['deployment_id']} "
                    f"deployed, yet names it in caused_by_deployment: explicit attribution "
                    f"has no time bound, so {record['deployment_id']} counts as failed"
                )
            elif finding == "rework_before_its_target":
                verb = "rolls back" if record["how"] == "rollback" else "remediates"
                gap = record["target_at"] - record["deployed_at"]
                when = f"{duration(gap)} after it" if gap else "at the same moment"
                reason = (
                    f"{ident} {verb} {record['target']}, which deployed {when}: "
                    f"counted as rework, but {record['target']} does not count as failed "
                    "by it (only a later deployment's rollback or remediation does)"
                )
            elif finding == "deployments_without_incident_data":
                reason = (
                    f"{ident}: {record['service']} has no incident on record, so its change "
                    "fail rate counts only rollbacks and fixes"
                )
            else:
                reason = f"{ident}: {finding.replace('_', ' ')}"
            # these rows are not left out: the figures count them as the contract says
            counted = finding in COUNTED_FINDINGS
            out.append(_row(finding, ident, record.get("service"), None, None, counted, reason))
    return out


def _toil(basis: Basis) -> list[Row]:
    toil = basis.frames.toil
    teams = basis.frames.teams
    # toil share weighs hours against the team's capacity: a team without a size is left out
    sized = set(teams.loc[teams["size"].notna(), "name"])
    out = []
    for row in toil.itertuples(index=False):
        reason = f"{row.team} {row.day}: {row.hours} h of {row.category}"
        if row.team not in sized:
            reason += "; left out: the team has no size in poise.yaml, so no capacity"
        out.append(_row("toil", row.team, None, row.day, row.hours, row.team in sized, reason))
    return out


def _oncall(basis: Basis) -> list[Row]:
    return [
        _row(
            "page",
            row.id,
            row.service,
            row.triggered_at,
            bool(row.after_hours),
            True,
            f"{row.id}: page {'after hours' if row.after_hours else 'in business hours'}",
        )
        for row in basis.frames.pages.itertuples(index=False)
    ]


FIGURES: dict[str, Callable[[Basis], list[Row]]] = {
    "deployment_frequency": _deployment_frequency,
    "lead_time": _lead_time,
    "change_failure_rate": _change_failure_rate,
    "recovery_time": _recovery_time,
    "rework_rate": _rework_rate,
    "incidents": _incidents,
    "attribution": _incidents,
    "slos": _slos,
    "budget_policy": _budget_policy,
    "budget": _budget,
    "data_quality": _data_quality,
    "toil": _toil,
    "oncall": _oncall,
}
ALIASES = {
    "deployments": "deployment_frequency",
    "df": "deployment_frequency",
    "lead_time_for_changes": "lead_time",
    "cfr": "change_failure_rate",
    "change_fail_rate": "change_failure_rate",
    "fdrt": "recovery_time",
    "recovery": "recovery_time",
    "rework": "rework_rate",
    "mttr": "incidents",
    "mtta": "incidents",
    "mttd": "incidents",
    "slo": "slos",
    "freeze": "budget_policy",
    "quality": "data_quality",
}


def figure_name(text: str) -> str:
    key = text.strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key not in FIGURES:
        raise PoiseError(f"unknown figure {text!r} (figures: {', '.join(FIGURES)})")
    return key


def rows_for(basis: Basis, figure: str) -> list[Row]:
    """The explained rows of `figure` from an already computed basis."""
    return FIGURES[figure_name(figure)](basis)


def explain(
    engine: Engine,
    figure: str,
    period: Period,
    scope: Scope | None = None,
    settings: Settings | None = None,
    *,
    now: datetime | None = None,
) -> list[Row]:
    """The rows behind `figure` with the reason each counts (JSON-ready values)."""
    name = figure_name(figure)
    settings = settings or Settings()
    basis = compute(engine, period, scope or Scope(), settings, now=now, reasons=True)
    return to_jsonable(FIGURES[name](basis))
