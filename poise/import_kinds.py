"""What `poise import` accepts, kind by kind: the columns of each (`KINDS`), their types and
whether they are required, the plausibility rules a chunk is checked against, and the
limits that keep values inside what both warehouse engines store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
from sqlalchemy import Table

from poise.config import SloConfig
from poise.warehouse import schema

MAX_INTEGER = 2**31 - 1  # the warehouse's INTEGER on both engines
# Python's datetime, and so every reader of the warehouse, knows only years 1 to 9999; an
# offset can push a timestamp written inside that range outside it once it is in UTC.
MIN_YEAR, MAX_YEAR = 1, 9999
NUMERIC_KINDS = ("count", "number", "fraction", "integer")
# Toil is logged per (team, day, category). A day has 24 hours, and no team Poise scores
# has a thousand people, so more than 24 × 1,000 hours in one row is a unit or export
# mistake (minutes, seconds, a cumulative total), not toil; and values far above it, up to
# 1e308, overflow the toil share computed from them.
MAX_TOIL_HOURS = 24 * 1_000
# SLI buckets are counts of events (requests, probes) in one bucket, an hour for Poise's
# collectors: 10^15 is a million billion, far beyond any service's events in an hour. A
# larger figure is no count of events (a unit or export mistake), and figures near 1e308
# overflow the sums taken over a window (infinity, then NaN and a wrong status).
MAX_SLI_EVENTS = 10**15
# An SLO's window as poise.yaml bounds it (poise/config.py): the figures look back this far,
# and a window of millions of days would reach before the calendar's first day.
MAX_WINDOW_DAYS = next(
    rule.le for rule in SloConfig.model_fields["window_days"].metadata if hasattr(rule, "le")
)
# Columns of free text: the only ones that may hold a NUL character. Every other text column
# is an id, a name or a reference, compared with others: PostgreSQL cannot store a NUL (the
# warehouse writes U+FFFD there instead), so such a value would differ between the engines.
FREE_TEXT = frozenset({"title", "author", "cause", "postmortem_url"})


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # text | timestamp | count | number | integer | date | ids | status | fraction
    required: bool = True
    refers_to: str | None = None  # services | teams | slos | changes | deployments
    target: str | None = None  # warehouse column, when named differently


@dataclass(frozen=True)
class Kind:
    name: str
    table: Table
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    checks: tuple[Callable[[pd.DataFrame], tuple[pd.Series, str] | None], ...] = field(default=())

    @property
    def allowed(self) -> list[str]:
        return [column.name for column in self.columns]


def _good_within_total(frame: pd.DataFrame) -> tuple[pd.Series, str]:
    return frame["good"] > frame["total"], "good is greater than total"


def _plausible_events(frame: pd.DataFrame) -> tuple[pd.Series, str]:
    too_many = (frame["good"] > MAX_SLI_EVENTS) | (frame["total"] > MAX_SLI_EVENTS)
    message = ""
    if too_many.any():
        row = frame[too_many].iloc[0]
        name = "good" if row["good"] > MAX_SLI_EVENTS else "total"
        shown = repr(float(row[name])).removesuffix(".0")  # 1e+308, 1000000000000001
        message = (
            f"{name}: {shown} is more than {MAX_SLI_EVENTS:,} events in "
            "one bucket: not a count of events"
        )
    return too_many, message


def _resolved_after_start(frame: pd.DataFrame) -> tuple[pd.Series, str]:
    resolved = frame["resolved_at"]
    return resolved.notna() & (resolved < frame["started_at"]), "resolved_at is before started_at"


def _acknowledged_after_start(frame: pd.DataFrame) -> tuple[pd.Series, str]:
    acked = frame["acknowledged_at"]
    return acked.notna() & (acked < frame["started_at"]), "acknowledged_at is before started_at"


def _detected_after_start(frame: pd.DataFrame) -> tuple[pd.Series, str]:
    detected = frame["detected_at"]
    return detected.notna() & (detected < frame["started_at"]), "detected_at is before started_at"


def _plausible_toil(frame: pd.DataFrame) -> tuple[pd.Series, str]:
    too_many = frame["hours"] > MAX_TOIL_HOURS
    shown = format(frame["hours"][too_many].iloc[0], ".15g") if too_many.any() else ""
    return (
        too_many,
        f"hours: {shown} is more than {MAX_TOIL_HOURS:,} (24 hours of 1,000 people) for one "
        "team, day and category: not hours of toil (minutes, or a running total?)",
    )


def _positive_pr_number(frame: pd.DataFrame) -> tuple[pd.Series, str]:
    # GitHub pull requests and GitLab merge requests are numbered from 1.
    # to_numeric: the column is all None (object) when the file leaves it out
    below = (pd.to_numeric(frame["pr_number"], errors="coerce") < 1).fillna(False)
    shown = str(frame["pr_number"][below].iloc[0]) if below.any() else ""
    return below, f"pr_number: {shown} is not a pull request's number (they start at 1)"


def _not_itself(frame: pd.DataFrame) -> tuple[pd.Series, str]:
    return (
        (frame["rollback_of"] == frame["id"]) | (frame["remediation_of"] == frame["id"]),
        "a deployment cannot roll back or remediate itself",
    )


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind(
            "services",
            schema.services,
            (Column("name", "text"), Column("team", "text")),
            ("name",),
        ),
        Kind(
            "changes",
            schema.changes,
            (
                Column("id", "text"),
                Column("service", "text", refers_to="services"),
                Column("sha", "text"),
                Column("committed_at", "timestamp"),
                Column("merged_at", "timestamp", required=False),
                Column("pr_number", "integer", required=False),
                Column("title", "text", required=False),
                Column("author", "text", required=False),
            ),
            ("id",),
            (_positive_pr_number,),
        ),
        Kind(
            "deployments",
            schema.deployments,
            (
                Column("id", "text"),
                Column("service", "text", refers_to="services"),
                Column("environment", "text"),
                Column("deployed_at", "timestamp"),
                Column("status", "status"),
                Column("sha", "text"),
                Column("change_ids", "ids", refers_to="changes"),
                Column("rollback_of", "text", required=False, refers_to="deployments"),
                Column("remediation_of", "text", required=False, refers_to="deployments"),
            ),
            ("id",),
            (_not_itself,),
        ),
        Kind(
            "incidents",
            schema.incidents,
            (
                Column("id", "text"),
                Column("service", "text", refers_to="services"),
                Column("severity", "text"),
                Column("started_at", "timestamp"),
                Column("detected_at", "timestamp"),
                Column("acknowledged_at", "timestamp"),
                Column("resolved_at", "timestamp"),
                Column("caused_by_deployment", "text", required=False, refers_to="deployments"),
                Column("cause", "text", required=False),
                Column("title", "text", required=False),
                Column("postmortem_url", "text", required=False),
            ),
            ("id",),
            (_detected_after_start, _acknowledged_after_start, _resolved_after_start),
        ),
        Kind(
            "slos",
            schema.slos,
            (
                Column("name", "text"),
                Column("service", "text", refers_to="services"),
                Column("target", "fraction"),
                Column("window_days", "integer"),
            ),
            ("name",),
        ),
        Kind(
            "sli",
            schema.sli_samples,
            (
                Column("slo", "text", refers_to="slos"),
                Column("timestamp", "timestamp", target="ts"),
                Column("good", "count"),
                Column("total", "count"),
            ),
            ("slo", "timestamp"),
            (_plausible_events, _good_within_total),
        ),
        Kind(
            "toil",
            schema.toil_entries,
            (
                Column("team", "text", refers_to="teams"),
                Column("date", "date", target="day"),
                Column("hours", "count"),
                Column("category", "text"),
            ),
            ("team", "date", "category"),
            (_plausible_toil,),
        ),
    )
}
# Columns the contract lists as present but whose value may legitimately be empty.
# `changes.sha` is not among them: the contract gives every change a sha, and
# collectors/shipped.py finds a deployment's changes by it.
MAY_BE_EMPTY = {
    ("incidents", "detected_at"),
    ("incidents", "acknowledged_at"),
    ("incidents", "resolved_at"),
    ("incidents", "severity"),
    ("deployments", "change_ids"),
    ("deployments", "sha"),
}
