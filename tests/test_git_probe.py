"""The Local Git collector probed with repositories that are awkward the way real ones are.

Probed (each against a real repository in a temp folder, synced into a real warehouse,
then synced again incrementally and with `--full`):

- history rewritten after a sync (an amended head, a deploy tag moved with `git tag -f`,
  deleted, re-created lightweight, a reset): an incremental sync notices each (the old
  head is no longer an ancestor, or a stored tag moved or went) and ends with exactly the
  rows a first sync of the rewritten repository gives, links included. Held (documented).
- the branch renamed or deleted after a sync: the sync of that service fails with the
  branch named and keeps what it stored; `branch: HEAD` reads a detached HEAD. Held.
- a folder with spaces and non-ASCII letters, a linked work tree, a path filter with
  non-ASCII letters. Held.
- commit metadata. FOUND: with `i18n.commitEncoding` set (ISO-8859-1), `git log` printed
  Latin-1, which was stored as U+FFFD ("Jos� M�ller"); a commit written in Latin-1 without
  an `encoding` header lost its letters the same way. FOUND: a commit time git cannot give
  as a date (before 1970 or malformed: git prints nothing; after 9999: a 5-digit year)
  was stored in SQLite as text no read can parse (every read of `changes` raised
  ValueError, so `poise metrics` and the pages broke), and on PostgreSQL failed the sync
  of the service at every run ("internal error"). FOUND: a deploy tag dated after 9999
  failed the sync of its service at every run. An empty e-mail is stored as `Name <>`,
  as git shows it; an octopus of 20 parents, a 10 kB and an empty subject are fine.
- a .mailmap: CHOSEN (the contract is silent): authors are stored as `git log` shows
  them, after the work tree's .mailmap, and another .mailmap reads the history again.
- monorepo `paths`: `./x`, `x/`, globs behave as git pathspecs; a directory renamed with
  `git mv` is not followed (its commits before the rename match only the old path: list
  both; documented now).
- deploy tags: a glob matching no tag on the branch silently gave the service no
  deployments; CHOSEN: a warning after a full read, naming what is there.
- two `poise sync` at once: the second is refused with one clear line, nothing written.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from test_git_collector import Repo, at, changes, deployments, make_config, sync

from poise.cli import main
from poise.warehouse import open_warehouse, schema
from poise.warehouse.lock import sync_lock
from poise.warehouse.sync_state import read_state

LATEST_TIME = "9999-12-31T23:59:59.000000Z"  # what stands in for a time after 9999
END_OF_9999 = at("9999-12-31T23:59:59+00:00")


def config_for(tmp_path: Path, **git: Any) -> Any:
    location = {"path": "checkout", "deploy_tags": "v*", **git}
    return make_config(tmp_path, [{"name": "checkout", "git": location}])


def raw_commit(repo: Repo, text: str) -> str:
    """A commit object written as given (git's own commands refuse such dates)."""
    done = subprocess.run(
        [
            "git",
            "-C",
            str(repo.path),
            "hash-object",
            "-t",
            "commit",
            "-w",
            "--literally",
            "--stdin",
        ],
        input=text.encode("latin-1"),
        capture_output=True,
        check=True,
    )
    return done.stdout.decode().strip()


def stored(engine: Engine) -> tuple[dict[str, Any], dict[str, Any], set[tuple[str, str]]]:
    """Changes, deployments and links, without the time of the write."""
    found = {
        sha: {k: v for k, v in row.items() if k != "updated_at"}
        for sha, row in changes(engine).items()
    }
    deployed = {
        key: {k: v for k, v in row.items() if k != "updated_at"}
        for key, row in deployments(engine).items()
    }
    with engine.connect() as connection:
        links = {(d, c) for d, c in connection.execute(select(schema.deployment_changes))}
    return found, deployed, links


def first_sync_of(tmp_path: Path, config: Any, name: str) -> Any:
    """What a first sync of the repository as it is now stores (SQLite, a new file)."""
    engine = open_warehouse(f"sqlite:///{tmp_path / f'{name}.db'}")
    try:
        assert not sync(engine, config).failed
        return stored(engine)
    finally:
        engine.dispose()


# -- history rewritten after a sync ----------------------------------------------------


def test_history_rewritten_after_a_sync_is_noticed_without_full(
    warehouse: Engine, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "checkout")
    c1 = repo.commit("c1", "2024-01-01T10:00:00+00:00")
    repo.tag("v1", "2024-01-01T11:00:00+00:00")
    c2 = repo.commit("c2", "2024-01-02T10:00:00+00:00")
    c3 = repo.commit("c3", "2024-01-03T10:00:00+00:00")
    repo.tag("v2", "2024-01-03T11:00:00+00:00")
    config = config_for(tmp_path)
    assert not sync(warehouse, config).failed
    assert deployments(warehouse)["git:checkout:tag:v2"]["shipped"] == {c2, c3}

    # the head amended (a force-push): v2 still tags the commit that left the branch
    repo.git("commit", "-q", "--amend", "-m", "c3 amended", when="2024-01-04T10:00:00+00:00")
    amended = repo.head()
    assert not sync(warehouse, config).failed
    assert set(changes(warehouse)) == {c1, c2, amended}
    assert set(deployments(warehouse)) == {"git:checkout:tag:v1"}  # v2 is on no branch
    assert stored(warehouse) == first_sync_of(tmp_path, config, "amended")

    # v2 moved onto the amended commit (`git tag -f`)
    repo.git("tag", "-f", "-a", "v2", "-m", "again", when="2024-01-04T11:00:00+00:00")
    assert not sync(warehouse, config).failed
    v2 = deployments(warehouse)["git:checkout:tag:v2"]
    assert (v2["sha"], v2["deployed_at"], v2["shipped"]) == (
        amended,
        at("2024-01-04T11:00:00+00:00"),
        {c2, amended},
    )
    assert stored(warehouse) == first_sync_of(tmp_path, config, "moved")

    # v1 deleted: v2 is the first deployment and ships c1 too
    repo.git("tag", "-d", "v1")
    assert not sync(warehouse, config).failed
    assert set(deployments(warehouse)) == {"git:checkout:tag:v2"}
    assert deployments(warehouse)["git:checkout:tag:v2"]["shipped"] == {c1, c2, amended}
    assert stored(warehouse) == first_sync_of(tmp_path, config, "deleted")

    # v1 re-created, lightweight: at c1's committer time, it ships c1 again
    repo.git("tag", "v1", c1)
    assert not sync(warehouse, config).failed
    v1 = deployments(warehouse)["git:checkout:tag:v1"]
    assert (v1["deployed_at"], v1["shipped"]) == (at("2024-01-01T10:00:00+00:00"), {c1})
    assert deployments(warehouse)["git:checkout:tag:v2"]["shipped"] == {c2, amended}
    assert stored(warehouse) == first_sync_of(tmp_path, config, "recreated")

    # the branch reset behind a tag: v2's commits leave, and so does v2
    repo.git("reset", "-q", "--hard", c2)
    assert not sync(warehouse, config).failed
    assert set(changes(warehouse)) == {c1, c2}
    assert set(deployments(warehouse)) == {"git:checkout:tag:v1"}
    assert stored(warehouse) == first_sync_of(tmp_path, config, "reset")

    # and a second sync, and --full, change nothing
    before = stored(warehouse)
    again = sync(warehouse, config).result("git")
    assert (again.records, again.new, again.updated) == (0, 0, 0)
    full = sync(warehouse, config, full=True).result("git")
    assert (full.new, full.updated) == (0, 0)
    assert stored(warehouse) == before


def test_a_branch_renamed_or_deleted_after_a_sync_fails_that_service_and_keeps_its_rows(
    sqlite_warehouse: Engine, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "checkout")
    c1 = repo.commit("c1", "2024-01-01T10:00:00+00:00")
    repo.tag("v1", "2024-01-01T11:00:00+00:00")
    config = config_for(tmp_path)
    assert not sync(sqlite_warehouse, config).failed
    before = stored(sqlite_warehouse)

    repo.git("branch", "-m", "main", "trunk")
    result = sync(sqlite_warehouse, config).result("git")
    assert result.errors == [
        f"git: checkout: branch 'main' not found in {repo.path} (its branches: trunk): check "
        "services[0].git.branch"
    ]
    assert stored(sqlite_warehouse) == before  # a failed sync removes nothing
    repo.git("checkout", "-q", "--detach")
    repo.git("branch", "-D", "trunk")
    assert sync(sqlite_warehouse, config).failed
    assert stored(sqlite_warehouse) == before

    # a detached HEAD is read with `branch: HEAD`; the same history: nothing new
    detached = sync(sqlite_warehouse, config_for(tmp_path, branch="HEAD"))
    assert not detached.failed and detached.result("git").new == 0
    assert set(changes(sqlite_warehouse)) == {c1}


# -- awkward locations -----------------------------------------------------------------


def test_a_folder_with_spaces_and_accents_and_a_linked_work_tree_are_read(
    sqlite_warehouse: Engine, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "my répo ü")
    c1 = repo.commit("c1", "2024-01-01T10:00:00+00:00")
    c2 = repo.commit("c2", "2024-01-02T10:00:00+00:00", path="dïr é/fïle one.txt")
    repo.tag("v1", "2024-01-02T11:00:00+00:00")
    repo.git("worktree", "add", "-q", str(tmp_path / "work tree"), "-b", "wt")
    w1 = Repo(tmp_path / "work tree", create=False).commit("w1", "2024-01-03T10:00:00+00:00")
    config = make_config(
        tmp_path,
        [
            {"name": "all", "git": {"path": "my répo ü", "deploy_tags": "v*"}},
            {"name": "dir", "git": {"path": "my répo ü", "paths": ["dïr é"]}},
            {"name": "wt", "git": {"path": "work tree", "branch": "wt"}},
        ],
    )
    summary = sync(sqlite_warehouse, config)
    assert not summary.failed and summary.result("git").warnings == []
    assert set(changes(sqlite_warehouse, "all")) == {c1, c2}
    assert set(changes(sqlite_warehouse, "dir")) == {c2}
    assert set(changes(sqlite_warehouse, "wt")) == {c1, c2, w1}
    assert deployments(sqlite_warehouse)["git:all:tag:v1"]["shipped"] == {c1, c2}


# -- commit metadata -------------------------------------------------------------------


def test_authors_and_subjects_in_latin_1_keep_their_letters(
    warehouse: Engine, tmp_path: Path
) -> None:
    """With i18n.commitEncoding, `git log` printed Latin-1 (its output encoding follows
    the commit encoding) and the letters were stored as U+FFFD."""
    repo = Repo(tmp_path / "checkout")
    repo.git("config", "i18n.commitEncoding", "ISO-8859-1")
    first = repo.commit("first", "2024-01-01T10:00:00+00:00")
    (repo.path / "a.txt").write_text("a\n", encoding="utf-8")
    repo.git("add", "-A")
    (tmp_path / "message").write_bytes("Café résumé".encode("latin-1"))
    env = {
        **os.environb,
        b"GIT_AUTHOR_NAME": "José Müller".encode("latin-1"),  # what the config says it is
        b"GIT_AUTHOR_EMAIL": b"",
        b"GIT_AUTHOR_DATE": b"2024-01-02T10:00:00+00:00",
        b"GIT_COMMITTER_DATE": b"2024-01-02T10:00:00+00:00",
    }
    subprocess.run(
        [b"git", b"-C", bytes(repo.path), b"commit", b"-q", b"-F", bytes(tmp_path / "message")],
        env=env,
        check=True,
    )
    declared = repo.head()
    assert (
        b"encoding ISO-8859-1"
        in subprocess.run(
            ["git", "-C", str(repo.path), "cat-file", "commit", declared],
            capture_output=True,
            check=True,
        ).stdout
    )
    # Latin-1 bytes with no `encoding` header (an old import): git passes the bytes on
    undeclared = raw_commit(
        repo,
        f"tree {repo.git('rev-parse', 'HEAD^{tree}')}\nparent {declared}\n"
        "author Zoë Ærø <zoe@example.com> 1704276000 +0000\n"
        "committer Zoë Ærø <zoe@example.com> 1704276000 +0000\n\nNaïve façade\n",
    )
    repo.git("update-ref", "refs/heads/main", undeclared)
    assert not sync(warehouse, config_for(tmp_path)).failed
    found = changes(warehouse)
    assert (found[declared]["author"], found[declared]["title"]) == (
        "José Müller <>",
        "Café résumé",
    )
    assert (found[undeclared]["author"], found[undeclared]["title"]) == (
        "Zoë Ærø <zoe@example.com>",
        "Naïve façade",
    )
    assert found[first]["author"] == "Alice Jones <alice@example.com>"
    full = sync(warehouse, config_for(tmp_path), full=True).result("git")
    assert (full.new, full.updated) == (0, 0)


def test_commit_times_git_cannot_give_as_dates_are_stored_readable(
    warehouse: Engine, tmp_path: Path
) -> None:
    """Before 1970 or malformed, git prints an empty time; after 9999 a 5-digit year.
    SQLite kept text no read could parse; PostgreSQL failed the sync at every run."""
    repo = Repo(tmp_path / "checkout")
    c0 = repo.commit("c0", "2024-01-01T00:00:00+00:00")
    tree = repo.git("rev-parse", "HEAD^{tree}")

    def odd(parent: str, author: str, committer: str, subject: str) -> str:
        return raw_commit(
            repo,
            f"tree {tree}\nparent {parent}\nauthor Old Timer <old@example.com> {author}\n"
            f"committer Alice Jones <alice@example.com> {committer}\n\n{subject}\n",
        )

    neither = odd(c0, "-5 +0000", "-5 +0000", "no readable time")
    before_1970 = odd(neither, "-100000000 +0000", "1704153600 +0000", "before 1970")
    malformed = odd(before_1970, "not-a-date +0000", "1704240000 +0000", "odd\x1fsubject")
    far = odd(malformed, "9999999999999 +0000", "1704326400 +0000", "far future")
    repo.git("update-ref", "refs/heads/main", far)
    repo.tag("v1", "2024-01-06T00:00:00+00:00")
    config = config_for(tmp_path)
    summary = sync(warehouse, config)
    assert not summary.failed, summary
    (warning,) = summary.result("git").warnings
    assert warning.startswith(
        "git: checkout: 4 commit(s) with a time git cannot give as a date (before 1970, "
        "malformed, or after 9999), e.g. "
    )
    found = changes(warehouse)  # readable: this raised ValueError on SQLite
    times = {sha: (row["committed_at"], row["committer_at"]) for sha, row in found.items()}
    assert times == {
        c0: (at("2024-01-01T00:00:00+00:00"), at("2024-01-01T00:00:00+00:00")),
        before_1970: (at("2024-01-02T00:00:00+00:00"), at("2024-01-02T00:00:00+00:00")),
        malformed: (at("2024-01-03T00:00:00+00:00"), at("2024-01-03T00:00:00+00:00")),
        far: (END_OF_9999, at("2024-01-04T00:00:00+00:00")),
        neither: (at("1970-01-01T00:00:00+00:00"), None),
    }
    assert found[malformed]["title"] == "odd\x1fsubject"
    assert deployments(warehouse)["git:checkout:tag:v1"]["shipped"] == set(found)
    assert sync(warehouse, config).result("git").records == 0
    full = sync(warehouse, config, full=True).result("git")
    assert (full.new, full.updated) == (0, 0)  # what stood in is stable


def test_a_deploy_tag_dated_after_9999_deploys_at_its_end_instead_of_failing_the_sync(
    warehouse: Engine, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "checkout")
    c1 = repo.commit("c1", "2024-01-01T00:00:00+00:00")
    repo.tag("v1", "2024-01-01T01:00:00+00:00")
    c2 = repo.commit("c2", "2024-01-02T00:00:00+00:00")
    repo.git("tag", "-a", "v2", "-m", "x", when="@9999999999999 +0000")
    config = config_for(tmp_path)
    summary = sync(warehouse, config)
    assert not summary.failed, summary
    assert summary.result("git").warnings == [
        f"git: checkout: tag v2: its time (9999999999999) is after the year 9999; it deploys "
        f"at {LATEST_TIME}"
    ]
    deployed = deployments(warehouse)
    assert deployed["git:checkout:tag:v1"]["shipped"] == {c1}
    assert deployed["git:checkout:tag:v2"]["deployed_at"] == END_OF_9999
    assert deployed["git:checkout:tag:v2"]["shipped"] == {c2}
    assert sync(warehouse, config).result("git").records == 0  # the tag is stored: not moved


def test_an_octopus_of_twenty_parents_and_odd_subjects(warehouse: Engine, tmp_path: Path) -> None:
    repo = Repo(tmp_path / "checkout")
    c0 = repo.commit("c0", "2024-01-01T00:00:00+00:00")
    repo.tag("v0", "2024-01-01T01:00:00+00:00")
    tips = []
    for n in range(19):
        repo.git("checkout", "-q", "-b", f"b{n}", c0)
        tips.append(repo.commit(f"b{n}", f"2024-01-02T00:{n:02}:00+00:00"))
    repo.git("checkout", "-q", "main")
    (repo.path / "e.txt").write_text("e\n", encoding="utf-8")
    repo.git("add", "-A")
    repo.git("commit", "-q", "--allow-empty-message", "-m", "", when="2024-01-03T00:00:00+00:00")
    empty = repo.head()
    long = repo.commit("L" * 10_240, "2024-01-03T01:00:00+00:00", path="long.txt")
    repo.git(
        "merge",
        "-q",
        "-m",
        "octopus",
        *[f"b{n}" for n in range(19)],
        when="2024-01-04T00:00:00+00:00",
    )
    assert len(repo.git("log", "-1", "--format=%P").split()) == 20
    repo.tag("v1", "2024-01-05T00:00:00+00:00")
    assert not sync(warehouse, config_for(tmp_path)).failed
    found = changes(warehouse)
    assert set(found) == {c0, empty, long, *tips}  # the octopus is no change
    assert (found[empty]["title"], len(found[long]["title"])) == ("", 10_240)
    assert deployments(warehouse)["git:checkout:tag:v1"]["shipped"] == {empty, long, *tips}


def test_authors_are_stored_after_the_mailmap_and_another_mailmap_reads_again(
    sqlite_warehouse: Engine, tmp_path: Path
) -> None:
    """Chosen (the contract is silent): authors as `git log` and `git shortlog` show them."""
    repo = Repo(tmp_path / "checkout")
    laptop = repo.commit("laptop", "2024-01-01T00:00:00+00:00", author="al <al@laptop>")
    config = config_for(tmp_path)
    assert not sync(sqlite_warehouse, config).failed
    assert changes(sqlite_warehouse)[laptop]["author"] == "al <al@laptop>"
    (repo.path / ".mailmap").write_text(
        "Alice Jones <alice@example.com> al <al@laptop>\n", encoding="utf-8"
    )
    mapped = sync(sqlite_warehouse, config).result("git")
    assert (mapped.records, mapped.updated) == (1, 1)  # no new commit, yet read again
    assert changes(sqlite_warehouse)[laptop]["author"] == "Alice Jones <alice@example.com>"
    assert sync(sqlite_warehouse, config).result("git").records == 0
    (repo.path / ".mailmap").unlink()
    assert not sync(sqlite_warehouse, config).failed
    assert changes(sqlite_warehouse)[laptop]["author"] == "al <al@laptop>"


def test_a_bare_clones_mailmap_is_its_heads_and_another_one_reads_again(
    sqlite_warehouse: Engine, tmp_path: Path
) -> None:
    """A bare clone (a mirror) has no work tree: git reads HEAD's .mailmap there."""
    repo = Repo(tmp_path / "work")
    laptop = repo.commit("laptop", "2024-01-01T00:00:00+00:00", author="al <al@laptop>")
    bare = tmp_path / "checkout"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo.path), str(bare)], check=True)
    config = config_for(tmp_path)
    assert not sync(sqlite_warehouse, config).failed
    assert changes(sqlite_warehouse)[laptop]["author"] == "al <al@laptop>"

    (repo.path / ".mailmap").write_text(
        "Alice Jones <alice@example.com> al <al@laptop>\n", encoding="utf-8"
    )
    repo.git("add", ".mailmap")
    mapping = repo.commit("mailmap", "2024-01-02T00:00:00+00:00", author="al <al@laptop>")
    subprocess.run(["git", "-C", str(bare), "fetch", "-q", str(repo.path), "main:main"], check=True)
    mapped = sync(sqlite_warehouse, config).result("git")
    assert mapped.errors == [] and mapped.updated == 1  # the old commit read again
    assert {changes(sqlite_warehouse)[sha]["author"] for sha in (laptop, mapping)} == {
        "Alice Jones <alice@example.com>"
    }
    assert sync(sqlite_warehouse, config).result("git").records == 0


