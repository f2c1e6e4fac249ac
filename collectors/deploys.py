"""What decides a stream's deployments, kept in its bookmark (`DeploySettings`), and what a
change of it does at the next sync (`DeployGuard`): the stream is read again from its start
and the deployments it no longer makes are removed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, exists, select

from collectors.rows import Rows, Writer, remove_ids
from poise.warehouse import schema
from poise.warehouse.sync_state import mark_written, read_state, save_bookmark
from poise.warehouse.upsert import UpsertCounts

if TYPE_CHECKING:
    from collectors.base import SyncContext
    from collectors.streams import Scope


# The bookmark of the pass that links deployments to the changes they shipped
# (collectors/shipped.py): reset, its next pass links every deployment again.
LINKS_STREAM = "shipped"
# Keys of a deployment stream's bookmark: the settings its deployments were made with, and,
# while a re-read after a change of them is under way, the settings that changed.
SETTINGS_KEY, REREAD_KEY = "settings", "rereading"


def changed_keys(before: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """The keys whose values differ between what a bookmark kept and the config now."""
    return sorted(key for key in {*before, *now} if before.get(key) != now.get(key))


@dataclass(frozen=True)
class DeploySettings:
    """What decides which records of a stream are deployments, and to which environment.

    `values` (JSON-able) are kept in the stream's bookmark (`settings`): when the config
    says otherwise at a later sync, the stream is read again from its start and the
    deployments it made that the new settings do not make are removed (`DeployGuard`).
    `prefix` begins the ids of the deployments the stream makes for the service;
    `spare(id)`: one of them the stream cannot read again and keeps (a build of the Jenkins
    job that the server discarded, or of an earlier series of its numbers).
    """

    values: Mapping[str, Any]
    prefix: str
    spare: Callable[[str], bool] | None = None

    @property
    def stored(self) -> dict[str, Any]:
        """The values as the bookmark gives them back (JSON: tuples are lists, keys text)."""
        return dict(json.loads(json.dumps(self.values, sort_keys=True, default=str)))

    def owned(self, ctx: SyncContext, scope: Scope) -> ColumnElement[bool]:
        """The service's deployments from this source whose ids begin with `prefix`."""
        table = schema.deployments
        return (
            (table.c.service == scope.key)
            & (table.c.source == ctx.source)
            & table.c.id.startswith(self.prefix, autoescape=True)
        )


class DeployGuard:
    """A deployment stream's settings across one sync of one scope (see `DeploySettings`).

    Settings unlike the bookmark's make the sync a re-read: the stream starts as on a
    first sync (from `since`, no cursor, ETag or checkpoint's next page), asks again the
    details that depend on them, and its last page's transaction removes the deployments
    it did not make this time. Until then every checkpoint says a re-read is under way
    (`rereading`), so a sync killed half-way reads from the start again; the old rows
    stay until the new ones are written. The stored settings are read past `--full`,
    which is a re-read too when they changed.
    """

    def __init__(
        self, ctx: SyncContext, stream: str, scope: Scope, settings: DeploySettings
    ) -> None:
        self.ctx, self.stream, self.scope, self.settings = ctx, stream, scope, settings
        self.made: set[str] = set()
        current = settings.stored
        with ctx.engine.connect() as connection:
            stored = read_state(connection, ctx.source, stream, scope.key).bookmark
        self.changed: list[str] = []  # the settings that changed: a re-read
        if isinstance(stored, dict) and stored.get(REREAD_KEY):
            self.changed = list(stored[REREAD_KEY])  # one that did not finish: from the start
        elif isinstance(stored, dict) and SETTINGS_KEY in stored:
            before = stored[SETTINGS_KEY] or {}
            self.changed = changed_keys(before, current)
        elif isinstance(stored, dict):
            # A bookmark from before the settings were kept cannot say what its rows were
            # made with. Taken as made with today's settings (what the user has seen since):
            # reading every stream of every service again on upgrade would spend hours of
            # rate limit for nothing in the usual case. They are recorded now, not with the
            # next checkpoint, as an unchanged list (a 304) writes none.
            ctx.save_bookmark(stream, scope.key, {**stored, SETTINGS_KEY: current})
        # a move of the scope reads this stream again anyway and says so once, for all of them
        if self.changed and ctx.move is None:
            ctx.note(
                f"{ctx.source}: {scope.key}: deploy settings changed ({', '.join(self.changed)})"
                f" since the last sync; reading the {stream.replace('_', ' ')} again"
            )

    @property
    def rereading(self) -> bool:
        return bool(self.changed)

    def kept(self, *, final: bool = False) -> dict[str, Any]:
        """The keys to save in the stream's bookmark (a re-read says so until its end)."""
        kept: dict[str, Any] = {SETTINGS_KEY: self.settings.stored}
        if self.rereading and not final:
            kept[REREAD_KEY] = self.changed
        return kept

    def writer(self, rows: Rows, *, final: bool) -> Writer:
        """A page's rows (noting the deployments made), and at the end of a re-read the
        removal of those no longer made, in the page's transaction."""
        self.made.update(str(row["id"]) for row in rows.get("deployments", ()))

        def write(connection: Connection, raw_id: Any) -> UpsertCounts:
            counts = self.ctx.upsert(connection, rows, raw_id)
            if final and self.rereading:
                counts.updated += self.remove_stale(connection)
            return counts

        return write

    def remove_stale(self, connection: Connection) -> int:
        """Remove the deployments of the stream the re-read did not make (their links go
        with them: ON DELETE CASCADE); when any went, or one left production still ships
        changes, the next pass links every deployment again (a predecessor changed)."""
        table, links = schema.deployments, schema.deployment_changes
        owned = self.settings.owned(self.ctx, self.scope)
        spare = self.settings.spare or (lambda _id: False)
        stale = [
            deployment_id
            for deployment_id in connection.scalars(select(table.c.id).where(owned))
            if deployment_id not in self.made and not spare(deployment_id)
        ]
        remove_ids(connection, table, stale)
        left_production = exists().where(
            (links.c.deployment_id == table.c.id)
            & owned
            & (table.c.environment != self.scope.service.production_environment)
        )
        if stale or connection.execute(select(left_production)).scalar():
            save_bookmark(connection, self.ctx.source, LINKS_STREAM, self.scope.key, None)
        if stale:
            mark_written(connection)
        return len(stale)
