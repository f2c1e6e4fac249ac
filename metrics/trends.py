"""Every figure by week and by month, and the change from the previous period.

The whole period is read once; each bucket's figures come from the same row-level basis,
filtered to the bucket, through the same figure functions as the scorecard, so a bucket's
numbers equal the scorecard of that bucket as a period of its own. Weeks start on Monday
00:00 UTC and months on the 1st; the first and last bucket are clipped to the period (and
their per-week rates use their true length).
"""

from __future__ import annotations

from datetime import datetime
from itertools import pairwise
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from metrics import attribution, delivery, people
from metrics.incidents import incident_figures
from metrics.model import Period, Scope, Settings
from metrics.scorecard import Basis, compute, scorecard
from metrics.stats import finite
from poise.timeutil import previous_period


def buckets(period: Period, freq: str) -> list[Period]:
    """`W` (weeks from Monday) or `M` (calendar months), clipped to the period."""
    start, end = pd.Timestamp(period.start), pd.Timestamp(period.end)
    naive = start.tz_convert("UTC").tz_localize(None)
    first = naive.to_period("W-SUN" if freq == "W" else "M").start_time.tz_localize("UTC")
    step = pd.DateOffset(weeks=1) if freq == "W" else pd.DateOffset(months=1)
    edges = [start]
    cursor = first + step
    while cursor < end:
        edges.append(cursor)
        cursor = cursor + step
    edges.append(end)
    return [Period(a.to_pydatetime(), b.to_pydatetime()) for a, b in pairwise(edges) if b > a]


def _between(frame: pd.DataFrame, column: str, bucket: Period) -> pd.DataFrame:
    return frame[(frame[column] >= bucket.start) & (frame[column] < bucket.end)]


def bucket_figures(basis: Basis, bucket: Period, settings: Settings) -> dict[str, Any]:
    """The flat figures of one bucket of a basis."""
    frames = basis.frames
    rows = _between(basis.deployments, "deployed_at", bucket)
    changes = _between(frames.changes, "deployed_at", bucket)
    incidents = basis.period_incidents
    incidents = _between(incidents, "started_at", bucket)
    dora = delivery.dora(rows, changes, bucket, settings)
    inc = incident_figures(incidents)
    counted = attribution.counts(
        basis.attributions[basis.attributions["incident_id"].isin(incidents["id"])]
    )
    toil_rows = frames.toil[
        (pd.to_datetime(frames.toil["day"]).dt.tz_localize("UTC") >= bucket.start)
        & (pd.to_datetime(frames.toil["day"]).dt.tz_localize("UTC") < bucket.end)
    ]
    toil = people.toil(toil_rows, frames.teams, bucket, frames.scope, settings)
    oncall = people.oncall(_between(frames.pages, "triggered_at", bucket), bucket)
    return {
        "bucket_start": bucket.start,
        "bucket_end": bucket.end,
        "deployments": dora["deployment_frequency"]["deployments"],
        "deployments_per_week": dora["deployment_frequency"]["per_week"],
        "lead_time_median_hours": dora["lead_time"]["median_hours"],
        "lead_time_p90_hours": dora["lead_time"]["p90_hours"],
        "changes": dora["lead_time"]["changes"],
        "change_failure_rate": dora["change_failure_rate"]["rate"],
        "failed": dora["change_failure_rate"]["failed"],
        "recovery_median_hours": dora["recovery_time"]["median_hours"],
        "recovery_p90_hours": dora["recovery_time"]["p90_hours"],
        "failures": dora["recovery_time"]["failures"],
        "rework_rate": dora["rework_rate"]["rate"],
        "rework": dora["rework_rate"]["rework"],
        "incidents": inc["count"],
        "mttd_median_minutes": inc["mttd_median_minutes"],
        "mtta_median_minutes": inc["mtta_median_minutes"],
        "mttr_median_hours": inc["mttr_median_hours"],
        "mttr_p90_hours": inc["mttr_p90_hours"],
        "attributed_explicit": counted["explicit"],
        "attributed_inferred": counted["inferred"],
        "unattributed": counted["unattributed"],
        "toil_hours": toil["hours"],
        "toil_share": toil["share"],
        "pages": oncall["pages"],
        "pages_per_week": oncall["per_week"],
        "after_hours_share": oncall["after_hours_share"],
    }


def trends(
    engine: Engine,
    period: Period,
    scope: Scope | None = None,
    settings: Settings | None = None,
    *,
    freq: str = "W",
    now: datetime | None = None,
) -> pd.DataFrame:
    """One row per bucket (`freq` W or M) with every delivery, incident and people figure;
    figures without data are None."""
    settings = settings or Settings()
    basis = compute(engine, period, scope or Scope(), settings, now=now)
    rows = [bucket_figures(basis, bucket, settings) for bucket in buckets(period, freq)]
    return pd.DataFrame(rows)


def weekly_trends(
    engine: Engine,
    period: Period,
    scope: Scope | None = None,
    settings: Settings | None = None,
    *,
    now: datetime | None = None,
) -> pd.DataFrame:
    """Every figure by week (Monday to Monday, UTC)."""
    return trends(engine, period, scope, settings, freq="W", now=now)


def monthly_trends(
    engine: Engine,
    period: Period,
    scope: Scope | None = None,
    settings: Settings | None = None,
    *,
    now: datetime | None = None,
) -> pd.DataFrame:
    """Every figure by calendar month."""
    return trends(engine, period, scope, settings, freq="M", now=now)


COMPARED = {
    "deployments_per_week": ("dora", "deployment_frequency", "per_week"),
    "lead_time_median_hours": ("dora", "lead_time", "median_hours"),
    "change_failure_rate": ("dora", "change_failure_rate", "rate"),
    "recovery_median_hours": ("dora", "recovery_time", "median_hours"),
    "rework_rate": ("dora", "rework_rate", "rate"),
    "incidents": ("incidents", "count"),
    "mttr_median_hours": ("incidents", "mttr_median_hours"),
    "toil_share": ("people", "toil", "share"),
}


def _dig(document: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = document
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def change(current: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
    """Per headline figure: current, previous, the difference and the relative change
    (None where either side has no value, or the previous one is 0)."""
    out: dict[str, Any] = {}
    for name, path in COMPARED.items():
        now_value, then_value = _dig(current, path), _dig(previous, path)
        delta = None if now_value is None or then_value is None else now_value - then_value
        relative = finite(delta / then_value) if delta is not None and then_value else None
        out[name] = {
            "current": now_value,
            "previous": then_value,
            "delta": delta,
            "relative": relative,
        }
    slo_then = {slo["name"]: slo for slo in previous.get("slos", [])}
    out["slos"] = {
        slo["name"]: {
            "sli": slo["sli"],
            "previous_sli": slo_then.get(slo["name"], {}).get("sli"),
            "budget_remaining": slo["budget_remaining"],
            "previous_budget_remaining": slo_then.get(slo["name"], {}).get("budget_remaining"),
        }
        for slo in current.get("slos", [])
    }
    return out


def period_over_period(
    engine: Engine,
    period: Period,
    scope: Scope | None = None,
    settings: Settings | None = None,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The scorecard of `period` with `previous` (the period just before: the previous
    quarter for a quarter) and `change` (quarter-over-quarter change of the headline
    figures)."""
    current = scorecard(engine, period, scope, settings, now=now)
    before = Period(*previous_period(period.start, period.end))
    previous = scorecard(engine, before, scope, settings, now=now)
    return {**current, "previous": previous, "change": change(current, previous)}
