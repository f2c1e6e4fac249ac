"""One sync per warehouse, and `poise sync --every`: real processes, real locks, real signals.

A loopback PagerDuty whose list requests wait for the test to open a gate keeps a sync busy
for as long as the test needs (a second sync meeting its lock, a SIGTERM arriving
mid-source), however slowly the processes start on a loaded machine. Both
engines: the SQLite lock file and the PostgreSQL advisory lock.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import IO

import pytest
import yaml
from incident_fakes import FakePagerDuty
from replay import RecordedRequest, ReplayServer, Reply
from sqlalchemy import create_engine, func, select, text

from poise.commands.sync import jittered, parse_interval
from poise.timeutil import utcnow
from poise.warehouse import open_warehouse, schema
from poise.warehouse.lock import SyncLocked, sync_lock

TOKEN = "pd-lock-T0ken-never-stored"


def gated_pagerduty(server: ReplayServer, gate: threading.Event | None = None) -> FakePagerDuty:
    """A PagerDuty account whose list requests are answered once `gate` is set."""
    fake = FakePagerDuty(server)
    fake.incident(
        "QLOCK00000001",
        1,
        service="PLOCK01",
        created=utcnow() - timedelta(days=2),
        acknowledged=utcnow() - timedelta(days=2) + timedelta(minutes=5),
        resolved=utcnow() - timedelta(days=2) + timedelta(hours=1),
    )
    route = next(r for r in server.routes if r.path == "/incidents")
    answer = route.handler
    assert answer is not None

    def held(request: RecordedRequest) -> Reply:
        if gate is not None:
            gate.wait(90)
        return answer(request)

    route.handler = held
    return fake


def write_config(tmp_path: Path, server: ReplayServer) -> Path:
    config = tmp_path / "poise.yaml"
    since = (utcnow() - timedelta(days=10)).strftime("%Y-%m-%d")
    config.write_text(
        yaml.safe_dump(
            {
                "teams": [{"name": "payments"}],
                "services": [
                    {"name": "checkout", "team": "payments", "pagerduty": {"service_id": "PLOCK01"}}
                ],
                "sources": {
                    "pagerduty": {
                        "base_url": server.base_url,
                        "token_env": "LOCK_TEST_PD_TOKEN",
                        "since": since,
                        "max_retries": 0,
                    }
                },
            }
        ),
        encoding="utf-8",
    )
    return config


def poise(
    tmp_path: Path, *args: str, stderr: IO[str] | int = subprocess.PIPE
) -> subprocess.Popen[str]:
    env = dict(os.environ, LOCK_TEST_PD_TOKEN=TOKEN, COLUMNS="200")
    env.pop("POISE_DATABASE_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "poise.cli", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )


def wait_for(condition: Callable[[], object], timeout: float = 20.0, what: str = "it") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def list_requests(server: ReplayServer) -> list[RecordedRequest]:
    return server.requests_to("/incidents")


def incident_count(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.scalar(select(func.count()).select_from(schema.incidents)) or 0)
    finally:
        engine.dispose()


# --- the lock itself -------------------------------------------------------------------------


def test_a_second_holder_is_refused_until_the_first_lets_go(warehouse_url: str) -> None:
    first, second = open_warehouse(warehouse_url), open_warehouse(warehouse_url)
    try:
        with sync_lock(first, warehouse_url):
            with pytest.raises(SyncLocked) as refused, sync_lock(second, warehouse_url):
                pass
            message = str(refused.value)
            assert message.startswith("another poise sync is running against ")
            assert f"pid {os.getpid()}" in message
            assert "since 20" in message
        with sync_lock(second, warehouse_url):  # released: free again
            pass
    finally:
        first.dispose()
        second.dispose()


def test_a_killed_holder_leaves_no_lock_behind(warehouse_url: str, tmp_path: Path) -> None:
    open_warehouse(warehouse_url).dispose()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from poise.warehouse import open_engine\n"
            "from poise.warehouse.lock import sync_lock\n"
            "with sync_lock(open_engine(sys.argv[1])):\n"
            "    print('held', flush=True)\n"
            "    time.sleep(60)\n",
            warehouse_url,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        engine = open_warehouse(warehouse_url)
        with pytest.raises(SyncLocked, match=f"pid {holder.pid}"), sync_lock(engine):
            pass
        holder.kill()  # SIGKILL: no clean-up code runs
        holder.wait(10)

        def free() -> bool:
            try:
                with sync_lock(engine):
                    return True
            except SyncLocked:
                return False

        wait_for(free, 10, "the lock of a killed process to go")
        engine.dispose()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)


def test_two_warehouses_in_one_postgres_database_do_not_share_a_lock(postgres_url: str) -> None:
    base = postgres_url.split("?")[0]
    admin = create_engine(base)
    with admin.begin() as connection:  # a second warehouse: its own schema, same database
        connection.execute(text('CREATE SCHEMA IF NOT EXISTS "t_lock_other"'))
    one = open_warehouse(postgres_url)
    two = open_warehouse(f"{base}?options=-csearch_path%3Dt_lock_other")
    try:
        with sync_lock(one), sync_lock(two):
            pass
    finally:
        one.dispose()
        two.dispose()
        with admin.begin() as connection:
            connection.execute(text('DROP SCHEMA "t_lock_other" CASCADE'))
        admin.dispose()


# --- two real syncs ----------------------------------------------------------------------------


def test_a_second_sync_is_refused_with_a_clear_message(
    warehouse_url: str, replay_server: ReplayServer, tmp_path: Path
) -> None:
    gate = threading.Event()
    gated_pagerduty(replay_server, gate)
    config = write_config(tmp_path, replay_server)
    common = ("--config", str(config), "--db", warehouse_url)
    open_warehouse(warehouse_url).dispose()  # migrated before either starts
    first = poise(tmp_path, "sync", *common)
    try:
        wait_for(lambda: list_requests(replay_server), 60, "the first sync to reach PagerDuty")
        second = poise(tmp_path, "sync", *common)
        _, err = second.communicate(timeout=60)
        assert second.returncode == 1, err
        assert "poise: another poise sync is running against " in err
        assert f"pid {first.pid}" in err
        assert "Traceback" not in err
        assert len(list_requests(replay_server)) == 1  # the second fetched nothing
        gate.set()
        _, err = first.communicate(timeout=60)
        assert first.returncode == 0, err
    finally:
        gate.set()
        if first.poll() is None:
            first.kill()
    assert incident_count(warehouse_url) == 1
    third = poise(tmp_path, "sync", *common)  # the lock went with the first
    _, err = third.communicate(timeout=60)
    assert third.returncode == 0, err


# --- --every ---------------------------------------------------------------------------------------


def test_sigterm_during_a_sync_finishes_the_source_and_exits_zero(
    warehouse_url: str, replay_server: ReplayServer, tmp_path: Path
) -> None:
    gate = threading.Event()
    gated_pagerduty(replay_server, gate)
    config = write_config(tmp_path, replay_server)
    loop = poise(tmp_path, "sync", "--every", "1h", "--config", str(config), "--db", warehouse_url)
    try:
        wait_for(lambda: list_requests(replay_server), 60, "the sync to reach PagerDuty")
        loop.send_signal(signal.SIGTERM)
        time.sleep(0.5)  # the signal arrives while the source waits for its answer
        gate.set()
        out, err = loop.communicate(timeout=60)
    finally:
        gate.set()
        if loop.poll() is None:
            loop.kill()
    assert loop.returncode == 0, err
    assert "SIGTERM: finishing the scope under way, then stopping" in err
    assert "stopped early (signal)" not in err  # pagerduty was the only one
    assert "sync loop stopped" in err
    assert "next sync at" not in err  # stopped, not scheduled again
    assert "pagerduty" in out  # the summary of the finished source
    assert incident_count(warehouse_url) == 1  # the source ran to its end


def test_the_loop_syncs_again_after_the_interval_and_stops_between_rounds(
    sqlite_url: str, replay_server: ReplayServer, tmp_path: Path
) -> None:
    gated_pagerduty(replay_server)
    config = write_config(tmp_path, replay_server)
    loop = poise(tmp_path, "sync", "--every", "1s", "--config", str(config), "--db", sqlite_url)
    try:
        wait_for(lambda: len(list_requests(replay_server)) >= 3, 60, "three rounds")
        loop.send_signal(signal.SIGINT)
        out, err = loop.communicate(timeout=30)
    finally:
        if loop.poll() is None:
            loop.kill()
    assert loop.returncode == 0, err
    assert err.count("next sync at") >= 2
    assert "SIGINT" in err and "sync loop stopped" in err
    assert out.count("poise sync") >= 2  # a summary table per round
    assert incident_count(sqlite_url) == 1  # rounds do not double anything


def test_the_loop_waits_when_another_sync_holds_the_lock(
    sqlite_url: str, replay_server: ReplayServer, tmp_path: Path
) -> None:
    gated_pagerduty(replay_server)
    config = write_config(tmp_path, replay_server)
    engine = open_warehouse(sqlite_url)
    log = tmp_path / "loop.err"
    try:
        with sync_lock(engine, sqlite_url), log.open("w") as stderr:
            loop = poise(
                tmp_path,
                "sync",
                "--every",
                "1s",
                "--config",
                str(config),
                "--db",
                sqlite_url,
                stderr=stderr,
            )
            try:
                wait_for(lambda: "trying again next round" in log.read_text(), 60, "a refusal")
                assert loop.poll() is None  # still running: a held lock is not fatal to a loop
                assert not list_requests(replay_server)
            except BaseException:
                loop.kill()
                raise
        wait_for(lambda: list_requests(replay_server), 30, "a round once the lock is free")
        loop.send_signal(signal.SIGTERM)
        loop.communicate(timeout=30)
    finally:
        engine.dispose()
    err = log.read_text()
    assert loop.returncode == 0, err
    assert "poise: another poise sync is running against" in err
    assert f"pid {os.getpid()}" in err


# --- intervals -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15m", 900), ("1h", 3600), ("90s", 90), ("90", 90), ("2d", 172800), ("1.5h", 5400)],
)
def test_intervals(text: str, seconds: float) -> None:
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["", "15 minutes", "m", "-5m", "0s", "0.5s"])
def test_bad_intervals_are_usage_errors(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_interval(text)


def test_jitter_stays_within_ten_percent_and_varies() -> None:
    rng = random.Random(7)
    waits = [jittered(900, rng) for _ in range(500)]
    assert all(810 <= wait <= 990 for wait in waits)
    assert max(waits) - min(waits) > 120  # it does move