# -- monorepo paths --------------------------------------------------------------------


def test_paths_follow_git_pathspecs_and_a_renamed_folder_is_not_followed(
    sqlite_warehouse: Engine, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "mono")
    a1 = repo.commit("a1", "2024-01-01T00:00:00+00:00", path="old/a.py")
    repo.git("mv", "old", "new")
    repo.git("commit", "-q", "-m", "rename", when="2024-01-02T00:00:00+00:00")
    renamed = repo.head()
    a2 = repo.commit("a2", "2024-01-03T00:00:00+00:00", path="new/b.py")
    repo.git("checkout", "-q", "-b", "side")
    s1 = repo.commit("s1", "2024-01-04T00:00:00+00:00", path="new/s.py")
    repo.git("checkout", "-q", "main")
    repo.commit("other", "2024-01-05T00:00:00+00:00", path="README.md")
    repo.git("merge", "-q", "--no-ff", "-m", "merge side", "side", when="2024-01-06T00:00:00+00:00")
    spellings = [["new"], ["./new"], ["new/"], ["new/*.py"], ["new", "old"]]
    config = make_config(
        tmp_path,
        [{"name": f"s{n}", "git": {"path": "mono", "paths": p}} for n, p in enumerate(spellings)],
    )
    summary = sync(sqlite_warehouse, config)
    assert not summary.failed and summary.result("git").warnings == []
    for n in range(4):  # the commits before the rename touched old/ only
        assert set(changes(sqlite_warehouse, f"s{n}")) == {renamed, a2, s1}, spellings[n]
    assert set(changes(sqlite_warehouse, "s4")) == {a1, renamed, a2, s1}


