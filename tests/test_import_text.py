"""`poise import`: text and numbers a file can hold but the warehouse cannot keep or use.

Lone surrogates, NUL characters in ids, full-width digits, fields longer than Python's csv
module reads by default, lines of only spaces and tabs, change ids with a space, SLO windows
and SLI counts beyond any real one. Each is one `FILE:LINE: column: problem` line (never an
internal error), the same on SQLite and PostgreSQL, and nothing already stored changes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from test_import import GOOD, data_line, import_good, write_rows
from test_import_values import _before, _rejected

from poise.cli import main
from poise.errors import ImportFileError
from poise.import_kinds import FREE_TEXT, KINDS, MAX_SLI_EVENTS, MAX_WINDOW_DAYS
from poise.importer import import_file
from poise.warehouse import schema

ORDER = ("services", "changes", "deployments", "incidents", "slos", "sli", "toil")
CHANGE = '"service":"checkout","sha":"x","committed_at":"2026-07-01T00:00:00Z"'
# Every text column that names something: ids, names, references, parts of a key.
NAMING_COLUMNS = [
    (kind.name, column.name)
    for kind in KINDS.values()
    for column in kind.columns
    if column.kind in ("text", "ids") and column.name not in FREE_TEXT
]


@pytest.fixture(params=["csv", "jsonl"])
def fmt(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(autouse=True)
def _no_outside_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # main() reads ./poise.yaml and the POISE_* variables: keep the developer's out of it.
    monkeypatch.delenv("POISE_CONFIG", raising=False)
    monkeypatch.delenv("POISE_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)


def _metrics_work(url: str, capsys: pytest.CaptureFixture[str]) -> dict:
    """`poise metrics` over the days of GOOD's rows, as a person would run it."""
    capsys.readouterr()
    period = ["--from", "2026-06-15", "--to", "2026-07-05"]
    assert main(["metrics", "--db", url, *period, "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert "internal error" not in captured.err and "Traceback" not in captured.err
    return json.loads(captured.out)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8", newline="")
    return path


# --- 1. lone surrogates in JSON Lines ------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            '{"id":"j11",' + CHANGE + r',"title":"\ud800"}',
            r"title: not valid Unicode text: a lone surrogate \ud800",
        ),
        (
            '{"id":"j11",' + CHANGE + r',"author":"ann \udfff"}',
            r"author: not valid Unicode text: a lone surrogate \udfff",
        ),
        (  # the second half of a pair, alone
            r'{"id":"j\ude00",' + CHANGE + "}",
            r"id: not valid Unicode text: a lone surrogate \ude00",
        ),
    ],
)
def test_a_lone_surrogate_in_json_lines_is_refused_at_its_line(
    warehouse: Engine, tmp_path: Path, line: str, message: str
) -> None:
    import_good(warehouse, tmp_path, "csv", kinds=("services",))
    path = _write(tmp_path / "changes.jsonl", '{"id":"ok",' + CHANGE + "}\n\n" + line + "\n")
    _rejected(warehouse, "changes", path, "{path}:3: " + message)


def test_a_lone_surrogate_in_change_ids_or_written_as_utf8_bytes(
    warehouse: Engine, tmp_path: Path
) -> None:
    import_good(warehouse, tmp_path, "csv", kinds=("services", "changes"))
    deployment = (
        '{"id":"d9","service":"checkout","environment":"production",'
        '"deployed_at":"2026-07-01T12:00:00Z","status":"success","sha":"a1",'
    )
    in_array = _write(tmp_path / "a.jsonl", deployment + r'"change_ids":["c1","c\ud801"]}' + "\n")
    _rejected(
        warehouse,
        "deployments",
        in_array,
        r"{path}:1: change_ids: not valid Unicode text: a lone surrogate \ud801",
    )
    # The bytes UTF-8 would use for U+D800, which the reader passes through as json.loads does
    as_bytes = tmp_path / "b.jsonl"
    as_bytes.write_bytes((deployment + '"change_ids":["c').encode() + b'\xed\xa0\x80"]}\n')
    _rejected(
        warehouse,
        "deployments",
        as_bytes,
        r"{path}:1: change_ids: not valid Unicode text: a lone surrogate \ud800",
    )


