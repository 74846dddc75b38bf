"""Related answers and story lists are kept while the data they came from is unchanged, and follow new coverage at once.

Real polls of the Norvane explosion's outlets on 127.0.0.1: two outlets first, then the third joins
the story while the app keeps running.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from web.app import create_app, services_of
from web.related_cache import AnswerCache, Kept

from .support.httpserver import FeedServer, Reply
from .support.polled import polled_services
from .support.story_articles import EXPLOSION
from .test_story_related import rss


def test_an_answer_is_kept_until_new_coverage_arrives(tmp_path: Path, feed_server: FeedServer) -> None:
    first = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=30)
    urls = []
    for outlet in ("harbour", "ledger", "courier"):
        articles = [a for a in EXPLOSION if a.outlet == outlet]
        feed_server.route(f"/{outlet}.xml", Reply(200, rss(outlet, articles, first), {"Content-Type": "text/xml"}))
        urls.append(feed_server.url(f"/{outlet}.xml"))
    writer = polled_services(tmp_path / "data", urls[:2])
    app = create_app(writer.config)
    try:
        client = app.test_client()
        lead = next(e for e in writer.store.iter_entries() if e.title == EXPLOSION[0].title)
        path = f"/api/v1/related?entry={lead.id}"
        before = client.get(path).get_json()["items"]
        assert [item["title"] for item in before] == [EXPLOSION[1].title]
        assert client.get(path).get_json()["items"] == before
        cache: AnswerCache = app.extensions["newsdesk.related"]
        assert (cache.hits, cache.misses) == (1, 1)
        # The story list is kept the same way: its story of two outlets, computed once for two asks.
        listed = client.get("/api/v1/stories").get_json()
        assert [story["outlet_count"] for story in listed["stories"]] == [2]
        assert client.get("/api/v1/stories").get_json() == listed
        lists: Kept = app.extensions["newsdesk.story_lists"]
        assert (lists.hits, lists.misses) == (1, 1)
        assert client.get("/api/v1/stories?per_page=1").get_json()["per_page"] == 1  # another ask, its own list
        assert lists.misses == 2

        # The third outlet is polled by the writer: the next answer is computed afresh and lists it.
        writer.close()
        writer = polled_services(tmp_path / "data", urls)
        after = client.get(path).get_json()["items"]
        assert sorted(item["title"] for item in after) == sorted(a.title for a in EXPLOSION[1:])
        assert cache.misses == 2
        assert [story["outlet_count"] for story in client.get("/api/v1/stories").get_json()["stories"]] == [3]
        assert lists.misses == 3

        # An undated headline from an embedding page is placed around "now": never kept.
        undated = "/api/v1/related?" + f"title={EXPLOSION[2].title.replace(' ', '+')}"
        kept = (cache.hits, cache.misses, len(cache._values))
        assert client.get(undated).status_code == client.get(undated).status_code == 200
        assert (cache.hits, cache.misses, len(cache._values)) == kept
    finally:
        services_of(app).close()
        writer.close()
