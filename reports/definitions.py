"""The appendix's definitions, taken from their one source: docs/metrics.md.

Each `##`/`###` heading of docs/metrics.md and the paragraph that opens it become one
definition, with Markdown markup removed; the tier bands come from the engine's own tier
table (`metrics.tiers`). Nothing is restated here, so the report cannot drift from the
documented definitions.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from metrics import Settings
from metrics.tiers import TABLES
from reports.model import Definition

METRICS_DOC = Path(__file__).resolve().parent.parent / "docs" / "metrics.md"
SKIPPED_HEADINGS = re.compile(
    r"(?i)^(contents|table of contents|public api|api|see also|examples?)$"
)
FIGURE_NAMES = {
    "deployment_frequency": "deployment frequency",
    "lead_time": "change lead time",
    "change_failure_rate": "change fail rate",
    "recovery_time": "failed deployment recovery time",
}


def _plain(text: str) -> str:
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)  # links keep their words
    text = re.sub(r"`([^`]*)`", r"\1", text)  # code keeps its underscores
    text = re.sub(r"\*{1,2}([^*]+)\*{1,2}", r"\1", text)
    text = re.sub(r"(?<!\w)_([^_]+)_(?!\w)", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


@cache
def documented(path: Path = METRICS_DOC) -> tuple[Definition, ...]:
    """(heading, opening paragraph) of every section of the metrics documentation."""
    if not path.exists():
        return ()
    found: list[Definition] = []
    heading: str | None = None
    paragraph: list[str] = []
    in_code = False

    def close() -> None:
        if heading and paragraph and not SKIPPED_HEADINGS.match(heading):
            found.append(Definition(heading, _plain(" ".join(paragraph))))

    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            continue
        match = re.match(r"^#{2,3}\s+(.*)$", line)
        if match:
            close()
            heading, paragraph = _plain(match.group(1)), []
            continue
        if heading is None:
            continue
        stripped = line.strip()
        if not stripped:
            if paragraph:
                close()
                heading = None  # only the opening paragraph of a section
            continue
        if stripped.startswith(("|", ">", "<!--")):
            continue
        paragraph.append(stripped)
    close()
    return tuple(found)


def tier_bands(settings: Settings) -> tuple[Definition, ...]:
    table = TABLES.get(settings.benchmark_year)
    if table is None:
        return (
            Definition(
                "Tiers",
                f"No tier table for benchmark year {settings.benchmark_year}: figures are not graded.",
            ),
        )
    items = []
    for key, name in FIGURE_NAMES.items():
        bands = getattr(table, key)
        text = "; ".join(f"{band.tier}: {band.text}" for band in bands)
        note = table.notes.get(key)
        text += "; low: anything else" + (f" ({note})" if note else "")
        items.append(
            Definition(
                f"Tiers of {name} (State of DevOps {table.year})", text[0].upper() + text[1:] + "."
            )
        )
    items.append(
        Definition(
            "Insufficient data",
            f"A figure resting on fewer than {settings.min_sample} deployments, changes or "
            "failures gets the tier “insufficient data” instead of a tier.",
        )
    )
    return tuple(items)


def definitions(settings: Settings) -> list[Definition]:
    items = list(documented())
    if not items:
        items.append(
            Definition(
                "Definitions",
                "The full definitions of every figure are in Poise's docs/metrics.md, which "
                "was not found beside this installation.",
            )
        )
    return items + list(tier_bands(settings))
