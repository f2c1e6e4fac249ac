"""Local Git: commits are changes; deploy tags are deployments when no CI/CD source gives them.

Rules (docs/metric-definitions.md, "From a local Git repository"):
- every non-merge commit reachable from `branch` is a change (`committed_at` = author
  time; one git cannot give as a date: see `mend_times`); with `paths` (a monorepo) only
  those touching the paths. Id `git:<service>:<sha>`, so one commit can be a change of
  two services. A service with a github or gitlab block gets no changes from here: its
  changes are its merged pull (merge) requests and direct pushes, from those collectors,
  so nothing is counted twice;
- when no github/gitlab/jenkins block gives the service's deployments, each tag matching
  `deploy_tags` and merged into `branch` is a successful production deployment at the tag's time
  (tagger date of an annotated tag, committer date of a lightweight one), id
  `git:<service>:tag:<tag>`; it ships the commits it contains that no earlier such tag
  contains (tags of the same second are not earlier than one another), worked out in
  Python from the parent graph read in the same pass.

Processes per sync of one service, whatever the size of the history: `git rev-parse`,
`git for-each-ref --merged` (tags), one `git rev-parse` only when a deploy tag tags another
tag, at most one `git merge-base --is-ancestor` (was the old head force-pushed away?), ONE
`git log` over the range to read, and with `paths` one `git log --no-merges -- <paths>`
listing the commits that touch them (run concurrently).
Never a process per commit or per deployment. The rev-parse also prints the folder's place
in its work tree: a git.path below the root is refused (git would read the whole enclosing
repository); and whether the clone is shallow: a warning, and a full read once deepened.
After a full read with two or more `paths`, one `git log -1` per path finds those that
touch no commit, which are reported as warnings; so is a `deploy_tags` that finds no tag.

Incremental: the bookmark keeps the branch head, the deploy tags already stored and the
settings they were read with (paths, whether commits are changes, the environment of the
tag deployments, the .mailmap: the work tree's, or a bare clone's HEAD:.mailmap). Head
unchanged and no new tag: nothing runs beyond the two listings. New commits only:
`git log <old head>..<branch>`. New tags: `git log <branch> --not <stored tags>`, which
holds both the new commits and every commit not yet deployed, i.e. all that a new tag can
ship. A force-push, a moved or deleted tag, a new tag not later than a stored one, or
other settings: everything is read again and rows no longer reachable are removed.

No raw payload is kept: the clone itself is the raw data, and a change's lineage is
source `git` + its sha (`source_id`).
"""

from __future__ import annotations

import contextlib
import difflib
import fcntl
import fnmatch
import hashlib
import os
import posixpath
import queue
import re
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from itertools import compress, groupby, repeat
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, select

from collectors.base import Scope, Source, SyncContext, chunks
from collectors.http import SourceError
from poise.config import GitLocation
from poise.text import cut
from poise.timeutil import from_epoch_seconds, to_sqlite_text, utcnow
from poise.warehouse import schema
from poise.warehouse.sync_state import mark_written
from poise.warehouse.upsert import UpsertCounts, UpsertPlan, execute_plan, plan_upsert

STREAM = "history"
# Records are "<fields \x1f-separated>\0" (-z): exactly what is stored, nothing more (the
# clone itself is the raw data; a change's lineage is source `git` + its sha). %ad and %cd
# are the author and committer times, formatted by git itself in UTC exactly as the
# warehouse stores them (TZ=UTC below); "%aN <%aE>" is the `author` column as stored: the
# name and e-mail after the repository's .mailmap, as `git log` and `git shortlog` show them.
LOG_FORMAT = "%H%x1f%P%x1f%aN <%aE>%x1f%ad%x1f%cd%x1f%s"
LOG_FIELDS = 6
UTC_DATE = "--date=format-local:%Y-%m-%dT%H:%M:%S.000000Z"
TAG_FORMAT = (
    "%(refname:lstrip=2)%00%(objecttype)%00%(objectname)%00%(*objectname)%00%(*objecttype)%00"
    "%(taggerdate:unix)%00%(committerdate:unix)%00%(*committerdate:unix)"
)
CHANGE_BLOCKS = ("github", "gitlab")  # sources whose pull/merge requests are the changes
# The columns a git change fills, in the order of the positional rows sent to the driver.
CHANGE_COLUMNS = (
    "id",
    "service",
    "sha",
    "committed_at",
    "committer_at",
    "parents",
    "title",
    "author",
    "source",
    "source_id",
    "updated_at",
)
# "%aN <%aE>" longer than the column (git sets no bound) is cut to fit, as other sources'
# words are (collectors.rows.CUT_TO_FIT): PostgreSQL would refuse the batch at every sync.
AUTHOR_WIDTH: int = schema.changes.c.author.type.length  # type: ignore[attr-defined]
# One record of LOG_FORMAT, for output whose author or subject holds \x1f: the author is
# what lies between the parents and the two times, the subject all after them.
_TIME = r"\d{4,}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"
_RECORD = r"([0-9a-f]+)\x1f([0-9a-f ]*)\x1f(.*?)\x1f({time})\x1f({time})\x1f(.*)"
RECORD = re.compile(_RECORD.format(time=_TIME), re.DOTALL)
# the same, where a time git cannot read is printed as nothing (tried only after RECORD)
LOOSE_RECORD = re.compile(_RECORD.format(time=f"(?:{_TIME})?"), re.DOTALL)
# A time as git prints it (UTC_DATE) for the years 1970-9999. A commit time git cannot
# read (a negative one, i.e. before 1970, or a malformed one) prints as nothing, and one
# after 9999 with a longer year: neither is a datetime (SQLite would keep text that no
# read can parse, PostgreSQL refuse the batch). What stands in for them: `mend_times`.
TIME_WIDTH = len("2024-01-01T00:00:00.000000Z")
LATEST_TIME = "9999-12-31T23:59:59.000000Z"
EPOCH_TIME = "1970-01-01T00:00:00.000000Z"
LATEST = datetime.fromisoformat(LATEST_TIME)
# git runs in a session of its own: a Ctrl-C in a terminal goes to the whole foreground
# process group, and would kill git mid-log while poise itself is finishing the current
# source (the first SIGINT is a graceful stop, poise/commands/sync.py).
OWN_SESSION = True
_READ_SIZE = 1 << 20
_PARSE_SIZE = 1 << 18
F_SETPIPE_SZ = 1031


