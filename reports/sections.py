"""The report's sections, composed from figures the metrics engine already computed.

Nothing here computes a figure: every number is read from a scorecard (the `poise metrics`
JSON shape) or a frame the engine returned, and only chosen, ordered and worded here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from metrics.trends import change
from reports.formats import display
from reports.model import (
    BulletList,
    Cell,
    Chart,
    ChartKind,
    Column,
    Definition,
    Definitions,
    Entry,
    Evidence,
    Fmt,
    Paragraph,
    Section,
    Series,
    Table,
)
from reports.summary import Change, Headline, change_text, count_phrase, paragraph, sentence

Card = Mapping[str, Any]
SIGNIFICANT_INCIDENTS = 5
LISTED_FREEZE_DEPLOYMENTS = 25


@dataclass
class Inputs:
    """Everything a report shows, as the metrics engine returned it."""

    quarter: str
    scope_team: str | None
    current: Card  # scorecard of the quarter (`poise metrics --format json` shape)
    previous: Card  # scorecard of the quarter before
    teams: dict[str, Card]  # each team's scorecard of the quarter (only the team, if scoped)
    previous_teams: dict[str, Card]  # the same for the quarter before
    quarter_slos: list[Card]  # the SLOs evaluated over the calendar quarter
    weekly: pd.DataFrame  # per week: the scope (`team` "") and, org-wide, each team
    freezes: pd.DataFrame  # service, team, start, end, slos
    freeze_deployments: pd.DataFrame  # id, service, team, deployed_at, exempt
    incidents: pd.DataFrame  # incident rows of the quarter, with their durations
    coverage: list[str]  # what the numbers do not see, worded by the engine
    definitions: list[Definition]
    evidence: list[Evidence] = field(default_factory=list)
    services: int = 0
    min_sample: int = 5


def get(card: Card | None, *path: str) -> Any:
    """`card[a][b]…`, or None where any step is missing."""
    value: Any = card
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


# --- the figures the summary and the scorecards show -------------------------------------


@dataclass(frozen=True)
class Figure:
    label: str  # starts a sentence
    name: str  # a table row
    path: tuple[str, ...]
    fmt: Fmt
    unit: str = ""
    change: Change = Change.RELATIVE
    tier_path: tuple[str, ...] | None = None
    sample_path: tuple[str, ...] | None = None
    sample_noun: str = ""
    compared: str | None = None  # its key in the engine's quarter-over-quarter `change`


DORA_FIGURES = (
    Figure(
        "Deployment frequency",
        "Deployment frequency (per week)",
        ("dora", "deployment_frequency", "per_week"),
        Fmt.DECIMAL1,
        " per week",
        tier_path=("dora", "deployment_frequency", "tier"),
        sample_path=("dora", "deployment_frequency", "deployments"),
        sample_noun="deployments",
        compared="deployments_per_week",
    ),
    Figure(
        "Change lead time",
        "Change lead time, median (h)",
        ("dora", "lead_time", "median_hours"),
        Fmt.DECIMAL1,
        " h",
        tier_path=("dora", "lead_time", "tier"),
        sample_path=("dora", "lead_time", "changes"),
        sample_noun="changes",
        compared="lead_time_median_hours",
    ),
    Figure(
        "Change fail rate",
        "Change fail rate",
        ("dora", "change_failure_rate", "rate"),
        Fmt.PERCENT1,
        change=Change.POINTS,
        tier_path=("dora", "change_failure_rate", "tier"),
        sample_path=("dora", "change_failure_rate", "deployments"),
        sample_noun="deployments",
        compared="change_failure_rate",
    ),
    Figure(
        "Failed deployment recovery time",
        "Failed deployment recovery time, median (h)",
        ("dora", "recovery_time", "median_hours"),
        Fmt.DECIMAL1,
        " h",
        tier_path=("dora", "recovery_time", "tier"),
        sample_path=("dora", "recovery_time", "failures"),
        sample_noun="failures",
        compared="recovery_median_hours",
    ),
    Figure(
        "Rework rate",
        "Rework rate",
        ("dora", "rework_rate", "rate"),
        Fmt.PERCENT1,
        change=Change.POINTS,
        sample_path=("dora", "rework_rate", "deployments"),
        sample_noun="deployments",
        compared="rework_rate",
    ),
)
INCIDENT_FIGURES = (
    Figure(
        "Incidents", "Incidents started", ("incidents", "count"), Fmt.COUNT, compared="incidents"
    ),
    Figure(
        "Time to acknowledge",
        "Time to acknowledge, median (min)",
        ("incidents", "mtta_median_minutes"),
        Fmt.DECIMAL1,
        " min",
    ),
    Figure(
        "Time to resolve",
        "Time to resolve, median (h)",
        ("incidents", "mttr_median_hours"),
        Fmt.DECIMAL1,
        " h",
        compared="mttr_median_hours",
    ),
)
DETAIL_FIGURES = (
    Figure(
        "Deployments",
        "Production deployments",
        ("dora", "deployment_frequency", "deployments"),
        Fmt.COUNT,
    ),
    Figure(
        "Lead time p90",
        "Change lead time, p90 (h)",
        ("dora", "lead_time", "p90_hours"),
        Fmt.DECIMAL1,
        " h",
    ),
    Figure(
        "Failed deployments",
        "Failed deployments",
        ("dora", "change_failure_rate", "failed"),
        Fmt.COUNT,
    ),
    Figure(
        "Rework deployments",
        "Rollback and remediation deployments",
        ("dora", "rework_rate", "rework"),
        Fmt.COUNT,
    ),
)


def headline(figure: Figure, current: Card, previous: Card | None) -> Headline:
    moved = (
        change(dict(current), dict(previous)).get(figure.compared, {})
        if previous is not None and figure.compared
        else {}
    )
    return Headline(
        label=figure.label,
        current=get(current, *figure.path),
        previous=get(previous, *figure.path) if previous is not None else None,
        fmt=figure.fmt,
        unit=figure.unit,
        change=figure.change,
        tier=get(current, *figure.tier_path) if figure.tier_path else None,
        previous_tier=get(previous, *figure.tier_path) if figure.tier_path and previous else None,
        graded=figure.tier_path is not None,
        delta=moved.get("delta"),
        relative=moved.get("relative"),
        compared=figure.compared is not None,
    )


def _slo_counts(slos: Iterable[Card]) -> dict[str, int]:
    counts = {"ok": 0, "at_risk": 0, "exhausted": 0, "no data": 0}
    for slo in slos:
        status = slo.get("status")
        counts[status if status in counts else "no data"] += 1
    return counts


def is_empty(card: Card) -> bool:
    """No deployment, no changes, no incident and no SLI in the window: nothing to report."""
    deployments = get(card, "dora", "deployment_frequency", "deployments") or 0
    changes = get(card, "dora", "lead_time", "changes") or 0
    incidents = get(card, "incidents", "count") or 0
    slis = [slo for slo in card.get("slos", []) if slo.get("sli") is not None]
    return deployments == 0 and changes == 0 and incidents == 0 and not slis


# --- sections ---------------------------------------------------------------------------


def summary_section(inputs: Inputs) -> Section:
    current, previous = inputs.current, inputs.previous
    blocks: list[Any] = []
    if is_empty(current):
        blocks.append(
            Paragraph(
                f"No data for {inputs.quarter}: the warehouse holds no production deployment, "
                "deployed change, incident or SLI sample in this quarter for this scope, so "
                "every figure below reads “no data”. Check that the collectors ran for the "
                "quarter (poise sync) or that the right quarter was asked for.",
                "lead",
            )
        )
    blocks.append(
        Paragraph(paragraph([headline(f, current, previous) for f in DORA_FIGURES]), "lead")
    )
    blocks.append(Paragraph(_reliability_sentence(inputs), "lead"))
    blocks.append(Paragraph(_incident_sentence(current, previous), "lead"))
    blocks.append(Paragraph(_freeze_sentence(inputs), "lead"))
    blocks.append(_headline_table(current, previous))
    blocks.append(
        Paragraph(
            "Tiers follow the benchmark table of the State of DevOps report named in the "
            "appendix; a figure resting on too small a sample reads “insufficient data” "
            "instead of a tier. Change is against the quarter before: percent for "
            "quantities, percentage points for rates.",
            "note",
        )
    )
    return Section("Executive summary", "summary", blocks)


def _reliability_sentence(inputs: Inputs) -> str:
    slos = list(inputs.current.get("slos", []))
    if not slos:
        return "No SLO is defined for this scope."
    counts = _slo_counts(slos)
    parts = [
        f"{counts['ok']} ok",
        f"{counts['at_risk']} at risk",
        f"{counts['exhausted']} exhausted",
    ]
    if counts["no data"]:
        parts.append(f"{counts['no data']} without data")
    text = f"At the end of the quarter, of {count_phrase(len(slos), 'SLO')}: {', '.join(parts)}."
    measured = [s for s in inputs.quarter_slos if s.get("sli") is not None]
    if measured:
        met = sum(1 for s in measured if s["sli"] >= s["target"])
        text += (
            f" Over the calendar quarter, {met} of {len(measured)} SLOs with data met their target."
        )
    return text


def _incident_sentence(current: Card, previous: Card) -> str:
    count = get(current, "incidents", "count") or 0
    before = get(previous, "incidents", "count")
    text = f"{count_phrase(count, 'incident').capitalize()} started in the quarter"
    text += (
        f" ({count_phrase(before, 'incident')} in the quarter before)" if before is not None else ""
    )
    if count:
        text += "; " + sentence(headline(INCIDENT_FIGURES[2], current, previous), first=False)
    return text + "."


def _freeze_sentence(inputs: Inputs) -> str:
    freezes, shipped = inputs.freezes, inputs.freeze_deployments
    if freezes.empty:
        return "No service was in release freeze (error budget exhausted) during the quarter."
    services = freezes["service"].nunique()
    exempt = int(shipped["exempt"].sum()) if not shipped.empty else 0
    others = len(shipped) - exempt
    return (
        f"{count_phrase(services, 'service')} spent part of the quarter in release freeze; "
        f"{count_phrase(len(shipped), 'deployment')} shipped during a freeze "
        f"({exempt} rollbacks or fixes, which the policy allows, and {others} other)."
    )


def _headline_table(current: Card, previous: Card) -> Table:
    rows: list[tuple[Entry, ...]] = []
    for figure in (*DORA_FIGURES, *INCIDENT_FIGURES):
        item = headline(figure, current, previous)
        sample = get(current, *figure.sample_path) if figure.sample_path else None
        rows.append(
            (
                figure.name,
                Cell(item.current, figure.fmt),
                Cell(item.previous, figure.fmt),
                change_text(item),
                Cell(item.tier, Fmt.TIER) if figure.tier_path else "",
                f"{sample:,} {figure.sample_noun}" if sample is not None else "",
            )
        )
    columns = (
        Column("figure", "Figure"),
        Column("current", "This quarter", Fmt.DECIMAL1),
        Column("previous", "Quarter before", Fmt.DECIMAL1),
        Column("change", "Change", compact=True),
        Column("tier", "Tier", Fmt.TIER),
        Column("sample", "Sample", compact=True),
    )
    return Table("Headline figures", columns, tuple(rows), "Headline figures")


def _scorecard_table(card: Card, title: str, sheet: str) -> Table:
    rows: list[tuple[Entry, ...]] = []
    for figure in (*DORA_FIGURES, *DETAIL_FIGURES, *INCIDENT_FIGURES):
        sample = get(card, *figure.sample_path) if figure.sample_path else None
        rows.append(
            (
                figure.name,
                Cell(get(card, *figure.path), figure.fmt),
                Cell(get(card, *figure.tier_path), Fmt.TIER) if figure.tier_path else "",
                f"{sample:,} {figure.sample_noun}" if sample is not None else "",
            )
        )
    columns = (
        Column("figure", "Figure"),
        Column("value", "Value", Fmt.DECIMAL1),
        Column("tier", "Tier", Fmt.TIER),
        Column("sample", "Sample", compact=True),
    )
    return Table(title, columns, tuple(rows), sheet)


SLO_COLUMNS = (
    Column("name", "SLO"),
    Column("service", "Service"),
    Column("target", "Target", Fmt.PERCENT3),
    Column("window", "Window"),
    Column("sli", "SLI", Fmt.PERCENT3),
    Column("budget", "Budget left", Fmt.PERCENT1),
    Column("burn", "Burn 24 h", Fmt.DECIMAL2),
    Column("status", "Status", Fmt.STATUS),
)


def _window_text(slo: Card) -> str:
    window = slo.get("window")
    if isinstance(window, Mapping) and window.get("kind") == "calendar" and window.get("unit"):
        return f"calendar {window['unit']}"
    days = slo.get("window_days")
    return f"{days} days" if days is not None else ""


def _slo_table(slos: Iterable[Card], title: str, sheet: str, caption: str = "") -> Table:
    rows = tuple(
        (
            slo.get("name"),
            slo.get("service"),
            slo.get("target"),
            _window_text(slo),
            slo.get("sli"),
            slo.get("budget_remaining"),
            get(slo, "burn_rate", "24h"),
            slo.get("status"),
        )
        for slo in slos
    )
    return Table(title, SLO_COLUMNS, rows, sheet, caption, empty_text="No SLO is defined here.")


def teams_section(inputs: Inputs) -> Section:
    blocks: list[Any] = []
    if inputs.scope_team is None and len(inputs.teams) > 1:
        blocks.append(_teams_side_by_side(inputs.teams))
    subsections = []
    for team, card in sorted(inputs.teams.items()):
        team_blocks: list[Any] = [
            Paragraph(
                paragraph(
                    [headline(f, card, inputs.previous_teams.get(team)) for f in DORA_FIGURES[:4]]
                )
            ),
            _scorecard_table(card, f"Scorecard: {team}", f"Team {team}"),
            _slo_table(
                card.get("slos", []),
                f"SLOs at the end of the quarter: {team}",
                f"SLOs {team}",
                "Each SLO over its own window, evaluated at the end of the quarter.",
            ),
        ]
        subsections.append(Section(f"Team {team}", f"team-{_anchor(team)}", team_blocks))
    title = "Team scorecards" if inputs.scope_team is None else "Team scorecard"
    return Section(title, "teams", blocks, subsections)


def _teams_side_by_side(teams: dict[str, Card]) -> Table:
    columns = (
        Column("team", "Team"),
        Column("freq", "Deploys per week", Fmt.DECIMAL1),
        Column("lead", "Lead time, median (h)", Fmt.DECIMAL1),
        Column("cfr", "Change fail rate", Fmt.PERCENT1),
        Column("mttr", "Recovery, median (h)", Fmt.DECIMAL1),
        Column("rework", "Rework rate", Fmt.PERCENT1),
        Column("incidents", "Incidents", Fmt.COUNT),
        Column("slos", "SLOs ok / at risk / exhausted", compact=True),
    )
    rows = []
    for team, card in sorted(teams.items()):
        counts = _slo_counts(card.get("slos", []))
        rows.append(
            (
                team,
                get(card, "dora", "deployment_frequency", "per_week"),
                get(card, "dora", "lead_time", "median_hours"),
                get(card, "dora", "change_failure_rate", "rate"),
                get(card, "dora", "recovery_time", "median_hours"),
                get(card, "dora", "rework_rate", "rate"),
                get(card, "incidents", "count"),
                f"{counts['ok']} / {counts['at_risk']} / {counts['exhausted']}",
            )
        )
    return Table(
        "Teams side by side: delivery beside reliability",
        columns,
        tuple(rows),
        "Teams side by side",
    )


TREND_LINES = (
    # column of the weekly frame, its sample column, title, y title, format
    (
        "lead_time_median_hours",
        "changes",
        "Change lead time per week, median",
        "hours",
        Fmt.DECIMAL1,
    ),
    (
        "change_failure_rate",
        "deployments",
        "Change fail rate per week",
        "failed share",
        Fmt.PERCENT1,
    ),
    (
        "recovery_median_hours",
        "failures",
        "Failed deployment recovery time per week, median",
        "hours",
        Fmt.DECIMAL1,
    ),
)


def trends_section(inputs: Inputs) -> Section:
    weekly = inputs.weekly
    blocks: list[Any] = [
        Paragraph(
            "Weeks start on Monday (UTC); the first and last weeks of the quarter may be "
            f"partial. A week whose figure rests on fewer than {inputs.min_sample} deployments, "
            "changes or failures is left blank in the charts (the workbook has every week).",
            "note",
        )
    ]
    if weekly.empty or not weekly["deployments"].any():
        blocks.append(Paragraph("No production deployment in the quarter: no trend to draw."))
        return Section("Delivery trends over the quarter", "trends", blocks)
    weeks = sorted(weekly["week"].unique())
    labels = tuple(pd.Timestamp(week).strftime("%-d %b") for week in weeks)
    scope = weekly[weekly["team"] == ""].set_index("week").reindex(weeks)
    teams = sorted(t for t in weekly["team"].unique() if t)
    if teams:
        series = tuple(
            Series(
                team, tuple(_number(v) for v in _team_column(weekly, team, "deployments", weeks))
            )
            for team in teams
        )
        kind = ChartKind.STACKED
    else:
        series = (Series("deployments", tuple(_number(v) for v in scope["deployments"])),)
        kind = ChartKind.BAR
    blocks.append(
        Chart(
            "Production deployments per week",
            kind,
            labels,
            series,
            "deployments",
            Fmt.COUNT,
            "Trend deployments",
            x_title="week starting",
        )
    )
    for column, sample, title, y_title, fmt in TREND_LINES:
        values = scope[column].where(scope[sample] >= inputs.min_sample)
        blocks.append(
            Chart(
                title,
                ChartKind.LINE,
                labels,
                (Series(title, tuple(_number(v) for v in values)),),
                y_title,
                fmt,
                f"Trend {y_title} {column.split('_')[0]}"[:31],
                x_title="week starting",
                empty_text=f"No week of the quarter has {inputs.min_sample} or more {sample} "
                "behind this figure, so no weekly value is drawn; the quarter's figure is in "
                "the scorecard.",
            )
        )
    return Section("Delivery trends over the quarter", "trends", blocks)


def _team_column(weekly: pd.DataFrame, team: str, column: str, weeks: list[Any]) -> pd.Series:
    return weekly[weekly["team"] == team].set_index("week")[column].reindex(weeks)


def _number(value: Any) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return float(value)


def reliability_section(inputs: Inputs) -> Section:
    slos = inputs.quarter_slos
    blocks: list[Any] = [
        Paragraph(
            "Attainment over the calendar quarter: the SLI summed over every sample of the "
            "quarter, against each SLO's target. The error budget is the quarter's: how much "
            "of the failures the target allows over the quarter were left unspent.",
            "note",
        )
    ]
    if slos:
        blocks.append(
            Chart(
                "Error budget left at the end of the quarter",
                ChartKind.HBAR,
                tuple(str(s.get("name")) for s in slos),
                (Series("budget left", tuple(s.get("budget_remaining") for s in slos)),),
                "error budget left over the quarter (below 0: overspent)",
                Fmt.PERCENT1,
                "SLO budget chart",
                notes=tuple(
                    "no data"
                    if s.get("sli") is None
                    else f"SLI {display(s['sli'], Fmt.PERCENT3)} for {display(s.get('target'), Fmt.PERCENT3)}"
                    for s in slos
                ),
            )
        )
    blocks.append(_slo_table(slos, "SLO attainment over the calendar quarter", "SLO attainment"))
    return Section("Reliability: SLO attainment", "reliability", blocks, [_policy_section(inputs)])


def _policy_section(inputs: Inputs) -> Section:
    freezes, shipped = inputs.freezes, inputs.freeze_deployments
    blocks: list[Any] = [
        Paragraph(
            "Budget policy: a service whose SLO has exhausted its error budget is in release "
            "freeze (only rollbacks and fixes should ship) until the budget recovers.",
            "note",
        ),
        Paragraph(_freeze_sentence(inputs)),
    ]
    freeze_rows = tuple(
        (
            row.service,
            row.team,
            ", ".join(row.slos) if isinstance(row.slos, list | tuple) else str(row.slos),
            row.start.to_pydatetime(),
            row.end.to_pydatetime(),
        )
        for row in freezes.itertuples(index=False)
    )
    blocks.append(
        Table(
            "Release freezes",
            (
                Column("service", "Service"),
                Column("team", "Team"),
                Column("slos", "Exhausted SLOs"),
                Column("start", "Frozen from", Fmt.DATETIME),
                Column("end", "Until", Fmt.DATETIME),
            ),
            freeze_rows,
            "Freezes",
            empty_text="No release freeze in the quarter.",
        )
    )
    listed = shipped.head(LISTED_FREEZE_DEPLOYMENTS)
    caption = (
        f"The first {LISTED_FREEZE_DEPLOYMENTS} of {len(shipped)}; the workbook lists all."
        if len(shipped) > LISTED_FREEZE_DEPLOYMENTS
        else ""
    )
    blocks.append(
        Table(
            "Deployments during a freeze",
            (
                Column("id", "Deployment"),
                Column("service", "Service"),
                Column("deployed_at", "Deployed", Fmt.DATETIME),
                Column("kind", "Kind"),
            ),
            tuple(
                (
                    row.id,
                    row.service,
                    row.deployed_at.to_pydatetime(),
                    "rollback or fix (allowed)" if row.exempt else "other change",
                )
                for row in listed.itertuples(index=False)
            ),
            "Freeze deployments",
            caption,
            empty_text="No deployment shipped during a freeze.",
        )
    )
    return Section("Budget policy: release freezes", "policy", blocks)


SEVERITY_WORDS = {
    "critical": 0,
    "urgent": 0,
    "high": 1,
    "major": 1,
    "medium": 2,
    "moderate": 2,
    "low": 3,
    "minor": 3,
    "info": 4,
}


def severity_rank(severity: Any) -> int:
    """Lower is more severe: SEV1 / P1 / critical first, unknown last."""
    text = str(severity or "").strip().lower()
    digits = "".join(ch for ch in text if ch.isdigit())
    if digits:
        return int(digits)
    return SEVERITY_WORDS.get(text, 99)


def incidents_section(inputs: Inputs) -> Section:
    current = inputs.current
    blocks: list[Any] = [Paragraph(_incident_sentence(current, inputs.previous))]
    by_severity = get(current, "incidents", "by_severity") or {}
    blocks.append(
        _breakdown(
            "Incidents by severity",
            "Severity",
            by_severity,
            "Incidents by severity",
            key=severity_rank,
        )
    )
    by_cause = get(current, "incidents", "by_cause") or {}
    blocks.append(_breakdown("Incidents by cause", "Cause", by_cause, "Incidents by cause"))
    attribution = current.get("attribution") or {}
    if attribution:
        blocks.append(
            Paragraph(
                "Attribution of incidents to deployments: "
                f"{attribution.get('explicit', 0)} explicit (the incident names its deployment), "
                f"{attribution.get('inferred', 0)} inferred (the service's latest production "
                f"deployment shortly before it started), "
                f"{attribution.get('unattributed', 0)} unattributed."
            )
        )
    blocks.append(_significant(inputs.incidents))
    return Section("Incidents and postmortems", "incidents", blocks)


def _breakdown(
    title: str, label: str, groups: Mapping[str, Card], sheet: str, key: Any = None
) -> Table:
    names = sorted(groups, key=(lambda name: (key(name), name)) if key else None)
    rows = tuple(
        (
            name,
            groups[name].get("count"),
            groups[name].get("mtta_median_minutes"),
            groups[name].get("mttr_median_hours"),
            groups[name].get("mttr_p90_hours"),
        )
        for name in names
    )
    columns = (
        Column("name", label),
        Column("count", "Incidents", Fmt.COUNT),
        Column("mtta", "Acknowledge, median (min)", Fmt.DECIMAL1),
        Column("mttr", "Resolve, median (h)", Fmt.DECIMAL1),
        Column("mttr90", "Resolve, p90 (h)", Fmt.DECIMAL1),
    )
    return Table(title, columns, rows, sheet, empty_text="No incident in the quarter.")


def _significant(incidents: pd.DataFrame) -> Table:
    columns = (
        Column("started", "Started", Fmt.DATETIME),
        Column("service", "Service"),
        Column("severity", "Severity"),
        Column("title", "Incident"),
        Column("mttr", "Resolved after (h)", Fmt.DECIMAL1),
        Column("cause", "Cause or deployment"),
        Column("postmortem", "Postmortem"),
    )
    rows: tuple[tuple[Entry, ...], ...] = ()
    if not incidents.empty:
        ranked = incidents.assign(
            _rank=incidents["severity"].map(severity_rank),
            _length=incidents["mttr"].fillna(float("inf")),  # unresolved: still going
        ).sort_values(["_rank", "_length", "started_at"], ascending=[True, False, True])
        rows = tuple(
            (
                row.started_at.to_pydatetime(),
                row.service,
                row.severity,
                row.title or row.id,
                _number(row.mttr),
                _cause_text(row),
                row.postmortem_url if isinstance(row.postmortem_url, str) else "none linked",
            )
            for row in ranked.head(SIGNIFICANT_INCIDENTS).itertuples(index=False)
        )
    return Table(
        "Most significant incidents",
        columns,
        rows,
        "Significant incidents",
        "Ranked by severity, then by time to resolve (unresolved first). Every incident of the quarter is in the workbook.",
        empty_text="No incident in the quarter.",
    )


def _cause_text(row: Any) -> str:
    deployment = getattr(row, "deployment_id", None)
    method = getattr(row, "method", None)
    if isinstance(deployment, str) and deployment:
        return f"deployment {deployment} ({method or 'attributed'})"
    cause = getattr(row, "cause", None)
    return str(cause) if isinstance(cause, str) and cause else "unattributed"


def coverage_section(inputs: Inputs) -> Section:
    items = tuple(inputs.coverage) or ("The metrics engine reported no gap in the data.",)
    return Section(
        "Data coverage: what the numbers do not see",
        "coverage",
        [
            Paragraph(
                "Every figure above rests on the rows the collectors brought in. These notes "
                "say where those rows are thin or missing, so a figure is read with its limits."
            ),
            BulletList(items),
        ],
    )


def appendix_section(inputs: Inputs) -> Section:
    return Section(
        "Appendix: definitions",
        "definitions",
        [
            Paragraph(
                "All times are UTC; a period is half-open, [start, end). These are the short "
                "definitions Poise shows on every page and report; docs/metrics.md gives each "
                "in full, with worked examples."
            ),
            Definitions(tuple(inputs.definitions)),
        ],
    )


def _anchor(name: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in name.lower())
