"""Canonical rows as collectors hand them over, and how a page's rows are written.

`Rows` maps a table name to its rows; `upsert_canonical` writes them (each with `source`
and `raw_id`, words cut to their columns' widths) and counts what was new, updated and
unchanged; `remove_ids` deletes by id, a few hundred at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Table, delete

from poise.text import cut
from poise.warehouse import schema
from poise.warehouse.sync_state import mark_written
from poise.warehouse.upsert import UpsertCounts, upsert_rows

# Canonical rows, by table name: {"changes": [{...}, ...], "deployments": [...]}.
Rows = dict[str, list[dict[str, Any]]]
TABLES = {table.name: table for table in schema.CANONICAL_TABLES}
# Relations between rows, not records: written like the others but left out of the counts.
LINK_TABLES = frozenset({"deployment_changes"})
# Words of a source's own choosing kept in columns of bounded width. A longer one (a GitLab
# review app's environment named after a long branch, a PagerDuty priority written as a
# sentence) is cut to fit, ending in "…", on either engine: PostgreSQL would refuse the
# row and fail that source at every sync, SQLite would keep it whole.
CUT_TO_FIT: dict[str, tuple[str, ...]] = {
    "changes": ("author",),
    "deployments": ("environment",),
    "incidents": ("severity", "cause"),
    "ci_runs": ("name",),
    "oncall_pages": ("urgency",),
    "slos": ("display_name", "datasource"),
}
# Writes one page's rows in the page's transaction: (connection, raw_id) -> counts.
Writer = Callable[[Connection, Any], UpsertCounts]
_IN_CHUNK = 500  # ids in one IN (…): well under every driver's parameter limit


def chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    """`items` a few hundred at a time, for `IN (…)` lists."""
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start : start + _IN_CHUNK]


def remove_ids(connection: Connection, table: Table, ids: Sequence[str]) -> int:
    """Delete the rows of `table` with these ids; how many there were."""
    for chunk in chunks(ids):
        connection.execute(delete(table).where(table.c.id.in_(chunk)))
    return len(ids)


def upsert_canonical(
    connection: Any, rows: Rows, *, source: str, raw_id: int | None
) -> UpsertCounts:
    """Upsert rows of several tables in foreign-key order, stamping source and raw_id."""
    counts = UpsertCounts()
    unknown = set(rows) - set(TABLES)
    if unknown:
        raise ValueError(f"{source}: convert produced rows for unknown tables {sorted(unknown)}")
    for table in schema.CANONICAL_TABLES:
        batch = rows.get(table.name)
        if not batch:
            continue
        stamp: dict[str, Any] = {}
        if "source" in table.c:
            stamp["source"] = source
        if "raw_id" in table.c and raw_id is not None:
            stamp["raw_id"] = raw_id
        widths = {name: table.c[name].type.length for name in CUT_TO_FIT.get(table.name, ())}
        for group in _same_columns(batch, stamp, widths):
            written = upsert_rows(connection, table, group)
            if table.name not in LINK_TABLES:
                counts += written
            elif written.new or written.updated:  # not counted, but the figures read them
                mark_written(connection)
    return counts


def _same_columns(
    batch: Iterable[dict[str, Any]], stamp: dict[str, Any], widths: dict[str, int]
) -> list[list[dict]]:
    groups: dict[frozenset[str], list[dict[str, Any]]] = {}
    for row in batch:
        full = {**stamp, **row} if stamp else row
        for name, width in widths.items():
            value = full.get(name)
            if isinstance(value, str) and len(value) > width:
                full = {**full, name: cut(value, width)}
        groups.setdefault(frozenset(full), []).append(full)
    return list(groups.values())


def merge_rows(target: Rows, more: Rows) -> Rows:
    for table, batch in more.items():
        target.setdefault(table, []).extend(batch)
    return target
