"""`poise report`: export the quarterly report (PDF, HTML, XLSX, Markdown)."""

from __future__ import annotations

import argparse

from poise.commands.common import add_config_option, add_db_option
from poise.errors import NotAvailableYet

NAME = "report"
HELP = "export the quarterly report (PDF, HTML, XLSX, Markdown)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_db_option(parser)
    add_config_option(parser)


def run(args: argparse.Namespace) -> int:
    raise NotAvailableYet("`poise report` is not available yet (planned in issue #7)")
