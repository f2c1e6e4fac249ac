"""Local Git ingest speed against bare `git log` and PyDriller, measured in the same run.

The bars (issue #4):
- a full ingest of a repository of at least 20,000 commits takes at most 1.5× the bare
  `git log` command that reads the same fields (interpreter start-up aside);
- it is at least 5× faster than PyDriller reading the same fields;
- re-syncing the unchanged repository takes under 1 s beyond start-up;
- working out what each deployment shipped adds no git process per deployment.

What is timed:
- git log: exactly the command the collector runs (`collectors.git.log_command`), its
  output read through a pipe;
- poise: `run_sync` of one service with `deploy_tags`, in-process, into a fresh copy of
  a migrated SQLite warehouse (migrating is set-up, not ingest): the git processes, the
  log pass, parsing, changes, tag deployments and what each shipped, bookmarks;
- git log and the ingest alternate, --runs pairs (the first --pydriller-runs of them
  with a PyDriller run too), so all see the same load; the best of each is compared,
  and the median is printed beside it to show the swing;
- PyDriller (the `bench` extra): `Repository(...).traverse_commits()` reading hash,
  parents, author name, email and date, and the subject (what poise reads);
- resync: `run_sync` again with nothing new, in-process, and as a whole `poise sync`
  process beside `poise --version` (the same interpreter start-up and CLI import); the
  same process once more under `python -X importtime` says how much of it is importing
  modules (SQLAlchemy, Alembic, the collectors, pandas for the post-sync hook);
- the git processes one ingest starts, by name (none per deployment).

CPU seconds (this process and its finished children, git included) are printed beside
wall seconds: on a shared machine wall time swings with the load, CPU time much less.

    python bench/bench_git.py [REPO] [--branch main] [--deploy-tags 'v*'] [--commits 20000]

Without REPO a repository of --commits commits is generated with `git fast-import`
(bench/gitrepo.py) and cached under bench/out/. Exit status 1 when a bar is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from itertools import chain
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from gitrepo import make_repo  # noqa: E402

from collectors.git import CHANGE_COLUMNS, GitSource, log_command, log_environment  # noqa: E402
from collectors.runner import SyncSummary, run_sync  # noqa: E402
from poise.catalog import apply_config  # noqa: E402
from poise.config import PoiseConfig, parse_config  # noqa: E402
from poise.warehouse import open_warehouse  # noqa: E402
from poise.warehouse.upsert import VALUES_ROWS  # noqa: E402

Timing = tuple[float, float]  # (wall seconds, CPU seconds)


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (git): steadier than wall time
    on a busy machine, so it is printed beside it."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(work: Callable[[], Any]) -> Timing:
    cpu = cpu_seconds()
    started = time.perf_counter()
    work()
    return time.perf_counter() - started, cpu_seconds() - cpu


def best(timings: list[Timing]) -> Timing:
    """The fastest wall time and the smallest CPU time of the runs."""
    return min(t[0] for t in timings), min(t[1] for t in timings)


def config_for(repo: Path, branch: str, deploy_tags: str | None, paths: list[str]) -> PoiseConfig:
    git: dict[str, Any] = {"path": str(repo), "branch": branch}
    if deploy_tags:
        git["deploy_tags"] = deploy_tags
    if paths:
        git["paths"] = paths
    return parse_config(
        {"teams": [{"name": "bench"}], "services": [{"name": "svc", "team": "bench", "git": git}]}
    )


def bare_git_log(repo: Path, branch: str) -> int:
    done = subprocess.run(
        log_command(repo, [branch]), capture_output=True, check=True, env=log_environment()
    )
    return done.stdout.rstrip(b"\0").count(b"\0") + 1


def sync(url: str, config: PoiseConfig) -> SyncSummary:
    engine = open_warehouse(url, migrate=False)
    try:
        return run_sync(engine, config, registry={"git": GitSource}, hooks=[])
    finally:
        engine.dispose()


def git_processes(work: Callable[[], Any]) -> list[str]:
    """The git subcommands that `work` started (not timed: it wraps every process start)."""
    started: list[str] = []
    original = subprocess.Popen.__init__

    def counting(self: subprocess.Popen, args: Any, *rest: Any, **options: Any) -> None:
        words = [str(word) for word in args]
        if words and words[0] == "git":
            while words[1] in ("-C", "-c"):  # options with a value, before the subcommand
                words = words[:1] + words[3:]
            started.append(words[1])
        original(self, args, *rest, **options)

    subprocess.Popen.__init__ = counting  # type: ignore[method-assign]
    try:
        work()
    finally:
        subprocess.Popen.__init__ = original  # type: ignore[method-assign]
    return started


_RUN_CLI = "import sys; from poise.cli import main; sys.exit(main(sys.argv[1:]))"


def cli_beyond_imports(arguments: list[str], environment: dict[str, str]) -> tuple[float, float]:
    """One `poise` process under `-X importtime`: (wall seconds, seconds spent importing).

    Python reports every import's cumulative time; the top-level ones add up to all the
    time the process spent importing modules (SQLAlchemy, Alembic, the collectors, pandas
    for the post-sync hook, …), whenever they were imported.
    """
    command = [sys.executable, "-X", "importtime", "-c", _RUN_CLI, *arguments]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, check=True, env=environment, text=True)
    wall = time.perf_counter() - started
    microseconds = 0
    for line in done.stderr.splitlines():
        fields = line.split("|")
        if (
            line.startswith("import time:")
            and len(fields) == 3
            and fields[1].strip().isdigit()
            and not fields[2].startswith("  ")  # top level: nested imports are indented
        ):
            microseconds += int(fields[1])
    return wall, microseconds / 1e6


Rows = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]
DEPLOYMENT_COLUMNS = (
    "id, service, environment, status, deployed_at, sha, source, source_id, updated_at"
)


def stored_rows(database: Path) -> Rows:
    """What an ingest stored: its changes (newest first, as git log gives them), its
    deployments and their links."""
    with contextlib.closing(sqlite3.connect(database)) as connection:
        changes = connection.execute(
            f"SELECT {', '.join(CHANGE_COLUMNS)} FROM changes ORDER BY committer_at DESC"
        ).fetchall()
        deployments = connection.execute(f"SELECT {DEPLOYMENT_COLUMNS} FROM deployments").fetchall()
        links = connection.execute(
            "SELECT deployment_id, change_id FROM deployment_changes ORDER BY 1, 2"
        ).fetchall()
    return changes, deployments, links


def insert_many(connection: sqlite3.Connection, head: str, rows: list[tuple[Any, ...]]) -> None:
    """`head VALUES (…), (…), …`: VALUES_ROWS rows a statement, as the warehouse writes them."""
    one = "(" + ", ".join("?" * len(rows[0])) + ")"
    for start in range(0, len(rows), VALUES_ROWS):
        part = rows[start : start + VALUES_ROWS]
        values = ", ".join([one] * len(part))
        connection.execute(head.replace("VALUES", f"VALUES {values}"), list(chain(*part)))


def sqlite_alone(template: Path, database: Path, rows: Rows, batch: int) -> Timing:
    """The same rows put into a fresh copy of the same warehouse with nothing but the
    sqlite3 module: ready-made tuples, one transaction per batch of `batch` changes (each
    sorted by key, as the collector sorts them), then the deployments and links, in
    statements of VALUES_ROWS rows as the collector sends them. No git, no parsing, no
    Python per row: the floor under any ingest that stores these rows."""
    changes, deployments, links = rows
    columns = ", ".join(CHANGE_COLUMNS)

    def insert(connection: sqlite3.Connection) -> None:
        for start in range(0, len(changes), batch):
            connection.execute("BEGIN")
            insert_many(
                connection,
                f"INSERT INTO changes ({columns}) VALUES ON CONFLICT (id) DO NOTHING",
                sorted(changes[start : start + batch]),
            )
            connection.execute("COMMIT")
        connection.execute("BEGIN")
        insert_many(
            connection, f"INSERT INTO deployments ({DEPLOYMENT_COLUMNS}) VALUES", deployments
        )
        insert_many(connection, "INSERT INTO deployment_changes VALUES", links)
        connection.execute("COMMIT")

    return timed_into_copy(template, database, insert)


def timed_into_copy(
    template: Path, database: Path, write: Callable[[sqlite3.Connection], None]
) -> Timing:
    """`write` timed on a fresh copy of the warehouse, through a connection set up as the
    warehouse's own (WAL, foreign keys, synchronous NORMAL); opening and closing it count."""
    shutil.copyfile(template, database)

    def run() -> None:
        connection = sqlite3.connect(database, isolation_level=None)
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL"):
            connection.execute(f"PRAGMA {pragma}")
        write(connection)
        connection.close()

    timing = timed(run)
    database.unlink()
    return timing


