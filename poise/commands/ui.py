"""`poise ui`: start the Streamlit dashboard."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from poise.commands.common import add_config_option, add_db_option
from poise.config import load_config
from poise.errors import PoiseError
from poise.warehouse import open_warehouse, redact, resolve_url

NAME = "ui"
HELP = "start the dashboard (Streamlit) on http://127.0.0.1:8501"

APP = Path(__file__).resolve().parents[2] / "app.py"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8501, help="port to listen on")
    parser.add_argument(
        "--address", default="127.0.0.1", help="address to listen on (default: loopback only)"
    )
    add_db_option(parser)
    add_config_option(parser)


def run(args: argparse.Namespace) -> int:
    if not APP.is_file():
        raise PoiseError(f"the dashboard app is missing: expected {APP}")
    config = load_config(args.config)
    url = resolve_url(args.db, config.database)
    open_warehouse(url).dispose()
    env = dict(os.environ, POISE_DATABASE_URL=url)
    if args.config:
        env["POISE_CONFIG"] = str(Path(args.config).resolve())
    print(
        f"Poise dashboard on http://{args.address}:{args.port} (warehouse {redact(url)})",
        file=sys.stderr,
    )
    command = [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", args.address,
        "--server.port", str(args.port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
    ]
    return subprocess.call(command, env=env)
