"""The global filters: team, service and period, in the sidebar and in the page's URL.

The URL's query parameters carry the filters, so a view can be shared as a link:

    ?team=billing&period=2026Q3            a team over a calendar quarter
    ?service=auth&period=90d               a service over the last 90 whole days
    ?from=2026-07-01&to=2026-08-01         a custom period (`to` excluded, as in the CLI)

A link's parameters win over what the session remembers; otherwise the filters follow
the visitor from page to page. Which scope a visitor may see is decided in one place,
`allowed_scope`, so that sign-in with team-scoped roles can narrow it there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import streamlit as st

from dashboard import access, queries
from dashboard.data import Query
from metrics import Period
from poise.errors import PoiseError
from poise.timeutil import (
    TimestampError,
    isoformat_z,
    parse_period_bound,
    quarter_bounds,
    quarter_of,
    start_of_day,
    utcnow,
)

ALL_TEAMS = "All teams"
ALL_SERVICES = "All services"
CUSTOM = "custom"
PRESET_DAYS = {"7d": 7, "14d": 14, "28d": 28, "90d": 90, "180d": 180, "365d": 365}
DEFAULT_PERIOD = "28d"
PARAMS = ("team", "service", "period", "from", "to")
MEMORY = "poise_filters"


@dataclass(frozen=True)
class View:
    """What a page shows: the query (period and scope) and how to word it."""

    query: Query
    period_key: str
    period_label: str
    catalog: dict[str, Any]
    notices: tuple[str, ...] = field(default=())
    # a page without a service picker (the team retro) keeps the visitor's service filter
    # in the address for the next page without applying it
    kept_service: str | None = None

    @property
    def scope_label(self) -> str:
        if self.query.service:
            return f"service {self.query.service}"
        if self.query.team:
            return f"team {self.query.team}"
        return "all teams"


# --- periods --------------------------------------------------------------------------------


def today(now: datetime | None = None) -> datetime:
    moment = now or utcnow()
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def quarter_choices(
    first: datetime | None, now: datetime | None = None, latest: datetime | None = None
) -> list[str]:
    """Calendar quarters, newest first: the current one, then those from the latest data's
    back to the first data's (at most 12 in all). A warehouse whose data ended years ago
    offers its own quarters, not only empty recent ones."""
    end = today(now)
    newest = min(latest, end) if latest is not None else end
    start = first or newest - timedelta(days=365)
    quarters = [quarter_of(end)] if quarter_bounds(quarter_of(end))[0] < end else []
    cursor = quarter_bounds(quarter_of(newest))[0]
    while cursor > start - timedelta(days=92) and len(quarters) < 12:
        label = quarter_of(cursor)
        if label not in quarters and quarter_bounds(label)[0] < end:
            quarters.append(label)
        cursor = quarter_bounds(quarter_of(cursor - timedelta(days=1)))[0]
    return quarters


def resolve_period(
    key: str, start: str | None = None, end: str | None = None, now: datetime | None = None
) -> tuple[Period, str]:
    """The period a filter value names, and its label. Raises PoiseError when it names
    none (an unknown preset, a malformed or empty custom period)."""
    midnight = today(now)
    if key in PRESET_DAYS:
        days = PRESET_DAYS[key]
        period = Period(midnight - timedelta(days=days), midnight)
        return period, f"Last {days} days"
    if key == CUSTOM:
        try:
            first = parse_period_bound(start or "")
            after = parse_period_bound(end or "") if end else midnight
        except TimestampError as exc:
            raise PoiseError(f"period: {exc}") from None
        Period(first, after)  # an empty period is refused as given, before any cut
        period, cut = Period.to_date(first, after, now=now or utcnow())
        last = period.end - timedelta(days=1)
        return period, f"{period.start:%Y-%m-%d} – {last:%Y-%m-%d}" + (" (to date)" if cut else "")
    try:
        period, cut = Period.quarter_to_date(key, now=midnight)
    except TimestampError:
        raise PoiseError(f"period {key!r}: use 7d, 14d, 28d, 90d, 180d, 365d or 2026Q3") from None
    except PoiseError as exc:
        raise PoiseError(f"period {exc}") from None
    label = quarter_of(period.start)
    return period, f"{label} to date" if cut else label


def period_params(period: Period) -> dict[str, str]:
    """A custom period as URL parameters (dates when both bounds are midnights)."""

    def text(moment: datetime) -> str:
        if moment == start_of_day(moment.date()):
            return f"{moment:%Y-%m-%d}"
        return isoformat_z(moment)

    return {"period": CUSTOM, "from": text(period.start), "to": text(period.end)}


# --- scope ------------------------------------------------------------------------------------


def allowed_scope(
    team: str | None, service: str | None, catalog: dict[str, Any]
) -> tuple[str | None, str | None, list[str]]:
    """The scope a visitor asked for, narrowed to what exists and to what the visitor's role
    may see (dashboard.access): (team, service, notices about what was dropped).

    The one place where access meets the filters: the link's parameters, the session's
    memory and the widgets' values all pass through here, so none of them can widen a
    view. A team member's scope is always one of their teams (their first, when they ask
    for all teams or another team's)."""
    notices: list[str] = []
    visitor = access.current()
    teams: Sequence[str] = catalog["teams"]
    services = catalog["services"]
    if visitor.restricted:
        return _restricted_scope(visitor, team, service, services)
    if team is not None and team not in teams:
        notices.append(f"No team named {team!r}: showing all teams.")
        team = None
    if service is not None:
        owner = services.loc[services["name"] == service, "team"]
        if owner.empty:
            notices.append(f"No service named {service!r}: showing the whole scope.")
            service = None
        elif team is not None and owner.iloc[0] != team:
            notices.append(f"Service {service!r} belongs to team {owner.iloc[0]!r}, not {team!r}.")
            service = None
        else:
            team = str(owner.iloc[0])
    return team, service, notices


