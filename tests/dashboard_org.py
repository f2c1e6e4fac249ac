"""A small organisation for the dashboard and metrics-view tests, written as import files.

Two teams (alpha: web and api; beta: db), five weeks of daily deployments up to `until`
(midnight UTC, today by default, so the dashboard's "last 28 days" has data), a rollback,
a failed attempt, incidents with and without a cause, one SLO with hourly samples and a
bad stretch, toil. With `hostile=True` the titles, a service name and a team name carry
HTML and script, to check that every page shows them as text.

Known facts the tests rely on (per service, in the last 28 days): one production
deployment a day, two changes each; web's deployment 20 days before `until` failed (an
incident names it) and was rolled back an hour later; two of web's changes were committed
in the last 28 days and never deployed.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from metrics import Settings
from metrics.derived import refresh_derived
from poise.importer import import_file

HOSTILE_SCRIPT = "<script>alert('x')</script>"
HOSTILE_IMG = '<img src=x onerror="alert(1)">'
DAYS = 35


def names(hostile: bool) -> dict[str, str]:
    return {
        "web": "web",
        "api": "api",
        "db": f"db{HOSTILE_IMG}" if hostile else "db",
        "alpha": "alpha",
        "beta": f"beta{HOSTILE_SCRIPT}" if hostile else "beta",
    }


def default_until() -> datetime:
    now = datetime.now(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _write(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_org(
    folder: Path, *, until: datetime | None = None, hostile: bool = False
) -> dict[str, Path]:
    end = until or default_until()
    n = names(hostile)
    folder.mkdir(parents=True, exist_ok=True)
    services = [(n["web"], n["alpha"]), (n["api"], n["alpha"]), (n["db"], n["beta"])]
    files = {
        "services": _write(folder / "services.csv", ["name", "team"], [list(s) for s in services])
    }
    changes: list[list[object]] = []
    deployments: list[list[object]] = []
    for service, _team in services:
        key = service[:3]
        for day in range(DAYS, 0, -1):
            deployed = end - timedelta(days=day) + timedelta(hours=10)
            ids = []
            for part in range(2):
                change_id = f"{key}-c{day:02d}{part}"
                committed = deployed - timedelta(hours=3 + 2 * part + (day % 5))
                title = (
                    f"Fix {HOSTILE_SCRIPT} in {key}"
                    if hostile and part == 0
                    else f"Change {day}.{part}"
                )
                merged = committed + timedelta(hours=1)
                changes.append(
                    [
                        change_id,
                        service,
                        f"{day:02d}{part}{key}".ljust(40, "0")[:40],
                        _stamp(committed),
                        _stamp(merged),
                        100 + day,
                        title,
                        "dev@example.com",
                    ]
                )
                ids.append(change_id)
            deployments.append(
                [
                    f"{key}-d{day:02d}",
                    service,
                    "production",
                    _stamp(deployed),
                    "success",
                    "",
                    " ".join(ids),
                    "",
                    "",
                ]
            )
        for extra in range(2):  # committed, never deployed
            changes.append(
                [
                    f"{key}-u{extra}",
                    service,
                    f"u{extra}{key}".ljust(40, "0")[:40],
                    _stamp(end - timedelta(hours=5 + extra)),
                    "",
                    "",
                    "Work in progress",
                    "dev@example.com",
                ]
            )
    web = n["web"][:3]
    failed_day = 20
    deployments.append(
        [
            f"{web}-rb",
            n["web"],
            "production",
            _stamp(end - timedelta(days=failed_day) + timedelta(hours=11)),
            "success",
            "",
            "",
            f"{web}-d{failed_day:02d}",
            "",
        ]
    )
    deployments.append(
        [
            f"{web}-attempt",
            n["web"],
            "production",
            _stamp(end - timedelta(days=3) + timedelta(hours=9)),
            "failure",
            "",
            "",
            "",
            "",
        ]
    )
    files["changes"] = _write(
        folder / "changes.csv",
        ["id", "service", "sha", "committed_at", "merged_at", "pr_number", "title", "author"],
        changes,
    )
    files["deployments"] = _write(
        folder / "deployments.csv",
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
        deployments,
    )
    incidents = [
        {
            "id": "inc-1",
            "service": n["web"],
            "severity": "SEV2",
            "started_at": _stamp(
                end - timedelta(days=failed_day) + timedelta(hours=10, minutes=20)
            ),
            "detected_at": _stamp(
                end - timedelta(days=failed_day) + timedelta(hours=10, minutes=30)
            ),
            "acknowledged_at": _stamp(
                end - timedelta(days=failed_day) + timedelta(hours=10, minutes=40)
            ),
            "resolved_at": _stamp(end - timedelta(days=failed_day) + timedelta(hours=12)),
            "caused_by_deployment": f"{web}-d{failed_day:02d}",
            "cause": "regression",
            "title": f"Checkout down {HOSTILE_IMG}" if hostile else "Checkout down",
            "postmortem_url": "https://wiki.example.com/pm/inc-1",
        },
        {
            "id": "inc-2",
            "service": n["db"],
            "severity": "SEV3",
            "started_at": _stamp(end - timedelta(days=8) + timedelta(hours=2)),
            "detected_at": _stamp(end - timedelta(days=8) + timedelta(hours=2, minutes=5)),
            "acknowledged_at": _stamp(end - timedelta(days=8) + timedelta(hours=2, minutes=15)),
            "resolved_at": _stamp(end - timedelta(days=8) + timedelta(hours=5)),
            "caused_by_deployment": "",
            "cause": "capacity",
            "title": f"Disk full {HOSTILE_SCRIPT}" if hostile else "Disk full",
            "postmortem_url": "javascript:alert(1)" if hostile else "",
        },
        {
            "id": "inc-3",
            "service": n["api"],
            "severity": "SEV4",
            "started_at": _stamp(end - timedelta(days=5) + timedelta(hours=13)),
            "detected_at": _stamp(end - timedelta(days=5) + timedelta(hours=13, minutes=1)),
            "acknowledged_at": _stamp(end - timedelta(days=5) + timedelta(hours=13, minutes=9)),
            "resolved_at": _stamp(end - timedelta(days=5) + timedelta(hours=14)),
            "caused_by_deployment": "",
            "cause": "",
            "title": "Slow responses",
            "postmortem_url": "",
        },
    ]
    path = folder / "incidents.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in incidents), encoding="utf-8")
    files["incidents"] = path
    files["slos"] = _write(
        folder / "slos.csv",
        ["name", "service", "target", "window_days"],
        [["web-availability", n["web"], 0.99, 28], ["db-availability", n["db"], 0.995, 28]],
    )
    samples: list[list[object]] = []
    start = end - timedelta(days=DAYS)
    for hour in range(DAYS * 24):
        moment = start + timedelta(hours=hour)
        bad_web = (
            40
            if end - timedelta(days=failed_day)
            <= moment
            < end - timedelta(days=failed_day) + timedelta(hours=3)
            else 2
        )
        samples.append(["web-availability", _stamp(moment), 1000 - bad_web, 1000])
        samples.append(["db-availability", _stamp(moment), 499, 500])
    files["sli"] = _write(folder / "sli.csv", ["slo", "timestamp", "good", "total"], samples)
    toil = [
        [n["alpha"], (end - timedelta(days=d)).strftime("%Y-%m-%d"), 3.0, "manual deploys"]
        for d in range(1, 20)
    ]
    files["toil"] = _write(folder / "toil.csv", ["team", "date", "hours", "category"], toil)
    return files


def build(engine: Engine, folder: Path, **options: object) -> dict[str, Path]:
    files = write_org(folder, **options)  # type: ignore[arg-type]
    for kind in ("services", "changes", "deployments", "incidents", "slos", "sli", "toil"):
        import_file(engine, kind, files[kind])
    refresh_derived(engine, Settings())
    return files
