"""Operations: /healthz, /readyz and /metrics through the real HTTP server; JSON logs and progress bars through the real CLI."""

from __future__ import annotations

import json
import logging
import os
import pty
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from aggregator.config import Config
from aggregator.errors import ConfigError
from aggregator.poller import update_feeds
from aggregator.store import Store
from web.app import create_app, services_of
from web.feeds import feed_state
from web.logs import JsonFormatter
from web.metrics import client_addresses, metrics_allowed

from .conftest import make_config
from .feedgen import html_page, rss
from .support.cli import NEWSDESK, newsdesk
from .support.httpserver import FeedServer, Reply
from .support.live import LiveServer
from .test_processes import free_port, start, wait_for


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Return every sample of a Prometheus exposition, keyed by name and sorted labels (parsed by the official parser)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


def etag_feed(body: bytes) -> Any:
    """Return a route handler serving ``body`` with an ETag, and 304 to a request that has it."""

    def handle(request: BaseHTTPRequestHandler) -> Reply:
        if request.headers.get("If-None-Match") == '"v1"':
            return Reply(304, b"", {"ETag": '"v1"'})
        return Reply(200, body, {"Content-Type": "application/rss+xml", "ETag": '"v1"'})

    return handle


@pytest.fixture
def newsroom(tmp_path: Path, feed_server: FeedServer) -> Iterator[Flask]:
    """Yield an app over a store with three feeds: a good one (with an ETag), a failing server, an HTML page."""
    feed_server.route("/good.xml", etag_feed(rss(3, title="Good feed")))
    feed_server.route("/broken.xml", Reply(500, b"oops", {"Content-Type": "text/plain"}))
    feed_server.route("/page.html", Reply(200, html_page(), {"Content-Type": "text/html"}))
    config = make_config(tmp_path)
    app = create_app(config)
    store = services_of(app).store
    for path in ("/good.xml", "/broken.xml", "/page.html"):
        store.add_feed(feed_server.url(path))
    yield app
    services_of(app).close()


def poll_all(app: Flask) -> None:
    """Poll every feed of the app's store with the app's metrics watching (as `newsdesk run` wires it)."""
    services = services_of(app)
    update_feeds(services.store, services.store.list_feeds(), services.config, observer=services.metrics.observer())


# ---------------------------------------------------------------------- /healthz and /readyz


def test_readyz_is_ready_with_store_and_index_and_fails_when_the_index_directory_goes(newsroom: Flask) -> None:
    services = services_of(newsroom)
    poll_all(newsroom)
    with LiveServer(newsroom) as live:
        # Polled, not yet indexed: no index at all, so not ready; the lag is not reported without one.
        early = httpx.get(f"{live.base}/readyz")
        assert early.status_code == 503
        assert early.json()["checks"]["index"]["ok"] is False
        assert early.json()["index"] == "empty"

        services.indexer().catch_up()
        ready = httpx.get(f"{live.base}/readyz")
        assert ready.status_code == 200, ready.text
        report = ready.json()
        assert report["status"] == "ok" and report["entries"] == 3 and report["index"] == "ready"
        checks = report["checks"]
        assert set(checks) == {"store", "index", "polling", "features"}  # no scheduler in a serve-only process
        assert checks["store"] == {"ok": True, "entries": 3, "seconds": checks["store"]["seconds"]}
        assert checks["index"]["lag_changes"] == 0 and checks["index"]["seq"] == services.store.last_seq()
        assert checks["polling"]["last_check_at"] is not None and checks["polling"]["late_seconds"] == 0

        shutil.rmtree(services.config.index_dir)
        gone = httpx.get(f"{live.base}/readyz")
        assert gone.status_code == 503
        assert gone.json()["status"] == "error"
        index = gone.json()["checks"]["index"]
        assert index["ok"] is False and "missing" in index["error"] and "reindex" in index["error"]
        # Liveness does not depend on the data: the process still answers.
        health = httpx.get(f"{live.base}/healthz")
        assert health.status_code == 200 and health.json()["status"] == "ok"


