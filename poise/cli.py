"""The `poise` command: one subcommand per module in `poise.commands`.

Exit codes: 0 success, 1 failure (one clear line on stderr), 2 usage error.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from types import ModuleType

from sqlalchemy.exc import OperationalError

from poise import __version__
from poise.commands import demo, explain, gate, import_, init, metrics, migrate_db, report, sync, ui
from poise.console import err
from poise.errors import PoiseError

COMMANDS: tuple[ModuleType, ...] = (
    init,
    demo,
    import_,
    sync,
    metrics,
    explain,
    gate,
    report,
    migrate_db,
    ui,
)


def build_parser() -> argparse.ArgumentParser:
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
    for module in COMMANDS:
        sub = subparsers.add_parser(
            module.NAME, help=module.HELP, description=module.HELP, parents=[shared]
        )
        module.add_arguments(sub)
        sub.set_defaults(handler=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
