"""`poise.yaml`: teams, services and where to find them, sources, SLOs and settings.

Every key is validated, and an error names the file and the key path in one line
(`poise.yaml: services[2].team: unknown team 'paymnets'`). Credentials are never
values in this file: a source names the *environment variable* that holds them.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Hashable
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from poise.errors import ConfigError
from poise.timeutil import TimestampError, parse_period_bound

CONFIG_ENV = "POISE_CONFIG"
DEFAULT_CONFIG = "poise.yaml"
SECRET_KEYS = re.compile(r"(^|_)(token|password|secret|api_key|apikey|key)$")
NAME = r"^[A-Za-z0-9][A-Za-z0-9._\-]*$"
# Sloth's window placeholder as Go's text/template reads it: `{{.window}}`, `{{ .window }}`,
# `{{- .window -}}` all render the same.
WINDOW_PLACEHOLDER = re.compile(r"\{\{-?\s*\.window\s*-?\}\}")
# What a shell (and `export`, env files, Kubernetes env) accepts as a variable's name.
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TeamConfig(Strict):
    name: str = Field(pattern=NAME, description="Team name, as services refer to it.")
    size: int | None = Field(None, ge=1, description="People on the team, for toil share.")
    timezone: str = Field("UTC", description="IANA time zone for business hours.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


def glob_or_globs(value: Any, names: str, key: str, example: tuple[str, str]) -> Any:
    """A config value that is one glob or a non-empty list of non-empty globs."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(glob, str) for glob in value):
        if not value:
            raise ValueError(f"an empty list names no {names}; leave {key} out instead")
        if not all(value):
            raise ValueError(f"an empty glob matches no {names}; leave it out")
        return value
    first, second = example
    raise ValueError(
        f"must be a glob of {names} names ({first!r}) or a list of them ([{first!r}, {second!r}])"
    )