def one_feed_config(tmp_path: Path, feed_server: FeedServer, top: str = "") -> tuple[Path, int]:
    """Write a config.toml (``top`` lines first) serving on a free port and following one feed of four
    entries on ``feed_server``; return it and the port."""
    feed_server.route("/good.xml", Reply(200, rss(4), {"Content-Type": "application/rss+xml"}))
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(
        f'data_dir = "data"\n{top}[server]\nport = {port}\n[[feeds]]\nurl = "{feed_server.url("/good.xml")}"\n'
    )
    return config, port


def test_a_server_reads_related_coverage_postings_once_it_listens(tmp_path: Path, feed_server: FeedServer) -> None:
    # `newsdesk serve` starts reading the index's postings in the background as soon as it listens (before
    # any related request), and /readyz says how far it got; the node is ready meanwhile.
    config, port = one_feed_config(tmp_path, feed_server)
    newsdesk(config, "poll", "--once")
    newsdesk(config, "index")
    proc = start(config, "serve")
    try:

        def read(response: httpx.Response) -> bool:
            held = response.json()["checks"]["index"].get("related_postings") if response.status_code == 200 else None
            return bool(held) and held["loading"] == 0 and held["segments"] >= 1

        held = wait_for(f"http://127.0.0.1:{port}/readyz", read).json()["checks"]["index"]["related_postings"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    assert held["postings"] > 4  # four entries' titles and texts

    # related.postings_in_memory = 0: nothing is held, even once answers have read the index.
    config.write_text(config.read_text() + "[related]\npostings_in_memory = 0\n")
    proc = start(config, "serve")
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/healthz", lambda r: r.status_code == 200)
        assert httpx.get(f"{base}/api/v1/related", params={"title": "Item 1", "date": "2026-01-01"}).status_code == 200
        none = httpx.get(f"{base}/readyz").json()["checks"]["index"]["related_postings"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    assert none == {"segments": 0, "loading": 0, "postings": 0}


def test_readyz_fails_when_the_database_is_unreachable_and_healthz_does_not(newsroom: Flask) -> None:
    services = services_of(newsroom)
    services.indexer().catch_up()
    with LiveServer(newsroom) as live:
        assert httpx.get(f"{live.base}/readyz").status_code == 200
        # The data volume goes away. Pooled SQLite connections would go on reading the unlinked file;
        # a new connection is what meets the missing directory, as after a restart or pool recycle.
        shutil.rmtree(services.config.data_dir)
        services.store.close()
        answer = httpx.get(f"{live.base}/readyz")
        assert answer.status_code == 503
        store = answer.json()["checks"]["store"]
        assert store["ok"] is False and "unable to open database file" in store["error"]
        assert answer.json()["entries"] is None
        assert httpx.get(f"{live.base}/healthz").status_code == 200
        # A scrape still answers, and says the store is down.
        scraped = samples(httpx.get(f"{live.base}/metrics").text)
        assert value(scraped, "newsdesk_store_up") == 0


def test_readyz_fails_when_a_feed_waits_past_the_staleness(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.route("/good.xml", Reply(200, rss(2), {"Content-Type": "application/rss+xml"}))
    app = create_app(make_config(tmp_path, server={"ready_poll_staleness": "1s"}))
    services = services_of(app)
    services.indexer().catch_up()
    services.store.add_feed(feed_server.url("/good.xml"))
    client = app.test_client()
    time.sleep(1.5)  # due since it was added, and nobody polls it
    late = client.get("/readyz")
    assert late.status_code == 503
    polling = late.get_json()["checks"]["polling"]
    assert polling["ok"] is False and polling["late_seconds"] > 1 and "polling is stopped" in polling["error"]
    poll_all(app)  # checked: next due in the future
    assert client.get("/readyz").status_code == 200
    services.close()


def test_readyz_says_when_a_feature_in_use_is_missing(
    tmp_path: Path, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A `newsdesk serve` whose Python cannot import trafilatura (as under lxml 6 without lxml_html_clean),
    # with a feed asking for full content: not ready, and /readyz says why.
    shim = tmp_path / "shim" / "trafilatura"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text(
        'raise ImportError("lxml.html.clean module is now a separate project lxml_html_clean")\n'
    )
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(
        f'data_dir = "data"\n[server]\nport = {port}\n'
        f'[[feeds]]\nurl = "{feed_server.url("/a.xml")}"\nfull_content = true\n'
    )
    newsdesk(config, "index")  # an (empty) index, so the features are the only thing missing
    monkeypatch.setenv("PYTHONPATH", str(shim.parent))
    proc = start(config, "serve")
    try:
        answer = wait_for(f"http://127.0.0.1:{port}/readyz", lambda r: r.status_code in (200, 503))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    assert answer.status_code == 503
    checks = answer.json()["checks"]
    assert checks["index"]["ok"] is True and checks["store"]["ok"] is True
    feature = checks["features"]["features"]["full_content"]
    assert feature["available"] is False and feature["used"] is True
    assert "lxml_html_clean" in feature["reason"] and "full_content" in checks["features"]["error"]


def test_monitoring_reads_of_the_store(any_store: Store, config: Config, feed_server: FeedServer) -> None:
    feed_server.route("/good.xml", Reply(200, rss(3), {"Content-Type": "application/rss+xml"}))
    feed_server.route("/broken.xml", Reply(503, b"down", {}))
    good = any_store.add_feed(feed_server.url("/good.xml"))
    broken = any_store.add_feed(feed_server.url("/broken.xml"))
    gone = any_store.add_feed(feed_server.url("/gone.xml"))
    any_store.set_feed_enabled(gone.id, False, "the server answered 410 Gone")
    now = datetime.now(UTC)
    oldest = any_store.oldest_due_at(now)
    assert oldest is not None and oldest.tzinfo is not None and oldest <= now
    assert any_store.last_check_at() is None
    assert any_store.pending_changes(0) == (0, None)

    update_feeds(any_store, [good, broken], config)
    states: dict[str, int] = {}
    for (enabled, reason, checked, failing), count in any_store.feed_state_counts().items():
        state = feed_state(enabled=enabled, disabled_reason=reason, checked=checked, failing=failing)
        states[state] = states.get(state, 0) + count
    assert states == {"ok": 1, "failing": 1, "retired": 1}
    checked_at = any_store.last_check_at()
    assert checked_at is not None and abs((datetime.now(UTC) - checked_at).total_seconds()) < 120
    count, first = any_store.pending_changes(0)
    assert count == 3 and first is not None and first.tzinfo is not None
    assert any_store.pending_changes(any_store.last_seq()) == (0, None)
    # Both enabled feeds are scheduled in the future now; the retired one is never due.
    assert any_store.oldest_due_at(datetime.now(UTC)) is None


# ---------------------------------------------------------------------- /metrics


def test_metrics_move_with_polls_searches_and_related_coverage(newsroom: Flask) -> None:
    services = services_of(newsroom)
    with LiveServer(newsroom) as live:
        before = samples(httpx.get(f"{live.base}/metrics").text)
        assert value(before, "newsdesk_polls_total", outcome="ok") == 0
        assert value(before, "newsdesk_feeds", state="new") == 3

        poll_all(newsroom)
        scraped = samples(httpx.get(f"{live.base}/metrics").text)
        assert value(scraped, "newsdesk_polls_total", outcome="ok") == 1
        assert value(scraped, "newsdesk_polls_total", outcome="http_error") == 1
        assert value(scraped, "newsdesk_polls_total", outcome="parse_error") == 1
        assert value(scraped, "newsdesk_fetch_duration_seconds_count") == 3
        assert value(scraped, "newsdesk_entries_ingested_total", kind="new") == 3
        assert value(scraped, "newsdesk_feeds", state="ok") == 1
        assert value(scraped, "newsdesk_feeds", state="failing") == 2
        assert value(scraped, "newsdesk_entries") == 3
        # Stored, not indexed yet: the lag is the three new entries.
        assert value(scraped, "newsdesk_index_lag_changes") == 3
        assert value(scraped, "newsdesk_index_lag_seconds") >= 0
        assert value(scraped, "newsdesk_last_check_timestamp_seconds") > time.time() - 600

        services.indexer().catch_up()
        poll_all(newsroom)  # the good feed answers 304 to its ETag now
        article = next(iter(services.store.iter_entries()))
        assert httpx.get(f"{live.base}/api/v1/search", params={"q": "story"}).json()["total"] == 3
        assert httpx.get(f"{live.base}/api/v1/related", params={"entry": article.id}).status_code == 200
        assert httpx.get(f"{live.base}/").status_code == 200  # the bare front page is not a search
        after = samples(httpx.get(f"{live.base}/metrics").text)
        assert value(after, "newsdesk_polls_total", outcome="not_modified") == 1
        assert value(after, "newsdesk_index_lag_changes") == 0
        assert value(after, "newsdesk_index_lag_seconds") == 0
        assert value(after, "newsdesk_search_duration_seconds_count", endpoint="api.search_api") == 1
        assert ("newsdesk_search_duration_seconds_count", (("endpoint", "pages.search_page"),)) not in after
        assert value(after, "newsdesk_related_duration_seconds_count", endpoint="related.related_json") == 1
        assert value(after, "newsdesk_http_requests_total", endpoint="api.search_api", status="200") == 1
        assert value(after, "process_resident_memory_bytes") > 0


def test_metrics_allow_list(tmp_path: Path) -> None:
    def status(allow: list[str] | None, remote: str, headers: dict[str, str] | None = None) -> int:
        server = {} if allow is None else {"metrics_allow": allow}
        app = create_app(make_config(tmp_path / str(len(os.listdir(tmp_path))), server=server))
        try:
            return app.test_client().get("/metrics", environ_base={"REMOTE_ADDR": remote}, headers=headers).status_code
        finally:
            services_of(app).close()

    assert status(None, "127.0.0.1") == 200
    assert status(None, "::1") == 200
    assert status(None, "::ffff:127.0.0.1") == 200  # a dual-stack listener's view of an IPv4 client
    assert status(None, "192.0.2.10") == 403
    assert status(None, "127.0.0.1", {"Forwarded": 'for="[2001:db8::1]:4711"'}) == 403
    assert status(["10.0.0.0/8"], "10.20.30.40") == 200
    assert status(["10.0.0.0/8"], "127.0.0.1") == 403
    assert status(["*"], "198.51.100.1", {"X-Forwarded-For": "203.0.113.7"}) == 200
    assert status([], "127.0.0.1") == 404


@pytest.mark.parametrize(
    ("remote", "headers", "allow", "expected"),
    [
        ("127.0.0.1", {}, ["127.0.0.1"], True),
        ("127.0.0.1", {"X-Forwarded-For": "127.0.0.1, 203.0.113.7"}, ["127.0.0.1"], False),
        ("127.0.0.1", {"X-Forwarded-For": "10.1.1.1"}, ["127.0.0.1", "10.0.0.0/8"], True),
        ("127.0.0.1", {"X-Real-IP": "203.0.113.7"}, ["127.0.0.1"], False),
        ("127.0.0.1", {"Forwarded": "for=192.0.2.60;proto=http, for=127.0.0.1"}, ["127.0.0.1"], False),
        ("127.0.0.1", {"Forwarded": "for=10.0.0.1:8080"}, ["127.0.0.0/8", "10.0.0.1"], True),
        ("127.0.0.1", {"Forwarded": "for=unknown"}, ["127.0.0.1"], False),  # unknown clients are refused
        ("", {}, ["127.0.0.1"], False),
        ("2001:db8::5", {}, ["2001:db8::/32"], True),
    ],
)
def test_metrics_allowed_counts_every_hop(
    remote: str, headers: dict[str, str], allow: list[str], expected: bool
) -> None:
    assert metrics_allowed(client_addresses(remote, headers), allow) is expected


def test_each_app_has_its_own_registry(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.route("/good.xml", Reply(200, rss(2), {"Content-Type": "application/rss+xml"}))
    first = create_app(make_config(tmp_path / "one"))
    second = create_app(make_config(tmp_path / "two"))
    try:
        services_of(first).store.add_feed(feed_server.url("/good.xml"))
        poll_all(first)
        assert (
            value(
                samples(first.test_client().get("/metrics").get_data(as_text=True)),
                "newsdesk_polls_total",
                outcome="ok",
            )
            == 1
        )
        assert (
            value(
                samples(second.test_client().get("/metrics").get_data(as_text=True)),
                "newsdesk_polls_total",
                outcome="ok",
            )
            == 0
        )
        # The process-wide default registry is left alone.
        assert not [name for name in REGISTRY._names_to_collectors if name.startswith("newsdesk_")]
    finally:
        services_of(first).close()
        services_of(second).close()


def test_metrics_and_readiness_options_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"server\.metrics_allow\[1\]: 'localhost' is not an IP address"):
        make_config(tmp_path, server={"metrics_allow": ["127.0.0.1", "localhost"]})
    with pytest.raises(ConfigError, match=r"log_format: 'xml' is not one of text, json"):
        make_config(tmp_path, log_format="xml")
    with pytest.raises(ConfigError, match=r"server\.ready_poll_staleness"):
        make_config(tmp_path, server={"ready_poll_staleness": "soon"})


@pytest.mark.slow
def test_run_shares_one_set_of_metrics_between_poller_and_web(tmp_path: Path, feed_server: FeedServer) -> None:
    config, port = one_feed_config(tmp_path, feed_server, top='log_format = "json"\n')
    proc = start(config, "run", "--tick", "1")
    base = f"http://127.0.0.1:{port}"
    try:

        def polled(response: httpx.Response) -> bool:
            found = samples(response.text) if response.status_code == 200 else {}
            return bool(found) and value(found, "newsdesk_entries_ingested_total", kind="new") == 4

        scraped = samples(wait_for(f"{base}/metrics", polled).text)
        assert value(scraped, "newsdesk_polls_total", outcome="ok") >= 1
        assert value(scraped, "newsdesk_fetch_duration_seconds_count") >= 1
        ready = wait_for(f"{base}/readyz", lambda r: r.status_code == 200)
        scheduler = ready.json()["checks"]["scheduler"]
        assert scheduler["ok"] is True and scheduler["running"] is True and scheduler["next_run_at"]
        # Behind a reverse proxy on this machine the peer is 127.0.0.1 for everyone: the production
        # server keeps the proxy's X-Forwarded-For, and a client from outside is refused.
        assert httpx.get(f"{base}/metrics", headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 403
        assert httpx.get(f"{base}/metrics", headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    # With log_format = "json" the whole of stderr is JSON lines (every line parses above): start-up,
    # polls and indexing; third-party loggers go through the same handler (APScheduler logs only
    # warnings by default, and waitress nothing of its own since `run` binds its server itself).
    records = [json.loads(line) for line in (tmp_path / "newsdesk.log").read_text().splitlines()]
    loggers = {r["logger"] for r in records}
    assert {"newsdesk", "newsdesk.poll", "newsdesk.index"} <= loggers, loggers


# ---------------------------------------------------------------------- logs


def test_json_log_lines_through_the_cli(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.route("/good.xml", Reply(200, rss(2, title="Logged feed"), {"Content-Type": "application/rss+xml"}))
    config = tmp_path / "config.toml"
    config.write_text(f'data_dir = "data"\nlog_format = "json"\n[[feeds]]\nurl = "{feed_server.url("/good.xml")}"\n')
    result = newsdesk(config, "poll", "--once")
    records, other = [], []
    for line in result.stderr.splitlines():
        (records if line.startswith("{") else other).append(line)
    # Every log line is one JSON object; the only other line is the command's own summary.
    assert other == ["checked 1 feed(s): 2 new entries, 0 failed"]
    parsed = [json.loads(line) for line in records]
    assert all({"time", "level", "logger", "message"} <= set(r) for r in parsed)
    poll = next(r for r in parsed if r["logger"] == "newsdesk.poll")
    assert poll["level"] == "info" and poll["time"].endswith("Z")
    assert poll["poll"]["feed"] == feed_server.url("/good.xml") and poll["poll"]["status"] == 200
    assert poll["poll"]["new"] == 2 and poll["message"].startswith("poll feed=")


def test_json_formatter_keeps_a_record_with_a_traceback_on_one_line() -> None:
    logger = logging.getLogger("newsdesk.test-json")
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect()
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    try:
        try:
            raise ValueError("bad\nvalue")
        except ValueError:
            logger.exception(
                "failed on %s", "line one\nline two", extra={"feed": "https://x.example/", "at": Path("/tmp")}
            )
    finally:
        logger.removeHandler(handler)
    assert len(lines) == 1 and "\n" not in lines[0]
    record = json.loads(lines[0])
    assert record["message"] == "failed on line one\nline two" and record["level"] == "error"
    assert record["feed"] == "https://x.example/" and record["at"] == "/tmp"
    assert "ValueError: bad" in record["exception"]


# ---------------------------------------------------------------------- progress bars


def opml(urls: list[str]) -> str:
    outlines = "".join(f'<outline type="rss" text="Feed {i}" xmlUrl="{u}"/>' for i, u in enumerate(urls))
    return f'<?xml version="1.0"?><opml version="2.0"><head><title>t</title></head><body>{outlines}</body></opml>'


@pytest.fixture
def operator(tmp_path: Path, feed_server: FeedServer) -> tuple[Path, Path, list[str]]:
    """Return a config, an OPML file of three feeds being served, and their URLs."""
    urls = []
    for i in range(3):
        feed_server.route(f"/f{i}.xml", Reply(200, rss(2, title=f"Feed {i}", start=10 * i), {}))
        urls.append(feed_server.url(f"/f{i}.xml"))
    config = tmp_path / "config.toml"
    config.write_text('data_dir = "data"\n')
    listing = tmp_path / "feeds.opml"
    listing.write_text(opml(urls))
    return config, listing, urls


def run_on_terminal(config: Path, *args: str) -> tuple[str, str]:
    """Run the CLI with stderr on a pseudo-terminal (stdout piped); return stdout and what the terminal got."""
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "NEWSDESK_CONFIG"}
    env["COLUMNS"] = "100"
    proc = subprocess.Popen([NEWSDESK, "--config", str(config), *args], stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO once the child has closed its end
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain)
    reader.start()
    out, _ = proc.communicate(timeout=120)
    reader.join(timeout=10)
    os.close(master)
    assert proc.returncode == 0, b"".join(chunks).decode(errors="replace")
    return out.decode(), b"".join(chunks).decode(errors="replace")


@pytest.mark.slow
def test_long_commands_print_plain_lines_when_not_on_a_terminal(operator: tuple[Path, Path, list[str]]) -> None:
    config, listing, urls = operator
    imported = newsdesk(config, "feeds", "import", str(listing))
    assert imported.stdout.splitlines() == [f"added   {u}" for u in urls]
    assert imported.stderr.splitlines() == ["imported 3 new feed(s) of 3 listed; 0 skipped"]
    polled = newsdesk(config, "poll", "--once", "--all")
    assert sorted(polled.stdout.splitlines()) == sorted(f"ok      {u}: HTTP 200, 2 new, 0 updated" for u in urls)
    rebuilt = newsdesk(config, "reindex")
    assert rebuilt.stdout.startswith("reindexed 6 entries")
    for result in (imported, polled, rebuilt):
        assert "\r" not in result.stdout + result.stderr and "\x1b" not in result.stdout + result.stderr
        assert "[#" not in result.stderr and "[-" not in result.stderr


@pytest.mark.slow
def test_long_commands_draw_a_progress_bar_on_a_terminal(operator: tuple[Path, Path, list[str]]) -> None:
    config, listing, urls = operator
    out, terminal = run_on_terminal(config, "feeds", "import", str(listing))
    # The bar is drawn and redrawn in place on stderr; stdout keeps its plain lines.
    assert "\r\x1b[K" in terminal and "import [" in terminal and "3/3 100%" in terminal
    assert out.splitlines() == [f"added   {u}" for u in urls]

    out, terminal = run_on_terminal(config, "poll", "--once", "--all")
    assert "poll [" in terminal and "3/3 100%" in terminal
    assert len(out.splitlines()) == 3
    # The poll's log lines go above the bar, never onto its line.
    pieces = re.split(r"\r\x1b\[K|\r\n", terminal)
    assert len([p for p in pieces if "INFO newsdesk.poll poll feed=" in p]) == 3
    assert not [p for p in pieces if "newsdesk.poll" in p and "poll [" in p]
    # The bar is wiped before the summary line, which stays readable.
    assert "\r\x1b[Kchecked 3 feed(s): 6 new entries, 0 failed" in terminal

    out, terminal = run_on_terminal(config, "reindex")
    assert "reindex [" in terminal and "6/6 100%" in terminal
    assert out.startswith("reindexed 6 entries")


def test_progress_bar_line_fits_the_terminal() -> None:
    from web.progress import Progress

    progress = Progress("reindex", 200)
    progress.advance(50)
    line = progress.render(60)
    assert len(line) <= 60 and line.startswith("reindex [") and "50/200" in line and "25%" in line
    assert line.count("#") == round((60 - len("reindex") - len(line.split("]")[1]) - 3) * 0.25)
    assert len(progress.render(20)) < 20  # too narrow for a bar: the figures alone
