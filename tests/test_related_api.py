"""Related coverage over HTTP: the API, oEmbed and the article page, fed by real feeds from a real HTTP server."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from aggregator.config import Config
from aggregator.models import Entry
from aggregator.poller import update_feeds
from aggregator.store import Store
from index.indexer import Indexer
from web.app import create_app, services_of

from .conftest import make_config
from .support.httpserver import FeedServer, Reply

FEEDS = Path(__file__).resolve().parent / "fixtures" / "related"
STORY_OUTLETS = ("harbour-times", "valley-post", "northern-wire")
OTHER_OUTLET = "capital-daily"


def serve_feeds(server: FeedServer, names: tuple[str, ...]) -> list[str]:
    """Serve fixture feeds by name; return their URLs."""
    urls = []
    for name in names:
        body = (FEEDS / f"{name}.xml").read_bytes()
        server.route(f"/{name}.xml", Reply(200, body, {"Content-Type": "application/rss+xml"}))
        urls.append(server.url(f"/{name}.xml"))
    return urls


def newsroom_config(tmp_path: Path, **server: Any) -> Config:
    """Return a config for tests: data in tmp_path, no politeness delay towards the local feed server."""
    return make_config(tmp_path, server=server, polling={"per_host_delay": 0, "per_host_concurrency": 8})


def build_newsroom(config: Config, server: FeedServer, names: tuple[str, ...]) -> Flask:
    """Poll the named fixture feeds through the real update path, index them, and return the app."""
    app = create_app(config)
    store = services_of(app).store
    store.migrate()
    feeds = [store.add_feed(url) for url in serve_feeds(server, names)]
    results = update_feeds(store, feeds, config)
    assert all(r.error is None for r in results), [r.error for r in results]
    Indexer(config.index_dir, store).catch_up()
    return app


def entry_of(store: Store, outlet: str, slug: str = "dam") -> Entry:
    """Return the stored entry of a fixture outlet by its link's last segment."""
    for entry in store.iter_entries():
        if outlet.replace("-", "") in entry.url and entry.url.endswith(f"/news/{slug}"):
            return entry
    raise AssertionError(f"no {outlet} entry for {slug}")


@pytest.fixture
def newsroom(tmp_path: Path, feed_server: FeedServer) -> Iterator[Flask]:
    """Yield the app over four outlets: three cover the dam story, one does not."""
    config = newsroom_config(tmp_path, rate_limit_per_minute=1000)
    app = build_newsroom(config, feed_server, (*STORY_OUTLETS, OTHER_OUTLET))
    yield app
    services_of(app).close()


def outlets(items: list[dict[str, Any]]) -> set[str]:
    return {item["source"] for item in items}


def test_api_and_sidebar_list_exactly_the_other_outlets(newsroom: Flask) -> None:
    store = services_of(newsroom).store
    client = newsroom.test_client()
    article = entry_of(store, "harbour-times")
    answer = client.get(f"/api/v1/related?entry={article.id}")
    assert answer.status_code == 200
    items = answer.get_json()["items"]
    assert outlets(items) == {"Valley Post", "Northern Wire"}
    assert set(items[0]) == {"id", "url", "title", "source", "published_at", "teaser", "score", "story_id"}
    assert all(item["url"].startswith("https://") and item["teaser"] for item in items)

    page = client.get(f"/entries/{article.id}").get_data(as_text=True)
    sidebar = page.split('<aside class="related"', 1)[1]
    assert "Related coverage" in sidebar
    assert "Valley Post" in sidebar and "Northern Wire" in sidebar
    assert "Capital Daily" not in sidebar and "Harbour regatta" not in sidebar

    lonely = entry_of(store, "capital-daily", "election")
    assert client.get(f"/api/v1/related?entry={lonely.id}").get_json() == {"items": []}
    assert '<aside class="related"' not in client.get(f"/entries/{lonely.id}").get_data(as_text=True)


def test_lookup_by_url_and_by_title(newsroom: Flask) -> None:
    client = newsroom.test_client()
    # By the article's URL, with a tracking parameter the canonical form drops; never fetched.
    answer = client.get("/api/v1/related", query_string={"url": "https://valleypost.example/news/dam?utm_source=x"})
    assert outlets(answer.get_json()["items"]) == {"Harbour Times", "Northern Wire"}
    # An article we do not have, described by the embedding page; its own site is left out.
    answer = client.get(
        "/api/v1/related",
        query_string={
            "url": "https://northernwire.example/elsewhere/dam-story",
            "title": "Kessel dam collapse floods Riverton",
            "text": "Storms broke the dam and Riverton was evacuated",
            "date": "2024-05-07T12:00:00Z",
            "limit": "1",
        },
    )
    items = answer.get_json()["items"]
    assert len(items) == 1 and items[0]["source"] in {"Harbour Times", "Valley Post"}
    unknown = client.get("/api/v1/related", query_string={"url": "https://nowhere.example/a"})
    assert unknown.status_code == 404 and "title=" in unknown.get_json()["message"]


