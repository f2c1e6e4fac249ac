"""`poise demo`: build the deterministic demo organisation."""

from __future__ import annotations

import argparse

from poise.commands.common import add_db_option
from poise.errors import NotAvailableYet

NAME = "demo"
HELP = "build a deterministic demo warehouse (6 teams, 15 services, two years)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_db_option(parser)
    parser.add_argument("--seed", type=int, default=7, help="random seed (same seed, same rows)")


def run(args: argparse.Namespace) -> int:
    raise NotAvailableYet("`poise demo` is being built")
