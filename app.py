"""The Poise dashboard: a router over the pages in `pages/` (st.navigation).

Run it with `poise ui` (which sets POISE_DATABASE_URL and POISE_CONFIG) or
`streamlit run app.py`. Each page is a thin script over `dashboard.queries`.
"""

from __future__ import annotations

import streamlit as st

from dashboard import access

st.set_page_config(
    page_title="Poise",
    page_icon=":material/balance:",
    layout="wide",
    initial_sidebar_state="auto",
)

PAGES = {
    "Across teams": [
        st.Page("pages/overview.py", title="Overview", icon=":material/dashboard:", default=True),
        st.Page("pages/delivery.py", title="Delivery", icon=":material/rocket_launch:"),
        st.Page("pages/reliability.py", title="Reliability", icon=":material/monitor_heart:"),
        st.Page("pages/incidents.py", title="Incidents", icon=":material/emergency:"),
    ],
    "For a team": [
        st.Page("pages/team_retro.py", title="Team retro", icon=":material/groups:"),
    ],
    "Reports and data": [
        st.Page(
            "pages/report.py", title="Reports", icon=":material/description:", url_path="reports"
        ),
        st.Page("pages/data_sources.py", title="Data & sources", icon=":material/database:"),
    ],
}

# Sign-in and roles (poise.yaml `auth:`): a visitor without a role stops here, on a page
# of its own whichever page's address was asked for.
visitor = access.gate(page for section in PAGES.values() for page in section)
if visitor.restricted:  # sync state names every team's services and repositories
    PAGES["Reports and data"] = [
        page for page in PAGES["Reports and data"] if page.title != "Data & sources"
    ]

navigation = st.navigation(PAGES)
navigation.run()
