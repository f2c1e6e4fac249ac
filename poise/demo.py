"""The demo organisation: six teams, fifteen services, two years of delivery and reliability data.

Each team is a `TeamProfile` (data, not code): how often it deploys, how long its changes
wait, how often a release goes bad and how it recovers, how its SLOs behave, its toil and
its page load. `generate` turns the profiles into canonical rows; `build_demo` writes them
as CSV/JSONL files and loads them through `poise.importer`, the way real data arrives.

Deterministic: every random draw comes from a numpy Generator seeded with
`(seed, team, service, stream)`, so the same seed and `until` give the same rows, and a
change to one stream (say, SLIs) leaves the others as they were. The world is simulated a
little past `until` and then cut there, which leaves what a real warehouse has at that
moment: commits not yet deployed, incidents not yet resolved.
"""

from __future__ import annotations

import csv
import json
import math
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, delete, func, select

from poise.catalog import apply_config
from poise.config import PeopleConfig, PoiseConfig, TeamConfig
from poise.importer import import_file
from poise.timeutil import is_after_hours
from poise.warehouse import schema
from poise.warehouse.upsert import upsert_rows

DEFAULT_SEED = 7
DEFAULT_DAYS = 730
SOURCE = "demo"
HOUR = 3600
DAY = 24 * HOUR
# Simulated past `until` so that work in flight at `until` is cut off, as in a real warehouse.
HORIZON_DAYS = 45
SEVERITIES = ("SEV1", "SEV2", "SEV3", "SEV4")
# Share of requests failing at the start of an incident, by severity; the impact fades
# over INCIDENT_FADE_HOURS as mitigations land, until the incident is resolved.
SEVERITY_ERROR_RATE = {"SEV1": 0.25, "SEV2": 0.06, "SEV3": 0.012, "SEV4": 0.003}
INCIDENT_FADE_HOURS = 3.0
# How much faster than usual the background errors run during a burn episode.
EPISODE_BURN = 4.0
# Causes of incidents that no deployment caused (never attributed by inference).
OTHER_CAUSES = (
    "latent bug",
    "cascading failure",
    "capacity",
    "external",
    "unpredictable state transition",
)
TOIL_CATEGORIES = (
    "manual deploys",
    "ticket ops",
    "certificate rotation",
    "access requests",
    "flaky tests",
    "data fixes",
)


@dataclass(frozen=True)
class SloSpec:
    kind: str  # availability | latency
    target: float


AVAILABILITY_999 = SloSpec("availability", 0.999)
AVAILABILITY_995 = SloSpec("availability", 0.995)
LATENCY_99 = SloSpec("latency", 0.99)


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    requests_per_hour: int
    slos: tuple[SloSpec, ...]


@dataclass(frozen=True)
class TeamProfile:
    name: str
    story: str
    size: int
    timezone: str
    services: tuple[ServiceSpec, ...]
    # delivery, per service
    deploys_per_week: float
    changes_per_deploy: float  # mean
    lead_time_hours: float  # median of commit -> production
    lead_time_spread: float  # lognormal sigma
    # a release going bad, and the way back
    failure_rate: float  # share of production deployments that go bad
    rollback_share: float  # of bad deployments: undone by a rollback deployment
    fix_forward_share: float  # ... fixed by a remediation deployment (the rest: incident only)
    incident_share: float  # of rolled-back / fixed ones: an incident was opened too
    explicit_share: float  # of those incidents: the deployment is named (else left to inference)
    detect_minutes: float  # medians
    ack_minutes: float
    fix_hours: float  # detection -> rollback, fix or mitigation
    # reliability
    other_incidents_per_month: float  # per service, not caused by a deployment
    severity_weights: tuple[float, float, float, float]
    budget_use: float  # background bad events, as a share of the error budget
    incident_impact: float  # scales SEVERITY_ERROR_RATE
    burn_episodes_per_year: float = 0.0  # weeks-long degradations that exhaust the budget
    open_incidents: int = 0  # incidents still open at `until`
    # people
    toil_share: float = 0.2  # of size x hours_per_week
    toil_mix: tuple[float, ...] = (1, 1, 1, 1, 1, 1)  # weights over TOIL_CATEGORIES
    noise_pages_per_week: float = 2.0


def _services(*specs: tuple[str, int, tuple[SloSpec, ...]]) -> tuple[ServiceSpec, ...]:
    return tuple(ServiceSpec(name, rate, slos) for name, rate, slos in specs)


