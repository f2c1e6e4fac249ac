"""Options and set-up shared by the subcommands that touch the warehouse or the config."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from sqlalchemy import Engine

from poise.catalog import apply_config
from poise.config import PoiseConfig, load_config
from poise.warehouse import open_warehouse, resolve_url


def add_db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        metavar="URL",
        help="SQLAlchemy URL of the warehouse (default: $POISE_DATABASE_URL, the config's "
        "`database`, or sqlite:///data/poise.db)",
    )


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="configuration file (default: $POISE_CONFIG or ./poise.yaml)",
    )


@dataclass
class Context:
    config: PoiseConfig
    engine: Engine
    url: str


def open_context(args: argparse.Namespace, *, apply: bool = True) -> Context:
    """Load the config, open (and migrate) the warehouse, and write the config's catalog."""
    config = load_config(getattr(args, "config", None))
    url = resolve_url(getattr(args, "db", None), config.database)
    engine = open_warehouse(url)
    if apply:
        apply_config(engine, config)
    return Context(config=config, engine=engine, url=url)
