"""Overview (placeholder until the dashboard lands)."""

from __future__ import annotations

import streamlit as st

st.title("Poise")
st.write("The dashboard is being built. Run `poise metrics` for the scorecard meanwhile.")
