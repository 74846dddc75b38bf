"""`newsdesk run` and `newsdesk serve` as real processes: scheduler + waitress, web-only."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from .support.httpserver import FeedServer, Reply

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "e2e" / "harbour.xml"
NEWSDESK = str(Path(sys.executable).parent / "newsdesk")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, predicate, timeout: float = 90.0) -> httpx.Response:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=2)
            if predicate(response):
                return response
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"{url} never became ready ({last})")


def start(config: Path, *args: str) -> subprocess.Popen[bytes]:
    """Start `newsdesk` in the background, its log going to a file beside the config."""
    env = {k: v for k, v in os.environ.items() if k != "NEWSDESK_CONFIG"}
    with open(config.parent / "newsdesk.log", "ab") as log:
        return subprocess.Popen(
            [NEWSDESK, "--config", str(config), *args], stdout=subprocess.DEVNULL, stderr=log, env=env
        )


def test_run_polls_indexes_and_serves(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.route("/harbour.xml", Reply(200, FIXTURE.read_bytes(), {"Content-Type": "application/rss+xml"}))
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(
        f'data_dir = "data"\n[server]\nport = {port}\n[[feeds]]\nurl = "{feed_server.url("/harbour.xml")}"\n'
    )
    proc = start(config, "run", "--tick", "1")
    try:
        found = wait_for(
            f"http://127.0.0.1:{port}/api/v1/search?q=mackerel", lambda r: r.status_code == 200 and r.json()["total"]
        )
        assert found.json()["hits"][0]["title"] == "Fishermen report record mackerel catch"
        # A feed added from the CLI while `run` is running is picked up on a later tick.
        feed_server.route(
            "/second.xml",
            Reply(200, FIXTURE.read_bytes().replace(b"hg-10", b"s2-10").replace(b"mackerel", b"herring"), {}),
        )
        env = {k: v for k, v in os.environ.items() if k != "NEWSDESK_CONFIG"}
        subprocess.run(
            [NEWSDESK, "--config", str(config), "feeds", "add", feed_server.url("/second.xml")],
            check=True,
            capture_output=True,
            env=env,
        )
        wait_for(
            f"http://127.0.0.1:{port}/api/v1/search?q=herring", lambda r: r.status_code == 200 and r.json()["total"]
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    assert proc.returncode == 0


def test_serve_only_reads(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(f'data_dir = "data"\n[server]\nport = {port}\n')
    proc = start(config, "serve")
    try:
        health = wait_for(f"http://127.0.0.1:{port}/healthz", lambda r: r.status_code == 200)
        assert health.json()["status"] == "ok"
        assert health.headers["server"] == "newsdesk"  # waitress, not the Flask development server
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/search?q=anything").json()["total"] == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    # serve never creates the index: only the writer process does.
    assert not (tmp_path / "data" / "index").exists()
