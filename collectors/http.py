"""The one HTTP client every API collector uses: retries, rate limits, ETags, paging, redaction.

What it promises:
- A transient fault (5xx, 408, timeout, refused connection) is retried with exponential
  back-off, a bounded number of times (waiting at least the `Retry-After` a 503 in
  maintenance sends, up to `max_wait`); if it persists, one line says which source, which
  URL and what to do.
- A rate limit (429, or a 403 that says so: `Retry-After`, `x-ratelimit-remaining: 0` with
  `x-ratelimit-reset`, `ratelimit-reset`) is waited out, up to `max_wait` seconds.
- 401 is an expired or invalid token, a 403 that is no rate limit is missing permission,
  404 is a missing repository or project: no retry, one line naming the variable to check
  (and, for a 403 or an unexpected status, what the API's JSON error body says: a 403 may
  be SAML SSO or an IP allow list rather than the token's scopes).
- Credentials live only in request headers, filled from environment variables. URLs shown
  in logs, errors or `raw_payloads` have user info and credential-like query parameters
  removed, and any known secret value is masked in every message.
- `sleep` and `clock` are injectable, so tests never wait for real.
"""

from __future__ import annotations

import email.utils
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests
from requests.structures import CaseInsensitiveDict

from poise import __version__
from poise.errors import PoiseError
from poise.text import cut

log = logging.getLogger("poise.collectors.http")

USER_AGENT = f"poise/{__version__} (+https://github.com/poise-scorecard/poise)"
CREDENTIAL_PARAM = re.compile(
    r"(token|secret|password|passwd|api[_-]?key|apikey|signature|sig|auth|key|code)$", re.I
)
RETRIED_STATUSES = frozenset({408, 500, 502, 503, 504, 520, 521, 522, 524})
# What a 404 most likely means each source's config names wrongly.
NOT_FOUND_HINTS = {
    "github": "the repository (services[].github.repo) in poise.yaml",
    "gitlab": "the project (services[].gitlab.project) in poise.yaml",
    "jenkins": "the job (services[].jenkins.job) in poise.yaml",
    "pagerduty": "the service id (services[].pagerduty.service_id) in poise.yaml",
    "opsgenie": "the service id (services[].opsgenie.service_id) in poise.yaml",
    "prometheus": "sources.prometheus.base_url (the root of the Prometheus HTTP API)",
}
EPOCH_THRESHOLD = 1_000_000_000  # a reset value this large is a Unix time, not seconds to wait


class SourceError(PoiseError):
    """A source failed; the message is one line naming the source, where, and what to do."""

    # True when what failed is the source's own (its token, its host, its rate limit), not
    # one repository's or service's: every other scope would fail alike, after the same
    # retries and waits, so the runner tries no more of them.
    source_wide: bool = False


def source_wide(error: SourceError) -> SourceError:
    error.source_wide = True
    return error


class AuthError(SourceError):
    """401, or a 403 that is not a rate limit."""


class NotFoundError(SourceError):
    """404: the repository, project or job named in the config does not exist (or is hidden)."""


class RateLimitError(SourceError):
    """Still rate limited after waiting as long as allowed."""


class ServerError(SourceError):
    """A 5xx, timeout or connection failure that persisted through every retry."""


class BadPayloadError(SourceError):
    """The answer was not what the API sends (garbage JSON, wrong shape)."""


def strip_credentials(url: str) -> str:
    """`url` as it may be shown or stored: no user info, no credential-like query parameters."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = [
        (name, value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if not CREDENTIAL_PARAM.search(name)
    ]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe="/:,"), ""))


def parse_link_header(value: str | None) -> dict[str, str]:
    """`<url>; rel="next", <url>; rel="last"` -> {"next": url, "last": url}, URLs verbatim."""
    links: dict[str, str] = {}
    if not value:
        return links
    for match in re.finditer(r"<([^>]*)>\s*((?:;\s*[^;,]+)*)", value):
        url, attributes = match.group(1), match.group(2)
        rel = re.search(r'rel\s*=\s*"?([^";]+)"?', attributes)
        if rel:
            for name in rel.group(1).split():
                links[name.lower()] = url
    return links


@dataclass
class HttpResponse:
    """One answer, with the URL already stripped of credentials."""

    source: str
    status: int
    url: str
    headers: CaseInsensitiveDict[str]
    body: bytes
    etag: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON; garbage is one clear line naming the source and the URL."""
        try:
            return json.loads(self.body)
        except ValueError:
            sample = " ".join(self.text[:60].split())
            raise BadPayloadError(
                f"{self.source}: malformed response from {self.url} (HTTP {self.status}, "
                f"not JSON: {sample!r}): check that base_url points at the API"
            ) from None

    def links(self) -> dict[str, str]:
        return parse_link_header(self.headers.get("Link"))


