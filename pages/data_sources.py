"""Data & sources: what was collected, when, how fresh it is, and what the figures miss."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, components, queries
from dashboard.components import figure_card
from metrics.glossary import term

FINDING_WORDS = {
    "lead_time_nonpositive": "Changes with a lead time of zero or less (left out of lead time)",
    "changes_never_deployed": "Changes committed in the period that no production deployment shipped",
    "deployments_without_changes": "Production deployments that name no change (no lead time from them)",
    "incidents_without_service": "Incidents without a service (in no team's figures)",
    "incidents_unresolved": "Incidents not resolved (in no time to resolve)",
    "incident_times_out_of_order": "Incidents with a time before their start (left out of that time)",
    "sli_gaps": "SLOs missing hourly SLI buckets in the period",
    "slos_without_data": "SLOs without any SLI sample",
    "incidents_blaming_later_deployments": (
        "Incidents that name a deployment made after they started (it still counts as "
        "failed; no recovery time from it)"
    ),
    "deployments_without_incident_data": (
        "Production deployments of services with no incident on record (their change fail "
        "rate counts rollbacks and fixes only)"
    ),
    "rework_before_its_target": (
        "Rollbacks and fixes deployed before the deployment they name (rework, but not its failure)"
    ),
}

view = components.page_start(
    "Data & sources",
    "Where the figures come from: last syncs, freshness, coverage and data-quality findings",
)
if view is None:
    st.stop()
data = queries.source_view(view.query)

# what each share is out of (the changes here are not the lead time's sample: see its help)
COVERED_OF = {
    "changes_linked": "committed in the period",
    "deployments_with_changes": "production deployments",
    "incidents_attributed": "incidents",
    "slos_with_data": "SLOs",
}
st.subheader(
    "Coverage", help="How much of the data the figures can use, for the selected scope and period."
)
coverage = data["coverage"]
cards = components.card_row([components.card_label(key) for key in coverage["measure"]])
for column, row in zip(cards, coverage.itertuples(index=False), strict=True):
    with column:
        noun = COVERED_OF.get(row.measure, "")
        figure_card(row.measure, row.share, note=f"{row.covered:,} of {row.total:,} {noun}")
labels = {key: term(key).label for key in coverage["measure"]}
components.chart(charts.coverage_bars(coverage, labels), coverage, "coverage")

st.subheader(
    "Sources",
    help="The outcome of each source's last sync or import (`poise sync`, `poise import`, `poise demo`).",
)
sync = data["sync"]
if sync.empty:
    components.not_enough(
        "No sync or import has been recorded: the rows came in some other way (or the "
        "warehouse predates sync records)."
    )
else:
    failing = sync[sync["state"] != "ok"]
    if len(failing):
        st.warning(
            f"{len(failing)} of {len(sync)} streams did not succeed last time: see the "
            "`last error` column.",
            icon=":material/sync_problem:",
        )
    components.table(
        components.state_style(sync, "state", components.SYNC_STATES),
        "sync",
        column_config={
            "last_error": st.column_config.TextColumn("last error", width="large"),
            "last_success_at": st.column_config.DatetimeColumn(
                "last success (UTC)", format="YYYY-MM-DD HH:mm"
            ),
            "last_attempt_at": st.column_config.DatetimeColumn(
                "last attempt (UTC)", format="YYYY-MM-DD HH:mm"
            ),
            "last_error_at": st.column_config.DatetimeColumn(
                "error at (UTC)", format="YYYY-MM-DD HH:mm"
            ),
        },
    )

st.subheader(
    "Freshness", help="Per table and source: how many rows, and when the latest of them happened."
)
# age_hours reads in the words the cards use ("57.8 d"), and sorts and downloads as hours
components.table(
    data["freshness"],
    "freshness",
    column_config={
        "first": st.column_config.DatetimeColumn("earliest (UTC)", format="YYYY-MM-DD HH:mm"),
        "latest": st.column_config.DatetimeColumn("latest (UTC)", format="YYYY-MM-DD HH:mm"),
        "age_hours": st.column_config.NumberColumn(
            "since the latest", help="Time since the table's latest row, up to now."
        ),
        "rows": st.column_config.NumberColumn("rows", format="localized"),
    },
)
with st.expander(
    f"SLI samples per SLO ({len(data['slo_freshness']):,} SLOs)", icon=":material/monitoring:"
):
    components.table(
        data["slo_freshness"],
        "slo-freshness",
        column_config={
            "first_sample": st.column_config.DatetimeColumn(
                "first sample (UTC)", format="YYYY-MM-DD HH:mm"
            ),
            "latest_sample": st.column_config.DatetimeColumn(
                "latest sample (UTC)", format="YYYY-MM-DD HH:mm"
            ),
        },
    )

st.subheader(
    "Data-quality findings",
    help="Rows the figures had to leave out or could not trust; each list is the rows behind the count.",
)
findings = data["findings"]
for name, rows in findings.items():
    label = FINDING_WORDS.get(name, name.replace("_", " "))
    icon = ":material/check_circle:" if rows.empty else ":material/report:"
    with st.expander(f"{label}: {len(rows):,}", icon=icon):
        if rows.empty:
            st.caption("None.")
        else:
            components.table(rows, f"finding-{name}")
