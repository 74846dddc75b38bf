"""Run the real WSGI app under waitress on 127.0.0.1 in a thread, for HTTP and browser tests."""

from __future__ import annotations

import threading
from typing import Any

from waitress.server import create_server


class LiveServer:
    """A waitress server on an ephemeral port serving a WSGI app."""

    def __init__(self, app: Any, host: str = "127.0.0.1", threads: int = 4) -> None:
        self.server: Any = create_server(app, host=host, port=0, threads=threads, ident="newsdesk-test")
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        # Drive waitress's event loop in short slices so that shutdown happens on this thread:
        # closing its sockets from another thread while the loop polls them raises EBADF.
        while not self._stop.is_set():
            self.server.asyncore.loop(timeout=0.05, map=self.server._map, count=1)
        self.server.task_dispatcher.shutdown()
        for channel in list(self.server._map.values()):
            channel.close()

    @property
    def base(self) -> str:
        """Return the server's base URL."""
        return f"http://{self.server.effective_host}:{self.server.effective_port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.thread.join(timeout=10)