def _retry_after_seconds(value: str, now: float) -> float | None:
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # `-0000` parses as naive; an HTTP date is always UTC
        when = when.replace(tzinfo=UTC)
    return max(when.timestamp() - now, 0.0)


def retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """The seconds a `Retry-After` header (seconds or an HTTP date) asks to wait, if any."""
    value = headers.get("Retry-After")
    return None if value is None else _retry_after_seconds(value, now)


def api_message(body: bytes) -> str | None:
    """What an API's JSON error body says, on one line: GitHub, GitLab and Opsgenie put it
    in `message`, PagerDuty in `error.message` (+ `error.errors`), Prometheus in `error`."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    said = parsed.get("message")
    error = parsed.get("error")
    if said is None and isinstance(error, dict):
        extra = error.get("errors")
        parts = [error.get("message"), *(extra if isinstance(extra, list) else [])]
        said = ": ".join(str(part) for part in parts if part)
    elif said is None and isinstance(error, str):
        said = error
    text = " ".join(str(said).split()) if said else ""
    return text or None


def _reset_seconds(value: str, now: float) -> float | None:
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if number >= EPOCH_THRESHOLD:  # GitHub x-ratelimit-reset, GitLab RateLimit-Reset: epoch
        return max(number - now, 0.0) + 1.0
    return max(number, 0.0)  # PagerDuty ratelimit-reset: seconds to wait


def rate_limit_wait(
    status: int, headers: Mapping[str, str], body: bytes, now: float
) -> float | None:
    """Seconds to wait when the answer is a rate limit, else None.

    A 403 is a rate limit only when it says so (a wait header, no remaining quota, or a
    rate-limit message); otherwise it is a permission problem and must not be retried.
    """
    if status not in (403, 429):
        return None
    wait = retry_after(headers, now)
    if wait is not None:
        return wait
    remaining = headers.get("x-ratelimit-remaining", headers.get("ratelimit-remaining"))
    for name in ("x-ratelimit-reset", "ratelimit-reset"):
        if name in headers and (status == 429 or remaining == "0"):
            wait = _reset_seconds(headers[name], now)
            if wait is not None:
                return wait
    if status == 429:
        return 0.0  # throttled without saying for how long: back off exponentially
    if remaining == "0" or b"rate limit" in body[:500].lower():
        return 60.0  # GitHub's advice for a secondary limit without a Retry-After
    return None


def tries(attempts: int) -> str:
    return "1 try" if attempts == 1 else f"{attempts} tries"


class HttpClient:
    """requests-based client shared by every API source; see the module docstring."""

    def __init__(
        self,
        source: str,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        secrets: Iterable[str] = (),
        token_env: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        max_wait: float = 900.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        session: requests.Session | None = None,
    ) -> None:
        self.source = source
        self.base_url = base_url.rstrip("/") + "/"
        self.token_env = token_env
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_wait = max_wait
        self.sleep = sleep
        self.clock = clock
        self._secrets = tuple(secret for secret in secrets if secret)
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.headers.update(headers or {})
        self.requests_sent = 0

    def close(self) -> None:
        self.session.close()

    # -- public API -----------------------------------------------------------------

    def absolute(self, url: str) -> str:
        """A path is joined to base_url; an absolute URL (a Link header's) is kept verbatim."""
        if re.match(r"^[a-z][a-z0-9+.-]*://", url, re.I):
            return url
        return urljoin(self.base_url, url.lstrip("/"))

    def shown(self, url: str) -> str:
        """A URL as it may appear in a log, an error or the warehouse."""
        return self.scrub(strip_credentials(url))

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def get(
        self, url: str, params: Mapping[str, Any] | None = None, *, etag: str | None = None
    ) -> HttpResponse:
        return self.request("GET", url, params=params, etag=etag)

    def post(
        self, url: str, json_body: Any = None, params: Mapping[str, Any] | None = None
    ) -> HttpResponse:
        return self.request("POST", url, params=params, json_body=json_body)

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        etag: str | None = None,
    ) -> HttpResponse:
        """Send one request, retrying what is transient; raise a SourceError otherwise."""
        target = self.absolute(url)
        self._refuse_secret_in_url(target, params)
        headers = {"If-None-Match": etag} if etag else {}
        attempt = 0
        while True:
            attempt += 1
            shown = self.shown(requests.Request(method, target, params=params).prepare().url or "")
            try:
                self.requests_sent += 1
                raw = self.session.request(
                    method,
                    target,
                    params=params,
                    json=json_body,
                    headers=headers,
                    timeout=self.timeout,
                )
            except requests.Timeout:
                problem = f"no answer within {self.timeout:g}s"
                if self._may_retry(attempt, problem, shown):
                    continue
                raise ServerError(
                    f"{self.source}: {problem} from {shown} after {tries(attempt)}: the service "
                    "may be down or slow; try again later or raise timeout_seconds"
                ) from None
            except requests.ConnectionError:
                problem = "cannot connect"
                if self._may_retry(attempt, problem, shown):
                    continue
                raise source_wide(
                    ServerError(
                        f"{self.source}: cannot connect to {shown} after {tries(attempt)}: "
                        "check base_url and the network"
                    )
                ) from None
            response = HttpResponse(
                source=self.source,
                status=raw.status_code,
                url=self.shown(raw.url or target),
                headers=CaseInsensitiveDict(raw.headers),
                body=raw.content,
                etag=raw.headers.get("ETag") or (etag if raw.status_code == 304 else None),
            )
            if response.status < 300 or response.status == 304:
                return response
            if self._should_retry(response, attempt):
                continue
            raise self._failure(response, attempt)

    # -- internals ------------------------------------------------------------------

    def _refuse_secret_in_url(self, url: str, params: Mapping[str, Any] | None) -> None:
        # A URL ends up in logs (urllib3's too) and in raw_payloads: credentials go in headers.
        text = url + " " + " ".join(str(value) for value in (params or {}).values())
        if any(secret in text for secret in self._secrets):
            raise ValueError(f"{self.source}: refusing to send a credential in a URL")

    def _delay(self, attempt: int) -> float:
        return min(self.backoff * 2 ** (attempt - 1), self.max_backoff)

    def _may_retry(self, attempt: int, problem: str, shown: str, at_least: float = 0.0) -> bool:
        if attempt > self.max_retries:
            return False
        delay = max(self._delay(attempt), at_least)
        log.warning(
            "%s: %s from %s; retry %d/%d in %.1fs",
            self.source,
            problem,
            shown,
            attempt,
            self.max_retries,
            delay,
        )
        self.sleep(delay)
        return True

    def _should_retry(self, response: HttpResponse, attempt: int) -> bool:
        wait = rate_limit_wait(response.status, response.headers, response.body, self.clock())
        if wait is not None:
            if attempt > self.max_retries or wait > self.max_wait:
                return False
            wait = max(wait, self._delay(attempt))
            log.warning(
                "%s: rate limited (HTTP %d) at %s; waiting %.0fs",
                self.source,
                response.status,
                response.url,
                wait,
            )
            self.sleep(wait)
            return True
        if response.status in RETRIED_STATUSES:
            # A 503 in maintenance (or a proxy's 502) may say when to come back: retrying
            # sooner would spend every retry before then.
            later = retry_after(response.headers, self.clock()) or 0.0
            if later > self.max_wait:
                return False
            return self._may_retry(attempt, f"HTTP {response.status}", response.url, later)
        return False

    def _failure(self, response: HttpResponse, attempt: int) -> SourceError:
        status, url, source = response.status, response.url, self.source
        check = f"check ${self.token_env}" if self.token_env else "check the source's token_env"
        if rate_limit_wait(status, response.headers, response.body, self.clock()) is not None:
            return source_wide(
                RateLimitError(
                    f"{source}: still rate limited (HTTP {status}) at {url} after "
                    f"{tries(attempt)}: collected pages are kept; run `poise sync` again once "
                    "the limit resets"
                )
            )
        if status == 401:
            return source_wide(
                AuthError(f"{source}: token expired or invalid (HTTP 401 at {url}): {check}")
            )
        if status == 403:
            said = self._said(response.body)  # SAML SSO, an IP allow list, a missing scope …
            where = f'{url}: "{said}"' if said else url
            return AuthError(
                f"{source}: access denied (HTTP 403 at {where}): {check} and the token's "
                "permissions for this resource"
            )
        if status == 404:
            what = NOT_FOUND_HINTS.get(source, "the name in poise.yaml")
            return NotFoundError(
                f"{source}: not found (HTTP 404 at {url}): check {what} and that the token can "
                "see it"
            )
        later = retry_after(response.headers, self.clock())
        if status in RETRIED_STATUSES and later is not None and later > self.max_wait:
            return ServerError(
                f"{source}: HTTP {status} from {url}: the service asks to come back in "
                f"{later:.0f}s, longer than Poise waits; collected pages are kept, run "
                "`poise sync` again then"
            )
        if status in RETRIED_STATUSES:
            return ServerError(
                f"{source}: HTTP {status} from {url} persisted after {tries(attempt)}: the service "
                "may be down; collected pages are kept, run `poise sync` again later"
            )
        detail = self._said(response.body) or self._said(response.body, raw=True)
        return SourceError(f"{source}: HTTP {status} from {url}: {detail or 'no detail'}")

    def _said(self, body: bytes, *, raw: bool = False, limit: int = 200) -> str:
        """The API's message (or, `raw`, the body's text) on one line: secrets masked first,
        then cut to `limit` characters."""
        text = " ".join(body.decode("utf-8", "replace").split()) if raw else api_message(body)
        text = self.scrub(text or "")
        return cut(text, limit)


