"""Collectors: one module per source, registered here by name.

`poise sync` runs the sources in this order; a new collector adds one line.
"""

from __future__ import annotations

from collectors.base import Source

SOURCES: dict[str, type[Source]] = {}

__all__ = ["SOURCES", "Source"]
