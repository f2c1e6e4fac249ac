"""Reports: the quarterly report for the organisation or a team, previewed and downloadable.

(The file is `report.py`, not `reports.py`: a page runs with `pages/` on sys.path in
AppTest, where `reports.py` would shadow the `reports` package.)
"""

from __future__ import annotations

import shlex

import streamlit as st

from dashboard import access, components, queries
from dashboard.filters import quarter_choices, today
from poise.timeutil import quarter_bounds
from reports import FORMATS, default_filename

view = components.page_start(
    "Reports",
    "The quarterly report: every figure of a quarter, laid out for a review, a wiki or a spreadsheet",
    period=False,
    service=False,
)
if view is None:
    st.stop()

quarters = quarter_choices(view.catalog.get("first"), latest=view.catalog.get("latest"))
# the latest whole quarter by default (the current one covers only the days so far)
finished = [quarter for quarter in quarters if quarter_bounds(quarter)[1] <= today()]
if not quarters:
    components.not_enough("No quarter holds data yet.")
    st.stop()
choice, scope = st.columns(2)
asked = st.query_params.get("quarter")
with choice:
    quarter = st.selectbox(
        "Quarter",
        quarters,
        index=quarters.index(asked if asked in quarters else (finished or quarters)[0]),
        help="Calendar quarters (UTC). The current quarter's report covers the days so far.",
    )
WHOLE = "Whole organisation"
# A team member's report covers their own teams only (the whole-organisation report
# holds every team's details).
teams = [*([] if access.current().restricted else [WHOLE]), *view.catalog["teams"]]
if not teams:
    components.not_enough("None of your teams holds data yet.")
    st.stop()
with scope:
    default_team = view.query.team if view.query.team in teams else teams[0]
    picked = st.selectbox("Scope", teams, index=teams.index(default_team))
team = None if picked == WHOLE else picked
st.query_params["quarter"] = quarter

st.subheader("Download")
buttons = st.columns(len(FORMATS))
for column, (fmt, spec) in zip(buttons, FORMATS.items(), strict=True):
    with column:
        st.download_button(
            f"{fmt.upper()}",
            data=lambda fmt=fmt: queries.report_file(quarter, team, fmt),
            file_name=default_filename(quarter, team, fmt),
            mime=spec.mime,
            help=spec.description,
            icon=":material/download:",
            key=f"report-{fmt}",
            on_click="ignore",
            width="stretch",
        )
# quoted for a shell: an imported team's name may hold spaces, quotes or `$`
command = f"poise report --quarter {quarter}" + (f" --team {shlex.quote(team)}" if team else "")
st.caption(
    "Each file is laid out when you click (PDF takes a few seconds); the figures are "
    f"those of `{command.replace('`', '')}`."
)

st.subheader("Preview")
document = queries.report_file(quarter, team, "html")
st.iframe(components.inert_document(document), height=900)
