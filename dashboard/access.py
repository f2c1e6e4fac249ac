"""Who may see what on the dashboard: sign-in (OpenID Connect through `st.login`) and roles.

Without an `auth:` section in poise.yaml there is no sign-in and everyone sees everything
(`poise ui` then listens on the loopback address only). With one:

- `leadership` (by e-mail, or `group:NAME` from the ID token's groups claim) sees every team;
- a team member sees the organisation's headline figures and only their own teams' details;
- anybody else who signs in gets a polite refusal and nothing more.

`resolve_access` is the pure rule; `gate()` runs it for the signed-in visitor before any
page; `dashboard.filters.allowed_scope` applies the result to every filter and URL
parameter, so they can narrow a view but never widen it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import streamlit as st

from poise.config import AuthConfig, load_config


@dataclass(frozen=True)
class Access:
    """What one visitor may see. `restricted` False: every team."""

    restricted: bool
    teams: frozenset[str] = frozenset()
    user: str | None = None
    role: str = "everyone"

    @property
    def refused(self) -> bool:
        return self.restricted and not self.teams

    def sees(self, team: str | None) -> bool:
        """Whether the details of `team` (None: every team at once) may be shown."""
        if not self.restricted:
            return True
        return team is not None and team in self.teams


EVERYONE = Access(restricted=False, role="no sign-in")
NOBODY = Access(restricted=True, role="signed out")


def _matches(entry: str, email: str | None, groups: Iterable[str]) -> bool:
    entry = entry.strip()
    if entry.lower().startswith("group:"):
        return entry[len("group:") :] in set(groups)
    return email is not None and entry.lower() == email.strip().lower()


def resolve_access(auth: AuthConfig | None, email: str | None, groups: Iterable[str]) -> Access:
    """The role of a signed-in user (e-mail and groups from the ID token)."""
    if auth is None:
        return EVERYONE
    groups = list(groups)
    if any(_matches(entry, email, groups) for entry in auth.roles.leadership):
        return Access(restricted=False, user=email, role="leadership")
    teams = frozenset(
        team
        for team, members in auth.roles.teams.items()
        if any(_matches(entry, email, groups) for entry in members)
    )
    return Access(restricted=True, teams=teams, user=email, role="team" if teams else "no role")


def claims_of(user: Mapping[str, Any], groups_claim: str) -> tuple[str | None, list[str]]:
    """E-mail and groups from the ID token's claims. An e-mail the provider marks as not
    verified counts as none (anyone can type an address into a fresh account); some
    providers (Amazon Cognito, for one) send that mark as the string "false"."""
    email = user.get("email")
    verified = user.get("email_verified")
    if isinstance(verified, str):
        verified = verified.strip().lower() != "false"
    if verified is False or not isinstance(email, str):
        email = None
    groups = user.get(groups_claim) or []
    if isinstance(groups, str):
        groups = [groups]
    return email, [str(group) for group in groups]


def visible_catalog(catalog: dict[str, Any], access: Access) -> dict[str, Any]:
    """The catalog with only the teams (and their services) the visitor may see in detail."""
    if not access.restricted:
        return catalog
    narrowed = dict(catalog)
    narrowed["teams"] = [team for team in catalog["teams"] if team in access.teams]
    services = catalog["services"]
    narrowed["services"] = services[services["team"].isin(access.teams)].reset_index(drop=True)
    return narrowed


# --- in the Streamlit app ----------------------------------------------------------------------


@st.cache_resource(show_spinner=False)
def auth_config() -> AuthConfig | None:
    return load_config(os.environ.get("POISE_CONFIG") or None).auth


def current() -> Access:
    """The visitor's access, read again from the signed-in identity on every call."""
    auth = auth_config()
    if auth is None:
        return EVERYONE
    if not st.user.is_logged_in:
        return NOBODY
    email, groups = claims_of(st.user, auth.groups_claim)
    return resolve_access(auth, email, groups)


def _alone(render: Callable[[], None], paths: Iterable[str]) -> NoReturn:
    """Show `render` as the only page, whichever of the scorecard's `paths` was asked for,
    then stop. Through st.navigation with no menu, so that the browser's list of pages is
    replaced by none: a first visit to a page's own URL begins in Streamlit's old
    pages-directory mode, whose menu lists every file in pages/. Every path of the
    scorecard leads here, so that a shared link opens the sign-in page as it is, not
    under a "Page not found" box."""
    pages = [st.Page(render, title="Poise", default=True)]
    pages += [st.Page(render, title="Poise", url_path=path) for path in paths if path]
    st.navigation(pages, position="hidden").run()
    st.stop()


def _sign_in_page() -> None:
    st.title("Poise")
    st.write("The scorecard is for signed-in members of the organisation.")
    if st.button("Sign in", type="primary", icon=":material/login:"):
        st.login()


def _refusal_page() -> None:
    st.title("Poise")
    st.info(
        "Sorry, this account has no access to the scorecard yet. Ask whoever runs Poise "
        "to add it to a team or to leadership (`auth.roles` in poise.yaml).",
        icon=":material/lock:",
    )
    st.caption("Signed in as:")
    st.text(current().user or "this account")
    if st.button("Sign out"):
        st.logout()


def gate(pages: Iterable[Any] = ()) -> Access:
    """Before any page (`pages`: app.py's st.Page list): sign-in when configured, a refusal
    for a user without a role, and who is signed in (with a sign-out button) in the
    sidebar. Stops the script unless the visitor may see something."""
    auth = auth_config()
    if auth is None:
        return EVERYONE
    paths = [page.url_path for page in pages]
    if not st.user.is_logged_in:
        _alone(_sign_in_page, paths)
    access = current()
    shown_user = access.user or "this account"
    if access.refused:
        _alone(_refusal_page, paths)
    with st.sidebar:
        role = (
            "leadership: every team"
            if not access.restricted
            else "team: " + ", ".join(sorted(access.teams))
        )
        st.caption("Signed in")
        st.text(f"{shown_user}\n{role}")
        if st.button("Sign out", key="poise-sign-out"):
            st.logout()
    return access


def organisation_headline(start: Any, end: Any) -> None:
    """For a team member on the Overview: the organisation's headline figures, all teams
    together (figures only; every detail below is their own teams')."""
    from dashboard import components, queries
    from dashboard.data import Query

    card = queries.scorecard(Query(start, end, None, None))
    dora = card["dora"]
    st.subheader(
        "Organisation headline",
        help="All teams together, so you can see your team against the whole; the details "
        "on every page are your own teams'.",
    )
    figures = (
        ("deployment_frequency", dora["deployment_frequency"]["per_week"], None),
        ("lead_time", dora["lead_time"]["median_hours"], "Lead time (median)"),
        ("change_failure_rate", dora["change_failure_rate"]["rate"], None),
        ("recovery_time", dora["recovery_time"]["median_hours"], None),
        ("incidents", card["incidents"]["count"], None),
    )
    columns = components.card_row([components.card_label(key, label) for key, _, label in figures])
    for column, (key, value, label) in zip(columns, figures, strict=True):
        with column:
            components.figure_card(key, value, label=label)
