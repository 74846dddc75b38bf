"""Run the real WSGI app under waitress on 127.0.0.1 in a thread, for HTTP and browser tests."""

from __future__ import annotations

import threading
from typing import Any

from waitress.server import create_server


class LiveServer:
    """A waitress server on an ephemeral port serving a WSGI app."""

    def __init__(self, app: Any, host: str = "127.0.0.1") -> None:
        self.server: Any = create_server(app, host=host, port=0, threads=4, ident="newsdesk-test")
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def base(self) -> str:
        """Return the server's base URL."""
        return f"http://{self.server.effective_host}:{self.server.effective_port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.close()
        self.thread.join(timeout=5)
