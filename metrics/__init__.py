"""The metrics engine: the warehouse in, the figures of metric-definitions.md out.

Everything a page, a report or a command shows comes from these functions; see
docs/metrics.md for the definitions, worked examples and the public API. The scorecard
and explain functions live in their modules (`metrics.scorecard.scorecard`,
`metrics.explain.explain`) so that the module names stay modules.
"""

from __future__ import annotations

import importlib
from typing import Any

from metrics.model import Period, Scope, Settings

__all__ = [
    "Period",
    "Scope",
    "Settings",
    "burn_down",
    "compute",
    "monthly_trends",
    "period_over_period",
    "refresh_attributions",
    "refresh_derived",
    "team_scorecards",
    "weekly_trends",
]

# The public entry points, importable from the package, loaded when first asked for: a
# command that only checks a few rows (an unchanged `poise sync` asking whether the
# derived tables are fresh) does not import pandas.
_ENTRY_POINTS = {
    "refresh_attributions": "metrics.attribution",
    "refresh_derived": "metrics.derived",
    "compute": "metrics.scorecard",
    "team_scorecards": "metrics.scorecard",
    "burn_down": "metrics.slo_data",
    "monthly_trends": "metrics.trends",
    "period_over_period": "metrics.trends",
    "weekly_trends": "metrics.trends",
}


def __getattr__(name: str) -> Any:
    module = _ENTRY_POINTS.get(name)
    if module is None:
        raise AttributeError(f"module 'metrics' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