PROFILES: tuple[TeamProfile, ...] = (
    TeamProfile(
        name="storefront",
        story="elite: small changes shipped several times a day, bad releases caught and "
        "rolled back within the hour",
        size=8,
        timezone="Europe/Berlin",
        services=_services(
            ("storefront-web", 90_000, (AVAILABILITY_999, LATENCY_99)),
            ("search", 60_000, (AVAILABILITY_999, LATENCY_99)),
            ("catalog", 40_000, (AVAILABILITY_999,)),
        ),
        deploys_per_week=14,
        changes_per_deploy=1.6,
        lead_time_hours=3,
        lead_time_spread=0.9,
        failure_rate=0.03,
        rollback_share=0.6,
        fix_forward_share=0.35,
        incident_share=0.5,
        explicit_share=0.6,
        detect_minutes=4,
        ack_minutes=3,
        fix_hours=0.25,
        other_incidents_per_month=0.3,
        severity_weights=(0.03, 0.17, 0.4, 0.4),
        budget_use=0.25,
        incident_impact=1.0,
        toil_share=0.1,
        toil_mix=(0.2, 1, 0.5, 1, 2, 0.3),
        noise_pages_per_week=1.5,
    ),
    TeamProfile(
        name="billing",
        story="struggling: big weekly batches that wait weeks, a third of releases go bad, "
        "recovery takes days, SLOs often breached, toil at the cap",
        size=6,
        timezone="America/New_York",
        services=_services(
            ("billing-api", 20_000, (AVAILABILITY_995, LATENCY_99)),
            ("invoicing", 8_000, (AVAILABILITY_995,)),
            ("ledger", 12_000, (AVAILABILITY_995, LATENCY_99)),
        ),
        deploys_per_week=0.6,
        changes_per_deploy=12,
        lead_time_hours=21 * 24,
        lead_time_spread=0.6,
        failure_rate=0.4,
        rollback_share=0.2,
        fix_forward_share=0.4,
        incident_share=0.9,
        explicit_share=0.5,
        detect_minutes=90,
        ack_minutes=25,
        fix_hours=30,
        other_incidents_per_month=2.0,
        severity_weights=(0.12, 0.33, 0.35, 0.2),
        budget_use=0.9,
        incident_impact=1.0,
        open_incidents=2,
        toil_share=0.5,
        toil_mix=(3, 2, 1, 1, 1, 2),
        noise_pages_per_week=12,
    ),
    TeamProfile(
        name="growth",
        story="fast but burning: many deploys a day and quick fixes, but its SLOs run out of "
        "budget for weeks at a time, and it keeps shipping during the release freezes",
        size=7,
        timezone="America/Los_Angeles",
        services=_services(
            ("recommendations", 50_000, (AVAILABILITY_999, LATENCY_99)),
            ("notifications", 30_000, (AVAILABILITY_999,)),
            ("experiments", 25_000, (AVAILABILITY_999, LATENCY_99)),
        ),
        deploys_per_week=18,
        changes_per_deploy=1.5,
        lead_time_hours=2,
        lead_time_spread=1.0,
        failure_rate=0.13,
        rollback_share=0.3,
        fix_forward_share=0.6,
        incident_share=0.8,
        explicit_share=0.6,
        detect_minutes=8,
        ack_minutes=5,
        fix_hours=1.5,
        other_incidents_per_month=1.0,
        severity_weights=(0.05, 0.3, 0.4, 0.25),
        budget_use=0.45,
        incident_impact=0.45,
        burn_episodes_per_year=2.0,
        open_incidents=1,
        toil_share=0.3,
        toil_mix=(0.3, 1, 0.5, 1, 3, 1),
        noise_pages_per_week=9,
    ),
    TeamProfile(
        name="identity",
        story="slow but stable: a release every other week after long review, rarely a bad "
        "one, healthy SLOs",
        size=5,
        timezone="Europe/London",
        services=_services(
            ("auth", 70_000, (AVAILABILITY_999, LATENCY_99)),
            ("accounts", 15_000, (AVAILABILITY_999,)),
        ),
        deploys_per_week=0.35,
        changes_per_deploy=10,
        lead_time_hours=8 * 24,
        lead_time_spread=0.5,
        failure_rate=0.03,
        rollback_share=0.7,
        fix_forward_share=0.2,
        incident_share=0.7,
        explicit_share=0.6,
        detect_minutes=10,
        ack_minutes=6,
        fix_hours=2,
        other_incidents_per_month=0.3,
        severity_weights=(0.05, 0.15, 0.4, 0.4),
        budget_use=0.2,
        incident_impact=0.8,
        toil_share=0.2,
        toil_mix=(1, 1, 2, 2, 0.3, 0.3),
        noise_pages_per_week=1,
    ),
    TeamProfile(
        name="mobile",
        story="middling: a few deploys a week, lead time a day or two, recovery within a day",
        size=6,
        timezone="Asia/Kolkata",
        services=_services(
            ("mobile-bff", 45_000, (AVAILABILITY_999, LATENCY_99)),
            ("push-gateway", 20_000, (AVAILABILITY_999,)),
        ),
        deploys_per_week=4,
        changes_per_deploy=3,
        lead_time_hours=30,
        lead_time_spread=0.8,
        failure_rate=0.09,
        rollback_share=0.4,
        fix_forward_share=0.4,
        incident_share=0.75,
        explicit_share=0.6,
        detect_minutes=20,
        ack_minutes=10,
        fix_hours=6,
        other_incidents_per_month=0.6,
        severity_weights=(0.05, 0.2, 0.45, 0.3),
        budget_use=0.45,
        incident_impact=0.7,
        toil_share=0.25,
        toil_mix=(1, 1, 1, 1, 2, 0.5),
        noise_pages_per_week=4,
    ),
    TeamProfile(
        name="data-platform",
        story="middling: twice-weekly deploys, lead time a few days, slower to notice and "
        "recover, noisy alerts",
        size=5,
        timezone="Australia/Sydney",
        services=_services(
            ("events-ingest", 80_000, (AVAILABILITY_999,)),
            ("reporting", 5_000, (AVAILABILITY_995, LATENCY_99)),
        ),
        deploys_per_week=2.5,
        changes_per_deploy=4,
        lead_time_hours=60,
        lead_time_spread=0.7,
        failure_rate=0.12,
        rollback_share=0.3,
        fix_forward_share=0.4,
        incident_share=0.75,
        explicit_share=0.5,
        detect_minutes=45,
        ack_minutes=15,
        fix_hours=10,
        other_incidents_per_month=0.8,
        severity_weights=(0.05, 0.2, 0.45, 0.3),
        budget_use=0.55,
        incident_impact=0.6,
        toil_share=0.35,
        toil_mix=(1, 2, 1, 1, 1, 3),
        noise_pages_per_week=5,
    ),
)

