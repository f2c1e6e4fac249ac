"""What a page shows while the warehouse cannot be reached (a PostgreSQL restart, a network
cut): one clear "Database unavailable" message instead of a traceback, and a check every few
seconds that brings the page back by itself once the warehouse answers again.

Nothing here is cached: a failure is never remembered (st.cache_data and st.cache_resource do
not keep exceptions either), so the first run after the warehouse is back reads it again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import NoReturn

import streamlit as st

from poise.errors import ConfigError, DatabaseUnavailable, PoiseError

TITLE = "Database unavailable"
RETRY_SECONDS = 5
LOG = logging.getLogger("poise.dashboard")

Probe = Callable[[], DatabaseUnavailable | None]


def stop(problem: DatabaseUnavailable, probe: Probe) -> NoReturn:
    """Say that the warehouse cannot be reached, keep checking, and end this run of the page."""
    from dashboard.components import md  # components imports the query layer, which imports us

    LOG.warning("dashboard: %s", problem)
    detail = "Warehouse " + str(problem).removeprefix("database unavailable").lstrip()
    st.error(
        f"**{TITLE}.** Poise cannot reach its warehouse just now, so this page has no figures "
        f"to show. It comes back by itself when the warehouse answers again (checked every "
        f"{RETRY_SECONDS} s); nothing needs restarting.\n\n{md(detail)}",
        icon=":material/cloud_off:",
    )
    _until_back(probe)
    st.stop()


def refuse(problem: PoiseError) -> NoReturn:
    """The warehouse answers but this Poise cannot use it (a newer Poise upgraded it, it is
    another application's database), or the configuration is wrong: say what to do, once;
    waiting would not help."""
    from dashboard.components import md

    LOG.warning("dashboard: %s", problem)
    title = (
        "Configuration not usable" if isinstance(problem, ConfigError) else "Warehouse not usable"
    )
    st.error(f"**{title}.** {md(str(problem))}", icon=":material/block:")
    st.stop()


@st.fragment(run_every=RETRY_SECONDS)
def _until_back(probe: Probe) -> None:
    """Every few seconds (this fragment alone, not the page): once the warehouse answers,
    run the whole page again (which says so if it answers with a refusal)."""
    try:
        back = probe() is None
    except PoiseError:
        back = True
    if back:
        st.rerun(scope="app")
    st.caption(f"Last checked {datetime.now(UTC):%H:%M:%S} UTC.")
