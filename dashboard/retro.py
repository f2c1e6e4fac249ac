"""The team retro's notes as Markdown, ready to paste into a wiki or a ticket.

Everything here is wording: the figures arrive from the engine (`dashboard.queries`).
Text from the warehouse is escaped so that a commit message cannot inject HTML or break
a table in the page the notes are pasted into.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from dashboard.components import hours, minutes, percent
from dashboard.data import OPEN
from metrics.trends import dig
from metrics.wording import NO_INCIDENT_DATA, change_fail_rate_blind

# figure key -> (rows this sprint, rows the sprint before)
Samples = dict[str, tuple[int | None, int | None]]

# When a change from one sprint to the next is noise rather than news. A sprint is short:
# a median of a handful of changes, or a rate over a few dozen deployments, moves by a few
# per cent from sprint to sprint with nothing behind it, and calling that "worse" sends a
# retro chasing ghosts. The rule is deliberately simple enough to say in one sentence
# (NOISE_RULE), so a team can check a verdict by hand.
NOISE_RELATIVE = 0.10


@dataclass(frozen=True)
class Figure:
    """A figure the retro compares: where it is in `trends.change` and in the scorecard."""

    key: str  # in `trends.change`
    label: str
    shown: Callable[[Any], str]
    lower_is_better: bool
    floor: float  # a change smaller than this (in the figure's unit) is noise
    sample: tuple[str, ...] | None = None  # the rows a median or rate rests on
    # a count is its own sample: a drop from 20 deployments to 2 is news, 3 against 1 is
    # not; so it is too few to tell only when both sprints are small
    both_small: bool = False


CHANGED = (
    Figure(
        "deployments_per_week",
        "Deployments per week",
        lambda v: f"{v:,.1f}",
        False,
        0.5,
        ("dora", "deployment_frequency", "deployments"),
        both_small=True,
    ),
    Figure(
        "lead_time_median_hours",
        "Lead time (median)",
        hours,
        True,
        0.5,
        ("dora", "lead_time", "changes"),
    ),
    Figure(
        "change_failure_rate",
        "Change fail rate",
        percent,
        True,
        0.02,
        ("dora", "change_failure_rate", "deployments"),
    ),
    Figure(
        "recovery_median_hours",
        "Recovery time (median)",
        hours,
        True,
        0.5,
        ("dora", "recovery_time", "failures"),
    ),
    Figure(
        "rework_rate", "Rework rate", percent, True, 0.02, ("dora", "rework_rate", "deployments")
    ),
    # a floor of 2: one incident more or fewer is never a trend
    Figure("incidents", "Incidents", lambda v: f"{v:,.0f}", True, 2.0),
    Figure(
        "mttr_median_hours",
        "Time to resolve (median)",
        hours,
        True,
        0.5,
        ("incidents", "mttr_n"),
    ),
    Figure("toil_share", "Toil share", percent, True, 0.02),
)

BETTER, WORSE, SAME = "better", "worse", "about the same"
TOO_FEW, NO_COMPARISON = "too few to tell", "no comparison"


def noise_rule(min_sample: int | None = 5) -> str:
    """The verdicts' rule in words, for the page's help and the notes (`min_sample` None:
    judged without sample sizes)."""
    rule = (
        f"A figure is *{SAME}* when it moved by less than {percent(NOISE_RELATIVE, 0)} of its "
        "previous value, or by less than a floor: 0.5 deployments a week; 30 min of lead, "
        "recovery or resolve time; 2 percentage points of change fail rate, rework rate or "
        "toil share; and incidents moving by one."
    )
    if min_sample is not None:
        rule += (
            f" A median or rate resting on fewer than {min_sample} rows in either sprint "
            "(changes, deployments, recovered failures, resolved incidents) is "
            f"*{TOO_FEW}*, and so are deployments per week when both sprints had fewer "
            f"than {min_sample} deployments."
        )
    return rule + (
        f" A change fail rate whose deployments all belong to services with no incident on "
        f"record is *{NO_INCIDENT_DATA}*: only rollbacks and fixes could move it. Otherwise "
        f"it is *{BETTER}* or *{WORSE}*."
    )


# what "left" and "spent" mean, for the page's help and the notes
BUDGET_NOTE = (
    "*Left*: the error budget remaining over the SLO's window (e.g. the last 28 days) ending "
    "when the sprint began and when it ended; below 0 % it is overspent. *Spent in the "
    "sprint*: the sprint's own bad events as a share of the budget of the window ending with "
    "the sprint (over 100 %: the sprint alone spent more than a whole window's budget). "
    "*Left* can rise while the sprint spends: bad events older than the window stop counting."
)


def cell(value: Any) -> str:
    """Text for a Markdown table cell: no HTML, no column breaks, one line."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "—"
    text = str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ").strip()


