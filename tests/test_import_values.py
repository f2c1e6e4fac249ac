"""`poise import`: values the warehouse cannot hold back, JSON values of the wrong type, repeated
JSON keys, paths that are not files, and the sha every change must have.

Each rejection is one `FILE:LINE: column: problem` line, nothing already stored changes, and the
figures can still be computed afterwards.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from test_import import GOOD, counts, data_line, import_good, snapshot, write_rows

from poise.cli import main
from poise.errors import ImportFileError
from poise.importer import KINDS, import_file
from poise.warehouse import schema

ORDER = ("services", "changes", "deployments", "incidents", "slos", "sli", "toil")
TIMESTAMP_COLUMNS = [
    (kind.name, column.name)
    for kind in KINDS.values()
    for column in kind.columns
    if column.kind == "timestamp"
]
# Written inside years 1 to 9999, outside them once in UTC (Python's datetime has no year 0
# or 10000, so every reader of the warehouse would fail on them).
OUT_OF_RANGE = ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"]


@pytest.fixture(params=["csv", "jsonl"])
def fmt(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(autouse=True)
def _no_outside_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # main() reads ./poise.yaml and the POISE_* variables: keep the developer's out of it.
    monkeypatch.delenv("POISE_CONFIG", raising=False)
    monkeypatch.delenv("POISE_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)


def _before(kind: str) -> tuple[str, ...]:
    return ORDER[: ORDER.index(kind)]


def _rejected(engine: Engine, kind: str, path: Path, message: str) -> None:
    """The import fails with exactly `message` and leaves every stored row as it was."""
    before_counts, before_rows = counts(engine), snapshot(engine)
    with pytest.raises(ImportFileError) as caught:
        import_file(engine, kind, path)
    assert str(caught.value) == message.format(path=path)
    assert counts(engine) == before_counts
    assert snapshot(engine) == before_rows


def _metrics_work(url: str, capsys: pytest.CaptureFixture[str]) -> dict:
    """`poise metrics` and `poise explain` over the warehouse, as a person would run them."""
    capsys.readouterr()
    assert main(["metrics", "--db", url, "--quarter", "2026Q3", "--format", "json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    explain = ["explain", "lead_time", "--db", url, "--from", "2026-07-01", "--to", "2026-10-01"]
    assert main(explain) == 0
    captured = capsys.readouterr()
    assert "internal error" not in captured.err and "Traceback" not in captured.err
    return figures


# --- 1. timestamps outside years 1 to 9999 once in UTC ------------------------------------


@pytest.mark.parametrize("value", OUT_OF_RANGE)
@pytest.mark.parametrize(("kind", "column"), TIMESTAMP_COLUMNS)
def test_a_timestamp_outside_the_years_1_to_9999_in_utc_is_rejected(
    sqlite_warehouse: Engine, tmp_path: Path, fmt: str, kind: str, column: str, value: str
) -> None:
    import_good(sqlite_warehouse, tmp_path, fmt, kinds=_before(kind))
    rows = [dict(row) for row in GOOD[kind]]
    rows[1][column] = value
    path = write_rows(tmp_path, f"bad-{kind}", rows, fmt)
    _rejected(
        sqlite_warehouse,
        kind,
        path,
        f"{{path}}:{data_line(fmt, 1)}: {column}: out of range: {value!r} "
        "is outside the years 1 to 9999 in UTC",
    )


def test_after_a_rejected_timestamp_nothing_is_lost_and_the_figures_still_work(
    sqlite_url: str, sqlite_warehouse: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The reviewer's case: it used to store year 10000 and break metrics, explain and report."""
    import_good(sqlite_warehouse, tmp_path, "csv")
    before = snapshot(sqlite_warehouse)
    figures = _metrics_work(sqlite_url, capsys)
    path = tmp_path / "late.csv"
    path.write_text(
        "id,service,sha,committed_at\n"
        "ts0,checkout,x0,2026-07-05T00:00:00Z\n"
        "ts1,checkout,x,9999-12-31T23:59:59-01:00\n",
        encoding="utf-8",
    )
    assert main(["import", "--kind", "changes", str(path), "--db", sqlite_url]) == 1
    assert capsys.readouterr().err == (
        f"poise: {path}:3: committed_at: out of range: '9999-12-31T23:59:59-01:00' "
        "is outside the years 1 to 9999 in UTC\n"
    )
    assert snapshot(sqlite_warehouse) == before  # not even the good row before it
    assert _metrics_work(sqlite_url, capsys) == figures


