"""The straightforward way to compute the scorecard, for bench_metrics.py to measure against.

Per team, per service, per figure: SQL queries for the rows, then Python loops — the shape
most dashboards start with: one query per deployment for its fixers and its incidents, one
per change for its first deployment, one per incident for the deployment to blame, one per
SLO and window, and an hour-by-hour loop over each SLO's samples for the budget policy. It
implements the same definitions as `metrics`, and bench_metrics.py checks that its figures
equal the engine's before comparing any time.
"""

from __future__ import annotations

import math
from collections import deque
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, text

from poise.timeutil import to_sqlite_text

HOUR = timedelta(hours=1)
PRODUCTION = "d.environment = s.production_environment AND d.status = 'success'"


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (pandas' default)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class Baseline:
    def __init__(self, engine: Engine, start: datetime, end: datetime, window: timedelta) -> None:
        self.engine = engine
        self.start, self.end, self.window = start, end, window
        self.sqlite = engine.dialect.name == "sqlite"

    def _t(self, moment: datetime) -> Any:
        return to_sqlite_text(moment) if self.sqlite else moment

    @staticmethod
    def _p(value: Any) -> datetime | None:
        if value is None or isinstance(value, datetime):
            return value
        return datetime.fromisoformat(value.replace("Z", "+00:00"))

    @staticmethod
    def _q(connection: Connection, sql: str, **params: Any) -> list[Any]:
        return list(connection.execute(text(sql), params))

    def run(self, now: datetime) -> dict[str, dict[str, Any]]:
        with self.engine.connect() as connection:
            teams = [r[0] for r in self._q(connection, "SELECT name FROM teams ORDER BY name")]
            return {team: self.team(connection, team, now) for team in teams}

    def team(self, connection: Connection, team: str, now: datetime) -> dict[str, Any]:
        figures: dict[str, Any] = {
            "deployments": 0,
            "failed": 0,
            "rework": 0,
            "leads": [],
            "recoveries": [],
            "incidents": 0,
            "mttr": [],
            "explicit": 0,
            "inferred": 0,
            "unattributed": 0,
            "budget_remaining": {},
            "frozen_hours": {},
        }
        services = self._q(connection, "SELECT name FROM services WHERE team = :t", t=team)
        for (service,) in services:
            self._delivery(connection, service, figures)
            self._incidents(connection, service, figures)
            self._slos(connection, service, min(self.end, now), figures)
        return {
            "deployments": figures["deployments"],
            "failed": figures["failed"],
            "rework": figures["rework"],
            "changes": len(figures["leads"]),
            "lead_median": percentile(figures["leads"], 0.5),
            "lead_p90": percentile(figures["leads"], 0.9),
            "recovery_median": percentile(figures["recoveries"], 0.5),
            "incidents": figures["incidents"],
            "mttr_median": percentile(figures["mttr"], 0.5),
            "attribution": {k: figures[k] for k in ("explicit", "inferred", "unattributed")},
            "budget_remaining": figures["budget_remaining"],
            "frozen_hours": figures["frozen_hours"],
        }

    def _delivery(self, connection: Connection, service: str, figures: dict[str, Any]) -> None:
        deployments = self._q(
            connection,
            "SELECT d.id, d.deployed_at, d.rollback_of, d.remediation_of FROM deployments d "
            f"JOIN services s ON s.name = d.service WHERE d.service = :s AND {PRODUCTION} "
            "AND d.deployed_at >= :a AND d.deployed_at < :b",
            s=service,
            a=self._t(self.start),
            b=self._t(self.end),
        )
        for deployment, deployed_raw, rollback_of, remediation_of in deployments:
            deployed = self._p(deployed_raw)
            figures["deployments"] += 1
            if (rollback_of and rollback_of != deployment) or (
                remediation_of and remediation_of != deployment
            ):
                figures["rework"] += 1
            fixed = self._q(
                connection,
                "SELECT MIN(d.deployed_at) FROM deployments d JOIN services s ON s.name = d.service "
                f"WHERE (d.rollback_of = :x OR d.remediation_of = :x) AND {PRODUCTION} "
                "AND d.deployed_at > :at",
                x=deployment,
                at=deployed_raw,
            )[0][0]
            resolved = self._blamed(connection, deployment, service, deployed)
            if fixed is not None or resolved:
                figures["failed"] += 1
                if fixed is not None:
                    figures["recoveries"].append((self._p(fixed) - deployed) / HOUR)
                elif all(moment is not None for moment in resolved):
                    hours = (max(resolved) - deployed) / HOUR
                    if hours >= 0:
                        figures["recoveries"].append(hours)
            for change, committed in self._q(
                connection,
                "SELECT c.id, c.committed_at FROM deployment_changes dc "
                "JOIN changes c ON c.id = dc.change_id WHERE dc.deployment_id = :x",
                x=deployment,
            ):
                first = self._q(
                    connection,
                    "SELECT d.id FROM deployment_changes dc JOIN deployments d ON d.id = dc.deployment_id "
                    f"JOIN services s ON s.name = d.service WHERE dc.change_id = :c AND {PRODUCTION} "
                    "ORDER BY d.deployed_at, d.id LIMIT 1",
                    c=change,
                )[0][0]
                if first == deployment:
                    lead = (deployed - self._p(committed)) / HOUR
                    if lead > 0:
                        figures["leads"].append(lead)

    def _latest(self, connection: Connection, service: str, started: datetime) -> Any:
        found = self._q(
            connection,
            "SELECT d.id FROM deployments d JOIN services s ON s.name = d.service "
            f"WHERE d.service = :s AND {PRODUCTION} AND d.deployed_at >= :a AND d.deployed_at <= :b "
            "ORDER BY d.deployed_at DESC, d.id DESC LIMIT 1",
            s=service,
            a=self._t(started - self.window),
            b=self._t(started),
        )
        return found[0][0] if found else None

    def _blamed(
        self, connection: Connection, deployment: str, service: str, deployed: datetime
    ) -> list[datetime | None]:
        """resolved_at of each incident attributed to the deployment."""
        out = [
            self._p(row[0])
            for row in self._q(
                connection,
                "SELECT resolved_at FROM incidents WHERE caused_by_deployment = :x",
                x=deployment,
            )
        ]
        for started, resolved in self._q(
            connection,
            "SELECT started_at, resolved_at FROM incidents WHERE service = :s "
            "AND started_at >= :a AND started_at <= :b "
            "AND COALESCE(caused_by_deployment, '') = '' AND COALESCE(cause, '') = ''",
            s=service,
            a=self._t(deployed),
            b=self._t(deployed + self.window),
        ):
            if self._latest(connection, service, self._p(started)) == deployment:
                out.append(self._p(resolved))
        return out

    def _incidents(self, connection: Connection, service: str, figures: dict[str, Any]) -> None:
        for started_raw, resolved_raw, caused_by, cause in self._q(
            connection,
            "SELECT started_at, resolved_at, caused_by_deployment, cause FROM incidents "
            "WHERE service = :s AND started_at >= :a AND started_at < :b",
            s=service,
            a=self._t(self.start),
            b=self._t(self.end),
        ):
            started, resolved = self._p(started_raw), self._p(resolved_raw)
            figures["incidents"] += 1
            if resolved is not None and resolved >= started:
                figures["mttr"].append((resolved - started) / HOUR)
            if caused_by:
                figures["explicit"] += 1
            elif cause or self._latest(connection, service, started) is None:
                figures["unattributed"] += 1
            else:
                figures["inferred"] += 1

    def _slos(
        self, connection: Connection, service: str, cap: datetime, figures: dict[str, Any]
    ) -> None:
        frozen: set[datetime] = set()
        for name, target, days in self._q(
            connection, "SELECT name, target, window_days FROM slos WHERE service = :s", s=service
        ):
            window = timedelta(days=days)
            good, total = self._q(
                connection,
                "SELECT COALESCE(SUM(good), 0), COALESCE(SUM(total), 0) FROM sli_samples "
                "WHERE slo = :o AND ts >= :a AND ts < :b",
                o=name,
                a=self._t(self.end - window),
                b=self._t(self.end),
            )[0]
            figures["budget_remaining"][name] = (
                1 - (total - good) / ((1 - target) * total) if total else None
            )
            samples = self._q(
                connection,
                "SELECT ts, good, total FROM sli_samples WHERE slo = :o AND ts >= :a AND ts < :b "
                "ORDER BY ts",
                o=name,
                a=self._t(self.start - window),
                b=self._t(cap),
            )
            inside: deque[tuple[datetime, float, float]] = deque()
            index, bad_sum, total_sum, moment = 0, 0.0, 0.0, self.start
            while moment < cap:
                while index < len(samples) and self._p(samples[index][0]) < moment:
                    ts, g, t = self._p(samples[index][0]), samples[index][1], samples[index][2]
                    inside.append((ts, g, t))
                    bad_sum, total_sum = bad_sum + t - g, total_sum + t
                    index += 1
                while inside and inside[0][0] < moment - window:
                    _, g, t = inside.popleft()
                    bad_sum, total_sum = bad_sum - (t - g), total_sum - t
                if total_sum > 0 and 1 - bad_sum / ((1 - target) * total_sum) <= 0:
                    frozen.add(moment)
                moment += HOUR
        if frozen:
            figures["frozen_hours"][service] = len(frozen)
