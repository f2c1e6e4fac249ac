"""Sign-in and roles end to end: a local OpenID Connect provider (oidc-provider-mock, on
127.0.0.1, the client registered with it), `poise ui` configured against it the way an
operator would (poise.yaml `auth:`, the client secret and the cookie secret in environment
variables), and Debian's Chromium signing in through Streamlit's `st.login`:

- before signing in, any link (even the first one a fresh server sees) shows only the
  sign-in page;
- a leader (by group) sees every team, and signing out (through the provider's end-session
  page) leaves the sign-in page, the cookie no longer opening any page;
- a member of billing (by e-mail, in another case) sees the organisation's headline and
  billing only, whatever the link, the page or the URL parameters ask for;
- a stranger, or an address the provider has not verified, gets the polite refusal and no
  figure.

One provider, one `poise ui` and one browser serve every case (a fresh browser context, so
fresh cookies, per person); the first case must run first. Any Streamlit error box fails
the test; every wait is on the page's own state, never a fixed sleep.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import create_engine, select
from test_browser import ERRORS, SHOTS, browser, require_chromium

from dashboard import headless
from poise.warehouse import schema

CLIENT_SECRET_ENV = "POISE_E2E_OIDC_CLIENT_SECRET"
COOKIE_SECRET_ENV = "POISE_E2E_COOKIE_SECRET"
MEMBER_TEAM = "billing"
OTHER_TEAM = "storefront"
# subject -> the claims the provider puts in the ID token
PEOPLE: dict[str, dict[str, Any]] = {
    "lead": {"email": "cto@example.com", "email_verified": True, "groups": ["eng-leads"]},
    "ana": {"email": "Ana@Example.com", "email_verified": True, "groups": ["guild-sre"]},
    "eve": {"email": "eve@example.com", "email_verified": True, "groups": ["contractors"]},
    # claims a member's address, which the provider has not verified: not the member
    "trudy": {"email": "ana@example.com", "email_verified": "false"},
}
SCRIPT_DONE = """() => document.querySelector('[data-testid="stApp"]')
    ?.getAttribute('data-test-script-state') === 'notRunning'"""
# Every text the page holds, one text node a line: the DOM's (tables' accessible cells and
# the charts' SVG text included) and the values shown in its input boxes (a select box's),
# leaving out the notices that hold one of the given phrases.
PAGE_TEXT = """(phrases) => {
    const texts = [];
    const quoted = (node) => {
        const notice = node.parentElement?.closest('[data-testid^="stAlertContent"]');
        return notice && phrases.some(phrase => notice.textContent.includes(phrase));
    };
    for (const id of ['stMain', 'stSidebar']) {
        const root = document.querySelector(`[data-testid="${id}"]`);
        if (!root) continue;
        const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
        while (walker.nextNode()) {
            if (!quoted(walker.currentNode)) texts.push(walker.currentNode.nodeValue);
        }
    }
    for (const box of document.querySelectorAll('input, textarea')) texts.push(box.value);
    return texts.join('\\n');
}"""
# What the dashboard says when it narrows a link: it repeats the name the link asked for.
REFUSED_LINK = ["is not among what you can see"]
REFUSED = re.compile("|".join(REFUSED_LINK))


def require_oidc_mock() -> None:
    try:
        import oidc_provider_mock  # noqa: F401
        import playwright  # noqa: F401
    except ImportError as exc:
        message = f"needs the test extra ({exc.name}): pip install -e '.[test]'"
        if os.environ.get("POISE_REQUIRE_SYSTEM_TOOLS") == "1":
            pytest.fail(message)
        pytest.skip(message)


# --- the provider, the dashboard and the browser ------------------------------------------------


@contextmanager
def oidc_provider() -> Iterator[str]:
    """oidc-provider-mock on a free loopback port, with PEOPLE as its one-click users and
    client registration required (so the client secret `poise ui` passes on must be right)."""
    import werkzeug.serving
    from oidc_provider_mock import User, app

    provider = app(
        require_client_registration=True,
        require_nonce=True,
        user_claims=[User(sub=sub, claims=claims) for sub, claims in PEOPLE.items()],
    )
    quiet = logging.getLogger("werkzeug")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # no line per request in the test output
    server = werkzeug.serving.make_server("127.0.0.1", 0, provider, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()
        quiet.setLevel(level)


def register_client(issuer: str, redirect_uri: str) -> tuple[str, str]:
    """Dynamic client registration (RFC 7591): the client id and secret the provider issued."""
    request = urllib.request.Request(
        f"{issuer}/oauth2/clients",
        data=json.dumps({"redirect_uris": [redirect_uri]}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        client = json.load(answer)
    return str(client["client_id"]), str(client["client_secret"])


def auth_config(issuer: str, client_id: str, redirect_uri: str) -> dict[str, Any]:
    return {
        "auth": {
            "provider": {
                "server_metadata_url": f"{issuer}/.well-known/openid-configuration",
                "client_id": client_id,
                "client_secret_env": CLIENT_SECRET_ENV,
                "cookie_secret_env": COOKIE_SECRET_ENV,
                "redirect_uri": redirect_uri,
            },
            "roles": {
                "leadership": ["group:eng-leads"],
                "teams": {MEMBER_TEAM: ["ana@example.com"], "growth": ["group:growth-devs"]},
            },
        }
    }


@contextmanager
def signed_in_dashboard(warehouse_url: str, folder: Path, issuer: str) -> Iterator[str]:
    """`poise ui --config` on a free loopback port, sign-in configured against `issuer`
    and the secrets in the environment, as an operator would run it. Afterwards neither
    secret may appear in what it printed."""
    port = headless.free_port()
    callback = f"http://127.0.0.1:{port}/oauth2callback"
    client_id, client_secret = register_client(issuer, callback)
    config = folder / "poise.yaml"
    config.write_text(yaml.safe_dump(auth_config(issuer, client_id, callback)))
    given = {CLIENT_SECRET_ENV: client_secret, COOKIE_SECRET_ENV: secrets.token_hex(32)}
    log = folder / "poise-ui.log"
    with headless.serving(
        warehouse_url, log, args=["--config", str(config)], env=given, port=port
    ) as base:
        yield base
    text = log.read_text()
    assert "sign-in required" in text
    for name, value in given.items():
        assert value not in text, f"the value of {name} appears in the output of poise ui"


class Site:
    """The running provider and dashboard, and the browser that visits them."""

    def __init__(self, base: str, issuer: str, chromium: Any) -> None:
        self.base, self.issuer, self.chromium = base, issuer, chromium

    @contextmanager
    def visitor(self) -> Iterator[Any]:
        """A browser tab with cookies of its own; fails on a script error in the page."""
        context = self.chromium.new_context(viewport={"width": 1440, "height": 900})
        page = context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
        try:
            yield page
        finally:
            context.close()
        assert not problems, problems

    def sign_in(self, page: Any, subject: str) -> None:
        """From the sign-in page, through the provider's authorize form, back to the app."""
        page.goto(self.base, wait_until="domcontentloaded")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{self.issuer}/oauth2/authorize?**", timeout=30_000)
        page.locator(f'button[name="sub"][value="{subject}"]').click()
        page.wait_for_url(f"{self.base}/**", timeout=30_000)
        page.wait_for_function(SCRIPT_DONE, timeout=120_000)