def test_the_server_never_fetches_a_client_supplied_url(newsroom: Flask, feed_server: FeedServer) -> None:
    client = newsroom.test_client()
    article = feed_server.url("/article-the-client-names")
    feed_server.route("/article-the-client-names", Reply(200, b"<html><title>Kessel dam</title></html>"))
    client.get("/api/v1/related", query_string={"url": article, "title": "Kessel dam breaks"})
    client.get("/embed/related", query_string={"url": article, "title": "Kessel dam breaks"})
    client.get("/oembed", query_string={"url": article})
    assert feed_server.hits("/article-the-client-names") == []


@pytest.mark.parametrize(
    ("query", "status", "needle"),
    [
        ({}, 400, "pass entry="),
        ({"entry": "nope"}, 404, "no entry"),
        ({"title": "x", "limit": "ten"}, 400, "limit must be an integer"),
        ({"title": "x", "limit": "0"}, 400, "at least 1"),
        ({"title": "x", "date": "yesterday"}, 400, "ISO 8601"),
    ],
)
def test_bad_requests_say_what_is_wrong(newsroom: Flask, query: dict[str, str], status: int, needle: str) -> None:
    answer = newsroom.test_client().get("/api/v1/related", query_string=query)
    assert answer.status_code == status
    assert needle in answer.get_json()["message"]
    assert answer.headers["Access-Control-Allow-Origin"] == "*"


def test_cors_cache_headers_and_etag(newsroom: Flask) -> None:
    client: FlaskClient = newsroom.test_client()
    article = entry_of(services_of(newsroom).store, "northern-wire")
    url = f"/api/v1/related?entry={article.id}&limit=50"
    first = client.get(url, headers={"Origin": "https://blog.example"})
    assert first.status_code == 200
    assert first.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in first.headers
    cache_control = first.headers["Cache-Control"]
    assert "s-maxage=" in cache_control and "stale-while-revalidate=" in cache_control
    etag = first.headers["ETag"]
    assert etag.startswith('"')
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b""
    assert again.headers["ETag"] == etag
    assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    preflight = client.options("/api/v1/related", headers={"Origin": "https://blog.example"})
    assert preflight.status_code == 204 and preflight.headers["Access-Control-Allow-Methods"] == "GET"