def stage_for_copy(stored: Path, batch: int) -> None:
    """In a copy of an ingest's database: its changes numbered into the collector's
    batches (newest first, `batch` a transaction) for `sqlite_in_c` to copy (not timed)."""
    with contextlib.closing(sqlite3.connect(stored, isolation_level=None)) as connection:
        connection.execute(
            f"CREATE TABLE staged AS SELECT (row_number() OVER (ORDER BY committer_at DESC) - 1)"
            f" / {int(batch)} AS batch, {', '.join(CHANGE_COLUMNS)} FROM changes"
        )
        connection.execute("CREATE INDEX staged_batch ON staged (batch, id)")


def sqlite_in_c(template: Path, database: Path, stored: Path) -> Timing:
    """The same rows copied into a fresh copy of the same warehouse by SQLite itself:
    `INSERT … SELECT` from the staged copy (attached), each batch of changes in its own
    transaction in key order, then the deployments and links in one, as the collector
    commits them. No Python per row and nothing bound: what the B-trees, foreign keys and
    WAL of this schema cost for these rows, whoever sends them."""
    columns = ", ".join(CHANGE_COLUMNS)

    def copy(connection: sqlite3.Connection) -> None:
        connection.execute("ATTACH DATABASE ? AS stored", (str(stored),))
        batches = connection.execute("SELECT max(batch) FROM stored.staged").fetchone()[0]
        for number in range(batches + 1):
            connection.execute("BEGIN")
            connection.execute(
                f"INSERT INTO changes ({columns}) SELECT {columns} FROM stored.staged "
                "WHERE batch = ? ORDER BY id",
                (number,),
            )
            connection.execute("COMMIT")
        connection.execute("BEGIN")
        connection.execute(
            f"INSERT INTO deployments ({DEPLOYMENT_COLUMNS}) "
            f"SELECT {DEPLOYMENT_COLUMNS} FROM stored.deployments"
        )
        connection.execute(
            "INSERT INTO deployment_changes SELECT deployment_id, change_id "
            "FROM stored.deployment_changes ORDER BY 1, 2"
        )
        connection.execute("COMMIT")

    return timed_into_copy(template, database, copy)


