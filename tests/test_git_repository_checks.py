"""The Git collector refuses a git.path below a repository's root, and warns about a
git.paths entry that touches no commit; real repositories built in a temp folder."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from collector_checks import Killed
from sqlalchemy import Engine
from test_git_collector import Repo, changes, make_config, sync

from collectors import git as git_module
from collectors.runner import SyncSummary
from poise.cli import main
from poise.warehouse.sync_state import read_state


@pytest.fixture
def mono(tmp_path: Path) -> dict[str, str]:
    """A monorepo: services/api and services/web, and a README at the root."""
    repo = Repo(tmp_path / "mono")
    return {
        "api": repo.commit("api", "2024-02-01T10:00:00+00:00", path="services/api/a.py"),
        "web": repo.commit("web", "2024-02-01T11:00:00+00:00", path="services/web/w.py"),
        "readme": repo.commit("readme", "2024-02-01T12:00:00+00:00", path="README.md"),
    }


def test_a_path_below_the_repository_root_is_refused(
    sqlite_warehouse: Engine, tmp_path: Path, mono: dict[str, str]
) -> None:
    config = make_config(
        tmp_path,
        [
            {"name": "api", "git": {"path": "mono/services/api"}},
            {"name": "web", "git": {"path": "mono/services", "paths": ["web", "./shared/"]}},
            {"name": "whole", "git": {"path": "mono"}},
        ],
    )
    result = sync(sqlite_warehouse, config).result("git")
    root = tmp_path / "mono"
    assert result.errors == [
        f"git: api: services[0].git.path {root / 'services/api'} is inside the repository "
        f"{root}: point services[0].git.path at the repository and list services/api in "
        "services[0].git.paths",
        # its paths were relative to the folder: the message gives them from the root
        f"git: web: services[1].git.path {root / 'services'} is inside the repository "
        f"{root}: point services[1].git.path at the repository and list services/web, "
        "services/shared in services[1].git.paths",
    ]
    # nothing of the enclosing repository was collected for them; the root is fine
    assert changes(sqlite_warehouse, "api") == {} and changes(sqlite_warehouse, "web") == {}
    assert set(changes(sqlite_warehouse, "whole")) == set(mono.values())
    with sqlite_warehouse.connect() as connection:
        assert read_state(connection, "git", "history", "api").last_error == result.errors[0]


def test_the_check_costs_no_extra_git_process(
    sqlite_warehouse: Engine, tmp_path: Path, mono: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []
    real_run = subprocess.run

    def counting_run(command: list[str], *args: Any, **kwargs: Any) -> Any:
        calls.append(command)
        return real_run(command, *args, **kwargs)

    monkeypatch.setattr(git_module.subprocess, "run", counting_run)
    config = make_config(tmp_path, [{"name": "whole", "git": {"path": "mono"}}])
    assert not sync(sqlite_warehouse, config).failed
    rev_parses = [command for command in calls if "rev-parse" in command]
    assert len(rev_parses) == 1 and "--show-prefix" in rev_parses[0]


def test_a_symlink_to_a_subfolder_names_the_real_repository(
    sqlite_warehouse: Engine, tmp_path: Path, mono: dict[str, str]
) -> None:
    (tmp_path / "link").symlink_to(tmp_path / "mono" / "services")
    (tmp_path / "root-link").symlink_to(tmp_path / "mono")
    config = make_config(
        tmp_path,
        [
            {"name": "api", "git": {"path": "link"}},
            {"name": "whole", "git": {"path": "root-link"}},
        ],
    )
    (error,) = sync(sqlite_warehouse, config).result("git").errors
    assert f"is inside the repository {tmp_path / 'mono'}: " in error
    assert "list services in services[0].git.paths" in error
    assert set(changes(sqlite_warehouse, "whole")) == set(mono.values())


def test_a_bare_clone_is_still_read(
    sqlite_warehouse: Engine, tmp_path: Path, mono: dict[str, str]
) -> None:
    # --show-toplevel fails in a bare repository; --show-prefix prints an empty line there
    subprocess.run(
        ["git", "clone", "-q", "--bare", str(tmp_path / "mono"), str(tmp_path / "mono.git")],
        check=True,
    )
    config = make_config(tmp_path, [{"name": "whole", "git": {"path": "mono.git"}}])
    assert not sync(sqlite_warehouse, config).failed
    assert set(changes(sqlite_warehouse, "whole")) == set(mono.values())


def test_a_wrong_branch_below_the_root_names_the_path_first(
    sqlite_warehouse: Engine, tmp_path: Path, mono: dict[str, str]
) -> None:
    config = make_config(
        tmp_path, [{"name": "api", "git": {"path": "mono/services", "branch": "mian"}}]
    )
    (error,) = sync(sqlite_warehouse, config).result("git").errors
    assert "is inside the repository" in error


def path_warnings(summary: SyncSummary) -> list[str]:
    """The warnings the sync's summary lists under the git source."""
    return summary.result("git").warnings


