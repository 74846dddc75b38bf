"""Real `newsdesk` processes in their own process group, their logs, and a farm of feeds to keep them busy."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from tests.feedgen import rss

from .httpserver import FeedServer, Reply

NEWSDESK = str(Path(sys.executable).parent / "newsdesk")

#: What must never appear on a process's stderr.
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|KeyboardInterrupt|database is locked|LockError")


def free_port() -> int:
    """Return a TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def env() -> dict[str, str]:
    """Return the environment for a child `newsdesk` (no $NEWSDESK_CONFIG leaking in)."""
    return {k: v for k, v in os.environ.items() if k != "NEWSDESK_CONFIG"}


def serve_feeds(server: FeedServer, feeds: int, entries: int, *, delay: float = 0.0) -> list[str]:
    """Route ``feeds`` RSS documents of ``entries`` items each (distinct links per feed); return their URLs."""
    urls = []
    for n in range(feeds):
        body = rss(entries, title=f"Feed {n}").replace(b"example.org", f"site{n}.example".encode())
        path = f"/feed{n}.xml"
        if delay:
            server.route(path, _slow(Reply(200, body, {"Content-Type": "application/rss+xml"}), delay))
        else:
            server.route(path, Reply(200, body, {"Content-Type": "application/rss+xml"}))
        urls.append(server.url(path))
    return urls


def _slow(reply: Reply, delay: float) -> Callable[[BaseHTTPRequestHandler], Reply]:
    def handler(_request: BaseHTTPRequestHandler) -> Reply:
        time.sleep(delay)
        return reply

    return handler


def write_config(
    directory: Path, feed_urls: list[str], *, port: int | None = None, extra: str = "", name: str = "config.toml"
) -> Path:
    """Write a config (data in ``directory``/data) polling ``feed_urls`` as fast as a local server allows; return it."""
    lines = [
        'data_dir = "data"',
        "[server]",
        f"port = {port or free_port()}",
        "[polling]",
        "per_host_delay = 0",
        "per_host_concurrency = 8",
        "concurrency = 8",
        extra,
    ]
    for url in feed_urls:
        lines += ["[[feeds]]", f'url = "{url}"']
    path = directory / name
    path.write_text("\n".join(lines) + "\n")
    return path


class Newsdesk:
    """One `newsdesk` process, leader of its own process group, its stderr in a file."""

    def __init__(self, config: Path, *args: str, log_name: str = "newsdesk.log", cwd: Path | None = None) -> None:
        self.log_path = config.parent / log_name
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [NEWSDESK, "--config", str(config), *args],
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=env(),
                start_new_session=True,
                cwd=cwd,
            )
        self.pid = self.proc.pid

    def log(self) -> str:
        """Return what this process wrote to stderr so far."""
        with open(self.log_path, "rb") as file:
            file.seek(self._log_start)
            return file.read().decode("utf-8", "replace")

    def wait_for_log(self, pattern: str, timeout: float = 60.0, *, count: int = 1) -> bool:
        """Wait until ``pattern`` appears ``count`` times in the log; return False on timeout or exit."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(regex.findall(self.log())) >= count:
                return True
            if self.proc.poll() is not None:
                return len(regex.findall(self.log())) >= count
            time.sleep(0.05)
        return False

    def signal_group(self, signum: int) -> None:
        """Send ``signum`` to the whole process group, as `kill -SIG -<pgid>` or a terminal's Ctrl-C does."""
        try:
            os.killpg(self.pid, signum)
        except ProcessLookupError:  # the whole group is gone already
            pass

    def stop(self, signum: int, timeout: float) -> int | None:
        """Signal the group, wait up to ``timeout`` for the exit status (None: it did not exit), then kill the rest."""
        try:
            self.signal_group(signum)
            return self.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        finally:
            self.kill_group()

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit; return its status."""
        return self.proc.wait(timeout=timeout)

    def live_group_members(self) -> list[int]:
        """Return the pids still alive (not zombies) in this process's group."""
        return group_members(self.pid)

    def group_gone(self) -> bool:
        """Return whether no process of the group is alive any more."""
        return not group_members(self.pid)

    def kill_group(self) -> None:
        """SIGKILL every process of the group (cleanup)."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a process that survives SIGKILL
            pass


def group_members(pgid: int) -> list[int]:
    """Return the live (not zombie) processes whose process group is ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass; return whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def store_query(db: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    """Run a query on the SQLite store from outside, as another process would; return the rows."""
    if not db.exists():
        return []
    conn = sqlite3.connect(db, timeout=30)
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:  # the schema is not created yet
        if "no such table" in str(exc):
            return []
        raise
    finally:
        conn.close()
