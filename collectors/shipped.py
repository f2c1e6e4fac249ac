"""Which changes each production deployment shipped (`deployment_changes`), for CI/CD sources.

A successful production deployment ships the changes between the previous successful
production deployment of the same service (from the same source) and itself: the commits
reachable from its sha and not from the previous one's, as the source's compare endpoint
(or `git rev-list`) lists them. Commits become changes like this:

- a commit that is a known change's sha (a pull request's merge or squash commit, a
  merge request's merge commit, a local git commit) is that change;
- a merge commit of a known change brings its branch's commits with it: they are part of
  that change, not changes of their own;
- any other non-merge commit is asked about (`change_of_commit`: which merged pull
  request introduced it? That is how rebase-merged commits find their pull request);
  a commit no pull request introduced was pushed directly and is a change of its own
  (`direct_change`); merge commits are never changes themselves.

The very first deployment of a service has no predecessor to compare with: it ships
only the change whose sha it deployed, if that change is known.

Which deployments are (re)linked: those whose row changed since the last pass (new,
finished, re-run) plus the deployment right after each of them, whose predecessor may
have changed; and, when the service gained changes since, the successful ones that
shipped nothing known (linked before their commits were stored). The bookmark (stream
`shipped`) is the time of the last complete pass and the production environment it linked.
Without it (a first sync, `--full`, a stream's deploy settings changed and some of its
deployments removed or moved out of production, a move to another repository) or for
another production environment, every deployment is linked again, and no deployment of
the source outside production keeps a link.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, delete, exists, select

from collectors.base import LINKS_STREAM, Rows, Scope, SyncContext, chunks, merge_rows
from collectors.git import write_links
from collectors.http import NotFoundError
from poise.timeutil import parse_timestamp, to_sqlite_text, utcnow
from poise.warehouse import schema
from poise.warehouse.sync_state import mark_written

log = logging.getLogger("poise.collectors.shipped")

STREAM = LINKS_STREAM
BATCH = 50  # deployments linked per transaction
WORKERS = 4  # compare requests at a time
CHUNK = 1000  # deployments read from the warehouse at a time


@dataclass(frozen=True)
class Commit:
    """A commit as a compare endpoint lists it."""

    sha: str
    parents: tuple[str, ...] = ()
    authored_at: datetime | None = None
    title: str | None = None
    author: str | None = None

    @property
    def is_merge(self) -> bool:
        return len(self.parents) > 1


class Resolver(Protocol):
    """What a source knows about its repository."""

    def between(self, base: str, head: str) -> list[Commit]:
        """Commits reachable from `head` and not from `base` (raise NotFoundError if unknown)."""
        ...

    def change_of_commit(self, commit: Commit) -> tuple[str, Rows] | None:
        """The change (id, rows to store) that introduced `commit`, if the source knows one."""
        ...

    def direct_change(self, commit: Commit) -> dict[str, Any] | None:
        """The change row of a commit pushed without a pull request (None: not a change)."""
        ...


def commit_change(commit: Commit, change_id: str, service: str) -> dict[str, Any] | None:
    """The change row of a commit pushed without a pull request (None without an author time)."""
    if commit.authored_at is None:
        return None
    return {
        "id": change_id,
        "source_id": commit.sha,
        "service": service,
        "sha": commit.sha,
        "committed_at": commit.authored_at,
        "title": commit.title,
        "author": commit.author,
    }


@dataclass
class Shipment:
    change_ids: list[str] = field(default_factory=list)
    rows: Rows = field(default_factory=dict)


@dataclass(frozen=True)
class Deployment:
    id: str
    sha: str | None
    status: str
    deployed_at: datetime
    updated_at: datetime

    @property
    def order(self) -> tuple[datetime, str]:
        return (self.deployed_at, self.id)


def known_changes(connection: Connection, service: str, shas: Iterable[str]) -> dict[str, str]:
    """sha -> change id among the service's changes; a pull request's beats a bare commit's."""
    changes = schema.changes
    found: dict[str, str] = {}
    for chunk in chunks(sorted(set(shas))):
        query = select(changes.c.sha, changes.c.id).where(
            (changes.c.service == service) & changes.c.sha.in_(chunk)
        )
        for sha, change_id in sorted(connection.execute(query), key=lambda row: row[1]):
            if sha not in found or ":commit:" in found[sha]:
                found[sha] = change_id
    return found