def test_a_path_that_touches_no_commit_is_a_warning_after_a_full_read(
    sqlite_warehouse: Engine,
    tmp_path: Path,
    mono: dict[str, str],
) -> None:
    config = make_config(
        tmp_path,
        [
            {"name": "api", "git": {"path": "mono", "paths": ["services/api", "servces/web"]}},
            {"name": "typo", "git": {"path": "mono", "paths": ["servces/api"]}},
            {"name": "fine", "git": {"path": "mono", "paths": ["services/web/", "README.md"]}},
            {"name": "glob", "git": {"path": "mono", "paths": ["*.md", "services/*/a.py"]}},
        ],
    )
    summary = sync(sqlite_warehouse, config)
    assert not summary.failed  # a warning, not a failure: the rest was collected
    assert path_warnings(summary) == [
        "git: api: services[0].git.paths: 'servces/web' touches no commit on main; check it "
        "(paths are relative to the repository's root)",
        "git: typo: services[1].git.paths: 'servces/api' touches no commit on main; check it "
        "(paths are relative to the repository's root)",
    ]
    assert set(changes(sqlite_warehouse, "api")) == {mono["api"]}
    assert changes(sqlite_warehouse, "typo") == {}
    assert set(changes(sqlite_warehouse, "glob")) == {mono["api"], mono["readme"]}

    # an incremental sync reads only what is new: no full read, no warning again
    Repo(tmp_path / "mono", create=False).commit(
        "more", "2024-02-02T10:00:00+00:00", path="services/api/b.py"
    )
    again = sync(sqlite_warehouse, config)
    assert not again.failed
    assert path_warnings(again) == []
    # --full reads everything again, and says it again
    assert len(path_warnings(sync(sqlite_warehouse, config, full=True))) == 2


def test_poise_sync_prints_the_path_warning_and_the_path_error(
    tmp_path: Path, mono: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "poise.yaml"
    config.write_text(
        "teams: [{name: payments}]\n"
        "services:\n"
        "  - {name: api, team: payments, git: {path: mono, paths: [services/apj]}}\n",
        encoding="utf-8",
    )
    database = f"sqlite:///{tmp_path / 'poise.db'}"
    assert main(["sync", "--db", database, "--config", str(config)]) == 0
    err = " ".join(capsys.readouterr().err.split())  # the log handler wraps long lines
    assert (
        "poise: warning: git: api: services[0].git.paths: 'services/apj' touches no commit "
        "on main" in err
    )

    config.write_text(
        "teams: [{name: payments}]\n"
        "services:\n"
        "  - {name: api, team: payments, git: {path: mono/services/api}}\n",
        encoding="utf-8",
    )
    assert main(["sync", "--db", database, "--config", str(config)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert (
        f"poise: git: api: services[0].git.path {tmp_path / 'mono/services/api'} is inside "
        f"the repository {tmp_path / 'mono'}: point services[0].git.path at the repository "
        "and list services/api in services[0].git.paths"
    ) in lines


def test_a_shallow_clone_is_said_and_read_whole_once_deepened(
    sqlite_warehouse: Engine, tmp_path: Path
) -> None:
    """A CI checkout (`clone --depth`) holds only the newest commits: the sync says so on
    every run, and once the clone is unshallowed (same head, same tags) it reads the older
    commits; a sync killed during that read resumes it."""
    origin = Repo(tmp_path / "origin")
    shas = [origin.commit(f"c{n}", f"2024-03-0{n}T10:00:00+00:00") for n in range(1, 6)]
    origin.tag("v1", "2024-03-05T12:00:00+00:00")
    clone = tmp_path / "ci"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "2", f"file://{origin.path}", str(clone)], check=True
    )
    config = make_config(tmp_path, [{"name": "api", "git": {"path": "ci", "deploy_tags": "v*"}}])
    first = sync(sqlite_warehouse, config)
    assert not first.failed
    (warning,) = path_warnings(first)
    assert warning == (
        f"git: api: {clone} is a shallow clone: the commits before its cut are missing, so "
        f"changes and lead times are incomplete; run `git -C {clone} fetch --unshallow` (or "
        "point services[0].git.path at a full clone)"
    )
    assert set(changes(sqlite_warehouse, "api")) == set(shas[-2:])
    again = sync(sqlite_warehouse, config)
    assert (again.result("git").records, len(path_warnings(again))) == (0, 1)

    subprocess.run(["git", "-C", str(clone), "fetch", "-q", "--unshallow"], check=True)

    def kill(stream: str, scope: str, bookmark: Any) -> None:
        raise Killed

    with pytest.raises(Killed):
        sync(sqlite_warehouse, config, checkpoint_every=2, on_checkpoint=kill)
    deepened = sync(sqlite_warehouse, config, checkpoint_every=2)
    assert not deepened.failed and path_warnings(deepened) == []
    assert set(changes(sqlite_warehouse, "api")) == set(shas)
    with sqlite_warehouse.connect() as connection:
        assert "shallow" not in read_state(connection, "git", "history", "api").bookmark
    settled = sync(sqlite_warehouse, config).result("git")
    assert (settled.records, settled.new, settled.updated) == (0, 0, 0)


def test_a_work_tree_of_a_shallow_clone_finds_the_cut_it_shares(
    sqlite_warehouse: Engine, tmp_path: Path
) -> None:
    """A linked work tree keeps no `shallow` file of its own: the cut is its repository's,
    so deepening that repository is seen from the work tree too."""
    origin = Repo(tmp_path / "origin")
    shas = [origin.commit(f"c{n}", f"2024-03-0{n}T10:00:00+00:00") for n in range(1, 6)]
    clone = tmp_path / "ci"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "2", f"file://{origin.path}", str(clone)], check=True
    )
    subprocess.run(["git", "-C", str(clone), "worktree", "add", "-q", "../wt", "HEAD"], check=True)
    config = make_config(tmp_path, [{"name": "api", "git": {"path": "wt"}}])
    assert len(path_warnings(sync(sqlite_warehouse, config))) == 1
    with sqlite_warehouse.connect() as connection:
        cut = read_state(connection, "git", "history", "api").bookmark["shallow"]
    assert cut == [shas[-2]]
    subprocess.run(["git", "-C", str(clone), "fetch", "-q", "--deepen", "1"], check=True)
    deeper = sync(sqlite_warehouse, config)
    assert len(path_warnings(deeper)) == 1 and deeper.result("git").new == 1
    assert set(changes(sqlite_warehouse, "api")) == set(shas[-3:])


