"""The Poise dashboard: a router over the pages in `pages/` (st.navigation)."""

from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="Poise", page_icon=":material/balance:", layout="wide")

navigation = st.navigation([st.Page("pages/overview.py", title="Overview", default=True)])
navigation.run()
