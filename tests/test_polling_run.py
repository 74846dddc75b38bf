"""`newsdesk run` as a real process: SIGHUP reloads config.toml without a restart; /feeds shows the result."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from .feedgen import rss
from .support.httpserver import FeedServer, Reply

NEWSDESK = str(Path(sys.executable).parent / "newsdesk")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def feeds_of(port: int) -> dict[str, dict[str, object]]:
    """Return /api/v1/feeds by URL, or {} while the server is not up yet."""
    try:
        return {f["url"]: f for f in httpx.get(f"http://127.0.0.1:{port}/api/v1/feeds", timeout=2).json()["feeds"]}
    except httpx.HTTPError:
        return {}


def wait_until(condition, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


def write_config(path: Path, port: int, *urls: str) -> None:
    feeds = "".join(f'[[feeds]]\nurl = "{u}"\n' for u in urls)
    path.write_text(f'data_dir = "data"\n[server]\nport = {port}\n[polling]\nper_host_delay = 0\n{feeds}')


def test_sighup_reloads_feeds_in_a_running_process(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.route("/a.xml", Reply(200, rss(2, title="A")))
    feed_server.route("/b.xml", Reply(200, rss(3, title="B")))
    a, b = feed_server.url("/a.xml"), feed_server.url("/b.xml")
    port = free_port()
    config = tmp_path / "config.toml"
    write_config(config, port, a)
    env = {k: v for k, v in os.environ.items() if k != "NEWSDESK_CONFIG"}
    with open(tmp_path / "newsdesk.log", "ab") as log:
        proc = subprocess.Popen(
            [NEWSDESK, "--config", str(config), "run", "--tick", "1"], stdout=subprocess.DEVNULL, stderr=log, env=env
        )
    try:
        wait_until(lambda: feeds_of(port).get(a, {}).get("last_status") == 200)
        write_config(config, port, b)  # a removed, b added
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: feeds_of(port).get(b, {}).get("entry_count") == 3)
        assert a not in feeds_of(port)
        assert proc.poll() is None  # still running: reloaded, not restarted
        hits_of_a = len(feed_server.hits("/a.xml"))
        time.sleep(2.5)  # a couple of ticks: the removed feed is never polled again
        assert len(feed_server.hits("/a.xml")) == hits_of_a
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    log_text = (tmp_path / "newsdesk.log").read_text()
    assert "configuration reloaded" in log_text and f"poll feed={b} status=200" in log_text
