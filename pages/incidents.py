"""Incidents: when they happened, how fast they were handled, why, and which deployment."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, components, queries
from dashboard.components import figure_card, help_text, sample_note
from dashboard.data import OPEN, labelled_incidents
from poise.timeutil import utcnow

DATETIME = "YYYY-MM-DD HH:mm"
ATTRIBUTED = "Attributed"  # the attribution card's title
STATE_COLUMN = st.column_config.TextColumn(
    "state", width=70, help="open: not resolved yet (no resolved_at), so no time to resolve."
)
RESOLVE_COLUMN = st.column_config.NumberColumn("resolve", width=80, help=help_text("mttr"))

view = components.page_start(
    "Incidents",
    "What broke, how quickly it was detected, acknowledged and resolved, and what caused it",
)
if view is None:
    st.stop()
query = view.query
card = queries.scorecard(query)
figures, attribution = card["incidents"], card["attribution"]
compared = queries.comparison(query)  # each card's change from the previous period
incidents = labelled_incidents(queries.incidents(query))

still_open = int((incidents["state"] == OPEN).sum())

unrecorded = figures["count"] is None  # the scope's services never recorded one

cards = components.card_row(
    [*map(components.card_label, ("incidents", "mttd", "mtta", "mttr")), ATTRIBUTED]
)
with cards[0]:
    figure_card(
        "incidents",
        figures["count"],
        change=compared["incidents"]["delta"],
        note="no incident on record" if unrecorded else None,
    )
for column, key, median, noun in (
    (cards[1], "mttd", "mttd_median_minutes", "detected"),
    (cards[2], "mtta", "mtta_median_minutes", "acknowledged"),
    (cards[3], "mttr", "mttr_median_hours", "resolved"),
):
    note = sample_note(figures.get(f"{key}_n"), noun)
    if key == "mttr" and still_open:
        # the incidents missing from the sample are mostly not over yet, not badly recorded
        note += f", {still_open:,} still open"
    with column:
        figure_card(key, figures[median], change=compared[median]["delta"], note=note)
with cards[4]:
    attributed = attribution["explicit"] + attribution["inferred"]
    # the total goes under the value: "385 of 525" overflows a fifth of a 1440 px screen
    figure_card(
        "attribution",
        None if unrecorded else f"{attributed:,}",
        label=ATTRIBUTED,
        note="no incident on record"
        if unrecorded
        else f"of {figures['count']:,}: {attribution['explicit']:,} explicit, "
        f"{attribution['inferred']:,} inferred",
    )

if incidents.empty:
    if unrecorded:
        components.not_enough(
            f"No incident is on record for this scope's services: {components.INCIDENT_SOURCES}"
            ", before these figures mean anything. Until then the change fail rate counts only "
            "rollbacks and fixes."
        )
    else:
        components.not_enough("No incident started in this period for this scope.")
    st.stop()

st.subheader(
    "Timeline",
    help="Each incident at its start, by service; the line runs to its resolution "
    "(dotted to the period's end while it is still open).",
)
components.chart(
    charts.incident_timeline(incidents, until=min(query.end, utcnow())),
    incidents[["id", "started_at", "severity", "service", "state", "mttr", "resolved_at", "title"]],
    "incident-timeline",
    column_config={
        "started_at": st.column_config.DatetimeColumn("started (UTC)", format=DATETIME),
        "resolved_at": st.column_config.DatetimeColumn("resolved (UTC)", format=DATETIME),
        "state": STATE_COLUMN,
        "mttr": RESOLVE_COLUMN,
    },
    durations=["mttr"],
)


def blocks(by: str) -> pd.DataFrame:
    """The engine's figures per severity or cause as rows."""
    rows = [{by: name, **block} for name, block in (figures.get(f"by_{by}") or {}).items()]
    return pd.DataFrame(rows)


