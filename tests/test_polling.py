"""The poller, store and scheduler against real misbehaving servers on 127.0.0.1: every feed ends in the right state."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from aggregator.config import Config
from aggregator.models import Feed
from aggregator.poller import Poller
from aggregator.scheduler import build_scheduler, install_reload_on_sighup, poll_due, poll_job, reload_config
from aggregator.store import Store, open_store

from .conftest import make_config
from .feedgen import gzip_bomb, html_page, rss
from .support.hostile import trickling_body
from .support.httpserver import FeedServer, Reply


def polling_config(tmp_path: Path, **polling: Any) -> Config:
    options: dict[str, Any] = {
        "per_host_delay": 0,
        "per_host_concurrency": 8,
        "deadline": "2s",
        "read_timeout": "2s",
        "jitter": 0,
    }
    options.update(polling)
    return make_config(tmp_path, polling=options)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    yield s
    s.close()


def poll(store: Store, config: Config, feeds: list[Feed] | None = None, **kwargs: Any) -> dict[str, Any]:
    with Poller(store, config, parse_processes=kwargs.pop("parse_processes", 0)) as poller:
        results = poller.poll(feeds if feeds is not None else store.list_feeds(enabled_only=True))
    return {r.url: r for r in results}


def state(store: Store, url: str) -> Feed:
    feed = store.find_feed(url)
    assert feed is not None, url
    return feed


def _huge(request: BaseHTTPRequestHandler) -> None:
    request.send_response(200)
    request.send_header("Connection", "close")
    request.end_headers()
    try:
        for _ in range(50):
            request.wfile.write(b"x" * 2**20)
    except (BrokenPipeError, ConnectionResetError):
        return


def test_misbehaving_servers_each_end_in_the_right_state(feed_server: FeedServer, store: Store, tmp_path: Path) -> None:
    config = polling_config(tmp_path)
    in_an_hour = (datetime.now(UTC) + timedelta(hours=3)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    routes: dict[str, Any] = {
        "/good": Reply(200, rss(5), {"Content-Type": "application/rss+xml", "ETag": '"g1"'}),
        "/missing": Reply(404, b"no"),
        "/gone": Reply(410, b"gone"),
        "/busy-seconds": Reply(429, b"", {"Retry-After": "7200"}),
        "/busy-date": Reply(429, b"", {"Retry-After": in_an_hour}),
        "/down": Reply(503, b"", {"Retry-After": "600"}),
        "/failing": Reply(500, b"oops"),
        "/loop1": Reply(302, b"", {"Location": "/loop2"}),
        "/loop2": Reply(302, b"", {"Location": "/loop1"}),
        "/trickle": trickling_body,
        "/huge": _huge,
        "/bomb": Reply(200, gzip_bomb(), {"Content-Encoding": "gzip"}),
        "/page": Reply(200, html_page("/feed.xml"), {"Content-Type": "text/html"}),
    }
    for path, handler in routes.items():
        feed_server.route(path, handler)
        if path != "/loop2":
            store.add_feed(feed_server.url(path))
    started = datetime.now(UTC)
    results = poll(store, config)
    assert len(results) == 12

    good = state(store, feed_server.url("/good"))
    assert (good.last_status, good.last_error, good.consecutive_failures, good.entry_count) == (200, None, 0, 5)
    assert good.etag == '"g1"' and good.entries_per_week and good.entries_per_week > 0
    assert good.next_check_at and good.next_check_at > started

    expectations = {
        "/missing": (404, "not found"),
        "/gone": (410, "410 Gone"),
        "/busy-seconds": (429, "too often"),
        "/busy-date": (429, "too often"),
        "/down": (503, "unavailable"),
        "/failing": (500, "server failed"),
        "/loop1": (302, "redirect loop"),
        "/trickle": (None, "took longer than 2 s and was cut off"),
        "/huge": (200, "larger than the 15 MiB limit"),
        "/bomb": (200, "larger than the 15 MiB limit"),
        "/page": (200, "not a feed: the URL returned an HTML page"),
    }
    for path, (status, words) in expectations.items():
        feed = state(store, feed_server.url(path))
        assert feed.last_status == status, (path, feed.last_status)
        assert feed.last_error and words in feed.last_error, (path, feed.last_error)
        assert feed.consecutive_failures == 1, path
        assert feed.next_check_at is not None and feed.next_check_at > started, path
        assert feed.entry_count == 0
    assert "/feed.xml" in (state(store, feed_server.url("/page")).last_error or "")

    gone = state(store, feed_server.url("/gone"))
    assert not gone.enabled and gone.disabled_reason and "410" in gone.disabled_reason
    for path, seconds in (("/busy-seconds", 7200), ("/busy-date", 3 * 3600 - 5), ("/down", 600)):
        feed = state(store, feed_server.url(path))
        assert feed.retry_after_until and feed.next_check_at
        assert feed.retry_after_until >= started + timedelta(seconds=seconds)
        assert feed.next_check_at >= feed.retry_after_until  # never earlier than the server asked

    # Nothing is due again right away: failures back off, the retired feed is out.
    assert store.due_feeds(datetime.now(UTC)) == []


def test_304_costs_no_parsing_and_no_entry_writes(feed_server: FeedServer, store: Store, tmp_path: Path) -> None:
    def handler(request: BaseHTTPRequestHandler) -> Reply:
        if request.headers.get("If-None-Match") == '"v1"':
            return Reply(304, b"", {"ETag": '"v1"'})
        return Reply(200, rss(4), {"ETag": '"v1"', "Last-Modified": "Mon, 02 Mar 2026 10:00:00 GMT"})

    feed_server.route("/feed", handler)
    store.add_feed(feed_server.url("/feed"))
    config = polling_config(tmp_path)
    first = poll(store, config)[feed_server.url("/feed")]
    assert (first.status, first.new_entries) == (200, 4)
    seq, before = store.last_seq(), state(store, feed_server.url("/feed"))
    second = poll(store, config)[feed_server.url("/feed")]
    after = state(store, feed_server.url("/feed"))
    assert (second.status, second.new_entries, second.bytes) == (304, 0, 0)
    assert store.last_seq() == seq  # no entry written, nothing for the indexer
    assert after.last_status == 304 and after.last_error is None and after.entry_count == 4
    assert after.etag == '"v1"' and after.last_modified == "Mon, 02 Mar 2026 10:00:00 GMT"
    assert before.last_checked_at and after.last_checked_at and after.last_checked_at > before.last_checked_at
    sent = feed_server.hits("/feed")[-1]
    assert sent["if-none-match"] == '"v1"' and sent["if-modified-since"] == "Mon, 02 Mar 2026 10:00:00 GMT"


def test_permanent_redirect_is_adopted_only_after_consistent_sightings(
    feed_server: FeedServer, store: Store, tmp_path: Path
) -> None:
    feed_server.route("/old", Reply(301, b"", {"Location": "/new"}))
    feed_server.route("/new", Reply(200, rss(2)))
    old, new = feed_server.url("/old"), feed_server.url("/new")
    store.add_feed(old)
    config = polling_config(tmp_path, redirect_adopt_checks=3, redirect_adopt_after=0)
    for sighting in (1, 2):
        poll(store, config)
        feed = state(store, old)
        assert (feed.url, feed.pending_redirect_url, feed.pending_redirect_count) == (old, new, sighting)
    result = poll(store, config)[old]
    assert f"moved to {new}" in result.notes
    feed = state(store, new)
    assert (feed.url, feed.key, feed.pending_redirect_url, feed.entry_count) == (new, old, None, 2)
    poll(store, config)
    assert len(feed_server.hits("/old")) == 3 and len(feed_server.hits("/new")) == 4


def test_permanent_redirect_must_also_last(feed_server: FeedServer, store: Store, tmp_path: Path) -> None:
    feed_server.route("/old", Reply(308, b"", {"Location": "/new"}))
    feed_server.route("/new", Reply(200, rss(2)))
    store.add_feed(feed_server.url("/old"))
    config = polling_config(tmp_path, redirect_adopt_checks=2, redirect_adopt_after="1d")
    for _ in range(4):
        poll(store, config)
    feed = state(store, feed_server.url("/old"))
    assert feed.url == feed_server.url("/old") and feed.pending_redirect_count == 4


def test_flapping_308_is_never_adopted(feed_server: FeedServer, store: Store, tmp_path: Path) -> None:
    flips = iter(range(100))

    def flapping(request: BaseHTTPRequestHandler) -> Reply:
        return Reply(308, b"", {"Location": "/elsewhere"}) if next(flips) % 2 == 0 else Reply(200, rss(1))

    feed_server.route("/feed", flapping)
    feed_server.route("/elsewhere", Reply(200, rss(1)))
    store.add_feed(feed_server.url("/feed"))
    config = polling_config(tmp_path, redirect_adopt_checks=2, redirect_adopt_after=0)
    for _ in range(6):
        poll(store, config)
        feed = state(store, feed_server.url("/feed"))
        assert feed.url == feed_server.url("/feed") and feed.pending_redirect_count <= 1


def test_temporary_redirect_never_changes_the_url(feed_server: FeedServer, store: Store, tmp_path: Path) -> None:
    feed_server.route("/feed", Reply(302, b"", {"Location": "/today"}))
    feed_server.route("/today", Reply(200, rss(2)))
    store.add_feed(feed_server.url("/feed"))
    config = polling_config(tmp_path, redirect_adopt_checks=1, redirect_adopt_after=0)
    for _ in range(3):
        poll(store, config)
    feed = state(store, feed_server.url("/feed"))
    assert (feed.url, feed.pending_redirect_url, feed.last_status, feed.entry_count) == (
        feed_server.url("/feed"),
        None,
        200,
        2,
    )


def test_per_host_limits_are_never_exceeded_and_hosts_do_not_wait_for_each_other(store: Store, tmp_path: Path) -> None:
    lock = threading.Lock()
    in_flight: dict[str, int] = {}
    peak: dict[str, int] = {}
    starts: dict[str, list[float]] = {}
    finished: dict[str, float] = {}

    def slow(request: BaseHTTPRequestHandler) -> Reply:
        host = request.server.server_address[0]  # type: ignore[index]
        with lock:
            in_flight[host] = in_flight.get(host, 0) + 1
            peak[host] = max(peak.get(host, 0), in_flight[host])
            starts.setdefault(host, []).append(time.monotonic())
        time.sleep(0.3)
        with lock:
            in_flight[host] -= 1
            finished[host] = time.monotonic()
        return Reply(200, rss(1))

    config = polling_config(tmp_path, per_host_concurrency=2, per_host_delay=0.1, concurrency=8)
    with FeedServer("127.0.0.1") as big, FeedServer("127.0.0.2") as small:
        for i in range(8):
            big.route(f"/f{i}", slow)
            store.add_feed(big.url(f"/f{i}"))
        for i in range(2):
            small.route(f"/f{i}", slow)
            store.add_feed(small.url(f"/f{i}"))
        started = time.monotonic()
        results = poll(store, config)
    assert all(r.status == 200 for r in results.values())
    assert peak["127.0.0.1"] == 2 and peak["127.0.0.2"] <= 2
    for host_starts in starts.values():
        gaps = [b - a for a, b in zip(sorted(host_starts), sorted(host_starts)[1:], strict=False)]
        assert min(gaps) >= 0.08  # measured where requests arrive, so a little under the 0.1 s between starts
    # The small site's two feeds were done long before the big site's eight.
    assert finished["127.0.0.2"] - started < 1.0 < finished["127.0.0.1"] - started


def test_process_pool_parses_and_the_parent_writes(feed_server: FeedServer, store: Store, tmp_path: Path) -> None:
    for i in range(6):
        feed_server.route(f"/f{i}", Reply(200, rss(3, title=f"Feed {i}")))
        store.add_feed(feed_server.url(f"/f{i}"))
    feed_server.route("/page", Reply(200, html_page("https://example.org/rss")))
    store.add_feed(feed_server.url("/page"))
    results = poll(store, polling_config(tmp_path), parse_processes=2)
    assert sum(r.new_entries for r in results.values()) == 18
    assert state(store, feed_server.url("/f3")).title == "Feed 3"
    assert "not a feed" in (results[feed_server.url("/page")].error or "")


def test_a_restart_remembers_backoff_and_schedule(feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.route("/bad", Reply(500, b""))
    feed_server.route("/good", Reply(200, rss(1)))
    url = f"sqlite:///{tmp_path / 'restart.db'}"
    first = open_store(url)
    first.add_feed(feed_server.url("/bad"))
    first.add_feed(feed_server.url("/good"))
    poll(first, polling_config(tmp_path))
    first.close()
    again = open_store(url)
    try:
        assert again.due_feeds(datetime.now(UTC)) == []  # nothing re-polled after the restart
        bad = state(again, feed_server.url("/bad"))
        assert bad.consecutive_failures == 1 and bad.last_status == 500
        assert bad.next_check_at and bad.next_check_at > datetime.now(UTC) + timedelta(minutes=50)
    finally:
        again.close()


def test_a_feed_removed_mid_poll_does_not_stop_the_others(
    feed_server: FeedServer, store: Store, tmp_path: Path
) -> None:
    def remove_me(request: BaseHTTPRequestHandler) -> Reply:
        feed = store.find_feed(feed_server.url("/doomed"))
        assert feed is not None
        store.remove_feed(feed.id)
        return Reply(200, rss(2))

    feed_server.route("/doomed", remove_me)
    feed_server.route("/fine", Reply(200, rss(2)))
    store.add_feed(feed_server.url("/doomed"))
    store.add_feed(feed_server.url("/fine"))
    results = poll(store, polling_config(tmp_path))
    assert results[feed_server.url("/doomed")].error == "the feed was removed while it was being checked"
    assert results[feed_server.url("/fine")].new_entries == 2
    assert store.find_feed(feed_server.url("/doomed")) is None


def test_scheduler_polls_due_feeds_new_ones_and_forgets_removed_ones(
    feed_server: FeedServer, store: Store, tmp_path: Path
) -> None:
    for name in ("a", "b"):
        feed_server.route(f"/{name}", Reply(200, rss(1)))
    calls: list[int] = []
    config = polling_config(tmp_path)
    scheduler = build_scheduler(store, config, after_poll=lambda: calls.append(1), tick_seconds=3600)
    job = poll_job(scheduler)
    try:
        a = store.add_feed(feed_server.url("/a"))
        assert job() == 1 and calls == [1]
        assert job() == 0 and calls == [1]  # nothing due: no callback
        # `feeds add` while running: due now, picked up by the next tick.
        b = store.add_feed(feed_server.url("/b"))
        assert b.next_check_at and b.next_check_at <= datetime.now(UTC)
        assert job() == 1
        # `feeds remove` while running: gone from the store, never polled again.
        store.remove_feed(a.id)
        assert job() == 0
        assert len(feed_server.hits("/a")) == 1 and len(feed_server.hits("/b")) == 1
        assert poll_due(store, config) == 0
    finally:
        job.close()


def _write_config(path: Path, data_dir: Path, urls: list[str]) -> None:
    feeds = "".join(f'\n[[feeds]]\nurl = "{u}"\n' for u in urls)
    path.write_text(f'data_dir = "{data_dir}"\n[polling]\nper_host_delay = 0\n{feeds}')


def test_reload_adds_and_removes_configured_feeds(feed_server: FeedServer, store: Store, tmp_path: Path) -> None:
    feed_server.route("/a", Reply(200, rss(1)))
    feed_server.route("/b", Reply(200, rss(1)))
    path = tmp_path / "config.toml"
    _write_config(path, tmp_path / "data", [feed_server.url("/a")])
    scheduler = build_scheduler(store, polling_config(tmp_path), tick_seconds=3600)
    assert reload_config(scheduler, path) is not None
    assert [f.url for f in store.list_feeds()] == [feed_server.url("/a")]
    _write_config(path, tmp_path / "data", [feed_server.url("/b")])
    reload_config(scheduler, path)
    assert [f.url for f in store.list_feeds()] == [feed_server.url("/b")]
    path.write_text("this is = not [valid toml")
    assert reload_config(scheduler, path) is None  # logged, running config kept
    assert poll_job(scheduler).config.feeds[0].url == feed_server.url("/b")
    poll_job(scheduler).close()


def test_sighup_reloads_the_running_scheduler(feed_server: FeedServer, store: Store, tmp_path: Path) -> None:
    feed_server.route("/a", Reply(200, rss(1)))
    path = tmp_path / "config.toml"
    _write_config(path, tmp_path / "data", [])
    scheduler = build_scheduler(store, polling_config(tmp_path), tick_seconds=3600)
    previous = signal.getsignal(signal.SIGHUP)
    job = poll_job(scheduler)
    scheduler.start()
    try:
        install_reload_on_sighup(scheduler, path)
        _write_config(path, tmp_path / "data", [feed_server.url("/a")])
        os.kill(os.getpid(), signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not feed_server.hits("/a"):
            time.sleep(0.05)
        assert feed_server.hits("/a"), "the feed added by the reload was not polled"
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not state(store, feed_server.url("/a")).last_status:
            time.sleep(0.05)
        assert state(store, feed_server.url("/a")).last_status == 200
    finally:
        signal.signal(signal.SIGHUP, previous)
        scheduler.shutdown(wait=True)
        job.close()


def test_an_identical_body_without_validators_is_not_parsed_again(
    feed_server: FeedServer, store: Store, tmp_path: Path
) -> None:
    body = {"value": rss(3)}
    feed_server.route("/plain", lambda request: Reply(200, body["value"], {"Cache-Control": "max-age=600"}))
    feed_server.route("/page", Reply(200, html_page("/x.xml")))
    store.add_feed(feed_server.url("/plain"))
    store.add_feed(feed_server.url("/page"))
    config = polling_config(tmp_path)
    assert poll(store, config)[feed_server.url("/plain")].new_entries == 3
    seq = store.last_seq()
    again = poll(store, config)
    plain = again[feed_server.url("/plain")]
    assert (plain.status, plain.error, plain.notes) == (200, None, ("same body as last time; not parsed",))
    assert store.last_seq() == seq
    feed = state(store, feed_server.url("/plain"))
    assert feed.last_status == 200 and feed.min_interval_seconds == 600
    # A broken document is never remembered as good: it fails again, every time.
    assert state(store, feed_server.url("/page")).consecutive_failures == 2
    body["value"] = rss(4)
    changed = poll(store, config, parse_processes=2)[feed_server.url("/plain")]
    assert (changed.new_entries, changed.notes) == (1, ())


def test_user_agent_names_newsdesk_and_a_feed_may_override_it(
    feed_server: FeedServer, store: Store, tmp_path: Path
) -> None:
    feed_server.route("/a", Reply(200, rss(1)))
    feed_server.route("/b", Reply(200, rss(1)))
    store.add_feed(feed_server.url("/a"))
    store.add_feed(feed_server.url("/b"), user_agent="PickyServerBot/1.0 (+https://ops.example/contact)")
    poll(store, polling_config(tmp_path))
    default = feed_server.hits("/a")[0]["user-agent"]
    assert default.startswith("Newsdesk/") and "https://" in default  # names us and a contact URL
    assert feed_server.hits("/b")[0]["user-agent"] == "PickyServerBot/1.0 (+https://ops.example/contact)"


def test_global_concurrency_holds_across_hosts(store: Store, tmp_path: Path) -> None:
    lock = threading.Lock()
    counters = {"now": 0, "peak": 0}

    def slow(request: BaseHTTPRequestHandler) -> Reply:
        with lock:
            counters["now"] += 1
            counters["peak"] = max(counters["peak"], counters["now"])
        time.sleep(0.2)
        with lock:
            counters["now"] -= 1
        return Reply(200, rss(1))

    servers = [FeedServer(f"127.0.0.{i}") for i in range(1, 5)]
    for server in servers:
        server.__enter__()
    try:
        for server in servers:
            for i in range(3):
                server.route(f"/f{i}", slow)
                store.add_feed(server.url(f"/f{i}"))
        results = poll(store, polling_config(tmp_path, concurrency=3, per_host_concurrency=2))
    finally:
        for server in servers:
            server.__exit__()
    assert len(results) == 12 and all(r.status == 200 for r in results.values())
    assert counters["peak"] == 3


def test_a_small_tick_releases_idle_parse_workers(feed_server: FeedServer, store: Store, tmp_path: Path) -> None:
    from aggregator.scheduler import PollJob

    feed_server.route("/a", Reply(200, rss(2)))
    store.add_feed(feed_server.url("/a"))
    config = polling_config(tmp_path)
    poller = Poller(store, config, parse_processes=2)
    job = PollJob(store, config, poller=poller)
    try:
        assert job() == 1
        assert poller.worker_pids() == []  # the workers that parsed this tick are gone again
        assert state(store, feed_server.url("/a")).entry_count == 2
    finally:
        job.close()
