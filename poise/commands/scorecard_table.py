"""The scorecard as a terminal page (rich tables), for `poise metrics --format table`."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from metrics.model import Period
from metrics.trends import holds_data, nothing_held
from metrics.wording import counted, shown_change_fail_tier
from poise.timeutil import TimestampError, isoformat_z, parse_timestamp

MISSING = "—"


def _num(value: Any, digits: int = 1, suffix: str = "") -> str:
    if value is None:
        return MISSING
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}{suffix}"
    return f"{value:,.{digits}f}{suffix}"


def _print_incidents(console: Console, inc: dict[str, Any], attr: dict[str, Any]) -> None:
    table = Table(title="Incidents", title_justify="left")
    for column in (
        "",
        "count",
        "detect (median)",
        "acknowledge (median)",
        "resolve (median)",
        "resolve (p90)",
    ):
        table.add_column(column, justify="left" if not column else "right")
    rows = [("all", inc)] + [(f"severity {k}", v) for k, v in inc.get("by_severity", {}).items()]
    rows += [(f"cause {k}", v) for k, v in inc.get("by_cause", {}).items()]
    for label, block in rows:
        table.add_row(
            label,
            f"{block['count']:,}",
            _num(block["mttd_median_minutes"], 0, " min"),
            _num(block["mtta_median_minutes"], 0, " min"),
            _hours(block["mttr_median_hours"]),
            _hours(block.get("mttr_p90_hours")),
        )
    console.print(table)
    console.print(
        f"Attribution: {attr['explicit']:,} explicit, {attr['inferred']:,} inferred, "
        f"{attr['unattributed']:,} unattributed"
    )


def _pct(value: Any, digits: int = 1) -> str:
    return MISSING if value is None else f"{value * 100:.{digits}f} %"


def _hours(value: Any) -> str:
    if value is None:
        return MISSING
    if value < 1:
        return f"{value * 60:.0f} min"
    if value < 48:
        return f"{value:.1f} h"
    return f"{value / 24:.1f} d"


def _tier(block: dict[str, Any]) -> str:
    tier = block.get("tier")
    return MISSING if tier is None else str(tier)


def _when(value: Any) -> str:
    return MISSING if value is None else str(value).replace("T", " ").replace(":00Z", "Z")


def print_scorecard(console: Console, doc: dict[str, Any], *, history_weeks: int = 12) -> None:
    scope = doc["scope"]
    who = (
        (scope["service"] and f"service {scope['service']}")
        or (scope["team"] and f"team {scope['team']}")
        or "all teams"
    )
    console.print(
        f"[bold]Poise scorecard[/bold] — {who}, {_when(doc['period']['from'])} to {_when(doc['period']['to'])} "
        f"(tiers: {doc['settings']['benchmark_year']} table)"
    )
    dora = doc["dora"]
    table = Table(title="Delivery (DORA)", title_justify="left")
    for column in ("figure", "value", "p90", "sample", "tier"):
        table.add_column(
            column, justify="right" if column in ("value", "p90", "sample") else "left"
        )
    df, lt, cfr, rt, rw = (
        dora["deployment_frequency"],
        dora["lead_time"],
        dora["change_failure_rate"],
        dora["recovery_time"],
        dora["rework_rate"],
    )
    table.add_row(
        "deployment frequency",
        f"{_num(df['per_week'], 2)} / week",
        "",
        f"{df['deployments']:,} deployments",
        _tier(df),
    )
    table.add_row(
        "change lead time (median)",
        _hours(lt["median_hours"]),
        _hours(lt["p90_hours"]),
        f"{lt['changes']:,} changes",
        _tier(lt),
    )
    table.add_row(
        "change fail rate",
        _pct(cfr["rate"]),
        "",
        f"{cfr['failed']:,} of {cfr['deployments']:,}",
        shown_change_fail_tier(cfr, doc.get("data_quality")) or MISSING,
    )
    table.add_row(
        "recovery time (median)",
        _hours(rt["median_hours"]),
        _hours(rt.get("p90_hours")),
        f"{rt['failures']:,} failures",
        _tier(rt),
    )
    table.add_row(
        "rework rate", _pct(rw["rate"]), "", f"{rw['rework']:,} of {rw['deployments']:,}", ""
    )
    console.print(table)

    inc = doc["incidents"]
    if inc["count"] is None:  # never recorded: no table of zeros
        console.print(f"Incidents: {MISSING} ({inc['reason']})")
    else:
        _print_incidents(console, inc, doc["attribution"])

    if doc["slos"]:
        console.print("[bold]SLOs and error budgets[/bold]")
    for slo in doc["slos"]:
        burns = ", ".join(f"{k} {_num(slo['burn_rate'][k], 2)}" for k in ("1h", "6h", "24h", "72h"))
        if slo["sli"] is None:
            state = f"no data: {slo['reason']}"
        else:
            state = (
                f"SLI {_pct(slo['sli'], 3)} against {_pct(slo['target'], 2)}, budget "
                f"{_pct(slo['budget_remaining'])} left, {slo['status']}"
            )
        runs_out = _minute(slo["forecast_exhausted_at"])
        console.print(
            f"  {slo['name']} ({slo['service']}): {state}; burn rate {burns}; "
            f"alert {slo['alert']['state']}"
            + (f"; budget runs out {_when(runs_out)}" if runs_out else "")
        )
    policy = doc.get("budget_policy", {})
    if policy.get("frozen_services"):
        for service in policy["frozen_services"]:
            console.print(
                f"Freeze: {service['service']} frozen {service['frozen_hours']:,.0f} h in "
                f"{counted(len(service['intervals']), 'interval')}; "
                f"{counted(service['deployments'], 'deployment')} shipped during it "
                f"({service['exempt']:,} rollbacks/remediations)"
            )
    else:
        console.print("Budget policy: no service was in release freeze")

    toil, oncall = doc["people"]["toil"], doc["people"]["oncall"]
    toil_text = (
        f"{_pct(toil['share'])} of capacity (cap {_pct(toil['cap'], 0)}, {toil['hours']:,.0f} h)"
        if toil["share"] is not None
        else f"{MISSING} ({toil['reason']})"
    )
    console.print(f"Toil: {toil_text}")
    console.print(
        f"On-call: {oncall['pages']:,} pages, {_num(oncall['per_week'], 1)} / week, "
        f"{_pct(oncall['after_hours_share'])} after hours"
        if oncall["per_week"] is not None
        else f"On-call: {MISSING} ({oncall['reason']})"
    )
    quality = doc["data_quality"]
    found = [f"{key.replace('_', ' ')}: {value}" for key, value in quality.items() if value]
    console.print("Data quality: " + ("; ".join(found) if found else "no findings"))
    if doc.get("anomalies") is not None:
        flagged = doc["anomalies"]
        console.print(
            f"Anomalies: {len(flagged):,} {'week' if len(flagged) == 1 else 'weeks'} far from "
            f"their own last {history_weeks} weeks" + (":" if flagged else " (none)"),
            markup=False,
        )
        for item in flagged:
            console.print(f"  {item['description']}", markup=False)
    if "change" in doc:
        print_change(console, doc)


def print_team_summary(console: Console, period: Period, docs: dict[str, dict[str, Any]]) -> None:
    bounds = period.as_json()
    table = Table(
        title=f"Teams, {_when(bounds['from'])} to {_when(bounds['to'])}", title_justify="left"
    )
    for column in (
        "team",
        "deploys/week",
        "lead time",
        "CFR",
        "recovery",
        "rework",
        "incidents",
        "SLOs at risk",
        "toil",
    ):
        # the team is the row's key: never cut to "payme…" on a narrow terminal or a pipe
        table.add_column(
            column, justify="left" if column == "team" else "right", no_wrap=column == "team"
        )
    for team, doc in docs.items():
        dora = doc["dora"]
        risky = sum(1 for slo in doc["slos"] if slo["status"] in ("at_risk", "exhausted"))
        table.add_row(
            team,
            _num(dora["deployment_frequency"]["per_week"], 1),
            _hours(dora["lead_time"]["median_hours"]),
            _pct(dora["change_failure_rate"]["rate"]),
            _hours(dora["recovery_time"]["median_hours"]),
            _pct(dora["rework_rate"]["rate"]),
            _num(doc["incidents"]["count"], 0),
            f"{risky} of {len(doc['slos'])}",
            _pct(doc["people"]["toil"]["share"]),
        )
    console.print(table)


# --- the change from the previous period (`--compare`) ------------------------------------------

# Each compared figure (metrics.trends.COMPARED): its label as in the scorecard's tables and
# its unit: "share" is a rate shown in % whose change is in percentage points, as on the
# dashboard and in the report ("-1.2 pts"); the others change by a relative %.
CHANGE_ROWS: dict[str, tuple[str, str]] = {
    "deployments_per_week": ("deployment frequency", "per week"),
    "lead_time_median_hours": ("change lead time (median)", "hours"),
    "change_failure_rate": ("change fail rate", "share"),
    "recovery_median_hours": ("recovery time (median)", "hours"),
    "rework_rate": ("rework rate", "share"),
    "incidents": ("incidents", "count"),
    "mttd_median_minutes": ("time to detect (median)", "minutes"),
    "mtta_median_minutes": ("time to acknowledge (median)", "minutes"),
    "mttr_median_hours": ("time to resolve (median)", "hours"),
    "toil_share": ("toil share", "share"),
}


def _minute(value: Any) -> Any:
    """An ISO timestamp cut to the minute (`2026-10-27T00:37:00Z`), which the table prints
    as `2026-10-27 00:37Z`: a forecast's microseconds are noise, not precision."""
    if not isinstance(value, str):
        return value
    try:
        moment = parse_timestamp(value)
    except TimestampError:
        return value
    return isoformat_z(moment.replace(second=0, microsecond=0))