def as_globs(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else value


class GitLocation(Strict):
    path: str = Field(description="Path of a local clone, relative to the config file.")
    branch: str = Field("main", description="The branch whose commits are changes.")
    deploy_tags: str | list[str] | None = Field(
        None,
        description="Glob of tags that mark production deployments, e.g. 'v*', or a list of "
        "globs (a tag matching any of them).",
    )
    paths: list[str] = Field(
        default_factory=list, description="Monorepo: only commits touching these paths."
    )

    @field_validator("deploy_tags", mode="before")
    @classmethod
    def _glob_or_globs(cls, value: Any) -> Any:
        return glob_or_globs(value, "tag", "deploy_tags", ("v*", "r*"))

    @property
    def deploy_tag_globs(self) -> list[str]:
        """The globs, whether one or a list was given."""
        return as_globs(self.deploy_tags)


class GitHubLocation(Strict):
    repo: str = Field(pattern=r"^[^/\s]+/[^/\s]+$", description="owner/name")
    deploy_workflow: str | None = Field(
        None, description="Workflow file or name whose runs are deployments."
    )
    deploy_job: str | None = Field(None, description="Job name within it that deploys.")
    deploy_branches: str | list[str] | None = Field(
        None,
        description="With deploy_workflow: only its runs on these branches or tags (globs) "
        "are deployments.",
    )
    environment_map: dict[str, str] = Field(
        default_factory=dict,
        description="GitHub environment name (or deploy workflow/job name) -> Poise environment.",
    )
    use_deployments_api: bool | None = Field(
        None,
        description="Collect GitHub Deployments (default: yes, unless deploy_workflow or "
        "use_releases already gives the deployments).",
    )
    use_releases: bool = Field(False, description="Treat published releases as deployments.")
    incident_label: str | None = Field(None, description="Issues with this label are incidents.")
    review_times: bool = Field(
        True, description="Read merged pull requests' reviews (first_review_at): one request each."
    )

    @field_validator("deploy_branches", mode="before")
    @classmethod
    def _branch_globs(cls, value: Any) -> Any:
        return glob_or_globs(value, "branch", "deploy_branches", ("main", "v*"))

    @model_validator(mode="after")
    def _workflow_for_its_details(self) -> GitHubLocation:
        for key in ("deploy_job", "deploy_branches"):
            if getattr(self, key) is not None and not self.deploy_workflow:
                raise ValueError(f"{key} needs deploy_workflow (the workflow whose runs deploy)")
        return self

    @property
    def deploy_branch_globs(self) -> list[str]:
        return as_globs(self.deploy_branches)

    @property
    def deployments_api(self) -> bool:
        if self.use_deployments_api is not None:
            return self.use_deployments_api
        return not self.deploy_workflow and not self.use_releases

    @property
    def gives_deployments(self) -> bool:
        """Whether this block collects deployments at all (one for pull requests, issues
        and reviews only leaves them to the service's deploy tags)."""
        return bool(self.deploy_workflow or self.use_releases or self.deployments_api)


class GitLabLocation(Strict):
    project: str = Field(description="Numeric id or full path (group/project).")
    environment_map: dict[str, str] = Field(default_factory=dict)
    review_times: bool = Field(
        True,
        description="Read merged merge requests' notes (first_review_at): one request each.",
    )


class JenkinsLocation(Strict):
    job: str = Field(description="Job path, folders separated by '/'.")
    environment: str = Field("production", description="Environment its builds deploy to.")
    repository: str | None = Field(
        None,
        description="Part of the service repository's remote URL, to tell its checkout from "
        "others in a build (shared libraries); default: the github repo or gitlab project.",
    )


class PagerDutyLocation(Strict):
    service_id: str = Field(description="The PagerDuty service id (e.g. PWJAGSD).")


class OpsgenieLocation(Strict):
    service_id: str = Field(description="The Opsgenie service whose incidents are this service's.")
    alert_query: str | None = Field(
        None,
        description="Opsgenie alert search query selecting this service's alerts (its pages), "
        "e.g. 'teams:payments AND tag:checkout'; without it no alerts are collected.",
    )


class ServiceConfig(Strict):
    name: str = Field(pattern=NAME)
    team: str
    production_environment: str = "production"
    git: GitLocation | None = None
    github: GitHubLocation | None = None
    gitlab: GitLabLocation | None = None
    jenkins: JenkinsLocation | None = None
    pagerduty: PagerDutyLocation | None = None
    opsgenie: OpsgenieLocation | None = None


class SourceConfig(Strict):
    base_url: str | None = Field(None, description="API base URL (Enterprise, self-hosted).")
    token_env: str | None = Field(None, description="Environment variable holding the token.")
    user_env: str | None = Field(None, description="Environment variable holding the user.")
    timeout_seconds: float = Field(30.0, gt=0)
    max_retries: int = Field(5, ge=0)
    since: str | None = Field(None, description="Earliest date to collect, e.g. 2025-01-01.")

    @field_validator("base_url")
    @classmethod
    def _an_http_url(cls, value: str | None) -> str | None:
        return None if value is None else check_http_url(value)

    @field_validator("token_env", "user_env")
    @classmethod
    def _a_variable_name(cls, value: str | None, info: ValidationInfo) -> str | None:
        # parse_config checks these first with a source-specific example; this holds for a
        # SourceConfig made in code too. An empty value means "none", as it always has.
        if not value:
            return value
        holds = "token" if info.field_name == "token_env" else "user name"
        example = "GITHUB_TOKEN" if holds == "token" else "JENKINS_USER"
        return check_env_name(value, example=example, holds=holds)

    @field_validator("since", mode="before")
    @classmethod
    def _date_as_text(cls, value: Any) -> Any:
        # poise.yaml keeps an unquoted date as its text (_UniqueKeyLoader); a document loaded
        # elsewhere (yaml.safe_load) holds a date or datetime: judge it as the same text, so
        # a datetime without a zone is refused as the quoted form is.
        return value.isoformat() if isinstance(value, date) else value  # datetime too

    @field_validator("since")
    @classmethod
    def _a_date(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_period_bound(value)
            except TimestampError as exc:
                raise ValueError(f"{exc}; give a date like 2025-01-01") from None
        return value

    def since_bound(self) -> datetime | None:
        """`since` as a UTC instant (midnight UTC for a date); None when not set."""
        return parse_period_bound(self.since) if self.since else None


class PrometheusSourceConfig(SourceConfig):
    tenant: str | None = Field(
        None,
        description="Tenant id sent as X-Scope-OrgID (Grafana Mimir, Cortex); not a secret.",
    )


class SourcesConfig(Strict):
    github: SourceConfig | None = None
    gitlab: SourceConfig | None = None
    jenkins: SourceConfig | None = None
    pagerduty: SourceConfig | None = None
    opsgenie: SourceConfig | None = None
    prometheus: PrometheusSourceConfig | None = None
    tls: SourceConfig | None = None


class SloConfig(Strict):
    name: str = Field(pattern=NAME)
    service: str
    target: float = Field(gt=0, lt=1, description="Objective, e.g. 0.999.")
    window_days: int = Field(28, ge=1, le=400)
    window: Literal["rolling", "calendar"] = "rolling"
    calendar_unit: Literal["month", "quarter"] | None = None
    description: str | None = None
    display_name: str | None = Field(None, description="A readable title for pages and reports.")
    good: str | None = Field(None, description="PromQL counting good events.")
    bad: str | None = Field(None, description="PromQL counting bad events (instead of good).")
    total: str | None = Field(None, description="PromQL counting all events.")
    counter: bool = Field(
        False,
        description="The queries select raw counters (Poise adds up their increases); "
        "false: they give per-second rates (or use {{.window}}). See docs/slos.md.",
    )
    datasource: str | None = Field(
        None, description="Where SLI samples come from; 'prometheus' when queries are given."
    )

    @field_validator("target", "window_days", mode="before")
    @classmethod
    def _a_number(cls, value: Any, info: ValidationInfo) -> Any:
        # YAML's `yes`/`true` is a bool, which pydantic would take as 1: `window_days: yes`
        # would be a one-day window.
        if isinstance(value, bool):
            raise ValueError(f"must be a number, not {str(value).lower()}")
        if info.field_name == "target" and isinstance(value, int | float) and 10 <= value < 100:
            raise ValueError(
                f"{value:g} looks like a percentage: target is a fraction, "
                f"0 < target < 1 (give {value / 100:.10g})"
            )
        return value


class SloFile(Strict):
    file: str = Field(description="An OpenSLO v1 or Sloth prometheus/v1 YAML file.")


class AttributionConfig(Strict):
    window_hours: float = Field(24.0, gt=0, description="Inference window before an incident.")


class PeopleConfig(Strict):
    hours_per_week: float = Field(40.0, gt=0, description="Capacity of one person per week.")
    toil_cap: float = Field(0.5, gt=0, le=1, description="Share of capacity toil may take.")
    business_hours_start: int = Field(9, ge=0, le=23)
    business_hours_end: int = Field(18, ge=1, le=24)

    @field_validator("business_hours_end")
    @classmethod
    def _after_start(cls, value: int, info: ValidationInfo) -> int:
        # Business hours are [start, end) of one weekday (docs/collectors.md, "After hours");
        # they do not wrap past midnight, so an end at or before the start would make every
        # page an after-hours page. (start is validated first: it is declared first.)
        start = info.data.get("business_hours_start")
        if start is not None and value <= start:
            raise ValueError(
                f"must be after business_hours_start ({start}): business hours run from "
                "start to end within one day (24 is midnight)"
            )
        return value


class BudgetPolicy(Strict):
    """What `poise gate` answers for a service (docs/guardrails.md): the SRE Workbook's
    example policy (freeze while the budget is spent) plus burn-rate and staleness rules."""

    freeze_when_exhausted: bool = Field(
        True, description="Freeze feature releases while an SLO's budget is spent (<= 0)."
    )
    freeze_on_page_alert: bool = Field(
        True, description="Freeze while a page-level burn-rate alert fires."
    )
    warn_on_ticket_alert: bool = Field(
        True, description="Warn while a ticket-level burn-rate alert fires."
    )
    warn_when_at_risk: bool = Field(
        True,
        description="Warn when the last 24 h burn rate spends the budget before the "
        "window ends (status at_risk).",
    )
    at_risk_remaining: float = Field(
        0.25, ge=0, lt=1, description="Warn when less than this share of a budget is left."
    )
    max_staleness_hours: float = Field(
        6.0, gt=0, description="Warn when a service's newest SLI sample is older than this."
    )
    without_slos: Literal["ship", "warn"] = Field(
        "ship", description="The answer for a service that has no SLO."
    )


class BudgetPolicyConfig(Strict):
    default: BudgetPolicy = BudgetPolicy()
    services: dict[str, BudgetPolicy] = Field(
        default_factory=dict,
        description="Per service: only the keys given override `default`.",
    )

    def for_service(self, name: str) -> BudgetPolicy:
        override = self.services.get(name)
        if override is None:
            return self.default
        given = {key: getattr(override, key) for key in override.model_fields_set}
        return self.default.model_copy(update=given)


class CertificateEndpoint(Strict):
    host: str = Field(min_length=1, description="Host name or IP address to connect to.")
    port: int = Field(443, ge=1, le=65535)
    service: str = Field(description="The service whose availability the certificate guards.")
    server_name: str | None = Field(
        None, description="Server name sent in the TLS handshake (SNI); default: host."
    )
    ca_file: str | None = Field(
        None,
        description="PEM bundle of the CAs to verify against (private CAs); default: the system's.",
    )

    @field_validator("host", "server_name")
    @classmethod
    def _a_host(cls, value: str | None) -> str | None:
        return None if value is None else check_host(value)

    @property
    def key(self) -> str:
        """The endpoint's id: `host:port`, plus `/server_name` when SNI differs from host."""
        base = f"{self.host}:{self.port}"
        return f"{base}/{self.server_name}" if self.server_name not in (None, self.host) else base


class AnomalyConfig(Strict):
    threshold: float = Field(
        3.5, gt=0, description="k: flag a week further than k robust deviations from the median."
    )
    history_weeks: int = Field(12, ge=4, le=104, description="Weeks of history compared with.")
    min_history_weeks: int = Field(
        8, ge=3, description="Weeks of that history that must have a value before any flag."
    )


class AuthProviderConfig(Strict):
    server_metadata_url: str = Field(
        description="The provider's OpenID Connect discovery document "
        "(https://…/.well-known/openid-configuration)."
    )
    client_id: str = Field(description="The OAuth client id registered for Poise.")
    client_secret_env: str = Field(description="Environment variable holding the client secret.")
    cookie_secret_env: str = Field(
        description="Environment variable holding a long random string that signs the "
        "sign-in cookie."
    )
    redirect_uri: str = Field(
        description="Where the provider sends the browser back: the dashboard's address "
        "followed by /oauth2callback."
    )
    scope: str = Field("openid profile email", description="OAuth scopes asked for.")

    @field_validator("client_secret_env", "cookie_secret_env")
    @classmethod
    def _a_variable_name(cls, value: str, info: ValidationInfo) -> str:
        # Required, so empty is no answer either: the dashboard would start with no secret.
        example = (
            "POISE_OIDC_CLIENT_SECRET"
            if info.field_name == "client_secret_env"
            else "POISE_COOKIE_SECRET"
        )
        return check_env_name(value, example=example, holds="secret")

    @field_validator("redirect_uri")
    @classmethod
    def _callback(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+(/\S*)?/oauth2callback$", value):
            raise ValueError(
                "must be the dashboard's address followed by /oauth2callback, e.g. "
                "https://poise.example.com/oauth2callback"
            )
        return value


class AuthRolesConfig(Strict):
    leadership: list[str] = Field(
        default_factory=list,
        description="Who sees every team: e-mail addresses, or group:NAME for members of a "
        "group named in the ID token's groups claim.",
    )
    teams: dict[str, list[str]] = Field(
        default_factory=dict,
        description="team -> who sees that team's details (e-mail addresses or group:NAME).",
    )


class AuthConfig(Strict):
    provider: AuthProviderConfig
    roles: AuthRolesConfig = AuthRolesConfig()
    groups_claim: str = Field("groups", description="The ID token claim that lists groups.")


class PoiseConfig(Strict):
    database: str | None = Field(None, description="SQLAlchemy URL of the warehouse.")
    benchmark_year: Literal[2021, 2023, 2024] = 2023
    attribution: AttributionConfig = AttributionConfig()
    people: PeopleConfig = PeopleConfig()
    budget_policy: BudgetPolicyConfig = BudgetPolicyConfig()
    anomalies: AnomalyConfig = AnomalyConfig()
    teams: list[TeamConfig] = Field(default_factory=list)
    services: list[ServiceConfig] = Field(default_factory=list)
    sources: SourcesConfig = SourcesConfig()
    slos: list[SloConfig | SloFile] = Field(default_factory=list)
    certificates: list[CertificateEndpoint] = Field(default_factory=list)
    auth: AuthConfig | None = Field(None, description="Sign-in to the dashboard (OpenID Connect).")

    # Where the file was read from; relative paths in it are relative to its folder.
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)
    origin: str = Field("<defaults>", exclude=True)

    def team(self, name: str) -> TeamConfig | None:
        return next((team for team in self.teams if team.name == name), None)

    def service(self, name: str) -> ServiceConfig | None:
        return next((service for service in self.services if service.name == name), None)

    def resolve_path(self, path: str) -> Path:
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else (self.base_dir / candidate).resolve()


def _path(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in ("SloConfig", "SloFile"):
            continue
        else:
            text += f".{part}" if text else str(part)
    return text


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or current is None:
            continue
        if part in ("SloConfig", "SloFile"):
            current = SloConfig if part == "SloConfig" else SloFile
            continue
        field = current.model_fields.get(part) if hasattr(current, "model_fields") else None
        if field is None:
            return []
        annotation = field.annotation
        current = _model_in(annotation)
    return list(current.model_fields) if current and hasattr(current, "model_fields") else []


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _describe(error: dict[str, Any]) -> str:
    kind = error["type"]
    loc = error["loc"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        allowed = [k for k in _allowed_keys(PoiseConfig, loc) if k not in ("base_dir", "origin")]
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown key{hint}"
    if kind == "missing":
        return "required key is missing"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _refuse_secrets(node: Any, path: str, origin: str) -> None:
    """A secret's value anywhere in the file is refused, never echoed: under a key named
    like a secret, or pasted where the *name* of its environment variable goes (`*_env`)."""
    if isinstance(node, dict):
        for key, value in node.items():
            child = f"{path}.{key}" if path else str(key)
            if _names_a_variable(path, key) and isinstance(value, str) and value:
                example, holds = _env_example(path, key)
                try:
                    check_env_name(value, example=example, holds=holds)
                except ValueError as exc:
                    raise ConfigError(f"{origin}: {child}: {exc}") from None
            if (
                isinstance(key, str)
                and SECRET_KEYS.search(key.lower())
                and not key.endswith("_env")
                and value not in (None, "")
            ):
                raise ConfigError(
                    f"{origin}: {child}: secrets do not belong in the config file; "
                    + _where_secrets_go(path, key)
                )
            _refuse_secrets(value, child, origin)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _refuse_secrets(value, f"{path}[{index}]", origin)


_PUT = "put it in an environment variable and"


def _where_secrets_go(path: str, key: str) -> str:
    """Where the secret found at `path`.`key` goes instead, naming a key that exists: a
    source's credential (token, API key, password alike) is read from the variable
    `token_env` names, and only Jenkins also takes a user (`user_env`); `*_env` after the
    secret's own name would send people to a key that is refused as unknown."""
    source = re.fullmatch(r"(?:sources|services\[\d+\])\.([^.]+)", path)
    if source and source[1] == "tls":
        return "the tls source takes no credentials (it reads what servers present)"
    if source and source[1] in SourcesConfig.model_fields:
        prefix = "" if path.startswith("sources.") else f"sources.{source[1]}."
        if source[1] == "jenkins":
            return (
                f"{_PUT} name that variable with {prefix}token_env (the user's name goes in "
                f"{prefix}user_env)"
            )
        return f"{_PUT} name that variable with {prefix}token_env"
    loc = tuple(part for part in re.sub(r"\[\d+\]", "", path).split(".") if part)
    named = [name for name in _allowed_keys(PoiseConfig, (*loc, key)) if name.endswith("_env")]
    if f"{key}_env" in named:
        return f"{_PUT} name that variable with {key}_env"
    if named:
        return f"{_PUT} name that variable with " + " or ".join(named)
    return (
        f"{_PUT} name that variable with the *_env key made for it (sources.<kind>.token_env, "
        'auth.provider.client_secret_env; docs/configuration.md, "Secrets")'
    )


def _cross_check(config: PoiseConfig) -> None:
    origin = config.origin
    if config.database and _has_password(config.database):
        raise ConfigError(
            f"{origin}: database: a password does not belong in the config file; give the URL "
            "in POISE_DATABASE_URL, or the password in PGPASSWORD"
        )
    team_names = [team.name for team in config.teams]
    _no_duplicates(team_names, "teams", origin)
    service_names = [service.name for service in config.services]
    _no_duplicates(service_names, "services", origin)
    for index, service in enumerate(config.services):
        if service.team not in team_names:
            close = difflib.get_close_matches(service.team, team_names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"{origin}: services[{index}].team: unknown team {service.team!r}{hint}"
            )
    slo_names: list[str] = []
    for index, slo in enumerate(config.slos):
        if isinstance(slo, SloFile):
            _a_file(config, slo.file, f"slos[{index}].file", "an OpenSLO or Sloth file")
            continue
        slo_names.append(slo.name)
        if config.services and slo.service not in service_names:
            raise ConfigError(f"{origin}: slos[{index}].service: unknown service {slo.service!r}")
        _queries_complete(slo, f"{origin}: slos[{index}]")
        if slo.counter and uses_window(slo.good, slo.bad, slo.total):
            raise ConfigError(
                f"{origin}: slos[{index}].counter: counter queries select raw counters and "
                "cannot use {{.window}}"
            )
        if slo.window == "calendar" and slo.calendar_unit is None:
            raise ConfigError(
                f"{origin}: slos[{index}].calendar_unit: required for a calendar window"
            )
        if slo.window == "rolling" and slo.calendar_unit is not None:
            # ignored, it would leave a rolling window where a month or quarter was meant
            raise ConfigError(
                f"{origin}: slos[{index}].calendar_unit: only with window: calendar (this "
                f"SLO's window is rolling, {slo.window_days} days)"
            )
    _no_duplicates(slo_names, "slos", origin)
    if config.auth is not None and config.teams:
        known = [team.name for team in config.teams]
        for team in config.auth.roles.teams:
            if team not in known:
                close = difflib.get_close_matches(team, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(f"{origin}: auth.roles.teams.{team}: unknown team {team!r}{hint}")
    _one_service_per_incident_source_id(config)
    _guardrails_name_services(config, service_names)
    for index, service in enumerate(config.services):
        # A clone that is not there yet is refused here too, not left to fail at sync: the
        # file names it as the service's repository now, and every command reads the file.
        if service.git is None:
            continue
        where = config.resolve_path(service.git.path)
        if not where.exists():
            raise ConfigError(
                f"{origin}: services[{index}].git.path: no such folder {service.git.path!r}"
            )
        if not where.is_dir():
            kind = "a file, not a folder" if where.is_file() else "not a folder"
            raise ConfigError(
                f"{origin}: services[{index}].git.path: {service.git.path!r} is {kind}: name "
                "the root folder of a local clone"
            )


def uses_window(*queries: str | None) -> bool:
    """Whether any of the queries holds Sloth's `{{.window}}` (however spaced)."""
    return any(WINDOW_PLACEHOLDER.search(query or "") for query in queries)


def _queries_complete(slo: SloConfig, where: str) -> None:
    """An SLO's queries come as a pair (good or bad, with total) or not at all (its samples
    are imported). Half a pair, or an empty query, would be accepted and never measured:
    the Prometheus collector only reads an SLO with both."""
    for part in ("good", "bad", "total"):
        query = getattr(slo, part)
        if query is not None and not query.strip():
            raise ConfigError(
                f"{where}.{part}: empty: give a PromQL query, or leave the key out (an SLO "
                "without queries has its samples imported)"
            )
    if slo.good and slo.bad:
        raise ConfigError(f"{where}: give either good or bad, not both")
    if (slo.good or slo.bad) and not slo.total:
        raise ConfigError(f"{where}.total: required with good or bad")
    if slo.total and not (slo.good or slo.bad):
        raise ConfigError(f"{where}.good: required with total (or bad, counting bad events)")
    if not slo.total and (slo.datasource or "").strip().lower() == "prometheus":
        raise ConfigError(
            f"{where}.total: required with datasource prometheus: give good (or bad) and "
            "total queries, or leave datasource out to import the SLO's samples"
        )


def _a_file(config: PoiseConfig, name: str, key: str, what: str) -> None:
    """Refuse a path that is missing or is a folder, saying which (both are "no such file"
    to a plain is_file() check, which sent people looking for a typo in a folder's name)."""
    where = config.resolve_path(name)
    if where.is_dir():
        raise ConfigError(
            f"{config.origin}: {key}: {name!r} is a folder, not a file: name {what} in it"
        )
    if not where.is_file():
        raise ConfigError(f"{config.origin}: {key}: no such file {name!r}")


def _one_service_per_incident_source_id(config: PoiseConfig) -> None:
    # An incident at PagerDuty or Opsgenie belongs to one service, so one id maps to one service.
    for block in ("pagerduty", "opsgenie"):
        claimed: dict[str, str] = {}
        for index, service in enumerate(config.services):
            location = getattr(service, block)
            if location is None:
                continue
            if location.service_id in claimed:
                raise ConfigError(
                    f"{config.origin}: services[{index}].{block}.service_id: "
                    f"{location.service_id!r} is already service {claimed[location.service_id]!r}'s"
                )
            claimed[location.service_id] = service.name


def _guardrails_name_services(config: PoiseConfig, service_names: list[str]) -> None:
    origin = config.origin
    if config.anomalies.min_history_weeks > config.anomalies.history_weeks:
        raise ConfigError(
            f"{origin}: anomalies.min_history_weeks: cannot exceed history_weeks "
            f"({config.anomalies.history_weeks})"
        )
    if service_names:  # services only imported (none declared) cannot be checked here
        for name in config.budget_policy.services:
            if name not in service_names:
                raise ConfigError(f"{origin}: budget_policy.services.{name}: unknown service")
    seen: set[str] = set()
    for index, endpoint in enumerate(config.certificates):
        if service_names and endpoint.service not in service_names:
            raise ConfigError(
                f"{origin}: certificates[{index}].service: unknown service {endpoint.service!r}"
            )
        if endpoint.key in seen:
            raise ConfigError(f"{origin}: certificates[{index}]: {endpoint.key} is listed twice")
        seen.add(endpoint.key)
        if endpoint.ca_file:
            _a_file(config, endpoint.ca_file, f"certificates[{index}].ca_file", "a PEM bundle")


def looks_like_token(value: str) -> bool:
    """Whether a value is shaped like a credential rather than a variable's name.

    A run of 20 or more letters and digits between underscores that mixes letters with
    digits, or lower with upper case, is the body of a token, not a word of a name:
    GitHub's `ghp_<36 characters>` and `github_pat_…`, Grafana's `glsa_…`, a Jenkins API
    token starting with a letter are all valid names by ENV_NAME alone.
    """
    for part in value.split("_"):
        if len(part) < 20 or not part.isalnum() or not part.isascii():
            continue
        letters_and_digits = any(c.isdigit() for c in part) and any(c.isalpha() for c in part)
        mixed_case = any(c.islower() for c in part) and any(c.isupper() for c in part)
        if letters_and_digits or mixed_case:
            return True
    return False


def check_env_name(value: str, *, example: str, holds: str) -> str:
    """`value` if it names an environment variable, else ValueError that never echoes it.

    A key ending in `_env` names the variable holding a secret; the commonest mistake is to
    paste the secret itself there, and every later message ("variable … is not set")
    would print it. So the value is checked when the file is read and never repeated: a
    name with a space is refused with the same words, as there is no telling a mistyped
    name from a pasted secret.
    """
    if not ENV_NAME.fullmatch(value) or looks_like_token(value):
        raise ValueError(
            f"must name an environment variable (like {example}), not hold a {holds}: "
            f"put the {holds} in the environment"
        )
    return value


def _names_a_variable(path: str, key: Any) -> bool:
    """Whether `key` at `path` names an environment variable: `sources.<kind>.*_env`
    (token_env, user_env) and `auth.provider.*_env` (client_secret_env, cookie_secret_env).
    Only there: elsewhere a key may end in `_env` by chance (an environment_map entry)."""
    if not isinstance(key, str) or not key.endswith("_env"):
        return False
    return path == "auth.provider" or re.fullmatch(r"sources\.[^.]+", path) is not None


def _env_example(path: str, key: str) -> tuple[str, str]:
    """A variable name to suggest for `key` at `path`, and what such a variable holds."""
    stem = key.removesuffix("_env")
    holds = {"token": "token", "user": "user name"}.get(stem, "secret")
    parts = path.split(".")
    if len(parts) >= 2 and parts[0] == "sources":  # sources.gitlab.token_env -> GITLAB_TOKEN
        return f"{parts[1].upper()}_{stem.upper()}", holds
    known = {"client_secret": "POISE_OIDC_CLIENT_SECRET", "cookie_secret": "POISE_COOKIE_SECRET"}
    return known.get(stem, f"POISE_{stem.upper()}"), holds


def check_host(value: str) -> str:
    """`value` if it is a host name or an IP address, else ValueError saying what is wrong.

    A TLS endpoint is connected to by host and port; a URL there (`https://example.com/x`)
    would only fail at sync, as a name that cannot be resolved. Not echoed: a URL may
    carry credentials, and the key path already says which entry is meant.
    """
    if "://" in value or value.lower().startswith(("http:", "https:")):
        raise ValueError(
            "must be a host name or address (like example.com or 192.0.2.10), not a URL: "
            "no scheme (https://) and no path; the port goes in port"
        )
    if "/" in value:
        raise ValueError("must be a host name or address (like example.com), without a path")
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    if re.fullmatch(r"[^:\s]+:\d+", value):
        raise ValueError(
            "must be a host name or address alone: the port goes in port (host: example.com, "
            "port: 8443)"
        )
    label = r"[^\W_](?:[\w-]*[^\W_])?"  # letters (any script), digits, '-' and '_' inside
    if len(value) > 253 or not re.fullmatch(rf"{label}(?:\.{label})*\.?", value):
        raise ValueError(
            "must be a host name (letters, digits, '-' and '.', like example.com) or an IP address"
        )
    return value


def check_http_url(value: str) -> str:
    """`value` if it is an http(s) URL with a host, else ValueError saying what is wrong.

    Checked when the file is read, so a typo is one line naming the key rather than an
    internal error of the HTTP library in the middle of a sync. The value is echoed only
    when it cannot hold a credential (no `@`, no query).
    """
    parts = urlsplit(value)
    if "@" in parts.netloc:
        # user:password@host: the file must not hold secrets (and the password is not echoed)
        raise ValueError(
            "credentials do not belong in the URL: give the host alone and name the "
            "environment variables holding them with token_env (and user_env)"
        )
    shown = repr(value) if "@" not in value else "the URL"
    if parts.query or parts.fragment:
        # e.g. ?private_token=…; and the client appends API paths to the URL, which a
        # query or fragment would swallow
        raise ValueError(
            "a base URL takes no query (?…) or fragment (#…): give scheme, host and path"
        )
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{shown} is not an http:// or https:// URL with a host")
    if re.search(r"\s", value):
        raise ValueError(f"{shown}: a URL has no spaces")
    host = parts.hostname or ""
    if not re.fullmatch(r"[\w.\-:%~]+", host):  # ':' for IPv6 literals ([::1] -> ::1)
        raise ValueError(f"{shown}: not a valid host name")
    try:
        port = parts.port  # urllib checks the port only when it is read
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError(f"{shown}: the port must be a number from 1 to 65535")
    return value


def _has_password(url: str) -> bool:
    try:
        return bool(make_url(url).password)
    except ArgumentError:
        return False  # not a URL at all: opening the warehouse says so


def _no_duplicates(names: list[str], section: str, origin: str) -> None:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            raise ConfigError(f"{origin}: {section}[{index}].name: {name!r} is listed twice")
        seen.add(name)


def parse_config(
    data: Any, *, origin: str = "poise.yaml", base_dir: Path | None = None
) -> PoiseConfig:
    """Validate a loaded YAML document; raises ConfigError naming the first bad key."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{origin}: the file must hold a mapping of keys, not {type(data).__name__}"
        )
    _refuse_secrets(data, "", origin)
    # A section whose entries are all commented out (`sources:` alone) is an empty section.
    data = {key: value for key, value in data.items() if value is not None}
    try:
        config = PoiseConfig.model_validate(
            {**data, "base_dir": base_dir or Path.cwd(), "origin": origin}
        )
    except ValidationError as exc:
        first = _first_error(exc.errors(), data)
        raise ConfigError(f"{origin}: {_path(first['loc'])}: {_describe(first)}") from None
    _cross_check(config)
    return _anchor_database(config)


def _anchor_database(config: PoiseConfig) -> PoiseConfig:
    """A relative SQLite path in `database` is relative to the config file's folder, as every
    path in the file is (the working folder would make `--config` from elsewhere open, or
    create, another warehouse)."""
    url = config.database or ""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return config
    path = url[len(prefix) :]
    if not path or path.startswith(("/", "~", ":memory:")) or path.startswith("file:"):
        return config
    return config.model_copy(update={"database": prefix + str(config.resolve_path(path))})


def _first_error(errors: list[Any], data: dict[str, Any]) -> Any:
    """The error to report: an unknown key first (a misspelt key also makes one "missing"),
    and an `slos` item judged as the form it looks like (a file, or an inline SLO)."""
    relevant = []
    for error in errors:
        loc = error["loc"]
        if len(loc) > 2 and loc[0] == "slos" and loc[2] in ("SloConfig", "SloFile"):
            item = data["slos"][loc[1]]
            looks_like = "SloFile" if isinstance(item, dict) and "file" in item else "SloConfig"
            if loc[2] != looks_like:
                continue
        relevant.append(error)
    relevant = relevant or errors
    return next((e for e in relevant if e["type"] == "extra_forbidden"), relevant[0])


MERGE_TAG = "tag:yaml.org,2002:merge"


class _UniqueKeyLoader(yaml.SafeLoader):
    """Safe YAML where a key given twice in one mapping is an error, not a silent override."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG:
                continue  # `<<: *base`: its keys are defaults the mapping's own keys override
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # SafeLoader itself reports an unhashable key
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_timestamp_as_text(self, node: yaml.ScalarNode) -> str:
        """An unquoted date (`since: 2025-01-01`) as the text written: the quoted form's
        checks then apply (a time needs an offset), and an impossible date (2026-13-01)
        is refused naming its key, where PyYAML's own conversion would raise mid-load."""
        return str(self.construct_scalar(node))


_UniqueKeyLoader.add_constructor(
    "tag:yaml.org,2002:timestamp", _UniqueKeyLoader.construct_timestamp_as_text
)


def config_path(explicit: str | None) -> tuple[Path, bool]:
    """The config file to read and whether the user asked for it by name."""
    if explicit:
        return Path(explicit), True
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV]), True
    return Path(DEFAULT_CONFIG), False


def load_config(explicit: str | None = None) -> PoiseConfig:
    """Read the config file; without one (and none asked for), the defaults apply."""
    path, asked = config_path(explicit)
    if not path.exists():
        if asked:
            raise ConfigError(f"{path}: no such config file (run `poise init` to write one)")
        return PoiseConfig()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    text = _utf8_text(raw, path)
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise yaml_error(exc, str(path)) from None
    return parse_config(data, origin=str(path), base_dir=path.resolve().parent)


def yaml_error(exc: yaml.YAMLError, origin: str) -> ConfigError:
    """`FILE:LINE: not valid YAML: what`, one line, for a YAML file that does not load."""
    mark = getattr(exc, "problem_mark", None)
    where = f":{mark.line + 1}" if mark else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return ConfigError(f"{origin}{where}: not valid YAML: {problem}")


def load_yaml_documents(text: str, origin: str) -> list[Any]:
    """Every YAML document of `text` (an SLO file), a key given twice in one mapping
    refused as in poise.yaml: plain YAML keeps the last one silently, so a second
    `service:` pasted into an SLO would move it to another service without a word."""
    try:
        return list(yaml.load_all(text, Loader=_UniqueKeyLoader))
    except yaml.YAMLError as exc:
        raise yaml_error(exc, origin) from None


def _utf8_text(raw: bytes, path: Path) -> str:
    """The file's text; a file in another encoding (Latin-1 from an old editor) is one line
    saying where the first byte that is not UTF-8 sits, not a decoding traceback."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{path}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
            f"{exc.start}): save the file as UTF-8"
        ) from None


def secret_from_env(variable: str | None, *, what: str) -> str | None:
    """The value of an environment variable named in the config (never logged)."""
    if not variable:
        return None
    try:
        check_env_name(variable, example="GITHUB_TOKEN", holds="secret")
    except ValueError:
        # The file's check refuses these; a name reaching here some other way is still
        # never printed, as it may be the secret itself.
        raise ConfigError(
            f"{what}: must name an environment variable, not hold a secret: put the secret "
            "in the environment"
        ) from None
    value = os.environ.get(variable)
    if value is None:
        raise ConfigError(f"{what}: environment variable {variable} is not set")
    if not value.strip():
        # Set but empty (`FOO=` in an env file, an empty Secret): "not set" would send the
        # reader looking for a missing export that is in fact there.
        blank = "empty" if not value else "only whitespace"
        raise ConfigError(f"{what}: environment variable {variable} is set but {blank}")
    return value
