"""Team retro: one team's sprint against the sprint before, ready for the retro notes."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import streamlit as st

from dashboard import components, guardrails, queries, retro
from dashboard.components import figure_card, help_text, md
from dashboard.data import Query
from dashboard.filters import today
from poise.timeutil import start_of_day

SPRINT_LENGTHS = (7, 14, 21, 28)

view = components.page_start(
    "Team retro",
    "One team's sprint against the sprint before: what changed, what was slow, what broke",
    period=False,
    service=False,
)
if view is None:
    st.stop()

team = view.query.team
if team is None:
    teams = view.catalog["teams"]
    st.info("Choose a team in the sidebar for its retro.", icon=":material/groups:")
    if not teams:
        st.stop()
    team = st.selectbox("Team", teams, key="retro-team")

controls = st.columns([1, 1, 2])
default_end = today().date()
try:
    asked_end = date.fromisoformat(st.query_params.get("sprint_end", ""))
except ValueError:
    asked_end = default_end
asked_days = st.query_params.get("sprint_days", "14")
with controls[0]:
    last_day = st.date_input(
        "Last day of the sprint",
        value=asked_end - timedelta(days=1),
        help="The sprint ends at the end of this day (UTC).",
    )
with controls[1]:
    days = st.selectbox(
        "Sprint length (days)",
        SPRINT_LENGTHS,
        index=SPRINT_LENGTHS.index(int(asked_days))
        if asked_days.isdigit() and int(asked_days) in SPRINT_LENGTHS
        else 1,
    )
end = start_of_day(last_day) + timedelta(days=1)
query = Query(end - timedelta(days=days), end, team, None)
st.query_params["sprint_end"] = f"{end:%Y-%m-%d}"
st.query_params["sprint_days"] = str(days)
previous = query.previous()
sprint_label = f"{query.start:%Y-%m-%d} – {(end - timedelta(days=1)):%Y-%m-%d}"
with controls[2]:
    st.markdown(
        f"**{md(team)}**, sprint {sprint_label}  \nagainst {previous.start:%Y-%m-%d} – "
        f"{(previous.end - timedelta(days=1)):%Y-%m-%d}"
    )

latest = view.catalog.get("latest")
if latest is not None and latest < query.start:  # e.g. a demo built up to an earlier day
    st.info(
        f"No data in this sprint: the latest deployment or incident is from {latest:%Y-%m-%d}.",
        icon=":material/event_busy:",
    )
    if st.button(f"Show the sprint ending {latest:%Y-%m-%d}", key="retro-jump-to-data"):
        st.query_params["sprint_end"] = f"{latest.date() + timedelta(days=1):%Y-%m-%d}"
        st.rerun()

card = queries.scorecard(query)
change = queries.comparison(query)
dora, incidents_block = card["dora"], card["incidents"]
people = card["people"]

st.subheader("What changed", help="This sprint's figures and their change from the sprint before.")
components.dora_cards(dora, change)
components.table(pd.DataFrame(retro.changed_rows(change)), "retro-changes")

left, right = st.columns(2)
with left:
    st.subheader("Slowest changes", help=help_text("lead_time"))
    lead = queries.lead_times(query)["changes"]
    slowest = lead[lead["counts"]].sort_values("lead_hours", ascending=False).head(10)
    components.table(
        slowest[["change_id", "service", "title", "author", "lead_hours", "waiting_hours"]],
        "retro-slowest",
        column_config={
            "lead_hours": st.column_config.NumberColumn("lead time (h)", format="%.1f"),
            "waiting_hours": st.column_config.NumberColumn("waiting (h)", format="%.1f"),
        },
    )
with right:
    st.subheader("Failed deployments and recovery", help=help_text("failed"))
    deployments = queries.deployments(query)
    failed = deployments[deployments["failed"]]
    components.table(
        failed[["id", "service", "deployed_at", "reason", "recovery_hours"]],
        "retro-failed",
        column_config={
            "deployed_at": st.column_config.DatetimeColumn(
                "deployed (UTC)", format="YYYY-MM-DD HH:mm"
            ),
            "reason": st.column_config.TextColumn("why", width="large"),
            "recovery_hours": st.column_config.NumberColumn("recovered after (h)", format="%.1f"),
        },
    )

st.subheader("Incidents", help=help_text("incidents"))
incidents = queries.incidents(query)
components.table(
    incidents[
        [
            "id",
            "started_at",
            "severity",
            "title",
            "cause",
            "mttr",
            "deployment_id",
            "postmortem_url",
        ]
    ],
    "retro-incidents",
    column_config={
        "started_at": st.column_config.DatetimeColumn("started (UTC)", format="YYYY-MM-DD HH:mm"),
        "mttr": st.column_config.NumberColumn("resolve (h)", format="%.1f"),
        "postmortem_url": st.column_config.LinkColumn("postmortem", display_text="open"),
    },
)

budget, load = st.columns(2)
with budget:
    st.subheader("Error budget spent", help=help_text("budget_remaining"))
    components.table(
        pd.DataFrame(
            retro.budget_rows(change), columns=["slo", "budget_at_start", "budget_at_end", "spent"]
        ),
        "retro-budgets",
        column_config={
            "budget_at_start": st.column_config.NumberColumn("at the start", format="percent"),
            "budget_at_end": st.column_config.NumberColumn("at the end", format="percent"),
            "spent": st.column_config.NumberColumn("spent in the sprint", format="percent"),
        },
    )
with load:
    st.subheader("Toil and on-call")
    toil, oncall = people["toil"], people["oncall"]
    columns = st.columns(2)
    with columns[0]:
        figure_card(
            "toil_share",
            toil["share"],
            change=change["toil_share"]["delta"],
            note=f"{toil['hours']:,.0f} h; cap {components.percent(toil['cap'], 0)}",
        )
    with columns[1]:
        figure_card(
            "pages_per_week",
            oncall["per_week"],
            note=f"{oncall['pages']:,} pages, {components.percent(oncall['after_hours_share'])} after hours",
        )

st.subheader(
    "Unusual weeks",
    help="Weeks of the sprint whose figure lies far from the same series' previous "
    f"{queries.anomaly_rule().history_weeks} weeks (the team's, its services' and its SLOs'; "
    "docs/guardrails.md).",
)
unusual = guardrails.flag_rows(queries.anomaly_weeks(query))
if unusual.empty:
    st.caption("No whole week of the sprint departs from the team's own recent history.")
else:
    components.table(
        unusual,
        "retro-anomalies",
        column_config={
            "week": st.column_config.DatetimeColumn("week of", format="YYYY-MM-DD"),
            "description": st.column_config.TextColumn("in words", width="large"),
        },
    )

st.subheader(
    "Copy as Markdown",
    help="The notes above as Markdown; the copy button is at the block's top right.",
)
st.code(
    retro.retro_markdown(team, sprint_label, card, change, slowest, failed, incidents),
    language="markdown",
)
