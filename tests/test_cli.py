"""The `poise` command: exit codes, one-line errors, `init`, and `import` end to end.

Exit codes and what reaches stderr are checked on the real `poise` executable of this
environment; the rest goes through `poise.cli.main`, which is the same code without the
process start-up.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from poise import __version__, import_files
from poise.cli import COMMANDS, main
from poise.config import load_config
from poise.warehouse import open_warehouse, schema

POISE = Path(sys.executable).with_name("poise")
KINDS = ("services", "changes", "deployments", "incidents", "slos", "sli", "toil")


def run_poise(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert POISE.exists(), f"{POISE} is missing: install the project (pip install -e .)"
    env = {k: v for k, v in os.environ.items() if k not in ("POISE_CONFIG", "POISE_DATABASE_URL")}
    return subprocess.run(
        [str(POISE), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def _malformed(tmp_path: Path) -> Path:
    path = tmp_path / "services.csv"
    path.write_text("name,team\ncheckout,payments\nsearch,discovery,extra\n", encoding="utf-8")
    return path


# --- the real executable ----------------------------------------------------------------


def test_version(tmp_path: Path) -> None:
    done = run_poise("--version", cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"poise {__version__}\n", "")


def test_a_usage_error_exits_2(tmp_path: Path) -> None:
    done = run_poise("import", "x.csv", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("usage: poise import")
    assert done.stderr.rstrip().endswith("the following arguments are required: --kind")
    assert "Traceback" not in done.stderr


def test_a_bad_file_is_one_line_and_exit_1(tmp_path: Path) -> None:
    path = _malformed(tmp_path)
    done = run_poise(
        "import", "--kind", "services", path.name, "--db", "sqlite:///w.db", cwd=tmp_path
    )
    assert done.returncode == 1
    assert done.stderr == "poise: services.csv:3: malformed CSV: 3 fields, the header has 2\n"
    assert done.stdout == ""


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    path = _malformed(tmp_path)
    done = run_poise(
        "--debug", "import", "--kind", "services", path.name, "--db", "sqlite:///w.db", cwd=tmp_path
    )
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr
    assert "poise.errors.ImportFileError" in done.stderr
    assert done.stderr.rstrip().endswith(
        "poise: services.csv:3: malformed CSV: 3 fields, the header has 2"
    )


def test_import_through_the_executable(tmp_path: Path) -> None:
    path = tmp_path / "services.csv"
    path.write_text("name,team\ncheckout,payments\n", encoding="utf-8")
    args = ("import", "--kind", "services", "services.csv", "--db", "sqlite:///w.db")
    first, second = run_poise(*args, cwd=tmp_path), run_poise(*args, cwd=tmp_path)
    assert (first.returncode, second.returncode) == (0, 0)
    assert "services.csv: 1 services rows read, 1 new or changed, 0 unchanged" in first.stderr
    assert "services.csv: 1 services rows read, 0 new or changed, 1 unchanged" in second.stderr


# --- through main() ---------------------------------------------------------------------


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_of_every_command_exits_0(
    command: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--help"] if command is None else [command, "--help"])
    assert caught.value.code == 0
    assert capsys.readouterr().out.startswith("usage: poise")


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        ((), "the following arguments are required: COMMAND"),
        (("bogus",), "invalid choice: 'bogus'"),
        (("import", "--kind", "builds", "x.csv"), "argument --kind: invalid choice: 'builds'"),
        (("init", "--frobnicate"), "unrecognized arguments: --frobnicate"),
    ],
    ids=["no-command", "unknown-command", "unknown-kind", "unknown-option"],
)
def test_usage_errors_exit_2(
    args: tuple[str, ...], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(list(args))
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: poise") and complaint in err


def test_debug_after_the_command_shows_the_traceback_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = _malformed(tmp_path)
    assert (
        main(["import", "--kind", "services", str(path), "--db", "sqlite:///w.db", "--debug"]) == 1
    )
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert err.rstrip().endswith("malformed CSV: 3 fields, the header has 2")


def test_init_writes_a_config_that_loads_and_keeps_an_existing_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "conf" / "poise.yaml"
    assert main(["init", str(target)]) == 0
    assert f"wrote {target}" in capsys.readouterr().err
    config = load_config(str(target))
    assert [team.name for team in config.teams] == ["payments"]

    target.write_text("teams: []\n", encoding="utf-8")
    assert main(["init", str(target)]) == 1
    assert capsys.readouterr().err == (
        f"poise: {target} already exists (use --force to overwrite it)\n"
    )
    assert target.read_text(encoding="utf-8") == "teams: []\n"

    assert main(["init", str(target), "--force"]) == 0
    assert load_config(str(target)).teams


def test_init_writes_poise_yaml_here_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    assert (tmp_path / "poise.yaml").is_file()


def test_a_config_error_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "poise.yaml").write_text(
        "teams:\n  - name: payments\n    sise: 3\n", encoding="utf-8"
    )
    path = _malformed(tmp_path)
    assert main(["import", "--kind", "services", str(path), "--db", "sqlite:///w.db"]) == 1
    assert capsys.readouterr().err == (
        "poise: poise.yaml: teams[0].sise: unknown key (did you mean 'size'?)\n"
    )


def test_an_unreachable_database_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = _malformed(tmp_path)
    url = "postgresql+psycopg://poise:hunter2@127.0.0.1:1/poise?connect_timeout=2"
    assert main(["import", "--kind", "services", str(path), "--db", url]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        "poise: database unavailable at postgresql+psycopg://poise:***@127.0.0.1:1/poise"
    )
    assert err.count("\n") == 1
    assert "hunter2" not in err


def test_a_bug_says_internal_error_and_debug_shows_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("something inside broke")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("poise.commands.import_.import_file", broken)
    path = _malformed(tmp_path)
    args = ["import", "--kind", "services", str(path), "--db", "sqlite:///w.db"]
    assert main(args) == 1
    assert capsys.readouterr().err == (
        "poise: internal error: RuntimeError: something inside broke (run with --debug for the "
        "traceback, and please report it)\n"
    )
    assert main(["--debug", *args]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "something inside broke" in err


def _orggen(folder: Path) -> dict[str, Path]:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    try:
        from orggen import write_org
    finally:
        sys.path.pop(0)
    return write_org(
        folder, teams=3, services=6, deployments=40, changes=100, incidents=10, slos=6, sli_days=1
    )


def _counts(url: str) -> dict[str, int]:
    engine = open_warehouse(url)
    try:
        with engine.connect() as connection:
            return {
                table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
                for table in schema.CANONICAL_TABLES
            }
    finally:
        engine.dispose()


def test_importing_every_kind_twice_leaves_the_same_counts(
    warehouse_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The foundation's done-when: `poise import` of every kind, then again, same row counts."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(import_files, "CHUNK_ROWS", 64)
    files = _orggen(tmp_path / "org")
    assert tuple(files) == KINDS
    for kind, path in files.items():
        assert main(["import", "--kind", kind, str(path), "--db", warehouse_url]) == 0
    first = _counts(warehouse_url)
    capsys.readouterr()
    for kind, path in files.items():
        assert main(["import", "--kind", kind, str(path), "--db", warehouse_url]) == 0
    assert _counts(warehouse_url) == first
    with (tmp_path / "org" / "sli.csv").open(newline="") as handle:
        samples = sum(1 for _ in csv.reader(handle)) - 1
    assert first["sli_samples"] == samples == 6 * 24
    assert first["deployments"] == 40 and first["changes"] == 100 and first["incidents"] == 10
    err = capsys.readouterr().err
    assert err.count(" new or changed") == len(KINDS)
    assert ", 0 new or changed," in err and err.count(", 0 new or changed,") == len(KINDS)
