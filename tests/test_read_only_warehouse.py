"""Commands that only read work on a warehouse that refuses writes (a read-only file, a
replica, a role granted SELECT only); commands that write say so in one line."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from conftest import postgres_base_url
from sqlalchemy import create_engine, text
from test_pages import PAGES, assert_clean, metric, run

from poise.cli import main
from poise.warehouse import open_warehouse, schema

CONFIG = """\
teams:
  - name: payments
    size: {size}
services:
  - name: checkout
    team: payments
"""
DEPLOYMENTS = """\
id,service,environment,deployed_at,status,sha,change_ids
d1,checkout,production,2026-07-01T10:00:00Z,success,abc,
d2,checkout,production,2026-07-02T10:00:00Z,failure,def,
"""
PERIOD = ["--from", "2026-07-01", "--to", "2026-08-01"]


def read_only(url: str) -> str:
    """The same warehouse, opened so that every write is refused."""
    if url.startswith("sqlite:///"):
        return f"sqlite:///file:{url.removeprefix('sqlite:///')}?mode=ro&uri=true"
    # like a hot standby: PostgreSQL refuses every write of the session (SQLSTATE 25006)
    return url + quote(" -cdefault_transaction_read_only=on")


def write_config(tmp_path: Path, size: int) -> str:
    path = tmp_path / "poise.yaml"
    path.write_text(CONFIG.format(size=size), encoding="utf-8")
    return str(path)


def scorecard(url: str, config: str, capsys: pytest.CaptureFixture[str]) -> tuple[dict, str]:
    assert main(["metrics", "--format", "json", "--db", url, "--config", config, *PERIOD]) == 0
    captured = capsys.readouterr()
    return json.loads(captured.out), captured.err


@pytest.fixture
def filled(warehouse_url: str, tmp_path: Path) -> str:
    """A warehouse holding the config's team (size 6) and service and two deployments."""
    config = write_config(tmp_path, 6)
    deployments = tmp_path / "deployments.csv"
    deployments.write_text(DEPLOYMENTS, encoding="utf-8")
    arguments = ["--db", warehouse_url, "--config", config]
    assert main(["import", str(deployments), "--kind", "deployments", *arguments]) == 0
    return warehouse_url


def test_read_commands_read_a_warehouse_that_refuses_writes(
    filled: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, 6)
    capsys.readouterr()
    expected, _ = scorecard(filled, config, capsys)
    locked = read_only(filled)
    document, err = scorecard(locked, config, capsys)
    assert err == ""  # the config is as stored: nothing to write, nothing to say
    assert document["dora"] == expected["dora"]
    assert document["dora"]["deployment_frequency"]["deployments"] == 1
    arguments = ["--db", locked, "--config", config]
    assert main(["explain", "deployment_frequency", *arguments, *PERIOD]) == 0
    assert "d1: production deployment of checkout" in capsys.readouterr().out
    assert main(["gate", "--service", "checkout", "--dry-run", *arguments]) == 0
    assert "ship" in capsys.readouterr().out


def test_a_changed_config_is_a_note_where_it_cannot_be_written(
    filled: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, 9)  # the team grew; the warehouse still says 6
    capsys.readouterr()
    document, err = scorecard(read_only(filled), config, capsys)
    assert document["dora"]["deployment_frequency"]["deployments"] == 1
    assert err.count("\n") == 1
    assert err.startswith("poise: note: the warehouse refused to write (")
    assert "the figures read team 'payments' as stored (or not at all, if new)" in err
    engine = open_warehouse(filled, migrate=False)
    with engine.connect() as connection:
        size = connection.execute(schema.teams.select()).mappings().one()["size"]
    engine.dispose()
    assert size == 6
    _, err = scorecard(filled, config, capsys)  # where it can write, it does
    assert err == ""
    engine = open_warehouse(filled, migrate=False)
    with engine.connect() as connection:
        size = connection.execute(schema.teams.select()).mappings().one()["size"]
    engine.dispose()
    assert size == 9


def test_commands_that_write_say_the_warehouse_refused_in_one_line(
    filled: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, 6)
    locked = ["--db", read_only(filled), "--config", config]
    capsys.readouterr()
    assert main(["gate", "--service", "checkout", *locked]) == 1
    err = capsys.readouterr().err
    assert err.startswith("poise: the warehouse refused to record the decision (")
    assert "the answer was 'ship'; answer with --dry-run" in err
    assert err.count("\n") == 1
    more = tmp_path / "more.csv"
    more.write_text(
        DEPLOYMENTS.splitlines()[0] + "\nd3,checkout,production,2026-07-03T10:00:00Z,success,x,\n",
        encoding="utf-8",
    )
    assert main(["import", str(more), "--kind", "deployments", *locked]) == 1
    err = capsys.readouterr().err
    assert err.startswith("poise: the warehouse refused to write: ")
    assert "Traceback" not in err and err.count("\n") == 1


@pytest.mark.postgres
def test_a_role_granted_select_only_reads_and_is_told_what_it_cannot_write(
    postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The usual set-up of a pipeline's gate or a reporting job on a shared PostgreSQL
    (SQLSTATE 42501 on the first write, where the session above got 25006)."""
    config = write_config(tmp_path, 6)
    deployments = tmp_path / "deployments.csv"
    deployments.write_text(DEPLOYMENTS, encoding="utf-8")
    assert main(["import", str(deployments), "--kind", "deployments", "--db", postgres_url,
                 "--config", config]) == 0  # fmt: skip
    base = postgres_base_url()
    assert base is not None
    role = f"poise_ro_{uuid.uuid4().hex[:8]}"
    schema_name = postgres_url.rsplit("search_path%3D", 1)[1]
    admin = create_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE ROLE {role} LOGIN"))
        connection.execute(text(f'GRANT USAGE ON SCHEMA "{schema_name}" TO {role}'))
        connection.execute(text(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema_name}" TO {role}'))
    reader = postgres_url.replace("//postgres@", f"//{role}@", 1)
    assert reader != postgres_url
    try:
        capsys.readouterr()
        document, err = scorecard(reader, config, capsys)
        assert err == "" and document["dora"]["deployment_frequency"]["deployments"] == 1
        document, err = scorecard(reader, write_config(tmp_path, 9), capsys)
        assert "permission denied for table teams" in err and err.startswith("poise: note: ")
        assert main(["gate", "--service", "checkout", "--db", reader, "--config", config]) == 1
        assert "refused to record the decision (permission denied" in capsys.readouterr().err
    finally:
        with admin.begin() as connection:
            connection.execute(
                text(f'REVOKE ALL ON ALL TABLES IN SCHEMA "{schema_name}" FROM {role}')
            )
            connection.execute(text(f'REVOKE ALL ON SCHEMA "{schema_name}" FROM {role}'))
            connection.execute(text(f"DROP ROLE {role}"))
        admin.dispose()


@pytest.mark.parametrize("page", sorted(PAGES))
def test_every_page_reads_a_warehouse_opened_read_only(
    page: str, dashboard_demo_url: str, use: Any
) -> None:
    use(read_only(dashboard_demo_url))
    at = run(page)
    assert_clean(at)
    assert at.title[0].value == PAGES[page]
    if page == "overview":
        assert metric(at, "Deploys per week").value not in ("", "—")