# -- deploy tags -----------------------------------------------------------------------


def test_a_deploy_tags_glob_that_finds_no_tag_on_the_branch_is_a_warning(
    sqlite_warehouse: Engine, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "checkout")
    repo.commit("c1", "2024-01-01T00:00:00+00:00")
    repo.tag("v1.0", "2024-01-01T01:00:00+00:00")
    repo.tag("v1.1", "2024-01-01T02:00:00+00:00", annotated=False)
    repo.git("checkout", "-q", "-b", "hotfix")
    repo.commit("h1", "2024-01-02T00:00:00+00:00")
    repo.tag("release-1", "2024-01-02T01:00:00+00:00")
    repo.tag("zz", "2024-01-02T01:00:00+00:00")
    repo.git("checkout", "-q", "main")
    Repo(tmp_path / "untagged").commit("u1", "2024-01-01T00:00:00+00:00")
    config = make_config(
        tmp_path,
        [
            {"name": "typo", "git": {"path": "checkout", "deploy_tags": "V*"}},
            {"name": "hotfix", "git": {"path": "checkout", "deploy_tags": "release-*"}},
            {"name": "fresh", "git": {"path": "untagged", "deploy_tags": "v*"}},
            {"name": "fine", "git": {"path": "checkout", "deploy_tags": "v*"}},
        ],
    )
    summary = sync(sqlite_warehouse, config)
    assert not summary.failed
    assert summary.result("git").warnings == [
        "git: typo: services[0].git.deploy_tags 'V*' matches none of the repository's tags "
        "(release-1, v1.0, v1.1, …), so the service has no deployments; check it (a glob of "
        "tag names, e.g. 'v*')",
        "git: hotfix: services[1].git.deploy_tags 'release-*' matches 1 tag(s), none of them "
        "on main, so the service has no deployments; check it (a glob of tag names, e.g. 'v*')",
        "git: fresh: services[2].git.deploy_tags 'v*' matches no tag: the repository has none, "
        "so the service has no deployments; check it (a glob of tag names, e.g. 'v*')",
    ]
    assert {key.split(":")[1] for key in deployments(sqlite_warehouse)} == {"fine"}
    # only after a full read, as for paths
    assert sync(sqlite_warehouse, config).result("git").warnings == []
    assert len(sync(sqlite_warehouse, config, full=True).result("git").warnings) == 3


