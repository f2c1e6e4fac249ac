"""`poise sync`: collect from the configured sources (Git, GitHub, GitLab, Jenkins, PagerDuty, Opsgenie, Prometheus)."""

from __future__ import annotations

import argparse

from poise.commands.common import add_config_option, add_db_option
from poise.errors import NotAvailableYet

NAME = "sync"
HELP = "collect from the configured sources (Git, GitHub, GitLab, Jenkins, PagerDuty, Opsgenie, Prometheus)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_db_option(parser)
    add_config_option(parser)


def run(args: argparse.Namespace) -> int:
    raise NotAvailableYet("`poise sync` is not available yet (planned in issue #4)")
