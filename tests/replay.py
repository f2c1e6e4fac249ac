"""A real HTTP server on 127.0.0.1 that replays scripted API responses, for collector tests.

    with ReplayServer() as server:
        server.add("/repos/acme/svc/pulls",
                   Reply(200, [{"id": 1}], headers={"Link": server.link(next="/repositories/9/pulls?page=2")}),
                   query={"state": "all"})
        server.add("/repositories/9/pulls", Reply(200, []), query={"page": "2"})
        ... point the collector at server.base_url ...
        assert server.requests[0].headers["Authorization"] == "Bearer t0ken"

- A route is method + path, optionally + query (all given parameters must match exactly;
  the route with the most matching parameters wins). Unmatched requests get GitHub's
  404 body and are recorded too.
- A route replays its replies in order and then repeats the last one, so "500, 500, 200"
  scripts a transient fault. `Reply.body` may be bytes, str, or anything JSON-serialisable;
  `delay` sleeps before answering (for client timeouts).
- `add_handler` answers with a function of the request, for generated pages (benchmarks,
  long histories).
- `link(next=..., last=...)` builds a `Link` header of absolute URLs on this server.
- `requests` records everything received (method, path, query, headers, body).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

GITHUB_NOT_FOUND = {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}


@dataclass
class Reply:
    status: int = 200
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body).encode("utf-8")


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


@dataclass
class Route:
    method: str
    path: str
    query: dict[str, str] | None
    replies: list[Reply] = field(default_factory=list)
    handler: Callable[[RecordedRequest], Reply] | None = None
    served: int = 0

    def matches(self, request: RecordedRequest) -> bool:
        if request.method != self.method or request.path != self.path:
            return False
        return all(request.query.get(k) == v for k, v in (self.query or {}).items())

    def next_reply(self, request: RecordedRequest) -> Reply:
        self.served += 1
        if self.handler is not None:
            return self.handler(request)
        return self.replies[min(self.served, len(self.replies)) - 1]


class ReplayServer:
    """See the module docstring."""

    def __init__(self) -> None:
        self.routes: list[Route] = []
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> ReplayServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- scripting ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        """An absolute URL on this server (`path` may carry a query string)."""
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def link(self, **rels: str) -> str:
        """A `Link` header value: link(next="/x?page=2", last="/x?page=9")."""
        return ", ".join(f'<{self.url(path)}>; rel="{rel}"' for rel, path in rels.items())

    def add(
        self,
        path: str,
        *replies: Reply,
        method: str = "GET",
        query: dict[str, str] | None = None,
    ) -> Route:
        route = Route(method.upper(), path, query, list(replies) or [Reply()])
        with self._lock:
            self.routes.append(route)
        return route

    def add_handler(
        self,
        path: str,
        handler: Callable[[RecordedRequest], Reply],
        *,
        method: str = "GET",
        query: dict[str, str] | None = None,
    ) -> Route:
        route = Route(method.upper(), path, query, handler=handler)
        with self._lock:
            self.routes.append(route)
        return route

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [request for request in self.requests if request.path == path]

    # -- serving --------------------------------------------------------------------------

    def _answer(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            candidates = [route for route in self.routes if route.matches(request)]
            if not candidates:
                return Reply(404, GITHUB_NOT_FOUND, {"Content-Type": "application/json"})
            route = max(candidates, key=lambda r: len(r.query or {}))
            return route.next_reply(request)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; with Nagle on, the body would wait
            # for the client's delayed ACK (~40 ms a request).
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = RecordedRequest(
                    method=self.command,
                    path=parts.path,
                    query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                    headers=dict(self.headers.items()),
                    body=self.rfile.read(length) if length else b"",
                )
                reply = server._answer(request)
                if reply.delay:
                    time.sleep(reply.delay)
                body = b"" if reply.status == 304 else reply.encoded()
                try:
                    self.send_response(reply.status)
                    headers = {"Content-Type": "application/json; charset=utf-8", **reply.headers}
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