def samples(current: Mapping[str, Any], previous: Mapping[str, Any]) -> Samples:
    """Per compared figure that rests on rows: how many, this sprint and the one before
    (from the two sprints' scorecards)."""
    return {
        figure.key: (dig(current, figure.sample), dig(previous, figure.sample))
        for figure in CHANGED
        if figure.sample is not None
    }


def verdict(
    entry: Mapping[str, Any],
    figure: Figure,
    rows: tuple[int | None, int | None] | None = None,
    min_sample: int = 5,
) -> str:
    """better, worse, about the same (within noise: `noise_rule`), too few to tell, or no
    comparison (either sprint has no value)."""
    now, then = entry.get("current"), entry.get("previous")
    if now is None or then is None:
        return NO_COMPARISON
    if rows is not None:
        small = [n is None or n < min_sample for n in rows]
        if all(small) if figure.both_small else any(small):
            return TOO_FEW
    delta = float(now) - float(then)
    if abs(delta) < figure.floor or (then and abs(delta) < NOISE_RELATIVE * abs(float(then))):
        return SAME
    improved = delta < 0 if figure.lower_is_better else delta > 0
    return BETTER if improved else WORSE


def unseen(card: Mapping[str, Any]) -> frozenset[str]:
    """The compared figures no data could move: the change fail rate of a sprint whose
    deployments all belong to services with no incident on record."""
    return frozenset({"change_failure_rate"}) if change_fail_rate_blind(card) else frozenset()


def verdicts(
    change: Mapping[str, Any],
    rows: Samples | None = None,
    min_sample: int = 5,
    blind: Collection[str] = (),
) -> dict[str, str]:
    """Each compared figure's verdict (`verdict`), by its key; NO_INCIDENT_DATA for those
    in `blind` (see `unseen`). Without `rows` (see `samples`) the sample-size part of the
    rule is not applied."""
    return {
        figure.key: NO_INCIDENT_DATA
        if figure.key in blind
        else verdict(
            change.get(figure.key) or {},
            figure,
            rows.get(figure.key) if rows else None,
            min_sample,
        )
        for figure in CHANGED
    }


def settled(
    change: Mapping[str, Any],
    rows: Samples | None = None,
    min_sample: int = 5,
    blind: Collection[str] = (),
) -> set[str]:
    """The compared figures whose change is no real change: about the same, too few rows
    to tell, or no data to move it (the cards show those changes grey, as the table words
    them)."""
    judged = verdicts(change, rows, min_sample, blind)
    return {key for key, word in judged.items() if word in (SAME, TOO_FEW, NO_INCIDENT_DATA)}


def changed_rows(
    change: Mapping[str, Any],
    rows: Samples | None = None,
    min_sample: int = 5,
    blind: Collection[str] = (),
) -> list[dict[str, str]]:
    """What changed from the previous sprint, figure by figure, in words."""
    judged = verdicts(change, rows, min_sample, blind)
    out = []
    for figure in CHANGED:
        entry = change.get(figure.key) or {}
        now, then = entry.get("current"), entry.get("previous")
        out.append(
            {
                "figure": figure.label,
                "this sprint": figure.shown(now) if now is not None else "—",
                "previous sprint": figure.shown(then) if then is not None else "—",
                "verdict": judged[figure.key],
            }
        )
    return out


def budget_rows(
    change: Mapping[str, Any], spent: Mapping[str, float | None]
) -> list[dict[str, Any]]:
    """Per SLO: what the sprint spent (`spent`: SLO -> `metrics.burndown.spent_since`), and
    the budget left when the sprint began and when it ended."""
    rows = []
    for name, entry in sorted((change.get("slos") or {}).items()):
        start, end = entry.get("previous_budget_remaining"), entry.get("budget_remaining")
        rows.append(
            {"slo": name, "budget_at_start": start, "budget_at_end": end, "spent": spent.get(name)}
        )
    return rows


