"""Checks made when poise.yaml is read, so that a wrong value is one line naming the file and
the key, never an internal error in the middle of a sync: source URLs, business hours, and
the message for a token variable that is set but empty."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from collectors.github import GitHubSource
from poise.config import load_config, secret_from_env
from poise.errors import ConfigError
from poise.timeutil import is_after_hours

URL_SOURCES = ["github", "gitlab", "jenkins", "pagerduty", "opsgenie", "prometheus"]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "poise.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def load_error(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(str(path))
    message = str(caught.value)
    assert "\n" not in message  # one line
    return message


@pytest.mark.parametrize("source", URL_SOURCES)
@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("not a url", "'not a url' is not an http:// or https:// URL with a host"),
        ("ftp://127.0.0.1:9", "'ftp://127.0.0.1:9' is not an http:// or https:// URL with a host"),
        ("https://", "'https://' is not an http:// or https:// URL with a host"),
        ("ghe.example.com/api/v3", "is not an http:// or https:// URL with a host"),
        ("http://:8080", "'http://:8080': not a valid host name"),
        ("http://ghe example.com", "'http://ghe example.com': a URL has no spaces"),
        ("http://prometheus:99999", "the port must be a number from 1 to 65535"),
        ("http://prometheus:0", "the port must be a number from 1 to 65535"),
        ("https://gitlab.example.com/?private_token=abc", "a base URL takes no query"),
    ],
)
def test_a_bad_source_url_is_one_line_when_the_file_is_read(
    tmp_path: Path, source: str, url: str, problem: str
) -> None:
    path = write(tmp_path, f'sources:\n  {source}: {{base_url: "{url}"}}\n')
    message = load_error(path)
    assert message.startswith(f"{path}: sources.{source}.base_url: ")
    assert problem in message


@pytest.mark.parametrize("source", URL_SOURCES)
@pytest.mark.parametrize(
    "url",
    [
        "http://bob:s3cretpw@ghe.example.com/api/v3",
        "https://s3cretpw@gitlab.example.com",
        "ftp://bob:s3cretpw@host",  # credentials are named before the wrong scheme
    ],
)
def test_credentials_in_a_source_url_are_refused_without_echoing_them(
    tmp_path: Path, source: str, url: str
) -> None:
    path = write(tmp_path, f'sources:\n  {source}: {{base_url: "{url}"}}\n')
    message = load_error(path)
    assert message == (
        f"{path}: sources.{source}.base_url: credentials do not belong in the URL: give the "
        "host alone and name the environment variables holding them with token_env (and "
        "user_env)"
    )
    assert "s3cretpw" not in message and "bob" not in message


def test_a_query_is_refused_without_echoing_it(tmp_path: Path) -> None:
    path = write(
        tmp_path, 'sources:\n  gitlab: {base_url: "https://g.example/?private_token=t0k"}\n'
    )
    assert "t0k" not in load_error(path)


@pytest.mark.parametrize(
    "url",
    [
        "https://ghe.example.com/api/v3",
        "https://gitlab.example.com/",
        "http://prometheus:9090",
        "http://127.0.0.1:8080/jenkins",
        "http://[::1]:9090",
        "https://mimir.example.com/prometheus",
    ],
)
def test_good_source_urls_are_accepted(tmp_path: Path, url: str) -> None:
    path = write(tmp_path, f'sources:\n  prometheus: {{base_url: "{url}"}}\n')
    config = load_config(str(path))
    assert config.sources.prometheus is not None and config.sources.prometheus.base_url == url


def test_the_starter_files_urls_are_accepted(tmp_path: Path) -> None:
    # the commented examples of `poise init`, uncommented
    path = write(
        tmp_path,
        "sources:\n"
        "  gitlab: {base_url: https://gitlab.com, token_env: GITLAB_TOKEN}\n"
        "  jenkins: {base_url: https://jenkins.example, user_env: JENKINS_USER, "
        "token_env: JENKINS_TOKEN}\n"
        "  prometheus: {base_url: http://prometheus:9090}\n",
    )
    load_config(str(path))


@pytest.mark.parametrize(("start", "end"), [(18, 9), (9, 9), (23, 1)])
def test_business_hours_that_end_before_they_start_are_refused(
    tmp_path: Path, start: int, end: int
) -> None:
    # is_after_hours reads [start, end) of one day: 18..9 would make every page after hours
    assert all(is_after_hours_at(hour, start, end) for hour in range(24))
    path = write(
        tmp_path, f"people: {{business_hours_start: {start}, business_hours_end: {end}}}\n"
    )
    message = load_error(path)
    assert message.startswith(
        f"{path}: people.business_hours_end: must be after business_hours_start ({start})"
    )


def test_business_hours_only_end_is_checked_against_the_default_start(tmp_path: Path) -> None:
    path = write(tmp_path, "people: {business_hours_end: 8}\n")
    assert "must be after business_hours_start (9)" in load_error(path)


@pytest.mark.parametrize(("start", "end"), [(0, 24), (9, 18), (8, 9), (22, 24)])
def test_sensible_business_hours_are_accepted(tmp_path: Path, start: int, end: int) -> None:
    path = write(
        tmp_path, f"people: {{business_hours_start: {start}, business_hours_end: {end}}}\n"
    )
    people = load_config(str(path)).people
    assert (people.business_hours_start, people.business_hours_end) == (start, end)


def is_after_hours_at(hour: int, start: int, end: int) -> bool:
    return is_after_hours(datetime(2026, 3, 4, hour, tzinfo=UTC), "UTC", start, end)  # Wednesday


def test_a_token_variable_set_but_empty_is_named_as_such(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POISE_TEST_EMPTY_TOKEN", "")
    with pytest.raises(ConfigError) as caught:
        secret_from_env("POISE_TEST_EMPTY_TOKEN", what="sources.github.token_env")
    assert str(caught.value) == (
        "sources.github.token_env: environment variable POISE_TEST_EMPTY_TOKEN is set but empty"
    )
    monkeypatch.setenv("POISE_TEST_EMPTY_TOKEN", "  \n")
    with pytest.raises(ConfigError, match=r"POISE_TEST_EMPTY_TOKEN is set but only whitespace$"):
        secret_from_env("POISE_TEST_EMPTY_TOKEN", what="sources.github.token_env")
    monkeypatch.delenv("POISE_TEST_EMPTY_TOKEN")
    with pytest.raises(ConfigError, match=r"POISE_TEST_EMPTY_TOKEN is not set$"):
        secret_from_env("POISE_TEST_EMPTY_TOKEN", what="sources.github.token_env")


def test_a_source_whose_token_variable_is_empty_says_so_before_any_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POISE_TEST_GITHUB_TOKEN", "")
    path = write(
        tmp_path,
        "teams: [{name: payments}]\n"
        "services: [{name: checkout, team: payments, github: {repo: acme/checkout}}]\n"
        "sources: {github: {token_env: POISE_TEST_GITHUB_TOKEN}}\n",
    )
    with pytest.raises(ConfigError) as caught:
        GitHubSource(load_config(str(path))).client()
    assert str(caught.value) == (
        "sources.github.token_env: environment variable POISE_TEST_GITHUB_TOKEN is set but empty"
    )
