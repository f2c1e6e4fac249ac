"""Mistakes found by probing the CLI, each now one line saying what and where: unquoted YAML
dates in `since`, a poise.yaml that is not UTF-8, in-memory SQLite URLs, SLOs with half
their queries, one SQLite file named twice to migrate-db, `init --force` onto things that
are not regular files, secret hints naming keys that exist, and a PostgreSQL search_path
naming a missing schema."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml
from conftest import postgres_base_url
from test_config_checks import load_error, write

from poise.cli import main
from poise.config import load_config, parse_config
from poise.errors import ConfigError
from poise.warehouse import open_warehouse

SINCE_SOURCES = ["github", "gitlab", "jenkins", "pagerduty", "opsgenie", "prometheus"]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("POISE_CONFIG", "POISE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Exit code and the single stderr line of the real CLI."""
    code = main(list(argv))
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "internal error" not in err and "Traceback" not in err
    return code, lines[0]


# --- 1. unquoted dates in `since` -----------------------------------------------------------


@pytest.mark.parametrize("source", SINCE_SOURCES)
@pytest.mark.parametrize(
    ("written", "instant"),
    [
        ("2025-01-01", datetime(2025, 1, 1, tzinfo=UTC)),
        ("2025-01-01T06:30:00Z", datetime(2025, 1, 1, 6, 30, tzinfo=UTC)),
        ("2025-01-01T06:30:00+02:00", datetime(2025, 1, 1, 4, 30, tzinfo=UTC)),
    ],
)
def test_an_unquoted_since_is_read_as_the_quoted_one(
    tmp_path: Path, source: str, written: str, instant: datetime
) -> None:
    for text in (written, f"'{written}'"):
        config = load_config(str(write(tmp_path, f"sources:\n  {source}: {{since: {text}}}\n")))
        settings = getattr(config.sources, source)
        assert settings.since_bound() == instant
        assert settings.since_bound().tzinfo is not None


@pytest.mark.parametrize(
    ("written", "problem"),
    [
        ("2026-13-01", "'2026-13-01' is not a valid date (month must be in 1..12)"),
        ("2025-02-30", "'2025-02-30' is not a valid date (day is out of range for month)"),
        ("2025-01-01 10:00:00", "timestamp '2025-01-01 10:00:00' has no offset: add Z or +HH:MM"),
    ],
)
def test_an_impossible_or_zoneless_unquoted_since_names_the_key(
    tmp_path: Path, written: str, problem: str
) -> None:
    path = write(tmp_path, f"sources:\n  github:\n    since: {written}\n")
    assert load_error(path) == (
        f"{path}: sources.github.since: {problem}; give a date like 2025-01-01"
    )


def test_a_since_loaded_by_another_yaml_reader_is_judged_the_same() -> None:
    # yaml.safe_load turns the text into date / datetime objects before Poise sees them
    loaded = yaml.safe_load(
        "github: {since: 2025-01-01}\nprometheus: {since: 2025-01-01T00:00:00Z}"
    )
    assert isinstance(loaded["github"]["since"], date)
    config = parse_config({"sources": loaded})
    assert config.sources.github is not None and config.sources.prometheus is not None
    assert config.sources.github.since_bound() == datetime(2025, 1, 1, tzinfo=UTC)
    assert config.sources.prometheus.since_bound() == datetime(2025, 1, 1, tzinfo=UTC)
    with pytest.raises(ConfigError, match=r"sources\.github\.since: timestamp .* has no offset"):
        parse_config({"sources": {"github": {"since": datetime(2025, 1, 1, 10)}}})  # noqa: DTZ001


def test_other_unquoted_dates_stay_text(tmp_path: Path) -> None:
    path = write(tmp_path, "teams: [{name: 2025-01-01}]\n")
    assert load_config(str(path)).teams[0].name == "2025-01-01"


def test_the_cli_says_which_since_is_impossible(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "sources:\n  prometheus: {since: 2026-13-01}\n")
    code, line = run(capsys, "metrics", "--config", str(path))
    assert code == 1
    assert line.startswith(f"poise: {path}: sources.prometheus.since: '2026-13-01' is not a valid")


# --- 2. a poise.yaml that is not UTF-8 ----------------------------------------------------------