def pydriller_read(repo: Path, branch: str) -> int:
    from pydriller import Repository

    count = 0
    for commit in Repository(str(repo), only_in_branch=branch).traverse_commits():
        _ = (
            commit.hash,
            commit.parents,
            commit.author.name,
            commit.author.email,
            commit.author_date,
            commit.committer_date,
            commit.msg.split("\n", 1)[0],
        )
        count += 1
    return count


def row(name: str, timing: Timing, note: str = "", median: float | None = None) -> str:
    spread = f"{median:8.3f}" if median is not None else " " * 8
    return f"{name:<26}{timing[0]:8.3f}{spread}{timing[1]:9.3f}   {note}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("repo", nargs="?", help="a local repository (default: generate one)")
    parser.add_argument("--branch", default="main")
    parser.add_argument("--deploy-tags", default="v*")
    parser.add_argument("--paths", nargs="*", default=[], help="monorepo paths (optional)")
    parser.add_argument("--commits", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=7, help="git log / ingest pairs")
    parser.add_argument("--pydriller-runs", type=int, default=3)
    parser.add_argument("--no-pydriller", action="store_true")
    args = parser.parse_args()

    repo = (
        Path(args.repo).resolve()
        if args.repo
        else make_repo(HERE / "out" / f"repo-{args.commits}", args.commits)
    )
    config = config_for(repo, args.branch, args.deploy_tags, args.paths)
    commits = bare_git_log(repo, args.branch)
    print(f"repository: {repo} ({commits:,} commits on {args.branch})")
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())

    with tempfile.TemporaryDirectory(prefix="poise-bench-git-") as folder:
        template = Path(folder) / "template.db"
        engine = open_warehouse(f"sqlite:///{template}")  # migrations are set-up, not ingest
        apply_config(engine, config)
        engine.dispose()

        git_runs: list[Timing] = []
        ingest_runs: list[Timing] = []
        url = ""
        summary: SyncSummary | None = None
        pydriller_runs: list[Timing] = []
        floor_runs: list[Timing] = []
        copy_runs: list[Timing] = []
        stored = Path(folder) / "stored.db"
        rows: Rows = ([], [], [])
        for run in range(args.runs):
            if not args.no_pydriller and run < args.pydriller_runs:  # among the others: same load
                pydriller_runs.append(timed(lambda: pydriller_read(repo, args.branch)))
            git_runs.append(timed(lambda: bare_git_log(repo, args.branch)))
            database = Path(folder) / f"ingest-{run}.db"
            shutil.copyfile(template, database)
            if url:
                Path(url.removeprefix("sqlite:///")).unlink()
            url = f"sqlite:///{database}"
            outcome: list[SyncSummary] = []
            ingest_runs.append(timed(lambda: outcome.append(sync(url, config))))  # noqa: B023
            summary = outcome[0]
            if run == 0:
                rows = stored_rows(database)
                shutil.copyfile(database, stored)
                stage_for_copy(stored, GitSource.checkpoint_every)
            floor_runs.append(
                sqlite_alone(template, Path(folder) / "floor.db", rows, GitSource.checkpoint_every)
            )
            copy_runs.append(sqlite_in_c(template, Path(folder) / "copy.db", stored))
        assert summary is not None
        result = summary.result("git")
        if result.errors:
            print("\n".join(result.errors))
            return 1

        shutil.copyfile(template, Path(folder) / "counted.db")
        started = git_processes(lambda: sync(f"sqlite:///{Path(folder) / 'counted.db'}", config))
        engine = open_warehouse(url, migrate=False)
        with engine.connect() as connection:
            deployments = connection.exec_driver_sql("SELECT count(*) FROM deployments").scalar()
            links = connection.exec_driver_sql("SELECT count(*) FROM deployment_changes").scalar()
        engine.dispose()

        resync = best([timed(lambda: sync(url, config)) for _ in range(args.runs)])
        config_file = Path(folder) / "poise.yaml"
        config_file.write_text(
            f"teams: [{{name: bench}}]\nservices:\n  - name: svc\n    team: bench\n"
            f"    git: {{path: '{repo}', branch: {args.branch}, deploy_tags: '{args.deploy_tags}'}}\n"
        )
        poise = Path(sys.executable).with_name("poise")
        command = [str(poise), "sync", "--db", url, "--config", str(config_file), "--source", "git"]
        quiet = {"capture_output": True, "check": True, "env": {**os.environ, "NO_COLOR": "1"}}
        cli = best([timed(lambda: subprocess.run(command, **quiet)) for _ in range(args.runs)])
        startup = best(
            [
                timed(lambda: subprocess.run([str(poise), "--version"], **quiet))
                for _ in range(args.runs)
            ]
        )
        # the same process under -X importtime: how much of it is importing modules
        split = [cli_beyond_imports(command[1:], quiet["env"]) for _ in range(args.runs)]
        importing = min(split, key=lambda run: run[0] - run[1])

    pydriller = best(pydriller_runs) if pydriller_runs else None
    load_after = " ".join(f"{x:.2f}" for x in os.getloadavg())

    git, ingest = best(git_runs), best(ingest_runs)
    wall_ratio, cpu_ratio = ingest[0] / git[0], ingest[1] / git[1]
    print(
        f"ingest: {result.new:,} new rows ({result.records:,} commits read; "
        f"{deployments:,} tag deployments shipping {links:,} changes)"
    )
    print(f"git processes in one ingest: {len(started)} ({', '.join(started)})")
    print(f"load average before / after: {load_before} / {load_after} (2 cores)")
    print(
        f"{'':<26}{'wall s':>8}{'median':>8}{'CPU s':>9}   (best of {args.runs}; CPU: self + git)"
    )
    print(row("bare git log", git, median=statistics.median(t[0] for t in git_runs)))
    print(
        row(
            "poise full ingest",
            ingest,
            f"{wall_ratio:.2f}× wall, {cpu_ratio:.2f}× CPU of git log (bar ≤ 1.5× wall)",
            statistics.median(t[0] for t in ingest_runs),
        )
    )
    floor = best(floor_runs)
    print(
        row(
            "  SQLite alone, same rows",
            floor,
            f"{floor[0] / git[0]:.2f}× wall of git log: the insert floor under any ingest",
            statistics.median(t[0] for t in floor_runs),
        )
    )
    copied = best(copy_runs)
    print(
        row(
            "  SQLite in C, same rows",
            copied,
            f"{copied[0] / git[0]:.2f}× wall of git log: INSERT … SELECT, nothing bound",
            statistics.median(t[0] for t in copy_runs),
        )
    )
    ok_ingest = wall_ratio <= 1.5
    ok_pydriller = True
    if pydriller is not None:
        speedup = pydriller[0] / ingest[0]
        print(
            row(
                "PyDriller, same fields",
                pydriller,
                f"poise {speedup:.1f}× faster wall, {pydriller[1] / ingest[1]:.1f}× CPU (bar ≥ 5× wall)",
            )
        )
        ok_pydriller = speedup >= 5
    print(row("resync, unchanged", resync, "in-process (bar < 1 s)"))
    beyond_cli, beyond_imports = cli[0] - startup[0], importing[0] - importing[1]
    print(row("`poise sync`, unchanged", cli, "whole process"))
    print(
        row(
            "`poise --version`",
            startup,
            f"start-up: interpreter and CLI; the sync takes {beyond_cli:.3f} s beyond it",
        )
    )
    print(
        f"{'  of which imports':<26}{importing[1]:8.3f}{'':17}   the same process under -X "
        f"importtime ({importing[0]:.3f} s): {beyond_imports:.3f} s is not importing"
    )
    verdicts = {
        "full ingest ≤ 1.5× git log (wall)": ok_ingest,
        "≥ 5× faster than PyDriller (wall)": ok_pydriller,
        "resync < 1 s (in-process)": resync[0] < 1.0,
        "resync < 1 s beyond start-up and imports (whole process)": beyond_imports < 1.0,
        "no git process per deployment": len(started) <= 4,
    }
    print(
        f"  (beyond `poise --version` alone the resync takes {beyond_cli:.3f} s: "
        f"{'under' if beyond_cli < 1.0 else 'over'} 1 s)"
    )
    for bar, met in verdicts.items():
        print(f"  {'met   ' if met else 'MISSED'} {bar}")
    return 0 if all(verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
