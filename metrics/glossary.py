"""One short definition per figure, for tooltips, column help and chart captions.

The long definitions, with worked examples, are in docs/metrics.md and the contract
(metric-definitions.md); these are their one-paragraph summaries, kept beside the engine so
that every page and report that shows a figure can say what it is without restating it.
Keys are the figures' names in the scorecard document (or, for row-level columns, the
column's name); `term(key)` raises on an unknown key, so a page cannot show a figure
without a definition.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Term:
    label: str
    definition: str
    unit: str = ""
    better: str = ""  # "higher", "lower" or "" (neither: a count, a state)


TERMS: dict[str, Term] = {
    # Delivery (DORA)
    "deployment_frequency": Term(
        "Deployments per week",
        "Production deployments (the service's production environment, status success) "
        "finished in the period, divided by the period's length in weeks.",
        "per week",
        "higher",
    ),
    "lead_time": Term(
        "Lead time (median)",
        "From a change's commit to its first production deployment; the median (and 90th "
        "percentile) over the changes first deployed in the period. Lead times of zero or "
        "less are left out and counted as a data-quality finding.",
        "hours",
        "lower",
    ),
    "change_failure_rate": Term(
        "Change fail rate",
        "Failed production deployments / all production deployments in the period. A "
        "deployment failed when an incident is attributed to it or a later deployment rolls "
        "it back or remediates it.",
        "share",
        "lower",
    ),
    "recovery_time": Term(
        "Recovery time (median)",
        "Failed deployment recovery time: from a failed deployment to the earliest rollback "
        "or remediation deployment naming it, else to the last resolution of the incidents "
        "attributed to it; the median over the period's failed deployments.",
        "hours",
        "lower",
    ),
    "rework_rate": Term(
        "Rework rate",
        "Production deployments that roll back or remediate another / all production "
        "deployments in the period.",
        "share",
        "lower",
    ),
    "tier": Term(
        "Tier",
        "The DORA performance tier (elite, high, medium, low) from the published benchmark "
        "table of the configured year; 'insufficient data' when fewer than the minimum "
        "sample (5 deployments, changes or failures) stand behind the figure.",
    ),
    "failed": Term(
        "Failed",
        "Whether this production deployment counts as failed: an incident is attributed to "
        "it, or a later production deployment names it in rollback_of or remediation_of.",
    ),
    "reason": Term(
        "Why",
        "The engine's own words for why the row counts as it does (the same text as "
        "`poise explain`).",
    ),
    # Lead-time breakdown
    "coding_hours": Term(
        "Coding",
        "From the change's first commit to the pull request being opened.",
        "hours",
        "lower",
    ),
    "review_hours": Term(
        "Review",
        "From the pull request being opened to its merge.",
        "hours",
        "lower",
    ),
    "before_merge_hours": Term(
        "Commit to merge",
        "From the change's first commit to its merge (coding and review together, where the "
        "pull request's opening time is not known).",
        "hours",
        "lower",
    ),
    "waiting_hours": Term(
        "Waiting for deploy",
        "From the merge to the change's first production deployment.",
        "hours",
        "lower",
    ),
    # Incidents
    "incidents": Term(
        "Incidents",
        "Incidents in scope that started in the period.",
        "",
        "lower",
    ),
    "mttd": Term(
        "Time to detect",
        "detected_at − started_at; the median (minutes) over the period's incidents that "
        "have both times in order.",
        "minutes",
        "lower",
    ),
    "mtta": Term(
        "Time to acknowledge",
        "acknowledged_at − started_at; the median (minutes) over the period's incidents "
        "that were acknowledged.",
        "minutes",
        "lower",
    ),
    "mttr": Term(
        "Time to resolve",
        "resolved_at − started_at; the median (hours) over the period's resolved incidents.",
        "hours",
        "lower",
    ),
    "attribution": Term(
        "Attribution",
        "How an incident is tied to a deployment: explicit (it names one in "
        "caused_by_deployment), inferred (no cause given: the latest production deployment "
        "of its service in the attribution window before it started), or none.",
    ),
    "cause": Term(
        "Cause",
        "The incident's recorded cause (regression, latent bug, cascading failure, capacity, "
        "external, …); an incident with a known non-deployment cause is never attributed by "
        "inference.",
    ),
    # Reliability
    "sli": Term(
        "SLI",
        "Good events / all events over the SLO's window ending at the period's end.",
        "share",
        "higher",
    ),
    "target": Term("Target", "The SLO's objective: the share of good events it promises."),
    "budget_remaining": Term(
        "Budget remaining",
        "1 − bad events / error budget, where the budget is (1 − target) × all events in "
        "the window: 100 % untouched, 0 % spent, negative overspent.",
        "share",
        "higher",
    ),
    "burn_rate": Term(
        "Burn rate",
        "(bad / all events over the look-back) / (1 − target): 1 spends the budget exactly "
        "over the window, 14.4 over 1 h spends 2 % of a 30-day budget in that hour.",
        "×",
        "lower",
    ),
    "status": Term(
        "Status",
        "exhausted: budget remaining ≤ 0; at risk: at the last 24 h burn rate the budget "
        "runs out before the window ends; ok otherwise.",
    ),
    "alert": Term(
        "Alert state",
        "The SRE Workbook's multiwindow, multi-burn-rate alerts: page at 14.4× over 1 h or "
        "6× over 6 h, ticket at 3× over 24 h or 1× over 3 days (each with its short "
        "confirming window).",
    ),
    "forecast_exhausted_at": Term(
        "Forecast exhaustion",
        "When the budget runs out if the last 24 h burn rate goes on.",
    ),
    "slos_met": Term(
        "SLOs met",
        "SLOs whose SLI is at or above target, of the SLOs with data in their window.",
        "",
        "higher",
    ),
    "lowest_budget_remaining": Term(
        "Lowest budget remaining",
        "The smallest budget remaining among the scope's SLOs (the one closest to, or "
        "furthest past, exhaustion).",
        "share",
        "higher",
    ),
    "freeze": Term(
        "Release freeze",
        "Budget policy: a service whose SLO budget is exhausted is frozen (only rollbacks "
        "and fixes should ship) until the budget recovers.",
    ),
    "deployments_during_freeze": Term(
        "Deployments during freeze",
        "Production deployments that shipped while their service was frozen; rollbacks and "
        "remediations are allowed (exempt).",
        "",
        "lower",
    ),
    "budget_share": Term(
        "Budget burned",
        "Bad events recorded by the service's SLO while the incident lasted, as a share of "
        "the SLO's error budget in the reported window (for a deployment: the sum over its "
        "attributed incidents).",
        "share",
        "lower",
    ),
    # People
    "toil_share": Term(
        "Toil share",
        "Toil hours / (team size × hours per week × weeks in the period), against the "
        "configured cap (50 % by default).",
        "share",
        "lower",
    ),
    "pages_per_week": Term(
        "Pages per week",
        "On-call pages triggered in the period, per week.",
        "per week",
        "lower",
    ),
    "after_hours_share": Term(
        "After hours",
        "The share of pages outside the team's working hours (weekdays, in its time zone).",
        "share",
        "lower",
    ),
    # Data-quality findings (rows the figures count as the contract says, but that
    # contradict themselves in time, so a reader can find them)
    "incidents_blaming_later_deployments": Term(
        "Incidents blaming later deployments",
        "Incidents whose caused_by_deployment names a production deployment that finished "
        "after the incident started (likely a wrong id). Explicit attribution has no time "
        "bound, so the deployment still counts as failed; a recovery time that would be "
        "negative is left out. Counted in the blamed deployment's period and team.",
    ),
    "rework_before_its_target": Term(
        "Rework before its target",
        "Production deployments of the period that roll back or remediate a deployment "
        "made at the same time or later. They count as rework, but the deployment they "
        "name does not count as failed by them (only a later rollback or remediation does).",
    ),
    "deployments_without_incident_data": Term(
        "Deployments without incident data",
        "Production deployments of the period whose service has no incident on record at "
        "all (no incident source synced or imported for it). They count in change fail rate "
        "as the definitions say, but only a rollback or fix can make them failed, so the "
        "rate may flatter the service.",
    ),
    # Coverage
    "changes_linked": Term(
        "Changes linked to deployments",
        "Of the changes committed in the period, the share that a production deployment has "
        "shipped (so far). Not the lead time's sample, which counts the changes deployed in "
        "the period, whenever they were committed.",
        "share",
        "higher",
    ),
    "deployments_with_changes": Term(
        "Deployments naming their changes",
        "Of the period's production deployments, the share that name the changes they "
        "shipped (without them, lead time cannot be measured).",
        "share",
        "higher",
    ),
    "incidents_attributed": Term(
        "Incidents attributed",
        "Of the period's incidents, the share attributed to a deployment (explicitly or by "
        "inference).",
        "share",
    ),
    "slos_with_data": Term(
        "SLOs with data",
        "Of the SLOs in scope, the share with SLI samples in the window they are evaluated over.",
        "share",
        "higher",
    ),
}


def term(key: str) -> Term:
    """The definition of `key` (KeyError names the key when there is none)."""
    try:
        return TERMS[key]
    except KeyError:
        raise KeyError(f"no glossary entry for {key!r}") from None


def help_text(key: str) -> str:
    """A tooltip: the label's definition, with its unit unless the definition says it."""
    entry = term(key)
    said = not entry.unit or entry.unit == "share" or entry.unit in entry.definition.lower()
    return entry.definition if said else f"{entry.definition} ({entry.unit})"
