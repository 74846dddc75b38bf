"""Scale-out nodes as real processes (`newsdesk poller`, `newsdesk serve --follow`) and a multi-host feed server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx

from .httpserver import FeedServer, Reply

NEWSDESK = str(Path(sys.executable).parent / "newsdesk")


def free_port() -> int:
    """Return a TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_node(config: Path, log: Path, *args: str) -> subprocess.Popen[bytes]:
    """Start `newsdesk --config CONFIG ARGS...` in the background, stderr appended to ``log``."""
    env = {k: v for k, v in os.environ.items() if k != "NEWSDESK_CONFIG"}
    with open(log, "ab") as stream:
        return subprocess.Popen(
            [NEWSDESK, "--config", str(config), *args], stdout=subprocess.DEVNULL, stderr=stream, env=env
        )


def stop_node(proc: subprocess.Popen[bytes]) -> None:
    """Stop a node: SIGTERM, then SIGKILL if it has not gone within 20 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Return ``condition()``'s first truthy value, polling; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except (httpx.HTTPError, OSError) as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} ({last})")


def replica_status(port: int) -> dict[str, Any] | None:
    """Return a web follower's replica check from /readyz, or None while it does not answer."""
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
    except httpx.HTTPError:
        return None
    checks: dict[str, Any] = response.json()["checks"]
    replica: dict[str, Any] | None = checks.get("replica")
    return replica


def rss(title: str, items: list[tuple[str, str, str]]) -> bytes:
    """Return an RSS 2.0 document with (guid, title, description) items, an hour apart."""
    now = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    body = "".join(
        f"<item><guid>{guid}</guid><title>{item_title}</title><link>https://example.org/{guid}</link>"
        f"<description>{text}</description><pubDate>{format_datetime(now - timedelta(hours=n))}</pubDate></item>"
        for n, (guid, item_title, text) in enumerate(items)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title>'
        f"<link>https://example.org/</link>{body}</channel></rss>"
    ).encode()


@dataclass
class HostStats:
    """What one feed host saw: requests per path, in flight now and at most, and when each request started."""

    requests: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    peak: int = 0
    starts: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class FeedHosts:
    """Several feed servers on distinct loopback addresses (distinct hosts to the pollers), counting as a site would."""

    def __init__(self, addresses: list[str]) -> None:
        self.servers = [FeedServer(address) for address in addresses]
        self.stats = {address: HostStats() for address in addresses}
        #: Seconds each response waits (a slow site); may be changed while serving.
        self.latency = 0.2
        self._stack = ExitStack()

    def __enter__(self) -> FeedHosts:
        for server in self.servers:
            self._stack.enter_context(server)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def add_feed(self, host: int, path: str, body: bytes) -> str:
        """Serve ``body`` at ``path`` on host number ``host``; return the feed's URL."""
        server = self.servers[host]
        stats = self.stats[server.httpd.server_address[0]]

        def handler(request: BaseHTTPRequestHandler) -> Reply:
            with stats.lock:
                stats.requests[path] += 1
                stats.in_flight += 1
                stats.peak = max(stats.peak, stats.in_flight)
                stats.starts.append(time.time())
            try:
                time.sleep(self.latency)
            finally:
                with stats.lock:
                    stats.in_flight -= 1
            return Reply(200, body, {"Content-Type": "application/rss+xml"})

        server.route(path, handler)
        return server.url(path)

    def requests(self) -> Counter[str]:
        """Return requests per feed URL over every host."""
        total: Counter[str] = Counter()
        for server in self.servers:
            for path, count in self.stats[server.httpd.server_address[0]].requests.items():
                total[server.url(path)] += count
        return total


@contextmanager
def running(*procs: subprocess.Popen[bytes]) -> Iterator[None]:
    """Stop every node on the way out, whatever happened."""
    try:
        yield
    finally:
        for proc in procs:
            stop_node(proc)
