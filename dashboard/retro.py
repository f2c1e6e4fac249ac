"""The team retro's notes as Markdown, ready to paste into a wiki or a ticket.

Everything here is wording: the figures arrive from the engine (`dashboard.queries`).
Text from the warehouse is escaped so that a commit message cannot inject HTML or break
a table in the page the notes are pasted into.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from dashboard.components import hours, minutes, percent

CHANGED = (
    # (comparison key, label, formatter, lower is better)
    ("deployments_per_week", "Deployments per week", lambda v: f"{v:,.1f}", False),
    ("lead_time_median_hours", "Lead time (median)", hours, True),
    ("change_failure_rate", "Change fail rate", percent, True),
    ("recovery_median_hours", "Recovery time (median)", hours, True),
    ("rework_rate", "Rework rate", percent, True),
    ("incidents", "Incidents", lambda v: f"{v:,.0f}", True),
    ("mttr_median_hours", "Time to resolve (median)", hours, True),
    ("toil_share", "Toil share", percent, True),
)


def cell(value: Any) -> str:
    """Text for a Markdown table cell: no HTML, no column breaks, one line."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "—"
    text = str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ").strip()


def direction(entry: dict[str, Any], lower_is_better: bool) -> str:
    delta = entry.get("delta")
    if delta is None:
        return "no comparison"
    if delta == 0:
        return "unchanged"
    improved = (delta < 0) if lower_is_better else (delta > 0)
    return "better" if improved else "worse"


def changed_rows(change: dict[str, Any]) -> list[dict[str, str]]:
    """What changed from the previous sprint, figure by figure, in words."""
    rows = []
    for key, label, shown, lower in CHANGED:
        entry = change.get(key) or {}
        now, then = entry.get("current"), entry.get("previous")
        rows.append(
            {
                "figure": label,
                "this sprint": shown(now) if now is not None else "—",
                "previous sprint": shown(then) if then is not None else "—",
                "verdict": direction(entry, lower),
            }
        )
    return rows


def budget_rows(change: dict[str, Any]) -> list[dict[str, Any]]:
    """Per SLO: budget remaining when the sprint began and when it ended."""
    rows = []
    for name, entry in sorted((change.get("slos") or {}).items()):
        start, end = entry.get("previous_budget_remaining"), entry.get("budget_remaining")
        rows.append(
            {
                "slo": name,
                "budget_at_start": start,
                "budget_at_end": end,
                "spent": None if start is None or end is None else start - end,
            }
        )
    return rows


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return lines


def retro_markdown(
    team: str,
    sprint_label: str,
    card: dict[str, Any],
    change: dict[str, Any],
    slowest: pd.DataFrame,
    failed: pd.DataFrame,
    incidents: pd.DataFrame,
) -> str:
    """The retro notes: figures against the previous sprint, the slowest changes, failed
    deployments and their recovery, incidents, budgets, toil and on-call."""
    people = card.get("people") or {}
    toil, oncall = people.get("toil") or {}, people.get("oncall") or {}
    lines = [f"## Retro: {cell(team)}, {cell(sprint_label)}", "", "### What changed", ""]
    lines += _table(
        ["Figure", "This sprint", "Previous sprint", "Verdict"],
        [list(row.values()) for row in changed_rows(change)],
    )
    lines += ["", "### Slowest changes", ""]
    if slowest.empty:
        lines.append("No change reached production.")
    else:
        lines += _table(
            ["Change", "Title", "Author", "Lead time"],
            [[r.change_id, r.title, r.author, hours(r.lead_hours)] for r in slowest.itertuples()],
        )
    lines += ["", "### Failed deployments", ""]
    if failed.empty:
        lines.append("No production deployment failed.")
    else:
        lines += _table(
            ["Deployment", "Service", "Why it counts as failed", "Recovered after"],
            [[r.id, r.service, r.reason, hours(r.recovery_hours)] for r in failed.itertuples()],
        )
    lines += ["", "### Incidents", ""]
    if incidents.empty:
        lines.append("No incident.")
    else:
        lines += _table(
            ["Incident", "Severity", "Title", "Cause", "Resolved after", "Postmortem"],
            [
                [r.id, r.severity, r.title, r.cause, hours(r.mttr), r.postmortem_url]
                for r in incidents.itertuples()
            ],
        )
    lines += ["", "### Error budgets", ""]
    budgets = budget_rows(change)
    if budgets:
        lines += _table(
            ["SLO", "At the start", "At the end"],
            [
                [b["slo"], percent(b["budget_at_start"]), percent(b["budget_at_end"])]
                for b in budgets
            ],
        )
    else:
        lines.append("No SLO.")
    lines += [
        "",
        "### Toil and on-call",
        "",
        f"- Toil: {toil.get('hours', 0):,.0f} h, {percent(toil.get('share'))} of capacity "
        f"(cap {percent(toil.get('cap'), 0)})",
        f"- Pages: {oncall.get('pages', 0):,} ({oncall.get('per_week', 0):,.1f} a week), "
        f"{percent(oncall.get('after_hours_share'))} after hours",
        f"- Time to acknowledge (median): {minutes((card.get('incidents') or {}).get('mtta_median_minutes'))}",
        "",
        "### Notes",
        "",
        "- ",
    ]
    return "\n".join(lines) + "\n"
