"""What the configuration declares (teams, services, SLOs) written into the warehouse.

The config file is the source of truth for these definitions when it is present; rows
that arrived by import or collection are left alone unless the config names them too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, Table, select
from sqlalchemy.exc import DBAPIError

from poise.config import PoiseConfig, SloConfig
from poise.errors import ConfigError
from poise.warehouse import schema
from poise.warehouse.engine import write_refused
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
    catalog, declared = _catalog(config, notes)  # a bad SLO file stops here: nothing written
    counts = UpsertCounts()
    with engine.begin() as connection:
        for table, rows in catalog:
            if table is schema.slos:
                _require_services(connection, declared)
            counts += upsert_rows(connection, table, rows)
    return counts


def apply_config_for_reading(
    engine: Engine, config: PoiseConfig, *, warn: Callable[[str], None]
) -> None:
    """For a command that only reads: write the config's catalog only where the warehouse
    differs from it, and read a warehouse that refuses writes as it is stored.

    `poise metrics`, `explain`, `report` and `gate` must work with a read-only role, a
    replica or a read-only file (a pipeline's gate, a reporting job): there an unchanged
    config writes nothing, and a changed one is `warn`ed about, not an error.
    """
    catalog, _ = _catalog(config, None)
    with engine.connect() as connection:
        differing = [
            name for table, rows in catalog for name in _differing(connection, table, rows)
        ]
    if not differing:
        return
    try:
        apply_config(engine, config)
    except DBAPIError as exc:
        reason = write_refused(exc)
        if reason is None:
            raise
        warn(
            f"the warehouse refused to write ({reason}): the figures read "
            f"{_listed(differing)} as stored (or not at all, if new), not as the config has "
            f"{'it' if len(differing) == 1 else 'them'}; run `poise sync` where the warehouse "
            "can be written to bring it up to date"
        )


def _listed(names: list[str]) -> str:
    """`team 'a'`, `team 'a' and service 'b'`, `team 'a', service 'b' and 3 more`."""
    shown = names[:2] if len(names) > 3 else names
    rest = [f"{len(names) - 2} more"] if len(names) > 3 else []
    *head, last = shown + rest
    return f"{', '.join(head)} and {last}" if head else last


_WHAT = {"teams": "team", "services": "service", "slos": "SLO"}


def _catalog(
    config: PoiseConfig, notes: Callable[[str], None] | None
) -> tuple[list[tuple[Table, list[dict[str, Any]]]], list[Any]]:
    """The rows the config declares, parents first (teams, services, SLOs), and the SLOs
    as declared (where each was written, for messages)."""
    # Imported here: the collectors package may import this module.
    from collectors.slo_files import declared_slos

    declared = declared_slos(config)
    for note in declared.notes:
        if notes is not None:
            notes(note)
        else:
            log.info("%s", note)
    catalog: list[tuple[Table, list[dict[str, Any]]]] = [
        (
            schema.teams,
            [
                {"name": t.name, "size": t.size, "timezone": t.timezone, "source": "config"}
                for t in config.teams
            ],
        ),
        (
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
        ),
        (
            schema.slos,
            [slo_row(d.slo, source=d.source, source_id=d.source_id) for d in declared.slos],
        ),
    ]
    return [(table, rows) for table, rows in catalog if rows], declared.slos


def _differing(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> list[str]:
    """`team 'payments'`, … for each row that is not stored with these very values."""
    key = table.c.name
    stored = {
        row["name"]: row
        for row in connection.execute(
            select(table).where(key.in_([row["name"] for row in rows]))
        ).mappings()
    }
    return [
        f"{_WHAT[table.name]} {row['name']!r}"
        for row in rows
        if row["name"] not in stored
        or any(stored[row["name"]][column] != value for column, value in row.items())
    ]


def _require_services(connection: Any, declared: list[Any]) -> None:
    """An SLO's service must exist (in the config or imported) before the SLO is written."""
    known = set(connection.scalars(select(schema.services.c.name)))
    for item in declared:
        if item.slo.service not in known:
            raise ConfigError(
                f"{item.where.origin}: {item.where.document}: service {item.slo.service!r} is "
                "not a known service: declare it under services: in the config, or import it"
            )