def _restricted_scope(
    visitor: access.Access, team: str | None, service: str | None, services: Any
) -> tuple[str | None, str | None, list[str]]:
    """A team member's scope: one of their teams, or one of their teams' services. What
    they may not see gets one neutral notice, whether it exists or not, so a link cannot
    be used to learn other teams' services or which team owns them."""
    mine = sorted(visitor.teams)
    first = mine[0] if mine else ""
    asked = service if service is not None else team
    if service is not None:
        owner = services.loc[services["name"] == service, "team"]
        if not owner.empty and visitor.sees(str(owner.iloc[0])) and team in (None, owner.iloc[0]):
            return str(owner.iloc[0]), service, []
    elif team is None or visitor.sees(team):
        return (team if team is not None else first), None, []
    return first, None, [f"{asked!r} is not among what you can see: showing team {first!r}."]


# --- the sidebar --------------------------------------------------------------------------------


def _requested() -> dict[str, str]:
    """The filters asked for: the link's parameters, else what this session last used."""
    params = {key: st.query_params.get(key) for key in PARAMS}
    params = {key: value for key, value in params.items() if value}
    if params:
        return params
    return dict(st.session_state.get(MEMORY, {}))


def _remember(values: dict[str, str | None], keep: Sequence[str] = ()) -> None:
    """Write the filters to the URL (so the link can be shared) and to the session."""
    clean = {key: value for key, value in values.items() if value}
    for key in PARAMS:
        if key in keep:
            continue
        if key in clean:
            if st.query_params.get(key) != clean[key]:
                st.query_params[key] = clean[key]
        elif key in st.query_params:
            del st.query_params[key]
    memory = dict(st.session_state.get(MEMORY, {}))
    memory.update({key: value for key, value in clean.items()})
    for key in PARAMS:
        if key not in clean and key not in keep:
            memory.pop(key, None)
    st.session_state[MEMORY] = memory


