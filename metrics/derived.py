"""Derived tables the metrics keep in the warehouse, and when to refresh them.

Call `refresh_derived(engine, settings)` after an import or a sync. The figures never depend
on it being called (they compute attribution afresh every time); the stored copies exist so
that pages, SQL users and other tools can read each link and its reason directly.
"""

from __future__ import annotations

from sqlalchemy import Engine

from metrics.attribution import refresh_attributions
from metrics.model import Settings

# What each import kind can change in the derived tables.
AFFECTS_ATTRIBUTION = {"services", "deployments", "incidents"}


def refresh_derived(
    engine: Engine, settings: Settings, *, kind: str | None = None
) -> dict[str, object]:
    """Bring the derived tables up to date after `kind` was imported (None: after a sync,
    anything may have changed). Returns what was refreshed."""
    done: dict[str, object] = {}
    if kind is None or kind in AFFECTS_ATTRIBUTION:
        done["attributions"] = refresh_attributions(engine, settings)
    return done