def cicd_deployments(service: Any) -> bool:
    """Whether a CI/CD block gives the service's deployments: then its deploy tags do not.
    A `github` block that collects none (`use_deployments_api: false`, no workflow, no
    releases: pull requests only) leaves them to the tags."""
    github = service.github
    return bool(
        service.gitlab or service.jenkins or (github is not None and github.gives_deployments)
    )


def git_command(repo: Path, *args: str) -> list[str]:
    return ["git", "-C", str(repo), "-c", "core.quotepath=off", *args]


def log_command(repo: Path, revisions: Sequence[str]) -> list[str]:
    """The one history pass: the same command the benchmark times bare (run it with LOG_ENV)."""
    return git_command(
        repo,
        "log",
        "-z",
        "--no-color",
        "--encoding=UTF-8",
        UTC_DATE,
        f"--format={LOG_FORMAT}",
        *revisions,
        "--",
    )


def log_environment() -> dict[str, str]:
    # GIT_FLUSH=0: into a pipe git would otherwise flush after every commit, i.e. one
    # write (and one wake-up of our reader) per record instead of one per buffer
    return {**os.environ, "TZ": "UTC", "GIT_FLUSH": "0"}


@dataclass(frozen=True)
class DeployTag:
    name: str
    sha: str
    deployed_at: datetime

    def as_bookmark(self) -> list[Any]:
        return [self.sha, int(self.deployed_at.timestamp())]


@dataclass
class Pass:
    """What one read of the history gave: the parent graph and which commits are changes."""

    parents: dict[str, str] = field(default_factory=dict)
    changes: set[str] = field(default_factory=set)
    records: int = 0
    touched: set[str] | None = None  # with `paths`: the non-merge commits touching them


class GitSource(Source):
    """Commits, and deploy tags as deployments, from a local clone (services[].git)."""

    name = "git"
    # A checkpoint is a commit, and each commit writes every index page its batch touched
    # (ids and shas are random keys: most pages of those indexes) to the WAL again. At 500
    # commits a batch an ingest needs ~20% more CPU at 20,000 commits, ~40% at 100,000
    # (docs/collectors.md). A kill costs at most this many rows written again, a few
    # hundredths of a second: git reads them back in no time.
    checkpoint_every = 5000

    def sync_scope(self, ctx: SyncContext, scope: Scope) -> None:
        GitSync(ctx, scope, self._where(scope)).run()

    def _where(self, scope: Scope) -> str:
        index = self.config.services.index(scope.service)
        return f"services[{index}].git"


