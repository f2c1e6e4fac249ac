"""The incidents section: counts and times by severity and cause, attribution, and the most
significant incidents with their postmortems.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from reports.figures import SIGNIFICANT_INCIDENTS, Card, Inputs, get, incident_sentence, number
from reports.formats import is_web_link
from reports.model import (
    Cell,
    Column,
    Entry,
    Fmt,
    Paragraph,
    Section,
    Table,
)

SEVERITY_WORDS = {
    "critical": 0,
    "urgent": 0,
    "high": 1,
    "major": 1,
    "medium": 2,
    "moderate": 2,
    "low": 3,
    "minor": 3,
    "info": 4,
}


def severity_rank(severity: Any) -> int:
    """Lower is more severe: SEV1 / P1 / critical first, unknown last."""
    text = str(severity or "").strip().lower()
    digits = "".join(ch for ch in text if ch.isdigit())
    if digits:
        return int(digits)
    return SEVERITY_WORDS.get(text, 99)


def incidents_section(inputs: Inputs) -> Section:
    current = inputs.current
    blocks: list[Any] = [Paragraph(incident_sentence(current, inputs.previous, inputs.to_date))]
    by_severity = get(current, "incidents", "by_severity") or {}
    blocks.append(
        _breakdown(
            "Incidents by severity",
            "Severity",
            by_severity,
            "Incidents by severity",
            key=severity_rank,
        )
    )
    by_cause = get(current, "incidents", "by_cause") or {}
    blocks.append(_breakdown("Incidents by cause", "Cause", by_cause, "Incidents by cause"))
    attribution = current.get("attribution") or {}
    if attribution:
        blocks.append(
            Paragraph(
                "Attribution of incidents to deployments: "
                f"{attribution.get('explicit', 0)} explicit (the incident names its deployment), "
                f"{attribution.get('inferred', 0)} inferred (the service's latest production "
                f"deployment shortly before it started), "
                f"{attribution.get('unattributed', 0)} unattributed."
            )
        )
    blocks.append(_significant(inputs.incidents))
    return Section("Incidents and postmortems", "incidents", blocks)


def _breakdown(
    title: str, label: str, groups: Mapping[str, Card], sheet: str, key: Any = None
) -> Table:
    names = sorted(groups, key=(lambda name: (key(name), name)) if key else None)
    rows = tuple(
        (
            name,
            groups[name].get("count"),
            groups[name].get("mtta_median_minutes"),
            groups[name].get("mttr_median_hours"),
            groups[name].get("mttr_p90_hours"),
        )
        for name in names
    )
    columns = (
        Column("name", label),
        Column("count", "Incidents", Fmt.COUNT),
        Column("mtta", "Acknowledge, median", Fmt.MINUTES),
        Column("mttr", "Resolve, median", Fmt.HOURS),
        Column("mttr90", "Resolve, p90", Fmt.HOURS),
    )
    return Table(title, columns, rows, sheet, empty_text="No incident in the quarter.")


def _significant(incidents: pd.DataFrame) -> Table:
    columns = (
        Column("started", "Started", Fmt.DATETIME),
        Column("service", "Service"),
        Column("severity", "Severity"),
        Column("title", "Incident"),
        Column("mttr", "Resolved after", Fmt.HOURS),
        Column("cause", "Cause or deployment"),
        Column("postmortem", "Postmortem", Fmt.LINK),
    )
    rows: tuple[tuple[Entry, ...], ...] = ()
    if not incidents.empty:
        ranked = incidents.assign(
            _rank=incidents["severity"].map(severity_rank),
            _length=incidents["mttr"].fillna(float("inf")),  # unresolved: still going
        ).sort_values(["_rank", "_length", "started_at"], ascending=[True, False, True])
        rows = tuple(
            (
                row.started_at.to_pydatetime(),
                row.service,
                row.severity,
                row.title or row.id,
                _resolved_after(row),
                _cause_text(row),
                _postmortem(row.postmortem_url),
            )
            for row in ranked.head(SIGNIFICANT_INCIDENTS).itertuples(index=False)
        )
    return Table(
        "Most significant incidents",
        columns,
        rows,
        "Significant incidents",
        "Ranked by severity, then by time to resolve (unresolved first). Every incident of the quarter is in the workbook.",
        empty_text="No incident in the quarter.",
    )


def _resolved_after(row: Any) -> Entry:
    """Hours to resolve; an incident still open reads "not resolved", not "no data" (its
    start is on record, and the caption ranks it first for being open)."""
    if pd.isna(row.resolved_at):
        return Cell("not resolved", Fmt.TEXT)
    return number(row.mttr)


def _postmortem(url: Any) -> Entry:
    """The postmortem as a link; an address that is not http(s) (a `javascript:` one) is left
    out in every format, as the dashboard leaves it out."""
    if not isinstance(url, str) or not url.strip():
        return Cell("none linked", Fmt.TEXT)
    if not is_web_link(url):
        return Cell("not a web link", Fmt.TEXT)
    return url.strip()


def _cause_text(row: Any) -> str:
    deployment = getattr(row, "deployment_id", None)
    method = getattr(row, "method", None)
    if isinstance(deployment, str) and deployment:
        return f"deployment {deployment} ({method or 'attributed'})"
    cause = getattr(row, "cause", None)
    return str(cause) if isinstance(cause, str) and cause else "unattributed"
