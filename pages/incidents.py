"""Incidents: when they happened, how fast they were handled, why, and which deployment."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, components, queries
from dashboard.components import figure_card, help_text, sample_note

view = components.page_start(
    "Incidents",
    "What broke, how quickly it was detected, acknowledged and resolved, and what caused it",
)
if view is None:
    st.stop()
query = view.query
card = queries.scorecard(query)
figures, attribution = card["incidents"], card["attribution"]
change = queries.comparison(query)
incidents = queries.incidents(query)

cards = st.columns(5)
with cards[0]:
    figure_card("incidents", figures["count"], change=change["incidents"]["delta"])
with cards[1]:
    figure_card(
        "mttd",
        figures["mttd_median_minutes"],
        note=sample_note(figures.get("mttd_n"), "detected"),
    )
with cards[2]:
    figure_card(
        "mtta",
        figures["mtta_median_minutes"],
        note=sample_note(figures.get("mtta_n"), "acknowledged"),
    )
with cards[3]:
    figure_card(
        "mttr",
        figures["mttr_median_hours"],
        change=change["mttr_median_hours"]["delta"],
        note=sample_note(figures.get("mttr_n"), "resolved"),
    )
with cards[4]:
    attributed = attribution["explicit"] + attribution["inferred"]
    figure_card(
        "attribution",
        f"{attributed} of {figures['count']}",
        label="Attributed",
        note=f"{attribution['explicit']} explicit, {attribution['inferred']} inferred",
    )

if incidents.empty:
    components.not_enough("No incident started in this period for this scope.")
    st.stop()

st.subheader(
    "Timeline", help="Each incident at its start, by service; the line runs to its resolution."
)
components.chart(
    charts.incident_timeline(incidents),
    incidents[["id", "service", "severity", "title", "started_at", "resolved_at", "mttr"]],
    "incident-timeline",
    column_config={"mttr": st.column_config.NumberColumn("hours to resolve", format="%.1f")},
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
        shown = frame[[by, "count", *[c for c, _ in charts.TIME_PANELS]]] if len(frame) else frame
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
                "mttr_median_hours": st.column_config.NumberColumn(
                    "resolve (h, median)", format="%.2f"
                ),
            },
        )

st.subheader("Causes", help=help_text("cause"))
causes = blocks("cause")
if len(causes):
    components.chart(
        charts.counts_bar(causes, "cause", "count", title="incidents"),
        causes[["cause", "count"]],
        "causes",
    )

st.subheader("Postmortems and attribution", help=help_text("attribution"))
search = st.text_input(
    "Search incidents",
    value=st.query_params.get("q", ""),
    placeholder="title, id, service, cause, deployment…",
    help="Matches any of the columns below, ignoring case.",
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
        "deployment_id",
        "attribution_reason",
    ]
    haystack = (
        rows[text_columns].astype(object).fillna("").astype(str).agg(" ".join, axis=1).str.lower()
    )
    rows = rows[haystack.str.contains(search.lower(), regex=False)]
st.caption(f"{len(rows):,} of {len(incidents):,} incidents")
components.table(
    rows[
        [
            "id",
            "started_at",
            "severity",
            "service",
            "title",
            "cause",
            "mttr",
            "deployment_id",
            "attribution",
            "attribution_reason",
            "postmortem_url",
        ]
    ],
    "incidents",
    column_config={
        "started_at": st.column_config.DatetimeColumn("started (UTC)", format="YYYY-MM-DD HH:mm"),
        "mttr": st.column_config.NumberColumn("resolve (h)", format="%.1f", help=help_text("mttr")),
        "deployment_id": st.column_config.TextColumn(
            "attributed deployment", help=help_text("attribution")
        ),
        "attribution": st.column_config.TextColumn("how", help=help_text("attribution")),
        "attribution_reason": st.column_config.TextColumn("why", width="large"),
        "postmortem_url": st.column_config.LinkColumn(
            "postmortem", display_text="open", validate=r"^https?://"
        ),
        "cause": st.column_config.TextColumn("cause", help=help_text("cause")),
    },
)