class GitSync:
    """One service's sync: see the module docstring for the rules."""

    def __init__(self, ctx: SyncContext, scope: Scope, where: str) -> None:
        self.ctx = ctx
        self.scope = scope
        self.where = where
        self.service = scope.key
        self.location: GitLocation = scope.location
        self.repo = ctx.config.resolve_path(self.location.path)
        self.wants_deployments = bool(self.location.deploy_tags) and not cicd_deployments(
            scope.service
        )
        self.wants_changes = not any(getattr(scope.service, block) for block in CHANGE_BLOCKS)
        # What the stored rows depend on besides the clone, kept in the bookmark: under
        # other settings they are no longer this service's changes and production
        # deployments though head and tags have not moved, so other settings: a full read.
        self.settings: dict[str, Any] = {
            "paths": sorted(self.location.paths),
            "changes": self.wants_changes,
            "environment": (
                scope.service.production_environment if self.wants_deployments else None
            ),
        }
        # The authors stored went through the work tree's .mailmap: another one, another
        # author for commits already stored. Kept only when there is one (no full read for
        # the clones without); a bare clone's (HEAD:.mailmap) once the clone is known bare.
        self.watch_mailmap(self.mailmap() if self.wants_changes else None)
        self.other_tags: list[str] = []  # the tags deploy_tags does not match, for a warning

    def mailmap(self) -> str | None:
        """A digest of the work tree's .mailmap; None without one."""
        with contextlib.suppress(OSError):
            return hashlib.sha256((self.repo / ".mailmap").read_bytes()).hexdigest()[:16]
        return None

    def watch_mailmap(self, digest: str | None) -> None:
        if digest:
            self.settings["mailmap"] = digest

    def bare_mailmap(self) -> str | None:
        """A bare clone's mailmap is HEAD's .mailmap (git's `mailmap.blob` default): its blob
        id, None without one. One git process, for bare clones only."""
        done = self.git("rev-parse", "--verify", "--quiet", "HEAD:.mailmap", check=False)
        blob = done.stdout.strip() if done.returncode == 0 else ""
        return blob[:16] or None

    # -- git ------------------------------------------------------------------------

    def fail(self, what: str) -> SourceError:
        return SourceError(f"git: {self.service}: {what}")

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        try:
            done = subprocess.run(
                git_command(self.repo, *args),
                capture_output=True,
                text=True,
                encoding="utf-8",
                errors="replace",
                start_new_session=OWN_SESSION,
            )
        except FileNotFoundError:
            raise self.fail("the git command is not installed (install git)") from None
        if check and done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or ["failed"])[0]
            raise self.fail(f"git {args[0]} in {self.repo} failed: {reason}")
        return done

    def resolve_head(self) -> tuple[str, list[str] | None]:
        """The branch's head, and where a shallow clone's history is cut (the boundary
        commits' shas, sorted; None for a full clone)."""
        if not self.repo.is_dir():
            raise self.fail(f"no folder {self.repo}: check {self.where}.path")
        # In the same process, each on its line, even when the branch is not found:
        # --show-prefix, the folder's path below the work tree's root ("sub/"), empty at the
        # root (and in a bare clone, where --show-toplevel would fail);
        # --is-bare-repository and --is-shallow-repository, "true" or "false"; and where a
        # shallow clone keeps its cut (relative to the folder; a linked work tree shares
        # its repository's).
        done = self.git(
            "rev-parse",
            "--show-prefix",
            "--is-bare-repository",
            "--is-shallow-repository",
            "--git-path",
            "shallow",
            "--verify",
            "--quiet",
            f"{self.location.branch}^{{commit}}",
            check=False,
        )
        lines = done.stdout.splitlines()
        if lines and lines[0]:
            raise self.fail(self.inside_repository(lines[0]))
        if done.returncode != 0:
            probe = self.git("rev-parse", "--git-dir", check=False)
            if probe.returncode != 0:
                raise self.fail(self.unreadable(probe.stderr))
            raise self.fail(self.branch_missing())
        if lines[1] == "true" and self.wants_changes:
            self.watch_mailmap(self.bare_mailmap())
        cut = None
        if lines[2] == "true":
            self.warn_shallow()
            with contextlib.suppress(OSError):  # a cut we cannot read: an empty one
                cut = sorted((self.repo / lines[3]).read_text().split())
            cut = cut or []
        return lines[-1].strip(), cut

    def unreadable(self, stderr: str) -> str:
        """Why git will not read the folder: not a repository, or one git refuses to open
        for this user (owned by another: a mounted volume, a container's checkout)."""
        if "dubious ownership" in stderr:
            return (
                f"git refuses to read {self.repo}: it belongs to another user; if you trust "
                f"it, run `git config --global --add safe.directory {self.repo}` as the user "
                "that runs poise"
            )
        if "not a git repository" in stderr or not stderr.strip():
            return f"{self.repo} is not a git repository: check {self.where}.path"
        return f"git cannot read {self.repo}: {stderr.strip().splitlines()[0]}"

    def branch_missing(self) -> str:
        """Why the branch was not found, with what would work: a repository with no commit
        yet, or the branch there only as a remote-tracking one (a clone checked out on
        another branch, a CI checkout)."""
        branch = self.location.branch
        listing = self.git(
            "for-each-ref", "--format=%(refname)", "refs/heads", "refs/remotes", check=False
        )
        refs = listing.stdout.split()
        if not refs:
            return (
                f"{self.repo} has no commit yet: commit or fetch its history, or check "
                f"{self.where}.path"
            )
        remote = sorted(
            ref.removeprefix("refs/remotes/")
            for ref in refs
            if ref.startswith("refs/remotes/") and ref.endswith(f"/{branch}")
        )
        if remote:
            return (
                f"branch {branch!r} not found in {self.repo}, only {remote[0]!r}: set "
                f"{self.where}.branch to {remote[0]!r}, or check out {branch!r} there"
            )
        # the local branches, or for a clone checked out detached, the remote-tracking ones
        names = sorted(
            ref.removeprefix("refs/heads/") for ref in refs if ref.startswith("refs/heads/")
        )
        names = names or sorted(ref.removeprefix("refs/remotes/") for ref in refs)
        there = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        close = difflib.get_close_matches(branch, names, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return (
            f"branch {branch!r} not found in {self.repo} (its branches: {there}): {hint}check "
            f"{self.where}.branch"
        )

    def warn_shallow(self) -> None:
        """A shallow clone (a CI checkout, `git clone --depth`) has lost the commits before
        its cut: its oldest deployment seems to ship everything down to the cut, and the
        changes before it are missing. Said on every sync until the clone is deepened."""
        self.ctx.warn(
            f"git: {self.service}: {self.repo} is a shallow clone: the commits before its cut "
            "are missing, so changes and lead times are incomplete; run "
            f"`git -C {self.repo} fetch --unshallow` (or point {self.where}.path at a full clone)"
        )

    def inside_repository(self, prefix: str) -> str:
        """Why a git.path below a work tree's root is refused, with the config that works.

        Git would read the whole enclosing repository from there, silently: every commit
        of every folder would be this service's change.
        """
        below = prefix.strip("/")
        folder = Path(os.path.realpath(self.repo))  # git -C resolves symlinks the same way
        root = folder.parents[below.count("/")]
        # paths were read relative to that folder (git's pathspecs follow -C): the same
        # paths, relative to the root
        paths = [
            path if path.startswith(":") else posixpath.normpath(f"{below}/{path}")
            for path in self.location.paths
        ] or [below]
        return (
            f"{self.where}.path {self.repo} is inside the repository {root}: point "
            f"{self.where}.path at the repository and list {', '.join(paths)} in "
            f"{self.where}.paths"
        )

    def list_tags(self) -> dict[str, DeployTag]:
        """Every tag matching deploy_tags, by name (whether merged or not: see `merged`)."""
        if not self.wants_deployments:
            return {}
        globs = self.location.deploy_tag_globs
        listing = self.git("for-each-ref", f"--format={TAG_FORMAT}", "refs/tags")
        tags: dict[str, DeployTag] = {}
        nested: dict[str, str] = {}  # a tag of a tag: its own tagger time, by name
        for line in listing.stdout.splitlines():
            fields = line.split("\0")
            name, kind, target, peeled, peeled_kind, tagged, committed, peeled_committed = fields
            if not any(fnmatch.fnmatchcase(name, glob) for glob in globs):
                self.other_tags.append(name)
                continue
            if kind == "tag" and peeled_kind == "tag":
                nested[name] = tagged
                continue
            if kind == "tag":
                sha, stamp = peeled, tagged or peeled_committed
            elif kind == "commit":
                sha, stamp = target, committed
            else:
                continue
            if sha and stamp:
                tags[name] = DeployTag(name, sha, self.tag_time(name, stamp))
        for name, sha in self.peel(sorted(nested)).items():
            if nested[name]:
                tags[name] = DeployTag(name, sha, self.tag_time(name, nested[name]))
        return tags

    def tag_time(self, name: str, stamp: str) -> datetime:
        """A tag's time (epoch seconds); one after 9999, which git allows, at the end of 9999."""
        try:
            return from_epoch_seconds(int(stamp))
        except (ValueError, OverflowError, OSError):
            self.ctx.warn(
                f"git: {self.service}: tag {name}: its time ({stamp}) is after the year 9999; "
                f"it deploys at {LATEST_TIME}"
            )
            return LATEST

    def peel(self, names: list[str]) -> dict[str, str]:
        """The commits that tags of tags (`git tag -a v2 v1`, which git warns about) come to:
        for-each-ref peels one level only. One `git rev-parse` for them all; rare enough that
        a tag of something other than a commit, which fails it, costs one process per name."""
        if not names:
            return {}
        wanted = [f"refs/tags/{name}^{{commit}}" for name in names]
        done = self.git("rev-parse", *wanted, check=False)
        if done.returncode == 0:
            return dict(zip(names, done.stdout.split(), strict=True))
        peeled = {}
        for name, revision in zip(names, wanted, strict=True):
            one = self.git("rev-parse", "--verify", "--quiet", revision, check=False)
            if one.returncode == 0:
                peeled[name] = one.stdout.strip()
        return peeled

    def merged(self, tags: dict[str, DeployTag], head: str) -> dict[str, DeployTag]:
        """Those of `tags` merged into head: one `git for-each-ref --merged` for them all."""
        if not tags:
            return {}
        refs = [f"refs/tags/{name}" for name in sorted(tags)] if len(tags) <= 200 else ["refs/tags"]
        listing = self.git(
            "for-each-ref", f"--merged={head}", "--format=%(refname:lstrip=2)", *refs
        )
        names = set(listing.stdout.splitlines())
        return {name: tag for name, tag in tags.items() if name in names}

    def is_ancestor(self, old: str, new: str) -> bool:
        return self.git("merge-base", "--is-ancestor", old, new, check=False).returncode == 0

    # -- the sync -------------------------------------------------------------------

    def run(self) -> None:
        state = self.ctx.bookmark(STREAM, self.service) or {}
        head, cut = self.resolve_head()
        listed = self.list_tags()
        stored: dict[str, list[Any]] = dict(state.get("tags") or {})
        old_head = state.get("head")
        # a clone deepened or unshallowed since (`fetch --unshallow`) holds older commits
        # under the same head: only a full read finds them. A bookmark from before the
        # settings were kept cannot tell what it was read with: read once more.
        full = (
            self.ctx.full
            or old_head is None
            or state.get("shallow") != cut
            or state.get("settings") != self.settings
        )
        moved = any(
            name not in listed or listed[name].as_bookmark() != value
            for name, value in stored.items()
        )
        new_tags: dict[str, DeployTag] = {}
        if not full and not moved:
            candidates = {name: tag for name, tag in listed.items() if name not in stored}
            new_tags = self.merged(candidates, head)
            if old_head == head and not new_tags and not state.get("pending"):
                return  # nothing new: the branch and its deploy tags are as stored
        full, revisions = self.plan(full or moved, old_head, head, stored, new_tags)
        history, writer = self.read(revisions, state.get("pending"), base=state, head=head)
        try:  # worked out while the writer stores the last batch
            if full:  # the pass read everything reachable from head: merged = in the graph
                new_tags = {n: tag for n, tag in listed.items() if tag.sha in history.parents}
                stored = {}
            deployment_rows, link_rows = self.shipments(self.deployments(new_tags, history))
        except BaseException:
            writer.abandon()
            raise
        writer.close()
        mended = [sha for sha in writer.mended if sha in history.changes]
        if mended:
            self.ctx.warn(
                f"git: {self.service}: {len(mended)} commit(s) with a time git cannot give as a "
                f"date (before 1970, malformed, or after 9999), e.g. {mended[0]}: an unreadable "
                "author time is stored as the committer time, a time after 9999 as "
                f"{LATEST_TIME}"
            )
        tags = {**stored, **{name: tag.as_bookmark() for name, tag in new_tags.items()}}
        bookmark: dict[str, Any] = {"head": head, "tags": tags, "settings": self.settings}
        if cut is not None:
            bookmark["shallow"] = cut
        self.finish(full, history, deployment_rows, link_rows, set(tags), bookmark)
        if full and history.touched is not None:
            self.warn_unmatched_paths(history.touched, head)
        if full and self.wants_deployments and not new_tags:
            self.warn_no_deploy_tag(len(listed))

    def warn_no_deploy_tag(self, unmerged: int) -> None:
        """After a full read that found no deploy tag on the branch: the service has no
        deployments at all (and its stored ones were just removed), almost surely a pattern
        that does not fit the repository's tags. Said with what would be there."""
        where, branch = f"{self.where}.deploy_tags", self.location.branch
        if unmerged:
            found = f"matches {unmerged} tag(s), none of them on {branch}"
        elif self.other_tags:
            names = sorted(self.other_tags)
            shown = ", ".join(names[:3]) + (", …" if len(names) > 3 else "")
            found = f"matches none of the repository's tags ({shown})"
        else:
            found = "matches no tag: the repository has none"
        self.ctx.warn(
            f"git: {self.service}: {where} {self.location.deploy_tags!r} {found}, so the "
            "service has no deployments; check it (a glob of tag names, e.g. 'v*')"
        )

    def warn_unmatched_paths(self, touched: set[str], head: str) -> None:
        """A `paths` entry that touches no commit is almost surely a typo: say so.

        Only after a full read (the first sync, `--full`, a force-push), whose path pass
        covered the whole branch. Usually no process at all: nothing touched means every
        entry matched nothing, and a single entry matched if anything was touched. With
        several entries, one `git log -1` each (it stops at the entry's newest commit), so
        git's own pathspec rules decide, not an imitation of them.
        """
        paths = self.location.paths
        if not touched:
            unmatched = list(paths)
        elif len(paths) == 1:
            unmatched = []
        else:
            unmatched = [
                path
                for path in paths
                if not self.git(
                    "log", "-1", "--no-merges", "--full-history", "--format=%H", head, "--", path
                ).stdout.strip()
            ]
        for path in unmatched:
            self.ctx.warn(
                f"git: {self.service}: {self.where}.paths: {path!r} touches no commit on "
                f"{self.location.branch}; check it (paths are relative to the repository's root)"
            )

    def plan(
        self,
        full: bool,
        old_head: str | None,
        head: str,
        stored: dict[str, list[Any]],
        new_tags: dict[str, DeployTag],
    ) -> tuple[bool, list[str]]:
        """Full or incremental, and the revisions the one history pass reads."""
        latest_stored = max((value[1] for value in stored.values()), default=None)
        # at the same second as a stored tag is not later than it: the new tag ships what
        # that one contains too (see `deployments`), which the pass below would leave out
        older_new_tag = latest_stored is not None and any(
            tag.deployed_at.timestamp() <= latest_stored for tag in new_tags.values()
        )
        if full or old_head is None or older_new_tag or not self.is_ancestor(old_head, head):
            return True, [head]
        if not new_tags:
            return False, [head, "--not", old_head]
        return False, [head, "--not", *sorted({value[0] for value in stored.values()})]

    def read(
        self, revisions: list[str], pending: dict[str, Any] | None, *, base: dict, head: str
    ) -> tuple[Pass, ChangeWriter]:
        """The one `git log` pass, stored in batches of `checkpoint_every` commits as it streams in.

        Returns with the last batch possibly still being written: `close()` the writer.
        """
        touching = self.start_path_pass(revisions)
        # the batches stored before a kill were read under the settings of that sync
        resume = (
            pending
            if pending
            and pending.get("revisions") == revisions
            and pending.get("settings") == self.settings
            else None
        )
        skip = int(resume["done"]) if resume else 0
        history = Pass()
        writer = ChangeWriter(self.ctx, self.service)
        paths_filter: set[str] | None = touching() if touching else None
        history.touched = paths_filter
        if not self.wants_changes:
            paths_filter = set()  # no commit is a change here (CHANGE_BLOCKS)
        every = self.ctx.checkpoint_every
        rows: list[tuple[Any, ...]] = []  # the changes among the batch's commits
        in_batch = 0  # commits in the batch being filled

        def flush() -> None:
            nonlocal rows, in_batch
            if history.records > skip:  # a resumed sync does not write stored batches again
                bookmark = {
                    "head": base.get("head"),
                    "tags": base.get("tags") or {},
                    "pending": {
                        "head": head,
                        "revisions": revisions,
                        "done": history.records,
                        "settings": self.settings,
                    },
                }
                for kept in ("shallow", "settings"):  # what was read before this sync
                    if kept in base:
                        bookmark[kept] = base[kept]
                writer.write(rows, in_batch, bookmark)
            rows, in_batch = [], 0

        try:
            for text in stream_records(log_command(self.repo, revisions), self.fail):
                columns = self.split(text)
                count = len(columns[0])
                start = 0
                while start < count:  # cut into batches of `every` commits
                    end = min(count, start + every - in_batch)
                    rows.extend(writer.rows(history, columns, start, end, paths_filter))
                    in_batch += end - start
                    history.records += end - start
                    start = end
                    if in_batch >= every:
                        flush()
            if in_batch:
                flush()
        except BaseException:
            writer.abandon()  # what failed here is what the caller must see
            raise
        return history, writer

    def split(self, text: str) -> tuple[list[str], ...]:
        """Whole records of `git log` output -> one list per field (in C: split, slice)."""
        flat = text.replace("\0", "\x1f").split("\x1f")
        if len(flat) == LOG_FIELDS * (text.count("\0") + 1):
            return tuple(flat[field::LOG_FIELDS] for field in range(LOG_FIELDS))
        # Some author or subject holds the separator itself (git keeps control characters
        # in both): read these records one by one, anchored on the fields of fixed shape.
        fields = []
        for record in text.split("\0"):
            found = RECORD.fullmatch(record) or LOOSE_RECORD.fullmatch(record)
            if found is None:
                raise self.fail(f"unexpected git log output in {self.repo}: {record[:80]!r}")
            fields.append(found.groups())
        return tuple(list(column) for column in zip(*fields, strict=True))

    def start_path_pass(self, revisions: list[str]) -> Callable[[], set[str]] | None:
        """With `paths`, list the non-merge commits touching them, concurrently with the main pass."""
        if not self.location.paths:
            return None
        command = git_command(
            self.repo,
            "log",
            "--no-merges",
            "--full-history",
            "--format=%H",
            *revisions,
            "--",
            *self.location.paths,
        )
        result: dict[str, Any] = {}

        def work() -> None:
            result["done"] = subprocess.run(
                command, capture_output=True, start_new_session=OWN_SESSION
            )

        thread = threading.Thread(target=work, daemon=True)
        thread.start()

        def wait() -> set[str]:
            thread.join()
            done = result["done"]
            if done.returncode != 0:
                reason = (done.stderr.decode(errors="replace").strip().splitlines() or ["failed"])[
                    0
                ]
                raise self.fail(f"git log -- {' '.join(self.location.paths)} failed: {reason}")
            return set(done.stdout.decode().split())

        return wait

    def deployments(
        self, tags: dict[str, DeployTag], history: Pass
    ) -> list[tuple[DeployTag, list[str]]]:
        """Each tag, oldest first, with the changes it contains that no earlier tag contains.

        Tags of the same second are not earlier than one another (two tags on one commit,
        lightweight ones on commits of one second): each ships what no tag before that
        second contains. Commits outside the pass were contained by tags stored earlier
        (the pass excluded them), so they count as already shipped.
        """
        shipped: set[str] = set()
        result = []
        ordered = sorted(tags.values(), key=lambda t: (t.deployed_at, t.name))
        for _, same in groupby(ordered, key=lambda t: t.deployed_at):
            group = list(same)
            if len(group) == 1:  # the usual case: walk straight into `shipped`
                result.append((group[0], self.walk(group[0].sha, history, shipped, shipped)))
                continue
            reached: set[str] = set()
            for tag in group:
                seen: set[str] = set()
                result.append((tag, self.walk(tag.sha, history, shipped, seen)))
                reached |= seen
            shipped |= reached
        return result

    @staticmethod
    def walk(start: str, history: Pass, shipped: set[str], seen: set[str]) -> list[str]:
        """The changes among the commits `start` reaches (in the pass) outside `shipped`;
        adds those commits to `seen`."""
        parents, changes = history.parents, history.changes
        found: list[str] = []
        stack = [start]
        while stack:
            sha = stack.pop()
            if sha in seen or sha in shipped or sha not in parents:
                continue
            seen.add(sha)
            if sha in changes:
                found.append(sha)
            stack.extend(parents[sha].split())
        return found

    def shipments(
        self, deployments: list[tuple[DeployTag, list[str]]]
    ) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
        """The deployment rows, and the (deployment, change) links in key order."""
        prefix = f"git:{self.service}:"
        environment = self.scope.service.production_environment
        deployment_rows = [
            {
                "id": f"{prefix}tag:{tag.name}",
                "service": self.service,
                "environment": environment,
                "status": "success",
                "deployed_at": tag.deployed_at,
                "sha": tag.sha,
                "source_id": tag.name,
                "url": None,
            }
            for tag, _ in deployments
        ]
        link_rows: list[tuple[str, str]] = []  # sorted piecewise, not as one list of pairs
        for deployment_id, shas in sorted(
            (row["id"], shas) for row, (_, shas) in zip(deployment_rows, deployments, strict=True)
        ):
            link_rows.extend(zip(repeat(deployment_id), [prefix + sha for sha in sorted(shas)]))
        return deployment_rows, link_rows

    def finish(
        self,
        full: bool,
        history: Pass,
        deployment_rows: list[dict[str, Any]],
        link_rows: list[tuple[str, str]],
        tag_names: set[str],
        bookmark: dict[str, Any],
    ) -> None:
        service = self.service
        recomputed = [row["id"] for row in deployment_rows]
        keep_tags = {f"git:{service}:tag:{name}" for name in tag_names}

        def clean(connection: Connection) -> None:
            if full:
                self.delete_stale(connection, history, keep_tags)

        self.ctx.write_rows(
            STREAM,
            service,
            {"repositories": [self.repository_row()], "deployments": deployment_rows},
            bookmark=bookmark,
            final=True,
            delete=clean,
            after=lambda connection: write_links(connection, recomputed, link_rows),
        )

    def delete_stale(self, connection: Connection, history: Pass, keep_tags: set[str]) -> None:
        """After a full read: drop git rows of this service that are no longer reachable."""
        changes, deployments = schema.changes, schema.deployments
        mine = (changes.c.service == self.service) & (changes.c.source == "git")
        prefix_len = len(f"git:{self.service}:")
        stored = connection.scalar(select(func.count()).select_from(changes).where(mine))
        stale = (
            [
                change_id
                for change_id in connection.scalars(select(changes.c.id).where(mine))
                if change_id[prefix_len:] not in history.changes
            ]
            if stored != len(history.changes)  # otherwise every stored change was just read
            else []
        )
        for chunk in chunks(stale):
            connection.execute(delete(changes).where(changes.c.id.in_(chunk)))
        gone = [
            deployment_id
            for deployment_id in connection.scalars(
                select(deployments.c.id).where(
                    (deployments.c.service == self.service) & (deployments.c.source == "git")
                )
            )
            if deployment_id not in keep_tags
        ]
        for chunk in chunks(gone):
            connection.execute(delete(deployments).where(deployments.c.id.in_(chunk)))
        if stale or gone:
            mark_written(connection)

    def repository_row(self) -> dict[str, Any]:
        return {
            "id": f"git:{self.service}",
            "service": self.service,
            "kind": "git",
            "location": str(self.repo),
            "branch": self.location.branch,
            "source_id": str(self.repo),
        }


def write_links(
    connection: Connection, deployment_ids: list[str], links: list[tuple[str, str]]
) -> UpsertCounts:
    """Make the recomputed deployments ship exactly `links`: add what is new, drop what is not."""
    table = schema.deployment_changes
    existing: set[tuple[str, str]] = set()
    for chunk in chunks(deployment_ids):
        query = select(table.c.deployment_id, table.c.change_id).where(
            table.c.deployment_id.in_(chunk)
        )
        existing.update((row[0], row[1]) for row in connection.execute(query))
    gone = existing - set(links) if existing else set()
    if gone:
        connection.execute(
            delete(table).where(
                (table.c.deployment_id == bindparam("d")) & (table.c.change_id == bindparam("c"))
            ),
            [{"d": d, "c": c} for d, c in sorted(gone)],
        )
    added = [link for link in links if link not in existing] if existing else links
    if added:
        plan = plan_upsert(connection.dialect, table, ("deployment_id", "change_id"))
        execute_plan(connection, plan, added)
    if gone or added:  # not counted as records, but the figures read them
        mark_written(connection)
    return UpsertCounts()  # link rows are relations, not records: not counted (base.LINK_TABLES)


class ChangeWriter:
    """Writes batches of changes: rows + checkpoint, one transaction each.

    Batches are written by one background thread, one at a time and in order, so the
    warehouse works while the next batch is parsed (SQLite releases the GIL while it
    writes); an error or a kill in a write surfaces at the next `write` or at `close`.
    Rows are positional tuples made in C (`zip`, `compress`) and go straight to the
    driver (`execute_plan`: hundreds of rows a statement), sorted by key. New rows are counted by the insert itself: an
    insert that skips existing keys (`ON CONFLICT DO NOTHING`) reports how many it added;
    only when it skipped some does an upsert run over the batch to count (and make) the
    updates. A first ingest is thus one plain insert per batch, with no key lookup of
    its own and no count query.
    """

    def __init__(self, ctx: SyncContext, service: str) -> None:
        self.ctx = ctx
        self.service = service
        self.prefix = f"git:{service}:"
        sqlite = ctx.engine.dialect.name == "sqlite"
        now = utcnow()
        # git wrote the author time as SQLite's column stores it; PostgreSQL gets datetimes
        self.now: Any = to_sqlite_text(now) if sqlite else now
        self.date: Callable[[str], Any] | None = None if sqlite else datetime.fromisoformat
        self._plans: tuple[UpsertPlan, UpsertPlan] | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="poise-git-writer")
        self._pending: Future[None] | None = None
        self.mended: list[str] = []  # the commits whose times `mend_times` stood in for

    def rows(
        self,
        history: Pass,
        columns: tuple[list[str], ...],
        start: int,
        end: int,
        only: set[str] | None,
    ) -> Iterator[tuple[Any, ...]]:
        """The change rows among records start..end of `columns`; adds them to `history`."""
        shas, parents, authors, dates, committed, titles = (column[start:end] for column in columns)
        if max(map(len, authors), default=0) > AUTHOR_WIDTH:  # checked in C, cut rarely
            authors = [cut(author, AUTHOR_WIDTH) for author in authors]
        date = self.date
        committer_times: Sequence[str | None] = committed
        if shas and {*map(len, dates), *map(len, committed)} != {TIME_WIDTH}:  # in C, mended rarely
            dates, committer_times = mend_times(shas, dates, committed, self.mended)
            date = date and parse_time
        history.parents.update(zip(shas, parents, strict=True))
        if only is None:
            keep = [" " not in parent for parent in parents]  # a merge is not a change
        else:
            keep = [" " not in p and sha in only for sha, p in zip(shas, parents, strict=True)]
        kept = list(compress(shas, keep))
        history.changes.update(kept)
        stamps, committer_stamps = compress(dates, keep), compress(committer_times, keep)
        return zip(
            [self.prefix + sha for sha in kept],
            repeat(self.service),
            kept,
            stamps if date is None else map(date, stamps),
            committer_stamps if date is None else map(date, committer_stamps),
            compress(parents, keep),
            compress(titles, keep),
            compress(authors, keep),
            repeat("git"),
            kept,
            repeat(self.now),
        )

    def write(self, rows: list[tuple[Any, ...]], records: int, bookmark: dict[str, Any]) -> None:
        self.wait()
        self._pending = self._pool.submit(self._write, rows, records, bookmark)

    def wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)

    def abandon(self) -> None:
        """After a failure: let the batch in flight finish (it is whole either way), quietly."""
        with contextlib.suppress(BaseException):
            self.close()

    def _write(self, rows: list[tuple[Any, ...]], records: int, bookmark: dict[str, Any]) -> None:
        rows.sort()  # in key order: neighbouring keys land on the same B-tree pages

        def store(connection: Connection) -> UpsertCounts:
            if self._plans is None:
                self._plans = (
                    plan_upsert(connection.dialect, schema.changes, CHANGE_COLUMNS, update=False),
                    plan_upsert(connection.dialect, schema.changes, CHANGE_COLUMNS),
                )
            return insert_changes(connection, self._plans, rows)

        self.ctx.write_rows(
            STREAM, self.service, {}, records=records, bookmark=bookmark, after=store
        )


