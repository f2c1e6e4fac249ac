"""Text cut to a width: values for columns of bounded size, names written on charts."""

from __future__ import annotations

# The longest name written on a chart (an axis label, a legend, a card's note): a
# 200-character team or SLO name would squeeze the plot to a sliver. Tables, hovers and
# exported rows keep names whole.
LABEL_CHARS = 40


def cut(text: str, width: int = LABEL_CHARS) -> str:
    """`text` whole when it fits in `width` characters, else cut to fit and ending in "…"."""
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"
