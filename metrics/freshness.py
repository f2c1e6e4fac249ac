"""Whether the derived tables (see metrics.derived) can be trusted right now."""

from __future__ import annotations

from sqlalchemy import Connection, func, or_, select

from poise.warehouse import schema
from poise.warehouse.sync_state import read_state

SOURCE, STREAM, SCOPE = "metrics", "derived", "all"


def is_fresh(connection: Connection) -> bool:
    """True when the derived tables reflect every write recorded since their refresh."""
    refreshed = read_state(connection, SOURCE, STREAM, SCOPE).last_success_at
    if refreshed is None:
        return False
    st = schema.sync_state
    written = connection.execute(
        select(func.max(st.c.last_success_at)).where(
            st.c.source != SOURCE,
            or_(st.c.rows_new > 0, st.c.rows_updated > 0),
        )
    ).scalar()
    services_changed = connection.execute(select(func.max(schema.services.c.updated_at))).scalar()
    return all(moment is None or moment <= refreshed for moment in (written, services_changed))


ATTRIBUTION_WINDOW = "attribution_window_hours"  # in the refresh's bookmark


def needs_refresh(connection: Connection, attribution_window_hours: float) -> bool:
    """Whether the derived tables must be rebuilt: not fresh, or built with another
    attribution window than the configured one."""
    built = read_state(connection, SOURCE, STREAM, SCOPE).bookmark or {}
    return not is_fresh(connection) or built.get(ATTRIBUTION_WINDOW) != attribution_window_hours
