"""Stories end to end: a real poll of three outlets' feeds on one event -> story page, API, front page, related."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from aggregator.config import load_config
from web.app import create_app, services_of

from .support.cli import newsdesk
from .support.httpserver import FeedServer, Reply
from .support.story_articles import EXPLOSION, OTHERS, OUTLETS, Article

pytestmark = pytest.mark.slow


def rss(outlet: str, articles: list[Article], first: datetime) -> bytes:
    title, site = OUTLETS[outlet]
    items = []
    for article in articles:
        body = "".join(f"<p>{escape(p)}</p>" for p in article.paragraphs)
        items.append(
            f"<item><title>{escape(article.title)}</title><link>{site}{article.slug}</link>"
            f"<guid>{site}{article.slug}</guid>"
            f"<pubDate>{format_datetime(first + timedelta(hours=article.hours))}</pubDate>"
            f"<description>{escape(body)}</description></item>"
        )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{escape(title)}</title>'
        f"<link>{site}</link><description>{escape(title)}</description>{''.join(items)}</channel></rss>"
    ).encode()


@pytest.fixture
def newsroom(tmp_path: Path, feed_server: FeedServer) -> Path:
    """Serve the three outlets' feeds and write a config polling them; return the config path."""
    first = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=30)
    feeds = []
    for outlet in OUTLETS:
        articles = [a for a in EXPLOSION + OTHERS if a.outlet == outlet]
        body = rss(outlet, articles, first)
        feed_server.route(f"/{outlet}.xml", Reply(200, body, {"Content-Type": "application/rss+xml"}))
        feeds.append(f'[[feeds]]\nurl = "{feed_server.url(f"/{outlet}.xml")}"\ntags = ["world"]\n')
    config = tmp_path / "config.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n\n' + "\n".join(feeds))
    return config


def test_a_polled_story_shows_everywhere_and_keeps_its_id(newsroom: Path) -> None:
    newsdesk(newsroom, "poll", "--once")
    config = load_config(newsroom)
    app = create_app(config)
    try:
        services = services_of(app)
        client = app.test_client()
        entries = {e.title: e for e in services.store.iter_entries()}
        story_ids = services.stories.stories_of([e.id for e in entries.values()])
        explosion = [entries[a.title] for a in EXPLOSION]
        (story_id,) = {story_ids[e.id] for e in explosion}
        assert all(story_ids[entries[a.title].id] != story_id for a in OTHERS)

        # The story API: one story of three outlets, first report first.
        listed = client.get("/api/v1/stories").get_json()
        assert [s["id"] for s in listed["stories"]] == [story_id]
        story = client.get(f"/api/v1/stories/{story_id}").get_json()
        assert story["outlet_count"] == 3
        assert [a["title"] for a in story["articles"]] == [a.title for a in EXPLOSION]
        assert story["articles"][0]["first"] and not story["articles"][1]["first"]
        assert client.get("/api/v1/stories?tag=world").get_json()["total"] == 1
        assert client.get("/api/v1/stories?source=Nordic Ledger").get_json()["total"] == 1
        assert client.get("/api/v1/stories?lang=fr").get_json()["total"] == 0
        assert client.get("/api/v1/stories?since=2999-01-01").get_json()["total"] == 0
        assert client.get("/api/v1/stories?since=yesterday-ish").status_code == 400
        # A date-time works too, "Z" or an offset, down to the second.
        assert client.get("/api/v1/stories?since=2999-01-01T00:00:00Z").get_json()["total"] == 0
        assert client.get("/api/v1/stories?since=2000-01-01T00:00:00%2B02:00").get_json()["total"] == 1
        assert client.get("/api/v1/stories/s-nope").status_code == 404
        assert client.get(f"/api/v1/entries/{explosion[1].id}").get_json()["story_id"] == story_id
        hits = client.get("/api/v1/search?q=Norvane&collapse=0").get_json()["hits"]
        assert {h["story_id"] for h in hits if h["title"] in {a.title for a in EXPLOSION}} == {story_id}

        # The story page, its feed and the front page's card.
        page = client.get(f"/stories/{story_id}").get_data(as_text=True)
        assert all(escape(a.title) in page for a in EXPLOSION) and "First to report" in page and "3 outlets" in page
        atom = client.get(f"/stories/{story_id}.atom")
        assert atom.status_code == 200 and atom.get_data(as_text=True).count("<entry>") == 3
        front = client.get("/").get_data(as_text=True)
        assert "Top stories" in front and f"/stories/{story_id}" in front and "3 outlets" in front

        # Related coverage by entry, in the sidebar, and by title+text for an article we do not store.
        for entry in explosion:
            items = client.get(f"/api/v1/related?entry={entry.id}").get_json()["items"]
            expected = {e.source.title for e in explosion if e.id != entry.id}
            assert {i["source"] for i in items[:2]} == expected
            assert [i["story_id"] for i in items[:2]] == [story_id, story_id]
            assert not {i["id"] for i in items} & {entries[a.title].id for a in OTHERS}
            sidebar = client.get(f"/entries/{entry.id}").get_data(as_text=True)
            assert all(escape(e.title) in sidebar for e in explosion)
        described = client.get(
            "/api/v1/related",
            query_string={
                "title": "Blast at Norvane solvent hall in Talvik hurts workers",
                "text": " ".join(EXPLOSION[0].paragraphs[:2]),
                "date": explosion[1].published_at.isoformat(),
            },
        ).get_json()["items"]
        assert {i["source"] for i in described[:3]} == {e.source.title for e in explosion}
        unrelated = client.get(
            "/api/v1/related", query_string={"title": "Ski jumping world cup opens in Lahti", "text": "Ski."}
        ).get_json()["items"]
        assert not {i["id"] for i in unrelated} & {e.id for e in explosion}
    finally:
        services_of(app).close()

    # A rebuild of the index and a restart keep every story id; the CLI lists the story.
    newsdesk(newsroom, "reindex")
    listed = [json.loads(line) for line in newsdesk(newsroom, "stories", "--json").stdout.splitlines()]
    assert [s["id"] for s in listed] == [story_id] and listed[0]["outlet_count"] == 3
    app = create_app(config)
    try:
        again = services_of(app).stories.stories_of([e.id for e in entries.values()])
        assert again == story_ids
    finally:
        services_of(app).close()