def test_a_latin1_config_is_one_line_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(b"teams:\n  - name: a\n\n  - name: caf\xe9\n")
    code, line = run(capsys, "metrics", "--config", str(path))
    assert code == 1
    assert line == (
        f"poise: {path}:4: not UTF-8 text (byte 0xe9 at offset 33): save the file as UTF-8"
    )
    path.write_bytes(b"teams: [{name: caf\xe9}]\n")
    assert load_error(path) == (
        f"{path}:1: not UTF-8 text (byte 0xe9 at offset 18): save the file as UTF-8"
    )


# --- 3. in-memory SQLite URLs -------------------------------------------------------------------

IN_MEMORY = ["sqlite://", "sqlite:///", "sqlite:///:memory:", "sqlite:///file::memory:?uri=true"]


@pytest.mark.parametrize("url", IN_MEMORY)
@pytest.mark.parametrize("command", [["metrics"], ["demo", "--days", "1"], ["sync"]])
def test_an_in_memory_warehouse_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str, command: list[str]
) -> None:
    write(tmp_path, "teams: []\n")  # ./poise.yaml (demo takes no --config)
    code, line = run(capsys, *command, "--db", url)
    assert code == 1
    assert line == (
        f"poise: --db {url}: an in-memory SQLite database keeps nothing: a warehouse must be "
        "a file or a server (name the file, e.g. sqlite:///data/poise.db)"
    )


def test_an_in_memory_database_key_is_refused_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path, "database: 'sqlite:///:memory:'\n")
    code, line = run(capsys, "metrics", "--config", str(config))
    assert code == 1
    assert line.startswith(f"poise: database in {config} sqlite:///:memory:: an in-memory")


# --- 4. SLO queries half given ------------------------------------------------------------------

SLO = "slos:\n  - {name: a, service: co, target: 0.999, "


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        ("total: 'sum(rate(x[5m]))'", "slos[0].good: required with total (or bad, counting bad"),
        ("good: 'sum(rate(x[5m]))'", "slos[0].total: required with good or bad"),
        ("good: '', total: ''", "slos[0].good: empty: give a PromQL query, or leave the key out"),
        ("bad: ' ', total: 'x'", "slos[0].bad: empty: give a PromQL query"),
        ("datasource: prometheus", "slos[0].total: required with datasource prometheus"),
    ],
)
def test_an_slo_with_half_its_queries_is_refused(tmp_path: Path, keys: str, problem: str) -> None:
    path = write(tmp_path, SLO + keys + "}\n")
    assert load_error(path).startswith(f"{path}: {problem}")


@pytest.mark.parametrize(
    "keys",
    [
        "",  # samples imported
        "datasource: datadog",  # samples imported, from elsewhere
        "good: 'x', total: 'y'",
        "bad: 'x', total: 'y', datasource: prometheus",
    ],
)
def test_the_legal_slo_forms_still_load(tmp_path: Path, keys: str) -> None:
    path = write(tmp_path, SLO + keys + "}\n")
    assert load_config(str(path)).slos[0].name == "a"  # type: ignore[union-attr]


# --- 5. migrate-db onto its own file ------------------------------------------------------------


def test_migrate_db_sees_one_file_spelt_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "x"
    folder.mkdir()
    database = folder / "demo.db"
    open_warehouse(f"sqlite:///{database}").dispose()
    os.symlink(database, tmp_path / "link.db")
    os.link(database, tmp_path / "hard.db")
    os.chdir(folder)
    for target in (
        "sqlite:///../x/demo.db",
        "sqlite:///demo.db",
        f"sqlite:///{tmp_path}/link.db",
        f"sqlite:///{tmp_path}/hard.db",
    ):
        code, line = run(capsys, "migrate-db", "--from", f"sqlite:///{database}", "--to", target)
        assert code == 1, target
        assert line == "poise: --from and --to name the same warehouse"
    assert not list(folder.glob("*.sync.lock"))  # refused before either was opened


# --- 6. init --force onto what is not a regular file --------------------------------------------


def test_init_force_refuses_a_fifo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for force in ([], ["--force"]):
        code, line = run(capsys, "init", *force, str(fifo))
        assert code == 1
        assert line == f"poise: {fifo} is not a regular file: name a file to write"
    assert fifo.is_fifo()


