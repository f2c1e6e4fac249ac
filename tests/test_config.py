"""poise.yaml validation: every error names the file and the key path in one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from poise.commands.init import starter_text
from poise.config import (
    CONFIG_ENV,
    PoiseConfig,
    SloConfig,
    SloFile,
    load_config,
    parse_config,
    secret_from_env,
)
from poise.errors import ConfigError

TEAMS = [{"name": "payments", "size": 6, "timezone": "Europe/Berlin"}, {"name": "search"}]
SERVICES = [{"name": "checkout", "team": "payments"}, {"name": "index", "team": "search"}]


def _config(**extra: Any) -> dict[str, Any]:
    return {"teams": TEAMS, "services": SERVICES, **extra}


def _error(data: Any, base_dir: Path | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, origin="poise.yaml", base_dir=base_dir)
    return str(caught.value)


def test_a_good_config_parses(tmp_path: Path) -> None:
    (tmp_path / "slos").mkdir()
    (tmp_path / "slos" / "search.yaml").write_text("apiVersion: openslo/v1\n", encoding="utf-8")
    config = parse_config(
        _config(
            slos=[
                {"name": "checkout-availability", "service": "checkout", "target": 0.999},
                {"file": "slos/search.yaml"},
            ],
            sources={"github": {"token_env": "GITHUB_TOKEN"}},
        ),
        base_dir=tmp_path,
    )
    assert [team.name for team in config.teams] == ["payments", "search"]
    assert config.team("payments") is not None and config.team("payments").size == 6
    assert config.service("index") is not None and config.service("index").team == "search"
    inline, from_file = config.slos
    assert isinstance(inline, SloConfig) and inline.window_days == 28
    assert isinstance(from_file, SloFile)
    assert config.resolve_path(from_file.file) == tmp_path / "slos" / "search.yaml"
    assert config.sources.github is not None and config.sources.github.token_env == "GITHUB_TOKEN"


def test_nothing_at_all_is_the_defaults() -> None:
    config = parse_config(None)
    assert config.teams == [] and config.services == [] and config.benchmark_year == 2023
    assert config.attribution.window_hours == 24


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"teams": [{"name": "payments", "sise": 3}]},
            "poise.yaml: teams[0].sise: unknown key (did you mean 'size'?)",
        ),
        ({"team": []}, "poise.yaml: team: unknown key (did you mean 'teams'?)"),
        (
            _config(services=[{"name": "checkout", "team": "payments", "gitlab": {"projekt": 1}}]),
            "poise.yaml: services[0].gitlab.projekt: unknown key (did you mean 'project'?)",
        ),
        (
            {"sources": {"github": {"colour": "blue"}}},
            "poise.yaml: sources.github.colour: unknown key",
        ),
        (
            {"sources": {"opsgenie": {"since": "last spring"}}},
            "poise.yaml: sources.opsgenie.since: 'last spring' is not an ISO 8601 timestamp with an "
            "offset; give a date like 2025-01-01",
        ),
        (
            {"sources": {"github": {"since": "2025-02-30"}}},
            "poise.yaml: sources.github.since: '2025-02-30' is not a valid date (day is out of "
            "range for month); give a date like 2025-01-01",
        ),
        (
            _config(slos=[{"name": "a", "service": "checkout", "target": 0.99, "windw_days": 3}]),
            "poise.yaml: slos[0].windw_days: unknown key (did you mean 'window_days'?)",
        ),
        (
            _config(slos=[{"file": "x.yaml", "target": 0.99}]),
            "poise.yaml: slos[0].target: unknown key",
        ),
        (
            _config(services=[{"name": "checkout", "team": "paymnets"}]),
            "poise.yaml: services[0].team: unknown team 'paymnets' (did you mean 'payments'?)",
        ),
        (
            _config(services=[SERVICES[0], {"name": "x", "team": "nobody"}]),
            "poise.yaml: services[1].team: unknown team 'nobody'",
        ),
        (
            {"teams": [{"name": "payments", "timezone": "Mars/Olympus"}]},
            "poise.yaml: teams[0].timezone: unknown time zone 'Mars/Olympus'",
        ),
        (
            _config(slos=[{"file": "slos/missing.yaml"}]),
            "poise.yaml: slos[0].file: no such file 'slos/missing.yaml'",
        ),
        (
            _config(slos=[{"name": "a", "service": "checkout", "target": 1.5}]),
            "poise.yaml: slos[0].target: Input should be less than 1",
        ),
        (
            _config(slos=[{"name": "a", "target": 0.99}]),
            "poise.yaml: slos[0].service: required key is missing",
        ),
        (
            _config(slos=[{"name": "a", "service": "cart", "target": 0.99}]),
            "poise.yaml: slos[0].service: unknown service 'cart'",
        ),
        (
            {"teams": [{"name": "p"}, {"name": "p"}]},
            "poise.yaml: teams[1].name: 'p' is listed twice",
        ),
        (
            {"teams": [{"name": "p", "size": "many"}]},
            "poise.yaml: teams[0].size: Input should be a valid integer, unable to parse string as an integer",
        ),
        (
            {"benchmark_year": 2022},
            "poise.yaml: benchmark_year: Input should be 2021, 2023 or 2024",
        ),
        ({"teams": {"name": "p"}}, "poise.yaml: teams: Input should be a valid list"),
        (["teams"], "poise.yaml: the file must hold a mapping of keys, not list"),
        (
            _config(services=[{"name": "checkout", "team": "payments", "git": {"path": "nope"}}]),
            "poise.yaml: services[0].git.path: no such folder 'nope'",
        ),
        *[
            (
                _config(
                    services=[{"name": "checkout", "team": "payments", "git": {"path": ".", **git}}]
                ),
                f"poise.yaml: services[0].git.deploy_tags: {message}",
            )
            for git, message in [
                (
                    {"deploy_tags": ["v*", 2]},
                    "must be a glob of tag names ('v*') or a list of them (['v*', 'r*'])",
                ),
                ({"deploy_tags": []}, "an empty list names no tag; leave deploy_tags out instead"),
                ({"deploy_tags": ["v*", ""]}, "an empty glob matches no tag; leave it out"),
            ]
        ],
        *[
            (
                _config(
                    services=[
                        {"name": "checkout", "team": "payments", "github": {"repo": "a/b", **gh}}
                    ]
                ),
                f"poise.yaml: services[0].github{where}: {message}",
            )
            for gh, where, message in [
                (
                    {"deploy_job": "deploy"},
                    "",
                    "deploy_job needs deploy_workflow (the workflow whose runs deploy)",
                ),
                (
                    {"deploy_branches": "main"},
                    "",
                    "deploy_branches needs deploy_workflow (the workflow whose runs deploy)",
                ),
                (
                    {"deploy_workflow": "deploy.yml", "deploy_branches": {"main": True}},
                    ".deploy_branches",
                    "must be a glob of branch names ('main') or a list of them (['main', 'v*'])",
                ),
                (
                    {"deploy_workflow": "deploy.yml", "deploy_branches": []},
                    ".deploy_branches",
                    "an empty list names no branch; leave deploy_branches out instead",
                ),
            ]
        ],
    ],
)
def test_errors_name_the_key_path(data: Any, message: str, tmp_path: Path) -> None:
    assert _error(data, base_dir=tmp_path) == message


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"sources": {"github": {"token": "ghp_0123456789"}}},
            "poise.yaml: sources.github.token: secrets do not belong in the config file; put it "
            "in an environment variable and name that variable with token_env",
        ),
        (
            {"sources": {"jenkins": {"password": "hunter2"}}},
            "poise.yaml: sources.jenkins.password: secrets do not belong in the config file; put "
            "it in an environment variable and name that variable with token_env (the user's "
            "name goes in user_env)",
        ),
        (
            _config(
                services=[{"name": "checkout", "team": "payments", "github": {"api_key": "k"}}]
            ),
            "poise.yaml: services[0].github.api_key: secrets do not belong in the config file; "
            "put it in an environment variable and name that variable with "
            "sources.github.token_env",
        ),
        (
            {"database": "postgresql+psycopg://poise:hunter2@db.internal/poise"},
            "poise.yaml: database: a password does not belong in the config file; give the URL in "
            "POISE_DATABASE_URL, or the password in PGPASSWORD",
        ),
    ],
)
def test_a_secret_value_is_refused_and_never_echoed(data: Any, message: str) -> None:
    error = _error(data)
    assert error == message
    assert "ghp_0123456789" not in error and "hunter2" not in error


def test_secrets_are_named_by_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_config({"sources": {"github": {"token_env": "POISE_TEST_TOKEN"}}})
    assert config.sources.github is not None
    monkeypatch.delenv("POISE_TEST_TOKEN", raising=False)
    with pytest.raises(
        ConfigError, match=r"^sources.github: environment variable POISE_TEST_TOKEN is not set$"
    ):
        secret_from_env(config.sources.github.token_env, what="sources.github")
    monkeypatch.setenv("POISE_TEST_TOKEN", "s3cret")
    assert secret_from_env(config.sources.github.token_env, what="sources.github") == "s3cret"
    assert secret_from_env(None, what="sources.github") is None
    assert parse_config({"database": "postgresql+psycopg://poise@db/poise"}).database


# --- files ------------------------------------------------------------------------------


def _write(tmp_path: Path, text: str, name: str = "poise.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "teams:\n  - name: payments\n    size: 3\n  services: []\n",
            "{path}:4: not valid YAML: expected <block end>, but found '?'",
        ),
        (
            'teams:\n  - name: "payments\n',
            "{path}:3: not valid YAML: found unexpected end of stream",
        ),
        ("\t- x\n", "{path}:1: not valid YAML: found character '\\t' that cannot start any token"),
        (
            "teams:\n  - name: payments\n    size: 3\n    name: search\n",
            "{path}:4: not valid YAML: key 'name' appears twice",
        ),
        (
            "x: !!python/object/apply:os.system ['true']\n",
            "{path}:1: not valid YAML: could not determine a constructor for the tag "
            "'tag:yaml.org,2002:python/object/apply:os.system'",
        ),
    ],
    ids=["bad-indent", "unclosed-quote", "tab", "repeated-key", "unsafe-tag"],
)
def test_bad_yaml_names_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(str(path))
    assert str(caught.value) == message.format(path=path)


def test_a_validation_error_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "teams:\n  - name: payments\n    sise: 3\n")
    with pytest.raises(ConfigError) as caught:
        load_config(str(path))
    assert str(caught.value) == f"{path}: teams[0].sise: unknown key (did you mean 'size'?)"


def test_paths_are_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "conf"
    (folder / "slos").mkdir(parents=True)
    (folder / "slos" / "a.yaml").write_text("{}\n", encoding="utf-8")
    (folder / "repo").mkdir()
    path = _write(
        folder,
        "teams: [{name: payments}]\n"
        "services: [{name: checkout, team: payments, git: {path: repo}}]\n"
        "slos: [{file: slos/a.yaml}]\n",
    )
    monkeypatch.chdir(tmp_path)  # not the config's folder
    config = load_config(str(path))
    assert config.origin == str(path)
    assert config.resolve_path("repo") == folder / "repo"


def test_which_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    assert load_config() == PoiseConfig(base_dir=load_config().base_dir)  # none: the defaults
    _write(tmp_path, "benchmark_year: 2021\n")
    assert load_config().benchmark_year == 2021  # ./poise.yaml
    other = _write(tmp_path, "benchmark_year: 2024\n", name="other.yaml")
    monkeypatch.setenv(CONFIG_ENV, str(other))
    assert load_config().benchmark_year == 2024  # $POISE_CONFIG beats ./poise.yaml
    assert load_config(str(tmp_path / "poise.yaml")).benchmark_year == 2021  # --config beats both
    with pytest.raises(ConfigError) as caught:
        load_config(str(tmp_path / "missing.yaml"))
    assert str(caught.value) == (
        f"{tmp_path / 'missing.yaml'}: no such config file (run `poise init` to write one)"
    )
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "gone.yaml"))
    with pytest.raises(ConfigError, match=r"gone\.yaml: no such config file"):
        load_config()


def test_an_empty_file_is_the_defaults(tmp_path: Path) -> None:
    path = _write(tmp_path, "# nothing yet\n")
    assert load_config(str(path)).teams == []


def test_the_starter_config_is_valid(tmp_path: Path) -> None:
    path = _write(tmp_path, starter_text())
    config = load_config(str(path))
    assert [team.name for team in config.teams] == ["payments"]
    assert [service.name for service in config.services] == ["checkout"]


def test_a_relative_sqlite_database_is_relative_to_the_config_file(tmp_path: Path) -> None:
    folder = tmp_path / "ops"
    folder.mkdir()
    (folder / "poise.yaml").write_text("database: sqlite:///data/poise.db\n", encoding="utf-8")
    config = load_config(folder / "poise.yaml")
    assert config.database == f"sqlite:///{folder / 'data' / 'poise.db'}"
    # absolute paths, ~ and servers are left as written
    for url in ("sqlite:////srv/poise.db", "sqlite:///~/poise.db", "postgresql+psycopg://p@db/p"):
        assert parse_config({"database": url}, base_dir=folder).database == url