def _reachable(start: Iterable[str], graph: dict[str, Commit]) -> set[str]:
    seen: set[str] = set()
    stack = [sha for sha in start if sha in graph]
    while stack:
        sha = stack.pop()
        if sha in seen:
            continue
        seen.add(sha)
        stack.extend(parent for parent in graph[sha].parents if parent in graph)
    return seen


def classify(commits: Sequence[Commit], known: dict[str, str], resolver: Resolver) -> Shipment:
    """The changes a list of commits amounts to (see the module docstring)."""
    graph = {commit.sha: commit for commit in commits}
    shipment = Shipment()
    ids: dict[str, None] = {}
    covered: set[str] = set()
    for commit in commits:
        if commit.sha in known:
            ids[known[commit.sha]] = None
            if commit.is_merge:
                branch = _reachable(commit.parents[1:], graph)
                covered |= branch - _reachable(commit.parents[:1], graph)
    for commit in commits:
        if commit.sha in known or commit.sha in covered or commit.is_merge:
            continue
        found = resolver.change_of_commit(commit)
        if found is not None:
            change_id, rows = found
            merge_rows(shipment.rows, rows)
            ids[change_id] = None
            continue
        row = resolver.direct_change(commit)
        if row is not None:
            shipment.rows.setdefault("changes", []).append(row)
            ids[row["id"]] = None
    shipment.change_ids = list(ids)
    return shipment


