"""Roles and the dashboard's listening address: the rules, without a browser.

(The end-to-end sign-in against a local OpenID Connect provider is tests/test_oidc_e2e.py.)
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from sqlalchemy import create_engine, select

from dashboard.access import EVERYONE, Access, claims_of, resolve_access, visible_catalog
from poise.cli import main
from poise.commands.ui import check_address, is_loopback, secrets_toml
from poise.config import parse_config
from poise.errors import ConfigError, PoiseError
from poise.warehouse import schema

AUTH = {
    "provider": {
        "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
        "client_id": "poise",
        "client_secret_env": "T_CLIENT_SECRET",
        "cookie_secret_env": "T_COOKIE_SECRET",
        "redirect_uri": "http://127.0.0.1:8501/oauth2callback",
    },
    "roles": {
        "leadership": ["CTO@example.com", "group:eng-leads"],
        "teams": {"payments": ["ana@example.com", "group:pay"], "search": ["ana@example.com"]},
    },
}


def config(**extra: object):  # type: ignore[no-untyped-def]
    return parse_config(
        {"teams": [{"name": "payments"}, {"name": "search"}, {"name": "mobile"}], **extra}
    )


def test_roles() -> None:
    auth = config(auth=AUTH).auth
    assert resolve_access(None, "anyone@example.com", []) == EVERYONE
    lead = resolve_access(auth, "cto@EXAMPLE.com", [])  # e-mail case does not matter
    assert not lead.restricted and lead.role == "leadership" and lead.sees(None)
    assert not resolve_access(auth, "x@example.com", ["eng-leads"]).restricted
    ana = resolve_access(auth, "ana@example.com", [])
    assert ana.restricted and ana.teams == {"payments", "search"}
    assert ana.sees("payments") and not ana.sees("mobile") and not ana.sees(None)
    by_group = resolve_access(auth, "bo@example.com", ["pay"])
    assert by_group.teams == {"payments"}
    stranger = resolve_access(auth, "eve@example.com", ["eng-leads-not"])
    assert stranger.refused and not stranger.sees("payments")
    assert resolve_access(auth, None, []).refused


def test_claims_unverified_email_counts_as_none() -> None:
    assert claims_of({"email": "a@x", "groups": ["g"]}, "groups") == ("a@x", ["g"])
    assert claims_of({"email": "a@x", "email_verified": False}, "groups") == (None, [])
    assert claims_of({"email": "a@x", "roles": "g"}, "roles") == ("a@x", ["g"])


def test_visible_catalog_keeps_only_the_members_teams() -> None:
    catalog = {
        "teams": ["mobile", "payments", "search"],
        "services": pd.DataFrame(
            {"name": ["app", "checkout", "find"], "team": ["mobile", "payments", "search"]}
        ),
    }
    ana = resolve_access(config(auth=AUTH).auth, "ana@example.com", [])
    narrowed = visible_catalog(catalog, ana)
    assert narrowed["teams"] == ["payments", "search"]
    assert narrowed["services"]["name"].tolist() == ["checkout", "find"]
    assert visible_catalog(catalog, EVERYONE) is catalog


def test_auth_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"auth\.roles\.teams\.paymnets: unknown team"):
        config(auth={**AUTH, "roles": {"teams": {"paymnets": []}}})
    leaked = {**AUTH, "provider": {**AUTH["provider"], "client_secret": "hunter2"}}  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="secrets do not belong in the config file"):
        config(auth=leaked)


def test_loopback_only_without_sign_in() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3")
    check_address("127.0.0.1", None, insecure=False)
    check_address("0.0.0.0", None, insecure=True)
    check_address("0.0.0.0", config(auth=AUTH).auth, insecure=False)
    with pytest.raises(PoiseError, match="configure sign-in"):
        check_address("0.0.0.0", None, insecure=False)


def test_poise_ui_refuses_a_public_address_without_sign_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "poise.yaml"
    empty.write_text("teams: []\n", encoding="utf-8")
    code = main(["ui", "--address", "0.0.0.0", "--config", str(empty), "--db", "sqlite://"])
    assert code == 1
    err = capsys.readouterr().err
    assert "--address 0.0.0.0: without sign-in" in err and "--insecure" in err


def test_secrets_file_takes_the_secrets_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    auth = config(auth=AUTH).auth
    assert auth is not None
    monkeypatch.delenv("T_CLIENT_SECRET", raising=False)
    with pytest.raises(ConfigError, match=r"T_(COOKIE|CLIENT)_SECRET is not set"):
        secrets_toml(auth)
    monkeypatch.setenv("T_CLIENT_SECRET", 'cl"ient\\secret')
    monkeypatch.setenv("T_COOKIE_SECRET", "c" * 40)
    parsed = tomllib.loads(secrets_toml(auth))["auth"]
    assert parsed["client_secret"] == 'cl"ient\\secret'  # quoted safely
    assert parsed["cookie_secret"] == "c" * 40
    assert parsed["server_metadata_url"] == AUTH["provider"]["server_metadata_url"]  # type: ignore[index]
    assert parsed["client_kwargs"] == {"scope": "openid profile email"}


def test_the_starter_config_and_compose_example_have_no_auth_secrets() -> None:
    # the documented example in docs/configuration.md parses as it stands
    text = Path(__file__).resolve().parents[1].joinpath("docs/configuration.md").read_text()
    block = text.split("## `auth`", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    example = yaml.safe_load(block)
    teams = [{"name": name} for name in example["auth"]["roles"]["teams"]]
    parsed = parse_config({"teams": teams, **example})
    assert parsed.auth is not None and parsed.auth.provider.client_secret_env


# --- the rule applied to the pages (AppTest; the signed-in identity stood in for) -----------------

PAGES_DIR = Path(__file__).resolve().parents[1] / "pages"
MEMBER = Access(restricted=True, teams=frozenset({"billing"}), user="ana@example.com", role="team")


@pytest.fixture
def as_member(monkeypatch: pytest.MonkeyPatch, dashboard_demo_url: str) -> str:
    from dashboard import access

    monkeypatch.setenv("POISE_DATABASE_URL", dashboard_demo_url)
    monkeypatch.delenv("POISE_CONFIG", raising=False)
    monkeypatch.setattr(access, "current", lambda: MEMBER)
    return dashboard_demo_url


def page(name: str, **params: str) -> Any:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(PAGES_DIR / f"{name}.py"), default_timeout=180)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def team_box(at: Any) -> Any:
    return next(box for box in at.sidebar.selectbox if box.label == "Team")


def service_of(url: str, team: str) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return str(
                connection.scalar(
                    select(schema.services.c.name).where(schema.services.c.team == team).limit(1)
                )
            )
    finally:
        engine.dispose()


def test_a_member_sees_the_organisation_headline_and_only_their_team(as_member: str) -> None:
    at = page("overview", team="storefront")  # a link to another team's view
    assert team_box(at).options == ["billing"]  # no "All teams", no other team
    assert team_box(at).value == "billing"
    headings = [heading.value for heading in at.subheader]
    assert "Organisation headline" in headings
    assert any(h.startswith("Headline:") and "billing" in h for h in headings), headings
    notes = " ".join(str(node.value) for node in [*at.info, *at.warning, *at.caption])
    assert "is not among what you can see" in notes
    table = next((frame.value for frame in at.dataframe if "team" in frame.value.columns), None)
    assert table is None or set(table["team"]) <= {"billing"}


def test_a_service_link_cannot_widen_a_members_view(as_member: str) -> None:
    other = service_of(as_member, "storefront")
    at = page("delivery", service=other)
    assert team_box(at).options == ["billing"]
    service_box = next(box for box in at.sidebar.selectbox if box.label == "Service")
    assert other not in service_box.options
    assert all(
        set(frame.value["team"]) <= {"billing"}
        for frame in at.dataframe
        if "team" in frame.value.columns
    )


def test_a_members_report_covers_only_their_teams(as_member: str) -> None:
    at = page("report")
    scope = next(box for box in at.selectbox if box.label == "Scope")
    assert scope.options == ["billing"]


def test_without_sign_in_every_team_is_offered(
    dashboard_demo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POISE_DATABASE_URL", dashboard_demo_url)
    monkeypatch.delenv("POISE_CONFIG", raising=False)
    at = page("overview")
    assert team_box(at).options[0] == "All teams" and len(team_box(at).options) > 2
    assert "Organisation headline" not in [heading.value for heading in at.subheader]


def test_a_member_learns_nothing_of_other_teams_from_a_link(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dashboard import access, filters

    catalog = {
        "teams": ["mobile", "payments"],
        "services": pd.DataFrame({"name": ["app", "checkout"], "team": ["mobile", "payments"]}),
    }
    ana = resolve_access(config(auth=AUTH).auth, "ana@example.com", [])
    monkeypatch.setattr(access, "current", lambda: ana)
    first = sorted(ana.teams)[0]
    assert filters.allowed_scope(None, "checkout", catalog) == ("payments", "checkout", [])
    assert filters.allowed_scope(None, None, catalog) == (first, None, [])
    answers = {
        asked: filters.allowed_scope(*asked, catalog)
        for asked in [("mobile", None), (None, "app"), (None, "no-such"), ("payments", "app")]
    }
    for (team, service), (scope_team, scope_service, notices) in answers.items():
        assert (scope_team, scope_service) == (first, None)
        (notice,) = notices
        assert (
            notice == f"{service or team!r} is not among what you can see: showing team {first!r}."
        )
        assert "mobile" not in notice.replace("'mobile'", "") and "belongs" not in notice