@pytest.fixture(scope="module")
def site(dashboard_demo_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    require_chromium()
    require_oidc_mock()
    folder = tmp_path_factory.mktemp("oidc-e2e")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with (
        oidc_provider() as issuer,
        signed_in_dashboard(dashboard_demo_url, folder, issuer) as base,
        browser() as chromium,
    ):
        yield Site(base, issuer, chromium)


@pytest.fixture(scope="module")
def teams(dashboard_demo_url: str) -> dict[str, list[str]]:
    """team -> its services, as the warehouse holds them."""
    engine = create_engine(dashboard_demo_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(schema.services.c.team, schema.services.c.name))
            owned: dict[str, list[str]] = {}
            for team, service in rows:
                owned.setdefault(str(team), []).append(str(service))
    finally:
        engine.dispose()
    assert MEMBER_TEAM in owned and OTHER_TEAM in owned and len(owned) >= 3, owned
    return owned


# --- what a page shows ------------------------------------------------------------------------


def finished(page: Any, title: str) -> None:
    """The page's script has finished, its heading is `title` and its charts are drawn; no
    Streamlit error box anywhere."""
    page.wait_for_function(headless.FINISHED, arg=title, timeout=120_000)
    errors = page.locator(ERRORS)
    assert errors.count() == 0, f"{page.url}: {errors.first.inner_text()[:500]}"


def open_everything(page: Any) -> Iterator[None]:
    """Show every part of the page in turn: each tab, with every expander in it ("Numbers
    behind this chart", …) opened, so that its tables and charts are drawn."""
    tabs = page.locator('[data-testid="stMain"] [role="tab"]')
    for index in range(max(tabs.count(), 1)):
        if tabs.count():
            tabs.nth(index).click()
        page.evaluate(
            """() => document.querySelectorAll(
                '[data-testid="stExpander"] details:not([open]) > summary'
            ).forEach(summary => summary.offsetParent !== null && summary.click())"""
        )
        page.wait_for_function(
            """() => [...document.querySelectorAll('[data-testid="stDataFrame"]')]
                .filter(grid => grid.offsetParent !== null)
                .every(grid => grid.querySelector('table td'))""",
            timeout=60_000,
        )
        yield


def mentions(text: str, name: str) -> bool:
    """`name` as a whole name in `text` (not part of a longer hyphenated name)."""
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text) is not None


