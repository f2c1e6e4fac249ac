"""The Local Git collector against real repositories built in a temp folder."""

from __future__ import annotations

import os
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from collectors.git import GitSource
from collectors.runner import SyncSummary, run_sync
from poise.catalog import apply_config
from poise.cli import main
from poise.config import PoiseConfig, parse_config
from poise.warehouse import open_warehouse, schema
from poise.warehouse.sync_state import read_state


class Repo:
    """A git repository whose every date is chosen by the test."""

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = path
        if not create:
            return
        path.mkdir(parents=True)
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.name", "Alice Jones")
        self.git("config", "user.email", "alice@example.com")
        self.git("config", "commit.gpgsign", "false")
        self.git("config", "tag.gpgsign", "false")

    def git(
        self, *args: str, when: str = "2024-01-01T00:00:00+00:00", author_when: str | None = None
    ) -> str:
        env = {
            **os.environ,
            "GIT_AUTHOR_DATE": author_when or when,
            "GIT_COMMITTER_DATE": when,
        }
        done = subprocess.run(
            ["git", "-C", str(self.path), *args],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    def commit(
        self,
        message: str,
        when: str,
        *,
        path: str | None = None,
        author_when: str | None = None,
        author: str | None = None,
    ) -> str:
        target = self.path / (path or f"{message.replace(' ', '_')}.txt")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(message + "\n", encoding="utf-8")
        self.git("add", "-A")
        extra = ["--author", author] if author else []
        self.git("commit", "-q", "-m", message, *extra, when=when, author_when=author_when)
        return self.head()

    def head(self, ref: str = "HEAD") -> str:
        return self.git("rev-parse", ref)

    def tag(self, name: str, when: str, *, annotated: bool = True, ref: str = "HEAD") -> None:
        if annotated:
            self.git("tag", "-a", name, "-m", f"release {name}", ref, when=when)
        else:
            self.git("tag", name, ref)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def make_config(tmp_path: Path, services: list[dict[str, Any]]) -> PoiseConfig:
    return parse_config(
        {
            "teams": [{"name": "payments"}],
            "services": [{"team": "payments", **service} for service in services],
        },
        base_dir=tmp_path,
    )


def sync(engine: Engine, config: PoiseConfig, **kwargs: Any) -> SyncSummary:
    apply_config(engine, config)
    return run_sync(engine, config, registry={"git": GitSource}, hooks=[], **kwargs)


def changes(engine: Engine, service: str | None = None) -> dict[str, dict[str, Any]]:
    query = select(schema.changes)
    if service:
        query = query.where(schema.changes.c.service == service)
    with engine.connect() as connection:
        return {row["sha"]: dict(row) for row in connection.execute(query).mappings()}


def deployments(engine: Engine) -> dict[str, dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(select(schema.deployments)).mappings().all()
        links = connection.execute(select(schema.deployment_changes)).all()
    found = {row["id"]: {**row, "shipped": set()} for row in rows}
    for deployment_id, change_id in links:
        found[deployment_id]["shipped"].add(change_id.rsplit(":", 1)[1])
    return found


@pytest.fixture
def history(tmp_path: Path) -> dict[str, str]:
    """main: c1 [v1] — merge of feature (f1, f2) beside c2 — squash of s1+s2 [v2] — c3.

    Plus a tag on an unmerged branch and a tag that does not match deploy_tags.
    """
    repo = Repo(tmp_path / "checkout")
    shas: dict[str, str] = {}
    shas["c1"] = repo.commit("c1", "2024-01-01T10:00:00+02:00")
    repo.tag("v1.0", "2024-01-02T09:00:00+00:00")
    repo.git("checkout", "-q", "-b", "feature")
    shas["f1"] = repo.commit(
        "f1", "2024-01-03T10:00:00-05:00", author="Bob Smith <bob@example.com>"
    )
    shas["f2"] = repo.commit("f2", "2024-01-03T11:00:00-05:00")
    repo.git("checkout", "-q", "main")
    shas["c2"] = repo.commit("c2", "2024-01-04T10:00:00+00:00")
    repo.git(
        "merge", "-q", "--no-ff", "-m", "Merge feature", "feature", when="2024-01-05T10:00:00+00:00"
    )
    shas["m1"] = repo.head()
    repo.git("checkout", "-q", "-b", "squashme")
    shas["s1"] = repo.commit("s1", "2024-01-06T10:00:00+00:00")
    shas["s2"] = repo.commit("s2", "2024-01-06T11:00:00+00:00")
    repo.git("checkout", "-q", "main")
    repo.git("merge", "-q", "--squash", "squashme")
    repo.git("commit", "-q", "-m", "Squashed s1+s2", when="2024-01-07T10:00:00+00:00")
    shas["sq"] = repo.head()
    repo.tag("v1.1", "2024-01-07T12:00:00+00:00", annotated=False)  # committer date of sq
    shas["c3"] = repo.commit("c3", "2024-01-08T10:00:00+00:00")
    repo.git("checkout", "-q", "-b", "side", shas["c2"])
    shas["x1"] = repo.commit("x1", "2024-01-09T10:00:00+00:00")
    repo.tag("v9.9-unmerged", "2024-01-09T11:00:00+00:00")
    repo.git("checkout", "-q", "main")
    repo.tag("nightly-1", "2024-01-08T12:00:00+00:00")
    return shas


def checkout_config(tmp_path: Path, **git: Any) -> PoiseConfig:
    location = {"path": "checkout", "branch": "main", "deploy_tags": "v*", **git}
    return make_config(tmp_path, [{"name": "checkout", "git": location}])


def test_commits_merges_squashes_and_tags_become_changes_and_deployments(
    warehouse: Engine, tmp_path: Path, history: dict[str, str]
) -> None:
    summary = sync(warehouse, checkout_config(tmp_path))
    assert not summary.failed, summary
    found = changes(warehouse)
    names = {sha: name for name, sha in history.items()}
    assert {names[sha] for sha in found} == {"c1", "f1", "f2", "c2", "sq", "c3"}
    f1 = found[history["f1"]]
    assert f1["id"] == f"git:checkout:{history['f1']}"
    assert f1["committed_at"] == at("2024-01-03T10:00:00-05:00")  # author time, in UTC
    assert f1["committer_at"] == at("2024-01-03T10:00:00-05:00")
    assert f1["parents"] == history["c1"]
    assert found[history["c1"]]["parents"] == ""  # the root commit: no parent
    assert found[history["sq"]]["parents"] == history["m1"]  # a squash: one ordinary parent
    assert f1["author"] == "Bob Smith <bob@example.com>" and f1["title"] == "f1"
    # lineage is source + sha: the clone itself is the raw data, so no raw payload is kept
    assert f1["source"] == "git" and f1["source_id"] == history["f1"] and f1["raw_id"] is None

    deployed = deployments(warehouse)
    assert set(deployed) == {"git:checkout:tag:v1.0", "git:checkout:tag:v1.1"}
    v1, v11 = deployed["git:checkout:tag:v1.0"], deployed["git:checkout:tag:v1.1"]
    assert v1["deployed_at"] == at("2024-01-02T09:00:00+00:00")  # tagger date
    assert v11["deployed_at"] == at("2024-01-07T10:00:00+00:00")  # commit's committer date
    assert (v1["environment"], v1["status"], v1["sha"]) == ("production", "success", history["c1"])
    assert v1["shipped"] == {history["c1"]}
    assert v11["shipped"] == {history[n] for n in ("f1", "f2", "c2", "sq")}

    with warehouse.connect() as connection:
        repository = connection.execute(select(schema.repositories)).mappings().one()
        raw = connection.execute(select(schema.raw_payloads)).mappings().all()
        state = read_state(connection, "git", "history", "checkout")
    assert repository["id"] == "git:checkout" and repository["branch"] == "main"
    assert raw == []
    assert state.bookmark["head"] == history["c3"] and "pending" not in state.bookmark
    assert state.last_error is None


def test_new_commits_and_a_new_tag_are_read_incrementally(
    warehouse: Engine, tmp_path: Path, history: dict[str, str]
) -> None:
    config = checkout_config(tmp_path)
    sync(warehouse, config)
    repo = Repo(tmp_path / "checkout", create=False)
    c4 = repo.commit("c4", "2024-01-10T10:00:00+00:00")
    only_commits = sync(warehouse, config).result("git")
    assert only_commits.records == 1 and only_commits.new == 1
    repo.tag("v1.2", "2024-01-11T10:00:00+00:00")
    tagged = sync(warehouse, config).result("git")
    assert tagged.records == 2  # c3 and c4: everything no stored tag contains
    assert deployments(warehouse)["git:checkout:tag:v1.2"]["shipped"] == {history["c3"], c4}
    assert len(changes(warehouse)) == 7
    # A deploy tag on a side branch counts once the branch is merged, shipping what it brought.
    repo.git("merge", "-q", "--no-ff", "-m", "Merge side", "side", when="2024-01-12T10:00:00+00:00")
    assert not sync(warehouse, config).failed
    late = deployments(warehouse)["git:checkout:tag:v9.9-unmerged"]
    assert late["shipped"] == {history["x1"]}
    assert late["deployed_at"] == at("2024-01-09T11:00:00+00:00")


@pytest.mark.parametrize("full", [False, True], ids=["incremental", "full"])
def test_a_second_sync_adds_nothing(
    warehouse: Engine, tmp_path: Path, history: dict[str, str], full: bool
) -> None:
    config = checkout_config(tmp_path)
    sync(warehouse, config)
    before = (changes(warehouse), deployments(warehouse))
    again = sync(warehouse, config, full=full).result("git")
    assert (again.new, again.updated) == (0, 0)
    # incremental: nothing read at all; --full: everything read again, all unchanged
    assert (again.records, again.unchanged) == ((7, 9) if full else (0, 0))
    assert (changes(warehouse), deployments(warehouse)) == before


def test_force_push_rereads_and_drops_what_is_no_longer_on_the_branch(
    warehouse: Engine, tmp_path: Path, history: dict[str, str]
) -> None:
    config = checkout_config(tmp_path)
    sync(warehouse, config)
    repo = Repo(tmp_path / "checkout", create=False)
    repo.git("reset", "-q", "--hard", history["m1"])
    repo.git("tag", "-d", "v1.1")
    c5 = repo.commit("c5", "2024-01-12T10:00:00+00:00")
    result = sync(warehouse, config)
    assert not result.failed
    names = {sha: name for name, sha in history.items()} | {c5: "c5"}
    assert {names[sha] for sha in changes(warehouse)} == {"c1", "f1", "f2", "c2", "c5"}
    assert set(deployments(warehouse)) == {"git:checkout:tag:v1.0"}


def test_monorepo_services_see_only_their_paths(warehouse: Engine, tmp_path: Path) -> None:
    repo = Repo(tmp_path / "mono")
    api1 = repo.commit("api one", "2024-02-01T10:00:00+00:00", path="services/api/a.py")
    web1 = repo.commit("web one", "2024-02-01T11:00:00+00:00", path="services/web/w.py")
    repo.tag("api-v1", "2024-02-01T12:00:00+00:00")
    repo.tag("web-v1", "2024-02-01T12:00:00+00:00")
    (repo.path / "services/api/b.py").write_text("b\n")
    (repo.path / "services/web/b.py").write_text("b\n")
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "both", when="2024-02-02T10:00:00+00:00")
    both = repo.head()
    repo.git("checkout", "-q", "-b", "feature")
    feature_api = repo.commit("api feature", "2024-02-03T10:00:00+00:00", path="services/api/f.py")
    repo.git("checkout", "-q", "main")
    docs = repo.commit("docs", "2024-02-03T11:00:00+00:00", path="README.md")
    repo.git(
        "merge",
        "-q",
        "--no-ff",
        "-m",
        "Merge api feature",
        "feature",
        when="2024-02-04T10:00:00+00:00",
    )
    repo.tag("api-v2", "2024-02-04T12:00:00+00:00")
    config = make_config(
        tmp_path,
        [
            {
                "name": "api",
                "git": {"path": "mono", "deploy_tags": "api-v*", "paths": ["services/api"]},
            },
            {
                "name": "web",
                "git": {"path": "mono", "deploy_tags": "web-v*", "paths": ["services/web/"]},
            },
        ],
    )
    assert not sync(warehouse, config).failed
    assert set(changes(warehouse, "api")) == {api1, both, feature_api}
    assert set(changes(warehouse, "web")) == {web1, both}
    assert docs not in changes(warehouse)
    deployed = deployments(warehouse)
    assert deployed["git:api:tag:api-v1"]["shipped"] == {api1}
    assert deployed["git:api:tag:api-v2"]["shipped"] == {both, feature_api}
    assert deployed["git:web:tag:web-v1"]["shipped"] == {web1}
    assert set(deployed) == {"git:api:tag:api-v1", "git:api:tag:api-v2", "git:web:tag:web-v1"}


def test_an_author_clock_in_the_future_is_stored_as_it_is(
    warehouse: Engine, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "checkout")
    skewed = repo.commit(
        "skewed clock", "2024-03-01T10:00:00+00:00", author_when="2031-06-01T08:00:00+09:00"
    )
    repo.tag("v1", "2024-03-01T11:00:00+00:00")
    assert not sync(warehouse, checkout_config(tmp_path)).failed
    stored = changes(warehouse)[skewed]
    assert stored["committed_at"] == at("2031-06-01T08:00:00+09:00")  # the author's clock
    assert stored["committer_at"] == at("2024-03-01T10:00:00+00:00")  # the committer's
    assert deployments(warehouse)["git:checkout:tag:v1"]["shipped"] == {skewed}


def test_control_characters_in_a_subject_or_an_author_are_kept_as_they_are(
    warehouse: Engine, tmp_path: Path
) -> None:
    """Git keeps them, and \\x1f is the separator of the fields read: still one change each."""
    repo = Repo(tmp_path / "checkout")
    plain = repo.commit("plain", "2024-03-01T09:00:00+00:00")
    subject = repo.commit("weird\x1fsubject\x1b[31m", "2024-03-01T10:00:00+00:00", path="a.txt")
    author = repo.commit(
        "odd author", "2024-03-01T11:00:00+00:00", author="Ann\x1fX <ann@example.com>"
    )
    repo.tag("v1", "2024-03-01T12:00:00+00:00")
    assert not sync(warehouse, checkout_config(tmp_path)).failed
    stored = changes(warehouse)
    assert stored[subject]["title"] == "weird\x1fsubject\x1b[31m"
    assert stored[author]["author"] == "Ann\x1fX <ann@example.com>"
    assert stored[author]["title"] == "odd author"
    assert stored[plain]["committed_at"] == at("2024-03-01T09:00:00+00:00")
    assert stored[subject]["parents"] == plain
    assert deployments(warehouse)["git:checkout:tag:v1"]["shipped"] == {plain, subject, author}
    assert not sync(warehouse, checkout_config(tmp_path)).failed  # and again: nothing new
    assert changes(warehouse) == stored


def test_an_author_longer_than_the_column_is_cut_to_fit_on_both_engines(
    warehouse: Engine, tmp_path: Path
) -> None:
    """Git sets no bound on a name; PostgreSQL refused the batch (and the sync, every time)."""
    repo = Repo(tmp_path / "checkout")
    name = "Ann " + "Very" * 120  # "Ann VeryVery… <ann@example.com>": 500 characters
    long_one = repo.commit("long", "2024-03-01T10:00:00+00:00", author=f"{name} <ann@example.com>")
    plain = repo.commit("plain", "2024-03-01T11:00:00+00:00")
    repo.tag("v1", "2024-03-01T12:00:00+00:00")
    assert not sync(warehouse, checkout_config(tmp_path)).failed
    stored = changes(warehouse)
    width = schema.changes.c.author.type.length
    assert len(stored[long_one]["author"]) == width
    assert stored[long_one]["author"] == f"{name} <ann@example.com>"[: width - 1] + "…"
    assert stored[plain]["author"] == "Alice Jones <alice@example.com>"
    assert deployments(warehouse)["git:checkout:tag:v1"]["shipped"] == {long_one, plain}
    again = sync(warehouse, checkout_config(tmp_path), full=True)  # the cut value is stable
    assert not again.failed and again.result("git").updated == 0
    assert changes(warehouse) == stored


def test_a_tag_of_a_tag_deploys_the_commit_it_comes_to(warehouse: Engine, tmp_path: Path) -> None:
    """`git tag -a v2 rc2` tags the tag object (git warns): for-each-ref peels one level."""
    repo = Repo(tmp_path / "checkout")
    first = repo.commit("first", "2024-03-01T09:00:00+00:00")
    repo.tag("rc1", "2024-03-01T10:00:00+00:00")
    repo.git("tag", "-a", "v1", "-m", "release v1", "rc1", when="2024-03-02T08:00:00+00:00")
    second = repo.commit("second", "2024-03-03T09:00:00+00:00")
    repo.tag("rc2", "2024-03-03T10:00:00+00:00")
    repo.git("tag", "-a", "v2", "-m", "release v2", "rc2", when="2024-03-04T08:00:00+00:00")
    tree = repo.git("rev-parse", "HEAD^{tree}")  # a tag of a tag of a tree deploys nothing
    repo.git("tag", "-a", "tree-tag", "-m", "tree", tree)
    repo.git("tag", "-a", "v9", "-m", "not a commit", "tree-tag")
    assert not sync(warehouse, checkout_config(tmp_path, deploy_tags="v*")).failed
    deployed = deployments(warehouse)
    assert set(deployed) == {"git:checkout:tag:v1", "git:checkout:tag:v2"}
    v1, v2 = deployed["git:checkout:tag:v1"], deployed["git:checkout:tag:v2"]
    assert (v1["sha"], v1["deployed_at"], v1["shipped"]) == (
        first,
        at("2024-03-02T08:00:00+00:00"),  # the outer tag's time
        {first},
    )
    assert (v2["sha"], v2["shipped"]) == (second, {second})


def test_a_service_with_a_ci_cd_source_gets_no_tag_deployments(
    warehouse: Engine, tmp_path: Path, history: dict[str, str]
) -> None:
    config = make_config(
        tmp_path,
        [
            {
                "name": "checkout",
                "git": {"path": "checkout", "deploy_tags": "v*"},
                "jenkins": {"job": "checkout/deploy"},
            }
        ],
    )
    sync(warehouse, config)
    assert len(changes(warehouse)) == 6
    assert deployments(warehouse) == {}


@pytest.mark.parametrize("block", ["github", "gitlab"])
def test_a_service_whose_changes_are_pull_requests_gets_no_commit_changes(
    sqlite_warehouse: Engine, tmp_path: Path, history: dict[str, str], block: str
) -> None:
    where = {"github": {"repo": "acme/checkout"}, "gitlab": {"project": "acme/checkout"}}[block]
    config = make_config(
        tmp_path, [{"name": "checkout", "git": {"path": "checkout"}, block: where}]
    )
    assert not sync(sqlite_warehouse, config).failed
    assert changes(sqlite_warehouse) == {} and deployments(sqlite_warehouse) == {}


class Killed(BaseException):
    """Stands in for SIGKILL: nothing of the sync gets to clean up."""


def test_a_sync_killed_after_a_checkpoint_resumes_and_ends_with_the_same_rows(
    warehouse: Engine, tmp_path: Path, history: dict[str, str]
) -> None:
    config = checkout_config(tmp_path)
    checkpoints: list[Any] = []

    def kill(stream: str, scope: str, bookmark: Any) -> None:
        checkpoints.append(bookmark)
        raise Killed

    with pytest.raises(Killed):
        sync(warehouse, config, checkpoint_every=3, on_checkpoint=kill)
    assert checkpoints[0]["pending"]["done"] == 3 and checkpoints[0].get("head") is None
    assert 0 < len(changes(warehouse)) < 6 and deployments(warehouse) == {}

    resumed = sync(warehouse, config, checkpoint_every=3).result("git")
    assert resumed.unchanged == 0  # the stored batch was not written again

    uninterrupted = open_warehouse(f"sqlite:///{tmp_path / 'uninterrupted.db'}")
    sync(uninterrupted, config)

    def comparable(engine: Engine) -> Any:
        rows = {
            sha: {k: v for k, v in row.items() if k not in ("raw_id", "updated_at")}
            for sha, row in changes(engine).items()
        }
        deployed = {
            key: {k: v for k, v in row.items() if k not in ("raw_id", "updated_at")}
            for key, row in deployments(engine).items()
        }
        return rows, deployed

    assert comparable(warehouse) == comparable(uninterrupted)
    uninterrupted.dispose()
    with warehouse.connect() as connection:
        assert "pending" not in read_state(connection, "git", "history", "checkout").bookmark


def test_a_missing_repository_fails_that_service_only(
    warehouse: Engine, tmp_path: Path, history: dict[str, str]
) -> None:
    (tmp_path / "not-a-repo").mkdir()
    config = make_config(
        tmp_path,
        [
            {"name": "ghost", "git": {"path": "not-a-repo"}},
            {"name": "typo", "git": {"path": "checkout", "branch": "mian"}},
            {"name": "checkout", "git": {"path": "checkout", "deploy_tags": "v*"}},
        ],
    )
    result = sync(warehouse, config).result("git")
    assert result.errors == [
        f"git: ghost: {tmp_path / 'not-a-repo'} is not a git repository: check services[0].git.path",
        f"git: typo: branch 'mian' not found in {tmp_path / 'checkout'} (its branches: "
        "feature, main, side, squashme): did you mean 'main'? check services[1].git.branch",
    ]
    assert len(changes(warehouse, "checkout")) == 6
    with warehouse.connect() as connection:
        assert read_state(connection, "git", "history", "ghost").last_error == result.errors[0]


def test_poise_sync_command_prints_a_summary_and_exits_1_when_a_source_failed(
    tmp_path: Path, history: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    config = tmp_path / "poise.yaml"
    config.write_text(
        "teams: [{name: payments}]\n"
        "services:\n"
        "  - {name: checkout, team: payments, git: {path: checkout, deploy_tags: 'v*'}}\n",
        encoding="utf-8",
    )
    database = f"sqlite:///{tmp_path / 'poise.db'}"
    assert main(["sync", "--db", database, "--config", str(config)]) == 0
    output = capsys.readouterr().out
    row = next(line for line in output.splitlines() if " git " in line)
    cells = [cell.strip() for cell in row.split("│")[2:5]]
    assert cells == ["1", "7", "9"]  # scopes, commits read, new rows: 6 changes, 2 tags, 1 repo
    assert re.search(r"^rebuild derived tables: done in \d+\.\d s$", output, re.MULTILINE)
    assert main(["sync", "--db", database, "--config", str(config)]) == 0
    assert "derived tables" not in capsys.readouterr().out  # nothing new: nothing rebuilt
    config.write_text(
        config.read_text() + "  - {name: ghost, team: payments, git: {path: empty}}\n",
        encoding="utf-8",
    )
    assert main(["sync", "--db", database, "--config", str(config)]) == 1
    captured = capsys.readouterr()
    assert "poise: git: ghost:" in captured.err and "is not a git repository" in captured.err


@pytest.mark.parametrize(
    "script",
    [
        r"printf 'ab'; sleep 0.05; printf 'c\0de\0'; sleep 0.05; printf 'f\0'",
        r"printf 'abc\0de\0f'",
    ],
    ids=["split-across-reads", "no-trailing-nul"],
)
def test_records_are_reassembled_however_the_output_arrives(script: str) -> None:
    from collectors.git import stream_records
    from collectors.http import SourceError

    texts = list(stream_records(["sh", "-c", script], SourceError))
    assert "\0".join(texts).split("\0") == ["abc", "de", "f"]


def test_a_failing_git_log_is_one_line(tmp_path: Path) -> None:
    from collectors.git import stream_records
    from collectors.http import SourceError

    command = ["git", "-C", str(tmp_path), "log", "--format=%H"]
    with pytest.raises(SourceError, match=r"^git log failed: fatal: not a git repository"):
        list(stream_records(command, SourceError))


def test_commits_stored_before_committer_times_were_kept_get_them_at_the_next_sync(
    warehouse: Engine, tmp_path: Path, history: dict[str, str]
) -> None:
    """Migration 0004 adds committer_at and parents, and forgets the git bookmarks so the
    next sync reads every commit again and fills them in, without a duplicate row."""
    from alembic import command

    from poise.warehouse.migrate import _config, current_revision, upgrade

    config = checkout_config(tmp_path)
    assert not sync(warehouse, config).failed
    before = changes(warehouse)
    alembic = _config()
    with warehouse.begin() as connection:  # back to the schema before committer times
        alembic.attributes["connection"] = connection
        command.downgrade(alembic, "0003")
    assert current_revision(warehouse) == "0003"
    upgrade(warehouse)
    with warehouse.connect() as connection:
        assert read_state(connection, "git", "history", "checkout").bookmark is None
    assert {row["committer_at"] for row in changes(warehouse).values()} == {None}

    summary = sync(warehouse, config)
    assert not summary.failed
    assert (summary.results[0].new, summary.results[0].updated) == (0, len(before))
    after = changes(warehouse)
    assert {sha: {**row, "updated_at": None} for sha, row in after.items()} == {
        sha: {**row, "updated_at": None} for sha, row in before.items()
    }


def test_a_parent_printed_before_its_child_still_ships_with_the_earliest_tag(
    warehouse: Engine, tmp_path: Path
) -> None:
    """A side branch whose committer clock ran behind: `git log` (by committer date) prints
    the fork point before the side commit, and the earliest tag containing the fork point
    (the side branch's) still ships it."""
    repo = Repo(tmp_path / "checkout")
    fork = repo.commit("fork", "2024-01-10T00:00:00+00:00")
    repo.git("checkout", "-q", "-b", "side")
    behind = repo.commit("behind", "2024-01-05T00:00:00+00:00")  # before its parent
    repo.tag("v1", "2024-01-21T00:00:00+00:00")
    repo.git("checkout", "-q", "main")
    ahead = repo.commit("ahead", "2024-01-20T00:00:00+00:00")
    repo.git("merge", "-q", "--no-ff", "-m", "merge", "side", when="2024-01-30T00:00:00+00:00")
    repo.tag("v2", "2024-01-31T00:00:00+00:00")
    printed = repo.git("log", "--format=%H").split()
    assert printed.index(fork) < printed.index(behind)  # the case this test is about

    config = checkout_config(tmp_path)
    assert not sync(warehouse, config).failed
    deployed = deployments(warehouse)
    assert deployed["git:checkout:tag:v1"]["shipped"] == {behind, fork}  # v1 contains fork
    assert deployed["git:checkout:tag:v2"]["shipped"] == {ahead}
    again = sync(warehouse, config, full=True).result("git")
    assert (again.new, again.updated) == (0, 0)
    assert deployments(warehouse) == deployed
