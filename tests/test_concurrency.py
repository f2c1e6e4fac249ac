"""Pages keep working while a sync writes, and never see half of it.

A writer process (`poise import` of 12,000 deployments with their changes, one transaction,
as a sync page is) runs while reader threads compute the figures the pages show, through
the dashboard's own query functions below their cache, over and over; the Overview page
is rendered (AppTest) at the same time. Every figure seen must be the one of before the
write or of after it: deployments and their changes arrive together or not at all.
SQLite (WAL: readers do not block the writer nor see its uncommitted rows) and PostgreSQL
(MVCC).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import DatabaseError

from dashboard import data
from dashboard.data import Query, Warehouse
from metrics import Period, Settings
from poise.cli import main
from poise.warehouse import open_warehouse, schema
from poise.warehouse.engine import SNAPSHOT_ATTEMPTS, read_consistently, read_snapshot

START = datetime(2026, 6, 1, tzinfo=UTC)
END = datetime(2026, 9, 1, tzinfo=UTC)
SERVICES = [f"svc-{n:02d}" for n in range(12)]
BEFORE, WRITTEN = 3_000, 12_000


def write_files(folder: Path) -> tuple[Path, Path, Path, Path]:
    services = folder / "services.csv"
    services.write_text(
        "name,team\n" + "".join(f"{s},team-{i % 4}\n" for i, s in enumerate(SERVICES)),
        encoding="utf-8",
    )

    def changes_and_deployments(first: int, count: int, tag: str) -> tuple[Path, Path]:
        changes = folder / f"changes-{tag}.csv"
        deployments = folder / f"deployments-{tag}.csv"
        change_rows = ["id,service,sha,committed_at\n"]
        deployment_rows = ["id,service,environment,deployed_at,status,sha,change_ids\n"]
        span = (END - START).total_seconds()
        for n in range(first, first + count):
            service = SERVICES[n % len(SERVICES)]
            deployed = START + timedelta(seconds=span * ((n * 7919) % 100_000) / 100_000)
            committed = deployed - timedelta(hours=1 + n % 50)
            change_rows.append(f"c{n},{service},{n:040x},{committed:%Y-%m-%dT%H:%M:%SZ}\n")
            deployment_rows.append(
                f"d{n},{service},production,{deployed:%Y-%m-%dT%H:%M:%SZ},success,{n:040x},c{n}\n"
            )
        changes.write_text("".join(change_rows), encoding="utf-8")
        deployments.write_text("".join(deployment_rows), encoding="utf-8")
        return changes, deployments

    before_changes, before_deployments = changes_and_deployments(0, BEFORE, "before")
    # The written batch's changes land first (a separate step); its deployments, which ship
    # them, land in the one transaction the readers race against.
    _, later_deployments = changes_and_deployments(BEFORE, WRITTEN, "later")
    return services, before_changes, before_deployments, later_deployments


def figures(warehouse: Warehouse, team: str | None = None) -> tuple[int, int]:
    card = data.scorecard(warehouse, Query(START, END, team, None))
    dora = card["dora"]
    return dora["deployment_frequency"]["deployments"], dora["lead_time"]["changes"]


@pytest.mark.slow
def test_pages_during_a_write_see_before_or_after_never_half(
    warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services, before_changes, before_deployments, later_deployments = write_files(tmp_path)
    db = ["--db", warehouse_url]
    assert main(["import", "--kind", "services", str(services), *db]) == 0
    assert main(["import", "--kind", "changes", str(before_changes), *db]) == 0
    assert main(["import", "--kind", "deployments", str(before_deployments), *db]) == 0
    assert main(["import", "--kind", "changes", str(tmp_path / "changes-later.csv"), *db]) == 0

    engine = open_warehouse(warehouse_url)
    warehouse = Warehouse(engine, Settings())
    before = figures(warehouse)
    assert before[0] == BEFORE

    seen: list[tuple[float, tuple[int, int]]] = []  # (when it finished, figures)
    errors: list[BaseException] = []
    renders: list[Any] = []
    writing = threading.Event()
    finished = threading.Event()

    def reader() -> None:
        while not finished.is_set():
            try:
                pair = figures(warehouse)
                seen.append((time.monotonic(), pair))
            except BaseException as exc:
                errors.append(exc)
                return

    def render_overview() -> None:
        from streamlit.testing.v1 import AppTest

        from dashboard import queries

        writing.wait(60)
        while not finished.is_set():
            try:
                queries.clear()
                app = AppTest.from_file(str(Path(__file__).parents[1] / "pages/overview.py"))
                app.query_params["from"] = f"{START:%Y-%m-%d}"
                app.query_params["to"] = f"{END:%Y-%m-%d}"
                renders.append(app.run(timeout=120))
            except BaseException as exc:
                errors.append(exc)
                return

    monkeypatch.setenv("POISE_DATABASE_URL", warehouse_url)
    monkeypatch.delenv("POISE_CONFIG", raising=False)
    threads = [threading.Thread(target=reader) for _ in range(2)]
    threads.append(threading.Thread(target=render_overview))
    for thread in threads:
        thread.start()
    env = dict(os.environ, POISE_DATABASE_URL=warehouse_url)
    started = time.monotonic()
    try:
        writing.set()
        done = subprocess.run(
            [sys.executable, "-m", "poise.cli", "import", "--kind", "deployments",
             str(later_deployments), *db],
            env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        stopped = time.monotonic()
        while time.monotonic() < stopped + 30 and not [t for t, _ in seen if t > stopped]:
            time.sleep(0.1)  # one more read after the commit, so "after" is seen too
    finally:
        finished.set()
        for thread in threads:
            thread.join(300)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    after = figures(warehouse)
    engine.dispose()

    assert not errors, errors
    assert after[0] == BEFORE + WRITTEN and after[1] > before[1]
    torn = [pair for _, pair in seen if pair not in (before, after)]
    assert not torn, f"half a write seen: {torn[:5]} (before {before}, after {after})"
    during = [pair for moment, pair in seen if started < moment < stopped]
    assert len(during) >= 3, f"only {len(during)} reads while the writer ran"
    assert after in [pair for _, pair in seen]
    assert renders and all(not render.exception for render in renders)
    assert elapsed < 600


def _count(connection: Any) -> int:
    return int(connection.scalar(select(func.count()).select_from(schema.teams)) or 0)


def test_a_read_snapshot_sees_one_state_while_a_writer_commits(warehouse: Any) -> None:
    """Deterministic: a commit lands between two reads of one snapshot, which does not see it
    (a plain connection would), and the writer is not blocked by the reader."""
    with warehouse.begin() as connection:
        connection.execute(
            insert(schema.teams), {"name": "one", "source": "t", "updated_at": START}
        )
    with read_snapshot(warehouse) as snapshot:
        assert _count(snapshot) == 1
        with warehouse.begin() as writer:  # would wait or fail if the reader blocked it
            writer.execute(
                insert(schema.teams), {"name": "two", "source": "t", "updated_at": START}
            )
        with warehouse.connect() as plain:
            assert _count(plain) == 2
        assert _count(snapshot) == 1
    with read_snapshot(warehouse) as snapshot:
        assert _count(snapshot) == 2


def test_the_figures_are_read_in_one_snapshot(
    sqlite_warehouse: Any, snapshots_taken: Callable[[Any], list[Any]]
) -> None:
    import metrics.scorecard as scorecard
    from poise.warehouse import engine as engine_module

    assert scorecard.read_consistently is read_consistently  # compute() reads through it
    snapshots = snapshots_taken(engine_module)
    figures(Warehouse(sqlite_warehouse, Settings()))
    assert len(snapshots) == 1


def failing_reads(errors: list[BaseException]) -> tuple[Callable[[Any], int], list[int]]:
    """A read raising `errors` one per call, then counting the teams."""
    calls: list[int] = []

    def read(connection: Any) -> int:
        calls.append(len(calls) + 1)
        if errors:
            raise errors.pop(0)
        return _count(connection)

    return read, calls


@pytest.mark.parametrize("raised_by", ["sqlalchemy", "driver"])
def test_a_read_sqlite_found_malformed_for_a_moment_is_read_again(
    sqlite_warehouse: Any,
    malformed: DatabaseError,
    raised_by: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Seen in CI under load (SQLite 3.40.1): a page read "malformed" while `poise import`
    committed in another process, the file sound before and after; the Overview failed.
    Most frames are fetched from the driver's cursor (`metrics.frames.fetch_frame`), whose
    error is sqlite3's own, not SQLAlchemy's: the suite failed on that one after the
    retry caught only SQLAlchemy's."""
    error = malformed if raised_by == "sqlalchemy" else malformed.orig
    assert isinstance(error, sqlite3.DatabaseError) == (raised_by == "driver")
    read, calls = failing_reads([error, error])
    assert read_consistently(sqlite_warehouse, read) == 0
    assert calls == [1, 2, 3]
    assert "SQLite read a malformed page (attempt 2): reading again" in caplog.text