class Linker:
    """One service's pass over its deployments from one source."""

    def __init__(self, ctx: SyncContext, scope: Scope, resolver: Resolver) -> None:
        self.ctx = ctx
        self.scope = scope
        self.resolver = resolver
        self.service = scope.key
        self.environment = scope.service.production_environment
        self.full = False  # a pass that links every deployment (set by `run`)

    def query(self, *conditions: Any) -> Any:
        table = schema.deployments
        columns = (table.c.id, table.c.sha, table.c.status, table.c.deployed_at, table.c.updated_at)
        return select(*columns).where(
            (table.c.service == self.service)
            & (table.c.source == self.ctx.source)
            & (table.c.environment == self.environment),
            *conditions,
        )

    def first_changed(self, linked_at: datetime | None) -> Deployment | None:
        """The earliest deployment whose row changed since the last pass."""
        table = schema.deployments
        changed = () if linked_at is None else (table.c.updated_at > linked_at,)
        query = self.query(*changed).order_by(table.c.deployed_at, table.c.id).limit(1)
        with self.ctx.engine.connect() as connection:
            row = connection.execute(query).first()
        return Deployment(*row) if row else None

    def unlinked_since(self, linked_at: datetime | None) -> list[Deployment]:
        """Successful deployments linked before their commits were stored, when the service
        has gained changes since the last pass (git synced after this source, or the clone
        had not fetched them yet): those that shipped nothing known, and those whose own
        sha became a change they do not ship. Their own rows never change again, so they
        would otherwise stay as they were linked."""
        if linked_at is None:
            return []  # a first pass links everything
        d, dc, c = schema.deployments, schema.deployment_changes, schema.changes
        empty = self.query(
            d.c.status == "success",
            d.c.sha.is_not(None),
            ~exists().where(dc.c.deployment_id == d.c.id),
        ).order_by(d.c.deployed_at, d.c.id)
        gained = exists().where(c.c.service == self.service, c.c.updated_at > linked_at)
        # Linked while its own commit was not a change yet (a clone fetched after the Git
        # collector read it: the older commits were known, so it did not ship nothing).
        own = self.query(
            d.c.status == "success",
            exists().where(
                c.c.service == self.service,
                c.c.sha == d.c.sha,
                c.c.updated_at > linked_at,
                ~exists().where(dc.c.deployment_id == d.c.id, dc.c.change_id == c.c.id),
            ),
        )
        with self.ctx.engine.connect() as connection:
            if not connection.execute(select(gained)).scalar():
                return []
            found = {row[0]: Deployment(*row) for row in connection.execute(empty)}
            found.update((row[0], Deployment(*row)) for row in connection.execute(own))
        return sorted(found.values(), key=lambda deployment: deployment.order)

    def success_before(self, deployment: Deployment) -> Deployment | None:
        table = schema.deployments
        earlier = (table.c.deployed_at < deployment.deployed_at) | (
            (table.c.deployed_at == deployment.deployed_at) & (table.c.id < deployment.id)
        )
        query = (
            self.query(earlier, table.c.status == "success")
            .order_by(table.c.deployed_at.desc(), table.c.id.desc())
            .limit(1)
        )
        with self.ctx.engine.connect() as connection:
            row = connection.execute(query).first()
        return Deployment(*row) if row else None

    def from_on(self, first: Deployment) -> Iterator[Deployment]:
        """`first` and every later deployment, in order, a chunk of rows at a time."""
        table = schema.deployments
        after: tuple[datetime, str] | None = None
        while True:
            bound = (
                (table.c.deployed_at > after[0])
                | ((table.c.deployed_at == after[0]) & (table.c.id > after[1]))
                if after is not None
                else (table.c.deployed_at > first.deployed_at)
                | ((table.c.deployed_at == first.deployed_at) & (table.c.id >= first.id))
            )
            query = self.query(bound).order_by(table.c.deployed_at, table.c.id).limit(CHUNK)
            with self.ctx.engine.connect() as connection:
                chunk = [Deployment(*row) for row in connection.execute(query)]
            yield from chunk
            if len(chunk) < CHUNK:
                return
            after = chunk[-1].order

    def run(self) -> None:
        """Re-link, in order of deployed_at, what changed and the success after each change.

        Memory is one chunk of rows and one batch, whatever the length of the history.
        """
        state = self.ctx.bookmark(STREAM, self.service) or {}
        started = utcnow()
        linked_at = parse_timestamp(state["linked_at"]) if state.get("linked_at") else None
        if state.get("environment", self.environment) != self.environment:
            linked_at = None  # production is another environment now: link everything again
        self.full = linked_at is None
        unlinked = self.unlinked_since(linked_at)
        retry = {deployment.id for deployment in unlinked}
        candidates = [self.first_changed(linked_at), *unlinked[:1]]
        first = min(
            (found for found in candidates if found is not None),
            key=lambda deployment: deployment.order,
            default=None,
        )
        if first is None:
            if self.full:
                with self.ctx.engine.begin() as connection:
                    self.unlink_off_production(connection)
            return
        previous = self.success_before(first)
        after_change = False  # a changed deployment was passed: re-link the next success
        batch: list[tuple[Deployment | None, Deployment]] = []
        with ThreadPoolExecutor(WORKERS) as pool:
            for deployment in self.from_on(first):
                changed = (
                    linked_at is None or deployment.updated_at > linked_at or deployment.id in retry
                )
                success = deployment.status == "success"
                if changed or (after_change and success):
                    batch.append((previous, deployment))
                    if len(batch) >= BATCH:
                        self.link(pool, batch)
                        batch = []
                after_change = changed or (after_change and not success)
                if success:
                    previous = deployment
            bookmark = {"linked_at": to_sqlite_text(started), "environment": self.environment}
            self.link(pool, batch, bookmark)

    def unlink_off_production(self, connection: Connection) -> None:
        """No link left on a deployment of the source outside production (a full pass: one
        whose environment is no longer production was linked when it was)."""
        d, dc = schema.deployments, schema.deployment_changes
        off = select(d.c.id).where(
            (d.c.service == self.service)
            & (d.c.source == self.ctx.source)
            & (d.c.environment != self.environment)
        )
        gone = connection.execute(delete(dc).where(dc.c.deployment_id.in_(off)))
        if gone.rowcount:
            mark_written(connection)

    def link(
        self,
        pool: ThreadPoolExecutor,
        pairs: list[tuple[Deployment | None, Deployment]],
        bookmark: dict[str, Any] | None = None,
    ) -> None:
        """The commits of each pair, a few compares at a time; then one transaction."""
        ranges = list(pool.map(self.commits, pairs))
        batch = [
            (deployment, self.shipment(deployment, commits))
            for (_, deployment), commits in zip(pairs, ranges, strict=True)
        ]
        self.write(batch, bookmark)

    def commits(self, pair: tuple[Deployment | None, Deployment]) -> list[Commit] | None:
        """The commits a deployment brought after the previous one; None: only its own."""
        previous, deployment = pair
        if deployment.status != "success" or not deployment.sha:
            return []  # a failed (or sha-less) deployment ships nothing
        if previous is None or not previous.sha:
            return None
        if previous.sha == deployment.sha:
            return []  # a redeploy ships nothing new
        try:
            return self.resolver.between(previous.sha, deployment.sha)
        except NotFoundError as exc:
            self.ctx.warn(
                f"{self.ctx.source}: {self.service}: cannot list the commits between "
                f"deployments {previous.id} and {deployment.id} ({exc}); linked only the "
                "deployed commit's change"
            )
            return None

    def shipment(self, deployment: Deployment, commits: list[Commit] | None) -> Shipment:
        if commits is None:
            return self.own_change(str(deployment.sha))
        with self.ctx.engine.connect() as connection:
            known = known_changes(connection, self.service, (c.sha for c in commits))
        return classify(commits, known, self.resolver)

    def own_change(self, sha: str) -> Shipment:
        with self.ctx.engine.connect() as connection:
            known = known_changes(connection, self.service, [sha])
        return Shipment([known[sha]]) if sha in known else Shipment()

    def write(
        self, batch: list[tuple[Deployment, Shipment]], bookmark: dict[str, Any] | None = None
    ) -> None:
        rows: Rows = {}
        links: list[tuple[str, str]] = []
        for deployment, shipment in batch:
            merge_rows(rows, shipment.rows)
            links.extend((deployment.id, change_id) for change_id in shipment.change_ids)
        ids = [deployment.id for deployment, _ in batch]
        if not ids and bookmark is None:
            return
        for row in rows.get("changes", []):
            row.setdefault("service", self.service)
        extra = {"bookmark": bookmark, "final": True} if bookmark is not None else {}
        self.ctx.write_rows(
            STREAM,
            self.service,
            _unique(rows),
            records=len(batch),
            delete=self.unlink_off_production if bookmark is not None and self.full else None,
            after=lambda connection: write_links(connection, ids, sorted(set(links))),
            **extra,
        )


def _unique(rows: Rows) -> Rows:
    """One row per key (the same pull request can be found through several commits)."""
    result: Rows = {}
    for table, batch in rows.items():
        key = [column.name for column in schema.metadata.tables[table].primary_key.columns]
        seen: dict[tuple[Any, ...], dict[str, Any]] = {}
        for row in batch:
            seen[tuple(row[name] for name in key)] = row
        result[table] = list(seen.values())
    return result


def link_deployments(ctx: SyncContext, scope: Scope, resolver: Resolver) -> None:
    """Link the service's changed production deployments to the changes they shipped."""
    # After a move to another repository, its rows go first: linked beside them, a
    # deployment would follow one of the old location's, or ship one of its changes.
    ctx.end_move()
    Linker(ctx, scope, resolver).run()
