"""What the configuration declares (teams, services, SLOs) written into the warehouse.

The config file is the source of truth for these definitions when it is present; rows
that arrived by import or collection are left alone unless the config names them too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, Table, delete, exists, select, update
from sqlalchemy.exc import DBAPIError

from poise.config import PoiseConfig, SloConfig
from poise.errors import ConfigError
from poise.timeutil import utcnow
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
        "retired_at": None,  # declared again: back in the figures
    }


def apply_config(
    engine: Engine,
    config: PoiseConfig,
    *,
    notes: Callable[[str], None] | None = None,
    retired: Callable[[str], None] | None = None,
) -> UpsertCounts:
    """Upsert the config's teams, services and SLOs (inline and from SLO files), retire
    the SLOs it no longer declares and remove the teams it no longer names that nothing
    refers to.

    `notes` hears what the SLO files' reading left out or assumed (an object of another
    kind ignored, a default window); without it they go to the log. `retired` (default:
    `notes`) hears one line about each SLO retired and each team removed."""
    catalog, declared = _catalog(config, notes)  # a bad SLO file stops here: nothing written
    counts = UpsertCounts()
    with engine.begin() as connection:
        for table, rows in catalog:
            if table is schema.slos:
                _require_services(connection, declared)
            counts += upsert_rows(connection, table, rows)
        for said in _retire_undeclared(connection, config, declared):
            (retired or notes or log.info)(said)
    return counts


# the sources whose SLOs a config declares (inline, OpenSLO and Sloth files); imported
# SLOs belong to the imports
CONFIG_SLO_SOURCES = ("config", "openslo", "sloth")


def _undeclared(
    connection: Connection, config: PoiseConfig, declared: list[Any]
) -> tuple[list[str], list[str]]:
    """What the config once declared and no longer does: SLOs still in the figures, and
    teams nothing refers to (a typo put right). Nothing without a config file: a command
    run where there is none must not take every SLO out of the figures."""
    if config.origin == PoiseConfig.model_fields["origin"].default:
        return [], []
    o, t = schema.slos, schema.teams
    slos = connection.scalars(
        select(o.c.name)
        .where(
            o.c.source.in_(CONFIG_SLO_SOURCES),
            o.c.retired_at.is_(None),
            o.c.name.not_in([item.slo.name for item in declared]),
        )
        .order_by(o.c.name)
    ).all()
    teams = connection.scalars(
        select(t.c.name)
        .where(
            t.c.source == "config",
            t.c.name.not_in([team.name for team in config.teams]),
            *(~exists().where(column == t.c.name) for column in _referring(t.c.name)),
        )
        .order_by(t.c.name)
    ).all()
    return list(slos), list(teams)


def _referring(key: Any) -> list[Any]:
    """Every column of the warehouse with a foreign key to `key`."""
    return [
        fk.parent
        for table in schema.metadata.sorted_tables
        for fk in table.foreign_keys
        if fk.column is key
    ]


def _retire_undeclared(
    connection: Connection, config: PoiseConfig, declared: list[Any]
) -> list[str]:
    """Retire the SLOs the config no longer declares (their samples are kept, and declaring
    one again brings it back) and remove the teams it no longer names that nothing refers
    to; one line about each."""
    slos, teams = _undeclared(connection, config, declared)
    said = []
    if slos:
        connection.execute(
            update(schema.slos).where(schema.slos.c.name.in_(slos)).values(retired_at=utcnow())
        )
        said += [
            f"SLO {name!r} is no longer in {config.origin}: left out of every figure from now "
            "on (its samples are kept; declare it again to bring it back)"
            for name in slos
        ]
    if teams:
        connection.execute(delete(schema.teams).where(schema.teams.c.name.in_(teams)))
        said += [
            f"team {name!r} is no longer in {config.origin} and nothing refers to it: removed"
            for name in teams
        ]
    return said


def apply_config_for_reading(
    engine: Engine, config: PoiseConfig, *, warn: Callable[[str], None]
) -> None:
    """For a command that only reads: write the config's catalog only where the warehouse
    differs from it, and read a warehouse that refuses writes as it is stored.

    `poise metrics`, `explain`, `report` and `gate` must work with a read-only role, a
    replica or a read-only file (a pipeline's gate, a reporting job): there an unchanged
    config writes nothing, and a changed one is `warn`ed about, not an error.
    """
    catalog, declared = _catalog(config, None)
    with engine.connect() as connection:
        differing = [
            name for table, rows in catalog for name in _differing(connection, table, rows)
        ]
        slos, teams = _undeclared(connection, config, declared)
        differing += [f"SLO {name!r}" for name in slos] + [f"team {name!r}" for name in teams]
    if not differing:
        return
    try:
        apply_config(engine, config, retired=warn)
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
