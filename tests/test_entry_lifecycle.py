"""An entry's life across polls: guid churn, edits in place, and the index following the store."""

from __future__ import annotations

import itertools
from pathlib import Path

from aggregator.config import Config
from aggregator.poller import update_feeds
from aggregator.store import Store, open_store
from index.indexer import Indexer
from index.search.engine import IndexReader, search

from .conftest import make_config
from .support.httpserver import FeedServer, Reply


def feed(items: list[tuple[str, str, str]]) -> bytes:
    """Return an RSS document of (guid, link, title) items."""
    body = "".join(
        f"<item><guid isPermaLink='false'>{guid}</guid><link>{link}</link><title>{title}</title>"
        f"<pubDate>Tue, 07 May 2024 08:30:00 +0000</pubDate><description>{title} in full.</description></item>"
        for guid, link, title in items
    )
    return (
        "<?xml version='1.0'?><rss version='2.0'><channel><title>Churn Daily</title>"
        f"<link>https://churn.example/</link>{body}</channel></rss>"
    ).encode()


def poll(store: Store, config: Config) -> None:
    update_feeds(store, store.list_feeds(), config)


def test_guids_minted_on_every_fetch_do_not_duplicate(tmp_path: Path, feed_server: FeedServer) -> None:
    counter = itertools.count()

    def churn(_request: object) -> Reply:
        n = next(counter)
        return Reply(
            200,
            feed(
                [
                    (f"session-{n}-a", "https://churn.example/a", "Alpha"),
                    (f"session-{n}-b", "https://churn.example/b?utm_source=rss", "Beta"),
                ]
            ),
        )

    feed_server.route("/churn.xml", churn)
    config = make_config(tmp_path)
    store = open_store(config.db_url)
    store.add_feed(feed_server.url("/churn.xml"))
    for _ in range(3):
        poll(store, config)
    entries = list(store.iter_entries())
    assert sorted(e.title for e in entries) == ["Alpha", "Beta"]
    assert all(e.identity.startswith("session-0-") for e in entries)
    # A genuinely new article still arrives.
    feed_server.route("/churn.xml", Reply(200, feed([("session-9-c", "https://churn.example/c", "Gamma")])))
    poll(store, config)
    assert sorted(e.title for e in store.iter_entries()) == ["Alpha", "Beta", "Gamma"]
    store.close()


def test_feed_title_is_plain_text(tmp_path: Path, feed_server: FeedServer) -> None:
    body = feed([("g1", "https://churn.example/a", "AT&amp;amp;T news")]).replace(
        b"<title>Churn Daily</title>", b"<title>Tricky &amp;amp; Co &lt;b&gt;Daily&lt;/b&gt;</title>"
    )
    feed_server.route("/tricky.xml", Reply(200, body))
    config = make_config(tmp_path)
    store = open_store(config.db_url)
    store.add_feed(feed_server.url("/tricky.xml"))
    poll(store, config)
    (entry,) = store.iter_entries()
    assert store.list_feeds()[0].title == "Tricky & Co Daily"
    assert entry.title == "AT&T news" and entry.source.title == "Tricky & Co Daily"
    store.close()


class IndexedFeed:
    """One feed on the test server, polled into a store and caught up into an index on each publish."""

    def __init__(self, tmp_path: Path, feed_server: FeedServer) -> None:
        self.server = feed_server
        self.config = make_config(tmp_path)
        self.store = open_store(self.config.db_url)
        self.store.add_feed(feed_server.url("/news.xml"))
        self.indexer = Indexer(self.config.index_dir, self.store)
        self.reader = IndexReader(self.config.index_dir)

    def publish(self, body: bytes) -> None:
        self.server.route("/news.xml", Reply(200, body))
        poll(self.store, self.config)
        self.indexer.catch_up()

    def close(self) -> None:
        self.reader.close()
        self.store.close()


def test_edited_entry_is_updated_in_place_and_reindexed(tmp_path: Path, feed_server: FeedServer) -> None:
    news = IndexedFeed(tmp_path, feed_server)
    news.publish(feed([("g1", "https://churn.example/a", "Harbour bridge opens")]))
    assert search(news.reader, news.store, "bridge").total == 1

    news.publish(feed([("g1", "https://churn.example/a", "Harbour tunnel opens")]))
    assert news.store.count_entries() == 1
    assert search(news.reader, news.store, "tunnel").total == 1
    assert search(news.reader, news.store, "bridge").total == 0
    news.close()


def test_tag_facet_label_follows_an_edited_entry(tmp_path: Path, feed_server: FeedServer) -> None:
    def tagged(spelling: str) -> bytes:
        return feed([("g1", "https://churn.example/a", "Harbour bridge opens")]).replace(
            b"opens</title>", f"opens</title><category>{spelling}</category>".encode(), 1
        )

    news = IndexedFeed(tmp_path, feed_server)
    news.publish(tagged("Moffat, Alasdair"))
    (facet,) = search(news.reader, news.store, "bridge").facets.tags
    assert (facet.value, facet.label) == ("moffat alasdair", "Moffat, Alasdair")
    # The same tag spelled anew: the label comes from the live copy, not the deleted one.
    news.publish(tagged("MOFFAT, Alasdair"))
    (facet,) = search(news.reader, news.store, "bridge").facets.tags
    assert (facet.value, facet.label) == ("moffat alasdair", "MOFFAT, Alasdair")
    news.close()
