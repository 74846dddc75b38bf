"""The story list API (/api/v1/stories) on a story of more articles than it lists, through a real poll.

Twelve outlets' feeds on 127.0.0.1 carry the Norvane explosion (each outlet its own rewrite, hours
apart; a few with a picture, the first of them late in the story) beside same-topic news. The list
reads its stories' members as light rows and only the articles it shows in full: what it says of a
story must be what the story's own endpoint says, with the article list cut to its first
LIST_ARTICLES.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from flask import Flask

from web.app import create_app, services_of
from web.stories import LIST_ARTICLES

from .support.httpserver import FeedServer, Reply
from .support.polled import polled_services
from .support.story_articles import EXPLOSION, OTHERS, Article

OUTLET_COUNT = 12
#: Outlets whose copy carries a picture: the last two to report, past the articles the list shows.
WITH_PICTURE = {10, 11}


def rss(outlet: int, articles: list[tuple[Article, float]], first: datetime) -> bytes:
    site = f"https://outlet{outlet}.example/"
    items = []
    for article, hours in articles:
        body = "".join(f"<p>{escape(p)}</p>" for p in article.paragraphs)
        picture = (
            f'<enclosure url="{site}img/{article.slug}.jpg" type="image/jpeg" length="1000"/>'
            if outlet in WITH_PICTURE and article.on_story
            else ""
        )
        items.append(
            f"<item><title>{escape(article.title)} ({outlet})</title><link>{site}{article.slug}</link>"
            f"<guid>{site}{article.slug}</guid><pubDate>{format_datetime(first + timedelta(hours=hours))}</pubDate>"
            f"<description>{escape(body)}</description>{picture}</item>"
        )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Outlet {outlet}</title>'
        f"<link>{site}</link><description>Outlet {outlet}</description>{''.join(items)}</channel></rss>"
    ).encode()


@pytest.fixture
def crowded(tmp_path: Path, feed_server: FeedServer) -> Iterator[Flask]:
    first = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=40)
    urls = []
    for outlet in range(OUTLET_COUNT):
        # Each outlet runs one of the three rewrites of the story, two hours after the one before.
        articles = [(EXPLOSION[outlet % len(EXPLOSION)], 2.0 * outlet)]
        if outlet < len(OTHERS):
            articles.append((OTHERS[outlet], OTHERS[outlet].hours))
        feed_server.route(f"/{outlet}.xml", Reply(200, rss(outlet, articles, first), {"Content-Type": "text/xml"}))
        urls.append(feed_server.url(f"/{outlet}.xml"))
    services = polled_services(tmp_path / "data", urls)
    config = services.config
    services.close()
    app = create_app(config)
    yield app
    services_of(app).close()


def test_the_story_list_says_what_each_story_says_with_its_first_articles(crowded: Flask) -> None:
    client = crowded.test_client()
    listed = client.get("/api/v1/stories?per_page=50").get_json()
    assert listed["stories"], listed
    big = [s for s in listed["stories"] if s["article_count"] > LIST_ARTICLES]
    assert big, [s["article_count"] for s in listed["stories"]]  # the cap is exercised
    for item in listed["stories"]:
        whole = client.get(f"/api/v1/stories/{item['id']}").get_json()
        assert item == {**whole, "articles": whole["articles"][:LIST_ARTICLES]}
    (story,) = big
    assert story["article_count"] == OUTLET_COUNT and story["outlet_count"] == OUTLET_COUNT
    # The story's picture is the earliest one, from an article the list does not show.
    assert story["image"] == f"https://outlet10.example/img/{EXPLOSION[10 % 3].slug}.jpg"
    assert all("outlet10" not in a["url"] for a in story["articles"])
