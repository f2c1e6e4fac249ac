"""Where a scope's rows are read from (`Location`), and what another location in the config
does (`Move`): the scope is read again as on a first sync, then the rows of the location
left are removed, so the warehouse holds what a first sync with the new config would.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Table, or_, select

from collectors.deploys import LINKS_STREAM, changed_keys
from collectors.rows import Rows, remove_ids
from poise.warehouse import schema
from poise.warehouse.sync_state import mark_written, read_state, save_bookmark

if TYPE_CHECKING:
    from collectors.base import SyncContext


# The bookmark of a scope's location (stream `location`): where its rows were read from and,
# while a move to another location is under way, the locations moved from.
LOCATION_STREAM = "location"
LOCATION_KEY, PREFIX_KEY, MOVING_KEY = "location", "prefix", "moving_from"
# The tables whose rows a location gives (their ids begin with its prefix, or the move's
# re-read writes them again). Links go with their deployments and changes (ON DELETE
# CASCADE); the `repositories` row is the service's (`github:<service>`), written again
# from the new location.
LOCATED_TABLES: tuple[Table, ...] = (
    schema.changes,
    schema.deployments,
    schema.ci_runs,
    schema.incidents,
    schema.oncall_pages,
)


@dataclass(frozen=True)
class Location:
    """Where a scope's rows are read from at its source: a repository, a project, a job.

    The id of every row read from it begins with `prefix` (`github:acme/checkout:`), so
    after a change of location in the config (a repository renamed, transferred or
    replaced) the old rows would stay beside the new ones, counted twice, and the old
    location's cursors and ETags would hide the new one's history. `values`
    (`{"repo": "acme/checkout"}`) are kept in the scope's `location` bookmark; when the
    config names another location, the sync is a `Move`. A location without a prefix
    (`None`: a PagerDuty service, whose incident ids are global) is told by its values,
    and its rows by the move's re-read not writing them.
    """

    values: Mapping[str, str]
    prefix: str | None

    @property
    def place(self) -> Any:
        """What tells two locations apart: the prefix, else the values."""
        return self.prefix if self.prefix is not None else tuple(sorted(self.values.items()))

    @property
    def stored(self) -> dict[str, Any]:
        return {LOCATION_KEY: dict(self.values), PREFIX_KEY: self.prefix}

    def shown(self, keys: Iterable[str]) -> str:
        """The values of `keys` (those that changed), for a note."""
        return ", ".join(self.values.get(key) or "none" for key in keys)

    @classmethod
    def of(cls, stored: Any) -> Location | None:
        """The location a bookmark (or an entry of its `moving_from`) keeps, if any."""
        if not isinstance(stored, dict):
            return None
        values, prefix = stored.get(LOCATION_KEY), stored.get(PREFIX_KEY, "")
        # a prefix, or None (stored `null`) for a location the row ids do not name
        if not isinstance(values, dict) or not (
            prefix is None or (prefix and isinstance(prefix, str))
        ):
            return None
        return cls({str(k): str(v) for k, v in values.items()}, prefix)


class Move:
    """A scope whose rows were read from other locations than the config names now.

    The sync reads every stream of the scope as on a first sync (`SyncContext.bookmark`
    answers None: no cursor, ETag or checkpoint's next page), and once they are stored,
    `end` removes the service's rows from the locations moved from, in one transaction
    with the new location's bookmark, and has every deployment linked again. The move is
    saved (`moving_from`) in the transaction of the first rows written from the new
    location, so a sync killed or failing after it moves again, from the start, at the
    next sync, and removes nothing early; one that fails before writing anything (a 404
    at the new location) leaves the bookmark as it was. Moving back before the end
    removes the rows of the location left instead.

    For a location without a prefix, the rows removed are the service's rows of the
    source that the re-read did not write (`written`, noted by `SyncContext.upsert`): the
    warehouse then holds what a first sync with the new config would.
    """

    def __init__(
        self, ctx: SyncContext, scope: str, location: Location, left: list[Location]
    ) -> None:
        self.ctx, self.scope, self.location, self.left = ctx, scope, location, left
        self.saved = False
        self.written: dict[str, set[str]] = {}  # by table: what a sweeping move's re-read wrote

    @property
    def sweeps(self) -> bool:
        """Whether the rows left are told by the re-read not writing them (no prefix)."""
        return self.location.prefix is None

    @property
    def stored(self) -> dict[str, Any]:
        return {**self.location.stored, MOVING_KEY: [old.stored for old in self.left]}

    def save(self, connection: Connection) -> None:
        save_bookmark(connection, self.ctx.source, LOCATION_STREAM, self.scope, self.stored)

    def shown(self) -> tuple[str, str, str]:
        """The keys that changed, the locations left and the new one, for a line."""
        keys = sorted(
            {key for old in self.left for key in changed_keys(old.values, self.location.values)}
        )
        olds = ", ".join(old.shown(keys) for old in self.left)
        return ", ".join(keys), olds, self.location.shown(keys)

    def note(self) -> str:
        keys, olds, new = self.shown()
        return (
            f"{self.ctx.source}: {self.scope}: {keys} changed ({olds} → {new}) since the last "
            "sync; reading every stream again, as on a first sync, and removing the rows read "
            f"from {olds} once that is done"
        )

    def warn_if_emptied(self, removed: dict[str, int]) -> None:
        """A move without a prefix removes what the re-read did not write: a table it wrote
        nothing to at all (a valid-looking id of the wrong service answers empty lists, not
        a 404) loses every row, and is said so."""
        emptied = {
            table.replace("_", " "): count
            for table, count in removed.items()
            if count and self.sweeps and not self.written.get(table)
        }
        if not emptied:
            return
        keys, olds, new = self.shown()
        counts = " and ".join(f"{count} {name}" for name, count in emptied.items())
        self.ctx.warn(
            f"{self.ctx.source}: {self.scope}: {keys} {new} gave no {' and no '.join(emptied)}, "
            f"so the {counts} read from {olds} were removed (a first sync with this config "
            "would hold none); if it names the wrong service, correct it and the next sync "
            "reads them again"
        )

    def end(self) -> int:
        """Remove the rows read from the locations left; how many went."""
        source = self.ctx.source
        with self.ctx.engine.begin() as connection:
            by_table = {table.name: self.remove(connection, table) for table in LOCATED_TABLES}
            removed = sum(by_table.values())
            save_bookmark(connection, source, LOCATION_STREAM, self.scope, self.location.stored)
            # the links of a first sync at the new location: every deployment linked again
            # (a source that links none, such as PagerDuty, keeps no links bookmark)
            if read_state(connection, source, LINKS_STREAM, self.scope).bookmark is not None:
                save_bookmark(connection, source, LINKS_STREAM, self.scope, None)
            if removed:
                mark_written(connection)
        self.warn_if_emptied(by_table)
        return removed

    def remove(self, connection: Connection, table: Table) -> int:
        new = self.location.prefix
        if new is None:
            return self.sweep(connection, table)
        prefixes = tuple(old.prefix for old in self.left if old.prefix is not None)
        under = or_(*(table.c.id.startswith(prefix, autoescape=True) for prefix in prefixes))
        query = select(table.c.id).where(
            (table.c.source == self.ctx.source) & (table.c.service == self.scope) & under
        )
        # Compared again here: LIKE ignores case on SQLite, and `Acme/App` → `acme/app` is a
        # move whose new rows must stay.
        stale = [
            row_id
            for row_id in connection.scalars(query)
            if row_id.startswith(prefixes) and not row_id.startswith(new)
        ]
        return remove_ids(connection, table, stale)

    def sweep(self, connection: Connection, table: Table) -> int:
        """Remove the service's rows of the source in `table` that the re-read did not write."""
        written = self.written.get(table.name, set())
        query = select(table.c.id).where(
            (table.c.source == self.ctx.source) & (table.c.service == self.scope)
        )
        stale = [row_id for row_id in connection.scalars(query) if row_id not in written]
        return remove_ids(connection, table, stale)

    def wrote(self, rows: Rows) -> None:
        """Note the ids of rows written from the new location (a move without a prefix)."""
        if self.sweeps:
            for table, batch in rows.items():
                ids = (str(row["id"]) for row in batch if "id" in row)  # links have none
                self.written.setdefault(table, set()).update(ids)