def test_a_surrogate_pair_is_one_character_and_is_kept(warehouse: Engine, tmp_path: Path) -> None:
    import_good(warehouse, tmp_path, "csv", kinds=("services",))
    path = _write(tmp_path / "changes.jsonl", '{"id":"p1",' + CHANGE + r',"title":"\ud83d\ude80"}')
    assert import_file(warehouse, "changes", path).written == 1
    with warehouse.connect() as connection:
        title = connection.execute(select(schema.changes.c.title)).scalar_one()
    assert title == "\U0001f680"


# --- 2. CSV fields longer than Python's csv module reads by default ------------------------

LONG = "x" * 200_000  # csv.field_size_limit() is 131,072 by default


def test_a_long_field_then_a_bad_row_names_the_bad_row(warehouse: Engine, tmp_path: Path) -> None:
    import_good(warehouse, tmp_path, "csv", kinds=("services",))
    head = "id,service,sha,committed_at,title\n"
    long_row = f"h1,checkout,x,2026-07-01T00:00:00Z,{LONG}\n"
    bad_time = _write(tmp_path / "a.csv", head + long_row + "h2,checkout,x,bad,t\n")
    _rejected(
        warehouse,
        "changes",
        bad_time,
        "{path}:3: committed_at: 'bad' is not an ISO 8601 timestamp with an offset",
    )
    extra = _write(tmp_path / "b.csv", head + long_row + "h2,checkout,x,2026-07-01T00:00:00Z,t,x\n")
    _rejected(warehouse, "changes", extra, "{path}:3: malformed CSV: 6 fields, the header has 5")
    good = _write(tmp_path / "c.csv", head + long_row)
    assert import_file(warehouse, "changes", good).written == 1
    with warehouse.connect() as connection:
        assert connection.execute(select(schema.changes.c.title)).scalar_one() == LONG


@pytest.mark.parametrize(
    "text", ["y" * 300_000, "id,service,sha,committed_at," + "t" * 200_000 + "\nh1,checkout\n"]
)
def test_a_huge_header_cell_is_an_unknown_column_shown_short(
    sqlite_warehouse: Engine, tmp_path: Path, text: str
) -> None:
    path = _write(tmp_path / "huge.csv", text)
    with pytest.raises(ImportFileError) as caught:
        import_file(sqlite_warehouse, "changes", path)
    message = str(caught.value)
    assert message.startswith(f"{path}:1: unknown column ")
    assert " characters) for --kind changes (columns: id, service" in message
    assert len(message) < 400


# --- 3. SLO windows beyond poise.yaml's -----------------------------------------------------


@pytest.mark.parametrize("days", ["401", "700000", str(2**31 - 1)])
def test_a_window_longer_than_poise_yaml_allows_is_refused(
    warehouse: Engine, tmp_path: Path, fmt: str, days: str
) -> None:
    import_good(warehouse, tmp_path, fmt, kinds=_before("slos"))
    rows = [dict(row) for row in GOOD["slos"]]
    rows[1]["window_days"] = days
    path = write_rows(tmp_path, "slos", rows, fmt)
    _rejected(
        warehouse,
        "slos",
        path,
        f"{{path}}:{data_line(fmt, 1)}: window_days: {days} is more than 400 days "
        "(the longest window poise.yaml allows)",
    )


