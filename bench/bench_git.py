"""Local Git ingest speed against bare `git log` and PyDriller, measured in the same run.

The bars (issue #4):
- a full ingest of a repository of at least 20,000 commits takes at most 1.5× the bare
  `git log` command that reads the same fields (interpreter start-up aside);
- it is at least 5× faster than PyDriller reading the same fields;
- re-syncing the unchanged repository takes under 1 s beyond start-up;
- working out what each deployment shipped adds no git process per deployment.

What is timed (best of --runs):
- git log: exactly the command the collector runs (`collectors.git.log_command`), its
  output read through a pipe;
- poise: `run_sync` of one service with `deploy_tags`, into a fresh migrated SQLite file:
  the git log pass, parsing, changes, tag deployments and what each shipped, raw
  payloads, bookmarks;
- PyDriller (the `bench` extra): `Repository(...).traverse_commits()` reading hash,
  parents, author and committer names, emails and dates, and the subject;
- resync: `run_sync` again with nothing new, in-process and as a `poise sync` process.

    python bench/bench_git.py [REPO] [--branch main] [--deploy-tags 'v*'] [--commits 20000]

Without REPO a repository of --commits commits is generated with `git fast-import`
(bench/gitrepo.py) and cached under bench/out/. Exit status 1 when a bar is missed.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from gitrepo import make_repo  # noqa: E402

from collectors.git import GitSource, log_command, log_environment  # noqa: E402
from collectors.runner import run_sync  # noqa: E402
from poise.catalog import apply_config  # noqa: E402
from poise.config import PoiseConfig, parse_config  # noqa: E402
from poise.warehouse import open_warehouse  # noqa: E402


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (git): steadier than wall time
    on a busy machine, so it is printed beside it."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def best(runs: int, work: Callable[[], Any]) -> tuple[float, float]:
    """The fastest of `runs` runs: (wall seconds, CPU seconds)."""
    timings = []
    for _ in range(runs):
        cpu = cpu_seconds()
        started = time.perf_counter()
        work()
        timings.append((time.perf_counter() - started, cpu_seconds() - cpu))
    return min(timings)


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
    return done.stdout.count(b"\x1e")


def poise_ingest(folder: Path, config: PoiseConfig) -> tuple[tuple[float, float], Any, str]:
    """One full ingest into a fresh warehouse; returns ((wall, CPU seconds), summary, url)."""
    database = folder / f"ingest-{time.monotonic_ns()}.db"
    url = f"sqlite:///{database}"
    engine = open_warehouse(url)  # migrations are set-up, not ingest
    apply_config(engine, config)
    cpu = cpu_seconds()
    started = time.perf_counter()
    summary = run_sync(engine, config, registry={"git": GitSource}, hooks=[])
    seconds = (time.perf_counter() - started, cpu_seconds() - cpu)
    engine.dispose()
    return seconds, summary, url


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
            commit.committer.name,
            commit.committer.email,
            commit.committer_date,
            commit.msg.split("\n", 1)[0],
        )
        count += 1
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("repo", nargs="?", help="a local repository (default: generate one)")
    parser.add_argument("--branch", default="main")
    parser.add_argument("--deploy-tags", default="v*")
    parser.add_argument("--paths", nargs="*", default=[], help="monorepo paths (optional)")
    parser.add_argument("--commits", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
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
    git_seconds = best(args.runs, lambda: bare_git_log(repo, args.branch))
    with tempfile.TemporaryDirectory(prefix="poise-bench-git-") as folder:
        runs = [poise_ingest(Path(folder), config) for _ in range(args.runs)]
        ingest_seconds, summary, url = min(runs, key=lambda run: run[0])
        result = summary.result("git")
        if result.errors:
            print("\n".join(result.errors))
            return 1
        engine = open_warehouse(url)
        resync_seconds = best(
            args.runs,
            lambda: run_sync(engine, config, registry={"git": GitSource}, hooks=[]),
        )
        engine.dispose()
        config_file = Path(folder) / "poise.yaml"
        config_file.write_text(
            f"teams: [{{name: bench}}]\nservices:\n  - name: svc\n    team: bench\n"
            f"    git: {{path: '{repo}', branch: {args.branch}, deploy_tags: '{args.deploy_tags}'}}\n"
        )
        poise = Path(sys.executable).with_name("poise")
        command = [str(poise), "sync", "--db", url, "--config", str(config_file), "--source", "git"]
        quiet = {"capture_output": True, "check": True, "env": {**os.environ, "NO_COLOR": "1"}}
        cli_seconds = best(args.runs, lambda: subprocess.run(command, **quiet))[0]
        # start-up: the same interpreter importing the same CLI, doing nothing
        startup_seconds = best(
            args.runs, lambda: subprocess.run([str(poise), "--version"], **quiet)
        )[0]

    (git_wall, git_cpu), (ingest_wall, ingest_cpu) = git_seconds, ingest_seconds
    print(f"new rows {result.new:,} in one ingest ({result.records:,} commits read)")
    print(
        f"load average before/after: {load_before} / {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print("                          wall s    CPU s (self + git)")
    print(f"bare git log            {git_wall:8.3f} {git_cpu:8.3f}")
    print(
        f"poise full ingest       {ingest_wall:8.3f} {ingest_cpu:8.3f}   ratio "
        f"{ingest_wall / git_wall:5.2f}× wall, {ingest_cpu / git_cpu:5.2f}× CPU (bar ≤ 1.5× wall)"
    )
    ok = ingest_wall <= 1.5 * git_wall
    if not args.no_pydriller:
        pydriller_wall, pydriller_cpu = best(1, lambda: pydriller_read(repo, args.branch))
        speedup = pydriller_wall / ingest_wall
        print(
            f"PyDriller, same fields  {pydriller_wall:8.3f} {pydriller_cpu:8.3f}   poise is "
            f"{speedup:5.1f}× faster wall, {pydriller_cpu / ingest_cpu:5.1f}× CPU (bar ≥ 5× wall)"
        )
        ok = ok and speedup >= 5
    print(
        f"resync, unchanged       {resync_seconds[0]:8.3f} {resync_seconds[1]:8.3f}   in-process (bar < 1 s)"
    )
    print(
        f"`poise sync`, unchanged {cli_seconds:8.3f}            whole process; start-up alone "
        f"{startup_seconds:.3f} s, so {cli_seconds - startup_seconds:.3f} s beyond it"
    )
    ok = ok and resync_seconds[0] < 1.0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
