"""The guardrails on the pages: the release gate's ledger, certificates at risk, and the
weeks flagged as anomalies (docs/guardrails.md).

Plain functions of a `Warehouse` and a `Query` like `dashboard.data` (wrapped by
`dashboard.queries`), the tables the pages show, and the anomaly chart. The figures come
from `metrics.gate_data`, `metrics.certificates` and `metrics.anomalies`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from dashboard.charts import BLUE, GREY, VERMILLION, _layout, empty, safe, week_ticks
from dashboard.data import Query, Warehouse
from metrics import Period, anomalies, certificates, gate_data
from poise.config import AnomalyConfig
from poise.timeutil import utcnow

DORA_FIGURES = {name: anomalies.FIGURES[name].label for name in anomalies.DORA_FIGURES}
# The gate's decisions as the cards' titles: a word each, so the four cards share a row
# on a laptop and wrap two by two on a smaller one (a 39-character title needs a card of
# 314 px); what each means goes under it and in its tooltip.
DECISION_WORDS = {"ship": "ship", "warn": "warn", "freeze": "freeze", "exception": "exception"}
DECISION_NOTES = {
    "ship": "nothing stood in the way",
    "warn": "shipped, with a reason to look",
    "freeze": "feature releases stopped",
    "exception": "a fix or rollback in a freeze",
}
DECISION_HELP = {
    "ship": "The gate found nothing to stop or warn about: no SLO budget spent, at risk "
    "or low, no burn alert, fresh SLI data (docs/guardrails.md).",
    "warn": "Shipped with a warning: a budget at risk or low, a ticket-level burn alert, "
    "an SLO with no events in its window, or stale SLI data; the reason says which.",
    "freeze": "A feature release stopped (`poise gate` exit 3): a budget is spent or a "
    "page-level burn alert fires. Fixes and rollbacks still ship.",
    "exception": "A fix or rollback asked during a freeze: it shipped under the exemption, "
    "and the ledger says so.",
}
DECISION_COLOURS = {"ship": BLUE, "warn": "#E69F00", "freeze": VERMILLION, "exception": GREY}


def gate_ledger(wh: Warehouse, query: Query) -> dict[str, Any]:
    """The gate's decisions in the period for the scope (newest first) and their counts. A
    period that ends today (the pages' default ends at today's midnight) reaches up to now,
    so this morning's decisions show."""
    now = utcnow()
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    period = Period(query.start, now) if today <= query.end < now else query.period
    with wh.engine.connect() as connection:
        frame = gate_data.ledger(connection, period, query.scope)
    return {"decisions": frame, "counts": gate_data.ledger_counts(frame), "until": period.end}


def certificate_view(wh: Warehouse, query: Query) -> dict[str, Any]:
    """Every checked certificate in scope with its days left and risk now, and the risks
    (expired, expiring within 30 days, invalid, unreachable), the most urgent first."""
    with wh.engine.connect() as connection:
        stored = certificates.load(connection, query.scope)
    now = utcnow()
    risks = certificates.expiry_risks(stored, now)
    risks["summary"] = [certificates.describe(row) for _, row in risks.iterrows()]
    risks["problem"] = [
        str(verify or error or "")
        for verify, error in zip(risks["verify_error"], risks["error"], strict=True)
    ]
    return {"checked": len(stored), "all": certificates.with_risk(stored, now), "risks": risks}


def anomaly_weeks(wh: Warehouse, query: Query, rule: AnomalyConfig) -> pd.DataFrame:
    """Every whole week of the period judged against its series' previous weeks."""
    return anomalies.weekly_judgements(
        wh.engine, query.period, query.scope, wh.settings, rule, now=utcnow()
    )


def why_no_week_judged(query: Query, rule: AnomalyConfig) -> str:
    """Why `anomaly_weeks` judged nothing: the period holds no whole week that has ended,
    or no series of the scope has data in its weeks or the history before them (a week
    with too little history is still listed, as not judged)."""
    if not anomalies.judged_weeks(query.period, utcnow()):
        return (
            "This period holds no whole week that has ended (weeks run Monday to Monday, "
            "UTC): choose a longer period."
        )
    return (
        "No deployment, change or SLO of this scope falls in this period's weeks or in the "
        f"{rule.history_weeks} weeks before them: there is nothing to judge."
    )


