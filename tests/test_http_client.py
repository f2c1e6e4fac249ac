"""The shared HTTP client against a real loopback server replaying API-shaped responses."""

from __future__ import annotations

import logging
import socket

import pytest
from replay import ReplayServer, Reply

from collectors.http import (
    AuthError,
    BadPayloadError,
    HttpClient,
    NotFoundError,
    RateLimitError,
    ServerError,
    parse_link_header,
    rate_limit_wait,
    strip_credentials,
)

TOKEN = "ghp_s3cr3tT0kenValue1234567890"
NOW = 1_714_730_000.0
GITHUB_RATE_LIMITED = {
    "message": "API rate limit exceeded for user ID 5012. If you reach out to GitHub Support "
    "for help, please include the request ID.",
    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
}


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_client(server: ReplayServer, **kwargs: object) -> tuple[HttpClient, Sleeps]:
    sleeps = Sleeps()
    settings: dict[str, object] = {
        "headers": {"Authorization": f"Bearer {TOKEN}"},
        "secrets": [TOKEN],
        "token_env": "GITHUB_TOKEN",
        "timeout": 2.0,
        "max_retries": 3,
        "sleep": sleeps,
        "clock": lambda: NOW,
    }
    settings.update(kwargs)
    return HttpClient("github", server.base_url, **settings), sleeps  # type: ignore[arg-type]


def test_transient_5xx_is_retried_with_exponential_backoff(replay_server: ReplayServer) -> None:
    replay_server.add(
        "/repos/acme/svc/pulls",
        Reply(502, "<html>Bad gateway</html>"),
        Reply(503, {"message": "Service Unavailable"}),
        Reply(200, [{"id": 1}]),
    )
    client, sleeps = make_client(replay_server)
    response = client.get("/repos/acme/svc/pulls", {"state": "all"})
    assert response.json() == [{"id": 1}]
    assert sleeps == [1.0, 2.0]
    assert len(replay_server.requests) == 3
    assert replay_server.requests[0].header("Authorization") == f"Bearer {TOKEN}"
    assert replay_server.requests[0].header("User-Agent").startswith("poise/")


def test_a_500_that_persists_is_one_line_naming_source_url_and_what_to_do(
    replay_server: ReplayServer,
) -> None:
    replay_server.add("/repos/acme/svc/pulls", Reply(500, {"message": "Server Error"}))
    client, sleeps = make_client(replay_server, max_retries=2)
    with pytest.raises(ServerError) as caught:
        client.get("/repos/acme/svc/pulls", {"page": 3})
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("github: HTTP 500 from http://127.0.0.1:")
    assert "/repos/acme/svc/pulls?page=3" in message
    assert "persisted after 3 tries" in message and "run `poise sync` again" in message
    assert sleeps == [1.0, 2.0]


def test_without_retries_a_500_says_after_1_try(replay_server: ReplayServer) -> None:
    replay_server.add("/repos/acme/svc/pulls", Reply(500, {"message": "Server Error"}))
    client, sleeps = make_client(replay_server, max_retries=0)
    with pytest.raises(ServerError, match="persisted after 1 try: ") as caught:
        client.get("/repos/acme/svc/pulls")
    assert "tries" not in str(caught.value) and sleeps == []


def test_429_waits_for_retry_after(replay_server: ReplayServer) -> None:
    replay_server.add(
        "/projects/4411/pipelines",
        Reply(429, "Retry later", {"Retry-After": "7", "Content-Type": "text/plain"}),
        Reply(200, []),
    )
    client, sleeps = make_client(replay_server)
    assert client.get("/projects/4411/pipelines").json() == []
    assert sleeps == [7.0]


def test_403_with_no_remaining_quota_waits_until_the_reset_epoch(
    replay_server: ReplayServer,
) -> None:
    headers = {
        "X-RateLimit-Limit": "5000",
        "x-ratelimit-remaining": "0",  # GitHub sends mixed case; the client must not care
        "X-RateLimit-Reset": str(int(NOW) + 30),
        "X-RateLimit-Resource": "core",
    }
    replay_server.add(
        "/repos/acme/svc/deployments", Reply(403, GITHUB_RATE_LIMITED, headers), Reply(200, [])
    )
    client, sleeps = make_client(replay_server)
    client.get("/repos/acme/svc/deployments")
    assert sleeps == [31.0]


