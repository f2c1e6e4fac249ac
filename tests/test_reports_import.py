"""A report of a small imported warehouse, on SQLite and on PostgreSQL: the engine's figures,
the team filter, and the postmortem of the incident that matters."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine

from metrics import Period, Scope, Settings
from metrics.scorecard import scorecard
from poise.importer import import_file
from reports import render
from reports.formats import display
from reports.model import Fmt

FILES = {
    "services": "name,team\na1,alpha\nb1,beta\n",
    "changes": "id,service,sha,committed_at\n"
    + "".join(f"ca{n},a1,a{n},2026-07-{n + 1:02d}T08:00:00Z\n" for n in range(1, 9))
    + "".join(f"cb{n},b1,b{n},2026-08-{n + 1:02d}T08:00:00Z\n" for n in range(1, 4)),
    "deployments": "id,service,environment,deployed_at,status,sha,change_ids,rollback_of\n"
    + "".join(
        f"da{n},a1,production,2026-07-{n + 1:02d}T{10 + n}:00:00Z,success,a{n},ca{n},\n"
        for n in range(1, 9)
    )
    + "da9,a1,production,2026-07-20T09:00:00Z,success,,,da8\n"
    + "".join(
        f"db{n},b1,production,2026-08-{n + 1:02d}T12:00:00Z,success,b{n},cb{n},\n"
        for n in range(1, 4)
    ),
    "incidents": "id,service,severity,started_at,detected_at,acknowledged_at,resolved_at,"
    "caused_by_deployment,cause,title,postmortem_url\n"
    "ia1,a1,SEV1,2026-07-09T20:00:00Z,2026-07-09T20:05:00Z,2026-07-09T20:10:00Z,"
    "2026-07-10T02:00:00Z,da8,,checkout down,https://wiki.invalid/pm/ia1\n"
    "ib1,b1,SEV3,2026-08-03T13:00:00Z,2026-08-03T13:01:00Z,2026-08-03T13:30:00Z,"
    "2026-08-03T15:00:00Z,,external,beta blip,https://wiki.invalid/pm/ib1\n",
    "slos": "name,service,target,window_days\na1-availability,a1,0.99,28\n",
    "sli": "slo,timestamp,good,total\n"
    + "".join(
        f"a1-availability,2026-09-{day:02d}T{hour:02d}:00:00Z,{995 if hour else 900},1000\n"
        for day in range(20, 31)
        for hour in range(24)
    ),
}


def load(engine: Engine, folder: Path) -> None:
    for kind, text in FILES.items():
        path = folder / f"{kind}.csv"
        path.write_text(text, encoding="utf-8")
        import_file(engine, kind, path)


def test_report_of_an_imported_quarter(warehouse: Engine, tmp_path: Path) -> None:
    load(warehouse, tmp_path)
    card = scorecard(warehouse, Period.quarter("2026Q3"), Scope(), Settings())
    assert card["dora"]["deployment_frequency"]["deployments"] == 12

    book = load_workbook(io.BytesIO(render(warehouse, "2026Q3", fmt="xlsx")))
    rows = {row[0]: row[1] for row in book["Headline figures"].iter_rows(values_only=True)}
    # openpyxl writes 16 significant digits (Excel keeps 15)
    per_week = card["dora"]["deployment_frequency"]["per_week"]
    assert rows["Deployment frequency (per week)"] == pytest.approx(per_week, rel=1e-15)
    rate = card["dora"]["change_failure_rate"]["rate"]
    assert rows["Change fail rate"] == pytest.approx(rate, rel=1e-15)
    assert rows["Incidents started"] == card["incidents"]["count"] == 2
    slo = {row[0]: row[4] for row in book["SLO attainment"].iter_rows(values_only=True)}
    assert slo["a1-availability"] is not None

    markdown = render(warehouse, "2026Q3", fmt="md").decode()
    assert f"| Change fail rate | {display(rate, Fmt.PERCENT1)} |" in markdown
    assert "https://wiki.invalid/pm/ia1" in markdown  # the SEV1's postmortem is listed

    alpha = render(warehouse, "2026Q3", fmt="md", team="alpha").decode()
    assert "Team alpha" in alpha and "a1-availability" in alpha
    for other in ("beta", "b1", "ib1", "db1", "cb1"):
        assert other not in alpha, other
    team_card = scorecard(warehouse, Period.quarter("2026Q3"), Scope(team="alpha"), Settings())
    team_rate = display(team_card["dora"]["deployment_frequency"]["per_week"], Fmt.DECIMAL1)
    assert f"| Deployment frequency (per week) | {team_rate} |" in alpha
