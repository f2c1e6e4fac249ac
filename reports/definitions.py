"""The appendix's definitions, from their one source: the engine's glossary.

Every entry of `metrics.glossary` (one short definition per figure, the summaries of
docs/metrics.md) becomes one definition, and the tier bands of the benchmark year in force
come from the engine's tier table (`metrics.tiers`). Nothing is restated here, so the report
cannot drift from the documented definitions.
"""

from __future__ import annotations

from metrics import Settings
from metrics.glossary import TERMS, help_text
from metrics.tiers import TABLES
from reports.model import Definition

FIGURE_NAMES = {
    "deployment_frequency": "deployment frequency",
    "lead_time": "change lead time",
    "change_failure_rate": "change fail rate",
    "recovery_time": "failed deployment recovery time",
}


def glossary() -> tuple[Definition, ...]:
    return tuple(Definition(entry.label, help_text(key)) for key, entry in TERMS.items())


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
    return [*glossary(), *tier_bands(settings)]
