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


def percent(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value * 100:.{digits}f} %"