NO_UNUSUAL_WEEK = "No whole week of the sprint departs from the team's own recent history."


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
    *,
    rows: Samples | None = None,
    min_sample: int = 5,
    spent: Mapping[str, float | None] | None = None,
    unusual: pd.DataFrame | None = None,
) -> str:
    """The retro notes: figures against the previous sprint (judged as on the page: `rows`
    and `min_sample` as for `changed_rows`), the slowest changes, failed deployments and
    their recovery, incidents, budgets (`spent` as for `budget_rows`; without it, not
    given), toil and on-call, and the unusual weeks (`unusual`: the page's table,
    `guardrails.flag_rows`; without it, not given)."""
    people = card.get("people") or {}
    toil, oncall = people.get("toil") or {}, people.get("oncall") or {}
    lines = [f"## Retro: {cell(team)}, {cell(sprint_label)}", "", "### What changed", ""]
    lines += _table(
        ["Figure", "This sprint", "Previous sprint", "Verdict"],
        [list(row.values()) for row in changed_rows(change, rows, min_sample, unseen(card))],
    )
    # the notes travel without the page's help: the rule goes with the verdicts
    lines += ["", noise_rule(min_sample if rows is not None else None)]
    lines += ["", "### Slowest changes", ""]
    if slowest.empty:
        lines.append("No change reached production.")
    else:
        lines += _table(
            ["Change", "Lead time", "Author", "Title"],
            [[r.change_id, hours(r.lead_hours), r.author, r.title] for r in slowest.itertuples()],
        )
    lines += ["", "### Failed deployments", ""]
    if failed.empty:
        lines.append("No production deployment failed.")
    else:
        lines += _table(
            ["Deployment", "Recovered after", "Service", "Why it counts as failed"],
            [[r.id, hours(r.recovery_hours), r.service, r.reason] for r in failed.itertuples()],
        )
    lines += ["", "### Incidents", ""]
    unrecorded = (card.get("incidents") or {}).get("reason")
    if incidents.empty:
        lines.append(f"No figure: {unrecorded}." if unrecorded else "No incident.")
    else:
        lines += _table(
            ["Incident", "Severity", "Resolved after", "Title", "Cause", "Postmortem"],
            [
                [
                    r.id,
                    r.severity,
                    hours(r.mttr) if getattr(r, "state", None) != OPEN else "still open",
                    r.title,
                    r.cause,
                    r.postmortem_url,
                ]
                for r in incidents.itertuples()
            ],
        )
    lines += ["", "### Error budgets", ""]
    budgets = budget_rows(change, spent or {})
    if budgets:
        lines += _table(
            ["SLO", "Spent in the sprint", "Left at the start", "Left at the end"],
            [
                [
                    b["slo"],
                    percent(b["spent"]),
                    percent(b["budget_at_start"]),
                    percent(b["budget_at_end"]),
                ]
                for b in budgets
            ],
        )
        lines += ["", BUDGET_NOTE]
    else:
        lines.append("No SLO.")
    lines += [
        "",
        "### Toil and on-call",
        "",
        f"- Toil: {toil.get('hours', 0):,.0f} h, {percent(toil.get('share'))} of capacity "
        f"(cap {percent(toil.get('cap'), 0)})"
        if toil.get("share") is not None
        else f"- Toil: {toil.get('reason') or 'no share'}",
        f"- Pages: {oncall.get('pages', 0):,} ({oncall['per_week']:,.1f} a week), "
        f"{percent(oncall.get('after_hours_share'))} after hours"
        if oncall.get("per_week") is not None
        else f"- Pages: {oncall.get('reason') or 'none recorded'}",
        f"- Time to acknowledge (median): {minutes((card.get('incidents') or {}).get('mtta_median_minutes'))}",
    ]
    if unusual is not None:
        lines += ["", "### Unusual weeks", ""]
        if unusual.empty:
            lines.append(NO_UNUSUAL_WEEK)
        else:
            lines += _table(
                ["Week of", "What", "Figure", "Value", "Usual", "Direction"],
                [
                    [f"{r.week:%Y-%m-%d}", r.what, r.figure, r.value, r.usual, r.direction]
                    for r in unusual.itertuples()
                ],
            )
    lines += ["", "### Notes", "", "- "]
    return "\n".join(lines) + "\n"