def test_init_force_writes_through_a_symlink_to_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real = tmp_path / "dotfiles" / "poise.yaml"
    real.parent.mkdir()
    real.write_text("old\n", encoding="utf-8")
    link = tmp_path / "poise.yaml"
    link.symlink_to(real)
    code, line = run(capsys, "init", str(link))
    assert code == 1 and line == f"poise: {link} already exists (use --force to overwrite it)"
    code, line = run(capsys, "init", "--force", str(link))
    assert code == 0 and line.startswith(f"wrote {real}:")
    assert link.is_symlink() and link.resolve() == real
    assert real.read_text(encoding="utf-8").startswith("# poise.yaml")


def test_init_force_refuses_links_to_anything_else(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    to_fifo = tmp_path / "to-fifo"
    to_fifo.symlink_to(fifo)
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    code, line = run(capsys, "init", "--force", str(to_fifo))
    assert code == 1
    assert (
        line
        == f"poise: {to_fifo} links to {fifo}, which is not a regular file: name a file to write"
    )
    for force in ([], ["--force"]):
        code, line = run(capsys, "init", *force, str(dangling))
        assert code == 1
        assert line == f"poise: {dangling} is a link to nothing: name a file to write"
    assert to_fifo.is_symlink() and dangling.is_symlink() and fifo.is_fifo()
    assert not (tmp_path / "nowhere").exists()


# --- 7. secret hints name keys that exist -------------------------------------------------------


@pytest.mark.parametrize(
    ("yaml_text", "key", "hint"),
    [
        ("sources:\n  prometheus: {api_key: x}\n", "sources.prometheus.api_key", "token_env"),
        ("sources:\n  pagerduty: {password: x}\n", "sources.pagerduty.password", "token_env"),
        ("sources:\n  opsgenie: {apikey: x}\n", "sources.opsgenie.apikey", "token_env"),
        (
            "sources:\n  jenkins: {password: x}\n",
            "sources.jenkins.password",
            "token_env (the user's name goes in user_env)",
        ),
        (
            "auth:\n  provider: {client_secret: x}\n",
            "auth.provider.client_secret",
            "client_secret_env",
        ),
    ],
)
def test_a_secret_hint_names_a_key_that_exists(
    tmp_path: Path, yaml_text: str, key: str, hint: str
) -> None:
    path = write(tmp_path, yaml_text)
    assert load_error(path) == (
        f"{path}: {key}: secrets do not belong in the config file; put it in an environment "
        f"variable and name that variable with {hint}"
    )
    if key.startswith("sources."):  # the key hinted at is one the file accepts
        kind = key.split(".")[1]
        accepted = write(tmp_path, f"sources:\n  {kind}: {{{hint.split()[0]}: T_VAR}}\n")
        assert getattr(load_config(str(accepted)).sources, kind).token_env == "T_VAR"


def test_the_tls_source_takes_no_credentials(tmp_path: Path) -> None:
    path = write(tmp_path, "sources:\n  tls: {key: x}\n")
    assert load_error(path) == (
        f"{path}: sources.tls.key: secrets do not belong in the config file; the tls source "
        "takes no credentials (it reads what servers present)"
    )


# --- 8. a PostgreSQL search_path naming a missing schema ----------------------------------------


@pytest.mark.postgres
def test_a_missing_schema_is_one_line_without_the_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = postgres_base_url()
    if not base:
        pytest.skip("set POISE_TEST_POSTGRES_URL to run it")
    schema_name = f"missing_{uuid.uuid4().hex[:8]}"
    # a password the server ignores (trust) or accepts: it must not be printed either way
    with_password = base.replace("postgres@", "postgres:s3cret@", 1)
    separator = "&" if "?" in with_password else "?"
    url = f"{with_password}{separator}options={quote(f'-csearch_path={schema_name}')}"
    code, line = run(capsys, "metrics", "--db", url)
    assert code == 1
    assert line.startswith("poise: database ")
    assert line.endswith(
        f": no schema named in its search_path ({schema_name}) exists: create it "
        "(CREATE SCHEMA …) or fix the URL"
    )
    assert "s3cret" not in line
