"""`poise init`: write a commented starter configuration."""

from __future__ import annotations

import argparse
from importlib.resources import files
from pathlib import Path

from poise.commands.common import write_file_atomically
from poise.console import err
from poise.errors import PoiseError

NAME = "init"
HELP = "write a commented starter poise.yaml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default="poise.yaml", help="where to write it")
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")


def starter_text() -> str:
    return files("poise").joinpath("templates/poise.yaml").read_text(encoding="utf-8")


def run(args: argparse.Namespace) -> int:
    target = Path(args.path)
    if target.is_dir():  # before --force: no flag turns a folder into a file
        raise PoiseError(
            f"{target} is a folder: name the file to write, e.g. {target / 'poise.yaml'}"
        )
    if target.is_symlink():
        # Written through, as an editor saves a linked file (a dotfiles repository keeps the
        # real one): replacing the link by a file would silently cut it off.
        try:
            real = target.resolve(strict=True)
        except (OSError, RuntimeError):  # dangling, or a loop of links
            raise PoiseError(f"{target} is a link to nothing: name a file to write") from None
        if not real.is_file():
            raise PoiseError(
                f"{target} links to {real}, which is not a regular file: name a file to write"
            )
    elif target.exists() and not target.is_file():
        # A FIFO, a socket, a device (/dev/null): --force would replace it with a file.
        raise PoiseError(f"{target} is not a regular file: name a file to write")
    if target.exists() and not args.force:
        raise PoiseError(f"{target} already exists (use --force to overwrite it)")
    if target.is_symlink():
        target = target.resolve()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PoiseError(
            f"{target}: cannot create the folder {target.parent}: {exc.strerror or exc}"
        ) from None
    # Atomically: a failed --force never leaves the old configuration half overwritten.
    write_file_atomically(target, starter_text())
    err.print(f"wrote {target}: edit it, then run `poise sync`", markup=False)
    return 0
