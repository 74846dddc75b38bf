"""A real threaded HTTP server on 127.0.0.1 whose routes tests program to behave (and misbehave)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """A canned response."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


#: A route handler gets the request handler (headers, path) and returns a Reply, or writes itself and returns None.
Handler = Callable[[BaseHTTPRequestHandler], Reply | None]


class FeedServer:
    """Serves programmed routes on 127.0.0.1; records every request it saw."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Handler] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._lock = threading.Lock()
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                return

            def do_GET(self) -> None:
                with server._lock:
                    server.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                handler = server.routes.get(self.path.split("?", 1)[0])
                if handler is None:
                    reply: Reply | None = Reply(404, b"not found", {"Content-Type": "text/plain"})
                else:
                    try:
                        reply = handler(self)
                    except (BrokenPipeError, ConnectionResetError):
                        return
                if reply is None:
                    return
                try:
                    self.send_response(reply.status)
                    headers = {"Content-Length": str(len(reply.body)), **reply.headers}
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    return

        class _Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                # A client that hangs up on a misbehaving route is the point of the test, not news.
                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)

        self.httpd = _Server((host, 0), _Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        """Return the server's base URL."""
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        """Return the absolute URL of ``path``."""
        return self.base + path

    def route(self, path: str, handler: Handler | Reply) -> None:
        """Serve ``path`` with a handler or a fixed Reply."""
        if isinstance(handler, Reply):
            fixed = handler
            self.routes[path] = lambda _request: fixed
        else:
            self.routes[path] = handler

    def hits(self, path: str) -> list[dict[str, str]]:
        """Return the headers of every request made to ``path``."""
        with self._lock:
            return [h for p, h in self.requests if p.split("?", 1)[0] == path]

    def __enter__(self) -> FeedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
