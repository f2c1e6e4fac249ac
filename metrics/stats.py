"""Honest summaries: median and p90 with linear interpolation, always with the sample size.

Nothing here returns NaN or infinity: a figure without data is None.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
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


# SLO arithmetic carries binary rounding noise: 1 − 0.99 is 0.010000000000000009, so a
# budget spent exactly reads 8.9e-16 left ("at risk", no freeze) and a burn of exactly
# 14.4× reads 14.399999999999986 (no page). Budget shares, burn rates and the DORA medians
# and p90s (graded against tier bounds) are rounded to this many decimals, which keeps
# every real difference and drops the noise.
SETTLED_DECIMALS = 12


def settled(value: Any) -> Any:
    """`value` (a float or a numpy array) rounded to SETTLED_DECIMALS."""
    return (
        np.round(value, SETTLED_DECIMALS)
        if isinstance(value, np.ndarray)
        else round(value, SETTLED_DECIMALS)
    )


def hours(delta: pd.Series) -> pd.Series:
    return delta.dt.total_seconds() / 3600.0


def minutes(delta: pd.Series) -> pd.Series:
    return delta.dt.total_seconds() / 60.0


def to_jsonable(value: Any) -> Any:
    """Plain JSON values all the way down: numpy scalars unwrapped, NaN/inf become None,
    times become `…Z` text."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is dict:
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return isoformat_z(value.to_pydatetime())
    if isinstance(value, datetime):
        return isoformat_z(value)
    if isinstance(value, float):
        return finite(value)
    return value


def group_stats(
    values: pd.Series, keys: pd.Series, groups: Sequence[Hashable]
) -> dict[Hashable, tuple[float | None, float | None, int]]:
    """(median, p90, n) of `values` per group, in one pass for all groups (NaN left out),
    median and p90 settled."""
    frame = pd.DataFrame({"key": keys.to_numpy(), "value": values.to_numpy(dtype=float)})
    frame = frame[frame["value"].notna() & frame["key"].notna()]
    if frame.empty:
        return {group: (None, None, 0) for group in groups}
    grouped = frame.groupby("key", sort=False)["value"]
    spread = grouped.quantile([0.5, 0.9]).unstack()
    sizes = grouped.size()
    medians, p90s = spread[0.5].to_dict(), spread[0.9].to_dict()
    return {
        group: (
            _settled(medians.get(group)),
            _settled(p90s.get(group)),
            int(sizes.get(group, 0)),
        )
        for group in groups
    }


def _settled(value: float | None) -> float | None:
    """A finite quantile settled (see `settled`): hours from millisecond times carry binary
    noise, so two middle values 8 min 47.414 s either side of 1 h have a median of
    0.9999999999999999 h, graded "less than 1 hour". Twelve decimals of an hour are 3.6 ns,
    far below the microseconds times are kept to, so no real difference is lost."""
    clean = finite(value)
    return None if clean is None else float(settled(clean))


def group_counts(
    mask: pd.Series, keys: pd.Series, groups: Sequence[Hashable]
) -> dict[Hashable, int]:
    """How many rows per group have `mask` True."""
    chosen = keys[mask.to_numpy(dtype=bool)] if len(mask) else keys
    counted = chosen.value_counts(dropna=True).to_dict() if len(chosen) else {}
    return {group: int(counted.get(group, 0)) for group in groups}


def group_sizes(keys: pd.Series, groups: Sequence[Hashable]) -> dict[Hashable, int]:
    return group_counts(pd.Series(True, index=keys.index), keys, groups)