def grid_cells(page: Any, index: int = 0) -> list[str]:
    return page.locator('[data-testid="stDataFrame"]').nth(index).locator("td").all_inner_texts()


def picker_options(page: Any, label: str) -> list[str]:
    """The options a sidebar select box offers (opened, read, closed again)."""
    page.locator('[data-testid="stSidebar"]').get_by_role("combobox", name=label).click()
    options = page.locator('[role="listbox"] [role="option"]')
    options.first.wait_for()
    texts = [text.strip() for text in options.all_inner_texts()]
    page.keyboard.press("Escape")
    return texts


# --- the cases (in this order: the first runs on a server no session has opened yet) -----------


def shows_nothing(page: Any, teams: dict[str, list[str]], where: str) -> None:
    """No figure, table, chart or page list, no team named, no error box, and no "Page not
    found" box over it either (a shared link opens the sign-in page as it is)."""
    assert page.locator(ERRORS).count() == 0, f"/{where}: {page.locator(ERRORS).first.inner_text()}"
    assert page.locator('[role="dialog"]').count() == 0, page.locator(
        '[role="dialog"]'
    ).inner_text()
    for nothing in ("stMetric", "stDataFrame", "stPlotlyChart", "stSidebarNav"):
        assert page.locator(f'[data-testid="{nothing}"]').count() == 0, (where, nothing)
    text = page.evaluate(PAGE_TEXT, [])
    shown = [team for team in teams if mentions(text, team)]
    assert not shown, (where, shown)


def test_before_signing_in_any_link_shows_only_the_sign_in_page(
    site: Site, teams: dict[str, list[str]]
) -> None:
    # A page's own URL as the very first request: until a session has run app.py,
    # Streamlit would run pages/delivery.py on its own, without app.py's gate.
    with site.visitor() as page:
        for link in (f"delivery?team={MEMBER_TEAM}", "data_sources"):
            page.goto(f"{site.base}/{link}")
            page.get_by_role("button", name="Sign in").wait_for(timeout=120_000)
            page.wait_for_function(SCRIPT_DONE, timeout=60_000)
            assert "for signed-in members" in page.locator('[data-testid="stMain"]').inner_text()
            shows_nothing(page, teams, link)


def test_leadership_sees_every_team_and_signs_out(site: Site, teams: dict[str, list[str]]) -> None:
    with site.visitor() as page:
        site.sign_in(page, "lead")
        finished(page, "Overview")
        sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
        assert "cto@example.com" in sidebar and "leadership: every team" in sidebar
        assert page.locator("h3", has_text="Headline: all teams").count() == 1
        assert page.locator("h3", has_text="Organisation headline").count() == 0
        page.wait_for_function(
            """(names) => { const grid = document.querySelector('[data-testid="stDataFrame"]');
                const cells = grid ? [...grid.querySelectorAll('td')].map(c => c.innerText) : [];
                return names.every(name => cells.includes(name)); }""",
            arg=sorted(teams),
            timeout=60_000,
        )
        assert set(grid_cells(page)) >= set(teams)
        assert picker_options(page, "Team") == ["All teams", *sorted(teams)]
        navigation = page.locator('[data-testid="stSidebarNav"] a').all_inner_texts()
        assert any("Data & sources" in item for item in navigation), navigation
        page.screenshot(path=str(SHOTS / "signin-leadership.png"))

        # signing out ends the session: the cookie no longer opens any page
        page.locator('[data-testid="stSidebar"]').get_by_role("button", name="Sign out").click()
        sign_out_at_the_provider(site, page)
        for link in ("", f"delivery?team={MEMBER_TEAM}"):
            page.goto(f"{site.base}/{link}")
            page.get_by_role("button", name="Sign in").wait_for(timeout=60_000)
            page.wait_for_function(SCRIPT_DONE, timeout=60_000)
            shows_nothing(page, teams, link)


# (path and query, the page's title): links a member of billing might be sent, each asking
# for more than their team one way or another; every page but Data & sources (not theirs).
WIDENING = [
    (f"?team={OTHER_TEAM}", "Overview"),
    ("delivery?service={other_service}", "Delivery"),
    (f"reliability?team={MEMBER_TEAM}&service={{other_service}}", "Reliability"),
    ("incidents?team=All%20teams&period=90d", "Incidents"),
    (f"team_retro?team={OTHER_TEAM}", "Team retro"),
    (f"reports?team={OTHER_TEAM}", "Reports"),
]