PEOPLE = (
    "ada", "ben", "chen", "dana", "eli", "fatima", "gus", "hana", "ivan", "jo", "kofi",
    "lena", "mo", "nia", "omar", "pia", "quinn", "ravi", "sara", "tom", "uma", "vik",
    "wen", "xavi", "yara", "zoe", "arjun", "bea", "carl", "dev", "emma", "finn", "gita",
    "hugo", "iris", "jack", "kim", "luis", "maya", "noor",
)  # fmt: skip
CHANGE_VERBS = ("Fix", "Add", "Refactor", "Remove", "Speed up", "Log", "Test", "Document")
CHANGE_THINGS = (
    "retry on timeout", "pagination", "feature flag", "cache warm-up", "input validation",
    "metrics labels", "config loading", "error messages", "batch size", "db index",
    "health check", "rate limiter", "serialisation", "dependency versions",
)  # fmt: skip
INCIDENT_TITLES = {
    "regression": ("5xx spike after release", "error rate up after deploy", "bad config shipped"),
    "latent bug": ("crash on rare input", "memory leak under load", "stale cache entries"),
    "cascading failure": ("retry storm from callers", "queue backlog spreading downstream"),
    "capacity": ("connection pool exhausted", "disk full on primary", "CPU saturation at peak"),
    "external": ("upstream provider outage", "DNS resolution failures", "CDN errors"),
    "unpredictable state transition": ("stuck leader election", "split brain after failover"),
}
NOISE_PAGES = (
    "High CPU on {service}",
    "Disk usage above 85% on {service}",
    "Health check flapping: {service}",
    "p99 latency above threshold: {service}",
    "Queue depth growing: {service}",
    "Pod restarts: {service}",
)


# --- generation ------------------------------------------------------------------------------
@dataclass
class SliSeries:
    slo: str
    good: np.ndarray
    total: np.ndarray


@dataclass
class DemoData:
    """Canonical rows with times as epoch seconds; `sli` holds one hourly series per SLO."""

    start: int  # inclusive
    until: int  # exclusive
    services: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    incidents: list[dict[str, Any]] = field(default_factory=list)
    slos: list[dict[str, Any]] = field(default_factory=list)
    sli: list[SliSeries] = field(default_factory=list)
    toil: list[dict[str, Any]] = field(default_factory=list)
    pages: list[dict[str, Any]] = field(default_factory=list)


# Independent random streams per (team, service): changing one leaves the others as they were.
_DELIVERY, _EPISODES, _SLI, _PAGES, _TOIL = range(5)


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, *stream])


def _lognormal(rng: np.random.Generator, median: float, sigma: float) -> float:
    return median * math.exp(sigma * rng.standard_normal())


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def _normalised(weights: tuple[float, ...]) -> np.ndarray:
    array = np.asarray(weights, dtype=float)
    return array / array.sum()


