"""User mistakes on the command line: one line naming what and where, a non-zero exit, never
"internal error", and nothing stored lost. A typo in --db, a URL of the wrong kind, a file
that cannot be written, a reader that leaves a pipe early, a report whose name and format
disagree.

Everything goes through `poise.cli.main` on real SQLite files in tmp_path, except the broken
pipe, which needs the real executable writing into a pipe whose reader has gone.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from metrics_org import Org, at
from rich.console import Console

from poise.cli import main
from poise.commands import metrics as metrics_command
from poise.commands import scorecard_table
from poise.warehouse import open_warehouse

POISE = Path(sys.executable).with_name("poise")
HINT = "(run poise demo, import or sync first, or check --db)"
URL_HINT = "(use sqlite:///FILE or postgresql+psycopg://…)"
PROC = Path("/proc")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No poise.yaml, database URL or CI variables from around the test."""
    monkeypatch.chdir(tmp_path)
    for name in ("POISE_CONFIG", "POISE_DATABASE_URL", "GITHUB_SHA", "GITHUB_ACTOR"):
        monkeypatch.delenv(name, raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line(err: str) -> str:
    """The single stderr line of a failure (and that it is single and no internal error)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "internal error" not in err and "Traceback" not in err
    return lines[0]


def small_org() -> Org:
    """Two quarters of one service: change fail rate 1 of 4 (25 %) in 2026Q2, 1 of 5 (20 %)
    in 2026Q3, and an SLO burning its budget, so a forecast of exhaustion exists."""
    org = Org().service("checkout", "payments")
    for index, day in enumerate((-80, -60, -40)):
        org.deploy(f"p{index}", "checkout", at(days=day))
    org.deploy("p3", "checkout", at(days=-39), remediation_of="p2")
    for index, day in enumerate((5, 15, 25, 35)):
        org.deploy(f"q{index}", "checkout", at(days=day))
    org.deploy("q4", "checkout", at(days=36), remediation_of="q3")
    org.slo("checkout-availability", "checkout", 0.999, 28)
    for day in range(60, 92):
        org.sli("checkout-availability", at(days=day), 24, 99_970, 100_000)
    return org


@pytest.fixture
def loaded(tmp_path: Path) -> str:
    """A warehouse file holding `small_org`, loaded through the importer."""
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    engine = open_warehouse(url)
    try:
        small_org().load(engine, tmp_path / "files")
    finally:
        engine.dispose()
    return url


# --- 1. a missing warehouse: refused by commands that only read, made by those that write ---


READERS = [
    ("metrics",),
    ("explain", "lead_time"),
    ("report", "--quarter", "2026Q2", "--format", "md"),
    ("gate", "--service", "checkout", "--dry-run"),
]


@pytest.mark.parametrize("command", READERS, ids=lambda words: words[0])
def test_a_command_that_reads_refuses_a_missing_warehouse(
    command: tuple[str, ...], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nodir" / "x.db"
    code, out, err = run(capsys, *command, "--db", f"sqlite:///{missing}")
    assert code == 1 and out == ""
    assert one_line(err) == f"poise: no warehouse at {missing} {HINT}"
    assert not missing.parent.exists()  # neither the file nor its folder was made


def test_the_message_names_where_the_url_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "typo.db"
    monkeypatch.setenv("POISE_DATABASE_URL", f"sqlite:///{missing}")
    code, _, err = run(capsys, "metrics")
    assert code == 1
    assert one_line(err) == (
        f"poise: no warehouse at {missing} (run poise demo, import or sync first, or check "
        "$POISE_DATABASE_URL)"
    )
    monkeypatch.delenv("POISE_DATABASE_URL")
    code, _, err = run(capsys, "metrics")  # the default, data/poise.db in the working folder
    assert code == 1
    assert one_line(err) == f"poise: no warehouse at data/poise.db {HINT}"
    assert not (tmp_path / "data").exists() and not missing.exists()


def test_migrate_db_refuses_a_missing_source_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, target = tmp_path / "nosuch.db", tmp_path / "to.db"
    code, _, err = run(
        capsys, "migrate-db", "--from", f"sqlite:///{source}", "--to", f"sqlite:///{target}"
    )
    assert code == 1
    assert one_line(err) == (
        f"poise: no warehouse at {source} (run poise demo, import or sync first, or check --from)"
    )
    assert sorted(tmp_path.iterdir()) == []  # no source, no target, no lock files


def test_commands_that_write_still_create_the_warehouse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    services = tmp_path / "services.csv"
    services.write_text("name,team\ncheckout,payments\n", encoding="utf-8")
    imported = tmp_path / "new" / "folder" / "w.db"
    assert (
        main(["import", "--kind", "services", str(services), "--db", f"sqlite:///{imported}"]) == 0
    )
    assert imported.is_file()
    capsys.readouterr()
    # ... and then a reader finds it
    code, out, _ = run(capsys, "metrics", "--format", "json", "--db", f"sqlite:///{imported}")
    assert code == 0 and json.loads(out)["scope"]
    built = tmp_path / "demo" / "d.db"
    assert main(["demo", "--days", "1", "--db", f"sqlite:///{built}"]) == 0
    assert built.is_file()


def test_the_dashboard_still_opens_a_missing_warehouse_empty(tmp_path: Path) -> None:
    """`poise ui` and the dashboard open through `open_warehouse`, which still creates the
    file: an empty warehouse is what makes the dashboard show its first-run help."""
    path = tmp_path / "fresh" / "poise.db"
    open_warehouse(f"sqlite:///{path}").dispose()
    assert path.is_file()


def test_an_empty_file_is_an_empty_warehouse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "touched.db"
    path.touch()  # SQLite's own view: a zero-byte file is an empty database
    code, out, _ = run(capsys, "metrics", "--format", "json", "--db", f"sqlite:///{path}")
    assert code == 0 and json.loads(out)["dora"]


# --- 2. URLs that name no warehouse -------------------------------------------------------------


def test_bad_urls_are_one_line_and_never_show_a_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_sqlite = tmp_path / "passwd"
    not_sqlite.write_text("root:x:0:0:root:/root:/bin/bash\n", encoding="utf-8")
    a_file = tmp_path / "afile"
    a_file.write_text("", encoding="utf-8")
    expected = {
        "foo://x": f"poise: --db foo://x: unknown database kind 'foo' {URL_HINT}",
        "mysql://me:s3cret@db/x": "poise: --db mysql://me:***@db/x: Poise keeps its warehouse "
        f"in SQLite or PostgreSQL, not mysql {URL_HINT}",
        "postgresql+nodriver://me:s3cret@db/x": "poise: --db postgresql+nodriver://me:***@db/x: "
        f"unknown driver 'nodriver' for postgresql {URL_HINT}",
        "postgresql://me:s3cret@db:port/x": "poise: --db postgresql://me:***@db:port/x: not a "
        f"valid database URL {URL_HINT}",
        "not a url": f"poise: --db not a url: not a valid database URL {URL_HINT}",
        f"sqlite:///{not_sqlite}": f"poise: {not_sqlite} is not a SQLite warehouse",
        f"sqlite:///{tmp_path}": f"poise: {tmp_path} is a folder, not a SQLite warehouse "
        "(name a file in it)",
    }
    for url, message in expected.items():
        code, _, err = run(capsys, "metrics", "--db", url)
        assert code == 1, url
        assert one_line(err) == message
        assert "s3cret" not in err
    assert not_sqlite.read_text(encoding="utf-8").startswith("root:")  # left as it was
    # a command that writes may create folders, and says which one it could not
    url = f"sqlite:///{a_file / 'sub' / 'qa.db'}"
    services = tmp_path / "services.csv"
    services.write_text("name,team\ncheckout,payments\n", encoding="utf-8")
    code, _, err = run(capsys, "import", "--kind", "services", str(services), "--db", url)
    assert code == 1
    assert one_line(err) == (
        f"poise: cannot create the folder {a_file / 'sub'} for the warehouse: Not a directory"
    )


@pytest.mark.skipif(not PROC.is_dir(), reason="needs /proc (Linux)")
def test_a_folder_that_cannot_be_made(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "demo", "--days", "1", "--db", "sqlite:////proc/sub/qa.db")
    assert code == 1
    assert one_line(err).startswith("poise: cannot create the folder /proc/sub for the warehouse: ")


# --- 3. files that cannot be written ------------------------------------------------------------


def test_init_cannot_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "somefolder"
    folder.mkdir()
    for force in ([], ["--force"]):
        code, _, err = run(capsys, "init", *force, str(folder))
        assert code == 1
        assert one_line(err) == (
            f"poise: {folder} is a folder: name the file to write, e.g. {folder / 'poise.yaml'}"
        )
    assert list(folder.iterdir()) == []
    a_file = tmp_path / "afile"
    a_file.write_text("kept\n", encoding="utf-8")
    code, _, err = run(capsys, "init", str(a_file / "poise.yaml"))
    assert code == 1
    assert one_line(
        err
    ) == f"poise: {a_file / 'poise.yaml'}: cannot create the folder {a_file}: " + ("File exists")
    assert a_file.read_text(encoding="utf-8") == "kept\n"


@pytest.mark.skipif(not PROC.is_dir(), reason="needs /proc (Linux)")
def test_writes_into_proc_fail_in_one_line(
    loaded: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "init", "/proc/x.yaml")
    assert code == 1
    assert re.fullmatch(r"poise: /proc/x\.yaml: cannot write: [^\n]+", one_line(err))
    report = ["report", "--quarter", "2026Q3", "--format", "md", "--db", loaded]
    code, out, err = run(capsys, *report, "--out", "/proc/r.md")
    assert code == 1 and out == ""
    line = one_line(err)
    assert re.fullmatch(r"poise: --out /proc/r\.md: cannot write: [^\n]+", line)
    assert ".r.md." not in line  # no temporary file's name
    demo = tmp_path / "demo.db"
    code, _, err = run(
        capsys, "demo", "--days", "1", "--export", "/proc/exp", "--db", f"sqlite:///{demo}"
    )
    assert code == 1
    assert re.fullmatch(r"poise: --export /proc/exp: cannot write: [^\n]+", one_line(err))
    assert not demo.exists()  # refused before the warehouse was touched


def test_demo_export_onto_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a_file = tmp_path / "exp"
    a_file.write_text("kept\n", encoding="utf-8")
    code, _, err = run(
        capsys,
        "demo",
        "--days",
        "1",
        "--export",
        str(a_file),
        "--db",
        f"sqlite:///{tmp_path / 'd.db'}",
    )
    assert code == 1
    assert (
        one_line(err) == f"poise: --export {a_file} is a file: name a folder for the import files"
    )
    assert a_file.read_text(encoding="utf-8") == "kept\n"


# --- 4. a reader that leaves early --------------------------------------------------------------


def _into_closed_pipe(*args: str, cwd: Path) -> tuple[int, str]:
    """Run the real executable with stdout a pipe whose reader closed it at once."""
    env = {k: v for k, v in os.environ.items() if k not in ("POISE_CONFIG", "POISE_DATABASE_URL")}
    process = subprocess.Popen(
        [str(POISE), *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # like `| head -1` once it has its line
    err = process.stderr.read().decode()
    return process.wait(timeout=120), err


@pytest.mark.parametrize(
    "args",
    [
        ("metrics", "--quarter", "2026Q3", "--format", "json"),
        ("metrics", "--quarter", "2026Q3"),
        ("metrics", "--quarter", "2026Q3", "--format", "csv"),
        ("gate", "--service", "checkout", "--format", "json", "--dry-run"),
    ],
    ids=["json", "table", "csv", "gate-json"],
)
def test_a_closed_pipe_stops_quietly(args: tuple[str, ...], loaded: str, tmp_path: Path) -> None:
    assert POISE.exists(), f"{POISE} is missing: install the project (pip install -e .)"
    code, err = _into_closed_pipe(*args, "--db", loaded, cwd=tmp_path)
    assert (code, err) == (141, "")


def test_a_broken_pipe_elsewhere_is_still_reported(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only a closed stdout is the quiet case; a socket's broken pipe is a failure to show."""

    def broken(_args: Any) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(metrics_command, "run", broken)
    code, _, err = run(capsys, "metrics")
    assert code == 1 and "BrokenPipeError" in err


# --- 5. a report's format and its file name -----------------------------------------------------


def test_report_format_and_suffix_must_agree(
    loaded: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["report", "--quarter", "2026Q3", "--db", loaded]
    refused = {
        ("--format", "md", "--out", "r2.pdf"): "poise: --out r2.pdf names a pdf file but "
        "--format is md: name it r2.md, or leave --format out",
        ("--out", "r.docx"): "poise: --out r.docx: the report cannot be written as .docx; end "
        "the name in one of .pdf, .html, .htm, .xlsx, .md",
        ("--out", "r"): "poise: --out r: name a file ending in one of .pdf, .html, .htm, .xlsx, "
        ".md, or an existing folder",
    }
    for extra, message in refused.items():
        code, _, err = run(capsys, *base, *extra)
        assert code == 1, extra
        assert one_line(err) == message
    assert sorted(path.name for path in tmp_path.glob("r*")) == []
    # the suffix sets the format when --format is not given, in any case
    code, out, _ = run(capsys, *base, "--out", "R.MD")
    assert code == 0 and "(md," in out
    assert (tmp_path / "R.MD").read_text(encoding="utf-8").startswith("# Quarterly report 2026Q3")
    code, _, _ = run(capsys, *base, "--format", "md", "--out", "same.md")
    assert code == 0
    # a folder gets the default name, in --format's format
    folder = tmp_path / "out"
    folder.mkdir()
    code, _, _ = run(capsys, *base, "--format", "md", "--out", str(folder))
    assert code == 0 and [path.name for path in folder.iterdir()] == ["poise-report-2026Q3.md"]


def test_report_help_says_how_the_format_is_chosen(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "must agree with that suffix" in text
    assert "ending in .pdf, .html (or .htm), .xlsx or .md, which sets the format" in text


# --- 6. the smaller things ----------------------------------------------------------------------


def test_demo_days_says_the_same_for_zero_and_negative(capsys: pytest.CaptureFixture[str]) -> None:
    for value in ("0", "-3"):
        with pytest.raises(SystemExit) as exit_info:
            main(["demo", "--days", value])
        assert exit_info.value.code == 2
        assert capsys.readouterr().err.strip().endswith("argument --days: must be at least 1")


def test_compare_table_shows_rates_in_percent_and_points(
    loaded: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "metrics", "--quarter", "2026Q3", "--compare", "--db", loaded)
    assert code == 0
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") == 5}
    cells = [cell.strip() for cell in rows["change fail rate"].split("│")[2:5]]
    assert cells == ["25.0 %", "20.0 %", "-5.0 pts"]
    cells = [cell.strip() for cell in rows["deployment frequency"].split("│")[2:5]]
    assert cells[2].endswith(" %") and cells[0].endswith("/ week")
    assert "Change from the previous period, 2026-04-01 00:00Z to 2026-07-01 00:00Z" in out
    # JSON, the contract, is untouched: the change block keeps its fractions
    code, out, _ = run(
        capsys, "metrics", "--quarter", "2026Q3", "--compare", "--format", "json", "--db", loaded
    )
    change = json.loads(out)["change"]["change_failure_rate"]
    assert change["previous"] == pytest.approx(0.25) and change["current"] == pytest.approx(0.2)


def test_times_in_the_table_are_to_the_minute() -> None:
    assert scorecard_table._minute("2026-10-27T00:37:09.534693Z") == "2026-10-27T00:37:00Z"
    assert scorecard_table._minute(None) is None


def test_the_table_prints_no_microseconds(loaded: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "metrics", "--from", "2026-08-01", "--to", "2026-10-01", "--db", loaded
    )
    assert code == 0
    assert "budget runs out" in out
    assert re.search(r"budget runs out \d{4}-\d{2}-\d{2} \d{2}:\d{2}Z", out)
    assert not re.search(r"\d{2}:\d{2}:\d{2}\.\d", out)


def test_change_rows_cover_every_compared_figure() -> None:
    from metrics.trends import COMPARED

    assert set(scorecard_table.CHANGE_ROWS) == set(COMPARED)
    console = Console(file=io.StringIO(), width=120)
    item = {"previous": 0, "current": 3, "delta": 3, "relative": None}
    scorecard_table.print_change(
        console,
        {
            "previous": {"period": {"from": "2026-04-01T00:00:00Z", "to": "2026-07-01T00:00:00Z"}},
            "change": {"incidents": item, "slos": {}},
        },
    )
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert re.search(r"incidents\s+│\s+0 │\s+3 │\s+\+3 │", text)


# --- periods the figures cannot compute ----------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["metrics", "--from", "0001-01-01", "--to", "2026-08-01"], "outside the years 1900"),
        (["metrics", "--from", "9999-12-01", "--to", "9999-12-31"], "outside the years 1900"),
        (["metrics", "--quarter", "9999Q4"], "'9999Q4' is outside the years 1900 to 8999"),
        (["metrics", "--quarter", "0000Q1"], "'0000Q1' is outside the years 1900 to 8999"),
        (["explain", "lead_time", "--from", "0001-01-01", "--to", "2026-01-01"], "outside"),
        (["report", "--quarter", "0001Q1", "--out", "z.md"], "outside the years 1900"),
        (["gate", "--service", "checkout", "--at", "0001-01-01T00:00:00Z"], "outside"),
        (["gate", "--service", "checkout", "--at", "2999-01-01"], "is in the future"),
    ],
)
def test_a_period_out_of_range_is_refused_where_it_is_given(
    loaded: str, capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    """A bound near the calendar's ends used to overflow deep in the figures (an internal
    error); a date after now made the gate answer from no data."""
    with pytest.raises(SystemExit) as stopped:
        main([*argv, "--db", loaded])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert says in err.strip().splitlines()[-1]
    assert "internal error" not in err and "Traceback" not in err and "_quarter" not in err


def test_a_piped_team_table_keeps_whole_names_and_values(loaded: str) -> None:
    """Through a pipe rich used 80 columns: team names and figures were cut ("payme…")."""
    shown = subprocess.run(
        [
            sys.executable,
            "-m",
            "poise.cli",
            "metrics",
            "--by-team",
            "--db",
            loaded,
            "--quarter",
            "2026Q3",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "COLUMNS"},
    ).stdout
    assert "…" not in shown
    assert "Teams, 2026-07-01 00:00Z to 2026-10-01 00:00Z" in shown


def test_explain_refuses_a_negative_limit(loaded: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["explain", "lead_time", "--limit", "-1", "--db", loaded])
    assert "give 0 (all) or more" in capsys.readouterr().err
