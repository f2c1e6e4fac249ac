"""`poise import` over rows already stored: what a later file leaves out, clears or relinks.

A column a CSV header leaves out, or a key a JSON object leaves out, is not given: the stored
value is kept (a new row gets none). An empty cell, or `null`, is given and empty: it clears
the stored value. A deployment whose set of changes differs from the stored set is changed,
even when its own row is not. Every test runs on SQLite and, when named, PostgreSQL.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from test_import import GOOD, ORDER, import_good, snapshot, write_rows
from test_import_values import _no_outside_settings  # noqa: F401 (autouse: no poise.yaml)

from metrics.derived import refresh_derived
from metrics.freshness import is_fresh
from metrics.model import Settings
from poise.cli import main
from poise.errors import ImportFileError
from poise.importer import KINDS, import_file
from poise.warehouse import schema

FORMATS = ["csv", "jsonl"]
OPTIONAL = [
    (kind.name, column.name)
    for kind in KINDS.values()
    for column in kind.columns
    if not column.required
]


def _up_to(kind: str) -> tuple[str, ...]:
    """The kinds imported before `kind`, and `kind` itself."""
    return ORDER[: ORDER.index(kind) + 1]


def _without(rows: list[dict[str, str]], *left_out: str) -> list[dict[str, str]]:
    return [{name: value for name, value in row.items() if name not in left_out} for row in rows]


def _deployments(engine: Engine) -> dict[str, Any]:
    with engine.connect() as connection:
        return {row.id: row for row in connection.execute(select(schema.deployments))}


def _links(engine: Engine) -> list[tuple[str, str]]:
    links = schema.deployment_changes.c
    with engine.connect() as connection:
        query = select(links.deployment_id, links.change_id).order_by(
            links.deployment_id, links.change_id
        )
        return [tuple(row) for row in connection.execute(query)]


def _write_json_lines(path: Path, objects: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(item) + "\n" for item in objects), encoding="utf-8")
    return path


def _cli_import(url: str, kind: str, path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """`poise import` as a person runs it; returns the line that says what it wrote."""
    capsys.readouterr()
    assert main(["import", "--db", url, "--kind", kind, str(path)]) == 0
    said = capsys.readouterr().err
    return next(line for line in said.splitlines() if "rows read" in line)


def _figures(url: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["metrics", "--db", url, "--quarter", "2026Q3", "--format", "json"]) == 0
    return dict(json.loads(capsys.readouterr().out))


# --- a column left out is not given: the stored value is kept -----------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("kind", "column"), OPTIONAL)
def test_a_column_the_file_leaves_out_keeps_the_stored_values(
    warehouse: Engine, tmp_path: Path, kind: str, column: str, fmt: str
) -> None:
    assert any(row[column] for row in GOOD[kind]), "the fixture must store a value to keep"
    import_good(warehouse, tmp_path, "csv", kinds=_up_to(kind))
    before = snapshot(warehouse)
    path = write_rows(tmp_path, f"again-{kind}", _without(GOOD[kind], column), fmt)
    result = import_file(warehouse, kind, path)
    assert (result.rows, result.written, result.unchanged) == (len(GOOD[kind]), 0, len(GOOD[kind]))
    assert snapshot(warehouse) == before  # not even updated_at moved


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_columns_a_file_gives_are_written_and_cleared_beside_those_it_leaves_out(
    warehouse: Engine, tmp_path: Path, fmt: str
) -> None:
    import_good(warehouse, tmp_path, "csv", kinds=_up_to("deployments"))
    rows = _without(GOOD["deployments"], "rollback_of")
    rows[2] = {**rows[2], "status": "success"}  # d3 was a failure
    rows[3] = {**rows[3], "remediation_of": ""}  # d4: an empty cell, `null` in JSON Lines
    rows.append({**rows[0], "id": "d5", "change_ids": ""})  # new: no rollback_of to keep
    path = write_rows(tmp_path, "again-deployments", rows, fmt)
    result = import_file(warehouse, "deployments", path)
    assert (result.rows, result.written, result.unchanged) == (5, 3, 2)  # d3, d4 and d5
    stored = _deployments(warehouse)
    assert stored["d3"].status == "success"
    assert stored["d2"].rollback_of == "d1"  # left out: kept
    assert stored["d4"].remediation_of is None  # given empty: cleared
    assert (stored["d5"].rollback_of, stored["d5"].remediation_of) == (None, None)


def test_each_json_line_gives_its_own_keys_and_those_it_gives_are_checked(
    warehouse: Engine, tmp_path: Path
) -> None:
    import_good(warehouse, tmp_path, "csv", kinds=_up_to("deployments"))
    d1, d2, d3, d4 = (dict(row) for row in GOOD["deployments"])
    objects: list[dict[str, Any]] = [
        d1,  # gives both as "": stored empty, unchanged
        *_without([d2], "rollback_of"),  # leaves rollback_of out: keeps 'd1'
        {**d3, "rollback_of": "d3"},
        d4,
    ]
    stored = snapshot(warehouse)
    bad = _write_json_lines(tmp_path / "bad.jsonl", objects)
    with pytest.raises(ImportFileError) as caught:
        import_file(warehouse, "deployments", bad)
    assert str(caught.value) == f"{bad}:3: a deployment cannot roll back or remediate itself"
    assert snapshot(warehouse) == stored
    objects[2]["rollback_of"] = "d1"  # given: written
    objects[3]["remediation_of"] = None  # given as null: cleared
    objects += _without([{**d1, "id": "d5"}], "rollback_of", "remediation_of")  # new: none
    good = _write_json_lines(tmp_path / "good.jsonl", objects)
    result = import_file(warehouse, "deployments", good)
    assert (result.rows, result.written, result.unchanged) == (5, 3, 2)  # d3, d4, d5
    after = _deployments(warehouse)
    assert {name: (row.rollback_of, row.remediation_of) for name, row in after.items()} == {
        "d1": (None, None),
        "d2": ("d1", None),
        "d3": ("d1", None),
        "d4": (None, None),
        "d5": (None, None),
    }


def test_the_figures_stay_when_a_file_leaves_the_optional_columns_out(
    warehouse_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rollbacks, remediations and blamed incidents kept, so the refreshed figures agree."""
    for kind in ORDER:
        _cli_import(warehouse_url, kind, write_rows(tmp_path, kind, GOOD[kind], "csv"), capsys)
    before = _figures(warehouse_url, capsys)
    assert before["dora"]["rework_rate"]["rework"] == 2
    assert before["attribution"]["explicit"] == 1
    for kind in ("deployments", "incidents"):
        left_out = [column for name, column in OPTIONAL if name == kind]
        path = write_rows(tmp_path, f"again-{kind}", _without(GOOD[kind], *left_out), "csv")
        said = _cli_import(warehouse_url, kind, path, capsys)
        rows = len(GOOD[kind])
        assert said == f"{path}: {rows} {kind} rows read, 0 new or changed, {rows} unchanged"
    assert _figures(warehouse_url, capsys) == before


