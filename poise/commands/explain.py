"""`poise explain`: print the rows behind a figure and why each counts."""

from __future__ import annotations

import argparse

from poise.commands.common import add_config_option, add_db_option
from poise.errors import NotAvailableYet

NAME = "explain"
HELP = "print the rows behind a figure and why each counts"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_db_option(parser)
    add_config_option(parser)


def run(args: argparse.Namespace) -> int:
    raise NotAvailableYet("`poise explain` is not available yet (planned in issue #3)")