def test_deploy_tags_may_list_several_globs(sqlite_warehouse: Engine, tmp_path: Path) -> None:
    """A repository whose releases were tagged `v1.x`, then `release-2.x`: both deploy."""
    repo = Repo(tmp_path / "checkout")
    repo.commit("c1", "2024-01-01T00:00:00+00:00")
    repo.tag("v1.0", "2024-01-01T01:00:00+00:00")
    repo.commit("c2", "2024-01-02T00:00:00+00:00")
    repo.tag("release-2.0", "2024-01-02T01:00:00+00:00", annotated=False)
    repo.commit("c3", "2024-01-03T00:00:00+00:00")
    repo.tag("nightly-3", "2024-01-03T01:00:00+00:00")
    globs = ["v*", "release-*"]
    config = make_config(
        tmp_path, [{"name": "api", "git": {"path": "checkout", "deploy_tags": globs}}]
    )
    summary = sync(sqlite_warehouse, config)
    assert not summary.failed and summary.result("git").warnings == []
    assert sorted(deployments(sqlite_warehouse)) == [
        "git:api:tag:release-2.0",
        "git:api:tag:v1.0",
    ]
    # nightly-3's commit is not deployed yet; the second sync adds nothing
    again = sync(sqlite_warehouse, config).result("git")
    assert (again.new, again.updated) == (0, 0)


# -- concurrency -----------------------------------------------------------------------


def test_a_second_poise_sync_at_once_is_refused_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = Repo(tmp_path / "checkout")
    c1 = repo.commit("c1", "2024-01-01T00:00:00+00:00")
    config = tmp_path / "poise.yaml"
    document = {
        "teams": [{"name": "payments"}],
        "services": [{"name": "checkout", "team": "payments", "git": {"path": "checkout"}}],
    }
    config.write_text(json.dumps(document), encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'poise.db'}"
    engine = open_warehouse(url)
    try:
        with sync_lock(engine, url):  # another `poise sync` holds the warehouse
            assert main(["sync", "--db", url, "--config", str(config)]) == 1
            err = capsys.readouterr().err
            assert f"poise: another poise sync is running against {url} (since " in err
            assert changes(engine) == {}
            with engine.connect() as connection:
                assert read_state(connection, "git", "history", "checkout").bookmark is None
        assert main(["sync", "--db", url, "--config", str(config)]) == 0
        assert set(changes(engine)) == {c1}
    finally:
        engine.dispose()
