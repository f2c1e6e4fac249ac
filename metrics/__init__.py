"""The metrics engine: the warehouse in, the figures of metric-definitions.md out.

Everything a page, a report or a command shows comes from these functions; see
docs/metrics.md for the definitions, worked examples and the public API.
"""

from __future__ import annotations

from metrics.model import Period, Scope, Settings

__all__ = ["Period", "Scope", "Settings"]
