"""Data-coverage notes: the engine's data-quality counts, worded for a reader.

Each note names what the figures could not see or had to leave out, with the engine's count
and the sample it is out of; the counts themselves come from the scorecard's `data_quality`,
`attribution` and `dora` blocks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reports.summary import count_phrase


def _count(card: Mapping[str, Any], *path: str) -> int:
    value: Any = card
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return int(value or 0)


def coverage_notes(card: Mapping[str, Any]) -> list[str]:
    quality = card.get("data_quality") or {}
    deployments = _count(card, "dora", "deployment_frequency", "deployments")
    changes = _count(card, "dora", "lead_time", "changes")
    incidents = _count(card, "incidents", "count")
    slos = list(card.get("slos") or [])
    notes: list[str] = []

    unlinked = int(quality.get("deployments_without_changes", 0))
    if unlinked:
        notes.append(
            f"{unlinked:,} of {count_phrase(deployments, 'production deployment')} name no "
            "change they shipped, so their changes are missing from lead time."
        )
    never = int(quality.get("changes_never_deployed", 0))
    if never:
        notes.append(
            f"{count_phrase(never, 'change')} committed in the quarter reached no production "
            "deployment (yet): they count in no lead time."
        )
    skew = int(quality.get("lead_time_nonpositive", 0))
    if skew:
        notes.append(
            f"{count_phrase(skew, 'change')} had a lead time of zero or less (clock skew or "
            f"automated changes) and were left out of the {changes:,} measured."
        )
    unattributed = _count(card, "attribution", "unattributed")
    if incidents:
        notes.append(
            f"{unattributed:,} of {count_phrase(incidents, 'incident')} could not be attributed "
            "to a deployment; only attributed incidents make a deployment count as failed."
        )
    for key, text in (
        ("incidents_without_service", "name no service, so no team's figures include them"),
        (
            "incidents_unresolved",
            "were not resolved by the end of the quarter and count in no time to resolve",
        ),
        (
            "incident_times_out_of_order",
            "have a detected, acknowledged or resolved time before their start and were left out of those times",
        ),
    ):
        found = int(quality.get(key, 0))
        if found:
            notes.append(f"{found:,} of {count_phrase(incidents, 'incident')} {text}.")
    blamed = int(quality.get("incidents_blaming_later_deployments", 0))
    if blamed:
        notes.append(
            f"For {count_phrase(blamed, 'incident')}, caused_by_deployment names a deployment "
            "made after the incident started (most likely a wrong id): as the definitions say, an "
            "explicit attribution still makes that deployment count as failed, but a "
            "recovery time that would come out negative is left out."
        )
    early = int(quality.get("rework_before_its_target", 0))
    if early:
        notes.append(
            f"{early:,} of {count_phrase(deployments, 'production deployment')} roll back or "
            "remediate a deployment made at the same time or later: they count as rework, "
            "but the deployment they name does not count as failed by them (only a later "
            "rollback or remediation makes it so), so rework and change fail rate disagree "
            "on them."
        )
    silent = int(quality.get("deployments_without_incident_data", 0))
    if silent:
        notes.append(
            f"{silent:,} of {count_phrase(deployments, 'production deployment')} belong to "
            "services with no incident on record at all: only a rollback or fix can make them "
            "count as failed, so their change fail rate may be flattering."
        )
    without = int(quality.get("slos_without_data", 0))
    if without:
        notes.append(
            f"{without:,} of {count_phrase(len(slos), 'SLO')} have no SLI sample at all: their "
            "attainment and budget are unknown, not 100 %."
        )
    gaps = int(quality.get("sli_gaps", 0))
    if gaps:
        notes.append(
            f"{count_phrase(int(quality.get('slos_with_gaps', 0)), 'SLO')} miss SLI data for "
            f"{count_phrase(gaps, 'hour')} in the quarter; the attainment covers only the hours "
            "measured."
        )
    if not deployments:
        notes.append("No production deployment in the quarter: the delivery figures are empty.")
    return notes
