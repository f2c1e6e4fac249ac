"""The `poise` command: one subcommand per module in `poise.commands`.

Exit codes: 0 success, 1 failure (one clear line on stderr), 2 usage error.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence
from types import ModuleType

from sqlalchemy.exc import OperationalError

from poise import __version__
from poise.console import err
from poise.errors import PoiseError

# Subcommand name -> module. Modules are imported only when needed: most pull in pandas
# and the metrics engine, and `poise gate` in a pipeline should not pay for the others.
COMMANDS: dict[str, str] = {
    "init": "poise.commands.init",
    "demo": "poise.commands.demo",
    "import": "poise.commands.import_",
    "sync": "poise.commands.sync",
    "metrics": "poise.commands.metrics",
    "explain": "poise.commands.explain",
    "gate": "poise.commands.gate",
    "report": "poise.commands.report",
    "migrate-db": "poise.commands.migrate_db",
    "ui": "poise.commands.ui",
}


def _requested(argv: Sequence[str]) -> str | None:
    """The subcommand named on the command line, if any (the first non-option word)."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def command_module(name: str) -> ModuleType:
    return importlib.import_module(COMMANDS[name])


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with `only`, just that subcommand's module is imported and wired."""
    parser = argparse.ArgumentParser(
        prog="poise",
        description="Poise: DORA delivery figures beside SLOs, error budgets and incidents.",
    )
    parser.add_argument("--version", action="version", version=f"poise {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in [only] if only else COMMANDS:
        module = command_module(name)
        sub = subparsers.add_parser(
            module.NAME, help=module.HELP, description=module.HELP, parents=[shared]
        )
        module.add_arguments(sub)
        sub.set_defaults(handler=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if words and words[0] == "--version":
        print(f"poise {__version__}")
        return 0
    parser = build_parser(_requested(words))
    args = parser.parse_args(words)
    try:
        return int(args.handler(args) or 0)
    except PoiseError as exc:
        if args.debug:
            traceback.print_exc()
        err.print(f"poise: {exc}", markup=False)
        return 1
    except OperationalError as exc:
        if args.debug:
            traceback.print_exc()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        err.print(f"poise: database unavailable: {reason}", markup=False)
        return 1
    except KeyboardInterrupt:
        err.print("poise: interrupted", markup=False)
        return 130
    except Exception as exc:  # a bug, not a user mistake: say so, and how to see more
        if args.debug:
            traceback.print_exc()
        else:
            err.print(
                f"poise: internal error: {type(exc).__name__}: {exc} "
                "(run with --debug for the traceback, and please report it)",
                markup=False,
            )
        return 1


if __name__ == "__main__":
    sys.exit(main())
