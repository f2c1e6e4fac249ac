"""Team retro: one team's sprint against the sprint before, ready for the retro notes."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import streamlit as st

from dashboard import components, filters, guardrails, queries, retro
from dashboard.components import figure_card, help_text, md, percent
from dashboard.data import Query, labelled_incidents
from dashboard.filters import today
from poise.timeutil import start_of_day

SPRINT_LENGTHS = (7, 14, 21, 28)
SPRINT_MEMORY = "poise_retro_sprint"


def choose_team(team: str) -> None:
    """Make the page's team choice the sidebar's team filter (address, memory and widget),
    so the sidebar and the retro never name different scopes."""
    st.query_params["team"] = team
    memory = dict(st.session_state.get(filters.MEMORY, {}))
    memory["team"] = team
    st.session_state[filters.MEMORY] = memory
    st.session_state.pop(filters.widget_key("team"), None)  # re-initialised from the address
    st.rerun()


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
    # "All teams" in the sidebar: a retro is one team's, so nothing is shown until a team
    # is chosen, here or in the sidebar (both set the same filter)
    teams = view.catalog["teams"]
    if not teams:
        st.info("No team in the warehouse yet: a retro is one team's.", icon=":material/groups:")
        st.stop()
    st.info(
        "A retro is one team's: choose the team here or in the sidebar's Team filter.",
        icon=":material/groups:",
    )
    picked = st.selectbox("Team", teams, index=None, placeholder="Choose a team", key="retro-team")
    if picked is None:
        st.stop()
    choose_team(picked)
    st.stop()  # not reached: choose_team reruns the page

if view.kept_service is not None:
    st.caption(
        f"The retro covers the whole team; the service filter ({md(view.kept_service)}) stays "
        "for the other pages."
    )

controls = st.columns([1, 1, 2])
default_end = today().date()
# Streamlit empties the address on a page switch: the sprint last shown in this session is
# the one to come back to, unless the link names one
sprint_memory: dict[str, str] = st.session_state.get(SPRINT_MEMORY, {})
try:
    asked_end = date.fromisoformat(
        st.query_params.get("sprint_end") or sprint_memory.get("sprint_end", "")
    )
except ValueError:
    asked_end = default_end
asked_days = st.query_params.get("sprint_days") or sprint_memory.get("sprint_days", "14")
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
st.session_state[SPRINT_MEMORY] = {"sprint_end": f"{end:%Y-%m-%d}", "sprint_days": str(days)}
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
dora = card["dora"]
people = card["people"]
min_sample = queries.settings().min_sample
rows = retro.samples(card, queries.scorecard(previous))

st.subheader(
    "What changed",
    help="This sprint's figures and their change from the sprint before. "
    + retro.noise_rule(min_sample),
)
blind = retro.unseen(card)  # figures no data could move: no verdict
settled = retro.settled(change, rows, min_sample, blind)  # within noise: grey, as the table says
components.dora_cards(dora, change, settled=settled, quality=card["data_quality"])
components.table(
    pd.DataFrame(retro.changed_rows(change, rows, min_sample, blind)),
    "retro-changes",
    column_config={
        "verdict": st.column_config.TextColumn("verdict", help=retro.noise_rule(min_sample))
    },
)

left, right = st.columns(2)
with left:
    st.subheader("Slowest changes", help=help_text("lead_time"))
    lead = queries.lead_times(query)["changes"]
    slowest = lead[lead["counts"]].sort_values("lead_hours", ascending=False).head(10)
    # the figure the table is sorted by comes first: on a half-width column the long
    # title would otherwise push it out of sight
    components.table(
        slowest[["change_id", "lead_hours", "waiting_hours", "service", "author", "title"]],
        "retro-slowest",
        column_config={
            "lead_hours": st.column_config.NumberColumn("lead time"),
            "waiting_hours": st.column_config.NumberColumn("waiting"),
        },
    )
with right:
    st.subheader("Failed deployments and recovery", help=help_text("failed"))
    deployments = queries.deployments(query)
    failed = deployments[deployments["failed"]]
    # the heading says "failed"; the sentence goes on from there
    failed = failed.assign(reason=[str(r).removeprefix("failed: ") for r in failed["reason"]])
    components.table(
        failed[["id", "recovery_hours", "service", "deployed_at", "reason"]],
        "retro-failed",
        column_config={
            "recovery_hours": st.column_config.NumberColumn("recovered after"),
            "deployed_at": st.column_config.DatetimeColumn(
                "deployed (UTC)", format="YYYY-MM-DD HH:mm"
            ),
            "reason": st.column_config.TextColumn("why it counts as failed"),
        },
    )

st.subheader("Incidents", help=help_text("incidents"))
if card["incidents"]["count"] is None:  # an empty table would read as a quiet sprint
    st.caption(
        f"No incident on record for the services of {md(team)}: {components.INCIDENT_SOURCES}."
    )
# worded as on the Incidents page: "unspecified" for a missing cause, open or resolved
incidents = labelled_incidents(queries.incidents(query))
components.table(
    incidents[
        [
            "id",
            "severity",
            "state",
            "mttr",
            "started_at",
            "deployment_id",
            "cause",
            "postmortem_url",
            "title",
        ]
    ],
    "retro-incidents",
    column_config={
        "mttr": st.column_config.NumberColumn("resolve"),
        "started_at": st.column_config.DatetimeColumn("started (UTC)", format="YYYY-MM-DD HH:mm"),
        "postmortem_url": st.column_config.LinkColumn(
            "postmortem", display_text="read", validate=r"^https?://"
        ),
    },
    durations=["mttr"],
)

budget, load = st.columns(2)
with budget:
    st.subheader("Error budget spent", help=retro.BUDGET_NOTE)
    spent = queries.budgets_spent(query)
    budgets = pd.DataFrame(
        retro.budget_rows(change, spent),
        columns=["slo", "spent", "budget_at_start", "budget_at_end"],
    )
    # one decimal, as everywhere else on the page (the CSV keeps the shares unrounded)
    shown = budgets.style.format(
        {column: percent for column in ("spent", "budget_at_start", "budget_at_end")}
    )
    components.table(
        shown,
        "retro-budgets",
        # narrow figure columns: at half width the long SLO names would push the last
        # one out of sight
        column_config={
            "spent": st.column_config.NumberColumn(
                "spent",
                width="small",
                help="The sprint's own bad events, as a share of the error budget of the "
                "SLO's window ending with the sprint",
            ),
            "budget_at_start": st.column_config.NumberColumn(
                "left at start",
                width="small",
                help="Budget remaining over the SLO's window ending when the sprint began",
            ),
            "budget_at_end": st.column_config.NumberColumn(
                "left at end",
                width="small",
                help="Budget remaining over the SLO's window ending when the sprint ended",
            ),
        },
    )
    # said beside the table, not only on hover: the rows look as if they should add up
    st.caption(
        "The window rolls: bad events older than it stop counting, so the budget left can "
        "rise while the sprint spends, and start − end is not what the sprint spent."
    )
with load:
    st.subheader("Toil and on-call")
    toil, oncall = people["toil"], people["oncall"]
    columns = components.card_row(
        [components.card_label("toil_share"), components.card_label("pages_per_week")]
    )
    with columns[0]:
        figure_card(
            "toil_share",
            toil["share"],
            change=change["toil_share"]["delta"],
            note=f"{toil['hours']:,.0f} h; cap {percent(toil['cap'], 0)}"
            if toil["share"] is not None
            else toil["reason"],
            settled="toil_share" in settled,
        )
    with columns[1]:
        figure_card(
            "pages_per_week",
            oncall["per_week"],
            note=f"{oncall['pages']:,} pages, {percent(oncall['after_hours_share'])} after hours"
            if oncall["per_week"] is not None
            else oncall["reason"],
        )

st.subheader(
    "Unusual weeks",
    help="Weeks of the sprint whose figure lies far from the same series' previous "
    f"{queries.anomaly_rule().history_weeks} weeks (the team's, its services' and its SLOs'; "
    "docs/guardrails.md).",
)
unusual = guardrails.flag_rows(queries.anomaly_weeks(query))
if unusual.empty:
    st.caption(retro.NO_UNUSUAL_WEEK)
else:
    components.flagged_weeks(unusual, "retro-anomalies")

st.subheader(
    "Copy as Markdown",
    help="The notes above as Markdown; the copy button is at the block's top right.",
)
st.code(
    retro.retro_markdown(
        team,
        sprint_label,
        card,
        change,
        slowest,
        failed,
        incidents,
        rows=rows,
        min_sample=min_sample,
        spent=spent,
        unusual=unusual,
    ),
    language="markdown",
)
