"""Honest summaries: median and p90 with linear interpolation, always with the sample size.

Nothing here returns NaN or infinity: a figure without data is None.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from poise.timeutil import isoformat_z


def quantile(values: pd.Series, q: float) -> float | None:
    """pandas' default `quantile` (linear between closest ranks); None when empty."""
    clean = values.dropna()
    if clean.empty:
        return None
    return finite(float(clean.quantile(q)))


def summary(values: pd.Series, *, prefix: str, unit: str) -> dict[str, float | int | None]:
    """`{prefix}_median_{unit}`, `{prefix}_p90_{unit}` and `{prefix}_n` for one sample."""
    clean = values.dropna()
    return {
        f"{prefix}median_{unit}": quantile(clean, 0.5),
        f"{prefix}p90_{unit}": quantile(clean, 0.9),
        f"{prefix}n": len(clean),
    }


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, or None when there is nothing to divide by."""
    if not denominator:
        return None
    return finite(numerator / denominator)


def finite(value: float | None) -> float | None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return float(value)


def hours(delta: pd.Series) -> pd.Series:
    return delta.dt.total_seconds() / 3600.0


def minutes(delta: pd.Series) -> pd.Series:
    return delta.dt.total_seconds() / 60.0


def to_jsonable(value: Any) -> Any:
    """Plain JSON values all the way down: numpy scalars unwrapped, NaN/inf become None."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return finite(value)
    if value is pd.NaT or value is None:
        return None
    if isinstance(value, pd.Timestamp):
        return isoformat_z(value.to_pydatetime())
    if isinstance(value, datetime):
        return isoformat_z(value)
    return value
