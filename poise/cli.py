"""The `poise` command: one subcommand per module in `poise.commands`.

Exit codes: 0 success, 1 failure (one clear line on stderr), 2 usage error, 141 (quietly)
when the reader of stdout went away, as after `poise metrics | head -1`.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import select
import sys
import traceback
from collections.abc import Sequence
from types import ModuleType

from sqlalchemy.exc import DBAPIError

from poise import __version__
from poise.console import err, out
from poise.errors import PoiseError, internal_error

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


# What a shell reports for a process that SIGPIPE ended (128 + 13), so `set -o pipefail`
# sees `poise metrics | head -1` as it sees `yes | head -1`.
EXIT_BROKEN_PIPE = 141


def _stdout_reader_gone() -> bool:
    """Whether stdout is a pipe whose reader has closed it (`| head -1` has what it wanted).

    A BrokenPipeError may as well come from a socket a command writes to (a collector's
    HTTP connection), which is a failure to report; only the closed stdout is the quiet
    Unix case. Linux and macOS flag the write end of such a pipe with POLLERR/POLLHUP.
    """
    try:
        descriptor = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # captured, replaced or closed: not a pipe
        return False
    if not hasattr(select, "poll"):  # Windows: no way to ask; stdout is the likely writer
        return True
    poller = select.poll()
    poller.register(descriptor, select.POLLOUT)
    return any(event & (select.POLLERR | select.POLLHUP) for _, event in poller.poll(0))


def _quiet_stdout() -> None:
    """Point stdout at /dev/null: Python flushes it again at exit, and a second
    BrokenPipeError there would print "Exception ignored …" after all."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, OSError, ValueError):
        pass


def _reraise_broken_pipe() -> None:
    """For rich's `Console.on_broken_pipe` (its documented hook), called inside its own
    `except BrokenPipeError`: rich's default exits 1, which would give table output another
    exit code than `print()`'s JSON; raising again sends both through `main`'s handler."""
    raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


def _internal_error(args: argparse.Namespace, exc: BaseException) -> int:
    """A bug, not a user mistake: say so, and how to see more."""
    if args.debug:
        traceback.print_exception(exc)
    else:
        err.print(f"poise: {internal_error(exc)}", markup=False)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if words and words[0] == "--version":
        print(f"poise {__version__}")
        return 0
    parser = build_parser(_requested(words))
    args = parser.parse_args(words)
    out.on_broken_pipe = _reraise_broken_pipe  # type: ignore[method-assign]
    try:
        code = int(args.handler(args) or 0)
        # Flushed here rather than at exit, so a reader that went away is seen below.
        sys.stdout.flush()
        return code
    except PoiseError as exc:
        if args.debug:
            traceback.print_exc()
        err.print(f"poise: {exc}", markup=False)
        return 1
    except DBAPIError as exc:
        from poise.warehouse.engine import database_failure  # only on this path: start-up

        failure = database_failure(exc)
        if failure is None:
            return _internal_error(args, exc)
        if args.debug:
            traceback.print_exc()
        err.print(f"poise: {failure}", markup=False)
        return 1
    except BrokenPipeError as exc:
        if not _stdout_reader_gone():
            return _internal_error(args, exc)
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        err.print("poise: interrupted", markup=False)
        return 130
    except Exception as exc:
        return _internal_error(args, exc)


if __name__ == "__main__":
    sys.exit(main())