def widget_key(name: str) -> str:
    """The session-state key of a filter widget on the current page. Streamlit ties a
    widget's state to its page, so a key shared by every page would hold a stale value
    after a page switch; each page has its own keys, initialised from the URL or from
    what the session remembers."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    context = get_script_run_ctx()
    page = context.page_script_hash[:12] if context is not None else ""
    return f"flt_{name}_{page}"


def _init(name: str, value: Any) -> str:
    key = widget_key(name)
    if key not in st.session_state:
        st.session_state[key] = value
    return key


def sidebar(*, period: bool = True, service: bool = True, now: datetime | None = None) -> View:
    """Render the filters in the sidebar and return the view they select."""
    visitor = access.current()
    if visitor.refused:  # app.py's gate shows the refusal; a page on its own shows nothing
        st.stop()
    every = queries.catalog()
    asked = _requested()
    team, chosen_service, notices = allowed_scope(asked.get("team"), asked.get("service"), every)
    catalog = access.visible_catalog(every, visitor)
    bar = st.sidebar
    bar.markdown("### Filters")

    team_options = [ALL_TEAMS, *catalog["teams"]]
    if visitor.restricted:  # never "all teams"; and a team of theirs without data yet
        team_options = sorted({*catalog["teams"], *([team] if team else [])})
        if st.session_state.get(widget_key("team")) not in team_options:
            st.session_state.pop(widget_key("team"), None)
    picked_team = bar.selectbox("Team", team_options, key=_init("team", team or ALL_TEAMS))
    team_value = None if picked_team == ALL_TEAMS else picked_team

    service_value: str | None = None
    if service:
        names = catalog["services"]
        if team_value is not None:
            names = names[names["team"] == team_value]
        service_options = [ALL_SERVICES, *names["name"].tolist()]
        key = _init("service", chosen_service or ALL_SERVICES)
        if st.session_state[key] not in service_options:
            st.session_state[key] = ALL_SERVICES
        picked = bar.selectbox("Service", service_options, key=key)
        service_value = None if picked == ALL_SERVICES else picked

    key = asked.get("period", DEFAULT_PERIOD)
    start_text, end_text = asked.get("from"), asked.get("to")
    if asked.get("from") and "period" not in asked:
        key = CUSTOM
    try:
        chosen_period, label = resolve_period(key, start_text, end_text, now)
    except PoiseError as exc:
        notices.append(f"{exc}: showing the last {PRESET_DAYS[DEFAULT_PERIOD]} days.")
        key, start_text, end_text = DEFAULT_PERIOD, None, None
        chosen_period, label = resolve_period(key, now=now)
    kept_service = (
        chosen_service
        if not service and team_value is not None and _owner(catalog, chosen_service) == team_value
        else None
    )
    values: dict[str, str | None] = {"team": team_value, "service": service_value or kept_service}
    if period:
        chosen_period, label, key, period_values = _period_widgets(
            catalog, key, chosen_period, label, now, asked_end=end_text
        )
        values.update(period_values)
    else:
        values.update({"period": key, "from": start_text, "to": end_text})
    _remember(values)
    if catalog.get("latest") is not None:
        bar.caption(f"Latest data: {catalog['latest']:%Y-%m-%d %H:%M} UTC")
    bar.caption("The address bar holds these filters: copy it to share this view.")
    if bar.button("Refresh data", help="Read the warehouse again instead of cached figures"):
        queries.clear()
        st.rerun()
    # whatever the widgets hold, the scope passes the access check once more
    team_value, service_value, _ = allowed_scope(team_value, service_value, every)
    query = Query(chosen_period.start, chosen_period.end, team_value, service_value)
    return View(query, key, label, catalog, tuple(notices), kept_service)


def _owner(catalog: dict[str, Any], service: str | None) -> str | None:
    """The team a service belongs to, among those the visitor may see (None: not one)."""
    if service is None:
        return None
    services = catalog["services"]
    owner = services.loc[services["name"] == service, "team"]
    return None if owner.empty else str(owner.iloc[0])


def _period_widgets(
    catalog: dict[str, Any],
    key: str,
    chosen: Period,
    label: str,
    now: datetime | None,
    *,
    asked_end: str | None = None,
) -> tuple[Period, str, str, dict[str, str | None]]:
    bar = st.sidebar
    quarters = quarter_choices(catalog.get("first"), now, catalog.get("latest"))
    options = [*PRESET_DAYS, *quarters, CUSTOM]
    if key not in options:
        options.insert(len(PRESET_DAYS), key)
    names = {k: f"Last {days} days" for k, days in PRESET_DAYS.items()}
    names[CUSTOM] = "Custom dates…"
    picked = bar.selectbox(
        "Period",
        options,
        key=_init("period", key),
        format_func=lambda k: names.get(k, _quarter_name(k, now)),
    )
    if picked != CUSTOM:
        if picked != key:
            chosen, label = resolve_period(picked, now=now)
        return chosen, label, picked, {"period": picked, "from": None, "to": None}
    start_day: date = chosen.start.date()
    last_day: date = (_asked_end(asked_end, chosen) - timedelta(days=1)).date()
    first = bar.date_input("First day", key=_init("from", start_day))
    last = bar.date_input("Last day (included)", key=_init("to", last_day))
    if not isinstance(first, date) or not isinstance(last, date) or last < first:
        bar.warning("The last day must be on or after the first day.")
        last = first if isinstance(first, date) else last_day
        first = first if isinstance(first, date) else start_day
    asked = period_params(Period(start_of_day(first), start_of_day(last) + timedelta(days=1)))
    try:
        period, label = resolve_period(CUSTOM, asked["from"], asked["to"], now)
    except PoiseError as exc:  # both days still to come
        bar.warning(f"{exc}.")
        period, asked = chosen, period_params(chosen)
    # the address keeps the last day asked for, even one still to come (cut when shown),
    # so that the view says "to date" each time it is opened
    return period, label, CUSTOM, {"period": CUSTOM, "from": asked["from"], "to": asked["to"]}


def _asked_end(text: str | None, chosen: Period) -> datetime:
    """The end the address asked for (a custom period's, before any cut), else the chosen."""
    try:
        return max(parse_period_bound(text), chosen.end) if text else chosen.end
    except TimestampError:
        return chosen.end


def _quarter_name(key: str, now: datetime | None) -> str:
    try:
        return resolve_period(key, now=now)[1]
    except PoiseError:
        return key


def jump_to(period: Period) -> None:
    """Switch the filters to a custom period (e.g. the last weeks that hold data)."""
    params = period_params(period)
    for name, value in params.items():
        st.query_params[name] = value
    memory = dict(st.session_state.get(MEMORY, {}))
    memory.update(params)
    st.session_state[MEMORY] = memory
    for name in ("period", "from", "to"):
        st.session_state.pop(widget_key(name), None)