# --- shaping for the pages ------------------------------------------------------------------


def scope_level(query: Query) -> str:
    """The level of the series that describes the whole scope."""
    return "service" if query.service else "scope"


def flag_rows(judged: pd.DataFrame) -> pd.DataFrame:
    """The flagged weeks as a table: week, what, figure, value, the usual range, its median,
    which way it departed (worse or better) and the one-line description (for the CSV: the pages hide it, `FLAG_COLUMNS`)."""
    flags = anomalies.flagged(judged)
    columns = ["week", "what", "figure", "value", "usual", "median", "direction", "description"]
    if flags.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for _, row in flags.iterrows():
        rows.append(
            {
                "week": row["week_start"],
                "what": anomalies.subject(row),
                "figure": row["label"],
                "value": anomalies.value_text(row),
                "usual": anomalies.usual_range(row),
                "median": anomalies.median_text(row),
                "direction": "worse" if row["worse"] else "better",
                "description": anomalies.describe(row),
            }
        )
    return pd.DataFrame(rows, columns=columns)


rule_sentence = anomalies.rule_sentence  # the rule in words, for the pages


def plausible(series: pd.DataFrame) -> pd.DataFrame:
    """One figure's judged weeks with the usual range clipped to what the figure can be
    (no "−2 deployments"), as the flagged weeks' sentences give it."""
    if series.empty:
        return series
    lower, upper = anomalies.plausible_band(
        series["figure"].iloc[0],
        series["lower"].astype(float),  # None where a week was not judged
        series["upper"].astype(float),
    )
    return series.assign(lower=lower, upper=upper)


def anomaly_chart(series: pd.DataFrame, label: str, history_weeks: int) -> go.Figure:
    """One weekly series with the band of usual values (median ± k·scale of the previous
    `history_weeks` weeks) and the flagged weeks marked."""
    if series.empty:
        return empty("No whole week of this period could be judged for this figure.")
    series = series.sort_values("week_start")
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=list(series["week_start"]) + list(series["week_start"])[::-1],
            y=list(series["upper"]) + list(series["lower"])[::-1],
            fill="toself",
            mode="lines",
            fillcolor="rgba(153,153,153,0.2)",
            line={"width": 0},
            name=f"usual range (last {history_weeks} weeks)",
            hoverinfo="skip",
        )
    )
    figure.add_trace(
        go.Scatter(
            x=series["week_start"],
            y=series["value"],
            mode="lines+markers",
            name=safe(label),
            line={"color": BLUE},
            hovertemplate="week of %{x|%Y-%m-%d}: %{y:.3g}<extra></extra>",
        )
    )
    flags = series[series["anomaly"].astype(bool)]
    if len(flags):
        figure.add_trace(
            go.Scatter(
                x=flags["week_start"],
                y=flags["value"],
                mode="markers",
                name="anomaly",
                marker={"color": VERMILLION, "symbol": "x", "size": 14, "line": {"width": 2}},
                hovertemplate="anomaly, week of %{x|%Y-%m-%d}: %{y:.3g}<extra></extra>",
            )
        )
    figure.update_xaxes(title=None, type="date", **week_ticks(series["week_start"]))
    figure.update_yaxes(title=safe(label))
    return _layout(figure)


def weeks_note(week_starts: pd.Series, start: datetime) -> str:
    """Why the weekly chart starts before the period: weeks are judged whole, Monday to
    Monday, so the week the period starts in begins earlier unless it starts on a Monday."""
    if week_starts.empty:
        return ""
    first = pd.Timestamp(week_starts.min())
    if first >= pd.Timestamp(start):
        return ""
    return (
        f"Each point is a whole week, Monday to Monday (UTC), that overlaps the period: the "
        f"first starts on {first:%-d %b}, before the period does."
    )
