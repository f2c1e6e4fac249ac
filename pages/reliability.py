"""Reliability: SLOs against their targets, error budgets, freezes, and what burned them."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, components, guardrails, queries
from dashboard.components import help_text, md

view = components.page_start(
    "Reliability",
    "SLOs, error budgets and the budget policy: where reliability stands and what spent it",
)
if view is None:
    st.stop()
query = view.query
rel = queries.reliability_view(query)
summary = queries.slo_summary(query)
slos = rel["slos"]
policy = rel["policy"]

if slos.empty:
    components.not_enough(
        "No SLO is defined for this scope. Declare SLOs in poise.yaml (inline, OpenSLO or "
        "Sloth files) or import them with `poise import --kind slos`; see docs/slos.md."
    )
    st.stop()

components.resilience_cards(
    summary, policy, components.card_row(components.resilience_titles()), query.end
)

st.subheader("SLOs", help="Each SLO evaluated over its window ending at the period's end.")
# the state and what it rests on first (at risk is judged on the last 24 h burn rate); the
# other look-backs, the window and the team after them
first = [
    "slo",
    "service",
    "target",
    "sli",
    "budget_remaining",
    "status",
    "burn_24h",
    "forecast_exhausted_at",
    "alert",
]
components.table(
    components.tier_style(slos[[*first, *(c for c in slos.columns if c not in first)]], ["status"]),
    "slos",
    column_config={
        # long names are cut in their cells (the CSV keeps them whole), not the figures
        "slo": st.column_config.TextColumn(
            "SLO", pinned=True, width=components.name_width(slos["slo"])
        ),
        "service": st.column_config.TextColumn(
            "service", width=components.name_width(slos["service"])
        ),
        "target": st.column_config.NumberColumn(
            "target", format="percent", help=help_text("target")
        ),
        "window_days": st.column_config.NumberColumn("window (days)", format="%d"),
        "sli": st.column_config.NumberColumn("SLI", format="percent", help=help_text("sli")),
        "budget_remaining": st.column_config.ProgressColumn(
            "budget remaining",
            format="percent",
            min_value=0.0,
            max_value=1.0,
            help=help_text("budget_remaining"),
        ),
        "burn_1h": st.column_config.NumberColumn(
            "burn 1 h", format="%.2f", help=help_text("burn_rate")
        ),
        "burn_6h": st.column_config.NumberColumn(
            "burn 6 h", format="%.2f", help=help_text("burn_rate")
        ),
        "burn_24h": st.column_config.NumberColumn(
            "burn 24 h", format="%.2f", help=help_text("burn_rate")
        ),
        "burn_72h": st.column_config.NumberColumn(
            "burn 72 h", format="%.2f", help=help_text("burn_rate")
        ),
        "status": st.column_config.TextColumn("status", help=help_text("status")),
        "alert": st.column_config.TextColumn("alert", help=help_text("alert")),
        "forecast_exhausted_at": st.column_config.DatetimeColumn(
            "budget runs out", format="YYYY-MM-DD HH:mm", help=help_text("forecast_exhausted_at")
        ),
        "reason": st.column_config.TextColumn("note", width="medium"),
    },
)
st.caption(
    "Budget remaining below 0 % means overspent (the bar shows it empty; the table's CSV "
    "holds the exact value). SLI buckets are hourly, so the 5 and 30 minute confirming "
    "windows of the alerts use the last hour."
)

st.subheader("Error-budget burn-down", help=help_text("budget_remaining"))
names = slos.sort_values(["budget_remaining", "slo"], na_position="last")["slo"].tolist()
chosen = st.query_params.get("slo")
picked = st.selectbox(
    "SLO",
    names,
    index=names.index(chosen) if chosen in names else 0,
    help="Sorted from the least budget remaining; the link remembers the choice.",
)
if picked != chosen:
    st.query_params["slo"] = picked
burn = queries.burndown(query, picked)
series = burn["series"]
components.chart(
    charts.burndown(series, burn["forecast"], picked),
    series,
    "burndown",
    labels={"ts": "hour ending", "remaining": "budget remaining", "even_burn": "spent evenly"},
)
slo = burn["slo"] or {}
if slo.get("forecast_exhausted_at"):
    st.caption(
        md(f"At the last 24 h burn rate the budget runs out {slo['forecast_exhausted_at']}.")
    )
elif slo.get("forecast_reason"):
    st.caption(md(f"No exhaustion forecast: {slo['forecast_reason']}."))

st.subheader("Freezes and deployments", help=help_text("freeze"))
frozen_rows = rel["freezes"]
deploy_rows = rel["deployments"]
services = (
    sorted(set(frozen_rows["service"]).union(deploy_rows["service"]))
    if len(deploy_rows) or len(frozen_rows)
    else []
)
focus = [s for s in services if s in set(frozen_rows["service"])] or services
components.chart(
    charts.deployment_timeline(deploy_rows[deploy_rows["service"].isin(focus)], frozen_rows),
    frozen_rows,
    "freezes",
    labels={"start": "frozen from", "end": "until", "slos": "exhausted SLOs"},
)
if len(frozen_rows):
    st.caption(
        f"Services with a freeze in the period are shown first ({len(set(frozen_rows['service']))}); "
        "the table lists each freeze and the SLOs whose budget was exhausted."
    )
during = rel["freeze_deployments"]
if len(during):
    with st.expander(
        f"{len(during):,} deployments shipped during a freeze", icon=":material/ac_unit:"
    ):
        components.table(
            during,
            "freeze-deployments",
            column_config={"exempt": st.column_config.CheckboxColumn("rollback or fix (allowed)")},
        )

st.subheader(
    "Release gate decisions",
    help="Every answer `poise gate` gave a pipeline in the period: ship, warn, freeze (feature "
    "releases stop while a budget is spent or a page-level burn alert fires), or an exception "
    "(a fix or rollback shipped during a freeze). See docs/guardrails.md.",
)
gate = queries.gate_ledger(query)
decisions = gate["decisions"]
if decisions.empty:
    st.caption(
        "No `poise gate` decision in this period and scope. Pipelines ask the gate before "
        "deploying (docs/guardrails.md has GitHub Actions and GitLab CI examples)."
    )
else:
    words = guardrails.DECISION_WORDS
    for cell, kind in zip(components.card_row(list(words.values())), words, strict=True):
        with cell, st.container(border=True):
            st.metric(words[kind], f"{gate['counts'][kind]:,}", help=guardrails.DECISION_HELP[kind])
            st.caption(guardrails.DECISION_NOTES[kind])
    components.table(
        components.state_style(
            decisions[
                ["decided_at", "service", "change_type", "decision", "reason", "ref", "actor"]
            ],
            "decision",
            guardrails.DECISION_COLOURS,
        ),
        "gate-ledger",
        column_config={
            "decided_at": st.column_config.DatetimeColumn("when (UTC)", format="YYYY-MM-DD HH:mm"),
            "change_type": st.column_config.TextColumn("change"),
            "reason": st.column_config.TextColumn("reason", width="large"),
        },
    )

st.subheader(
    "Certificates at risk",
    help="TLS certificates of the endpoints `poise sync` checks (`certificates:` in poise.yaml): "
    "expired, expiring within 30 days, failing verification, or not answering at the last "
    "check. An expired certificate is an outage on the calendar.",
)
certs = queries.certificate_view(query)
risks = certs["risks"]
if not certs["checked"]:
    st.caption(
        "No certificate is checked for this scope: list the endpoints under `certificates:` "
        "in poise.yaml and run `poise sync` (docs/guardrails.md)."
    )
elif risks.empty:
    st.caption(f"All {certs['checked']} certificates checked are valid for more than 30 days.")
else:
    st.warning(
        md(f"{len(risks)} of {certs['checked']} certificates are availability risks."),
        icon=":material/gpp_maybe:",
    )
    shown = risks[
        ["service", "id", "risk", "days_left", "not_after", "problem", "issuer", "checked_at"]
    ]
    components.table(
        # "expired 60.2 d ago" rather than -60.2 days left; sorted and downloaded as days
        shown.style.format(components.days_left_words, subset=["days_left"], na_rep="—"),
        "certificate-risks",
        column_config={
            "id": st.column_config.TextColumn("endpoint"),
            "days_left": st.column_config.NumberColumn("time left"),
            "not_after": st.column_config.DatetimeColumn(
                "expires (UTC)", format="YYYY-MM-DD HH:mm"
            ),
            # long texts are cut in their cells (whole in the CSV), so the issuer shows too
            "problem": st.column_config.TextColumn(
                "problem",
                width="medium",
                help="Why it does not verify, or why the last check failed.",
            ),
            "issuer": st.column_config.TextColumn("issuer", width="medium"),
            "checked_at": st.column_config.DatetimeColumn("checked", format="YYYY-MM-DD HH:mm"),
        },
    )

st.subheader("What burned the budget", help=help_text("budget_share"))
burned = (
    ("**Per incident**", "budget_by_incident", "incident_id"),
    (
        "**Per deployment** (through its attributed incidents)",
        "budget_by_deployment",
        "deployment_id",
    ),
)
# side by side while the longest name of each fits in its half, else one under the other
room = max(charts.budget_bars_width(rel[key], label) for _, key, label in burned)
for cell, (title, key, label) in zip(components.chart_row(len(burned), room), burned, strict=True):
    with cell:
        st.markdown(title)
        components.chart(
            charts.budget_bars(rel[key], label),
            rel[key],
            key.replace("_", "-"),
            column_config={
                "budget_share": st.column_config.NumberColumn("budget burned", format="percent")
            },
        )