def test_the_first_and_last_instants_python_knows_are_kept(
    sqlite_url: str, sqlite_warehouse: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import_good(sqlite_warehouse, tmp_path, "csv", kinds=("services",))
    changes = tmp_path / "changes.csv"
    changes.write_text(
        "id,service,sha,committed_at\n"
        "first,checkout,a,0001-01-01T01:00:00+01:00\n"
        "last,checkout,b,9999-12-31T22:59:59.999999-01:00\n"
        "ordinary,checkout,c,2026-07-01T00:00:00Z\n",
        encoding="utf-8",
    )
    deployments = tmp_path / "deployments.csv"
    deployments.write_text(
        "id,service,environment,deployed_at,status,sha,change_ids\n"
        "d1,checkout,production,2026-07-02T00:00:00Z,success,c,first ordinary\n",
        encoding="utf-8",
    )
    import_file(sqlite_warehouse, "changes", changes)
    import_file(sqlite_warehouse, "deployments", deployments)
    with sqlite_warehouse.connect() as connection:
        stored = dict(
            connection.execute(select(schema.changes.c.id, schema.changes.c.committed_at)).all()
        )
    assert stored["first"].isoformat() == "0001-01-01T00:00:00+00:00"
    assert stored["last"].isoformat() == "9999-12-31T23:59:59.999999+00:00"
    assert _metrics_work(sqlite_url, capsys)["dora"]["lead_time"]["changes"] == 2


def test_nanoseconds_are_cut_to_microseconds_whatever_the_year(
    sqlite_warehouse: Engine, tmp_path: Path
) -> None:
    """pandas keeps nanoseconds only for 1677 to 2262; the warehouse keeps microseconds."""
    import_good(sqlite_warehouse, tmp_path, "csv", kinds=("services",))
    path = tmp_path / "changes.csv"
    path.write_text(
        "id,service,sha,committed_at\n"
        "old,checkout,a,1500-01-01T00:00:00Z\n"
        "precise,checkout,b,2026-07-01T00:00:00.123456789Z\n",
        encoding="utf-8",
    )
    assert import_file(sqlite_warehouse, "changes", path).written == 2
    with sqlite_warehouse.connect() as connection:
        stored = dict(
            connection.execute(select(schema.changes.c.id, schema.changes.c.committed_at)).all()
        )
    assert stored["old"].isoformat() == "1500-01-01T00:00:00+00:00"
    assert stored["precise"].isoformat() == "2026-07-01T00:00:00.123456+00:00"


def test_a_toil_date_in_year_0_is_rejected(
    sqlite_warehouse: Engine, tmp_path: Path, fmt: str
) -> None:
    import_good(sqlite_warehouse, tmp_path, fmt, kinds=_before("toil"))
    rows = [dict(row) for row in GOOD["toil"]]
    rows[2]["date"] = "0000-01-01"
    path = write_rows(tmp_path, "bad-toil", rows, fmt)
    _rejected(
        sqlite_warehouse,
        "toil",
        path,
        f"{{path}}:{data_line(fmt, 2)}: date: out of range: '0000-01-01' "
        "is outside the years 1 to 9999",
    )


# --- 2. JSON values of the wrong type ------------------------------------------------------


def _change(**values: object) -> str:
    row: dict[str, object] = {
        "id": "j1",
        "service": "checkout",
        "sha": "s1",
        "committed_at": "2026-07-01T00:00:00Z",
    }
    row.update(values)
    return json.dumps(row)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"a": 1}, "title: expected text, got an object"),
        ([1, 2], "title: expected text, got an array"),
        (True, "title: expected text, got true"),
    ],
    ids=["object", "array", "boolean"],
)
def test_a_json_value_that_is_not_text_where_text_is_expected(
    sqlite_warehouse: Engine, tmp_path: Path, value: object, message: str
) -> None:
    import_good(sqlite_warehouse, tmp_path, "csv", kinds=("services",))
    path = tmp_path / "changes.jsonl"
    path.write_text(_change(id="j0") + "\n\n" + _change(title=value) + "\n", encoding="utf-8")
    _rejected(sqlite_warehouse, "changes", path, f"{{path}}:3: {message}")


