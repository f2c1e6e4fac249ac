"""Whether the derived tables (see metrics.derived) can be trusted right now."""

from __future__ import annotations

from sqlalchemy import Connection, func, or_, select

from poise.warehouse import schema
from poise.warehouse.sync_state import WRITES, read_state

SOURCE, STREAM, SCOPE = "metrics", "derived", "all"


def is_fresh(connection: Connection) -> bool:
    """True when the derived tables reflect every write recorded since their refresh.

    The writes are what the collectors and the importer note (`sync_state.mark_written`);
    a warehouse from before that note existed falls back on the sources' outcome rows."""
    refreshed = read_state(connection, SOURCE, STREAM, SCOPE).last_success_at
    if refreshed is None:
        return False
    written = read_state(connection, *WRITES).last_success_at
    if written is None:
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
