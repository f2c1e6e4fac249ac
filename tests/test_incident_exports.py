"""scripts/incidents_to_poise.py: exports of tools without a collector, through `poise import`."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO_ROOT
from sqlalchemy import Engine, select

from poise.importer import import_file
from poise.warehouse import schema

SCRIPT = REPO_ROOT / "scripts" / "incidents_to_poise.py"
spec = importlib.util.spec_from_file_location("incidents_to_poise", SCRIPT)
assert spec is not None and spec.loader is not None
converter = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = converter
spec.loader.exec_module(converter)

INCIDENT_IO = """\
ID,Reference,Name,Status,Severity,Affected services,Reported at,Impact started at,Accepted at,Resolved at,Closed at
01HZX0A1,INC-41,Checkout 5xx,Closed,Critical,"Checkout API, Payments",2026-03-03T09:40:00Z,2026-03-03T09:30:00Z,2026-03-03T09:44:00Z,2026-03-03T10:30:00Z,2026-03-04T12:00:00Z
01HZX0A2,INC-42,Slow search,Closed,Minor,Search,2026-03-05T14:00:00+01:00,,,2026-03-05T15:00:00+01:00,2026-03-05T15:10:00+01:00
01HZX0A3,INC-43,Ongoing,Fixing,Major,Search,2026-03-06T08:00:00Z,,2026-03-06T08:05:00Z,,
"""

JIRA = """\
Summary,Issue key,Issue id,Issue Type,Status,Priority,Resolution,Created,Updated,Resolved,Component/s
Checkout down,OPS-7,10007,Incident,Done,Highest,Done,03/Mar/26 9:30 AM,03/Mar/26 11:00 AM,03/Mar/26 10:45 AM,checkout
Cart errors,OPS-8,10008,Incident,Done,High,Done,29/Mar/26 1:15 PM,29/Mar/26 3:00 PM,29/Mar/26 2:15 PM,checkout
"""

FIREHYDRANT = {
    "data": [
        {
            "id": "6c3d8a8e-1111-4e0f-9b3a-2f0d8c1e7a10",
            "number": 112,
            "name": "Checkout latency",
            "severity": "SEV2",
            "started_at": "2026-04-01T10:00:00.000Z",
            "created_at": "2026-04-01T10:06:00.000Z",
            "current_milestone": "resolved",
            "milestones": [
                {"type": "started", "occurred_at": "2026-04-01T10:00:00.000Z"},
                {"type": "detected", "occurred_at": "2026-04-01T10:04:00.000Z"},
                {"type": "acknowledged", "occurred_at": "2026-04-01T10:06:30.000Z"},
                {"type": "mitigated", "occurred_at": "2026-04-01T10:40:00.000Z"},
                {"type": "resolved", "occurred_at": "2026-04-01T11:00:00.000Z"},
            ],
        }
    ],
    "pagination": {"count": 1, "page": 1, "items": 20, "pages": 1, "last": 1, "prev": None},
}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def imported(engine: Engine, path: Path) -> dict[str, dict[str, Any]]:
    services = path.parent / "services.csv"
    services.write_text("name,team\ncheckout,payments\nsearch,discovery\n", encoding="utf-8")
    import_file(engine, "services", services)
    import_file(engine, "incidents", path)
    with engine.connect() as connection:
        rows = connection.execute(select(schema.incidents)).mappings().all()
    return {row["id"]: dict(row) for row in rows}


def test_an_incident_io_export_is_converted_and_imported(warehouse: Engine, tmp_path: Path) -> None:
    export = tmp_path / "incident-io.csv"
    export.write_text(INCIDENT_IO, encoding="utf-8")
    out = tmp_path / "incidents.csv"
    run = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--from",
            "incident.io",
            str(export),
            "--service-column",
            "Affected services",
            "--map",
            "Checkout API=checkout",
            "--map",
            "Search=search",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "3 incidents written" in run.stderr
    rows = imported(warehouse, out)
    first = rows["incident.io:INC-41"]
    assert (first["service"], first["severity"], first["title"]) == (
        "checkout",
        "Critical",
        "Checkout 5xx",
    )
    assert first["started_at"] == at("2026-03-03T09:30:00")  # impact started, before reported
    assert first["detected_at"] == at("2026-03-03T09:40:00")
    assert first["acknowledged_at"] == at("2026-03-03T09:44:00")
    assert first["resolved_at"] == at("2026-03-03T10:30:00")  # resolved, not closed
    second = rows["incident.io:INC-42"]
    assert second["started_at"] == at("2026-03-05T13:00:00")  # no impact start: reported
    assert second["acknowledged_at"] is None
    assert rows["incident.io:INC-43"]["resolved_at"] is None  # still open


def test_a_jira_export_needs_the_time_zone_it_was_written_in(tmp_path: Path) -> None:
    export = tmp_path / "jira.csv"
    export.write_text(JIRA, encoding="utf-8")
    frame = converter.read_export(export)
    preset = converter.PRESETS["jira"]
    with pytest.raises(converter.ConversionError, match="have no offset: pass --timezone"):
        converter.convert(frame, preset, service="checkout")
    rows, notes = converter.convert(frame, preset, service="checkout", zone="Europe/Berlin")
    assert rows["started_at"].tolist() == ["2026-03-03T08:30:00Z", "2026-03-29T11:15:00Z"]
    assert rows["resolved_at"].tolist() == ["2026-03-03T09:45:00Z", "2026-03-29T12:15:00Z"]
    assert rows["id"].tolist() == ["jira:OPS-7", "jira:OPS-8"]
    assert "acknowledged_at: no such column in the export; left empty" in notes
    # a custom field can stand in for the start
    with pytest.raises(converter.ConversionError, match="no column 'Custom field"):
        converter.convert(
            frame,
            preset,
            service="checkout",
            zone="Europe/Berlin",
            overrides={"started_at": "Custom field (Impact start)"},
        )


def test_firehydrant_milestones_become_the_incident_times(
    warehouse: Engine, tmp_path: Path
) -> None:
    export = tmp_path / "firehydrant.json"
    export.write_text(json.dumps(FIREHYDRANT), encoding="utf-8")
    out = tmp_path / "incidents.csv"
    assert (
        converter.main(
            ["--from", "firehydrant", str(export), "--service", "checkout", "-o", str(out)]
        )
        == 0
    )
    row = imported(warehouse, out)["firehydrant:112"]
    assert (row["severity"], row["title"]) == ("SEV2", "Checkout latency")
    assert row["started_at"] == at("2026-04-01T10:00:00")
    assert row["detected_at"] == at("2026-04-01T10:04:00")
    assert row["acknowledged_at"] == at("2026-04-01T10:06:30")
    assert row["resolved_at"] == at("2026-04-01T11:00:00")


def test_unmapped_services_are_all_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    export = tmp_path / "incident-io.csv"
    export.write_text(INCIDENT_IO, encoding="utf-8")
    code = converter.main(
        ["--from", "incident.io", str(export), "--service-column", "Affected services"]
    )
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"incidents_to_poise: {export}: no Poise service for 'Checkout API, Payments', "
        "'Search': add --map NAME=SERVICE"
    )


def test_a_jira_instance_with_another_date_format(tmp_path: Path) -> None:
    export = tmp_path / "jira.csv"
    export.write_text(
        "Summary,Issue key,Priority,Created,Resolved\n"
        "Checkout down,OPS-7,Highest,2026-07-01 09:30,2026-07-01 10:00\n",
        encoding="utf-8",
    )
    out = tmp_path / "incidents.csv"
    argv = ["--from", "jira", str(export), "--service", "checkout", "-o", str(out)]
    assert converter.main([*argv, "--timezone", "America/New_York"]) == 1  # wrong format
    assert (
        converter.main([*argv, "--timezone", "America/New_York", "--date-format", "%Y-%m-%d %H:%M"])
        == 0
    )
    written = out.read_text(encoding="utf-8").splitlines()
    assert written[0] == (
        "id,service,severity,started_at,detected_at,acknowledged_at,resolved_at,cause,title,"
        "postmortem_url"
    )
    assert written[1] == (
        "jira:OPS-7,checkout,Highest,2026-07-01T13:30:00Z,2026-07-01T13:30:00Z,,"
        "2026-07-01T14:00:00Z,,Checkout down,"
    )
