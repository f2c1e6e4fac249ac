"""The appendix takes its definitions from the engine's glossary and tier table."""

from __future__ import annotations

from metrics import Settings
from metrics.glossary import TERMS, help_text
from reports.definitions import definitions, tier_bands


def test_every_glossary_entry_is_a_definition() -> None:
    items = {item.term: item.text for item in definitions(Settings())}
    for key, entry in TERMS.items():
        assert items[entry.label] == help_text(key), key


def test_tier_bands_come_from_the_engine_table() -> None:
    bands = {item.term: item.text for item in tier_bands(Settings(benchmark_year=2023))}
    assert bands["Tiers of change fail rate (State of DevOps 2023)"] == (
        "Elite: at most 5 %; high: at most 10 %; medium: at most 15 %; low: anything else."
    )
    assert "fewer than 5 deployments" in bands["Insufficient data"]
    unknown = tier_bands(Settings(benchmark_year=1999))
    assert "not graded" in unknown[0].text