st.subheader(
    "Response times",
    help=f"{help_text('mttd')} {help_text('mtta')} {help_text('mttr')}",
)
tab_severity, tab_cause = st.tabs(["By severity", "By cause"])
for tab, by in ((tab_severity, "severity"), (tab_cause, "cause")):
    with tab:
        frame = blocks(by)
        shown = frame[[by, "count", *[c for c, *_ in charts.TIME_PANELS]]] if len(frame) else frame
        components.chart(
            charts.response_times(frame, by),
            shown,
            f"response-by-{by}",
            column_config={
                "mttd_median_minutes": st.column_config.NumberColumn(
                    "detect (min, median)", format="%.1f"
                ),
                "mtta_median_minutes": st.column_config.NumberColumn(
                    "acknowledge (min, median)", format="%.1f"
                ),
                "mttr_median_hours": st.column_config.NumberColumn("resolve (median)"),
            },
        )

st.subheader("Causes", help=help_text("cause"))
causes = blocks("cause")
if len(causes):
    # the table in the chart's order: most incidents first
    causes = causes.sort_values(["count", "cause"], ascending=[False, True], kind="stable")
    components.chart(
        charts.counts_bar(causes, "cause", "count", title="incidents"),
        causes[["cause", "count"]],
        "causes",
    )

st.subheader("Postmortems and attribution", help=help_text("attribution"))
search = st.text_input(
    "Search incidents",
    value=st.query_params.get("q", ""),
    placeholder="title, id, service, cause, deployment, open…",
    help="Matches the id, title, service, severity, cause, state (open or resolved), "
    "attributed deployment, how and why, ignoring case.",
)
if search != st.query_params.get("q", ""):
    if search:
        st.query_params["q"] = search
    else:
        del st.query_params["q"]
only_postmortems = st.toggle("Only incidents with a postmortem", value=False)
rows = incidents
if only_postmortems:
    rows = rows[rows["postmortem_url"].notna() & (rows["postmortem_url"].astype(str) != "")]
if search:
    text_columns = [
        "id",
        "title",
        "service",
        "cause",
        "severity",
        "state",
        "deployment_id",
        "attribution",
        "attribution_reason",
    ]
    haystack = (
        rows[text_columns].astype(object).fillna("").astype(str).agg(" ".join, axis=1).str.lower()
    )
    rows = rows[haystack.str.contains(search.lower(), regex=False)]
st.caption(f"{len(rows):,} of {len(incidents):,} incidents")
# What identifies an incident, how it ended and what it is blamed on fit a 1440 px screen
# beside the sidebar; what broke (service and title, which mostly names the service too)
# and the attribution's long reason come last, where scrolling sideways reads them.
components.table(
    rows[
        [
            "id",
            "started_at",
            "severity",
            "state",
            "mttr",
            "postmortem_url",
            "cause",
            "attribution",
            "deployment_id",
            "service",
            "title",
            "attribution_reason",
        ]
    ],
    "incidents",
    column_config={
        "id": st.column_config.TextColumn("id", pinned=True),
        "started_at": st.column_config.DatetimeColumn("started (UTC)", format=DATETIME),
        "severity": st.column_config.TextColumn("severity", width=70),
        "state": STATE_COLUMN,
        "mttr": RESOLVE_COLUMN,
        "cause": st.column_config.TextColumn("cause", width=130, help=help_text("cause")),
        "deployment_id": st.column_config.TextColumn(
            "attributed deployment", width=175, help=help_text("attribution")
        ),
        "attribution": st.column_config.TextColumn("how", width=70, help=help_text("attribution")),
        # "read", not "open": beside an open incident's state, "open" would read as a state
        "postmortem_url": st.column_config.LinkColumn(
            "postmortem", display_text="read", width=85, validate=r"^https?://"
        ),
        "title": st.column_config.TextColumn("title", width="medium"),
        "attribution_reason": st.column_config.TextColumn("why", width="large"),
    },
    durations=["mttr"],
)