def test_a_snapshot_that_read_malformed_leaves_the_pool(
    sqlite_warehouse: Any, malformed: DatabaseError
) -> None:
    """Its page cache may hold what it read malformed: the next attempt takes a connection
    that reads the file afresh. Another failure gives the connection back to the pool."""
    with pytest.raises(sqlite3.DatabaseError), read_snapshot(sqlite_warehouse) as connection:
        dropped = connection.connection.dbapi_connection
        raise malformed.orig
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        dropped.execute("SELECT 1")
    with pytest.raises(ValueError), read_snapshot(sqlite_warehouse) as connection:
        kept = connection.connection.dbapi_connection
        raise ValueError("a bug in a read")
    assert kept.execute("SELECT 1").fetchone() == (1,)
    with read_snapshot(sqlite_warehouse) as connection:
        assert _count(connection) == 0


def test_a_damaged_file_or_another_error_is_raised_as_it_is(
    sqlite_warehouse: Any, malformed: DatabaseError
) -> None:
    read, calls = failing_reads([malformed] * SNAPSHOT_ATTEMPTS)
    with pytest.raises(DatabaseError, match="malformed"):
        read_consistently(sqlite_warehouse, read)
    assert len(calls) == SNAPSHOT_ATTEMPTS

    other = DatabaseError("SELECT", {}, sqlite3.DatabaseError("file is not a database"))
    read, calls = failing_reads([other])
    with pytest.raises(DatabaseError, match="not a database"):
        read_consistently(sqlite_warehouse, read)
    assert calls == [1]


