"""What a config no longer declares: an SLO taken out of poise.yaml (or out of its SLO file)
kept counting in every figure, and could hold a release freeze, because the warehouse kept
its definition; a team name put right left the misspelt team in every team list. Now the
SLO is retired (left out of the figures, its samples kept, back when declared again) and
a team nothing refers to is removed, each said in one line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select

from metrics import Period, Scope, Settings
from metrics.scorecard import scorecard
from poise.catalog import apply_config
from poise.cli import main
from poise.config import PoiseConfig, load_config
from poise.warehouse import schema

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
OPENSLO = """\
apiVersion: openslo/v1
kind: SLO
metadata:
  name: api-latency
spec:
  service: api
  indicator:
    metadata:
      name: api-fast
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            type: Prometheus
            spec:
              query: sum(http_requests_fast_total)
        total:
          metricSource:
            type: Prometheus
            spec:
              query: sum(http_requests_total)
  budgetingMethod: Occurrences
  objectives:
    - target: 0.99
  timeWindow:
    - duration: 28d
      isRolling: true
"""


def write_config(folder: Path, *, teams: list[str], slos: bool) -> Path:
    lines = ["teams:", *(f"  - name: {team}" for team in teams)]
    lines += ["services:", "  - name: api", "    team: payments"]
    if slos:
        lines += [
            "slos:",
            "  - name: api-availability",
            "    service: api",
            "    target: 0.999",
            "  - file: latency.yaml",
        ]
    (folder / "latency.yaml").write_text(OPENSLO)
    path = folder / "poise.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def slo_names(engine: Engine) -> list[str]:
    period = Period(NOW - timedelta(days=28), NOW)
    return [slo["name"] for slo in scorecard(engine, period, Scope(), Settings())["slos"]]


def stored(engine: Engine) -> dict[str, Any]:
    o = schema.slos
    with engine.connect() as connection:
        return {
            "slos": dict(connection.execute(select(o.c.name, o.c.retired_at)).all()),
            "teams": sorted(connection.scalars(select(schema.teams.c.name))),
            "samples": connection.scalar(select(func.count()).select_from(schema.sli_samples)),
        }


def apply(engine: Engine, path: Path) -> list[str]:
    said: list[str] = []
    apply_config(engine, load_config(str(path)), notes=said.append)
    return said


def test_an_slo_taken_out_is_retired_and_comes_back(warehouse: Engine, tmp_path: Path) -> None:
    path = write_config(tmp_path, teams=["payments", "paymnets"], slos=True)
    assert apply(warehouse, path) == []
    with warehouse.begin() as connection:
        connection.execute(
            insert(schema.sli_samples),
            [
                {"slo": "api-availability", "ts": NOW - timedelta(hours=h), "good": 99.0}
                | {"total": 100.0, "source": "import"}
                for h in range(1, 25)
            ],
        )
    assert slo_names(warehouse) == ["api-availability", "api-latency"]

    write_config(tmp_path, teams=["payments"], slos=False)
    assert apply(warehouse, path) == [
        f"SLO 'api-availability' is no longer in {path}: left out of every figure from now "
        "on (its samples are kept; declare it again to bring it back)",
        f"SLO 'api-latency' is no longer in {path}: left out of every figure from now "
        "on (its samples are kept; declare it again to bring it back)",
        f"team 'paymnets' is no longer in {path} and nothing refers to it: removed",
    ]
    assert slo_names(warehouse) == []
    after = stored(warehouse)
    assert all(when is not None for when in after["slos"].values())
    assert (after["teams"], after["samples"]) == (["payments"], 24)
    assert apply(warehouse, path) == []  # said once, not at every sync

    write_config(tmp_path, teams=["payments"], slos=True)
    assert apply(warehouse, path) == []
    assert slo_names(warehouse) == ["api-availability", "api-latency"]
    assert stored(warehouse)["slos"] == {"api-availability": None, "api-latency": None}


def test_a_team_something_refers_to_stays(warehouse: Engine, tmp_path: Path) -> None:
    """A team with toil on record (or services, on-call pages) is history: kept."""
    path = write_config(tmp_path, teams=["payments", "platform"], slos=False)
    apply(warehouse, path)
    with warehouse.begin() as connection:
        connection.execute(
            insert(schema.toil_entries).values(
                team="platform",
                day=NOW.date(),
                category="manual deploys",
                hours=3.0,
                source="import",
                updated_at=NOW,
            )
        )
    write_config(tmp_path, teams=["payments"], slos=False)
    assert apply(warehouse, path) == []
    assert stored(warehouse)["teams"] == ["payments", "platform"]


def test_without_a_config_file_nothing_is_retired(warehouse: Engine, tmp_path: Path) -> None:
    """A command run where there is no poise.yaml reads the defaults: that is no reason to
    take every SLO out of the figures."""
    apply(warehouse, write_config(tmp_path, teams=["payments", "paymnets"], slos=True))
    said: list[str] = []
    apply_config(warehouse, PoiseConfig(), notes=said.append)
    assert said == []
    assert slo_names(warehouse) == ["api-availability", "api-latency"]
    assert stored(warehouse)["teams"] == ["payments", "paymnets"]


def test_a_reading_command_retires_it_too_and_says_so(
    warehouse: Engine, warehouse_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`poise metrics` writes the config's catalog where it differs: the figures it prints
    must not count an SLO the config it read no longer has."""
    path = write_config(tmp_path, teams=["payments"], slos=True)
    args = ["metrics", "--format", "json", "--db", warehouse_url, "--config", str(path)]
    assert main(args) == 0
    assert [slo["name"] for slo in json.loads(capsys.readouterr().out)["slos"]] == [
        "api-availability",
        "api-latency",
    ]
    write_config(tmp_path, teams=["payments"], slos=False)
    assert main(args) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["slos"] == []
    assert f"poise: note: SLO 'api-latency' is no longer in {path}: left out" in captured.err


def test_an_slo_imported_after_it_was_retired_is_back(
    warehouse: Engine, warehouse_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its definition imported, it belongs to the imports: in the figures again, and no
    later config retires it (the imports' SLOs are theirs)."""
    path = write_config(tmp_path, teams=["payments"], slos=True)
    apply(warehouse, path)
    write_config(tmp_path, teams=["payments"], slos=False)
    apply(warehouse, path)
    assert slo_names(warehouse) == []
    definitions = tmp_path / "slos.csv"
    definitions.write_text("name,service,target,window_days\napi-latency,api,0.99,28\n")
    imported = ["import", "--kind", "slos", str(definitions), "--db", warehouse_url]
    assert main([*imported, "--config", str(path)]) == 0
    assert slo_names(warehouse) == ["api-latency"]
    assert apply(warehouse, path) == []
    assert slo_names(warehouse) == ["api-latency"]