# -- pagination -------------------------------------------------------------------------


@dataclass(frozen=True)
class PageRequest:
    """The request for one page: a path (joined to base_url) or an absolute URL, and params.

    A URL taken from a Link header carries its own query and is followed verbatim
    (`params` is None).
    """

    url: str
    params: Mapping[str, Any] | None = None
    method: str = "GET"
    json_body: Any = None


@dataclass
class PageGuard:
    """Stops paging that does not move on, which would otherwise loop for ever.

    A next page asked for twice in a row (a `Link` to itself, an `x-next-page` naming the
    page just read), or a page of records identical to the one before (a cache or proxy
    that ignores the query string answers every page with the first; a Jenkins range or
    an offset that is not applied) is one line, not a sync that never ends.
    """

    last: tuple[PageRequest, bytes] | None = None

    def check(self, request: PageRequest, response: HttpResponse, records: list[Any]) -> None:
        last, self.last = self.last, (request, response.body)
        if last is None or (request != last[0] and (not records or response.body != last[1])):
            return
        raise BadPayloadError(
            f"{response.source}: {response.url} answered with the page before it again (a "
            "cache or proxy ignoring the query string?): paging stopped, earlier pages are "
            "kept; check base_url"
        )


class Paginator(Protocol):
    """How to find the next page; None when there is none."""

    def next_request(
        self, response: HttpResponse, request: PageRequest, records: list[Any]
    ) -> PageRequest | None: ...