def test_a_member_sees_the_headline_and_only_their_team(
    site: Site, teams: dict[str, list[str]]
) -> None:
    others = [name for team, names in teams.items() if team != MEMBER_TEAM for name in names]
    others += [team for team in teams if team != MEMBER_TEAM]
    other_service = teams[OTHER_TEAM][0]
    with site.visitor() as page:
        site.sign_in(page, "ana")  # Ana@Example.com in the token: case does not matter
        for number, (link, title) in enumerate([("", "Overview"), *WIDENING]):
            if number:  # the first is where signing in lands
                page.goto(f"{site.base}/{link.format(other_service=other_service)}")
            finished(page, title)
            if number == 0:
                sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
                assert f"team: {MEMBER_TEAM}" in sidebar and "leadership" not in sidebar
                assert page.locator("h3", has_text="Organisation headline").count() == 1
                assert page.locator("h3", has_text=f"Headline: team {MEMBER_TEAM}").count() == 1
                assert picker_options(page, "Team") == [MEMBER_TEAM]
                navigation = page.locator('[data-testid="stSidebarNav"] a').all_inner_texts()
                assert not any("Data & sources" in item for item in navigation), navigation
                page.screenshot(path=str(SHOTS / "signin-member.png"))
            for _ in open_everything(page):
                # the notice about the refused link is the only place another team's name
                # may appear (it repeats what the link asked for)
                text = page.evaluate(PAGE_TEXT, REFUSED_LINK)
                shown = sorted(name for name in others if mentions(text, name))
                assert not shown, f"/{link}: a member of {MEMBER_TEAM} is shown {shown}"
                assert mentions(text, MEMBER_TEAM), f"/{link}: {text[:300]}"
            if OTHER_TEAM in link or "other_service" in link:  # and the member is told so
                told = page.locator('[data-testid="stAlertContentWarning"]', has_text=REFUSED)
                assert told.count() == 1, f"/{link}: no notice"

        # Data & sources names every team's services: a member's link to it opens the Overview
        page.goto(f"{site.base}/data_sources")
        finished(page, "Overview")


@pytest.mark.parametrize(
    ("subject", "links"),
    [
        ("eve", ("", f"delivery?team={MEMBER_TEAM}", "data_sources")),
        # a member's address, marked not verified (as a string: the boolean is in
        # tests/test_access.py)
        ("trudy", ("",)),
    ],
)
def test_an_unknown_user_gets_a_polite_refusal_and_no_figures(
    site: Site, teams: dict[str, list[str]], subject: str, links: tuple[str, ...]
) -> None:
    with site.visitor() as page:
        site.sign_in(page, subject)
        for link in links:
            if link:
                page.goto(f"{site.base}/{link}")
                page.wait_for_function(SCRIPT_DONE, timeout=60_000)
            refusal = page.locator('[data-testid="stAlertContentInfo"]')
            refusal.wait_for(timeout=30_000)
            assert "has no access to the scorecard" in refusal.inner_text()
            shows_nothing(page, teams, link)
        if subject == "eve":
            page.screenshot(path=str(SHOTS / "signin-refused.png"))
            # the refusal's own sign-out button
            page.get_by_role("button", name="Sign out").click()
            sign_out_at_the_provider(site, page)


def sign_out_at_the_provider(site: Site, page: Any) -> None:
    """Streamlit sends the browser to the provider's end-session page; confirming it comes
    back to the dashboard's sign-in page, with the sign-in cookie gone."""
    page.wait_for_url(f"{site.issuer}/oauth2/end_session?**", timeout=30_000)
    page.get_by_role("button", name="End session").click()
    page.wait_for_url(f"{site.base}/**", timeout=30_000)
    page.get_by_role("button", name="Sign in").wait_for(timeout=60_000)
    assert not [c for c in page.context.cookies() if c["name"].startswith("_streamlit_user")]


def test_poise_ui_refuses_a_weak_cookie_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from poise.cli import main

    issuer = "http://127.0.0.1:9"
    config = tmp_path / "poise.yaml"
    config.write_text(
        yaml.safe_dump(auth_config(issuer, "poise", "http://127.0.0.1:8501/oauth2callback"))
    )
    monkeypatch.setenv(CLIENT_SECRET_ENV, "client-secret")
    monkeypatch.setenv(COOKIE_SECRET_ENV, "hunter2hunter2")
    code = main(["ui", "--config", str(config), "--db", f"sqlite:///{tmp_path / 'w.db'}"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"{COOKIE_SECRET_ENV} holds 14 characters" in err and "at least 32" in err
    assert "hunter2" not in err and "Poise dashboard on" not in err
