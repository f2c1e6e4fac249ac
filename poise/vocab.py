"""The one status vocabulary, and how each source's words map onto it.

Sources disagree (`cancelled` vs `canceled`, upper-case Jenkins results, GitHub
conclusions): collectors translate here, once, at ingest, so nothing downstream ever
asks which tool a row came from.
"""

from __future__ import annotations

from enum import StrEnum

from poise.errors import PoiseError


class UnknownStatus(PoiseError, ValueError):
    """A status word no source is known to send: the scope fails with one line naming it."""


class RunStatus(StrEnum):
    """Status of a CI run or deployment attempt."""

    SUCCESS = "success"
    FAILURE = "failure"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    RUNNING = "running"


# A deployment row is either `success` or `failure` (metric-definitions.md); an attempt
# that was cancelled did not complete, so it is a failed deployment attempt.
DEPLOYMENT_STATUSES = (RunStatus.SUCCESS.value, RunStatus.FAILURE.value)

_SOURCE_WORDS: dict[str, RunStatus] = {
    # GitHub Actions conclusions and deployment states
    "success": RunStatus.SUCCESS,
    "failure": RunStatus.FAILURE,
    "error": RunStatus.FAILURE,
    "timed_out": RunStatus.FAILURE,
    "startup_failure": RunStatus.FAILURE,
    "action_required": RunStatus.FAILURE,
    "cancelled": RunStatus.CANCELLED,
    "canceled": RunStatus.CANCELLED,
    "skipped": RunStatus.SKIPPED,
    "neutral": RunStatus.SKIPPED,
    "stale": RunStatus.SKIPPED,
    "inactive": RunStatus.SUCCESS,
    "in_progress": RunStatus.RUNNING,
    "queued": RunStatus.RUNNING,
    "pending": RunStatus.RUNNING,
    "waiting": RunStatus.RUNNING,
    "requested": RunStatus.RUNNING,
    # GitLab pipelines and deployments
    "failed": RunStatus.FAILURE,
    "created": RunStatus.RUNNING,
    "waiting_for_resource": RunStatus.RUNNING,
    "preparing": RunStatus.RUNNING,
    "running": RunStatus.RUNNING,
    "manual": RunStatus.SKIPPED,
    "scheduled": RunStatus.RUNNING,
    "blocked": RunStatus.RUNNING,
    # GitLab 16.x+: not finished yet (after_script still runs; an external callback is due)
    "canceling": RunStatus.RUNNING,
    "waiting_for_callback": RunStatus.RUNNING,
    # Jenkins results
    "unstable": RunStatus.FAILURE,
    "aborted": RunStatus.CANCELLED,
    "not_built": RunStatus.SKIPPED,
}


def normalize_status(word: str | None) -> RunStatus:
    """Map any source's status word to the one enum; an unknown word is an error (a guess
    could count a failed deployment as a success), which fails that scope in one line."""
    if word is None:
        return RunStatus.RUNNING
    key = word.strip().lower()
    try:
        return _SOURCE_WORDS[key]
    except KeyError:
        raise UnknownStatus(
            f"status {word!r} is not one Poise knows (docs/collectors.md lists each source's "
            "words): please report it; the other scopes and sources go on"
        ) from None


def deployment_status(status: RunStatus) -> str | None:
    """The canonical deployment status of an attempt; None when it is no deployment (yet).

    A running attempt is picked up once it finishes; a skipped one never deployed.
    """
    if status in (RunStatus.RUNNING, RunStatus.SKIPPED):
        return None
    if status is RunStatus.SUCCESS:
        return RunStatus.SUCCESS.value
    return RunStatus.FAILURE.value


class IncidentStatus(StrEnum):
    """Where an incident stands; only `resolved` ones have a `resolved_at`."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


_INCIDENT_WORDS: dict[str, IncidentStatus] = {
    # PagerDuty
    "triggered": IncidentStatus.OPEN,
    "acknowledged": IncidentStatus.ACKNOWLEDGED,
    "resolved": IncidentStatus.RESOLVED,
    # Opsgenie (an incident is closed after it is resolved)
    "open": IncidentStatus.OPEN,
    "closed": IncidentStatus.RESOLVED,
}


def incident_status(word: str) -> IncidentStatus:
    """Map an incident tool's status word to the one enum; unknown words are an error."""
    try:
        return _INCIDENT_WORDS[word.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown incident status {word!r}") from None
