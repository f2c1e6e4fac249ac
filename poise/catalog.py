"""What the configuration declares (teams, services, SLOs) written into the warehouse.

The config file is the source of truth for these definitions when it is present; rows
that arrived by import or collection are left alone unless the config names them too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, select

from poise.config import PoiseConfig, SloConfig
from poise.errors import ConfigError
from poise.warehouse import schema
from poise.warehouse.upsert import UpsertCounts, upsert_rows

log = logging.getLogger("poise.catalog")


def slo_row(
    slo: SloConfig, *, source: str = "config", source_id: str | None = None
) -> dict[str, Any]:
    return {
        "name": slo.name,
        "service": slo.service,
        "description": slo.description,
        "display_name": slo.display_name,
        "target": slo.target,
        "window_days": slo.window_days,
        "window_kind": slo.window,
        "calendar_unit": slo.calendar_unit,
        "good_query": slo.good,
        "bad_query": slo.bad,
        "total_query": slo.total,
        "datasource": slo.datasource or ("prometheus" if slo.total else None),
        "source": source,
        "source_id": source_id or slo.name,
    }


def apply_config(
    engine: Engine, config: PoiseConfig, *, notes: Callable[[str], None] | None = None
) -> UpsertCounts:
    """Upsert the config's teams, services and SLOs (inline and from SLO files).

    `notes` hears what the SLO files' reading left out or assumed (an object of another
    kind ignored, a default window); without it they go to the log."""
    # Imported here: the collectors package may import this module.
    from collectors.slo_files import declared_slos

    declared = declared_slos(config)  # a bad SLO file stops here, before anything is written
    for note in declared.notes:
        if notes is not None:
            notes(note)
        else:
            log.info("%s", note)
    counts = UpsertCounts()
    with engine.begin() as connection:
        if config.teams:
            counts += upsert_rows(
                connection,
                schema.teams,
                [
                    {"name": t.name, "size": t.size, "timezone": t.timezone, "source": "config"}
                    for t in config.teams
                ],
            )
        if config.services:
            counts += upsert_rows(
                connection,
                schema.services,
                [
                    {
                        "name": s.name,
                        "team": s.team,
                        "production_environment": s.production_environment,
                        "source": "config",
                        "source_id": s.name,
                    }
                    for s in config.services
                ],
            )
        if declared.slos:
            _require_services(connection, declared.slos)
            rows = [slo_row(d.slo, source=d.source, source_id=d.source_id) for d in declared.slos]
            counts += upsert_rows(connection, schema.slos, rows)
    return counts


def _require_services(connection: Any, declared: list[Any]) -> None:
    """An SLO's service must exist (in the config or imported) before the SLO is written."""
    known = set(connection.scalars(select(schema.services.c.name)))
    for item in declared:
        if item.slo.service not in known:
            raise ConfigError(
                f"{item.where.origin}: {item.where.document}: service {item.slo.service!r} is "
                "not a known service: declare it under services: in the config, or import it"
            )
