"""The appendix takes its definitions from docs/metrics.md and the engine's tier table."""

from __future__ import annotations

from pathlib import Path

from metrics import Settings
from reports.definitions import documented, tier_bands


def test_each_section_opening_paragraph_is_a_definition(tmp_path: Path) -> None:
    doc = tmp_path / "metrics.md"
    doc.write_text(
        "# Metrics\n\nIntro that is no definition.\n\n"
        "## Deployment frequency\n\nThe **production** deployments with `deployed_at`\n"
        "in the period ([contract](x.md)).\n\nA second paragraph is an example.\n\n"
        "```\n## not a heading\n```\n"
        "### Change lead time\n\n| a | table |\n|---|---|\n\nFrom commit to first deployment.\n\n"
        "## Contents\n\n- a list\n",
        encoding="utf-8",
    )
    items = documented(doc)
    assert [(item.term, item.text) for item in items] == [
        (
            "Deployment frequency",
            "The production deployments with deployed_at in the period (contract).",
        ),
        ("Change lead time", "From commit to first deployment."),
    ]  # not the title, not examples, not code, not tables, not a contents list
    assert documented(tmp_path / "missing.md") == ()


def test_tier_bands_come_from_the_engine_table() -> None:
    bands = {item.term: item.text for item in tier_bands(Settings(benchmark_year=2023))}
    assert bands["Tiers of change fail rate (State of DevOps 2023)"] == (
        "Elite: at most 5 %; high: at most 10 %; medium: at most 15 %; low: anything else."
    )
    assert "fewer than 5 deployments" in bands["Insufficient data"]
    unknown = tier_bands(Settings(benchmark_year=1999))
    assert "not graded" in unknown[0].text
