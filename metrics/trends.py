"""Every figure by week and by month, and the change from the previous period.

The whole period is read once; each bucket's figures come from the same row-level basis,
filtered to the bucket, through the same figure functions as the scorecard, so a bucket's
numbers equal the scorecard of that bucket as a period of its own. Weeks start on Monday
00:00 UTC and months on the 1st; the first and last bucket are clipped to the period (and
their per-week rates use their true length).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from itertools import pairwise
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from metrics import attribution, delivery, people
from metrics.incidents import incident_figures_by
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


TIME_COLUMNS = ("deployed_at", "started_at", "triggered_at", "day")


def bucket_of(frame: pd.DataFrame, edges: pd.DatetimeIndex) -> pd.Series:
    """The index of the bucket each row falls in, by its time column (-1: outside)."""
    column = next(name for name in TIME_COLUMNS if name in frame.columns)
    times = frame[column]
    if column == "day":
        times = pd.to_datetime(times.astype(str)).dt.tz_localize("UTC")
    if times.empty:
        return pd.Series(dtype=int, index=frame.index)
    values = pd.DatetimeIndex(times).as_unit("ns").asi8
    index = edges.as_unit("ns").asi8.searchsorted(values, side="right") - 1
    index[(index >= len(edges) - 1) | (index < 0)] = -1
    return pd.Series(index, index=frame.index)


def figures_by_bucket(
    basis: Basis, periods: list[Period], settings: Settings
) -> list[dict[str, Any]]:
    """The flat figures of each bucket (consecutive periods inside the basis' period)."""
    edges = pd.DatetimeIndex(
        [pd.Timestamp(p.start) for p in periods] + [pd.Timestamp(periods[-1].end)]
    )
    groups = list(range(len(periods)))
    span = dict(enumerate(periods))
    frames = basis.frames

    def tag(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(group=bucket_of(frame, edges).to_numpy())

    rows, changes, incidents = (
        tag(basis.deployments),
        tag(frames.changes),
        tag(basis.period_incidents),
    )
    dora = delivery.dora_by(rows, changes, span, settings)
    blocks = incident_figures_by(incidents, groups, dict.fromkeys(groups, frames.records_incidents))
    links = basis.attributions.merge(
        incidents[["id", "group"]].rename(columns={"id": "incident_id"}), on="incident_id"
    )
    counted = attribution.counts_by(links, links["group"], groups)
    capacity = people.Capacity.of(frames.teams)
    capacities = dict.fromkeys(groups, capacity)
    toil = people.toil_by(tag(frames.toil), capacities, span, settings)
    oncall = people.oncall_by(tag(frames.pages), span, capacities)
    out = []
    for group, bucket in span.items():
        d, inc = dora[group], blocks[group]
        out.append(
            {
                "bucket_start": bucket.start,
                "bucket_end": bucket.end,
                "deployments": d["deployment_frequency"]["deployments"],
                "deployments_per_week": d["deployment_frequency"]["per_week"],
                "lead_time_median_hours": d["lead_time"]["median_hours"],
                "lead_time_p90_hours": d["lead_time"]["p90_hours"],
                "changes": d["lead_time"]["changes"],
                "change_failure_rate": d["change_failure_rate"]["rate"],
                "failed": d["change_failure_rate"]["failed"],
                "recovery_median_hours": d["recovery_time"]["median_hours"],
                "recovery_p90_hours": d["recovery_time"]["p90_hours"],
                "failures": d["recovery_time"]["failures"],
                "rework_rate": d["rework_rate"]["rate"],
                "rework": d["rework_rate"]["rework"],
                "incidents": inc["count"],
                "mttd_median_minutes": inc["mttd_median_minutes"],
                "mtta_median_minutes": inc["mtta_median_minutes"],
                "mttr_median_hours": inc["mttr_median_hours"],
                "mttr_p90_hours": inc["mttr_p90_hours"],
                "attributed_explicit": counted[group]["explicit"],
                "attributed_inferred": counted[group]["inferred"],
                "unattributed": counted[group]["unattributed"],
                "toil_hours": toil[group]["hours"],
                "toil_share": toil[group]["share"],
                "pages": oncall[group]["pages"],
                "pages_per_week": oncall[group]["per_week"],
                "after_hours_share": oncall[group]["after_hours_share"],
            }
        )
    return out


def bucket_figures(basis: Basis, bucket: Period, settings: Settings) -> dict[str, Any]:
    """The flat figures of one bucket of a basis."""
    return figures_by_bucket(basis, [bucket], settings)[0]


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
    figures without data are None (NaN in float columns)."""
    settings = settings or Settings()
    basis = compute(engine, period, scope or Scope(), settings, now=now)
    return pd.DataFrame(figures_by_bucket(basis, buckets(period, freq), settings))


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
    "mttd_median_minutes": ("incidents", "mttd_median_minutes"),
    "mtta_median_minutes": ("incidents", "mtta_median_minutes"),
    "mttr_median_hours": ("incidents", "mttr_median_hours"),
    "toil_share": ("people", "toil", "share"),
}


def dig(document: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The value at `path` in a scorecard document, None where any step is missing."""
    value: Any = document
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


# what a scorecard counts in its period and scope: all zero, the warehouse holds nothing there
ACTIVITY = (
    ("dora", "deployment_frequency", "deployments"),
    ("dora", "lead_time", "changes"),
    ("incidents", "count"),
    ("people", "toil", "hours"),
    ("people", "oncall", "pages"),
)


def holds_data(card: Mapping[str, Any]) -> bool:
    """Whether the scorecard's period and scope hold any deployment, deployed change,
    incident, toil or page. A period before the data begins (before a first sync's
    `since`, a young warehouse's quarter before) holds none: its zeros are no figures, and
    a change from them ("rose from 0.0 per week", "incidents: new") would be made up."""
    return any(dig(card, path) for path in ACTIVITY)


def nothing_held(period: str) -> str:
    """The line saying that `period` ("the quarter before") holds nothing (`holds_data`)."""
    return (
        f"The warehouse holds nothing of {period} (no deployment, deployed change, incident, "
        "toil or page), so no figure is compared with it."
    )


def change(current: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
    """Per headline figure: current, previous, the difference and the relative change
    (None where either side has no value, or the previous one is 0). A previous period
    that holds no data at all (`holds_data`) gives no previous value for any figure."""
    out: dict[str, Any] = {}
    before = previous if holds_data(previous) else {}
    for name, path in COMPARED.items():
        now_value, then_value = dig(current, path), dig(before, path)
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