@dataclass
class _ServiceWorld:
    """One service's delivery: deployments with their changes, bad releases and incidents."""

    profile: TeamProfile
    people: tuple[str, ...]
    service: ServiceSpec
    rng: np.random.Generator
    start: int
    end: int  # simulation end, past `until`
    until: int
    freezes: list[tuple[int, int]]
    deployments: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    incidents: list[dict[str, Any]] = field(default_factory=list)
    sha_of: dict[str, str] = field(default_factory=dict)
    live_sha: str = ""
    previous_sha: str = ""

    def run(self) -> None:
        blocked_until = 0
        for planned in self._planned_deploy_times():
            if planned < blocked_until:
                continue  # the team holds releases while a bad one is dealt with
            moment = planned
            changes = self._new_changes(
                moment, 1 + int(self.rng.poisson(self.profile.changes_per_deploy - 1))
            )
            if self.rng.random() < 0.03:  # the pipeline failed; retried a little later
                self._deploy(moment, "failure", changes)
                moment += int(self.rng.uniform(15, 60) * 60)
            deployment = self._deploy(moment, "success", changes)
            if self.rng.random() < self.profile.failure_rate:
                blocked_until = self._go_bad(deployment)
        self._other_incidents()
        self._open_incidents()

    def _planned_deploy_times(self) -> list[int]:
        """Working hours in the team's zone; a trickle on weekends, half as many in freezes."""
        per_week = self.profile.deploys_per_week
        days = pd.date_range(_day(self.start), _day(self.end), freq="D")
        day_seconds = days.values.astype("datetime64[s]").astype(np.int64)
        rate = np.where(days.day_of_week < 5, per_week / 5, per_week / 100)
        for low, high in self.freezes:
            rate = np.where((day_seconds >= low) & (day_seconds < high), rate * 0.5, rate)
        counts = self.rng.poisson(rate)
        local = np.repeat(days.values.astype("datetime64[s]"), counts)
        offsets = (self.rng.uniform(9.5, 17.5, size=len(local)) * HOUR).astype("timedelta64[s]")
        moments = pd.DatetimeIndex(local + offsets).tz_localize(self.profile.timezone)
        seconds = moments.tz_convert(UTC).as_unit("s").asi8
        return sorted(int(s) for s in seconds if self.start <= s < self.end)

    def _new_changes(self, deployed_at: int, count: int, *, window: int | None = None) -> list[str]:
        """`count` changes for a deployment; a fix's changes fall in `window` seconds before it."""
        profile, rng = self.profile, self.rng
        ids = []
        for _ in range(count):
            number = len(self.changes) + 1
            if window is None:
                lead = _lognormal(rng, profile.lead_time_hours * HOUR, profile.lead_time_spread)
            else:
                lead = rng.uniform(0.2, 0.8) * window
            committed = deployed_at - max(int(lead), 300)
            change_id = f"{self.service.name}-c{number:06d}"
            sha = rng.bytes(20).hex()
            self.sha_of[change_id] = sha
            self.changes.append(
                {
                    "id": change_id,
                    "service": self.service.name,
                    "sha": sha,
                    "committed_at": committed,
                    "merged_at": committed + int((deployed_at - committed) * rng.uniform(0.3, 0.9)),
                    "pr_number": 100 + number,
                    "title": f"{_pick(rng, CHANGE_VERBS)} {_pick(rng, CHANGE_THINGS)}",
                    "author": f"{_pick(rng, self.people)}@example.com",
                }
            )
            ids.append(change_id)
        return ids

    def _deploy(
        self, moment: int, status: str, change_ids: list[str], **links: str
    ) -> dict[str, Any]:
        sha = self.sha_of[change_ids[-1]] if change_ids else self.live_sha
        row = {
            "id": f"{self.service.name}-d{len(self.deployments) + 1:05d}",
            "service": self.service.name,
            "environment": "production",
            "deployed_at": moment,
            "status": status,
            "sha": sha,
            "change_ids": change_ids,
            "rollback_of": links.get("rollback_of"),
            "remediation_of": links.get("remediation_of"),
        }
        self.deployments.append(row)
        if status == "success":
            self.previous_sha, self.live_sha = self.live_sha, sha
        return row

    def _go_bad(self, bad: dict[str, Any]) -> int:
        """A release went bad: rolled back, fixed forward, or an incident alone. Returns when
        the team resumes normal releases."""
        profile, rng = self.profile, self.rng
        onset = bad["deployed_at"] + int(_lognormal(rng, 12 * 60, 0.6))
        detected = onset + int(_lognormal(rng, profile.detect_minutes * 60, 0.7))
        mitigated = detected + int(_lognormal(rng, profile.fix_hours * HOUR, 0.8))
        choice = rng.random()
        if choice < profile.rollback_share:
            self.live_sha = self.previous_sha or self.live_sha
            self._deploy(mitigated, "success", [], rollback_of=bad["id"])
        elif choice < profile.rollback_share + profile.fix_forward_share:
            fix = self._new_changes(
                mitigated, 1 + int(rng.integers(2)), window=mitigated - detected
            )
            self._deploy(mitigated, "success", fix, remediation_of=bad["id"])
        else:
            self._incident(onset, detected, mitigated, caused_by=bad)
            return mitigated
        if rng.random() < profile.incident_share:
            resolved = mitigated + int(rng.uniform(5, 30) * 60)
            self._incident(onset, detected, resolved, caused_by=bad)
        return mitigated + HOUR

    def _incident(
        self,
        started: int,
        detected: int,
        resolved: int | None,
        *,
        caused_by: dict[str, Any] | None = None,
        cause: str = "regression",
    ) -> None:
        """Deployment-caused incidents either name the deployment or leave it to inference
        (no cause, no deployment, started within the hour after it)."""
        profile, rng = self.profile, self.rng
        severity = SEVERITIES[int(rng.choice(4, p=_normalised(profile.severity_weights)))]
        acknowledged = detected + int(_lognormal(rng, profile.ack_minutes * 60, 0.7))
        if resolved is not None:
            acknowledged = min(acknowledged, resolved)
        explicit = caused_by is not None and rng.random() < profile.explicit_share
        self.incidents.append(
            {
                "service": self.service.name,
                "severity": severity,
                "started_at": started,
                "detected_at": detected,
                "acknowledged_at": acknowledged,
                "resolved_at": resolved,
                "caused_by_deployment": caused_by["id"] if caused_by and explicit else None,
                "cause": None if caused_by and not explicit else cause,
                "title": f"{self.service.name}: {_pick(rng, INCIDENT_TITLES[cause])}",
            }
        )

    def _other_incidents(self) -> None:
        profile, rng = self.profile, self.rng
        expected = profile.other_incidents_per_month * 12 / 365 * (self.end - self.start) / DAY
        for started in sorted(
            rng.integers(self.start, self.end, size=rng.poisson(expected)).tolist()
        ):
            detected = started + int(_lognormal(rng, profile.detect_minutes * 60, 0.8))
            resolved = detected + int(_lognormal(rng, profile.fix_hours * 1.5 * HOUR, 0.9))
            self._incident(started, detected, resolved, cause=_pick(rng, OTHER_CAUSES))

    def _open_incidents(self) -> None:
        """Incidents still open at `until`, on the team's first service."""
        if self.service is not self.profile.services[0]:
            return
        for _ in range(self.profile.open_incidents):
            started = self.until - int(self.rng.uniform(3, 30) * HOUR)
            detected = min(started + int(self.rng.uniform(2, 40) * 60), self.until - 60)
            self._incident(started, detected, None, cause=_pick(self.rng, OTHER_CAUSES))


