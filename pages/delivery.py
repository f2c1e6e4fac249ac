"""Delivery: the five DORA figures week by week, lead time in detail, every deployment."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, components, queries
from dashboard.components import help_text
from metrics.wording import change_fail_rate_blind

view = components.page_start(
    "Delivery",
    "How often changes reach production, how long they take, and how often they fail",
)
if view is None:
    st.stop()
query = view.query
card = queries.scorecard(query)
dora = card["dora"]
change = queries.comparison(query)

components.dora_cards(dora, change, tuple(components.DORA_CARDS), quality=card["data_quality"])

st.subheader(
    "Week by week",
    help="Each week (Monday to Monday, UTC) computed as a period of its own; "
    "weeks cut by the period's ends are partial, and their rates use their true length.",
)
weekly = queries.weekly(query)
# title, the columns drawn, how (bars, percent, log scale for hours), the sample column
trend_specs = (
    ("Deployments per week", {"deployments_per_week": "deployments / week"}, "bars", "deployments"),
    (
        "Lead time",
        {"lead_time_median_hours": "median", "lead_time_p90_hours": "p90"},
        "log",
        "changes",
    ),
    ("Change fail rate", {"change_failure_rate": "change fail rate"}, "percent", "failed"),
    (
        "Recovery time",
        {"recovery_median_hours": "median", "recovery_p90_hours": "p90"},
        "log",
        "failures",
    ),
    ("Rework rate", {"rework_rate": "rework rate"}, "percent", "rework"),
)
# a rate no incident could raise is drawn grey and says so, as its card has no tier
caveats = (
    {"Change fail rate": "no incident data: only rollbacks and fixes count"}
    if change_fail_rate_blind(card)
    else {}
)
left, right = st.columns(2)
for index, (title, columns, style, sample) in enumerate(trend_specs):
    with left if index % 2 == 0 else right:
        numbers = (
            weekly[["bucket_start", "bucket_end", *columns, sample]] if len(weekly) else weekly
        )
        components.chart(
            charts.trend(
                weekly,
                columns,
                title=title,
                percent=style == "percent",
                bars=style == "bars",
                log=style == "log",
                caveat=caveats.get(title),
            ),
            numbers,
            f"trend-{next(iter(columns))}",
        )

st.subheader("Lead time", help=help_text("lead_time"))
lead = queries.lead_times(query)
changes = lead["changes"]
dist, stages = st.columns([3, 2])
with dist:
    st.markdown("**Distribution** (p50 and p90 marked)")
    counted = changes[changes["counts"]]
    components.chart(
        charts.lead_time_distribution(
            changes, dora["lead_time"]["median_hours"], dora["lead_time"]["p90_hours"]
        ),
        counted[["change_id", "service", "committed_at", "deployed_at", "lead_hours"]],
        "lead-time-distribution",
    )
with stages:
    st.markdown("**Where the time goes**, where pull-request data exists")
    components.chart(
        charts.lead_time_stages(lead["stages"]),
        lead["stages"],
        "lead-time-stages",
        labels={"stage": "stage", "median_hours": "median", "p90_hours": "p90"},
    )
    known = int(lead["stages"]["changes"].max()) if len(lead["stages"]) else 0
    # a stage whose end came before its start is left out of it, and said
    reversed_ = [
        f"{charts.STAGE_LABELS[row.stage].lower()} {row.out_of_order:,}"
        for row in lead["stages"].itertuples(index=False)
        if row.out_of_order
    ]
    st.caption(
        f"{known:,} of {int(changes['counts'].sum()):,} measured changes have merge times; "
        "coding and review need the pull request's opening time too."
        + (
            " Left out of a stage because its end came before its start (merged before the "
            f"first commit, deployed before the merge): {', '.join(reversed_)}."
            if reversed_
            else ""
        )
    )

with st.expander(
    f"The slowest changes ({int(changes['counts'].sum()):,} measured)",
    icon=":material/hourglass_bottom:",
):
    slowest = changes.sort_values("lead_hours", ascending=False).head(200)
    components.table(
        slowest[
            [  # the figures first; titles and authors, as long as they come, last
                "change_id",
                "service",
                "lead_hours",
                "waiting_hours",
                "committed_at",
                "deployed_at",
                "counts",
                "title",
                "author",
            ]
        ],
        "slowest-changes",
        column_config={
            "committed_at": st.column_config.DatetimeColumn(
                "committed (UTC)", format="YYYY-MM-DD HH:mm"
            ),
            "deployed_at": st.column_config.DatetimeColumn(
                "deployed (UTC)", format="YYYY-MM-DD HH:mm"
            ),
            "lead_hours": st.column_config.NumberColumn("lead time", help=help_text("lead_time")),
            "waiting_hours": st.column_config.NumberColumn(
                "waiting", help=help_text("waiting_hours")
            ),
            "counts": st.column_config.CheckboxColumn(
                "counts", help="Lead times of zero or less are left out."
            ),
        },
    )

st.subheader(
    "Deployments",
    help="Every production deployment of the period; failed ones say why they count as failed.",
)
deployments = queries.deployments(query)
failed_only = st.toggle("Only failed deployments", value=False, key="failed-only")
rows = deployments[deployments["failed"]] if failed_only else deployments
st.caption(
    f"{len(deployments):,} production deployments, {int(deployments['failed'].sum()) if len(deployments) else 0:,} "
    f"failed{' (shown)' if failed_only else ''}. Deployments that failed to complete, and other "
    "environments, count in none of these figures."
)
components.table(
    rows[
        [  # what a reader scans first fits the page; the sentence saying why goes last
            "id",
            "service",
            "deployed_at",
            "failed",
            "recovery_hours",
            "rework",
            "during_freeze",
            "budget_share",
            "incidents",
            "fixed_by",
            "reason",
        ]
    ],
    "deployments",
    column_config={
        "deployed_at": st.column_config.DatetimeColumn("deployed (UTC)", format="YYYY-MM-DD HH:mm"),
        "failed": st.column_config.CheckboxColumn("failed", help=help_text("failed")),
        "reason": st.column_config.TextColumn("why", help=help_text("reason"), width="large"),
        "recovery_hours": st.column_config.NumberColumn(
            "recovery", help=help_text("recovery_time")
        ),
        "rework": st.column_config.CheckboxColumn("rework", help=help_text("rework_rate")),
        "during_freeze": st.column_config.CheckboxColumn(
            "in freeze", help=help_text("deployments_during_freeze")
        ),
        "budget_share": st.column_config.NumberColumn(
            "budget burned", format="percent", help=help_text("budget_share")
        ),
    },
)
st.caption("Ask `poise explain change_failure_rate` for the same reasons on the command line.")
