"""`poise report`: export the quarterly report (PDF, HTML, XLSX, Markdown)."""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from poise.commands.common import add_config_option, add_db_option, open_context
from poise.console import out
from poise.errors import PoiseError
from poise.timeutil import TimestampError, quarter_bounds

NAME = "report"
HELP = "export the quarterly report (PDF, HTML, XLSX, Markdown)"
FORMAT_CHOICES = ("pdf", "html", "xlsx", "md")
SUFFIX_FORMATS = {".pdf": "pdf", ".html": "html", ".htm": "html", ".xlsx": "xlsx", ".md": "md"}


def _quarter(text: str) -> str:
    try:
        quarter_bounds(text)
    except TimestampError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text.strip().upper().replace("-", "")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_db_option(parser)
    add_config_option(parser)
    parser.add_argument(
        "--quarter", required=True, type=_quarter, metavar="YYYYQN", help="e.g. 2026Q3 (UTC)"
    )
    parser.add_argument("--team", metavar="T", help="one team's report (other teams left out)")
    parser.add_argument(
        "--format",
        choices=FORMAT_CHOICES,
        help="pdf, html (one self-contained file), xlsx or md (default: from --out, else pdf)",
    )
    parser.add_argument(
        "--out",
        metavar="PATH",
        help="file to write (default: poise-report-<quarter>[-<team>].<ext>)",
    )
    parser.add_argument(
        "--paper", choices=("a4", "letter"), default="a4", help="page size of the PDF (default a4)"
    )


def _format(args: argparse.Namespace) -> str:
    if args.format:
        return str(args.format)
    if args.out:
        suffix = Path(args.out).suffix.lower()
        if suffix in SUFFIX_FORMATS:
            return SUFFIX_FORMATS[suffix]
    return "pdf"


def _check_folder(path: Path) -> None:
    """Fail before the (slow) rendering, not after it."""
    if not path.parent.is_dir():
        raise PoiseError(f"--out {path}: folder {path.parent} does not exist")


def _write_atomically(path: Path, data: bytes) -> None:
    """Write beside the target and rename, so a failed export never leaves half a file."""
    _check_folder(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise PoiseError(f"--out {path}: cannot write ({exc.strerror or exc})") from None


def run(args: argparse.Namespace) -> int:
    from metrics import Settings
    from reports import default_filename, render

    fmt = _format(args)
    target = Path(args.out) if args.out else Path(default_filename(args.quarter, args.team, fmt))
    if target.is_dir():
        target = target / default_filename(args.quarter, args.team, fmt)
    _check_folder(target)
    context = open_context(args)
    started = time.perf_counter()
    data = render(
        context.engine,
        args.quarter,
        fmt=fmt,
        team=args.team,
        settings=Settings.from_config(context.config),
        paper=args.paper,
        rule=context.config.anomalies,
    )
    _write_atomically(target, data)
    seconds = time.perf_counter() - started
    out.print(
        f"wrote {target} ({fmt}, {len(data) / 1024:,.0f} KiB) in {seconds:.1f} s", markup=False
    )
    return 0
