"""People: toil against team capacity, and on-call load.

Toil share = toil hours / (team size × hours per week × weeks in the period), against the
configured cap (50 % by default, as the SRE book puts it). Teams without a size cannot be
weighed: their toil is left out of the share and the team is listed. Teams that have never
recorded any toil (no toil log imported) are not said to have none: they are left out of
both sides and listed, and a scope of only such teams has no share. On-call load = pages
per week and the share of them that came after hours; a scope whose teams have never been
paged at all (no paging source synced or imported) has no pages per week rather than 0.
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
    """The people a group's toil is weighed against, and whether the group has any record
    to judge toil and on-call by at all."""

    teams: tuple[str, ...]  # teams with a size that record toil
    people: float
    unsized: tuple[str, ...]
    owner: str | None = None  # set when a service's figures are its owning team's
    silent: tuple[str, ...] = ()  # teams with a size that have never recorded any toil
    paged: bool = False  # some team of the group has ever been paged

    @classmethod
    def of(cls, teams: pd.DataFrame, *, owner: str | None = None) -> Capacity:
        """`teams` has `name`, `size`, `records_toil` (any toil entry, ever) and
        `records_pages` (any page, ever)."""
        sized = teams["size"].notna()
        recording = teams["records_toil"].astype(bool)
        counted = teams[sized & recording]
        return cls(
            teams=tuple(counted["name"]),
            people=float(counted["size"].sum()) if len(counted) else 0.0,
            unsized=tuple(sorted(teams.loc[~sized, "name"])),
            owner=owner,
            silent=tuple(sorted(teams.loc[sized & ~recording, "name"])),
            paged=bool(teams["records_pages"].astype(bool).any()),
        )

    @classmethod
    def each(cls, teams: pd.DataFrame) -> dict[str, Capacity]:
        """`of` every team on its own (team name to capacity), in one pass over the rows."""
        out = {}
        for name, size, records, paged in zip(
            teams["name"], teams["size"], teams["records_toil"], teams["records_pages"], strict=True
        ):
            paged = bool(paged)
            if pd.isna(size):
                out[name] = cls(teams=(), people=0.0, unsized=(name,), paged=paged)
            elif not records:
                out[name] = cls(teams=(), people=0.0, unsized=(), silent=(name,), paged=paged)
            else:  # the sum of one size is that size
                out[name] = cls(teams=(name,), people=float(size), unsized=(), paged=paged)
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
            "teams_without_toil": list(have.silent),
            "reason": None if share is not None else _no_share(have),
        }
        if have.owner is not None:
            block["team"] = have.owner
            block["note"] = "toil is recorded per team: these are the owning team's figures"
        out[group] = block
    return out


def _no_share(have: Capacity) -> str:
    if have.silent:
        return "no toil recorded: import a toil log for the team to weigh its toil"
    return "no team size configured, so no capacity to weigh toil against"


NEVER_PAGED = "no page recorded for these teams: no paging source synced or imported"


def oncall_by(
    pages: pd.DataFrame,
    periods: Mapping[Hashable, Period],
    capacity: Mapping[Hashable, Capacity],
) -> dict[Hashable, dict[str, Any]]:
    """Pages, pages per week and the after-hours share per group."""
    groups: Sequence[Hashable] = list(periods)
    sizes = group_sizes(pages["group"], groups)
    after = group_counts(pages["after_hours"].astype(bool), pages["group"], groups)
    out = {}
    for group in groups:
        # never paged at all is no data, not a calm rota
        known = sizes[group] > 0 or capacity[group].paged
        out[group] = {
            "pages": sizes[group],
            "per_week": sizes[group] / periods[group].weeks if known else None,
            "after_hours": after[group],
            "after_hours_share": ratio(after[group], sizes[group]),
            "reason": None if known else NEVER_PAGED,
        }
    return out
