"""Errors a person can act on.

Anything raised as a `PoiseError` is printed as one line (`poise: <message>`) and exits 1;
anything else is a bug and shows a traceback only with `--debug`.
"""

from __future__ import annotations


class PoiseError(Exception):
    """A user-facing failure with a one-line message that says what and where."""


class ConfigError(PoiseError):
    """The configuration file is missing, malformed or inconsistent."""


class ImportFileError(PoiseError):
    """An import file was rejected; nothing of it was written."""


class DatabaseUnavailable(PoiseError):
    """The warehouse cannot be reached."""


class MissingWarehouse(PoiseError):
    """A command that only reads was pointed at a SQLite file that does not exist (a typo
    must not become a new, empty warehouse)."""


class NotAvailableYet(PoiseError):
    """A capability that is planned but not built yet."""


def internal_error(exc: BaseException) -> str:
    """The line a bug gets (without `poise: `), saying how to see more."""
    return (
        f"internal error: {type(exc).__name__}: {exc} "
        "(run with --debug for the traceback, and please report it)"
    )
