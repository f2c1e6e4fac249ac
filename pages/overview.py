"""Overview, for engineering leaders: velocity beside resilience, one row per team."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import access, charts, components, guardrails, queries
from dashboard.components import figure_card

TIER_HELP = (
    " The cell gives its tier after the figure; 'n < 5': fewer than 5 events, too few for one. "
)
CHANGE_HELP = "change from the previous period of the same length"

view = components.page_start(
    "Overview",
    "Velocity beside resilience for every team: is speed being bought with reliability?",
)
if view is None:
    st.stop()
query = view.query
if access.current().restricted:  # a team member: the whole organisation's headline first
    access.organisation_headline(query.start, query.end)
card = queries.scorecard(query)
change = queries.comparison(query)
teams = queries.team_table(query)
dora = card["dora"]

st.subheader(
    f"Headline: {components.md(view.scope_label)}",
    help="The figures of the whole selected scope, as `poise metrics` prints them; the "
    "arrows compare with the period just before.",
)
components.dora_cards(dora, change, quality=card["data_quality"])

slos = queries.slo_summary(query)
policy = card.get("budget_policy") or {}
resilience = components.card_row(
    [*components.resilience_titles(), components.card_label("incidents")]
)
components.resilience_cards(slos, policy, resilience, query.end)
with resilience[4]:
    recorded = card["incidents"]["count"] is not None
    figure_card(
        "incidents",
        card["incidents"]["count"],
        change=change["incidents"]["delta"],
        note=f"time to resolve {components.hours(card['incidents']['mttr_median_hours'])} (median)"
        if recorded
        else f"no incident on record: {components.INCIDENT_SOURCES}",
    )

st.subheader(
    "Teams",
    help="One row per team: velocity (deployments, lead time) beside resilience (change fail "
    "rate, recovery, SLOs, budget); the changes from the previous period (Δ) follow.",
)
shown = teams if query.team is None else teams[teams["team"] == query.team]
if query.service is not None:
    st.caption(
        f"The team rows and the chart below cover every service of each team; the headline "
        f"above is {components.md(query.service)} alone."
    )
if shown.empty:
    components.not_enough("No team in this scope yet.")
else:
    compare = st.toggle(
        "Δ from the previous period",
        value=st.query_params.get("compare") == "1",  # a shared link keeps it
        key="teams-compare",
        help="Add each figure's change from the previous period of the same length.",
    )
    if compare:
        st.query_params["compare"] = "1"
    elif "compare" in st.query_params:
        del st.query_params["compare"]
    # what a leader reads first fits the page: each figure with its tier in one cell, then
    # the SLOs, budget, freeze and incidents; the changes from the previous period on demand
    figures = ["deploys_per_week", "lead_time_hours", "change_fail_rate", "recovery_hours"]
    tiers = ["deploys_tier", "lead_time_tier", "change_fail_tier", "recovery_tier"]
    changes = [
        "deploys_per_week_change",
        "lead_time_hours_change",
        "change_fail_rate_change",
        "recovery_hours_change",
    ]
    resilience = [
        "slos_met",
        "slos_with_data",
        "lowest_budget_remaining",
        "budget_state",
        "deployments_during_freeze",
        "incidents",
    ]
    kept = [*tiers, "frozen_at_end"]  # hidden below (in the cells, the caption), in the CSV
    # with the changes, each follows its figure: read side by side, not scrolled to
    columns = [
        column
        for figure, change in zip(figures, changes, strict=True)
        for column in ([figure, change] if compare else [figure])
    ]
    table = shown[["team", *columns, *resilience, *kept]]
    # rates in percent with one decimal (Streamlit's "percent" format varies its decimals:
    # 25% beside 5.26%), named so in the CSV too; a rate's change is in percentage points
    table = table.rename(
        columns={
            "change_fail_rate": "change_fail_rate_pct",
            "lowest_budget_remaining": "lowest_budget_remaining_pct",
            "change_fail_rate_change": "change_fail_rate_change_pts",
        }
    )
    rates = ["change_fail_rate_pct", "lowest_budget_remaining_pct"]
    rates += ["change_fail_rate_change_pts"] if compare else []
    for rate in rates:
        table[rate] = table[rate].astype(float) * 100
    if compare:  # shown to one decimal: a change that rounds to nothing reads +0.0, not -0.0
        deltas = [column for column in table.columns if column.endswith(("_change", "_pts"))]
        table[deltas] = table[deltas].astype(float).round(1) + 0.0

    def percent(value: float) -> str:
        return components.MISSING if pd.isna(value) else f"{value:.1f}%"

    number = st.column_config.NumberColumn
    # tiers in their figure's cell and "3 of 5" SLOs in one: the CSV keeps them as columns
    hidden = dict.fromkeys([*kept, "slos_with_data"])
    styled = components.tiered_style(
        table,
        {
            "deploys_per_week": "deploys_tier",
            "lead_time_hours": "lead_time_tier",
            "change_fail_rate_pct": "change_fail_tier",
            "recovery_hours": "recovery_tier",
        },
        {
            "deploys_per_week": components.per_week,
            "lead_time_hours": components.hours,
            "change_fail_rate_pct": percent,
            "recovery_hours": components.hours,
        },
        states=["budget_state"],
    )
    # a team without an SLO with data has no figure, as the headline card says: not "0 of 0"
    of = [
        f"{met:.0f} of {total:.0f}" if pd.notna(met) and total else components.MISSING
        for met, total in zip(table["slos_met"], table["slos_with_data"], strict=True)
    ]
    components.table(
        components.cell_texts(styled, "slos_met", of),
        "teams",
        written=["lead_time_hours", "recovery_hours"],
        column_config={
            **hidden,
            # a long name is cut in its cell (the CSV keeps it whole), not the figures
            "team": st.column_config.TextColumn(
                "Team", pinned=True, width=components.name_width(table["team"])
            ),
            "deploys_per_week": number(
                "Deploys / week",
                help=components.help_text("deployment_frequency") + TIER_HELP,
            ),
            "deploys_per_week_change": number(
                "Δ", format="%+.1f", width="small", help=f"Deploys / week: {CHANGE_HELP}"
            ),
            "lead_time_hours": number(
                "Lead time", help=components.help_text("lead_time") + TIER_HELP
            ),
            "lead_time_hours_change": number("Δ", width="small", help=f"Lead time: {CHANGE_HELP}"),
            "change_fail_rate_pct": number(
                "Change fail rate",
                help=components.help_text("change_failure_rate")
                + TIER_HELP
                + " 'no data': no incident is on record for the team's services, so only "
                "rollbacks and fixes could count.",
            ),
            "change_fail_rate_change_pts": number(
                "Δ pts",
                format="%+.1f",
                width="small",
                help=f"Change fail rate: {CHANGE_HELP}, in percentage points",
            ),
            "recovery_hours": number(
                "Recovery", help=components.help_text("recovery_time") + TIER_HELP
            ),
            "recovery_hours_change": number("Δ", width="small", help=f"Recovery: {CHANGE_HELP}"),
            "slos_met": number(
                "SLOs met",
                help=components.help_text("slos_met") + " Of the team's SLOs with data.",
            ),
            "lowest_budget_remaining_pct": number(
                "Lowest budget",
                format="%.1f%%",
                help=components.help_text("lowest_budget_remaining"),
            ),
            "budget_state": st.column_config.TextColumn(
                "Budget", help=components.help_text("status")
            ),
            "deployments_during_freeze": number(
                "In freeze",
                format="%d",
                help=components.help_text("deployments_during_freeze"),
            ),
            "incidents": number("Incidents", format="%d", help=components.help_text("incidents")),
        },
    )
    frozen = shown[shown["frozen_at_end"].fillna("") != ""]
    if len(frozen):
        named = "; ".join(f"{row.team}: {row.frozen_at_end}" for row in frozen.itertuples())
        st.caption(
            components.md(f"In release freeze at the period's end: {named}.")
            + " "
            + components.help_text("freeze")
        )
    silent = shown[shown["deployments_without_incident_data"].fillna(0) > 0]
    if len(silent):
        named = ", ".join(
            f"{row.team} ({int(row.deployments_without_incident_data):,} of "
            f"{int(row.deployments):,})"
            for row in silent.itertuples(index=False)
        )
        st.caption(
            components.md(
                "Change fail rate rests on rollbacks and fixes alone where no incident is on "
                f"record for a service: deployments of such services by {named}."
            )
        )

st.subheader(
    "Velocity against stability",
    help="Each team is a point: further right deploys more often, lower fails less often. "
    "The marker shows the state of the team's weakest SLO budget.",
)
components.chart(
    charts.velocity_stability(shown),
    shown[
        [
            "team",
            "deploys_per_week",
            "change_fail_rate",
            "lead_time_hours",
            "lowest_budget_remaining",
            "budget_state",
        ]
    ],
    "velocity-stability",
)

rule = queries.anomaly_rule()
st.subheader("Unusual weeks", help=f"{guardrails.rule_sentence(rule)} (docs/guardrails.md)")
judged = queries.anomaly_weeks(query)
if judged.empty:
    components.not_enough(guardrails.why_no_week_judged(query, rule))
else:
    level = guardrails.scope_level(query)
    figures = guardrails.DORA_FIGURES
    picked = st.selectbox(
        "Figure", list(figures), format_func=lambda name: figures[name], key="anomaly-figure"
    )
    series = guardrails.plausible(judged[(judged["level"] == level) & (judged["figure"] == picked)])
    components.chart(
        guardrails.anomaly_chart(series, figures[picked], rule.history_weeks),
        series[["week_start", "value", "median", "lower", "upper", "sample", "anomaly"]],
        "anomalies",
        labels={"week_start": "week", "lower": "usual from", "upper": "usual to"},
    )
    if note := guardrails.weeks_note(series["week_start"], query.start):
        st.caption(note)
    flags = guardrails.flag_rows(judged)
    if flags.empty:
        st.caption(f"No week of this period is flagged ({len(judged):,} weeks of series judged).")
    else:
        weeks = "1 flagged week" if len(flags) == 1 else f"{len(flags):,} flagged weeks"
        st.markdown(f"**{weeks}** across services, teams and SLOs:")
        components.flagged_weeks(flags, "anomaly-flags")
