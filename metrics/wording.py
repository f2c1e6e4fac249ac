"""How figures and reasons are worded for people: durations, windows, lists."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pandas as pd


def duration(value: timedelta | pd.Timedelta | float | None) -> str:
    """A short duration: `45 s`, `12 min`, `3 h`, `3 h 20 min`, `2 d 4 h`.

    A float is taken as hours.
    """
    if value is None or pd.isna(value):
        return "unknown"
    seconds = float(value) * 3600 if isinstance(value, int | float) else value.total_seconds()
    sign = "-" if seconds < 0 else ""
    whole = abs(round(seconds))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    mins, secs = divmod(rest, 60)
    if days:
        text = f"{days} d" + (f" {hours} h" if hours else "")
    elif hours:
        text = f"{hours} h" + (f" {mins} min" if mins else "")
    elif mins:
        text = f"{mins} min"
    else:
        text = f"{secs} s"
    return sign + text


def hours_words(value: float | None, *, signed: bool = False, digits: int = 1) -> str:
    """Hours as the pages and reports write them: minutes under an hour, hours under two
    days, days from two days on ("28 min", "4.4 h", "21.0 d"; "" when unknown); a change
    from another period `signed` ("+2.0 d", "-11 min"). `digits` after the point for hours
    and days (minutes get one fewer)."""
    if value is None or pd.isna(value):
        return ""
    sign = "+" if signed else ""
    if abs(value) >= 48:
        return f"{value / 24:{sign},.{digits}f} d"
    if abs(value) < 1:
        return f"{value * 60:{sign},.{max(digits - 1, 0)}f} min"
    return f"{value:{sign},.{digits}f} h"


def counted(count: int, singular: str, plural: str | None = None) -> str:
    """ "1 row", "7 rows", "1,478 deployments"."""
    return f"{count:,} {singular if count == 1 else (plural or singular + 's')}"


def percent(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value * 100:.{digits}f} %"


# The change fail rate's tier where only rollbacks and fixes could have raised it.
NO_INCIDENT_DATA = "no incident data"


def shown_change_fail_tier(
    block: Mapping[str, Any], quality: Mapping[str, Any] | None
) -> str | None:
    """The change fail rate's tier as the pages, the report and the terminal show it: the
    scorecard's `tier`, except where every deployment belongs to services with no incident
    on record (`data_quality.deployments_without_incident_data`): a rate no incident could
    raise has no tier to earn, so NO_INCIDENT_DATA. The JSON keeps the contract's tier."""
    silent = int((quality or {}).get("deployments_without_incident_data") or 0)
    deployments = int(block.get("deployments") or 0)
    if deployments and silent >= deployments:
        return NO_INCIDENT_DATA
    tier = block.get("tier")
    return None if tier is None else str(tier)


def change_fail_rate_blind(card: Mapping[str, Any]) -> bool:
    """Whether a scorecard's change fail rate rests on rollbacks and fixes alone (its shown
    tier is NO_INCIDENT_DATA): every deployment belongs to services with no incident on
    record."""
    block = (card.get("dora") or {}).get("change_failure_rate") or {}
    return shown_change_fail_tier(block, card.get("data_quality")) == NO_INCIDENT_DATA
