"""A tiny organisation written as import files and loaded through `poise.importer`.

Metrics tests describe their data with `Org` (rows in the contract's import columns), then
`org.load(engine, tmp_path)` writes one CSV per kind into the temp folder and imports them
with `import_file`, so every test exercises the real way in.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from poise.importer import KINDS, import_file

ORDER = ("services", "changes", "deployments", "incidents", "slos", "sli", "toil")
T0 = datetime(2026, 7, 1, tzinfo=UTC)


def at(days: float = 0, hours: float = 0, minutes: float = 0, seconds: float = 0) -> datetime:
    """A moment counted from 2026-07-01T00:00Z (the start of 2026Q3)."""
    return T0 + timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def iso(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Org:
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {k: [] for k in ORDER})

    def service(self, name: str, team: str) -> Org:
        self.rows["services"].append({"name": name, "team": team})
        return self

    def change(
        self, id: str, service: str, committed_at: datetime, merged_at: datetime | None = None
    ) -> Org:
        row = {"id": id, "service": service, "sha": id, "committed_at": iso(committed_at)}
        if merged_at is not None:
            row["merged_at"] = iso(merged_at)
        self.rows["changes"].append(row)
        return self

    def deploy(
        self,
        id: str,
        service: str,
        deployed_at: datetime,
        changes: tuple[str, ...] | list[str] = (),
        *,
        environment: str = "production",
        status: str = "success",
        rollback_of: str = "",
        remediation_of: str = "",
    ) -> Org:
        self.rows["deployments"].append(
            {
                "id": id,
                "service": service,
                "environment": environment,
                "deployed_at": iso(deployed_at),
                "status": status,
                "sha": id,
                "change_ids": " ".join(changes),
                "rollback_of": rollback_of,
                "remediation_of": remediation_of,
            }
        )
        return self

    def incident(
        self,
        id: str,
        service: str,
        started_at: datetime,
        *,
        severity: str = "SEV2",
        detected: timedelta | None = timedelta(minutes=5),
        acknowledged: timedelta | None = timedelta(minutes=10),
        resolved: timedelta | None = timedelta(hours=2),
        caused_by: str = "",
        cause: str = "",
    ) -> Org:
        def after(delta: timedelta | None) -> str:
            return iso(started_at + delta) if delta is not None else ""

        self.rows["incidents"].append(
            {
                "id": id,
                "service": service,
                "severity": severity,
                "started_at": iso(started_at),
                "detected_at": after(detected),
                "acknowledged_at": after(acknowledged),
                "resolved_at": after(resolved),
                "caused_by_deployment": caused_by,
                "cause": cause,
            }
        )
        return self

    def slo(self, name: str, service: str, target: float, window_days: int = 28) -> Org:
        self.rows["slos"].append(
            {"name": name, "service": service, "target": target, "window_days": window_days}
        )
        return self

    def sli(self, slo: str, start: datetime, hours: int, good: float, total: float) -> Org:
        """`hours` hourly buckets from `start`, each with the same counts."""
        for hour in range(hours):
            self.rows["sli"].append(
                {
                    "slo": slo,
                    "timestamp": iso(start + timedelta(hours=hour)),
                    "good": good,
                    "total": total,
                }
            )
        return self

    def toil(self, team: str, day: str, hours: float, category: str = "tickets") -> Org:
        self.rows["toil"].append({"team": team, "date": day, "hours": hours, "category": category})
        return self

    def write(self, folder: Path) -> dict[str, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        paths = {}
        for kind in ORDER:
            rows = self.rows[kind]
            if not rows:
                continue
            columns = KINDS[kind].allowed
            path = folder / f"{kind}.csv"
            with path.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=columns)
                writer.writeheader()
                for row in rows:
                    writer.writerow({column: row.get(column, "") for column in columns})
            paths[kind] = path
        return paths

    def load(self, engine: Engine, folder: Path) -> Engine:
        for kind, path in self.write(folder).items():
            import_file(engine, kind, path)
        return engine