# --- a deployment's changes are part of it -------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_deployment_whose_changes_alone_differ_is_changed(
    warehouse_url: str,
    warehouse: Engine,
    tmp_path: Path,
    fmt: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import_good(warehouse, tmp_path, "csv", kinds=_up_to("deployments"))
    rows = [dict(row) for row in GOOD["deployments"]]
    rows[0]["change_ids"] = "c2 c1"  # d1: the same changes in another order
    rows[3]["change_ids"] = "c4 c1"  # d4: one change more, nothing else
    path = write_rows(tmp_path, "again-deployments", rows, fmt)
    said = _cli_import(warehouse_url, "deployments", path, capsys)
    assert said == f"{path}: 4 deployments rows read, 1 new or changed, 3 unchanged"
    assert _links(warehouse) == [
        ("d1", "c1"),
        ("d1", "c2"),
        ("d3", "c3"),
        ("d4", "c1"),
        ("d4", "c4"),
    ]


def test_a_change_of_links_alone_makes_the_derived_tables_stale(
    warehouse: Engine, tmp_path: Path
) -> None:
    import_good(warehouse, tmp_path, "csv", kinds=_up_to("deployments"))
    refresh_derived(warehouse, Settings())
    rows = [dict(row) for row in GOOD["deployments"]]
    rows[0]["change_ids"] = "c1"  # c2 did not ship with d1 after all: its lead time moves
    result = import_file(
        warehouse, "deployments", write_rows(tmp_path, "again-deployments", rows, "csv")
    )
    assert (result.written, result.unchanged) == (1, 3)
    with warehouse.connect() as connection:
        assert not is_fresh(connection)