def test_the_longest_window_is_accepted_and_the_figures_work(
    warehouse_url: str, warehouse: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert MAX_WINDOW_DAYS == 400
    import_good(warehouse, tmp_path, "csv", kinds=_before("slos"))
    rows = [dict(row) for row in GOOD["slos"]]
    rows[0]["window_days"] = "400"
    assert import_file(warehouse, "slos", write_rows(tmp_path, "slos", rows, "csv")).written == 2
    import_good(warehouse, tmp_path, "csv", kinds=("sli",))
    slos = {slo["name"]: slo for slo in _metrics_work(warehouse_url, capsys)["slos"]}
    assert slos["checkout-availability"]["window_days"] == 400


# --- 4. SLI counts beyond any bucket's ------------------------------------------------------


@pytest.mark.parametrize(
    ("good", "total", "column", "shown"),
    [
        ("1e308", "1e308", "good", "1e+308"),
        ("1", "1e16", "total", "1e+16"),
        ("1000000000000001", "1000000000000001", "good", "1000000000000001"),
    ],
)
def test_sli_counts_beyond_any_bucket_are_refused(
    warehouse: Engine, tmp_path: Path, fmt: str, good: str, total: str, column: str, shown: str
) -> None:
    import_good(warehouse, tmp_path, fmt, kinds=_before("sli"))
    rows = [dict(row) for row in GOOD["sli"]]
    rows[2].update(good=good, total=total)
    path = write_rows(tmp_path, "sli", rows, fmt)
    _rejected(
        warehouse,
        "sli",
        path,
        f"{{path}}:{data_line(fmt, 2)}: {column}: {shown} is more than "
        "1,000,000,000,000,000 events in one bucket: not a count of events",
    )


def test_sli_counts_at_the_bound_give_finite_figures(
    warehouse_url: str, warehouse: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import_good(warehouse, tmp_path, "csv", kinds=_before("sli"))
    rows = [dict(row) for row in GOOD["sli"]]
    for row in rows:
        row.update(good=str(MAX_SLI_EVENTS), total=str(MAX_SLI_EVENTS))
    rows[1]["good"] = str(MAX_SLI_EVENTS // 2)
    assert import_file(warehouse, "sli", write_rows(tmp_path, "sli", rows, "csv")).written == 4
    slos = {slo["name"]: slo for slo in _metrics_work(warehouse_url, capsys)["slos"]}
    assert slos["checkout-availability"]["sli"] == pytest.approx(2.5 / 3)


# --- 5. digits other than 0-9 -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "row", "column", "value", "problem"),
    [
        ("toil", 0, "date", "２０２６-07-01", "'２０２６-07-01' is not a date (YYYY-MM-DD)"),
        ("toil", 0, "date", "2026-0٧-01", "'2026-0٧-01' is not a date (YYYY-MM-DD)"),
        (
            "changes",
            1,
            "committed_at",
            "２０２６-07-01T00:00:00Z",
            "'２０２６-07-01T00:00:00Z' is not an ISO 8601 timestamp: digits must be 0-9",
        ),
        (
            "changes",
            1,
            "merged_at",
            "2026-07-01T10:00:00+０２:００",
            "'2026-07-01T10:00:00+０２:００' is not an ISO 8601 timestamp: digits must be 0-9",
        ),
        ("slos", 0, "window_days", "２８", "'２８' is not a number"),
    ],
)
def test_digits_other_than_ascii_are_refused(
    warehouse: Engine,
    tmp_path: Path,
    kind: str,
    row: int,
    column: str,
    value: str,
    problem: str,
) -> None:
    import_good(warehouse, tmp_path, "csv", kinds=_before(kind))
    rows = [dict(r) for r in GOOD[kind]]
    rows[row][column] = value
    path = write_rows(tmp_path, kind, rows, "csv")
    _rejected(warehouse, kind, path, f"{{path}}:{row + 2}: {column}: {problem}")


# --- 6. NUL characters ------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "column"), NAMING_COLUMNS)
def test_a_nul_character_in_an_id_or_name_is_refused_on_both_engines(
    warehouse: Engine, tmp_path: Path, fmt: str, kind: str, column: str
) -> None:
    import_good(warehouse, tmp_path, fmt, kinds=_before(kind))
    rows = [dict(r) for r in GOOD[kind]]
    row = len(rows) - 1
    rows[row][column] = (rows[row][column] or "x") + "\0y"
    path = write_rows(tmp_path, kind, rows, fmt)
    _rejected(
        warehouse, kind, path, f"{{path}}:{data_line(fmt, row)}: {column}: holds a NUL character"
    )


def test_the_probe_s_nul_change_id_and_rollback_are_refused(
    warehouse: Engine, tmp_path: Path
) -> None:
    """Each used to pass SQLite and fail PostgreSQL with an internal DataError."""
    import_good(warehouse, tmp_path, "csv", kinds=("services", "changes"))
    deployment = (
        '"service":"checkout","environment":"production","deployed_at":"2026-07-01T05:00:00Z",'
        '"status":"success","sha":"x"'
    )
    listed = _write(
        tmp_path / "d1.jsonl", '{"id":"d-nul",' + deployment + ',"change_ids":["n\\u0000ul"]}\n'
    )
    _rejected(warehouse, "deployments", listed, "{path}:1: change_ids: holds a NUL character")
    rollback = _write(
        tmp_path / "d2.jsonl",
        '{"id":"d-nul2",' + deployment + ',"change_ids":[],"rollback_of":"d\\u0000x"}\n',
    )
    _rejected(warehouse, "deployments", rollback, "{path}:1: rollback_of: holds a NUL character")


@pytest.mark.parametrize("column", sorted(FREE_TEXT & {"title", "author"}))
def test_free_text_may_hold_a_nul_character(
    warehouse: Engine, tmp_path: Path, fmt: str, column: str
) -> None:
    import_good(warehouse, tmp_path, fmt, kinds=("services",))
    rows = [dict(r) for r in GOOD["changes"]]
    rows[0][column] = "a\0b"
    assert import_file(warehouse, "changes", write_rows(tmp_path, "ch", rows, fmt)).written == 4
    with warehouse.connect() as connection:
        stored = connection.execute(
            select(schema.changes.c[column]).where(schema.changes.c.id == "c1")
        ).scalar_one()
    assert stored in ("a\0b", "a\ufffdb")  # PostgreSQL cannot store a NUL


# --- 7. lines of only spaces and tabs ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name,team\na,t\n  \n\t\nb,t\nc,t\nd,\n", "{path}:7: team: missing value"),
        ("name,team\na,t\n \t \r\n\r\nb,\n", "{path}:5: team: missing value"),
        ("\t\n  \nname,team\n\n \nb,\n", "{path}:6: team: missing value"),
        ('name,team\na,t\n"  "\n  \nb,t\n', "{path}:3: name: missing value"),  # quoted: a row
    ],
)
def test_lines_of_spaces_and_tabs_do_not_shift_the_line(
    sqlite_warehouse: Engine, tmp_path: Path, text: str, message: str
) -> None:
    _rejected(sqlite_warehouse, "services", _write(tmp_path / "ws.csv", text), message)


def test_a_line_of_spaces_before_the_header_is_skipped(
    sqlite_warehouse: Engine, tmp_path: Path
) -> None:
    path = _write(tmp_path / "ws.csv", "  \n\t\nname,team\nx,y\n")
    assert import_file(sqlite_warehouse, "services", path).written == 1


# --- 8. change ids with a space ---------------------------------------------------------------


@pytest.mark.parametrize("change_id", ["c 5", "c\t5", "c\u00a05"])
def test_a_change_id_with_a_space_is_refused(
    warehouse: Engine, tmp_path: Path, fmt: str, change_id: str
) -> None:
    import_good(warehouse, tmp_path, fmt, kinds=("services",))
    rows = [dict(r) for r in GOOD["changes"]]
    rows[2]["id"] = change_id
    path = write_rows(tmp_path, "changes", rows, fmt)
    _rejected(
        warehouse,
        "changes",
        path,
        f"{{path}}:{data_line(fmt, 2)}: id: {change_id!r} has a space in it: a deployment's "
        "change_ids are separated by spaces, so no deployment could name this change",
    )
