"""The check pipeline's stages called one by one on feeds served over real HTTP, and `inspect` on the same path."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aggregator.errors import FetchError
from aggregator.fetch import make_client
from aggregator.from_config import limits_from_config, policy_from_config
from aggregator.models import FetchResult
from aggregator.pipeline import (
    add_article_pages,
    fetch,
    read,
    record,
    start,
    stored_digests,
    unstored_feed,
    warm_up,
)
from aggregator.store import open_store
from aggregator.workers import WorkerLimits, WorkerPool

from .conftest import make_config
from .feedgen import rss
from .support.cli import newsdesk
from .support.httpserver import FeedServer, Reply
from .test_full_content import PARAGRAPHS, article_page, summary_feed


def test_each_stage_fills_in_its_part_of_the_check(tmp_path: Path, feed_server: FeedServer) -> None:
    body = summary_feed(feed_server.base)
    feed_server.route("/feed.xml", Reply(200, body, {"Content-Type": "application/rss+xml"}))
    feed_server.route("/news/pier", Reply(200, article_page("North pier to be rebuilt"), {"Content-Type": "text/html"}))
    feed_server.route("/news/gone", Reply(404, b"gone"))
    config = make_config(tmp_path, polling={"per_host_delay": 0})
    store = open_store(config.db_url)
    feed = store.add_feed(feed_server.url("/feed.xml"), full_content=True)
    policy = policy_from_config(config)
    with make_client(limits_from_config(config)) as client:
        check = start(feed)
        assert check.feed == feed and datetime.now(UTC) - check.checked_at < timedelta(seconds=5)
        assert check.fetched is None and check.body_hash is None and check.normalized is None and check.result is None

        check = fetch(check, client, config)
        fetched = check.fetched
        assert isinstance(fetched, FetchResult) and fetched.status == 200 and fetched.body == body
        assert check.body_hash == hashlib.sha256(body).hexdigest()
        assert check.has_new_body and not check.unchanged and check.normalized is None

        check = read(check, stored_digests(store, feed), config.polling.max_entries_per_check)
        normalized = check.normalized
        assert normalized is not None and normalized.error is None and normalized.title == "Pier News"
        assert [e.title for e in normalized.entries] == ["North pier to be rebuilt", "A page that vanished"]
        assert [e.text for e in normalized.entries] == ["Short teaser only.", "Short teaser only."]
        assert len(normalized.digests) == 2 and normalized.known == () and normalized.deferred == 0
        assert check.fetched is fetched and check.result is None  # a stage changes only its own part
        assert store.count_entries() == 0  # nothing is stored before the record stage

        check = add_article_pages(check, store, client, config)
        assert check.normalized is not None
        pier, gone = check.normalized.entries
        assert "full_content" in pier.flags and PARAGRAPHS[1] in pier.text
        assert gone.text == "Short teaser only." and "full_content" not in gone.flags  # its page is a 404
        assert check.normalized.digests == normalized.digests and store.count_entries() == 0

        check = record(check, store, policy, random.Random(1))
        result = check.result
        assert result is not None and result.error is None and result.status == 200
        assert (result.new_entries, result.updated_entries, result.bytes) == (2, 0, len(body))
        stored = store.get_feed(feed.id)
        assert stored is not None and stored.last_status == 200 and stored.title == "Pier News"
        assert stored.body_hash == check.body_hash and stored.next_check_at is not None
        assert store.get_entry(pier.id).text == pier.text  # type: ignore[union-attr]

        # The same bytes again: nothing to read, nothing to fetch pages for; the record says so.
        again = fetch(start(stored), client, config)
        assert again.unchanged and not again.has_new_body
        assert read(again, stored_digests(store, stored)) is again
        assert add_article_pages(again, store, client, config) is again
        again = record(again, store, policy, random.Random(1))
        assert again.result is not None and again.result.new_entries == 0 and again.result.error is None
        assert "same body as last time; not parsed" in again.result.notes
    assert len(feed_server.hits("/news/pier")) == 1
    store.close()


def test_a_failed_fetch_travels_the_stages_as_data(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    store = open_store(config.db_url)
    feed = store.add_feed("http://127.0.0.1:9/feed.xml")  # the discard port: nothing listens
    with make_client(limits_from_config(config)) as client:
        check = fetch(start(feed), client, config)
        assert isinstance(check.fetched, FetchError) and "could not connect" in check.fetched.message
        assert read(check) is check and add_article_pages(check, store, client, config) is check
        check = record(check, store, policy_from_config(config), random.Random(1))
    assert check.result is not None and check.result.error is not None and "could not connect" in check.result.error
    stored = store.get_feed(feed.id)
    assert stored is not None and stored.consecutive_failures == 1 and stored.last_status is None
    store.close()


def test_a_body_that_is_not_a_feed_is_read_as_an_error(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.route(
        "/", Reply(200, b'<!doctype html><html><head><link rel="alternate" type="application/rss+xml" href="/rss">')
    )
    config = make_config(tmp_path)
    with make_client(limits_from_config(config)) as client:
        check = read(fetch(start(unstored_feed(feed_server.url("/"))), client, config))
    assert check.normalized is not None and check.normalized.entries == ()
    assert check.normalized.error is not None and check.normalized.error.startswith("not a feed")
    assert check.normalized.alternates == (feed_server.url("/rss"),)


def test_read_gives_the_same_record_in_a_parse_worker_process(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.route("/feed.xml", Reply(200, rss(5), {"Content-Type": "application/rss+xml"}))
    config = make_config(tmp_path)
    with make_client(limits_from_config(config)) as client:
        check = fetch(start(unstored_feed(feed_server.url("/feed.xml"))), client, config)
    context = multiprocessing.get_context("forkserver")
    pool = WorkerPool(1, WorkerLimits(memory=256 * 2**20, timeout=30), context, initializer=warm_up)
    try:
        in_worker = pool.submit(read, check, {}, 3).result(timeout=60)
    finally:
        pool.shutdown()
    inline = read(check, {}, 3)
    assert in_worker == inline  # the whole record crosses the process boundary and back unchanged
    assert inline.normalized is not None and len(inline.normalized.entries) == 3 and inline.normalized.deferred == 2


def test_inspect_prints_what_the_read_stage_gives_and_writes_nothing(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.route("/feed.xml", Reply(200, rss(4, title="Inspected"), {"Content-Type": "application/rss+xml"}))
    url = feed_server.url("/feed.xml")
    path = tmp_path / "config.toml"
    path.write_text('data_dir = "data"\n')
    shown = [json.loads(line) for line in newsdesk(path, "inspect", url, "--json").stdout.splitlines()]
    config = make_config(tmp_path)
    with make_client(limits_from_config(config)) as client:
        normalized = read(fetch(start(unstored_feed(url)), client, config)).normalized
    assert normalized is not None
    assert [r["id"] for r in shown] == [e.id for e in normalized.entries] and len(shown) == 4
    assert [r["title"] for r in shown] == [e.title for e in normalized.entries]
    assert {r["source"]["title"] for r in shown} == {"Inspected"}
    assert not (tmp_path / "data").exists()  # no database, no index: inspect stores nothing