@pytest.mark.parametrize(
    ("kind", "line", "message"),
    [
        ("changes", _change(pr_number={"n": 12}), "pr_number: expected a number, got an object"),
        ("changes", _change(pr_number=[12]), "pr_number: expected a number, got an array"),
        ("changes", _change(pr_number=False), "pr_number: expected a number, got false"),
        (
            "changes",
            _change(committed_at=["2026-07-01T00:00:00Z"]),
            "committed_at: expected text, got an array",
        ),
        (
            "deployments",
            '{"id": "d9", "service": "checkout", "environment": "production", '
            '"deployed_at": "2026-07-01T12:00:00Z", "status": "success", "sha": "a1", '
            '"change_ids": {"c1": true}}',
            "change_ids: expected an array of ids, got an object",
        ),
        (
            "deployments",
            '{"id": "d9", "service": "checkout", "environment": "production", '
            '"deployed_at": "2026-07-01T12:00:00Z", "status": "success", "sha": "a1", '
            '"change_ids": ["c1", ["c2"]]}',
            "change_ids: expected an array of ids, got an array in it",
        ),
        (
            "deployments",
            '{"id": "d9", "service": "checkout", "environment": "production", '
            '"deployed_at": "2026-07-01T12:00:00Z", "status": "success", "sha": "a1", '
            '"change_ids": ["c1 c2"]}',
            "change_ids: 'c1 c2' in the array is not an id (empty or has a space)",
        ),
        (
            "changes",
            _change()[:-1] + ', "pr_number": NaN}',
            "not valid JSON (NaN is not a JSON value)",
        ),
    ],
    ids=[
        "number-object",
        "number-array",
        "number-boolean",
        "timestamp-array",
        "ids-object",
        "ids-nested",
        "ids-space",
        "nan",
    ],
)
def test_a_json_value_of_the_wrong_type(
    sqlite_warehouse: Engine, tmp_path: Path, kind: str, line: str, message: str
) -> None:
    import_good(sqlite_warehouse, tmp_path, "csv", kinds=_before(kind))
    path = tmp_path / f"{kind}.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    _rejected(sqlite_warehouse, kind, path, f"{{path}}:1: {message}")


def test_json_numbers_where_text_is_expected_are_taken_as_written(
    sqlite_warehouse: Engine, tmp_path: Path
) -> None:
    """An export's numeric id is an id; a number is kept digit for digit, as CSV would."""
    import_good(sqlite_warehouse, tmp_path, "csv", kinds=("services",))
    path = tmp_path / "changes.jsonl"
    path.write_text(
        '{"id": 12345, "service": "checkout", "sha": 7, "committed_at": "2026-07-01T00:00:00Z", '
        '"title": 7.50, "pr_number": 12, "author": null}\n',
        encoding="utf-8",
    )
    import_file(sqlite_warehouse, "changes", path)
    with sqlite_warehouse.connect() as connection:
        row = connection.execute(
            select(
                schema.changes.c.id,
                schema.changes.c.sha,
                schema.changes.c.title,
                schema.changes.c.pr_number,
                schema.changes.c.author,
            )
        ).one()
    assert tuple(row) == ("12345", "7", "7.50", 12, None)


def test_numeric_change_ids_in_a_json_array(sqlite_warehouse: Engine, tmp_path: Path) -> None:
    import_good(sqlite_warehouse, tmp_path, "csv", kinds=("services",))
    changes = tmp_path / "changes.jsonl"
    changes.write_text(
        "\n".join(_change(id=number, sha=f"s{number}") for number in (101, 102)) + "\n",
        encoding="utf-8",
    )
    import_file(sqlite_warehouse, "changes", changes)
    deployments = tmp_path / "deployments.jsonl"
    deployments.write_text(
        '{"id": "d1", "service": "checkout", "environment": "production", '
        '"deployed_at": "2026-07-02T00:00:00Z", "status": "success", "sha": "s102", '
        '"change_ids": [101, "102"]}\n',
        encoding="utf-8",
    )
    import_file(sqlite_warehouse, "deployments", deployments)
    with sqlite_warehouse.connect() as connection:
        linked = connection.execute(
            select(schema.deployment_changes.c.change_id).order_by(
                schema.deployment_changes.c.change_id
            )
        ).scalars()
        assert list(linked) == ["101", "102"]


# --- 3. a JSON key given twice --------------------------------------------------------------