def _value(value: Any, unit: str) -> str:
    if unit == "share":
        return _pct(value)
    if unit == "hours":
        return _hours(value)
    if unit == "minutes":
        return MISSING if value is None else f"{value:,.1f} min"
    if unit == "per week":
        return MISSING if value is None else f"{_num(value, 2)} / week"
    return _num(value, 2)


def _change(item: dict[str, Any], unit: str) -> str:
    delta, relative = item.get("delta"), item.get("relative")
    if delta is None:
        return MISSING
    if unit == "share":
        points = delta * 100
        return "±0 pts" if round(points, 1) == 0 else f"{points:+.1f} pts"
    if relative is None:  # from zero: no ratio, so the difference itself
        return "±0" if delta == 0 else f"{delta:+,.{0 if unit == 'count' else 2}f}"
    return "±0 %" if round(relative * 100, 1) == 0 else f"{relative * 100:+.1f} %"


def print_change(console: Console, document: dict[str, Any]) -> None:
    """The previous period beside this one: rates in %, their change in points."""
    period = document["previous"]["period"]
    table = Table(
        title=f"Change from the previous period, {_when(period['from'])} to {_when(period['to'])}",
        title_justify="left",
    )
    for column in ("figure", "previous", "current", "change"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    for name, item in document["change"].items():
        if name == "slos":
            continue
        label, unit = CHANGE_ROWS.get(name, (name.replace("_", " "), ""))
        table.add_row(
            label,
            _value(item["previous"], unit),
            _value(item["current"], unit),
            _change(item, unit),
        )
    console.print(table)
    if not holds_data(document["previous"]):
        console.print(nothing_held("the previous period"))
