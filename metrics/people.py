"""People: toil against team capacity, and on-call load.

Toil share = toil hours / (team size × hours per week × weeks in the period), against the
configured cap (50 % by default, as the SRE book puts it). Teams without a size cannot be
weighed: their toil is left out of the share and the team is listed. On-call load = pages
per week and the share of them that came after hours.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from metrics.model import Period, Settings
from metrics.stats import group_counts, group_sizes, ratio


@dataclass(frozen=True)
class Capacity:
    """The people a group's toil is weighed against."""

    teams: tuple[str, ...]  # teams with a size
    people: float
    unsized: tuple[str, ...]
    owner: str | None = None  # set when a service's figures are its owning team's

    @classmethod
    def of(cls, teams: pd.DataFrame, *, owner: str | None = None) -> Capacity:
        sized = teams[teams["size"].notna()]
        return cls(
            teams=tuple(sized["name"]),
            people=float(sized["size"].sum()) if len(sized) else 0.0,
            unsized=tuple(sorted(teams.loc[teams["size"].isna(), "name"])),
            owner=owner,
        )

    @classmethod
    def each(cls, teams: pd.DataFrame) -> dict[str, Capacity]:
        """`of` every team on its own (team name to capacity), in one pass over the rows."""
        out = {}
        for name, size in zip(teams["name"], teams["size"], strict=True):
            if pd.isna(size):
                out[name] = cls(teams=(), people=0.0, unsized=(name,))
            else:  # the sum of one size is that size
                out[name] = cls(teams=(name,), people=float(size), unsized=())
        return out


def toil_by(
    entries: pd.DataFrame,
    capacity: Mapping[Hashable, Capacity],
    periods: Mapping[Hashable, Period],
    settings: Settings,
) -> dict[Hashable, dict[str, Any]]:
    """The toil block per group (`entries` has `group`, `team`, `hours`)."""
    out = {}
    by_group = {key: frame for key, frame in entries.groupby("group", sort=False)}
    for group, period in periods.items():
        have = capacity[group]
        mine = by_group.get(group, entries.iloc[0:0])
        hours = float(mine.loc[mine["team"].isin(have.teams), "hours"].sum())
        hours_capacity = have.people * settings.hours_per_week * period.weeks
        share = ratio(hours, hours_capacity)
        block: dict[str, Any] = {
            "hours": hours,
            "capacity_hours": hours_capacity,
            "share": share,
            "cap": settings.toil_cap,
            "over_cap": None if share is None else share > settings.toil_cap,
            "teams_without_size": list(have.unsized),
            "reason": None
            if share is not None
            else "no team size configured, so no capacity to weigh toil against",
        }
        if have.owner is not None:
            block["team"] = have.owner
            block["note"] = "toil is recorded per team: these are the owning team's figures"
        out[group] = block
    return out


def oncall_by(
    pages: pd.DataFrame, periods: Mapping[Hashable, Period]
) -> dict[Hashable, dict[str, Any]]:
    """Pages, pages per week and the after-hours share per group."""
    groups: Sequence[Hashable] = list(periods)
    sizes = group_sizes(pages["group"], groups)
    after = group_counts(pages["after_hours"].astype(bool), pages["group"], groups)
    return {
        group: {
            "pages": sizes[group],
            "per_week": sizes[group] / periods[group].weeks,
            "after_hours": after[group],
            "after_hours_share": ratio(after[group], sizes[group]),
        }
        for group in groups
    }