def test_pagerduty_ratelimit_reset_is_seconds_not_an_epoch(replay_server: ReplayServer) -> None:
    replay_server.add(
        "/incidents",
        Reply(
            429,
            {"error": {"message": "Rate Limit Exceeded", "code": 2020}},
            {"ratelimit-reset": "12"},
        ),
        Reply(200, {"incidents": [], "more": False}),
    )
    client, sleeps = make_client(replay_server)
    client.get("/incidents")
    assert sleeps == [12.0]


def test_a_rate_limit_longer_than_allowed_fails_at_once_and_says_to_come_back(
    replay_server: ReplayServer,
) -> None:
    headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 3000)}
    replay_server.add("/repos/acme/svc/pulls", Reply(403, GITHUB_RATE_LIMITED, headers))
    client, sleeps = make_client(replay_server, max_wait=600)
    with pytest.raises(RateLimitError, match=r"still rate limited .*run `poise sync` again"):
        client.get("/repos/acme/svc/pulls")
    assert sleeps == []


def test_403_that_is_not_a_rate_limit_is_a_permission_error_without_retry(
    replay_server: ReplayServer,
) -> None:
    body = {
        "message": "Resource not accessible by integration",
        "documentation_url": "https://docs.github.com/rest/actions/workflow-runs",
    }
    replay_server.add(
        "/repos/acme/svc/actions/runs", Reply(403, body, {"x-ratelimit-remaining": "4999"})
    )
    client, sleeps = make_client(replay_server)
    with pytest.raises(AuthError, match=r"access denied \(HTTP 403 .*check \$GITHUB_TOKEN"):
        client.get("/repos/acme/svc/actions/runs")
    assert sleeps == [] and len(replay_server.requests) == 1


def test_401_names_the_variable_to_check(replay_server: ReplayServer) -> None:
    body = {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}
    replay_server.add("/repos/acme/svc/pulls", Reply(401, body))
    client, _ = make_client(replay_server)
    with pytest.raises(AuthError) as caught:
        client.get("/repos/acme/svc/pulls")
    assert "token expired or invalid" in str(caught.value)
    assert str(caught.value).endswith("check $GITHUB_TOKEN")
    assert TOKEN not in str(caught.value)


@pytest.mark.parametrize(
    ("source", "what"),
    [
        ("github", "the repository (services[].github.repo) in poise.yaml"),
        ("gitlab", "the project (services[].gitlab.project) in poise.yaml"),
        ("jenkins", "the job (services[].jenkins.job) in poise.yaml"),
        ("pagerduty", "the service id (services[].pagerduty.service_id) in poise.yaml"),
        ("prometheus", "sources.prometheus.base_url (the root of the Prometheus HTTP API)"),
    ],
)
def test_404_names_what_to_check_for_its_source(
    replay_server: ReplayServer, source: str, what: str
) -> None:
    client, _ = make_client(replay_server)
    client.source = source
    with pytest.raises(NotFoundError) as caught:
        client.get("/repos/acme/gone/pulls")
    assert str(caught.value) == (
        f"{source}: not found (HTTP 404 at {replay_server.base_url}/repos/acme/gone/pulls): "
        f"check {what} and that the token can see it"
    )


def test_304_keeps_the_etag_that_was_sent_when_the_answer_omits_it(
    replay_server: ReplayServer,
) -> None:
    etag = 'W/"4f1a2b3c"'
    replay_server.add("/repos/acme/svc/deployments", Reply(200, [{"id": 1}], {"ETag": etag}))
    replay_server.add(
        "/repos/acme/svc/deployments",
        Reply(304, b"", {"X-RateLimit-Remaining": "4990"}),
        query={"per_page": "100"},
    )
    client, _ = make_client(replay_server)
    first = client.get("/repos/acme/svc/deployments")
    assert first.etag == etag and not first.not_modified
    second = client.get("/repos/acme/svc/deployments", {"per_page": 100}, etag=first.etag)
    assert second.not_modified and second.body == b"" and second.etag == etag
    assert replay_server.requests[1].header("If-None-Match") == etag