@pytest.mark.parametrize("second", ['"id"', '" id"'], ids=["same", "spaced"])
def test_a_json_key_given_twice_is_an_error(
    sqlite_warehouse: Engine, tmp_path: Path, second: str
) -> None:
    import_good(sqlite_warehouse, tmp_path, "csv", kinds=("services",))
    path = tmp_path / "changes.jsonl"
    path.write_text(
        _change(id="j3")
        + "\n"
        + '{"id": "j4", "service": "checkout", "sha": "s", '
        + f'"committed_at": "2026-07-01T00:00:00Z", {second}: "j5"}}\n',
        encoding="utf-8",
    )
    _rejected(sqlite_warehouse, "changes", path, "{path}:2: column 'id' appears twice")


def test_a_key_repeated_inside_a_nested_object_is_not_a_column(
    sqlite_warehouse: Engine, tmp_path: Path
) -> None:
    """The nested object is refused for its type; its keys are no columns."""
    import_good(sqlite_warehouse, tmp_path, "csv", kinds=("services",))
    path = tmp_path / "changes.jsonl"
    path.write_text(_change()[:-1] + ', "title": {"a": 1, "a": 2}}\n', encoding="utf-8")
    _rejected(sqlite_warehouse, "changes", path, "{path}:1: title: expected text, got an object")


# --- 4. a path that is not a file -----------------------------------------------------------


def test_a_folder_is_named_as_a_folder(
    sqlite_url: str, sqlite_warehouse: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "changes.csv").write_text("id,service,sha,committed_at\n", encoding="utf-8")
    _rejected(
        sqlite_warehouse,
        "changes",
        folder,
        "{path}: is a folder, not a file (import its files one by one)",
    )
    assert main(["import", "--kind", "changes", str(folder), "--db", sqlite_url]) == 1
    assert capsys.readouterr().err == (
        f"poise: {folder}: is a folder, not a file (import its files one by one)\n"
    )


def test_a_missing_file_and_a_pipe(sqlite_warehouse: Engine, tmp_path: Path) -> None:
    _rejected(sqlite_warehouse, "changes", tmp_path / "nope.csv", "{path}: no such file")
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes on this system")
    pipe = tmp_path / "changes.csv"
    os.mkfifo(pipe)
    _rejected(sqlite_warehouse, "changes", pipe, "{path}: not a regular file")


def test_a_file_that_cannot_be_read(
    sqlite_warehouse: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """chmod cannot stop root, who runs some test machines: refuse the open itself."""
    path = write_rows(tmp_path, "changes", GOOD["changes"], "csv")
    opened = Path.open

    def refuse(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return opened(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse)
    _rejected(sqlite_warehouse, "changes", path, "{path}: cannot read it (Permission denied)")


# --- 5. every change has a sha (the contract's canonical change) ----------------------------


@pytest.mark.parametrize("empty", ["", "  "], ids=["empty", "blank"])
def test_a_change_without_a_sha_is_rejected(
    sqlite_warehouse: Engine, tmp_path: Path, fmt: str, empty: str
) -> None:
    import_good(sqlite_warehouse, tmp_path, fmt, kinds=("services", "changes"))
    rows = [dict(row) for row in GOOD["changes"]]
    rows[2]["sha"] = empty
    path = write_rows(tmp_path, "bad-changes", rows, fmt)
    _rejected(
        sqlite_warehouse, "changes", path, f"{{path}}:{data_line(fmt, 2)}: sha: missing value"
    )


def test_a_change_with_a_null_sha_in_json_lines_is_rejected(
    sqlite_warehouse: Engine, tmp_path: Path
) -> None:
    import_good(sqlite_warehouse, tmp_path, "csv", kinds=("services",))
    path = tmp_path / "changes.jsonl"
    path.write_text(_change(sha=None) + "\n", encoding="utf-8")
    _rejected(sqlite_warehouse, "changes", path, "{path}:1: sha: missing value")


def test_a_deployment_may_still_have_no_sha(
    sqlite_warehouse: Engine, tmp_path: Path, fmt: str
) -> None:
    """Only changes must have a sha: docs/import.md lets a deployment's be empty."""
    import_good(sqlite_warehouse, tmp_path, fmt, kinds=_before("deployments"))
    rows = [dict(row) for row in GOOD["deployments"]]
    rows[0]["sha"] = ""
    path = write_rows(tmp_path, "deployments", rows, fmt)
    assert import_file(sqlite_warehouse, "deployments", path).rows == len(rows)