def _day(seconds: int) -> date:
    return datetime.fromtimestamp(seconds, tz=UTC).date()


def _burn_episodes(
    profile: TeamProfile, rng: np.random.Generator, start: int, until: int
) -> list[tuple[int, int]]:
    """Weeks-long degradations (a leaky dependency, a noisy neighbour) that drain the budget."""
    years = (until - start) / (365 * DAY)
    count = int(rng.poisson(profile.burn_episodes_per_year * years))
    episodes = []
    for begin in sorted(rng.integers(start, max(start + 1, until - 10 * DAY), size=count).tolist()):
        episodes.append((begin, begin + int(rng.uniform(10, 20) * DAY)))
    return episodes


def _cut_changes(rows: list[dict[str, Any]], until: int) -> list[dict[str, Any]]:
    kept = [row for row in rows if row["committed_at"] < until]
    for row in kept:
        if row["merged_at"] >= until:
            row["merged_at"] = None
    return kept


def _cut_incidents(rows: list[dict[str, Any]], service: str, until: int) -> list[dict[str, Any]]:
    """What is known at `until`, numbered in start order; SEV1/SEV2 got a postmortem."""
    kept = sorted((row for row in rows if row["started_at"] < until), key=lambda r: r["started_at"])
    for number, row in enumerate(kept, start=1):
        row["id"] = f"{service}-i{number:04d}"
        for column in ("detected_at", "acknowledged_at", "resolved_at"):
            if row[column] is not None and row[column] >= until:
                row[column] = None
        done = row["resolved_at"] is not None and row["severity"] in ("SEV1", "SEV2")
        row["postmortem_url"] = (
            f"https://wiki.example.com/postmortems/{row['id']}" if done else None
        )
    return kept


def _sli_series(
    profile: TeamProfile,
    service: ServiceSpec,
    slo: SloSpec,
    rng: np.random.Generator,
    clock: _Clock,
    incidents: list[dict[str, Any]],
    episodes: list[tuple[int, int]],
) -> tuple[np.ndarray, np.ndarray]:
    """Hourly good/total: a daily and weekly traffic cycle, background errors, and the
    incidents and burn episodes of the service on top."""
    hours = clock.hours
    local_hour, weekend = clock.local(profile.timezone)
    daily = 0.35 + 0.65 * 0.5 * (1 - np.cos(2 * np.pi * (local_hour - 3) / 24))
    growth = 0.85 + 0.3 * np.arange(len(hours)) / max(len(hours), 1)
    noise = np.exp(0.08 * rng.standard_normal(len(hours)))
    expected = service.requests_per_hour * daily * np.where(weekend, 0.75, 1.0) * growth * noise
    total = rng.poisson(expected)
    allowed = 1 - slo.target
    bad_share = allowed * profile.budget_use * np.exp(0.6 * rng.standard_normal(len(hours)) - 0.18)
    for low, high in episodes:
        bad_share[(hours >= low) & (hours < high)] *= EPISODE_BURN
    kind_factor = 1.0 if slo.kind == "availability" else 2.0
    bad_share += (
        _incident_error_share(hours, incidents, clock.until) * kind_factor * profile.incident_impact
    )
    bad = rng.binomial(total, np.clip(bad_share, 0, 1))
    return total - bad, total


