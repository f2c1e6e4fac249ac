"""`poise metrics`: print the scorecard: DORA, incidents, SLOs, attribution (table, JSON or CSV)."""

from __future__ import annotations

import argparse

from poise.commands.common import add_config_option, add_db_option
from poise.errors import NotAvailableYet

NAME = "metrics"
HELP = "print the scorecard: DORA, incidents, SLOs, attribution (table, JSON or CSV)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_db_option(parser)
    add_config_option(parser)


def run(args: argparse.Namespace) -> int:
    raise NotAvailableYet("`poise metrics` is not available yet (planned in issue #3)")
