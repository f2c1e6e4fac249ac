"""The warehouse going away under a running dashboard, and coming back.

A TCP proxy on 127.0.0.1 stands between the dashboard and the real PostgreSQL: `cut()`
drops every connection through it and refuses new ones (what a restarting server looks like
to its clients), `restore()` lets them through again. While cut, every page shows one clear
"Database unavailable" message (no traceback, no Streamlit exception box), whether the
warehouse was gone before the page began, went away in the middle of it, or was never
reached since the process started. After restore, the next run of the page shows figures
again in the same process: the engine's pre-ping replaces the broken pooled connections and
no failure was cached. In a real browser (`poise ui`, headless Chromium) the page comes back
by itself, without a reload.

A SQLite warehouse is a local file: it does not restart under the dashboard, so these tests
are PostgreSQL's only (they skip, saying why, without POISE_TEST_POSTGRES_URL).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from streamlit.testing.v1 import AppTest

from dashboard import data, outage
from poise.demo import build_demo
from poise.warehouse import open_warehouse

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["overview", "delivery", "reliability", "incidents", "team_retro", "report", "data_sources"]
TIMEOUT = 240


class CuttableProxy:
    """Forwards 127.0.0.1:`port` to `target` byte for byte, until cut."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._lock = threading.Lock()
        self._pairs: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.port = 0
        self.restore()

    def restore(self) -> None:
        """Listen (again, on the same port) and forward every connection."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.1)  # the accept loop notices a cut within this
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Drop every open connection and refuse new ones (the port is closed)."""
        with self._lock:
            listener, self._listener = self._listener, None
            open_sockets, self._pairs = self._pairs, set()
        assert listener is not None, "already cut"
        listener.close()
        for sock in open_sockets:
            _drop(sock)

    def close(self) -> None:
        if self._listener is not None:
            self.cut()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _drop(client)
                continue
            with self._lock:
                if self._listener is not listener:  # cut while this one was connecting
                    _drop(client)
                    _drop(upstream)
                    return
                self._pairs |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            with self._lock:
                self._pairs -= {source, sink}
            _drop(source)
            _drop(sink)


def _drop(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv on it
    sock.close()


@pytest.fixture
def proxied(postgres_url: str) -> Iterator[tuple[CuttableProxy, str]]:
    """The demo organisation (60 days up to today) in a PostgreSQL schema of this test, and
    a URL that reaches it through a cuttable proxy."""
    engine = open_warehouse(postgres_url)
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    build_demo(engine, until=midnight, days=60)
    engine.dispose()
    direct = make_url(postgres_url)
    proxy = CuttableProxy((direct.host or "127.0.0.1", direct.port or 5432))
    url = direct.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    try:
        yield proxy, url
    finally:
        proxy.close()


def run(page: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / f"{page}.py"), default_timeout=TIMEOUT)
    if page == "team_retro":
        at.query_params["team"] = "billing"
    return at.run()