def test_garbage_body_is_one_line_naming_source_and_url_without_credentials(
    replay_server: ReplayServer,
) -> None:
    replay_server.add("/repos/acme/svc/pulls", Reply(200, b"<html><body>Gateway \x00 \xff oops"))
    client, _ = make_client(replay_server)
    response = client.get("/repos/acme/svc/pulls", {"access_token": "abc123", "page": 2})
    with pytest.raises(BadPayloadError) as caught:
        response.json()
    message = str(caught.value)
    assert message.startswith("github: malformed response from http://127.0.0.1:")
    assert "page=2" in message and "access_token" not in message and "abc123" not in message
    assert "\n" not in message


def test_timeouts_are_retried_then_reported(replay_server: ReplayServer) -> None:
    replay_server.add("/slow", Reply(200, [], delay=1.0))
    client, sleeps = make_client(replay_server, timeout=0.2, max_retries=1)
    with pytest.raises(
        ServerError, match=r"github: no answer within 0.2s from .*/slow after 2 tries"
    ):
        client.get("/slow")
    assert sleeps == [1.0]


def test_refused_connection_says_check_base_url() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = HttpClient(
        "gitlab", f"http://127.0.0.1:{port}/api/v4", max_retries=1, sleep=lambda s: None
    )
    with pytest.raises(
        ServerError,
        match=r"gitlab: cannot connect to http://127.0.0.1:\d+/api/v4/x .*check base_url",
    ):
        client.get("/x")


def test_the_token_never_reaches_the_log(
    replay_server: ReplayServer, caplog: pytest.LogCaptureFixture
) -> None:
    replay_server.add(
        "/repos/acme/svc/pulls",
        Reply(503, "down"),
        Reply(429, "", {"Retry-After": "1"}),
        Reply(401, {"message": "Bad credentials"}),
    )
    client, _ = make_client(replay_server)
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthError) as caught:
        client.get("/repos/acme/svc/pulls", {"state": "all"})
    assert "retry 1/3" in caplog.text and "rate limited (HTTP 429)" in caplog.text
    assert TOKEN not in caplog.text and TOKEN not in str(caught.value)
    assert replay_server.requests[-1].header("Authorization") == f"Bearer {TOKEN}"


def test_a_credential_is_never_sent_in_a_url(replay_server: ReplayServer) -> None:
    client, _ = make_client(replay_server)
    with pytest.raises(ValueError, match="refusing to send a credential in a URL"):
        client.get(f"/repos/acme/svc/pulls?token={TOKEN}")
    with pytest.raises(ValueError):
        client.get("/repos/acme/svc/pulls", {"private_token": TOKEN})
    assert replay_server.requests == []


def test_relative_paths_join_the_base_url_and_absolute_urls_are_kept() -> None:
    client = HttpClient("gitlab", "https://gitlab.example/api/v4")
    assert (
        client.absolute("/projects/1/pipelines")
        == "https://gitlab.example/api/v4/projects/1/pipelines"
    )
    nxt = "https://gitlab.example/api/v4/projects/1/pipelines?page=2&per_page=100"
    assert client.absolute(nxt) == nxt


def test_link_header_parsing_keeps_urls_verbatim() -> None:
    header = (
        '<https://api.github.com/repositories/77120001/pulls?state=all&page=2>; rel="next", '
        '<https://api.github.com/repositories/77120001/pulls?state=all&page=5>; rel="last"'
    )
    assert parse_link_header(header) == {
        "next": "https://api.github.com/repositories/77120001/pulls?state=all&page=2",
        "last": "https://api.github.com/repositories/77120001/pulls?state=all&page=5",
    }
    assert parse_link_header(None) == {}


def test_credentials_are_stripped_from_urls() -> None:
    url = (
        "https://bob:hunter2@jenkins.example/job/x/api/json?tree=builds&private_token=abc&api_key=k"
    )
    assert strip_credentials(url) == "https://jenkins.example/job/x/api/json?tree=builds"


def test_a_403_is_a_rate_limit_only_when_it_says_so() -> None:
    assert rate_limit_wait(403, {}, b'{"message": "Must have admin rights"}', NOW) is None
    assert (
        rate_limit_wait(403, {}, b'{"message": "You have exceeded a secondary rate limit"}', NOW)
        == 60.0
    )
    assert rate_limit_wait(429, {}, b"", NOW) == 0.0
    assert rate_limit_wait(200, {"Retry-After": "5"}, b"", NOW) is None