def test_an_empty_repository_and_a_remote_only_branch_say_what_would_work(
    sqlite_warehouse: Engine, tmp_path: Path
) -> None:
    Repo(tmp_path / "empty")
    origin = Repo(tmp_path / "origin")
    first = origin.commit("c1", "2024-03-01T10:00:00+00:00")
    clone = Repo(tmp_path / "ci")
    clone.commit("elsewhere", "2024-03-02T10:00:00+00:00")  # its own branch is main
    clone.git("remote", "add", "upstream", str(origin.path))
    origin.git("branch", "-m", "main", "trunk")
    clone.git("fetch", "-q", "upstream")
    config = make_config(
        tmp_path,
        [
            {"name": "fresh", "git": {"path": "empty"}},
            {"name": "api", "git": {"path": "ci", "branch": "trunk"}},
        ],
    )
    assert sync(sqlite_warehouse, config).result("git").errors == [
        f"git: fresh: {tmp_path / 'empty'} has no commit yet: commit or fetch its history, "
        "or check services[0].git.path",
        f"git: api: branch 'trunk' not found in {tmp_path / 'ci'}, only 'upstream/trunk': set "
        "services[1].git.branch to 'upstream/trunk', or check out 'trunk' there",
    ]
    # and what it proposes works
    config = make_config(
        tmp_path, [{"name": "api", "git": {"path": "ci", "branch": "upstream/trunk"}}]
    )
    assert not sync(sqlite_warehouse, config).failed
    assert set(changes(sqlite_warehouse, "api")) == {first}


def test_a_repository_git_refuses_for_its_owner_says_so(
    sqlite_warehouse: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clone owned by another user (a mounted volume, a container's checkout): git's
    safe.directory refusal, not 'not a git repository'."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("needs root to hand the clone to another user")
    # whatever safe.directory this machine's own git config trusts
    (tmp_path / "gitconfig").write_text("", encoding="utf-8")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    repo = Repo(tmp_path / "theirs")
    repo.commit("c1", "2024-03-01T10:00:00+00:00")
    subprocess.run(["chown", "-R", "65534", str(repo.path)], check=True)
    config = make_config(tmp_path, [{"name": "api", "git": {"path": "theirs"}}])
    assert sync(sqlite_warehouse, config).result("git").errors == [
        f"git: api: git refuses to read {repo.path}: it belongs to another user; if you trust "
        f"it, run `git config --global --add safe.directory {repo.path}` as the user that runs "
        "poise"
    ]
