"""People: toil against team capacity, and on-call load.

Toil share = toil hours / (team size × hours per week × weeks in the period), against the
configured cap (50 % by default, as the SRE book puts it). On-call load = pages per week
and the share of them that came after hours.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from metrics.model import Period, Scope, Settings
from metrics.stats import ratio


def toil(
    entries: pd.DataFrame, teams: pd.DataFrame, period: Period, scope: Scope, settings: Settings
) -> dict[str, Any]:
    """Toil share of capacity; teams without a size cannot be weighed and are listed."""
    sized = teams[teams["size"].notna()]
    unsized = sorted(teams.loc[teams["size"].isna(), "name"].tolist())
    hours = float(entries.loc[entries["team"].isin(sized["name"]), "hours"].sum())
    people = float(sized["size"].sum()) if len(sized) else 0.0
    capacity = people * settings.hours_per_week * period.weeks
    share = ratio(hours, capacity)
    result: dict[str, Any] = {
        "hours": hours,
        "capacity_hours": capacity,
        "share": share,
        "cap": settings.toil_cap,
        "over_cap": None if share is None else share > settings.toil_cap,
        "teams_without_size": unsized,
        "reason": None,
    }
    if scope.service is not None and len(teams):
        result["team"] = str(teams["name"].iloc[0])
        result["note"] = "toil is recorded per team: these are the owning team's figures"
    if share is None:
        result["reason"] = (
            "no team size configured, so no capacity to weigh toil against"
            if unsized or teams.empty
            else "no capacity in the period"
        )
    return result


def oncall(pages: pd.DataFrame, period: Period) -> dict[str, Any]:
    count = len(pages)
    after = int(pages["after_hours"].sum()) if count else 0
    return {
        "pages": count,
        "per_week": count / period.weeks,
        "after_hours": after,
        "after_hours_share": ratio(after, count),
    }