@dataclass(frozen=True)
class LinkPaginator:
    """GitHub and GitLab: follow the `Link: <…>; rel="next"` URL exactly as given."""

    def next_request(
        self, response: HttpResponse, request: PageRequest, records: list[Any]
    ) -> PageRequest | None:
        url = response.links().get("next")
        return PageRequest(url) if url else None


@dataclass(frozen=True)
class OffsetPaginator:
    """PagerDuty/Opsgenie style: `offset` advances by the records received while `more` holds.

    `cap` is the API's hard limit on offset + limit (PagerDuty: 10,000); reaching it stops
    paging (the caller should then slice its time window).
    """

    offset_param: str = "offset"
    limit_param: str = "limit"
    more_field: str | None = "more"
    cap: int | None = None

    def next_request(
        self, response: HttpResponse, request: PageRequest, records: list[Any]
    ) -> PageRequest | None:
        if not records:
            return None
        if self.more_field is not None:
            body = response.json()
            if not (isinstance(body, dict) and body.get(self.more_field)):
                return None
        params = dict(request.params or {})
        offset = int(params.get(self.offset_param, 0)) + len(records)
        limit = int(params.get(self.limit_param, len(records)))
        if self.cap is not None and offset + limit > self.cap:
            return None
        params[self.offset_param] = offset
        return PageRequest(request.url, params, request.method, request.json_body)
