"""How figures and reasons are worded for people: durations, windows, lists."""

from __future__ import annotations

from datetime import timedelta

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