def mend_times(
    shas: list[str], authored: list[str], committed: list[str], mended: list[str]
) -> tuple[list[str], list[str | None]]:
    """The author and committer times of a batch holding one git could not give (TIME_WIDTH):
    one after 9999 is the end of 9999 (still in the future: a lead time <= 0, a data-quality
    finding); an unreadable committer time is none; an unreadable author time is the
    committer time, or 1970-01-01 (what git shows) when that is unreadable too. Adds the
    commits concerned to `mended`."""

    def mend(text: str) -> str | None:
        return text if len(text) == TIME_WIDTH else (LATEST_TIME if text else None)

    committer = [mend(text) for text in committed]
    author = [mend(a) or c or EPOCH_TIME for a, c in zip(authored, committer, strict=True)]
    mended.extend(
        sha
        for sha, a, c in zip(shas, authored, committed, strict=True)
        if len(a) != TIME_WIDTH or len(c) != TIME_WIDTH
    )
    return author, committer


def parse_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def insert_changes(
    connection: Connection, plans: tuple[UpsertPlan, UpsertPlan], rows: list[tuple[Any, ...]]
) -> UpsertCounts:
    """Insert the rows whose keys are new; upsert the batch only when some keys existed."""
    if not rows:
        return UpsertCounts()
    insert, upsert = plans
    new = execute_plan(connection, insert, rows)
    updated = execute_plan(connection, upsert, rows) if new < len(rows) else 0
    return UpsertCounts(new=new, updated=updated, unchanged=len(rows) - new - updated)


