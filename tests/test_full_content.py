"""Summary-only feeds with `full_content`: the article page's main text replaces the summary."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.poller import Poller
from aggregator.store import open_store

from .conftest import make_config
from .support.httpserver import FeedServer, Reply

PARAGRAPHS = [
    "The harbour board voted on Monday to rebuild the north pier, which storms damaged last winter.",
    "Work starts in spring and should take two years, the board said, at a cost of twelve million.",
    "Fishermen who moor at the pier will move to temporary berths at the ferry quay meanwhile.",
    "The old pier, built in 1896, will keep its cast-iron lamps, which are listed structures.",
]


def article_page(title: str) -> bytes:
    body = "".join(f"<p>{p}</p>" for p in PARAGRAPHS)
    return (
        f"<!doctype html><html><head><title>{title}</title></head><body>"
        "<nav><a href='/'>Home</a> <a href='/sport'>Sport</a></nav>"
        f"<article><h1>{title}</h1>{body}</article>"
        "<footer>Share this story · Subscribe to our newsletter</footer></body></html>"
    ).encode()


def summary_feed(base: str) -> bytes:
    items = "".join(
        f"<item><guid>{slug}</guid><link>{base}/news/{slug}</link><title>{title}</title>"
        "<pubDate>Tue, 07 May 2024 08:30:00 +0000</pubDate><description>Short teaser only.</description></item>"
        for slug, title in (("pier", "North pier to be rebuilt"), ("gone", "A page that vanished"))
    )
    return f"<?xml version='1.0'?><rss version='2.0'><channel><title>Pier News</title>{items}</channel></rss>".encode()


@pytest.mark.parametrize("parse_processes", [0, 1], ids=["inline", "worker-process"])
def test_article_pages_replace_summaries_once(tmp_path: Path, feed_server: FeedServer, parse_processes: int) -> None:
    feed_server.route("/feed.xml", Reply(200, summary_feed(feed_server.base)))
    feed_server.route("/news/pier", Reply(200, article_page("North pier to be rebuilt"), {"Content-Type": "text/html"}))
    feed_server.route("/news/gone", Reply(404, b"gone"))
    config = make_config(tmp_path, polling={"per_host_delay": 0})
    store = open_store(config.db_url)
    store.add_feed(feed_server.url("/feed.xml"), full_content=True)
    with Poller(store, config, parse_processes=parse_processes) as poller:
        poller.poll(store.list_feeds())
        entries = {e.url.rsplit("/", 1)[-1]: e for e in store.iter_entries()}
        pier, gone = entries["pier"], entries["gone"]
        assert "full_content" in pier.flags
        assert PARAGRAPHS[1] in pier.text and PARAGRAPHS[3] in pier.text
        assert "Share this story" not in pier.text and "Sport" not in pier.text
        # A page that fails keeps the feed's own content.
        assert gone.text == "Short teaser only." and "full_content" not in gone.flags
        # The next check neither fetches the page again nor lets the summary overwrite the article.
        poller.poll(store.list_feeds())
    assert len(feed_server.hits("/news/pier")) == 1
    again = store.get_entry(pier.id)
    assert again is not None and again.text == pier.text and store.count_entries() == 2
    store.close()
