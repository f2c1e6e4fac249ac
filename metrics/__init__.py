"""The metrics engine: the warehouse in, the figures of metric-definitions.md out.

Everything a page, a report or a command shows comes from these functions; see
docs/metrics.md for the definitions, worked examples and the public API. The scorecard
and explain functions live in their modules (`metrics.scorecard.scorecard`,
`metrics.explain.explain`) so that the module names stay modules.
"""

from __future__ import annotations

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

# The public entry points, importable from the package (after the types they use).
from metrics.attribution import refresh_attributions
from metrics.derived import refresh_derived
from metrics.scorecard import compute, team_scorecards
from metrics.slo_data import burn_down
from metrics.trends import monthly_trends, period_over_period, weekly_trends