def test_a_page_query_sqlite_found_malformed_for_a_moment_is_asked_again(
    dashboard_demo_url: str, use: Any, malformed: DatabaseError, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seen in a fresh clone's suite after the figures' reads were retried: the Overview's
    unusual weeks (`metrics.anomalies`, a query of its own) read "malformed" while `poise
    import` committed, and the page showed a traceback. Every page query is asked again."""
    from streamlit.testing.v1 import AppTest

    import metrics.anomalies as anomalies
    from dashboard import queries

    use(dashboard_demo_url)
    queries.clear()  # the demo's weeks may be cached by another test of this process
    failures = [malformed, malformed.orig]  # as SQLAlchemy raises it, and as the driver does
    real_load = anomalies.load

    def flaky_load(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return real_load(*args, **kwargs)

    monkeypatch.setattr(anomalies, "load", flaky_load)
    app = AppTest.from_file(str(Path(__file__).parents[1] / "pages/overview.py"))
    app.run(timeout=240)
    assert not failures  # the unusual weeks were read, and met both
    assert not app.exception, [e.message for e in app.exception]
    assert "Unusual weeks" in [header.value for header in app.subheader]

    queries.clear()
    failures.extend([malformed] * SNAPSHOT_ATTEMPTS)  # a file damaged for good says so
    app = AppTest.from_file(str(Path(__file__).parents[1] / "pages/overview.py"))
    app.run(timeout=240)
    assert "malformed" in app.exception[0].message


def test_the_unusual_weeks_are_read_in_one_snapshot(
    sqlite_warehouse: Any, snapshots_taken: Callable[[Any], list[Any]]
) -> None:
    """Deployments, changes and incidents of the weeks judged come from one state: a sync
    committing between two of their statements would pair this week's deployments with
    last week's changes."""
    import metrics.anomalies as anomalies

    snapshots = snapshots_taken(anomalies)
    judged = anomalies.weekly_judgements(sqlite_warehouse, Period(START, END), now=END)
    assert len(snapshots) == 1 and judged.empty
