"""`poise report`: export the quarterly report (PDF, HTML, XLSX, Markdown)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from poise.commands.common import (
    add_config_option,
    add_db_option,
    check_writable,
    open_context,
    write_file_atomically,
)
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
        help="pdf, html (one self-contained file), xlsx or md (default: from the suffix of "
        "--out, else pdf); must agree with that suffix",
    )
    parser.add_argument(
        "--out",
        metavar="PATH",
        help="file to write, ending in .pdf, .html (or .htm), .xlsx or .md, which sets the "
        "format; or an existing folder, to write the default name in it (default: "
        "poise-report-<quarter>[-<team>].<format> in the working folder)",
    )
    parser.add_argument(
        "--paper", choices=("a4", "letter"), default="a4", help="page size of the PDF (default a4)"
    )


def _suffixes() -> str:
    return ", ".join(SUFFIX_FORMATS)


def _format(args: argparse.Namespace) -> str:
    """The format, from --format and --out's suffix, which must not disagree: a report
    whose name promises one format and holds another opens as garbage (Markdown in a
    .pdf, a PDF named .docx)."""
    if not args.out or Path(args.out).is_dir():
        return str(args.format or "pdf")
    out = Path(args.out)
    suffix = out.suffix.lower()
    if not suffix:
        raise PoiseError(
            f"--out {out}: name a file ending in one of {_suffixes()}, or an existing folder"
        )
    if suffix not in SUFFIX_FORMATS:
        raise PoiseError(
            f"--out {out}: the report cannot be written as {suffix}; end the name in one of "
            f"{_suffixes()}"
        )
    implied = SUFFIX_FORMATS[suffix]
    if args.format and args.format != implied:
        raise PoiseError(
            f"--out {out} names a {implied} file but --format is {args.format}: name it "
            f"{out.with_suffix('.' + args.format)}, or leave --format out"
        )
    return implied


def run(args: argparse.Namespace) -> int:
    from metrics import Settings
    from reports import default_filename, render

    fmt = _format(args)
    target = Path(args.out) if args.out else Path(default_filename(args.quarter, args.team, fmt))
    if target.is_dir():
        target = target / default_filename(args.quarter, args.team, fmt)
    check_writable(target, option="--out ")  # before the render, which takes seconds
    started = time.perf_counter()
    with open_context(args, create=False) as context:
        data = render(
            context.engine,
            args.quarter,
            fmt=fmt,
            team=args.team,
            settings=Settings.from_config(context.config),
            paper=args.paper,
            rule=context.config.anomalies,
        )
    write_file_atomically(target, data, option="--out ")
    seconds = time.perf_counter() - started
    out.print(
        f"wrote {target} ({fmt}, {len(data) / 1024:,.0f} KiB) in {seconds:.1f} s", markup=False
    )
    return 0