def assert_figures(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert len(at.metric) >= 4, [m.label for m in at.metric]


def assert_unavailable(at: AppTest, page: str = "") -> None:
    """One message saying the database is unavailable, and nothing else of the page."""
    assert not at.exception, (page, [e.message for e in at.exception])
    assert len(at.error) == 1, (page, [e.value for e in at.error])
    message = at.error[0].value
    assert message.startswith(f"**{outage.TITLE}.**"), message
    assert "comes back by itself" in message
    assert "Traceback" not in message
    assert not at.metric and not at.dataframe, page


def test_every_page_says_unavailable_while_cut_and_recovers(
    proxied: tuple[CuttableProxy, str], use: Any
) -> None:
    proxy, url = proxied
    use(url)
    session = run("overview")
    assert_figures(session)

    proxy.cut()
    session.run()  # the same session: its cached figures must not pass for current ones
    assert_unavailable(session, "overview, rerun")
    assert "connection" in session.error[0].value.lower()  # the reason, in one line
    for page in PAGES:
        assert_unavailable(run(page), page)

    proxy.restore()
    session.run()  # the same process and engine: nothing restarted, nothing cleared
    assert_figures(session)
    assert_figures(run("delivery"))


def test_warehouse_lost_in_the_middle_of_a_page(
    proxied: tuple[CuttableProxy, str], use: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page's check passes, the sidebar is drawn, then the server goes away while the
    figures are being read."""
    proxy, url = proxied
    use(url)
    compute = data.compute_basis

    def cut_then_compute(*args: Any) -> Any:
        if proxy._listener is not None:
            proxy.cut()
        return compute(*args)

    monkeypatch.setattr(data, "compute_basis", cut_then_compute)
    session = run("overview")
    assert_unavailable(session, "overview, cut mid-page")
    assert session.sidebar.selectbox  # the filters had been drawn: the failure came later

    monkeypatch.setattr(data, "compute_basis", compute)
    proxy.restore()
    session.run()
    assert_figures(session)


def test_warehouse_unreachable_when_the_dashboard_first_opens_it(
    proxied: tuple[CuttableProxy, str], use: Any
) -> None:
    """No engine yet in this process for the URL (its first page view): opening it is
    what fails, and that failure is not kept either."""
    proxy, url = proxied
    use(url + "&application_name=poise-fault-first-open")  # a URL no cache has seen
    proxy.cut()
    session = run("overview")
    assert_unavailable(session, "first open")
    proxy.restore()
    session.run()
    assert_figures(session)


# --- in a real browser -------------------------------------------------------------------------

STATE = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    const idle = app && app.getAttribute('data-test-script-state') === 'notRunning';
    const errors = [...document.querySelectorAll('[data-testid="stAlertContentError"]')];
    return {
        idle,
        metrics: document.querySelectorAll('[data-testid="stMetric"]').length,
        exceptions: document.querySelectorAll('[data-testid="stException"]').length,
        errors: errors.map(e => e.innerText),
    };
}"""


@pytest.mark.slow
def test_a_browser_page_shows_the_outage_and_comes_back_by_itself(
    proxied: tuple[CuttableProxy, str],
) -> None:
    from test_browser import SHOTS, browser, require_chromium, serving

    from dashboard.headless import full_page, visit

    require_chromium()
    proxy, url = proxied
    SHOTS.mkdir(parents=True, exist_ok=True)
    with serving(url) as base, browser() as chromium:
        page = chromium.new_page(viewport={"width": 1440, "height": 900})
        visit(page, base, "Overview")
        assert page.evaluate(STATE)["metrics"] >= 4

        proxy.cut()
        page.reload(wait_until="domcontentloaded")
        page.wait_for_function(
            f"""() => [...document.querySelectorAll('[data-testid="stAlertContentError"]')]
                .some(e => e.innerText.includes({outage.TITLE!r}))""",
            timeout=120_000,
        )
        time.sleep(1.0)
        state = page.evaluate(STATE)
        assert state["exceptions"] == 0 and state["metrics"] == 0, state
        assert len(state["errors"]) == 1, state
        full_page(page, SHOTS / "database-unavailable.png")
        navigations: list[str] = []
        page.on("framenavigated", lambda frame: navigations.append(frame.url))

        proxy.restore()  # and nobody touches the page: its own check brings the figures back
        page.wait_for_function(
            """() => document.querySelectorAll('[data-testid="stMetric"]').length >= 4
                && !document.querySelector('[data-testid="stAlertContentError"]')""",
            timeout=outage.RETRY_SECONDS * 1000 + 120_000,
        )
        page.wait_for_function(f"() => ({STATE})().idle", timeout=120_000)
        state = page.evaluate(STATE)
        assert state["exceptions"] == 0 and not state["errors"], state
        assert not navigations, navigations  # no reload: the page came back by itself
