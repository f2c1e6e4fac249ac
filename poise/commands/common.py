"""Options and set-up shared by the subcommands that touch the warehouse or the config."""

from __future__ import annotations

import argparse
import os
import stat
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from poise.catalog import apply_config, apply_config_for_reading
from poise.config import PoiseConfig, load_config
from poise.errors import PoiseError
from poise.warehouse import open_warehouse, resolve_url
from poise.warehouse.engine import url_origin


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
    """What a command works with; `with open_context(...) as context:` closes the
    warehouse's connections when the command is done (a process running several commands,
    a test, would otherwise keep them open until they are collected)."""

    config: PoiseConfig
    engine: Engine
    url: str

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.engine.dispose()


def open_context(
    args: argparse.Namespace,
    *,
    apply: bool = True,
    create: bool = True,
    notes: Callable[[str], None] | None = None,
) -> Context:
    """Load the config, open (and migrate) the warehouse, and write the config's catalog.

    `create=False` for commands that only read the warehouse (see `poise.warehouse.open_warehouse`):
    they write the catalog only where it differs from the stored one, and read a warehouse
    that refuses writes as it is, with a note (`poise.catalog.apply_config_for_reading`).
    `notes` hears what reading the SLO files left out or assumed (`poise sync` prints them).
    """
    config = load_config(getattr(args, "config", None))
    explicit = getattr(args, "db", None)
    url = resolve_url(explicit, config.database)
    engine = open_warehouse(
        url, create=create, origin=url_origin(explicit, config.database, config.origin)
    )
    try:
        if apply and create:
            apply_config(engine, config, notes=notes)
        elif apply:
            apply_config_for_reading(engine, config, warn=note)
    except BaseException:
        engine.dispose()
        raise
    return Context(config=config, engine=engine, url=url)


def note(text: str) -> None:
    """One `poise: note: …` line on stderr: said, and the command goes on."""
    print(f"poise: note: {text}", file=sys.stderr)


def write_error(option: str, path: Path, exc: OSError) -> PoiseError:
    """`--out r.md: cannot write: Permission denied`: the reason without the errno and
    without the name of any temporary file the write went through."""
    return PoiseError(f"{option}{path}: cannot write: {exc.strerror or exc}")


def _check_target(path: Path, option: str) -> None:
    if path.is_dir():
        raise PoiseError(f"{option}{path} is a folder: name a file")
    if not path.parent.is_dir():
        raise PoiseError(f"{option}{path}: folder {path.parent} does not exist")


def _temporary_beside(path: Path, option: str) -> tuple[int, str]:
    """A new temporary file in `path`'s folder (where a rename into place is atomic)."""
    _check_target(path, option)
    try:
        return tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise write_error(option, path, exc) from None


def check_writable(path: Path, *, option: str = "") -> None:
    """Fail now, with the reason, when `path` cannot be written: before a slow render or a
    long build, not after it. Creates and removes a temporary file beside it."""
    handle, temporary = _temporary_beside(path, option)
    os.close(handle)
    Path(temporary).unlink(missing_ok=True)


def _mode_for(path: Path) -> int:
    """The permissions `open()` would have given: mkstemp makes its file private (0600),
    which would hide a report or a config from the other users meant to read it. An
    existing file keeps its own mode."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
        os.umask(mask)
        return 0o666 & ~mask


def write_file_atomically(path: Path, data: bytes | str, *, option: str = "") -> None:
    """Write `data` beside `path` and rename it into place, so a failed write never leaves
    half a file (nor removes the one that was there). `option` (`"--out "`) prefixes the
    message of a failure."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    handle, temporary = _temporary_beside(path, option)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
        os.chmod(temporary, _mode_for(path))
        os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise write_error(option, path, exc) from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
