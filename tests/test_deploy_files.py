"""The container image, compose.yaml and the Kubernetes CronJob, checked statically.

No Docker engine runs here (and CI has none), so nothing is built or started: these tests read
the files and hold them to what docs/deployment.md promises: a slim Python base, a non-root
user, a health check on Streamlit's /_stcore/health, no secret in the image or the manifests,
PostgreSQL with a volume, the dashboard and a 15-minute sync.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|API_KEY|_KEY)$|^PG?PASSWORD$", re.IGNORECASE)


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    joined = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")),
    )
    instructions = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            instructions.append((word.upper(), rest.strip()))
    return instructions


def test_dockerfile_slim_base_non_root_health_check_entrypoint() -> None:
    steps = dockerfile()
    assert steps[0] == ("FROM", "python:3.12-slim")
    users = [args for word, args in steps if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    last_user = max(i for i, (word, _) in enumerate(steps) if word == "USER")
    assert last_user > max(i for i, (word, _) in enumerate(steps) if word == "RUN")
    health = [args for word, args in steps if word == "HEALTHCHECK"]
    assert len(health) == 1 and "/_stcore/health" in health[0]
    assert ("ENTRYPOINT", '["poise"]') in steps
    cmd = next(args for word, args in steps if word == "CMD")
    assert '"ui"' in cmd and '"0.0.0.0"' in cmd
    runs = " ".join(args for word, args in steps if word == "RUN")
    assert "pip install -r requirements.lock" in runs and "pip install --no-deps ." in runs


def test_dockerfile_bakes_no_secret() -> None:
    for word, args in dockerfile():
        if word in ("ENV", "ARG"):
            for name in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", args) or [args.split()[0]]:
                assert not SECRET_NAME.search(name), f"{word} {name} in the Dockerfile"
        if word in ("COPY", "ADD"):
            assert "secrets.toml" not in args and ".env" not in shlex.split(args)


def ignored(path: str, patterns: list[str]) -> bool:
    verdict = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        bare = pattern.lstrip("!").removeprefix("**/")
        if fnmatch.fnmatch(path, bare) or fnmatch.fnmatch(path.split("/")[0], bare):
            verdict = not negate
    return verdict


def test_dockerignore_keeps_data_and_secrets_out_but_lets_the_app_in() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for kept_out in (
        ".git",
        ".venv",
        ".env",
        "data",
        "poise.yaml",
        "warehouse.db",
        ".streamlit/secrets.toml",
        "tests",
    ):
        assert ignored(kept_out, patterns), kept_out
    copied = [args.split()[0] for word, args in dockerfile() if word == "COPY"]
    for source in copied:
        assert not ignored(source.rstrip("/"), patterns), f"COPY {source} is in .dockerignore"
        assert (ROOT / source).exists(), f"COPY {source}: no such path"
    for package in ("poise", "collectors", "metrics", "dashboard", "reports", "app.py", "pages"):
        assert package in copied, f"the image misses {package}"


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))


def test_compose_postgres_dashboard_and_scheduled_sync() -> None:
    services = compose()["services"]
    assert set(services) >= {"db", "dashboard", "sync"}
    db = services["db"]
    assert db["image"].startswith("postgres:")
    assert any(volume.endswith(":/var/lib/postgresql/data") for volume in db["volumes"])
    assert "pgdata" in compose()["volumes"]
    assert "pg_isready" in db["healthcheck"]["test"]
    dashboard, sync = services["dashboard"], services["sync"]
    assert dashboard["command"][:3] == ["ui", "--address", "0.0.0.0"]
    assert any(port.endswith(":8501:8501") for port in dashboard["ports"])
    assert sync["command"] == ["sync", "--every", "15m"]
    assert sync["healthcheck"] == {"disable": True}
    for service in (dashboard, sync):
        assert service["depends_on"]["db"]["condition"] == "service_healthy"
        assert service["environment"]["POISE_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert make_url(service["environment"]["POISE_DATABASE_URL"]).password is None


def test_compose_passes_secrets_through_and_never_holds_one() -> None:
    for name, service in compose()["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key):
                assert isinstance(value, str) and re.fullmatch(
                    r"\$\{[A-Z_]+(:?[-?][^}]*)?\}", value
                ), f"{name}.{key} must come from the environment, not be written here"
                assert not re.search(r":-[^}]+\}", value), f"{name}.{key} has a default value"


def test_kubernetes_cronjob() -> None:
    job = yaml.safe_load((ROOT / "deploy/k8s/cronjob.yaml").read_text(encoding="utf-8"))
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "CronJob")
    spec = job["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert len(spec["schedule"].split()) == 5
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["args"] == ["sync"]
    assert any("secretRef" in source for source in container["envFrom"])
    for variable in container.get("env", []):
        assert not SECRET_NAME.search(variable["name"]) or "valueFrom" in variable
        if variable["name"] == "POISE_DATABASE_URL":
            assert make_url(variable["value"]).password is None
