"""What a page lists beside a figure: titles, authors, links, pull-request times.

The frames carry only what the figures need. Listing the changes behind a lead time or
the incidents behind a recovery time also wants their descriptive columns; they are read
here for given ids (`frames.read_by_id`). `lead_time_stages` splits each change's lead time at
its pull request's opening and merge, where those times are known.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd
from sqlalchemy import Connection

from metrics.frames import read_by_id
from metrics.stats import quantile
from poise.warehouse import schema

CHANGE_COLUMNS = ["id", "title", "author", "pr_number", "opened_at", "first_review_at", "merged_at"]
INCIDENT_COLUMNS = ["id", "status", "postmortem_url", "url"]
# each stage of a lead time and the times it runs between
STAGE_SPANS = {
    "coding_hours": ("committed_at", "opened_at"),
    "review_hours": ("opened_at", "merged_at"),
    "before_merge_hours": ("committed_at", "merged_at"),
    "waiting_hours": ("merged_at", "deployed_at"),
}
STAGES = tuple(STAGE_SPANS)


def change_details(connection: Connection, ids: Iterable[Any]) -> pd.DataFrame:
    """`id, title, author, pr_number, opened_at, first_review_at, merged_at` per change."""
    return read_by_id(
        connection,
        schema.changes,
        ids,
        CHANGE_COLUMNS,
        times=("opened_at", "first_review_at", "merged_at"),
    )


def incident_details(connection: Connection, ids: Iterable[Any]) -> pd.DataFrame:
    """`id, status, postmortem_url, url` per incident."""
    return read_by_id(connection, schema.incidents, ids, INCIDENT_COLUMNS)


def _hours(later: pd.Series, earlier: pd.Series) -> pd.Series:
    """later − earlier in hours; NaN where either is unknown or the order is reversed."""
    values = (later - earlier).dt.total_seconds() / 3600.0
    return values.where(values >= 0)


def lead_time_stages(changes: pd.DataFrame, details: pd.DataFrame) -> pd.DataFrame:
    """Each counted change's lead time split at its pull request (hours):

    - `coding_hours`: committed_at → opened_at
    - `review_hours`: opened_at → merged_at
    - `before_merge_hours`: committed_at → merged_at (coding and review together)
    - `waiting_hours`: merged_at → deployed_at (its first production deployment)

    `changes` is the frame of changes first deployed in the period (`change_id`,
    `committed_at`, `deployed_at`, `lead_hours`); only those whose lead time counts
    (> 0) are split. A stage is NaN where a time is missing or out of order.
    """
    counted = changes[changes["lead_hours"] > 0]
    merged = counted.merge(
        details.rename(columns={"id": "change_id"}), on="change_id", how="left"
    ).reset_index(drop=True)
    for column in ("opened_at", "merged_at"):
        merged[column] = pd.to_datetime(merged[column], utc=True)
    for stage, (start, end) in STAGE_SPANS.items():
        merged[stage] = _hours(merged[end], merged[start])
    return merged


def stage_summary(stages: pd.DataFrame) -> pd.DataFrame:
    """Per stage: the median and p90 hours, the number of changes it is known for, and
    `out_of_order`: changes with both its times known but the later one first (merged
    before the first commit, deployed before the merge), left out of the stage rather
    than counted as negative or zero."""
    rows = []
    for stage, (start, end) in STAGE_SPANS.items():
        values = stages[stage] if stage in stages.columns else pd.Series(dtype=float)
        clean = values.dropna().astype(float)
        reversed_ = (
            int((stages[end] < stages[start]).sum()) if {start, end} <= set(stages.columns) else 0
        )
        rows.append(
            {
                "stage": stage,
                "median_hours": quantile(clean, 0.5),
                "p90_hours": quantile(clean, 0.9),
                "changes": len(clean),
                "out_of_order": reversed_,
            }
        )
    return pd.DataFrame(rows)
