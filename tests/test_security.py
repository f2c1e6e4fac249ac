"""Security checks: no HTML sink for untrusted text, no SQL built from values, secrets only
from the environment and never written anywhere, and known vulnerabilities in the locked
dependencies (pip-audit, when PyPI's vulnerability data can be reached).

Hostile team, service and incident strings rendered by every page are tested in
tests/test_pages.py (`test_hostile_strings_are_shown_as_text`); here the sinks themselves.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from incident_fakes import FakePagerDuty
from replay import ReplayServer, Reply
from sqlalchemy import create_engine, inspect, text

from poise.cli import main
from poise.config import load_config
from poise.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("poise", "metrics", "dashboard", "collectors", "reports", "pages", "app.py")

# --- HTML ---------------------------------------------------------------------------------------

HTML_SINKS = re.compile(
    r"unsafe_allow_html\s*=\s*True|\bst\.html\(|components\.v1|\.components\.html\("
)


def python_files() -> list[Path]:
    files: list[Path] = []
    for name in SCANNED:
        path = ROOT / name
        files += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return files


def test_no_page_or_component_renders_raw_html() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in python_files()
        if path.parts[-2] in ("pages", "dashboard") or path.name == "app.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if HTML_SINKS.search(line) and not line.lstrip().startswith("#")
    ]
    assert not found, "raw HTML sinks in the dashboard:\n" + "\n".join(found)


# --- SQL ----------------------------------------------------------------------------------------

SQL_CALLS = {"text", "exec_driver_sql", "execute", "executemany", "literal_column"}

# SQL assembled from code, never from a value: each place and why it is safe. A new place
# that builds SQL from a string must be added here with its reason, or use parameters.
ALLOWED_DYNAMIC_SQL = {
    ("poise/warehouse/upsert.py", "*"): "table and column names from schema.metadata, quoted "
    "by the dialect's identifier preparer; values go as parameters",
    ("poise/importer.py", "_bulk_cache"): "PRAGMA cache_size of an integer constant",
    ("poise/importer.py", "_insert_refs"): "placeholders only ({mark}); values are parameters",
    ("poise/importer.py", "_missing_ref"): "table/column from schema.metadata; `name` is the "
    "importer's own reference kind (a code constant), not file content",
    ("metrics/sli.py", "hourly_rows"): "a run of placeholder terms; values are parameters",
    ("poise/warehouse/engine.py", "refresh_planner_statistics"): "ANALYZE of tables from "
    "schema.metadata, quoted by the dialect's identifier preparer (it takes no parameters)",
    ("poise/warehouse/engine.py", "_sqlite_pragmas"): "PRAGMA page_size of an integer "
    "constant (PRAGMAs take no parameters)",
}


def _dynamic(node: ast.AST) -> bool:
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(part, ast.FormattedValue) for part in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
        return not (isinstance(node.left, ast.Constant) and isinstance(node.right, ast.Constant))
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("format", "join")
    )


def _sql_call(node: ast.Call) -> bool:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id in SQL_CALLS
    if isinstance(func, ast.Attribute) and func.attr in SQL_CALLS:
        # st.text / bar.text write to the page, not to a database
        owner = func.value.id if isinstance(func.value, ast.Name) else ""
        return not (func.attr == "text" and owner not in ("sa", "sqlalchemy"))
    return False


class _SqlFinder(ast.NodeVisitor):
    def __init__(self, file: str) -> None:
        self.file = file
        self.functions = ["<module>"]
        self.found: list[tuple[str, str, int, str]] = []

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self.functions.append(node.name)
        self.generic_visit(node)
        self.functions.pop()

    def visit_Call(self, node: ast.Call) -> None:
        if _sql_call(node) and node.args and _dynamic(node.args[0]):
            source = ast.unparse(node.args[0])[:80]
            self.found.append((self.file, self.functions[-1], node.lineno, source))
        self.generic_visit(node)


def dynamic_sql() -> list[tuple[str, str, int, str]]:
    """(file, innermost function, line, source) of every SQL call given a built string."""
    found = []
    for path in python_files():
        finder = _SqlFinder(str(path.relative_to(ROOT)))
        finder.visit(ast.parse(path.read_text(encoding="utf-8")))
        found += finder.found
    return found


def test_the_scan_finds_sql_built_from_a_value(tmp_path: Path) -> None:
    # the checker itself: an f-string into text() is caught, a parameter is not
    tree = ast.parse(
        "def f(c, team):\n"
        "    c.execute(text(f\"SELECT * FROM teams WHERE name = '{team}'\"))\n"
        "    c.execute(text('SELECT * FROM teams WHERE name = :t'), {'t': team})\n"
        "    st.text(f'{team}')\n"
    )
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and _sql_call(n) and n.args]
    assert [ast.unparse(c.args[0])[:6] for c in calls if _dynamic(c.args[0])] == ['f"SELE']


def test_no_sql_is_built_from_values() -> None:
    unexplained = [
        f"{file}:{line} in {function}(): {source}"
        for file, function, line, source in dynamic_sql()
        if (file, function) not in ALLOWED_DYNAMIC_SQL and (file, "*") not in ALLOWED_DYNAMIC_SQL
    ]
    assert not unexplained, (
        "SQL built from a string; use bound parameters, or add the place with its reason to "
        "ALLOWED_DYNAMIC_SQL:\n" + "\n".join(unexplained)
    )


QUOTED_TEAM = 'O\'Brien "ops"; DROP TABLE teams;--'
QUOTED_SERVICE = "pay'ments"


def test_filters_are_parameters_a_quote_in_a_name_works(
    warehouse_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    services = tmp_path / "services.csv"
    services.write_text(
        f'name,team\n"{QUOTED_SERVICE}","{QUOTED_TEAM.replace(chr(34), chr(34) * 2)}"\n',
        encoding="utf-8",
    )
    deployments = tmp_path / "deployments.csv"
    deployments.write_text(
        "id,service,environment,deployed_at,status,sha,change_ids,rollback_of\n"
        f'd1,"{QUOTED_SERVICE}",production,2026-09-02T10:00:00Z,success,,,\n'
        f'd2,"{QUOTED_SERVICE}",production,2026-09-03T10:00:00Z,success,,,d1\n',
        encoding="utf-8",
    )
    db = ["--db", warehouse_url]
    assert main(["import", "--kind", "services", str(services), *db]) == 0
    assert main(["import", "--kind", "deployments", str(deployments), *db]) == 0
    capsys.readouterr()
    period = ["--from", "2026-09-01", "--to", "2026-10-01", "--format", "json"]
    assert main(["metrics", *db, *period, "--team", QUOTED_TEAM]) == 0
    by_team = json.loads(capsys.readouterr().out)
    assert by_team["scope"]["team"] == QUOTED_TEAM
    assert by_team["dora"]["change_failure_rate"]["deployments"] == 2
    assert main(["metrics", *db, *period, "--service", QUOTED_SERVICE]) == 0
    assert json.loads(capsys.readouterr().out)["dora"]["change_failure_rate"]["failed"] == 1

    # the dashboard's query layer, below its cache
    from dashboard import data
    from dashboard.data import Query, Warehouse
    from metrics import Settings

    engine = create_engine(warehouse_url)
    try:
        warehouse = Warehouse(
            engine, Settings(), basis_of=lambda q: data.compute_basis(engine, Settings(), q)
        )
        query = Query(
            datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC), QUOTED_TEAM, None
        )
        card = data.scorecard(warehouse, query)
        assert card["dora"]["change_failure_rate"]["deployments"] == 2
        assert inspect(engine).has_table("teams")  # nothing was dropped
    finally:
        engine.dispose()


# --- secrets ------------------------------------------------------------------------------------

TOKEN = "pd-SECURITY-t0ken-7f3c9a1e-must-not-leak"


def test_a_token_in_the_config_file_is_refused_without_echoing_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "poise.yaml"
    config.write_text(
        yaml.safe_dump({"sources": {"pagerduty": {"token": TOKEN}}}), encoding="utf-8"
    )
    with pytest.raises(ConfigError) as refused:
        load_config(str(config))
    assert "sources.pagerduty.token: secrets do not belong in the config file" in str(refused.value)
    assert "token_env" in str(refused.value)
    assert main(["sync", "--config", str(config), "--db", "sqlite://"]) == 1
    err = capsys.readouterr().err
    assert "secrets do not belong in the config file" in err and TOKEN not in err


def _grep_database(url: str, secret: str) -> list[str]:
    """Every table whose rows, as text, hold the secret (both engines)."""
    engine = create_engine(url)
    hits = []
    try:
        with engine.connect() as connection:
            for table in inspect(engine).get_table_names():
                quoted = engine.dialect.identifier_preparer.quote(table)
                if engine.dialect.name == "postgresql":
                    rows = connection.execute(text(f"SELECT t::text FROM {quoted} t"))
                else:
                    rows = connection.execute(text(f"SELECT * FROM {quoted}"))
                if any(secret in str(tuple(row)) for row in rows):
                    hits.append(table)
    finally:
        engine.dispose()
    return hits


@pytest.mark.slow
def test_the_token_is_nowhere_in_the_warehouse_logs_or_reports(
    warehouse_url: str, replay_server: ReplayServer, tmp_path: Path
) -> None:
    fake = FakePagerDuty(replay_server)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    fake.incident(
        "QSEC0000000001",
        1,
        service="PSEC001",
        created=now - timedelta(days=3),
        acknowledged=now - timedelta(days=3) + timedelta(minutes=4),
        resolved=now - timedelta(days=3) + timedelta(hours=2),
    )
    # A second service whose requests fail: error messages and retries are logged too.
    replay_server.add(
        "/incidents",
        Reply(401, {"error": {"message": f"Unauthorized token {TOKEN}", "code": 2006}}),
        query={"service_ids[]": "PSEC002"},
    )
    config = tmp_path / "poise.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "teams": [{"name": "payments"}],
                "services": [
                    {
                        "name": "checkout",
                        "team": "payments",
                        "pagerduty": {"service_id": "PSEC001"},
                    },
                    {"name": "ledger", "team": "payments", "pagerduty": {"service_id": "PSEC002"}},
                ],
                "sources": {
                    "pagerduty": {
                        "base_url": replay_server.base_url,
                        "token_env": "SECURITY_TEST_PD_TOKEN",
                        "since": (now - timedelta(days=20)).strftime("%Y-%m-%d"),
                        "max_retries": 1,
                    }
                },
            }
        ),
        encoding="utf-8",
    )
    env = dict(os.environ, SECURITY_TEST_PD_TOKEN=TOKEN, COLUMNS="200")
    env.pop("POISE_DATABASE_URL", None)
    common = ["--config", str(config), "--db", warehouse_url]
    logs = tmp_path / "logs"
    logs.mkdir()
    quarter = f"{now.year}Q{(now.month - 1) // 3 + 1}"
    runs = [
        ["sync", "--debug", *common],
        ["metrics", "--format", "json", *common],
        ["report", "--quarter", quarter, "--format", "html", "--out", str(tmp_path / "r.html"), *common],
        ["report", "--quarter", quarter, "--format", "md", "--out", str(tmp_path / "r.md"), *common],
    ]  # fmt: skip
    for number, args in enumerate(runs):
        done = subprocess.run(
            [sys.executable, "-m", "poise.cli", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        (logs / f"{number}.out").write_text(done.stdout + done.stderr, encoding="utf-8")
        if args[0] != "sync":
            assert done.returncode == 0, done.stderr
    first_sync = (logs / "0.out").read_text(encoding="utf-8")
    assert "token expired or invalid" in first_sync, first_sync  # the failing path ran
    assert any(r.header("Authorization") == f"Token token={TOKEN}" for r in replay_server.requests)

    leaks = [
        str(path.relative_to(tmp_path))
        for path in tmp_path.rglob("*")
        if path.is_file() and TOKEN.encode() in path.read_bytes()
    ]
    assert not leaks, f"the token is written in {leaks}"
    assert not _grep_database(warehouse_url, TOKEN)
    for name in ("r.html", "r.md"):
        assert (tmp_path / name).stat().st_size > 0
    stored = _grep_database(warehouse_url, "Unauthorized token")
    assert stored in ([], ["sync_state"])  # the error may be kept, its secret masked


# --- dependencies -------------------------------------------------------------------------------


def locked() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"requirements.lock: {line!r} is not pinned with =="
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def test_the_lock_pins_every_runtime_dependency() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pins = locked()
    for requirement in project["dependencies"]:
        name = re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0]
        assert re.sub(r"[-_.]+", "-", name).lower() in pins, f"{name} is not in requirements.lock"


def test_pip_audit_over_the_lock() -> None:
    """Known vulnerabilities in the locked versions. PyPI's per-version JSON API (the data
    pip-audit reads) is not reachable from every network: where it answers 'not found' for
    the packages, the audit cannot say anything and the test skips, saying so."""
    done = subprocess.run(
        [
            sys.executable, "-m", "pip_audit", "--requirement", str(ROOT / "requirements.lock"),
            "--no-deps", "--disable-pip", "--progress-spinner", "off", "--format", "json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    unreachable = re.findall(r"Dependency not found on PyPI", done.stderr + done.stdout)
    if len(unreachable) >= len(locked()) // 2:
        pytest.skip(
            "PyPI's vulnerability data (https://pypi.org/pypi/<name>/<version>/json) does not "
            "answer from this network, so pip-audit cannot audit; run `make audit` where it does"
        )
    report = json.loads(done.stdout)
    vulnerable = [
        f"{dep['name']} {dep['version']}: {', '.join(v['id'] for v in dep['vulns'])}"
        for dep in report["dependencies"]
        if dep.get("vulns")
    ]
    assert not vulnerable, "known vulnerabilities in requirements.lock:\n" + "\n".join(vulnerable)
