"""The /feeds page and /api/v1/feeds: what operators see after real polls of real (misbehaving) servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from aggregator.poller import Poller
from web.app import create_app, services_of

from .conftest import make_config
from .feedgen import rss
from .support.browser import artifact
from .support.httpserver import FeedServer, Reply
from .support.live import LiveServer


@pytest.fixture
def polled_app(tmp_path: Path, feed_server: FeedServer) -> Iterator[Flask]:
    """Yield an app whose store holds a healthy feed, a failing one, a retired one, and one never checked."""
    feed_server.route("/good.xml", Reply(200, rss(4, title="Good &lt;News&gt;")))
    feed_server.route("/broken.xml", Reply(503, b"", {"Retry-After": "120"}))
    feed_server.route("/gone.xml", Reply(410, b""))
    config = make_config(tmp_path, polling={"per_host_delay": 0, "per_host_concurrency": 4})
    app = create_app(config)
    store = services_of(app).store
    for path in ("/good.xml", "/broken.xml", "/gone.xml"):
        store.add_feed(feed_server.url(path))
    with Poller(store, config, parse_processes=0) as poller:
        poller.poll(store.list_feeds())
    store.add_feed("https://later.example/rss", title="Later")
    yield app
    services_of(app).close()


def test_feeds_api_lists_polling_state(polled_app: Flask, feed_server: FeedServer) -> None:
    response = polled_app.test_client().get("/api/v1/feeds")
    assert response.status_code == 200 and response.mimetype == "application/json"
    feeds: dict[str, Any] = {f["url"]: f for f in response.get_json()["feeds"]}
    good = feeds[feed_server.url("/good.xml")]
    assert (good["title"], good["last_status"], good["entry_count"], good["last_error"]) == (
        "Good <News>",
        200,
        4,
        None,
    )
    assert good["next_check_at"].endswith("Z") and good["entries_per_week"] > 0
    broken = feeds[feed_server.url("/broken.xml")]
    assert broken["last_status"] == 503 and broken["consecutive_failures"] == 1 and broken["retry_after_until"]
    gone = feeds[feed_server.url("/gone.xml")]
    assert gone["enabled"] is False and "410" in gone["disabled_reason"]
    assert feeds["https://later.example/rss"]["last_checked_at"] is None


def test_feeds_page_shows_trouble_first_in_plain_words(polled_app: Flask, feed_server: FeedServer) -> None:
    response = polled_app.test_client().get("/feeds")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Good &lt;News&gt;" in html and "<News>" not in html  # titles are escaped
    assert "the server is unavailable for now (HTTP 503 Service Unavailable)" in html
    assert "Disabled: the server answered 410 Gone" in html
    assert "1 failing" in html
    assert html.index(feed_server.url("/broken.xml")) < html.index(feed_server.url("/good.xml"))
    for word in ("badge-ok", "badge-failing", "badge-retired", "badge-new"):
        assert word in html


@pytest.mark.browser
def test_feeds_page_in_a_browser(polled_app: Flask, browser: Any, feed_server: FeedServer) -> None:
    with LiveServer(polled_app) as live:
        for width, name in ((1280, "feeds-desktop.png"), (375, "feeds-mobile.png")):
            page = browser.new_page(viewport={"width": width, "height": 800})
            try:
                page.goto(f"{live.base}/feeds")
                rows = page.locator("tr.feed-row")
                assert rows.count() == 4
                assert "503" in rows.first.inner_text()
                # The page itself never scrolls sideways; the table scrolls inside its own region.
                overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
                assert overflow <= 1, f"the page scrolls sideways by {overflow}px at {width}px"
                page.screenshot(path=str(artifact(name)), full_page=True)
            finally:
                page.close()
