"""Mistakes in poise.yaml caught when the file is read, each one line naming the file and the
key, rather than at sync: a secret pasted where the *name* of its environment variable goes
(refused without ever being printed), an SLO file that is a folder, a git path that is a
file, and a certificate host given as a URL."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_config_checks import load_error, write

from collectors.github import GitHubSource
from poise.cli import main
from poise.config import load_config, secret_from_env
from poise.errors import ConfigError

SOURCES = ["github", "gitlab", "jenkins", "pagerduty", "opsgenie", "prometheus", "tls"]
# Values pasted into a `*_env` key that are no variable's name: tokens of several vendors
# (GitHub's classic token is a valid name by the letters it uses, so it is caught by shape),
# and a name with a space.
NOT_NAMES = [
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "github_pat_11ABCDEFG0abcdefghijklm_nopqrstuvwxyzABCDEFGHIJ0123456789abcdefghijkl",
    "glpat-abcdefghij0123456789",
    "glsa_AbCdEfGhIjKlMnOpQrStUvWxYz012345_0a1b2c3d",
    "a1b2c3d4e5f60718293a4b5c6d7e8f90",  # a Jenkins API token (hex) starting with a letter
    "11e4c5d6a7b8c9d0e1f2a3b4c5d6e7f8",  # …and one starting with a digit
    "u+AbCdEfGhIjKlMnOpQr",  # PagerDuty's shape
    "4a1b2c3d-5e6f-7a8b-9c0d-1e2f3a4b5c6d",  # Opsgenie's API key is a UUID
    "GH TOKEN",
    "$GITHUB_TOKEN",
]
GOOD_NAMES = ["GITHUB_TOKEN", "_PRIVATE", "gitlab_token", "GHE_TOKEN_2", "POISE_CI_JENKINS_USER"]


# --- 1. `*_env` keys hold names of variables, never their values ------------------------


@pytest.mark.parametrize("value", NOT_NAMES)
@pytest.mark.parametrize("source", SOURCES)
def test_a_token_in_token_env_is_refused_without_echoing_it(
    tmp_path: Path, source: str, value: str
) -> None:
    path = write(tmp_path, f"sources:\n  {source}: {{token_env: {value!r}}}\n")
    message = load_error(path)
    assert message == (
        f"{path}: sources.{source}.token_env: must name an environment variable (like "
        f"{source.upper()}_TOKEN), not hold a token: put the token in the environment"
    )
    assert value not in message
    if len(value) >= 20:  # a token: not even in part (as the "ghp_abcdef…789" of the report)
        assert value[:8] not in message and value[-6:] not in message


@pytest.mark.parametrize("value", NOT_NAMES)
def test_a_value_in_user_env_is_refused_without_echoing_it(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, f"sources:\n  jenkins: {{user_env: {value!r}}}\n")
    message = load_error(path)
    assert message == (
        f"{path}: sources.jenkins.user_env: must name an environment variable (like "
        "JENKINS_USER), not hold a user name: put the user name in the environment"
    )
    assert value not in message


@pytest.mark.parametrize(
    ("key", "example"),
    [
        ("client_secret_env", "POISE_OIDC_CLIENT_SECRET"),
        ("cookie_secret_env", "POISE_COOKIE_SECRET"),
    ],
)
@pytest.mark.parametrize("value", ["Zx8vQ2mN5pL7rT1wY4kB6cD9fG3hJ0sA", "my secret", ""])
def test_a_secret_in_the_auth_variables_is_refused_without_echoing_it(
    tmp_path: Path, key: str, example: str, value: str
) -> None:
    names = {"client_secret_env": "OIDC_SECRET", "cookie_secret_env": "COOKIE_SECRET", key: value}
    path = write(
        tmp_path,
        "auth:\n  provider:\n"
        "    server_metadata_url: https://login.example.com/.well-known/openid-configuration\n"
        "    client_id: poise\n"
        f"    client_secret_env: {names['client_secret_env']!r}\n"
        f"    cookie_secret_env: {names['cookie_secret_env']!r}\n"
        "    redirect_uri: https://poise.example.com/oauth2callback\n",
    )
    message = load_error(path)
    assert message == (
        f"{path}: auth.provider.{key}: must name an environment variable (like {example}), "
        "not hold a secret: put the secret in the environment"
    )
    if value:
        assert value not in message


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_names_of_variables_are_accepted(tmp_path: Path, name: str) -> None:
    path = write(
        tmp_path,
        f"sources:\n  jenkins: {{token_env: {name}, user_env: {name}}}\n"
        f"  prometheus: {{token_env: {name}}}\n",
    )
    config = load_config(str(path))
    assert config.sources.jenkins is not None and config.sources.jenkins.token_env == name
    assert config.sources.jenkins.user_env == name


def test_only_keys_naming_a_variable_are_checked(tmp_path: Path) -> None:
    # An environment_map key may end in "_env" by chance; its value is an environment.
    path = write(
        tmp_path,
        "teams: [{name: payments}]\n"
        "services:\n"
        "  - name: checkout\n    team: payments\n"
        "    github: {repo: acme/checkout, environment_map: {prod_env: pre-prod eu}}\n",
    )
    service = load_config(str(path)).service("checkout")
    assert service is not None and service.github is not None
    assert service.github.environment_map == {"prod_env": "pre-prod eu"}


def test_poise_sync_never_prints_a_pasted_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The reviewer's case, as a person meets it: the token was printed by the "not set" line.
    monkeypatch.delenv("POISE_DATABASE_URL", raising=False)
    for token in ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "glpat-abcdefghij0123456789"):
        path = write(
            tmp_path,
            "teams: [{name: payments}]\n"
            "services: [{name: checkout, team: payments, github: {repo: acme/checkout}}]\n"
            f'sources: {{github: {{token_env: "{token}"}}}}\n',
        )
        db = f"sqlite:///{tmp_path / 'poise.db'}"
        assert main(["sync", "--config", str(path), "--db", db]) != 0
        captured = capsys.readouterr()
        assert token not in captured.err + captured.out
        assert token[:10] not in captured.err + captured.out
        assert "sources.github.token_env: must name an environment variable" in captured.err


def test_the_not_set_message_names_only_a_checked_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POISE_TEST_UNSET_TOKEN", raising=False)
    path = write(
        tmp_path,
        "teams: [{name: payments}]\n"
        "services: [{name: checkout, team: payments, github: {repo: acme/checkout}}]\n"
        "sources: {github: {token_env: POISE_TEST_UNSET_TOKEN}}\n",
    )
    with pytest.raises(ConfigError) as caught:
        GitHubSource(load_config(str(path))).client()
    assert str(caught.value) == (
        "sources.github.token_env: environment variable POISE_TEST_UNSET_TOKEN is not set"
    )


@pytest.mark.parametrize("value", NOT_NAMES)
def test_secret_from_env_never_prints_a_value_that_is_no_name(value: str) -> None:
    # A name that reached it without the file's check (a settings object made in code).
    with pytest.raises(ConfigError) as caught:
        secret_from_env(value, what="sources.github.token_env")
    assert value not in str(caught.value)
    assert str(caught.value).startswith("sources.github.token_env: must name an environment")


# --- 3. paths and hosts -------------------------------------------------------------------


def test_an_slo_file_that_is_a_folder_says_so(tmp_path: Path) -> None:
    (tmp_path / "slos").mkdir()
    path = write(tmp_path, "slos:\n  - file: slos\n")
    assert load_error(path) == (
        f"{path}: slos[0].file: 'slos' is a folder, not a file: name an OpenSLO or Sloth file in it"
    )
    path = write(tmp_path, "slos:\n  - file: slos/missing.yaml\n")
    assert load_error(path) == f"{path}: slos[0].file: no such file 'slos/missing.yaml'"


def test_a_ca_file_that_is_a_folder_says_so(tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    path = write(
        tmp_path, "certificates: [{host: example.com, service: checkout, ca_file: certs}]\n"
    )
    assert load_error(path) == (
        f"{path}: certificates[0].ca_file: 'certs' is a folder, not a file: name a PEM bundle in it"
    )


SERVICE_WITH_GIT = (
    "teams: [{name: payments}]\nservices: [{name: checkout, team: payments, git: {path: %s}}]\n"
)


def test_a_git_path_that_is_a_file_is_refused_when_the_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("not a clone\n", encoding="utf-8")
    path = write(tmp_path, SERVICE_WITH_GIT % "README.md")
    assert load_error(path) == (
        f"{path}: services[0].git.path: 'README.md' is a file, not a folder: name the root "
        "folder of a local clone"
    )


def test_a_git_path_that_does_not_exist_is_refused_when_the_file_is_read(tmp_path: Path) -> None:
    path = write(tmp_path, SERVICE_WITH_GIT % "clones/checkout")
    assert load_error(path) == f"{path}: services[0].git.path: no such folder 'clones/checkout'"


def test_a_git_path_that_is_a_folder_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "clones" / "checkout").mkdir(parents=True)
    service = load_config(str(write(tmp_path, SERVICE_WITH_GIT % "clones/checkout"))).service(
        "checkout"
    )
    assert service is not None and service.git is not None


@pytest.mark.parametrize(
    ("host", "problem"),
    [
        ("https://example.com/x", "not a URL: no scheme (https://) and no path"),
        ("https://example.com", "not a URL: no scheme (https://) and no path"),
        ("tcp://example.com", "not a URL"),
        ("example.com/x", "without a path"),
        ("example.com:8443", "the port goes in port"),
        ("example .com", "must be a host name"),
        ("-example.com", "must be a host name"),
        ("example..com", "must be a host name"),
    ],
)
@pytest.mark.parametrize("key", ["host", "server_name"])
def test_a_certificate_host_must_be_a_host(
    tmp_path: Path, key: str, host: str, problem: str
) -> None:
    entry = {"host": "example.com", "service": "checkout", key: host}
    fields = ", ".join(f"{name}: {value!r}" for name, value in entry.items())
    path = write(tmp_path, f"certificates:\n  - {{{fields}}}\n")
    message = load_error(path)
    assert message.startswith(f"{path}: certificates[0].{key}: must be a host name")
    assert problem in message


@pytest.mark.parametrize(
    "host",
    ["example.com", "example.com.", "localhost", "192.0.2.10", "2001:db8::1", "::1",
     "internal_host.corp", "bücher.example", "xn--bcher-kva.example"],
)  # fmt: skip
def test_good_certificate_hosts_are_accepted(tmp_path: Path, host: str) -> None:
    path = write(tmp_path, f"certificates:\n  - {{host: {host!r}, service: checkout}}\n")
    (endpoint,) = load_config(str(path)).certificates
    assert endpoint.host == host