def _incident_error_share(
    hours: np.ndarray, incidents: list[dict[str, Any]], until: int
) -> np.ndarray:
    """Per hour, the share of requests the incidents broke: severe at the start, fading."""
    share = np.zeros(len(hours))
    if not len(hours):
        return share
    first = int(hours[0])
    for incident in incidents:
        started = incident["started_at"]
        ended = incident["resolved_at"] if incident["resolved_at"] is not None else until
        low = (started - first) // HOUR
        high = min((ended - first - 1) // HOUR, low + 48, len(hours) - 1)
        if high < low or low < 0:
            continue
        index = np.arange(low, high + 1)
        begin = np.maximum(hours[index], started)
        finish = np.minimum(hours[index] + HOUR, ended)
        middle = (begin + finish) / 2
        fade = np.exp(-(middle - started) / (INCIDENT_FADE_HOURS * HOUR))
        rate = SEVERITY_ERROR_RATE[incident["severity"]]
        share[index] += rate * fade * np.clip((finish - begin) / HOUR, 0, 1)
    return share


@dataclass
class _Clock:
    """The hourly grid of SLI buckets, and its local hours per time zone."""

    start: int
    until: int

    def __post_init__(self) -> None:
        self.hours = np.arange(self.start, self.until, HOUR, dtype=np.int64)
        self._local: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def local(self, zone: str) -> tuple[np.ndarray, np.ndarray]:
        if zone not in self._local:
            moments = pd.DatetimeIndex(self.hours.astype("datetime64[s]")).tz_localize(UTC)
            local = moments.tz_convert(zone)
            self._local[zone] = (np.asarray(local.hour), np.asarray(local.day_of_week >= 5))
        return self._local[zone]


def _toil(
    profile: TeamProfile, rng: np.random.Generator, start: int, until: int
) -> list[dict[str, Any]]:
    """Weekly toil hours by category, on the Monday of each week."""
    capacity = profile.size * PeopleConfig().hours_per_week
    first = _day(start) + timedelta(days=(7 - _day(start).weekday()) % 7)
    rows = []
    monday = first
    while monday < _day(until):
        hours = capacity * profile.toil_share * math.exp(0.15 * rng.standard_normal())
        split = rng.dirichlet(np.asarray(profile.toil_mix, dtype=float) * 8)
        for category, share in zip(TOIL_CATEGORIES, split, strict=True):
            amount = round(hours * share * 2) / 2
            if amount > 0:
                rows.append(
                    {
                        "team": profile.name,
                        "date": monday.isoformat(),
                        "hours": amount,
                        "category": category,
                    }
                )
        monday += timedelta(days=7)
    return rows


def _pages(
    profile: TeamProfile,
    rng: np.random.Generator,
    incidents: list[dict[str, Any]],
    start: int,
    until: int,
) -> list[dict[str, Any]]:
    """A page for each detected incident (and an escalation when nobody answered within
    15 minutes), plus alert noise; after hours is judged in the team's time zone."""
    pages = []
    for incident in incidents:
        if incident["detected_at"] is None:
            continue
        urgent = incident["severity"] in ("SEV1", "SEV2")
        page = {
            "service": incident["service"],
            "incident_id": incident["id"],
            "urgency": "high" if urgent else "low",
        }
        pages.append({**page, "triggered_at": incident["detected_at"], "title": incident["title"]})
        acknowledged = incident["acknowledged_at"]
        escalation = incident["detected_at"] + 15 * 60
        if (acknowledged is None or acknowledged > escalation) and escalation < until:
            pages.append(
                {**page, "triggered_at": escalation, "title": f"Escalated: {incident['title']}"}
            )
    weeks = (until - start) / (7 * DAY)
    count = int(rng.poisson(profile.noise_pages_per_week * weeks))
    for moment in sorted(rng.integers(start, until, size=count).tolist()):
        service = _pick(rng, tuple(spec.name for spec in profile.services))
        pages.append(
            {
                "service": service,
                "incident_id": None,
                "urgency": "high" if rng.random() < 0.3 else "low",
                "triggered_at": moment,
                "title": _pick(rng, NOISE_PAGES).format(service=service),
            }
        )
    pages.sort(key=lambda page: (page["triggered_at"], page["service"], page["title"]))
    people = PeopleConfig()
    for number, page in enumerate(pages, start=1):
        page["id"] = f"{profile.name}-p{number:06d}"
        page["team"] = profile.name
        page["after_hours"] = is_after_hours(
            datetime.fromtimestamp(page["triggered_at"], tz=UTC),
            profile.timezone,
            people.business_hours_start,
            people.business_hours_end,
        )
    return pages


def _people(team_index: int, size: int) -> tuple[str, ...]:
    first = team_index * 6
    return tuple(PEOPLE[(first + i) % len(PEOPLE)] for i in range(size))


def generate(seed: int, until: datetime, days: int = DEFAULT_DAYS) -> DemoData:
    """The demo organisation's rows for the `days` before `until`."""
    end = _epoch(until)
    begin = end - days * DAY
    data = DemoData(start=begin, until=end)
    clock = _Clock(begin, end)
    for team_index, profile in enumerate(PROFILES):
        team_incidents = []
        for service_index, service in enumerate(profile.services):
            episodes = _burn_episodes(
                profile, _rng(seed, team_index, service_index, _EPISODES), begin, end
            )
            world = _ServiceWorld(
                profile=profile,
                people=_people(team_index, profile.size),
                service=service,
                rng=_rng(seed, team_index, service_index, _DELIVERY),
                start=begin,
                end=end + HORIZON_DAYS * DAY,
                until=end,
                freezes=[(low + 5 * DAY, high + 20 * DAY) for low, high in episodes],
            )
            world.run()
            incidents = _cut_incidents(world.incidents, service.name, end)
            data.services.append({"name": service.name, "team": profile.name})
            data.changes += _cut_changes(world.changes, end)
            data.deployments += [row for row in world.deployments if row["deployed_at"] < end]
            data.incidents += incidents
            team_incidents += incidents
            sli_rng = _rng(seed, team_index, service_index, _SLI)
            for slo in service.slos:
                name = f"{service.name}-{slo.kind}"
                data.slos.append(
                    {"name": name, "service": service.name, "target": slo.target, "window_days": 28}
                )
                good, total = _sli_series(
                    profile, service, slo, sli_rng, clock, incidents, episodes
                )
                data.sli.append(SliSeries(name, good, total))
        data.toil += _toil(profile, _rng(seed, team_index, 0, _TOIL), begin, end)
        data.pages += _pages(profile, _rng(seed, team_index, 0, _PAGES), team_incidents, begin, end)
    return data


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


# --- files and loading -----------------------------------------------------------------------
def _stamp(seconds: int | None) -> str:
    if seconds is None:
        return ""
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_csv(
    path: Path, columns: list[str], rows: list[dict[str, Any]], stamps: tuple[str, ...] = ()
) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            values = []
            for column in columns:
                value = row[column]
                if column in stamps:
                    value = _stamp(value)
                elif isinstance(value, list):
                    value = " ".join(value)
                values.append("" if value is None else value)
            writer.writerow(values)


def _write_sli(path: Path, clock_start: int, series: list[SliSeries]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        handle.write("slo,timestamp,good,total\n")
        if not series:
            return
        count = len(series[0].total)
        stamps = np.datetime_as_string(
            (clock_start + HOUR * np.arange(count, dtype=np.int64)).astype("datetime64[s]"),
            unit="s",
        ).tolist()
        for item in series:
            handle.writelines(
                f"{item.slo},{stamp}Z,{good},{total}\n"
                for stamp, good, total in zip(
                    stamps, item.good.tolist(), item.total.tolist(), strict=True
                )
            )


def write_files(data: DemoData, folder: Path) -> dict[str, Path]:
    """The demo as import files (CSV, incidents as JSON Lines), by import kind, in load order."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        kind: folder / f"{kind}.csv"
        for kind in ("services", "changes", "deployments", "slos", "sli", "toil")
    }
    paths["incidents"] = folder / "incidents.jsonl"
    _write_csv(paths["services"], ["name", "team"], data.services)
    _write_csv(
        paths["changes"],
        ["id", "service", "sha", "committed_at", "merged_at", "pr_number", "title", "author"],
        data.changes,
        stamps=("committed_at", "merged_at"),
    )
    _write_csv(
        paths["deployments"],
        [
            "id",
            "service",
            "environment",
            "deployed_at",
            "status",
            "sha",
            "change_ids",
            "rollback_of",
            "remediation_of",
        ],
        data.deployments,
        stamps=("deployed_at",),
    )
    with paths["incidents"].open("w", encoding="utf-8") as handle:
        for row in data.incidents:
            record = {key: row[key] for key in INCIDENT_COLUMNS}
            for key in ("started_at", "detected_at", "acknowledged_at", "resolved_at"):
                record[key] = _stamp(record[key]) or None
            handle.write(json.dumps(record) + "\n")
    _write_csv(paths["slos"], ["name", "service", "target", "window_days"], data.slos)
    _write_sli(paths["sli"], data.start, data.sli)
    _write_csv(paths["toil"], ["team", "date", "hours", "category"], data.toil)
    return {kind: paths[kind] for kind in LOAD_ORDER}


INCIDENT_COLUMNS = (
    "id", "service", "severity", "started_at", "detected_at", "acknowledged_at", "resolved_at",
    "caused_by_deployment", "cause", "title", "postmortem_url",
)  # fmt: skip
LOAD_ORDER = ("services", "changes", "deployments", "incidents", "slos", "sli", "toil")
# What `--force` clears before rebuilding, children first; teams, services and SLOs have
# fixed names and are overwritten in place.
DEMO_TABLES = (
    schema.certificates,
    schema.sli_samples,
    schema.oncall_pages,
    schema.toil_entries,
    schema.incidents,
    schema.deployments,
    schema.changes,
)


def demo_config() -> PoiseConfig:
    """The demo's teams with their size and time zone, as a config would declare them."""
    return PoiseConfig(
        teams=[TeamConfig(name=p.name, size=p.size, timezone=p.timezone) for p in PROFILES]
    )


def row_counts(engine: Engine) -> dict[str, int]:
    """Rows per canonical table."""
    with engine.connect() as connection:
        return {
            table.name: int(
                connection.execute(select(func.count()).select_from(table)).scalar_one()
            )
            for table in schema.CANONICAL_TABLES
        }


def clear_demo_rows(engine: Engine) -> None:
    """Delete what an earlier demo build wrote, leaving rows from every other source alone."""
    with engine.begin() as connection:
        demo_deployments = select(schema.deployments.c.id).where(
            schema.deployments.c.source == SOURCE
        )
        connection.execute(
            delete(schema.deployment_changes).where(
                schema.deployment_changes.c.deployment_id.in_(demo_deployments)
            )
        )
        for table in DEMO_TABLES:
            connection.execute(delete(table).where(table.c.source == SOURCE))


def _page_rows(pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "id": page["id"],
            "service": page["service"],
            "team": page["team"],
            "triggered_at": datetime.fromtimestamp(page["triggered_at"], tz=UTC),
            "urgency": page["urgency"],
            "after_hours": page["after_hours"],
            "incident_id": page["incident_id"],
            "title": page["title"],
            "source": SOURCE,
            "source_id": page["id"],
        }
        for page in pages
    ]


# The certificates the demo's TLS checks found at `until`: (service, host, days valid left,
# issuer, verify error, last check's error). One expired, one expiring within 30 days, one
# served by a host that stopped answering; the rest healthy.
DEMO_CERTIFICATES = (
    ("storefront-web", "www.shop.example", 61, "Example Public CA R3", None, None),
    ("search", "search.shop.example", 12, "Example Public CA R3", None, None),
    ("billing-api", "billing.internal.example", -3, "Example Internal CA", "certificate has expired", None),
    ("auth", "login.shop.example", 203, "Example Public CA R3", None, None),
    ("notifications", "push.shop.example", 140, "Example Public CA R3", None, "no answer from push.shop.example:443 within 10 s"),
)  # fmt: skip


def _certificate_rows(until: datetime) -> list[dict[str, Any]]:
    rows = []
    checked = until - timedelta(hours=1)
    for service, host, days_left, issuer, verify_error, error in DEMO_CERTIFICATES:
        not_after = until.replace(hour=12, minute=0, second=0, microsecond=0) + timedelta(
            days=days_left
        )
        rows.append(
            {
                "id": f"{host}:443",
                "source_id": f"{host}:443",
                "service": service,
                "host": host,
                "port": 443,
                "server_name": host,
                "subject": f"CN={host}",
                "issuer": f"CN={issuer},O=Example",
                "serial": f"{zlib.crc32(host.encode()):08x}",
                "dns_names": host,
                "not_before": not_after - timedelta(days=90),
                "not_after": not_after,
                "verified": verify_error is None,
                "verify_error": verify_error,
                "error": error,
                "checked_at": checked,
                "read_at": checked - timedelta(days=2) if error else checked,
                "source": SOURCE,
            }
        )
    return rows


def build_demo(
    engine: Engine,
    *,
    seed: int = DEFAULT_SEED,
    until: datetime,
    days: int = DEFAULT_DAYS,
    export: Path | None = None,
    report: Callable[[str], None] = lambda message: None,
) -> dict[str, int]:
    """Generate the demo and load it through the importer; returns rows per table."""
    report(
        f"generating {len(PROFILES)} teams over {days} days up to {until:%Y-%m-%d} (seed {seed})"
    )
    data = generate(seed, until, days)
    with tempfile.TemporaryDirectory(prefix="poise-demo-") as scratch:
        folder = export or Path(scratch)
        report(f"writing import files to {folder}")
        paths = write_files(data, folder)
        apply_config(engine, demo_config())
        for kind, path in paths.items():
            result = import_file(engine, kind, path, source=SOURCE)
            report(f"imported {result.rows:>7} {kind}")
    with engine.begin() as connection:
        upsert_rows(connection, schema.oncall_pages, _page_rows(data.pages), count=False)
        upsert_rows(connection, schema.certificates, _certificate_rows(until), count=False)
    report(f"wrote {len(data.pages):>7} on-call pages, {len(DEMO_CERTIFICATES)} certificate checks")
    return row_counts(engine)
