"""`poise sync` as an operator runs it: the command's behaviour, not the collectors' data.

Probed with real processes against a real git repository (git init, commits, `git tag v1`)
and a real SQLite file, plus the gated loopback PagerDuty of tests/test_sync_lock.py to keep
a sync busy for as long as a signal test needs. Found, and fixed in poise/commands/sync.py:

- `--source bogus` exited 1 *after* creating and migrating the warehouse, and under `--every`
  it was reported every round forever; it is now a usage error (exit 2) before anything is
  read or created.
- `--source github` with no GitHub configured printed "no service in the config names a
  source" (false: git was configured) and exited 0, so a cron job asking for a source the
  config does not feed passed for ever; now one line naming the source, exit 1.
- The `--every` log had no time on a round's start or outcome, and "next sync at" carried
  microseconds; each round now starts with `poise: sync started at <UTC>Z` and ends with
  `poise: sync finished at <UTC>Z: ok|failed`, all to the second.
- A round that hit a bug (any exception but a PoiseError or an OperationalError) ended the
  loop with exit 1: a scheduled sync stopped for good. It is now reported and the loop goes on.
- A second SIGTERM/Ctrl-C while the current source finished was ignored: a source stuck
  in a long wait could only be ended by `kill -9`. It now stops at once (exit 130).
- A one-off `poise sync` died on the first SIGTERM although deploy/k8s/cronjob.yaml gives it
  120 s "to finish its current source": it now finishes the current source, skips the rest
  and exits 128+signal (143) when it skipped any (0/1 as usual when it had finished).
- `--every --full` read everything again every round (a full GitHub read each 15 minutes);
  `--full` now applies to the first round that runs (one refused by the lock does not count).
- `--help` left TLS out and listed no source names for `--source`; the README's command table
  left out `--every`; "nothing to sync" left out certificates.

Checked and fine (tests here keep it so): a bad `--every` spelling is exit 2; a source named
twice runs once; `--full` goes with `--source`; a round longer than the interval does not
overlap the next (the wait starts when a round ends); a sync goes on while the dashboard
holds a read transaction on the SQLite file (WAL); the log holds no ANSI codes off a TTY.

Not fixed here (collectors/, see the report): Ctrl-C in a terminal also reaches the `git`
child processes (one process group), so a graceful stop during `git log` fails the scope
with "unexpected git log output".
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from replay import ReplayServer
from sqlalchemy import create_engine
from test_sync_lock import gated_pagerduty, list_requests, poise, wait_for, write_config

from collectors.runner import SyncSummary, registered_sources
from poise import cli
from poise.commands import sync as sync_command
from poise.warehouse.lock import SyncLocked, sync_lock

ROOT = Path(__file__).resolve().parent.parent
ANSI = re.compile(r"\x1b\[")
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"  # UTC, to the second


def git_repository(folder: Path) -> Path:
    folder.mkdir()

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("config", "user.email", "dev@example.com")
    git("config", "user.name", "Dev")
    for number in range(3):
        (folder / f"f{number}").write_text(str(number), encoding="utf-8")
        git("add", ".")
        git("commit", "-q", "-m", f"change {number}")
    git("tag", "v1")
    return folder


def git_config(tmp_path: Path, *, broken: bool = False) -> Path:
    git_repository(tmp_path / "repo")
    services: list[dict[str, Any]] = [
        {
            "name": "api",
            "team": "payments",
            "git": {"path": "repo", "branch": "main", "deploy_tags": "v*"},
        }
    ]
    if broken:  # a folder that exists (the config accepts it) but is no repository
        (tmp_path / "not-a-repo").mkdir()
        services.append({"name": "web", "team": "payments", "git": {"path": "not-a-repo"}})
    config = tmp_path / "poise.yaml"
    config.write_text(
        yaml.safe_dump({"teams": [{"name": "payments"}], "services": services}), encoding="utf-8"
    )
    return config


def run_poise(tmp_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS="200")
    env.pop("POISE_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "poise.cli", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def lock_is_free(url: str) -> bool:
    engine = create_engine(url)
    try:
        with sync_lock(engine, url):
            return True
    finally:
        engine.dispose()


# --- --source ---------------------------------------------------------------------------------


@pytest.mark.parametrize("every", [[], ["--every", "1h"]])
def test_an_unknown_source_is_a_usage_error_before_anything_is_created(
    tmp_path: Path, every: list[str]
) -> None:
    config = git_config(tmp_path)
    db = tmp_path / "w.db"
    done = run_poise(
        tmp_path, "sync", "--config", str(config), "--db", f"sqlite:///{db}", "--source", "gti",
        *every, timeout=30,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "argument --source: unknown source 'gti' (known: git, github," in done.stderr
    assert not db.exists()  # refused before the warehouse was created or migrated


def test_a_named_source_with_nothing_configured_fails_with_one_line(tmp_path: Path) -> None:
    config = git_config(tmp_path)
    url = f"sqlite:///{tmp_path / 'w.db'}"
    done = run_poise(
        tmp_path, "sync", "--config", str(config), "--db", url, "--source", "git",
        "--source", "github",
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "--source github: nothing to sync" in done.stderr
    assert "no service in the config names a source" not in done.stderr  # git is configured
    assert re.search(r"│ git\s+│\s+1 │\s+3 │", done.stdout)  # git still ran: 3 commits


def test_a_source_named_twice_runs_once_and_full_goes_with_source(tmp_path: Path) -> None:
    config = git_config(tmp_path)
    url = f"sqlite:///{tmp_path / 'w.db'}"
    args = ["sync", "--config", str(config), "--db", url, "--source", "git", "--source", "git"]
    first = run_poise(tmp_path, *args)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("│ git ") == 1
    again = run_poise(tmp_path, *args, "--full")
    assert again.returncode == 0, again.stderr
    # --full reads everything again and changes nothing: every row is unchanged
    assert re.search(r"│ git\s+│\s+1 │\s+3 │\s+0 │\s+0 │\s+\d+ │\s+0 │", again.stdout), again.stdout


# --- --every ----------------------------------------------------------------------------------


def test_failing_rounds_are_stamped_in_utc_the_loop_goes_on_and_the_log_is_plain(
    tmp_path: Path,
) -> None:
    config = git_config(tmp_path, broken=True)
    url = f"sqlite:///{tmp_path / 'w.db'}"
    log = tmp_path / "loop.log"
    with log.open("w") as stream:  # stdout and stderr both to one file: no TTY, as in cron
        env = dict(os.environ)
        env.pop("POISE_DATABASE_URL", None)
        loop = subprocess.Popen(
            [sys.executable, "-m", "poise.cli", "sync", "--every", "1s", "--config", str(config),
             "--db", url],
            cwd=tmp_path, env=env, stdout=stream, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            wait_for(lambda: log.read_text().count("sync finished at") >= 2, 60, "two rounds")
            loop.send_signal(signal.SIGTERM)
            loop.wait(timeout=30)
        finally:
            if loop.poll() is None:
                loop.kill()
    text = log.read_text()
    assert loop.returncode == 0, text
    assert re.search(rf"^poise: sync started at {STAMP}$", text, re.M), text
    assert re.search(rf"^poise: sync finished at {STAMP}: failed", text, re.M), text
    assert re.search(rf"^poise: next sync at {STAMP}$", text, re.M), text  # no microseconds
    assert "not a git repository" in text
    assert "sync loop stopped" in text
    assert not ANSI.search(text)  # no colour, no cursor movement of a progress bar
    assert lock_is_free(url)


def test_a_round_that_hits_a_bug_is_reported_and_the_loop_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = git_config(tmp_path)
    rounds: list[int] = []

    def flaky(*_args: object, **_kwargs: object) -> SyncSummary:
        rounds.append(1)
        if len(rounds) == 1:
            raise RuntimeError("a bug in round one")
        os.kill(os.getpid(), signal.SIGTERM)  # the loop's own handler: stop after this round
        return SyncSummary()

    monkeypatch.setattr(sync_command, "run_sync", flaky)
    monkeypatch.setattr(sync_command, "jittered", lambda _seconds: 0.05)
    url = f"sqlite:///{tmp_path / 'w.db'}"
    code = cli.main(["sync", "--every", "1s", "--config", str(config), "--db", url])
    err = capsys.readouterr().err
    assert code == 0, err
    assert len(rounds) == 2
    assert "internal error: RuntimeError: a bug in round one" in err
    assert "trying again next round" in err
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers given back


def test_full_with_every_is_for_the_first_round_that_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = git_config(tmp_path)
    fulls: list[bool] = []

    def recorded(*_args: object, full: bool = False, **_kwargs: object) -> SyncSummary:
        fulls.append(full)
        if len(fulls) == 1:
            raise SyncLocked("another poise sync is running against here")
        if len(fulls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return SyncSummary()

    monkeypatch.setattr(sync_command, "run_sync", recorded)
    monkeypatch.setattr(sync_command, "jittered", lambda _seconds: 0.05)
    url = f"sqlite:///{tmp_path / 'w.db'}"
    code = cli.main(["sync", "--every", "1s", "--full", "--config", str(config), "--db", url])
    err = capsys.readouterr().err
    assert code == 0, err
    # a round refused by the lock did not read everything: the next one still does, then no more
    assert fulls == [True, True, False]
    assert err.count("(full)") == 2


def test_a_sync_goes_on_while_the_dashboard_reads_the_sqlite_file(tmp_path: Path) -> None:
    config = git_config(tmp_path)
    url = f"sqlite:///{tmp_path / 'w.db'}"
    first = run_poise(tmp_path, "sync", "--config", str(config), "--db", url)
    assert first.returncode == 0, first.stderr
    reader = sqlite3.connect(tmp_path / "w.db")
    try:  # a page run in the middle of its queries: a read transaction held open
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM changes").fetchone()[0] == 3
        (tmp_path / "repo" / "new").write_text("x", encoding="utf-8")
        subprocess.run(["git", "add", "."], cwd=tmp_path / "repo", check=True)
        subprocess.run(
            ["git", "commit", "-q", "-m", "while the dashboard reads"],
            cwd=tmp_path / "repo", check=True,
        )  # fmt: skip
        started = time.monotonic()
        again = run_poise(tmp_path, "sync", "--config", str(config), "--db", url)
        took = time.monotonic() - started
        assert again.returncode == 0, again.stderr
        assert took < 25  # not the 30 s busy timeout of a writer waiting for a reader
        assert reader.execute("SELECT count(*) FROM changes").fetchone()[0] == 3  # its snapshot
    finally:
        reader.close()
    fresh = sqlite3.connect(tmp_path / "w.db")
    try:
        assert fresh.execute("SELECT count(*) FROM changes").fetchone()[0] == 4
    finally:
        fresh.close()


def test_a_second_signal_stops_at_once_and_frees_the_lock(
    sqlite_url: str, replay_server: ReplayServer, tmp_path: Path
) -> None:
    gate = threading.Event()  # never opened while the test runs: the source waits for ever
    gated_pagerduty(replay_server, gate)
    config = write_config(tmp_path, replay_server)
    loop = poise(tmp_path, "sync", "--every", "1h", "--config", str(config), "--db", sqlite_url)
    try:
        wait_for(lambda: list_requests(replay_server), 60, "the sync to reach PagerDuty")
        loop.send_signal(signal.SIGINT)
        time.sleep(0.5)
        assert loop.poll() is None  # the first one lets the source finish
        started = time.monotonic()
        loop.send_signal(signal.SIGINT)
        _out, err = loop.communicate(timeout=20)
        took = time.monotonic() - started
    finally:
        gate.set()
        if loop.poll() is None:
            loop.kill()
    assert loop.returncode == 130, err
    assert took < 10
    assert "SIGINT again: stopping now" in err
    assert "Traceback" not in err
    assert lock_is_free(sqlite_url)


def test_a_one_off_sync_finishes_its_source_on_sigterm_and_skips_the_rest(
    sqlite_url: str, replay_server: ReplayServer, tmp_path: Path
) -> None:
    gate = threading.Event()
    gated_pagerduty(replay_server, gate)
    config = write_config(tmp_path, replay_server)
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    # tls runs after pagerduty; a port nothing listens on, never reached if it is skipped
    data["certificates"] = [{"host": "127.0.0.1", "port": 9, "service": "checkout"}]
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    one_off = poise(tmp_path, "sync", "--config", str(config), "--db", sqlite_url)
    try:
        wait_for(lambda: list_requests(replay_server), 60, "the sync to reach PagerDuty")
        one_off.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        gate.set()
        out, err = one_off.communicate(timeout=60)
    finally:
        gate.set()
        if one_off.poll() is None:
            one_off.kill()
    assert one_off.returncode == 128 + signal.SIGTERM, err
    assert "SIGTERM: finishing the scope under way, then stopping" in err
    assert "stopped early (signal)" in err
    assert "pagerduty" in out and "tls" not in out  # pagerduty finished, tls never started
    assert lock_is_free(sqlite_url)


# --- help and docs ----------------------------------------------------------------------------


def test_help_names_every_source_and_the_readme_lists_every() -> None:
    parser = cli.build_parser("sync")
    sub = next(
        action for action in parser._actions if isinstance(action, argparse._SubParsersAction)
    )
    text = sub.choices["sync"].format_help()
    flat = " ".join(text.split())
    for name in registered_sources():
        assert name in flat, name
    assert "TLS" in flat
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "`poise sync [--source NAME] [--full] [--every INTERVAL]`" in readme


def test_a_stop_before_the_first_source_is_not_called_nothing_to_sync(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sync_command.print_summary(SyncSummary(stopped=True))
    assert "nothing to sync" not in capsys.readouterr().err
    sync_command.print_summary(SyncSummary())
    assert "nothing to sync" in capsys.readouterr().err


# --- Ctrl-C in a terminal ---------------------------------------------------------------------


def test_ctrl_c_in_a_terminal_lets_git_finish_the_source(tmp_path: Path) -> None:
    """A terminal's Ctrl-C goes to the whole foreground process group. The first one is a
    graceful stop (the current source finishes), so git, which poise is reading, must not
    get it: it runs in a session of its own. Here a `git` on PATH in front of the real one
    waits before `git log`, so the signal lands while the log pass is under way."""
    real_git = shutil.which("git")
    assert real_git is not None
    wrapper = tmp_path / "bin"
    wrapper.mkdir()
    started = tmp_path / "log-started"
    (wrapper / "git").write_text(
        "#!/bin/sh\n"
        f'case " $* " in *" log "*) : > "{started}"; sleep 2;; esac\n'
        f'exec "{real_git}" "$@"\n',
        encoding="utf-8",
    )
    (wrapper / "git").chmod(0o755)
    config = git_config(tmp_path)
    url = f"sqlite:///{tmp_path / 'w.db'}"
    env = dict(os.environ, PATH=f"{wrapper}{os.pathsep}{os.environ['PATH']}", COLUMNS="200")
    env.pop("POISE_DATABASE_URL", None)
    terminal = subprocess.Popen(
        [sys.executable, "-m", "poise.cli", "sync", "--config", str(config), "--db", url],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a process group of its own, as a shell's foreground job
    )
    try:
        deadline = time.monotonic() + 60
        while not started.exists():
            assert terminal.poll() is None and time.monotonic() < deadline, terminal.stderr
            time.sleep(0.02)
        os.killpg(terminal.pid, signal.SIGINT)  # what the terminal sends on Ctrl-C
        _out, err = terminal.communicate(timeout=60)
    finally:
        if terminal.poll() is None:
            terminal.kill()
    assert "SIGINT: finishing the scope under way, then stopping" in err
    assert terminal.returncode == 0, err  # git was the last source: nothing skipped
    with sqlite3.connect(tmp_path / "w.db") as connection:
        assert connection.execute("SELECT count(*) FROM changes").fetchone() == (3,)
    assert lock_is_free(url)