def decode(output: bytes) -> str:
    """git log's output, UTF-8 (--encoding=UTF-8 re-encodes a commit that names its encoding).
    A commit in another encoding that does not say so (an old import, a tool that wrote
    Latin-1) keeps its bytes: each field that is not UTF-8 is read as Latin-1, which takes
    every byte, rather than turned into U+FFFD."""
    try:
        return output.decode("utf-8")
    except UnicodeDecodeError:
        return "\x1f".join(map(decode_field, output.split(b"\x1f")))


def decode_field(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def stream_records(command: list[str], fail: Callable[[str], SourceError]) -> Iterator[str]:
    """Run `command` and yield its complete NUL-separated records, a chunk at a time.

    A reader thread drains git's output so git never waits on us while a batch is being
    written: git and the warehouse work at the same time on two cores.
    """
    try:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=log_environment(),
            start_new_session=OWN_SESSION,
        )
    except FileNotFoundError:
        raise fail("the git command is not installed (install git)") from None
    assert process.stdout is not None and process.stderr is not None
    chunks_in: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    errors: list[bytes] = []
    stdout_fd = process.stdout.fileno()
    with contextlib.suppress(OSError, AttributeError):  # Linux: a 1 MiB pipe, fewer wake-ups
        fcntl.fcntl(stdout_fd, F_SETPIPE_SZ, _READ_SIZE)

    def drain() -> None:
        while True:
            chunk = os.read(stdout_fd, _READ_SIZE)
            chunks_in.put(chunk)
            if not chunk:
                return

    def drain_errors() -> None:
        errors.append(process.stderr.read() if process.stderr else b"")

    reader = threading.Thread(target=drain, daemon=True)
    error_reader = threading.Thread(target=drain_errors, daemon=True)
    reader.start()
    error_reader.start()
    pending = b""
    try:
        finished = False
        while not finished:
            # Take everything that has arrived, and at least _PARSE_SIZE of it: each parse
            # step then works on a large piece (git writes a few kB at a time).
            pieces = [chunks_in.get()]
            size = len(pieces[0])
            while pieces[-1] and (size < _PARSE_SIZE or not chunks_in.empty()):
                pieces.append(chunks_in.get())
                size += len(pieces[-1])
            finished = not pieces[-1]
            pending += b"".join(pieces)
            if finished:
                complete, pending = pending.rstrip(b"\0"), b""
            else:
                cut = pending.rfind(b"\0")
                complete, pending = pending[: max(cut, 0)], pending[cut + 1 :]
            if complete:
                yield decode(complete)
    finally:
        if process.poll() is None and reader.is_alive():
            process.kill()
        reader.join()
        process.stdout.close()
        error_reader.join()
        process.wait()
    if process.returncode != 0:
        reason = (b"".join(errors).decode(errors="replace").strip().splitlines() or ["failed"])[0]
        raise fail(f"git log failed: {reason}")
