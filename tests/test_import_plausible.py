"""`poise import`: values that parse but cannot be meant, refused with `FILE:LINE` before they
reach a figure (toil hours beyond any team's day, non-finite numbers, pull request numbers
below 1), a file separated by ';' or tabs, and merged_at before committed_at (accepted, as
the contract treats author-time skew as data to count, not a file to refuse)."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from test_import import GOOD, counts, data_line, import_good, snapshot, write_rows

from poise.cli import main
from poise.errors import ImportFileError
from poise.import_kinds import MAX_TOIL_HOURS
from poise.importer import import_file
from poise.warehouse import schema

ORDER = ("services", "changes", "deployments", "incidents", "slos", "sli", "toil")


@pytest.fixture(params=["csv", "jsonl"])
def fmt(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _rejected(engine: Engine, kind: str, path: Path, message: str) -> None:
    """The import fails with exactly `message` and leaves every stored row as it was."""
    before_counts, before_rows = counts(engine), snapshot(engine)
    with pytest.raises(ImportFileError) as caught:
        import_file(engine, kind, path)
    assert str(caught.value) == message
    assert counts(engine) == before_counts
    assert snapshot(engine) == before_rows


def _with(kind: str, row: int, column: str, value: str) -> list[dict[str, str]]:
    rows = [dict(r) for r in GOOD[kind]]
    rows[row][column] = value
    return rows


# --- toil hours ---------------------------------------------------------------------------

TOO_MANY = (
    "is more than 24,000 (24 hours of 1,000 people) for one team, day and category: not hours "
    "of toil (minutes, or a running total?)"
)


@pytest.mark.parametrize(
    ("hours", "problem"),
    [
        ("1e308", f"hours: 1e+308 {TOO_MANY}"),
        ("24000.5", f"hours: 24000.5 {TOO_MANY}"),
        ("1440000", f"hours: 1440000 {TOO_MANY}"),  # a day of 1,000 people, in minutes
        ("1e400", "hours: '1e400' is not a finite number"),
        ("inf", "hours: 'inf' is not a finite number"),
        ("-inf", "hours: '-inf' is not a finite number"),
        ("Infinity", "hours: 'Infinity' is not a finite number"),
        ("nan", "hours: 'nan' is not a number"),
        ("-2", "hours: negative value -2"),
        ("-0.5", "hours: negative value -0.5"),
    ],
)
def test_implausible_toil_hours_are_refused_at_their_line(
    sqlite_warehouse: Engine, tmp_path: Path, fmt: str, hours: str, problem: str
) -> None:
    if fmt == "jsonl" and hours in ("1e400", "Infinity"):
        # write_rows would turn them into Python's inf, written as Infinity, which is no
        # JSON (refused as such); a JSON 1e400 is tested below
        pytest.skip("not representable through write_rows")
    import_good(sqlite_warehouse, tmp_path, fmt, kinds=("services",))
    path = write_rows(tmp_path, "toil", _with("toil", 1, "hours", hours), fmt)
    _rejected(sqlite_warehouse, "toil", path, f"{path}:{data_line(fmt, 1)}: {problem}")


def test_the_bound_of_toil_hours_is_accepted(sqlite_warehouse: Engine, tmp_path: Path) -> None:
    import_good(sqlite_warehouse, tmp_path, "csv", kinds=("services",))
    path = write_rows(tmp_path, "toil", _with("toil", 0, "hours", str(MAX_TOIL_HOURS)), "csv")
    assert import_file(sqlite_warehouse, "toil", path).written == len(GOOD["toil"])
    with sqlite_warehouse.connect() as connection:
        hours = connection.execute(select(schema.toil_entries.c.hours)).scalars().all()
    assert max(hours) == MAX_TOIL_HOURS


@pytest.mark.parametrize(
    ("number", "problem"),
    [("1e308", f"1e+308 {TOO_MANY}"), ("1e400", "'1e400' is not a finite number")],
)
def test_a_json_number_too_large_for_toil_is_refused(
    sqlite_warehouse: Engine, tmp_path: Path, number: str, problem: str
) -> None:
    # As a JSON number (not a string), the way an export script would write it.
    import_good(sqlite_warehouse, tmp_path, "csv", kinds=("services",))
    path = tmp_path / "toil.jsonl"
    path.write_text(
        '{"team": "payments", "date": "2026-07-01", "hours": 2, "category": "tickets"}\n'
        f'{{"team": "payments", "date": "2026-07-02", "hours": {number}, "category": "x"}}\n',
        encoding="utf-8",
    )
    _rejected(sqlite_warehouse, "toil", path, f"{path}:2: hours: {problem}")


def test_other_numbers_must_be_finite_too(sqlite_warehouse: Engine, tmp_path: Path) -> None:
    import_good(sqlite_warehouse, tmp_path, "csv", kinds=("services", "changes"))
    path = write_rows(tmp_path, "changes", _with("changes", 0, "pr_number", "-inf"), "csv")
    _rejected(
        sqlite_warehouse, "changes", path, f"{path}:2: pr_number: '-inf' is not a finite number"
    )
    import_good(sqlite_warehouse, tmp_path, "csv", kinds=("deployments", "incidents", "slos"))
    path = write_rows(tmp_path, "sli", _with("sli", 1, "total", "inf"), "csv")
    _rejected(sqlite_warehouse, "sli", path, f"{path}:3: total: 'inf' is not a finite number")


def test_toil_at_the_bound_still_gives_a_finite_share(
    sqlite_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The reviewer's 1e308 overflowed the share (a RuntimeWarning, then a page blaming the
    # team size); at the bound, every day of a quarter, the figure is large but a number.
    monkeypatch.delenv("POISE_DATABASE_URL", raising=False)
    config = tmp_path / "poise.yaml"
    config.write_text("teams: [{name: payments, size: 1}]\n", encoding="utf-8")
    rows = [
        {"team": "payments", "date": f"2026-{month:02d}-{day:02d}",
         "hours": str(MAX_TOIL_HOURS), "category": "tickets"}
        for month in (7, 8, 9) for day in range(1, 31)
    ]  # fmt: skip
    common = ["--config", str(config), "--db", sqlite_url]
    services = write_rows(tmp_path, "services", GOOD["services"], "csv")
    assert main(["import", *common, "--kind", "services", str(services)]) == 0
    toil = write_rows(tmp_path, "toil", rows, "csv")
    assert main(["import", *common, "--kind", "toil", str(toil)]) == 0
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's overflow warning fails the test
        assert main(["metrics", *common, "--quarter", "2026Q3", "--format", "json"]) == 0
    toil_block = json.loads(capsys.readouterr().out)["people"]["toil"]
    assert toil_block["hours"] == 90 * MAX_TOIL_HOURS
    assert math.isfinite(toil_block["share"]) and toil_block["reason"] is None


# --- changes --------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["-5", "0", "-1"])
def test_a_pull_request_number_below_1_is_refused(
    sqlite_warehouse: Engine, tmp_path: Path, fmt: str, number: str
) -> None:
    import_good(sqlite_warehouse, tmp_path, fmt, kinds=("services",))
    path = write_rows(tmp_path, "changes", _with("changes", 2, "pr_number", number), fmt)
    _rejected(
        sqlite_warehouse,
        "changes",
        path,
        f"{path}:{data_line(fmt, 2)}: pr_number: {number} is not a pull request's number "
        "(they start at 1)",
    )


def test_pull_request_number_1_and_an_empty_one_are_accepted(
    sqlite_warehouse: Engine, tmp_path: Path, fmt: str
) -> None:
    import_good(sqlite_warehouse, tmp_path, fmt, kinds=("services",))
    path = write_rows(tmp_path, "changes", _with("changes", 0, "pr_number", "1"), fmt)
    assert import_file(sqlite_warehouse, "changes", path).rows == len(GOOD["changes"])


def test_merged_before_committed_is_kept_as_the_contract_counts_skew(
    sqlite_warehouse: Engine, tmp_path: Path, fmt: str
) -> None:
    # committed_at is the author's clock, merged_at the forge's: the contract leaves a lead
    # time <= 0 out and counts it as data quality, so skew is data, not a broken file.
    import_good(sqlite_warehouse, tmp_path, fmt, kinds=("services",))
    rows = _with("changes", 0, "merged_at", "2026-07-01T06:00:00Z")  # committed 07:00 UTC
    path = write_rows(tmp_path, "changes", rows, fmt)
    assert import_file(sqlite_warehouse, "changes", path).written == len(GOOD["changes"])


# --- separators ---------------------------------------------------------------------------


@pytest.mark.parametrize(("separator", "shown"), [(";", "';'"), ("\t", "tabs")])
def test_a_file_separated_by_semicolons_or_tabs_says_so(
    sqlite_warehouse: Engine, tmp_path: Path, separator: str, shown: str
) -> None:
    import_good(sqlite_warehouse, tmp_path, "csv", kinds=("services",))
    path = tmp_path / "changes.csv"
    path.write_text(
        separator.join(["id", "service", "sha", "committed_at"])
        + "\n"
        + separator.join(["c1", "checkout", "a1", "2026-07-01T09:00:00Z"])
        + "\n",
        encoding="utf-8",
    )
    _rejected(
        sqlite_warehouse,
        "changes",
        path,
        f"{path}:1: the columns are separated by {shown}: Poise reads comma-separated files",
    )


def test_the_separator_is_told_at_the_header_after_blank_lines(
    sqlite_warehouse: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "services.csv"
    path.write_text("\n\nname;team\ncheckout;payments\n", encoding="utf-8")
    _rejected(
        sqlite_warehouse,
        "services",
        path,
        f"{path}:3: the columns are separated by ';': Poise reads comma-separated files",
    )


def test_a_semicolon_inside_a_comma_separated_header_is_an_unknown_column(
    sqlite_warehouse: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "services.csv"
    path.write_text("name,team;x\ncheckout,payments\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match=r":1: unknown column 'team;x' for --kind services"):
        import_file(sqlite_warehouse, "services", path)
