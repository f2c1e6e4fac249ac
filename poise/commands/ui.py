"""`poise ui`: start the Streamlit dashboard.

Without sign-in configured (no `auth:` in poise.yaml) the dashboard shows every team to
whoever reaches it, so it listens on the loopback address only; another address is refused
unless `--insecure` (or POISE_UI_INSECURE=1) says that something else guards it (a container
port published on loopback, an authenticating proxy). With sign-in configured, the provider
settings and the secrets named by `auth.provider.*_env` are written, for Streamlit's
`st.login`, to a secrets file in a private temporary folder that is removed when the
dashboard stops: never into the repository, the working folder or the warehouse.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import FrameType

from poise.commands.common import add_config_option, add_db_option
from poise.config import AuthConfig, load_config, secret_from_env
from poise.errors import ConfigError, PoiseError
from poise.warehouse import open_warehouse, redact, resolve_url
from poise.warehouse.engine import url_origin

NAME = "ui"
HELP = "start the dashboard (Streamlit) on http://127.0.0.1:8501"
INSECURE_ENV = "POISE_UI_INSECURE"
MIN_COOKIE_SECRET = 32


def app_path() -> Path:
    """app.py of a source checkout (editable install), else of the working folder (image)."""
    for candidate in (Path(__file__).resolve().parents[2] / "app.py", Path.cwd() / "app.py"):
        if candidate.is_file():
            return candidate
    raise PoiseError(
        "the dashboard app is missing: run `poise ui` from the Poise source folder (app.py)"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8501, help="port to listen on")
    parser.add_argument(
        "--address",
        default="127.0.0.1",
        help="address to listen on (default: loopback only; another address needs sign-in "
        "configured, or --insecure)",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="listen on a non-loopback address without sign-in (something else must guard "
        f"it); also ${INSECURE_ENV}=1",
    )
    add_db_option(parser)
    add_config_option(parser)


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def check_address(address: str, auth: AuthConfig | None, insecure: bool) -> None:
    if auth is not None or insecure or is_loopback(address):
        return
    raise PoiseError(
        f"--address {address}: without sign-in anyone who reaches that address sees every "
        "team's figures; configure sign-in (auth: in poise.yaml, docs/deployment.md), or give "
        f"--insecure (or {INSECURE_ENV}=1) when something else guards the port"
    )


def _toml_string(value: str) -> str:
    # TOML basic strings share JSON's escapes for the characters that need one.
    return json.dumps(value)


def cookie_secret(auth: AuthConfig) -> str:
    """The secret that signs the sign-in cookie: long enough that it cannot be guessed
    (Streamlit itself only warns under 14 bytes)."""
    variable = auth.provider.cookie_secret_env
    value = secret_from_env(variable, what="auth.provider") or ""
    if len(value) < MIN_COOKIE_SECRET:
        raise ConfigError(
            f"auth.provider.cookie_secret_env: {variable} holds {len(value)} characters; the "
            f"secret that signs the sign-in cookie needs at least {MIN_COOKIE_SECRET} (a long "
            "random string, e.g. `openssl rand -hex 32`)"
        )
    return value


def secrets_toml(auth: AuthConfig) -> str:
    """Streamlit's `[auth]` section for st.login, secrets read from the environment."""
    provider = auth.provider
    values = {
        "redirect_uri": provider.redirect_uri,
        "cookie_secret": cookie_secret(auth),
        "client_id": provider.client_id,
        "client_secret": secret_from_env(provider.client_secret_env, what="auth.provider") or "",
        "server_metadata_url": provider.server_metadata_url,
    }
    lines = ["[auth]", *(f"{key} = {_toml_string(value)}" for key, value in values.items())]
    lines.append(f"client_kwargs = {{ scope = {_toml_string(provider.scope)} }}")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    app = app_path()
    config = load_config(args.config)
    insecure = args.insecure or os.environ.get(INSECURE_ENV, "") in ("1", "true", "yes")
    check_address(args.address, config.auth, insecure)
    # the secrets first: a missing or weak one stops here, before anything starts
    auth_secrets = secrets_toml(config.auth) if config.auth is not None else None
    url = resolve_url(args.db, config.database)
    # made if missing (the dashboard's first-run page says how to fill it); a wrong URL is
    # named by where it came from, as the other commands do
    open_warehouse(url, origin=url_origin(args.db, config.database, config.origin)).dispose()
    env = dict(os.environ, POISE_DATABASE_URL=url)
    if args.config:
        env["POISE_CONFIG"] = str(Path(args.config).resolve())
    access = (
        "sign-in required (OpenID Connect)"
        if config.auth
        else "no sign-in: loopback only"
        if is_loopback(args.address)
        else "no sign-in: --insecure"
    )
    print(
        f"Poise dashboard on http://{args.address}:{args.port} ({access}; warehouse {redact(url)})",
        file=sys.stderr,
        flush=True,
    )
    command = [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.address", args.address,
        "--server.port", str(args.port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="poise-ui-") as private:
        if auth_secrets is not None:
            secrets = Path(private) / "secrets.toml"
            descriptor = os.open(secrets, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(auth_secrets)
            command += ["--secrets.files", str(secrets)]
        return _serve(command, env)


def _serve(command: list[str], env: dict[str, str]) -> int:
    """Run Streamlit, passing SIGTERM/SIGINT on (a container stop), and wait for it."""
    child = subprocess.Popen(command, env=env)
    stopped: list[int] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        stopped.append(signum)
        if child.poll() is None:
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        code = child.wait()
        return 0 if stopped and code in (0, *(-sig for sig in stopped)) else code
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
