"""`poise import`: every kind from CSV and JSON Lines, every kind of bad row, all or nothing."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from poise import import_files, importer
from poise.errors import ImportFileError
from poise.importer import import_file
from poise.warehouse import open_warehouse, schema
from poise.warehouse.sync_state import read_state
from poise.warehouse.upsert import upsert_rows

ORDER = ("services", "changes", "deployments", "incidents", "slos", "sli", "toil")
TABLES = (
    schema.teams,
    schema.services,
    schema.changes,
    schema.deployments,
    schema.deployment_changes,
    schema.incidents,
    schema.slos,
    schema.sli_samples,
    schema.toil_entries,
)
# JSON Lines carries these as numbers, CSV as text: both must give the same rows.
NUMERIC = {"pr_number", "target", "window_days", "good", "total", "hours"}

GOOD: dict[str, list[dict[str, str]]] = {
    "services": [
        {"name": "checkout", "team": "payments"},
        {"name": "search", "team": "discovery"},
    ],
    "changes": [
        {
            "id": "c1",
            "service": "checkout",
            "sha": "a1",
            "committed_at": "2026-07-01T09:00:00+02:00",
            "merged_at": "2026-07-01T10:00:00Z",
            "pr_number": "12",
            "title": "Add cart, quickly",
            "author": "ann",
        },
        {
            "id": "c2",
            "service": "checkout",
            "sha": "a2",
            "committed_at": "2026-07-01T11:00:00Z",
            "merged_at": "",
            "pr_number": "",
            "title": "",
            "author": "",
        },
        {
            "id": "c3",
            "service": "search",
            "sha": "b1",
            "committed_at": "2026-07-02T03:00:00-05:00",
            "merged_at": "",
            "pr_number": "13",
            "title": "Faster index",
            "author": "bob",
        },
        {
            "id": "c4",
            "service": "checkout",
            "sha": "a3",
            "committed_at": "2026-07-03T08:00:00Z",
            "merged_at": "2026-07-03T09:00:00Z",
            "pr_number": "14",
            "title": "Fix cart",
            "author": "ann",
        },
    ],
    "deployments": [
        {
            "id": "d1",
            "service": "checkout",
            "environment": "production",
            "deployed_at": "2026-07-01T12:00:00Z",
            "status": "success",
            "sha": "a2",
            "change_ids": "c1 c2",
            "rollback_of": "",
            "remediation_of": "",
        },
        {
            "id": "d2",
            "service": "checkout",
            "environment": "production",
            "deployed_at": "2026-07-01T13:00:00Z",
            "status": "success",
            "sha": "a1",
            "change_ids": "",
            "rollback_of": "d1",
            "remediation_of": "",
        },
        {
            "id": "d3",
            "service": "search",
            "environment": "staging",
            "deployed_at": "2026-07-02T09:00:00Z",
            "status": "failure",
            "sha": "b1",
            "change_ids": "c3",
            "rollback_of": "",
            "remediation_of": "",
        },
        {
            "id": "d4",
            "service": "checkout",
            "environment": "production",
            "deployed_at": "2026-07-03T10:00:00Z",
            "status": "success",
            "sha": "a3",
            "change_ids": "c4",
            "rollback_of": "",
            "remediation_of": "d1",
        },
    ],
    "incidents": [
        {
            "id": "i1",
            "service": "checkout",
            "severity": "SEV2",
            "started_at": "2026-07-01T12:30:00Z",
            "detected_at": "2026-07-01T12:35:00Z",
            "acknowledged_at": "2026-07-01T12:40:00Z",
            "resolved_at": "2026-07-01T13:10:00Z",
            "caused_by_deployment": "d1",
            "cause": "",
            "title": "Cart errors",
            "postmortem_url": "https://wiki.example/pm/i1",
        },
        {
            "id": "i2",
            "service": "search",
            "severity": "SEV3",
            "started_at": "2026-07-02T10:00:00Z",
            "detected_at": "2026-07-02T10:01:00Z",
            "acknowledged_at": "",
            "resolved_at": "",
            "caused_by_deployment": "",
            "cause": "external",
            "title": "CDN outage",
            "postmortem_url": "",
        },
        {
            "id": "i3",
            "service": "checkout",
            "severity": "SEV4",
            "started_at": "2026-07-03T11:00:00+01:00",
            "detected_at": "2026-07-03T10:05:00Z",
            "acknowledged_at": "2026-07-03T10:10:00Z",
            "resolved_at": "2026-07-03T12:00:00Z",
            "caused_by_deployment": "",
            "cause": "",
            "title": "",
            "postmortem_url": "",
        },
    ],
    "slos": [
        {
            "name": "checkout-availability",
            "service": "checkout",
            "target": "0.999",
            "window_days": "28",
        },
        {"name": "search-latency", "service": "search", "target": "0.99", "window_days": "30"},
    ],
    "sli": [
        {
            "slo": "checkout-availability",
            "timestamp": "2026-07-01T00:00:00Z",
            "good": "100",
            "total": "100",
        },
        {
            "slo": "checkout-availability",
            "timestamp": "2026-07-01T01:00:00Z",
            "good": "98",
            "total": "100",
        },
        {
            "slo": "checkout-availability",
            "timestamp": "2026-07-01T02:00:00Z",
            "good": "0",
            "total": "0",
        },
        {
            "slo": "search-latency",
            "timestamp": "2026-07-01T02:00:00+02:00",
            "good": "45.5",
            "total": "50",
        },
    ],
    "toil": [
        {"team": "payments", "date": "2026-07-01", "hours": "2.5", "category": "tickets"},
        {"team": "discovery", "date": "2026-07-01", "hours": "1", "category": "restarts"},
        {"team": "payments", "date": "2026-07-02", "hours": "0", "category": "tickets"},
    ],
}
GOOD_COUNTS = {
    "teams": 2,
    "services": 2,
    "changes": 4,
    "deployments": 4,
    "deployment_changes": 4,
    "incidents": 3,
    "slos": 2,
    "sli_samples": 4,
    "toil_entries": 3,
}


def _json_value(name: str, value: str) -> Any:
    if value == "":
        return None
    if name == "change_ids":
        return value.split()
    if name in NUMERIC:
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def write_rows(folder: Path, name: str, rows: list[dict[str, str]], fmt: str) -> Path:
    """Write rows as CSV (header from the first row) or as JSON Lines with typed values."""
    path = folder / f"{name}.{fmt}"
    with path.open("w", newline="", encoding="utf-8") as handle:
        if fmt == "csv":
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(list(rows[0]))
            writer.writerows([list(row.values()) for row in rows])
        else:
            for row in rows:
                handle.write(json.dumps({k: _json_value(k, v) for k, v in row.items()}) + "\n")
    return path


def data_line(fmt: str, index: int) -> int:
    """The line of data row `index`: after the header in CSV, from line 1 in JSON Lines."""
    return index + 2 if fmt == "csv" else index + 1


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
            for table in TABLES
        }


def snapshot(engine: Engine) -> dict[str, list[tuple]]:
    with engine.connect() as connection:
        return {
            table.name: [
                tuple(row)
                for row in connection.execute(select(table).order_by(*table.primary_key.columns))
            ]
            for table in TABLES
        }


def import_good(
    engine: Engine, folder: Path, fmt: str, kinds=ORDER
) -> dict[str, importer.ImportResult]:
    return {
        kind: import_file(engine, kind, write_rows(folder, kind, GOOD[kind], fmt)) for kind in kinds
    }


@pytest.fixture(params=["csv", "jsonl"])
def fmt(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(
    params=[
        ("sqlite", "csv"),
        ("sqlite", "jsonl"),
        pytest.param(("postgresql", "csv"), marks=pytest.mark.postgres),
    ],
    ids=["sqlite-csv", "sqlite-jsonl", "postgresql-csv"],
)
def engine_and_format(request: pytest.FixtureRequest) -> Iterator[tuple[Engine, str]]:
    """Both formats on SQLite; on PostgreSQL (where only the writes differ) CSV."""
    engine_name, file_format = request.param
    url = request.getfixturevalue("sqlite_url" if engine_name == "sqlite" else "postgres_url")
    engine = open_warehouse(url)
    try:
        yield engine, file_format
    finally:
        engine.dispose()


# --- good files --------------------------------------------------------------------------


def test_every_kind_imports_from_a_good_file(warehouse: Engine, tmp_path: Path, fmt: str) -> None:
    results = import_good(warehouse, tmp_path, fmt)
    assert {kind: (r.rows, r.written) for kind, r in results.items()} == {
        kind: (len(GOOD[kind]), len(GOOD[kind])) for kind in ORDER
    }
    assert counts(warehouse) == GOOD_COUNTS
    rows = snapshot(warehouse)
    change = {row[0]: row for row in rows["changes"]}
    c = schema.changes.c
    index = {column.name: position for position, column in enumerate(schema.changes.columns)}
    assert change["c1"][index[c.committed_at.name]] == datetime(2026, 7, 1, 7, 0, tzinfo=UTC)
    assert change["c3"][index[c.committed_at.name]] == datetime(2026, 7, 2, 8, 0, tzinfo=UTC)
    assert change["c1"][index["pr_number"]] == 12
    assert change["c1"][index["title"]] == "Add cart, quickly"
    assert change["c2"][index["merged_at"]] is None
    assert change["c2"][index["title"]] is None
    assert change["c1"][index["source"]] == "import"
    assert change["c1"][index["source_id"]] == "c1"
    assert rows["deployment_changes"] == [("d1", "c1"), ("d1", "c2"), ("d3", "c3"), ("d4", "c4")]
    with warehouse.connect() as connection:
        deployments = {row.id: row for row in connection.execute(select(schema.deployments))}
        incidents = {row.id: row for row in connection.execute(select(schema.incidents))}
        slos = {row.name: row for row in connection.execute(select(schema.slos))}
        samples = connection.execute(
            select(schema.sli_samples).order_by(schema.sli_samples.c.slo, schema.sli_samples.c.ts)
        ).all()
        toil = connection.execute(
            select(schema.toil_entries).order_by(
                schema.toil_entries.c.team, schema.toil_entries.c.day
            )
        ).all()
        teams = connection.execute(select(schema.teams.c.name, schema.teams.c.source)).all()
    assert deployments["d2"].rollback_of == "d1" and deployments["d4"].remediation_of == "d1"
    assert deployments["d3"].status == "failure" and deployments["d3"].environment == "staging"
    assert deployments["d1"].deployed_at == datetime(2026, 7, 1, 12, tzinfo=UTC)
    assert incidents["i1"].caused_by_deployment == "d1"
    assert incidents["i2"].resolved_at is None and incidents["i2"].cause == "external"
    assert incidents["i3"].started_at == datetime(2026, 7, 3, 10, tzinfo=UTC)
    assert (slos["checkout-availability"].target, slos["checkout-availability"].window_days) == (
        0.999,
        28,
    )
    assert [(s.slo, s.ts, s.good, s.total) for s in samples] == [
        ("checkout-availability", datetime(2026, 7, 1, 0, tzinfo=UTC), 100.0, 100.0),
        ("checkout-availability", datetime(2026, 7, 1, 1, tzinfo=UTC), 98.0, 100.0),
        ("checkout-availability", datetime(2026, 7, 1, 2, tzinfo=UTC), 0.0, 0.0),
        ("search-latency", datetime(2026, 7, 1, 0, tzinfo=UTC), 45.5, 50.0),
    ]
    assert [(t.team, t.day, t.category, t.hours) for t in toil] == [
        ("discovery", date(2026, 7, 1), "restarts", 1.0),
        ("payments", date(2026, 7, 1), "tickets", 2.5),
        ("payments", date(2026, 7, 2), "tickets", 0.0),
    ]
    assert sorted(teams) == [("discovery", "import"), ("payments", "import")]


def test_importing_the_same_files_twice_changes_nothing(
    warehouse: Engine, tmp_path: Path, fmt: str
) -> None:
    import_good(warehouse, tmp_path, fmt)
    before_counts, before_rows = counts(warehouse), snapshot(warehouse)
    again = import_good(warehouse, tmp_path, fmt)
    assert {kind: r.written for kind, r in again.items()} == dict.fromkeys(ORDER, 0)
    assert {kind: r.unchanged for kind, r in again.items()} == {k: len(GOOD[k]) for k in ORDER}
    assert counts(warehouse) == before_counts
    assert snapshot(warehouse) == before_rows  # not even updated_at moved


def test_the_same_rows_as_csv_and_as_json_lines_are_the_same_rows(
    warehouse: Engine, tmp_path: Path
) -> None:
    import_good(warehouse, tmp_path, "csv")
    before = snapshot(warehouse)
    again = import_good(warehouse, tmp_path, "jsonl")
    assert {kind: r.written for kind, r in again.items()} == dict.fromkeys(ORDER, 0)
    assert snapshot(warehouse) == before


def test_a_changed_row_is_updated_and_links_follow(warehouse: Engine, tmp_path: Path) -> None:
    import_good(warehouse, tmp_path, "csv")
    deployments = [dict(row) for row in GOOD["deployments"]]
    deployments[0]["change_ids"] = "c1"  # c2 did not ship with d1 after all
    deployments[2]["status"] = "success"
    result = import_file(warehouse, "deployments", write_rows(tmp_path, "d", deployments, "csv"))
    assert (result.rows, result.written) == (4, 2)  # d1 by its links, d3 by its status
    rows = snapshot(warehouse)
    assert rows["deployment_changes"] == [("d1", "c1"), ("d3", "c3"), ("d4", "c4")]
    assert counts(warehouse)["deployments"] == 4


def test_services_import_keeps_a_configured_team_as_it_is(
    warehouse: Engine, tmp_path: Path
) -> None:
    with warehouse.begin() as connection:
        upsert_rows(
            connection,
            schema.teams,
            [{"name": "payments", "size": 6, "timezone": "Europe/Berlin", "source": "config"}],
        )
    import_good(warehouse, tmp_path, "csv", kinds=("services",))
    with warehouse.connect() as connection:
        team = connection.execute(
            select(schema.teams).where(schema.teams.c.name == "payments")
        ).one()
    assert (team.size, team.timezone, team.source) == (6, "Europe/Berlin", "config")


def test_optional_columns_may_be_left_out(warehouse: Engine, tmp_path: Path, fmt: str) -> None:
    import_good(warehouse, tmp_path, fmt, kinds=("services",))
    rows = [
        {"id": "c9", "service": "checkout", "sha": "f9", "committed_at": "2026-07-01T00:00:00Z"}
    ]
    result = import_file(warehouse, "changes", write_rows(tmp_path, "changes", rows, fmt))
    assert (result.rows, result.written) == (1, 1)


def test_a_header_only_csv_imports_nothing(sqlite_warehouse: Engine, tmp_path: Path) -> None:
    path = tmp_path / "services.csv"
    path.write_text("name,team\n", encoding="utf-8")
    result = import_file(sqlite_warehouse, "services", path)
    assert (result.rows, result.written) == (0, 0)


def test_csv_dialect_details_are_tolerated(sqlite_warehouse: Engine, tmp_path: Path) -> None:
    """A BOM, CRLF line ends, blank lines and spaces around names and values."""
    path = tmp_path / "services.csv"
    path.write_bytes(
        b"\xef\xbb\xbf\r\n name , team \r\n  checkout , payments \r\n\r\nsearch,discovery\r\n"
    )
    result = import_file(sqlite_warehouse, "services", path)
    assert (result.rows, result.written) == (2, 2)
    with sqlite_warehouse.connect() as connection:
        assert sorted(
            connection.execute(select(schema.services.c.name, schema.services.c.team))
        ) == [
            ("checkout", "payments"),
            ("search", "discovery"),
        ]


def test_a_lowercase_z_offset_is_utc(sqlite_warehouse: Engine, tmp_path: Path, fmt: str) -> None:
    import_good(sqlite_warehouse, tmp_path, fmt, kinds=("services",))
    rows = [{"id": "c9", "service": "checkout", "sha": "f", "committed_at": "2026-07-01T09:00:00z"}]
    import_file(sqlite_warehouse, "changes", write_rows(tmp_path, "changes", rows, fmt))
    with sqlite_warehouse.connect() as connection:
        stamp = connection.execute(select(schema.changes.c.committed_at)).scalar_one()
    assert stamp == datetime(2026, 7, 1, 9, tzinfo=UTC)


def test_the_progress_callback_sees_every_byte(
    sqlite_warehouse: Engine, tmp_path: Path, fmt: str
) -> None:
    rows = [{"name": f"service-{i}", "team": "payments"} for i in range(100)]
    path = write_rows(tmp_path, "services", rows, fmt)
    seen: list[int] = []
    import_file(sqlite_warehouse, "services", path, on_read=seen.append)
    assert sum(seen) == path.stat().st_size


def test_a_successful_import_is_recorded(warehouse: Engine, tmp_path: Path) -> None:
    import_good(warehouse, tmp_path, "csv", kinds=("services",))
    with warehouse.connect() as connection:
        state = read_state(connection, "import", "services", "services.csv")
    assert state.last_error is None and state.last_success_at is not None


# --- bad rows: the whole file is rejected with FILE:LINE: message -------------------------

BAD_VALUES = [
    # kind, row, column, value, message
    ("services", 1, "team", "", "team: missing value"),
    ("changes", 0, "id", "", "id: missing value"),
    (
        "changes",
        2,
        "committed_at",
        "yesterday",
        "committed_at: 'yesterday' is not an ISO 8601 timestamp with an offset",
    ),
    (
        "changes",
        3,
        "committed_at",
        "2026-02-30T10:00:00Z",
        "committed_at: '2026-02-30T10:00:00Z' is not a valid timestamp (day is out of range for month)",
    ),
    (
        "changes",
        1,
        "merged_at",
        "2026-07-01T10:00:00",
        "merged_at: timestamp '2026-07-01T10:00:00' has no offset: add Z or +HH:MM",
    ),
    (
        "deployments",
        1,
        "deployed_at",
        "2026-07-01 13:00",
        "deployed_at: timestamp '2026-07-01 13:00' has no offset: add Z or +HH:MM",
    ),
    ("changes", 1, "service", "nope", "service: unknown service 'nope'"),
    ("incidents", 2, "service", "chekout", "service: unknown service 'chekout'"),
    ("changes", 0, "pr_number", "twelve", "pr_number: 'twelve' is not a number"),
    ("changes", 0, "pr_number", "12.5", "pr_number: '12.5' is not a whole number"),
    ("deployments", 0, "status", "ok", "status: 'ok' is not one of success, failure"),
    (
        "deployments",
        2,
        "change_ids",
        "c3 c99",
        "change_ids: unknown change 'c99' (import changes first)",
    ),
    ("deployments", 1, "rollback_of", "d99", "rollback_of: unknown deployment 'd99'"),
    ("deployments", 3, "remediation_of", "d98", "remediation_of: unknown deployment 'd98'"),
    (
        "incidents",
        0,
        "caused_by_deployment",
        "d99",
        "caused_by_deployment: unknown deployment 'd99'",
    ),
    ("incidents", 0, "resolved_at", "2026-07-01T12:00:00Z", "resolved_at is before started_at"),
    (
        "incidents",
        2,
        "acknowledged_at",
        "2026-07-03T09:59:00Z",
        "acknowledged_at is before started_at",
    ),
    ("slos", 1, "target", "1.5", "target: 1.5 is not between 0 and 1"),
    ("slos", 0, "target", "0", "target: 0 is not between 0 and 1"),
    ("slos", 0, "window_days", "2.5", "window_days: '2.5' is not a whole number"),
    ("slos", 0, "window_days", "0", "window_days: must be at least 1"),
    ("slos", 0, "service", "nope", "service: unknown service 'nope'"),
    ("sli", 0, "slo", "nope", "slo: unknown slo 'nope'"),
    ("sli", 1, "good", "-1", "good: negative value -1"),
    ("sli", 3, "total", "-50", "total: negative value -50"),
    ("sli", 0, "good", "101", "good is greater than total"),
    ("sli", 2, "good", "many", "good: 'many' is not a number"),
    (
        "sli",
        1,
        "timestamp",
        "2026-07-01T01:00:00",
        "timestamp: timestamp '2026-07-01T01:00:00' has no offset: add Z or +HH:MM",
    ),
    ("toil", 1, "hours", "-2", "hours: negative value -2"),
    ("toil", 0, "date", "2026-02-30", "date: '2026-02-30' is not a valid date"),
    ("toil", 0, "date", "01/07/2026", "date: '01/07/2026' is not a date (YYYY-MM-DD)"),
    ("toil", 2, "team", "nobody", "team: unknown team 'nobody'"),
    ("changes", 0, "pr_number", "99999999999", "pr_number: 99999999999 is too large"),
    ("incidents", 0, "detected_at", "2026-07-01T12:00:00Z", "detected_at is before started_at"),
    ("deployments", 1, "rollback_of", "d2", "a deployment cannot roll back or remediate itself"),
    ("services", 0, "name", "x" * 201, "name: longer than 200 characters"),
    ("changes", 3, "id", "c1", "id 'c1' appears earlier in the file"),
    (
        "toil",
        2,
        "date",
        "2026-07-01",
        "team 'payments', date '2026-07-01', category 'tickets' appears earlier in the file",
    ),
    (  # the same instant as row 1, written with another offset
        "sli",
        2,
        "timestamp",
        "2026-07-01T03:00:00+02:00",
        "slo 'checkout-availability', timestamp '2026-07-01T03:00:00+02:00' appears earlier in the file",
    ),
]


def _before(kind: str) -> tuple[str, ...]:
    return ORDER[: ORDER.index(kind)]


@pytest.mark.parametrize(
    ("kind", "row", "column", "value", "message"),
    BAD_VALUES,
    ids=[f"{k}-{c}-{v[:24] or 'empty'}" for k, _, c, v, _ in BAD_VALUES],
)
def test_a_bad_row_rejects_the_whole_file(
    engine_and_format: tuple[Engine, str],
    tmp_path: Path,
    kind: str,
    row: int,
    column: str,
    value: str,
    message: str,
) -> None:
    warehouse, fmt = engine_and_format
    import_good(warehouse, tmp_path, fmt, kinds=_before(kind))
    before_counts, before_rows = counts(warehouse), snapshot(warehouse)
    rows = [dict(r) for r in GOOD[kind]]
    rows[row][column] = value
    path = write_rows(tmp_path, f"bad-{kind}", rows, fmt)
    with pytest.raises(ImportFileError) as caught:
        import_file(warehouse, kind, path)
    assert str(caught.value) == f"{path}:{data_line(fmt, row)}: {message}"
    assert counts(warehouse) == before_counts
    assert snapshot(warehouse) == before_rows
    with warehouse.connect() as connection:
        state = read_state(connection, "import", kind, path.name)
    assert state.last_error == str(caught.value)


def _expect(engine: Engine, kind: str, path: Path, message: str) -> None:
    before_counts, before_rows = counts(engine), snapshot(engine)
    with pytest.raises(ImportFileError) as caught:
        import_file(engine, kind, path)
    assert str(caught.value) == message.format(path=path)
    assert counts(engine) == before_counts
    assert snapshot(engine) == before_rows


def test_a_missing_column(sqlite_warehouse: Engine, tmp_path: Path, fmt: str) -> None:
    import_good(sqlite_warehouse, tmp_path, fmt, kinds=("services",))
    rows = [{k: v for k, v in r.items() if k != "committed_at"} for r in GOOD["changes"]]
    path = write_rows(tmp_path, "changes", rows, fmt)
    _expect(sqlite_warehouse, "changes", path, "{path}:1: missing column 'committed_at'")


def test_a_missing_column_in_one_json_line(sqlite_warehouse: Engine, tmp_path: Path) -> None:
    path = tmp_path / "services.jsonl"
    path.write_text('{"name": "a", "team": "t"}\n\n{"name": "b"}\n', encoding="utf-8")
    _expect(sqlite_warehouse, "services", path, "{path}:3: missing column 'team'")


def test_an_unknown_column(sqlite_warehouse: Engine, tmp_path: Path, fmt: str) -> None:
    rows = [{**row, "colour": "blue"} for row in GOOD["services"]]
    path = write_rows(tmp_path, "services", rows, fmt)
    _expect(
        sqlite_warehouse,
        "services",
        path,
        "{path}:1: unknown column 'colour' for --kind services (columns: name, team)",
    )


def test_a_column_named_twice(sqlite_warehouse: Engine, tmp_path: Path) -> None:
    path = tmp_path / "services.csv"
    path.write_text("name,team,name\ncheckout,payments,checkout\n", encoding="utf-8")
    _expect(sqlite_warehouse, "services", path, "{path}:1: column 'name' appears twice")


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
@pytest.mark.parametrize("content", ["", "\n\n"])
def test_an_empty_file(sqlite_warehouse: Engine, tmp_path: Path, suffix: str, content: str) -> None:
    path = tmp_path / f"services.{suffix}"
    path.write_text(content, encoding="utf-8")
    expected = {
        "csv": "{path}:1: empty file: expected a header row",
        "jsonl": "{path}:1: empty file: expected one JSON object per line",
    }[suffix]
    _expect(sqlite_warehouse, "services", path, expected)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "name,team\ncheckout,payments\nsearch,discovery,extra\n",
            "{path}:3: malformed CSV: 3 fields, the header has 2",
        ),
        (  # pandas would read an extra first-row field as an index column
            "name,team\ncheckout,payments,extra\nsearch,discovery\n",
            "{path}:2: malformed CSV: 3 fields, the header has 2",
        ),
        (
            'name,team\ncheckout,payments\n\nsearch,"discovery\n',
            "{path}:4: malformed CSV: unexpected end of data",
        ),
        (
            'name,team\ncheckout,"pay\nments"\nsearch,a,b\n',
            "{path}:4: malformed CSV: 3 fields, the header has 2",
        ),
    ],
    ids=["extra-field", "extra-field-first-row", "unclosed-quote", "after-multiline-field"],
)
def test_malformed_csv(
    sqlite_warehouse: Engine, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "services.csv"
    path.write_text(content, encoding="utf-8")
    _expect(sqlite_warehouse, "services", path, message)


def test_not_utf8(sqlite_warehouse: Engine, tmp_path: Path) -> None:
    path = tmp_path / "services.csv"
    path.write_bytes(b"name,team\ncheckout,payments\nsearch,discov\xe9ry\n")
    _expect(sqlite_warehouse, "services", path, "{path}:3: not UTF-8 text (byte 14 of the line)")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            '{"name": "checkout", "team": "payments"}\n{"name": "search", "team": \n',
            "{path}:2: not valid JSON (Expecting value: line 1 column 27 (char 26))",
        ),
        (
            '{"name": "checkout", "team": "payments"}\n\n["search", "discovery"]\n',
            "{path}:3: expected a JSON object per line",
        ),
    ],
    ids=["truncated", "not-an-object"],
)
def test_invalid_json_lines(
    sqlite_warehouse: Engine, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "services.jsonl"
    path.write_text(content, encoding="utf-8")
    _expect(sqlite_warehouse, "services", path, message)


def test_an_unknown_kind_and_a_missing_file(sqlite_warehouse: Engine, tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match=r"^unknown kind 'builds' \(kinds: services, "):
        import_file(sqlite_warehouse, "builds", tmp_path / "x.csv")
    with pytest.raises(ImportFileError, match=r"x\.csv: no such file$"):
        import_file(sqlite_warehouse, "services", tmp_path / "x.csv")


def test_a_multiline_field_does_not_shift_the_line(
    sqlite_warehouse: Engine, tmp_path: Path
) -> None:
    import_good(sqlite_warehouse, tmp_path, "csv", kinds=("services",))
    rows = [dict(r) for r in GOOD["changes"]]
    rows[0]["title"] = "Add cart\n\nwith a long\ndescription"
    rows[2]["service"] = "chekout"
    path = write_rows(tmp_path, "changes", rows, "csv")
    assert path.read_text(encoding="utf-8").splitlines()[6].startswith("c3,chekout,")
    _expect(sqlite_warehouse, "changes", path, "{path}:7: service: unknown service 'chekout'")


def test_blank_lines_do_not_shift_the_line(sqlite_warehouse: Engine, tmp_path: Path) -> None:
    path = tmp_path / "services.csv"
    path.write_text("\nname,team\n\ncheckout,payments\n\n\nsearch,\n", encoding="utf-8")
    _expect(sqlite_warehouse, "services", path, "{path}:7: team: missing value")


# --- all or nothing across chunks ---------------------------------------------------------


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(import_files, "CHUNK_ROWS", 2)
    return 2


def _changes(count: int, title: str) -> list[dict[str, str]]:
    return [
        {
            "id": f"c{i}",
            "service": "checkout",
            "sha": f"s{i}",
            "committed_at": f"2026-07-01T{i:02d}:00:00Z",
            "title": title,
        }
        for i in range(count)
    ]


def test_a_bad_row_in_a_late_chunk_undoes_the_earlier_chunks(
    warehouse: Engine, tmp_path: Path, fmt: str, small_chunks: int
) -> None:
    import_good(warehouse, tmp_path, fmt, kinds=("services",))
    import_file(warehouse, "changes", write_rows(tmp_path, "first", _changes(4, "old"), fmt))
    before_counts, before_rows = counts(warehouse), snapshot(warehouse)
    rows = _changes(7, "new")  # chunks: [c0 c1] [c2 c3] [c4 c5] [c6]: all but c6 would write
    rows[6]["committed_at"] = "2026-07-01T06:00:00"
    path = write_rows(tmp_path, "changes", rows, fmt)
    with pytest.raises(ImportFileError) as caught:
        import_file(warehouse, "changes", path)
    assert str(caught.value) == (
        f"{path}:{data_line(fmt, 6)}: committed_at: timestamp '2026-07-01T06:00:00' has no "
        "offset: add Z or +HH:MM"
    )
    assert counts(warehouse) == before_counts
    assert snapshot(warehouse) == before_rows  # c0..c3 still say "old"


def _deployments(count: int) -> list[dict[str, str]]:
    return [
        {
            "id": f"d{i}",
            "service": "checkout",
            "environment": "production",
            "deployed_at": f"2026-07-02T{i:02d}:00:00Z",
            "status": "success",
            "sha": f"s{i}",
            "change_ids": f"c{i}",
            "rollback_of": "",
        }
        for i in range(count)
    ]


def test_references_may_point_forward_within_the_file(
    warehouse: Engine, tmp_path: Path, fmt: str, small_chunks: int
) -> None:
    import_good(warehouse, tmp_path, fmt, kinds=("services",))
    import_file(warehouse, "changes", write_rows(tmp_path, "changes", _changes(6, "x"), fmt))
    rows = _deployments(6)
    rows[0]["rollback_of"] = "d5"  # in the last chunk
    result = import_file(warehouse, "deployments", write_rows(tmp_path, "d", rows, fmt))
    assert (result.rows, result.written) == (6, 6)
    assert counts(warehouse)["deployment_changes"] == 6


def test_an_unknown_reference_in_an_early_chunk_is_found_at_the_end(
    warehouse: Engine, tmp_path: Path, small_chunks: int
) -> None:
    import_good(warehouse, tmp_path, "jsonl", kinds=("services",))
    import_file(warehouse, "changes", write_rows(tmp_path, "changes", _changes(6, "x"), "jsonl"))
    before_counts = counts(warehouse)
    path = tmp_path / "deployments.jsonl"
    lines = [json.dumps(row) for row in _deployments(6)]
    lines[1] = json.dumps({**_deployments(6)[1], "rollback_of": "d77"})
    path.write_text("\n" + "\n\n".join(lines) + "\n", encoding="utf-8")  # blank lines between
    _expect(warehouse, "deployments", path, "{path}:4: rollback_of: unknown deployment 'd77'")
    assert counts(warehouse) == before_counts


def test_a_key_repeated_in_a_later_chunk(
    sqlite_warehouse: Engine, tmp_path: Path, fmt: str, small_chunks: int
) -> None:
    import_good(sqlite_warehouse, tmp_path, fmt, kinds=("services",))
    rows = _changes(7, "x")
    rows[5] = {**rows[1], "title": "again"}
    path = write_rows(tmp_path, "changes", rows, fmt)
    _expect(
        sqlite_warehouse,
        "changes",
        path,
        f"{{path}}:{data_line(fmt, 5)}: id 'c1' appears earlier in the file",
    )


@pytest.mark.parametrize("reader", ["csv", "jsonl"])
def test_line_numbers_in_later_chunks(
    sqlite_warehouse: Engine, tmp_path: Path, reader: str, small_chunks: int
) -> None:
    import_good(sqlite_warehouse, tmp_path, reader, kinds=("services",))
    rows = _changes(7, "x")
    rows[5]["service"] = "nope"
    path = write_rows(tmp_path, "changes", rows, reader)
    _expect(
        sqlite_warehouse,
        "changes",
        path,
        f"{{path}}:{data_line(reader, 5)}: service: unknown service 'nope'",
    )


# --- the organisation-scale generator's output is importable and idempotent ---------------


def _orggen() -> Callable[..., dict[str, Path]]:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "orggen", Path(__file__).resolve().parent.parent / "bench" / "orggen.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_org


def test_a_generated_organisation_imports_twice_to_the_same_rows(
    warehouse: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(import_files, "CHUNK_ROWS", 50)  # several chunks per file
    files = _orggen()(
        tmp_path / "org",
        teams=3,
        services=8,
        deployments=60,
        changes=150,
        incidents=12,
        slos=10,
        sli_days=1,
    )
    assert list(files) == list(ORDER)
    first = {kind: import_file(warehouse, kind, path) for kind, path in files.items()}
    assert all(result.rows == result.written for result in first.values())
    before_counts, before_rows = counts(warehouse), snapshot(warehouse)
    assert before_counts["deployments"] == 60 and before_counts["sli_samples"] == 240
    second = {kind: import_file(warehouse, kind, path) for kind, path in files.items()}
    assert all(result.written == 0 for result in second.values())
    assert counts(warehouse) == before_counts
    assert snapshot(warehouse) == before_rows