def test_rate_limit_answers_429_with_retry_after(tmp_path: Path, feed_server: FeedServer) -> None:
    config = newsroom_config(tmp_path, rate_limit_per_minute=3)
    app = build_newsroom(config, feed_server, STORY_OUTLETS)
    client = app.test_client()
    codes = [client.get("/api/v1/related?title=Kessel+dam").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = client.get("/api/v1/related?title=Kessel+dam")
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.get_json()["error"] == "too_many_requests"
    # Another client has its own budget.
    other = client.get("/api/v1/related?title=Kessel+dam", environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 200
    services_of(app).close()


def test_oembed(newsroom: Flask) -> None:
    client = newsroom.test_client()
    article = entry_of(services_of(newsroom).store, "valley-post")
    for url in (article.url, f"http://localhost/entries/{article.id}"):
        answer = client.get("/oembed", query_string={"url": url, "maxwidth": "300"})
        assert answer.status_code == 200, answer.get_data(as_text=True)
        data = answer.get_json()
        assert data["version"] == "1.0" and data["type"] == "rich" and data["width"] == 300
        assert data["html"].startswith("<iframe ") and f"/embed/related?entry={article.id}" in data["html"]
    # Errors are JSON too, like the API's, whatever the client accepts.
    for query, status, error, needle in (
        ({"url": "https://nowhere.example/x"}, 404, "not_found", "no stored article"),
        ({"url": article.url, "format": "xml"}, 501, "not_implemented", "format=json"),
        ({}, 400, "bad_request", "url is required"),
        ({"url": article.url, "maxwidth": "wide"}, 400, "bad_request", "maxwidth must be an integer"),
    ):
        answer = client.get("/oembed", query_string=query, headers={"Accept": "text/html,*/*"})
        assert answer.status_code == status and answer.mimetype == "application/json", answer.get_data(as_text=True)
        body = answer.get_json()
        assert set(body) == {"error", "message"} and body["error"] == error and needle in body["message"]
    page = client.get(f"/entries/{article.id}").get_data(as_text=True)
    assert 'type="application/json+oembed"' in page


def test_oembed_and_article_page_behind_a_proxy_with_a_path_prefix(tmp_path: Path, feed_server: FeedServer) -> None:
    config = newsroom_config(tmp_path, public_url="https://news.example.org/nd/", rate_limit_per_minute=1000)
    app = build_newsroom(config, feed_server, STORY_OUTLETS)
    client = app.test_client()
    article = entry_of(services_of(app).store, "valley-post")
    public_page = f"https://news.example.org/nd/entries/{article.id}"
    # The proxy strips /nd (the app sees /oembed on localhost), or passes it on as SCRIPT_NAME.
    for base_url, own_page in (
        ("http://localhost/", f"http://localhost/entries/{article.id}"),
        ("http://backend:8000/nd/", f"http://backend:8000/nd/entries/{article.id}"),
    ):
        for url in (public_page, own_page):
            answer = client.get("/oembed", query_string={"url": url}, base_url=base_url)
            assert answer.status_code == 200, (base_url, url, answer.get_data(as_text=True))
            data = answer.get_json()
            assert f'src="https://news.example.org/nd/embed/related?entry={article.id}"' in data["html"]
            assert data["provider_url"] == "https://news.example.org/nd/"
        # The public address without its prefix is not our page.
        missing = client.get("/oembed", query_string={"url": f"https://news.example.org/entries/{article.id}"})
        assert missing.status_code == 404

        page = client.get(f"/entries/{article.id}", base_url=base_url).get_data(as_text=True)
        discovery = re.search(r'<link rel="alternate" type="application/json\+oembed" href="([^"]+)"', page)
        assert discovery is not None
        endpoint = urlsplit(html.unescape(discovery.group(1)))
        assert endpoint._replace(query="").geturl() == "https://news.example.org/nd/oembed"
        assert parse_qs(endpoint.query) == {"url": [public_page]}
        static_root = urlsplit(base_url).path
        assert f'<link rel="stylesheet" href="{static_root}static/newsdesk.css">' in page
        frame = client.get(f"/embed/related?entry={article.id}", base_url=base_url).get_data(as_text=True)
        assert 'href="https://news.example.org/nd/"' in frame
    services_of(app).close()


def test_entries_without_a_link_of_their_own_hand_out_none(tmp_path: Path, feed_server: FeedServer) -> None:
    # The hostile feed's items have only javascript:/data: links, so normalization flags them url_missing
    # and stores the site's home page as their URL.
    config = newsroom_config(tmp_path, rate_limit_per_minute=1000)
    app = build_newsroom(config, feed_server, (*STORY_OUTLETS, "hostile"))
    client = app.test_client()
    store = services_of(app).store
    linkless = [entry for entry in store.iter_entries() if "hostile" in entry.feed_key]
    assert linkless and all("url_missing" in e.flags and e.url == "https://hostile.example/" for e in linkless)
    article = entry_of(store, "harbour-times")

    items = client.get(f"/api/v1/related?entry={article.id}&limit=10").get_json()["items"]
    hostile = [item for item in items if item["id"] in {e.id for e in linkless}]
    assert hostile and all(item["url"] is None for item in hostile)
    assert all(item["url"].startswith("https://") for item in items if item not in hostile)
    frame = client.get(f"/embed/related?entry={article.id}&limit=10").get_data(as_text=True)
    assert "Hostile" in frame and "hostile.example" not in frame

    # The home page is not the address of any of them: ?url= never resolves to one.
    home = "https://hostile.example/"
    assert client.get("/api/v1/related", query_string={"url": home}).status_code == 404
    assert client.get("/oembed", query_string={"url": home}).status_code == 404
    assert client.get("/embed/related", query_string={"url": home}).status_code == 404
    by_title = client.get("/api/v1/related", query_string={"url": home, "title": "Kessel dam breaks"})
    assert by_title.status_code == 200
    # Our own page of such an entry is still a fine oEmbed URL.
    assert client.get("/oembed", query_string={"url": f"http://localhost/entries/{linkless[0].id}"}).status_code == 200

    for entry in linkless:
        page = client.get(f"/entries/{entry.id}").get_data(as_text=True)
        assert "Read it at" not in page and 'rel="canonical"' not in page
        assert 'href="https://hostile.example/"' not in page
    own = client.get(f"/entries/{article.id}").get_data(as_text=True)
    assert f'<a href="{article.url}" rel="noopener">Read it at Harbour Times</a>' in own
    services_of(app).close()
