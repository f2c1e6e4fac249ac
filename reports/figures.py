"""What the report shows of a scorecard: the figures, their formats, and shared wording.

Every number is read from a scorecard (the `poise metrics` JSON shape) or a frame the
metrics engine returned; nothing here computes a figure, it only chooses, orders and words.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from metrics.trends import change, holds_data
from metrics.wording import shown_change_fail_tier
from reports.model import (
    Column,
    Definition,
    Evidence,
    Fmt,
    Table,
)
from reports.summary import Change, Headline, count_phrase, sentence

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
    unfinished: str = ""  # said first when the quarter is not over at the export

    @property
    def to_date(self) -> bool:
        """The quarter is not over at the export: its figures cover the days so far."""
        return bool(self.unfinished)


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
        "Change lead time, median",
        ("dora", "lead_time", "median_hours"),
        Fmt.HOURS,
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
        "Failed deployment recovery time, median",
        ("dora", "recovery_time", "median_hours"),
        Fmt.HOURS,
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
        "Time to acknowledge, median",
        ("incidents", "mtta_median_minutes"),
        Fmt.MINUTES,
        compared="mtta_median_minutes",
    ),
    Figure(
        "Time to resolve",
        "Time to resolve, median",
        ("incidents", "mttr_median_hours"),
        Fmt.HOURS,
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
        "Change lead time, p90",
        ("dora", "lead_time", "p90_hours"),
        Fmt.HOURS,
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


def tier_of(card: Card | None, figure: Figure) -> str | None:
    """The figure's tier in `card`, a change fail rate's as the pages show it
    (`shown_change_fail_tier`)."""
    if card is None or not figure.tier_path:
        return None
    if figure.tier_path[:2] == ("dora", "change_failure_rate"):
        return shown_change_fail_tier(
            get(card, "dora", "change_failure_rate") or {}, get(card, "data_quality")
        )
    return get(card, *figure.tier_path)


def headline(figure: Figure, current: Card, previous: Card | None) -> Headline:
    if previous is not None and not holds_data(previous):
        previous = None  # before the data begins: no figure, not zeros (`holds_data`)
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
        tier=tier_of(current, figure),
        previous_tier=tier_of(previous, figure),
        graded=figure.tier_path is not None,
        delta=moved.get("delta"),
        relative=moved.get("relative"),
        compared=figure.compared is not None,
    )


def slo_counts(slos: Iterable[Card]) -> dict[str, int]:
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


def incident_sentence(current: Card, previous: Card, to_date: bool = False) -> str:
    count = get(current, "incidents", "count")
    nothing_before = not holds_data(previous)  # the summary says so once (`summary_section`)
    before = None if nothing_before else get(previous, "incidents", "count")
    silent = get(current, "data_quality", "deployments_without_incident_data") or 0
    deployments = get(current, "dora", "deployment_frequency", "deployments") or 0
    if count is None:
        text = (
            "No incident is on record for these services at all (no incident source synced "
            "or imported): there is no incident figure for the quarter"
        )
        if silent:
            text += (
                f", and the change fail rate of its {count_phrase(silent, 'production deployment')}"
                " counts only rollbacks and fixes"
            )
        return text + "."
    text = f"{count_phrase(count, 'incident').capitalize()} started in the quarter"
    text += " so far" if to_date else ""
    before_text = "the whole quarter before" if to_date else "the quarter before"
    text += f" ({count_phrase(before, 'incident')} in {before_text})" if before is not None else ""
    if count:
        resolve = replace(
            headline(INCIDENT_FIGURES[2], current, previous), nothing_before=nothing_before
        )
        text += "; " + sentence(resolve, first=False)
    text += "."
    if silent:
        # the leader reading only the summary must not take a 0 % change fail rate as clean
        share = "All" if silent == deployments else f"{silent:,} of {deployments:,}"
        text += (
            f" {share} production deployments belong to services with no incident on record "
            "at all, so their change fail rate counts only rollbacks and fixes."
        )
    return text


def freeze_sentence(inputs: Inputs) -> str:
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


SLO_COLUMNS = (
    Column("name", "SLO"),
    Column("service", "Service"),
    Column("target", "Target", Fmt.PERCENT3),
    Column("window", "Window", compact=True),
    Column("sli", "SLI", Fmt.PERCENT3),
    Column("budget", "Budget left", Fmt.PERCENT1),
    Column("burn", "Burn 24 h", Fmt.DECIMAL2),
    Column("status", "Status", Fmt.STATUS),
)


def window_text(slo: Card) -> str:
    """The window an SLO was judged over, with its dates ("28 days to 30 Sep", "1 Jul –
    30 Sep" for a calendar quarter), so two tables judging the same SLO over different
    windows say so in every row."""
    window = slo.get("window")
    dated = isinstance(window, Mapping) and window.get("from") and window.get("to")
    # the window is [from, to): its last day is the one before `to`
    last = pd.Timestamp(window["to"]) - pd.Timedelta(microseconds=1) if dated else None
    if isinstance(window, Mapping) and window.get("kind") == "calendar" and window.get("unit"):
        if last is None:
            return f"calendar {window['unit']}"
        return f"{pd.Timestamp(window['from']):%-d %b} – {last:%-d %b}"
    days = slo.get("window_days")
    if days is None:
        return ""
    return f"{days} days to {last:%-d %b}" if last is not None else f"{days} days"


def slo_table(slos: Iterable[Card], title: str, sheet: str, caption: str = "") -> Table:
    rows = tuple(
        (
            slo.get("name"),
            slo.get("service"),
            slo.get("target"),
            window_text(slo),
            slo.get("sli"),
            slo.get("budget_remaining"),
            get(slo, "burn_rate", "24h"),
            slo.get("status"),
        )
        for slo in slos
    )
    return Table(title, SLO_COLUMNS, rows, sheet, caption, empty_text="No SLO is defined here.")


def number(value: Any) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return float(value)
