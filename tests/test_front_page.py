"""The front page (/), the article page's way back and lead image, and one date format, through the real app.

Feeds and pictures come from a real HTTP server on 127.0.0.1, polled through the real update path
into a real store and index (tests/fixtures/front/newsroom.py).
"""

from __future__ import annotations

import dataclasses
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask, render_template
from lxml import html as lxml_html

from aggregator.configfeeds import sync_config_feeds
from aggregator.models import Entry
from aggregator.normalize.urls import image_key
from aggregator.poller import update_feeds
from tests.fixtures.front.newsroom import BARRIER_STORY, OUTLETS, build_newsroom, newsroom_config
from web.app import create_app, services_of
from web.front import LATEST_COUNT, build_front_page, section_tags, story_card, story_path
from web.services import Services, build_services

from .conftest import make_config
from .support.cli import NEWSDESK
from .support.httpserver import FeedServer, Reply

#: How every page writes a time for readers.
DATE_LABEL = re.compile(r"\d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4}, \d{2}:\d{2} UTC")


@pytest.fixture
def newsroom(tmp_path: Path, feed_server: FeedServer) -> Iterator[Services]:
    services = build_newsroom(newsroom_config(tmp_path, feed_server))
    yield services
    services.close()


_STEP = re.compile(r"^([a-z0-9]*)((?:[.#][\w-]+)*)(?:\[(\w+)=([\w-]+)\])?$")


def xpath_of(selector: str) -> str:
    """Return the XPath of a simple CSS selector: tag.class#id[attr=value] steps joined by spaces."""
    steps = []
    for part in selector.split():
        match = _STEP.match(part)
        assert match, part
        tag, qualifiers, attribute, value = match.groups()
        tests = [
            f"@id='{q[1:]}'" if q[0] == "#" else f"contains(concat(' ', normalize-space(@class), ' '), ' {q[1:]} ')"
            for q in re.findall(r"[.#][\w-]+", qualifiers)
        ]
        if attribute:
            tests.append(f"@{attribute}='{value}'")
        steps.append((tag or "*") + "".join(f"[{t}]" for t in tests))
    return ".//" + "//".join(steps)


class Page:
    """A parsed HTML page (or part of one), queried with simple CSS selectors."""

    def __init__(self, node: Any) -> None:
        self.node = node

    def cssselect(self, selector: str) -> list[Any]:
        return [Page(found) for found in self.node.xpath(xpath_of(selector))]

    def get(self, name: str) -> str | None:
        return self.node.get(name)  # type: ignore[no-any-return]

    def text_content(self) -> str:
        return self.node.text_content()  # type: ignore[no-any-return]


def page_of(app: Flask, path: str) -> Page:
    """Return the parsed HTML of a GET that must answer 200."""
    response = app.test_client().get(path)
    assert response.status_code == 200, (path, response.status_code)
    return Page(lxml_html.fromstring(response.get_data(as_text=True)))


def entry_titled(services: Services, title: str) -> Entry:
    return next(entry for entry in services.store.iter_entries() if entry.title == title)


def barrier_entries(services: Services) -> list[Entry]:
    return [entry_titled(services, title) for title in BARRIER_STORY.values()]


def texts(nodes: list[Any]) -> list[str]:
    return [" ".join(node.text_content().split()) for node in nodes]


# --------------------------------------------------------------------------- latest and sections


def test_front_page_lists_the_latest_articles_with_outlet_time_teaser_and_thumbnail(newsroom: Services) -> None:
    app = create_app(newsroom.config, newsroom)
    page = page_of(app, "/")
    stored = sorted(newsroom.store.iter_entries(), key=lambda e: (e.published_at, e.id), reverse=True)
    items = page.cssselect("section.latest li.article")
    assert len(items) == min(LATEST_COUNT, len(stored))
    # Newest first, each linking to its article page, with its outlet, time and teaser.
    for item, entry in zip(items, stored, strict=False):
        link = item.cssselect("h3 a")[0]
        assert link.get("href") == f"/entries/{entry.id}"
        assert link.text_content() == entry.title
        assert item.cssselect(".source")[0].text_content() == entry.source.title
        time_node = item.cssselect("time")[0]
        assert DATE_LABEL.fullmatch(time_node.text_content()) and time_node.get("datetime").endswith("Z")
        assert item.cssselect(".teaser")[0].text_content().split()[:4] == entry.summary.split()[:4]
        # A thumbnail exactly when the entry has an http(s) picture; the hostile javascript: one has none.
        thumbs = item.cssselect("img.thumb")
        if entry.image and entry.image.url.startswith("http"):
            assert [t.get("src") for t in thumbs] == [entry.image.url] and thumbs[0].get("alt") == ""
        else:
            assert thumbs == []
    # The search box is on top; nothing is a top story yet, so that area is not there at all.
    assert page.cssselect("form[role=search] input#q") and not page.cssselect(".top-stories")
    assert "Top stories" not in page.text_content()


def test_sections_follow_the_operators_tags(tmp_path: Path, feed_server: FeedServer) -> None:
    config = newsroom_config(tmp_path, feed_server)
    services = build_newsroom(config)
    try:
        feeds = services.store.list_feeds()
        # Not configured: the tags most feeds carry, most first (politics and world: 2 feeds; science: 1).
        assert section_tags(None, feeds) == ["politics", "world", "science"]
        by_key = {feed.key: feed for feed in feeds}
        tagged = {
            tag: {by_key[url].title for url in by_key if tag in by_key[url].tags}
            for tag in ("politics", "world", "science")
        }
        for tags, expected in (
            (None, ["Politics", "World", "Science"]),
            (["science", "Politics"], ["Science", "Politics"]),
            (["science", "sport"], ["Science"]),  # a tag no feed carries has nothing to show
            ([], []),
        ):
            front_config = dataclasses.replace(
                config, front=dataclasses.replace(config.front, sections=None if tags is None else tuple(tags))
            )
            app = create_app(front_config, dataclasses.replace(services, config=front_config))
            page = page_of(app, "/")
            sections = page.cssselect("section.topic")
            assert texts([s.cssselect("h2")[0] for s in sections]) == expected, tags
            for section in sections:
                tag = section.cssselect("h2")[0].text_content().lower()
                outlets = set(texts(section.cssselect(".source")))
                assert outlets and outlets <= tagged[tag], (tag, outlets)
                dates = [t.get("datetime") for t in section.cssselect("time")]
                assert dates == sorted(dates, reverse=True)
                # "More" searches the section's outlets, newest first.
                more = parse_qs(urlsplit(section.cssselect(".more a")[0].get("href")).query)
                assert set(more["source"]) == tagged[tag] and more["sort"] == ["newest"]
                assert page_of(app, section.cssselect(".more a")[0].get("href")).cssselect("li.hit")
        # Every feed carries a tag: its section would repeat "Latest", so it is not a default section.
        for feed in feeds:
            services.store.add_feed(feed.url, tags=(*feed.tags, "news"))
        assert "news" not in section_tags(None, services.store.list_feeds())
    finally:
        services.close()


def test_sections_config_is_checked() -> None:
    from aggregator.config import config_from_dict
    from aggregator.errors import ConfigError

    assert config_from_dict({}).front.sections is None
    assert config_from_dict({"front": {"sections": []}}).front.sections == ()
    for table, message in (
        ({"sections": "politics"}, "front.sections: expected a list"),
        ({"sections": ["politics", " "]}, "front.sections[1]: must not be empty"),
        (
            {"sections": ["Politics", "politics"]},
            "front.sections[1]: 'politics' is already listed as front.sections[0]",
        ),
        ({"section": ["politics"]}, "front.section: unknown key"),
    ):
        with pytest.raises(ConfigError) as caught:
            config_from_dict({"front": table})
        assert message in str(caught.value)


# --------------------------------------------------------------------------- top stories


def test_story_card_from_real_entries(newsroom: Services) -> None:
    entries = barrier_entries(newsroom)
    capitol, herald, science = entries
    card = story_card("eastmouth-barrier", [herald, science, capitol])
    # The first report leads; the others are one per outlet, newest first; every outlet counts once.
    assert card.lead.entry == capitol and card.outlet_count == 3
    assert [e.source.title for e in card.others] == ["Science Weekly", "Harbour Herald"]
    assert capitol.image is not None and card.thumbnail == capitol.image.url
    assert card.lead.teaser.startswith("Members voted 312 to 204")
    # A lead without a picture borrows the story's earliest other one; a second article from an outlet
    # already on the card adds no outlet.
    budget = entry_titled(newsroom, "Budget talks stall over rail spending")
    later = dataclasses.replace(
        science, id="later", title="Later", published_at=science.published_at + timedelta(hours=1)
    )
    second = story_card("s2", [budget, herald, science, later])
    assert second.lead.entry == budget and herald.image is not None and second.thumbnail == herald.image.url
    assert second.outlet_count == 3 and [e.title for e in second.others] == ["Later", herald.title]
    with pytest.raises(ValueError):
        story_card("empty", [])

    # The front page template shows cards it is given, above "Latest", each linking to its story page.
    app = create_app(newsroom.config, newsroom)
    with app.test_request_context("/"):
        front = build_front_page(newsroom, stories=[card])
        markup = render_template("pages/front.html", front=front, story_path=story_path)
    page = Page(lxml_html.fromstring(markup))
    cards = page.cssselect(".top-stories li.story-card")
    assert len(cards) == 1
    shown = cards[0]
    assert shown.cssselect("h3 a")[0].text_content() == capitol.title
    assert shown.cssselect("h3 a")[0].get("href") == f"/entries/{capitol.id}"
    assert shown.cssselect("img.thumb")[0].get("src") == card.thumbnail
    assert texts(shown.cssselect(".other-coverage li a")) == [science.title, herald.title]
    story_link = shown.cssselect(".story-link a")[0]
    assert story_link.get("href") == "/stories/eastmouth-barrier" and "3 outlets" in story_link.text_content()
    assert markup.index("Top stories") < markup.index(">Latest<")


# --------------------------------------------------------------------------- a fresh install


def test_fresh_install_shows_a_welcome_that_says_what_to_do(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.route("/gone.xml", Reply(404, b"not here", {"Content-Type": "text/plain"}))
    urls = [feed_server.url("/world.xml"), feed_server.url("/gone.xml")]
    config = make_config(
        tmp_path,
        polling={"per_host_delay": 0},
        feeds=[{"url": urls[0], "title": "World Desk", "tags": ["world"]}, {"url": urls[1]}],
    )
    services = build_services(config)
    app = create_app(config, services)
    try:
        # `newsdesk serve` before any poll: the feeds are only in config.toml.
        page = page_of(app, "/")
        welcome = " ".join(page.cssselect("section.welcome")[0].text_content().split())
        assert "2 feeds configured" in welcome and "World Desk" in welcome
        assert all(url in welcome for url in urls) and welcome.count("not checked yet") == 2
        assert "does not poll feeds" in welcome and "newsdesk run" in welcome
        assert "newsdesk poll --once" in welcome and "newsdesk feeds add" in welcome and "[[feeds]]" in welcome
        assert not page.cssselect("section.latest") and page.cssselect("form[role=search]")

        # A poll ran and one feed failed: the page says so, feed by feed.
        feeds = sync_config_feeds(services.store, config)
        update_feeds(services.store, feeds[1:], config)
        welcome = " ".join(page_of(app, "/").cssselect("section.welcome")[0].text_content().split())
        assert "2 feeds configured" in welcome and "404" in welcome and "not checked yet" in welcome

        # In `newsdesk run`, the scheduler polls: the first poll is due now.
        scheduler = BackgroundScheduler()
        scheduler.start()
        try:
            services.scheduler = scheduler
            welcome = " ".join(page_of(app, "/").cssselect("section.welcome")[0].text_content().split())
            assert "This server polls the feeds itself" in welcome and "first poll" in welcome
        finally:
            scheduler.shutdown(wait=False)
            services.scheduler = None
    finally:
        services.close()

    # No feed at all: the page says how to add one.
    bare = make_config(tmp_path / "bare")
    bare_services = build_services(bare)
    try:
        welcome = " ".join(page_of(create_app(bare, bare_services), "/").text_content().split())
        assert "No feeds configured" in welcome and "newsdesk feeds add" in welcome
    finally:
        bare_services.close()


def test_stored_but_not_indexed_says_so(tmp_path: Path, feed_server: FeedServer) -> None:
    config = newsroom_config(tmp_path, feed_server)
    services = build_services(config)
    try:
        feeds = sync_config_feeds(services.store, config)
        update_feeds(services.store, feeds, config)  # `poll --no-index`: stored, not indexed
        stored = services.store.count_entries()
        welcome = " ".join(page_of(create_app(config, services), "/").text_content().split())
        assert f"{stored} articles stored, not searchable yet" in welcome and "newsdesk index" in welcome
    finally:
        services.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_newsdesk_run_welcomes_then_shows_the_news(tmp_path: Path, feed_server: FeedServer) -> None:
    # The real `newsdesk run` on a fresh data directory: while its first poll waits on the feed server,
    # / is a welcome that says the poll is under way; once the poll is stored and indexed, / is the news.
    release = threading.Event()
    body = (Path(__file__).resolve().parent / "fixtures" / "front" / "science-weekly.xml").read_text()
    body = body.replace("{base}", feed_server.base).encode()

    def slow_feed(handler: Any) -> Reply:
        release.wait(30)
        return Reply(200, body, {"Content-Type": "application/rss+xml"})

    feed_server.route("/science.xml", slow_feed)
    port = _free_port()
    config = tmp_path / "config.toml"
    config.write_text(
        f'data_dir = "data"\n[server]\nport = {port}\n[polling]\nper_host_delay = 0\n'
        f'[[feeds]]\nurl = "{feed_server.url("/science.xml")}"\ntitle = "Science Weekly"\ntags = ["science"]\n'
    )
    log = (tmp_path / "run.log").open("w")
    process = subprocess.Popen(
        [NEWSDESK, "--config", str(config), "run", "--tick", "0.2"], stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not any(path == "/science.xml" for path, _ in feed_server.requests):
            assert time.monotonic() < deadline and process.poll() is None, "the first poll never started"
            time.sleep(0.1)
        waiting = httpx.get(base + "/", timeout=10)
        assert waiting.status_code == 200
        text = " ".join(Page(lxml_html.fromstring(waiting.text)).text_content().split())
        assert "1 feed configured" in text and "Science Weekly" in text
        assert "This server polls the feeds itself" in text and "newsdesk poll --once" in text
        release.set()
        while True:
            page = httpx.get(base + "/", timeout=10)
            if 'section class="latest"' in page.text:
                break
            assert time.monotonic() < deadline, "the news never reached the front page"
            time.sleep(0.2)
        latest = Page(lxml_html.fromstring(page.text)).cssselect("section.latest h3 a")
        assert texts(latest)[0] == "Comet fragment found in Antarctic ice" and len(latest) == 3
    finally:
        release.set()
        process.terminate()
        process.wait(timeout=30)
        log.close()


# --------------------------------------------------------------------------- search, article page, dates


def test_search_results_keep_working_and_lead_back(newsroom: Services) -> None:
    app = create_app(newsroom.config, newsroom)
    results = page_of(app, "/?q=eastmouth+barrier")
    hits = results.cssselect("li.hit h2 a")
    assert hits and not results.cssselect("section.latest")
    # Result links carry the search, so the article page can lead back to it.
    href = hits[0].get("href")
    assert parse_qs(urlsplit(href).query) == {"q": ["eastmouth barrier"]}
    article = page_of(app, href)
    back = article.cssselect("p.back a")[0]
    assert back.get("href") == "/?q=eastmouth+barrier" and "eastmouth barrier" in back.text_content()
    # Filters and the page number come back too; empty or unknown arguments do not.
    filtered = page_of(app, "/?q=barrier&source=Harbour+Herald&page=1&per_page=5&tag=")
    href = filtered.cssselect("li.hit h2 a")[0].get("href")
    assert parse_qs(urlsplit(href).query) == {"q": ["barrier"], "source": ["Harbour Herald"], "page": ["1"]}
    back = page_of(app, href).cssselect("p.back a")[0].get("href")
    assert parse_qs(urlsplit(back).query) == {"q": ["barrier"], "source": ["Harbour Herald"], "page": ["1"]}
    # From the front page (or anywhere else) the way back is the front page.
    front_link = page_of(app, "/").cssselect("section.latest h3 a")[0].get("href")
    assert "?" not in front_link
    back = page_of(app, front_link).cssselect("p.back a")[0]
    assert back.get("href") == "/" and "Front page" in back.text_content()
    # An empty search is the front page; a bad argument is still the search page's clear error.
    assert page_of(app, "/?q=").cssselect("section.latest")
    bad = app.test_client().get("/?q=barrier&sort=sideways")
    assert bad.status_code == 400 and "sort must be one of" in bad.get_data(as_text=True)


def test_every_page_writes_times_one_way(newsroom: Services) -> None:
    app = create_app(newsroom.config, newsroom)
    capitol = entry_titled(newsroom, BARRIER_STORY["capitol-report"])
    pages = {
        "front": page_of(app, "/"),
        "results": page_of(app, "/?q=barrier"),
        "article": page_of(app, f"/entries/{capitol.id}"),
    }
    for name, page in pages.items():
        times = page.cssselect("time")
        assert times, name
        for node in times:
            assert DATE_LABEL.fullmatch(node.text_content()), (name, node.text_content())
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", node.get("datetime")), name
    assert pages["article"].cssselect("article.entry .meta time")[0].text_content() == "7 May 2024, 08:00 UTC"


def test_related_sidebar_keeps_the_way_back_and_the_date_format(tmp_path: Path, feed_server: FeedServer) -> None:
    from .test_related_api import OTHER_OUTLET, STORY_OUTLETS, entry_of
    from .test_related_api import build_newsroom as build_related_newsroom
    from .test_related_api import newsroom_config as related_config

    app = build_related_newsroom(related_config(tmp_path), feed_server, (*STORY_OUTLETS, OTHER_OUTLET))
    try:
        article = entry_of(services_of(app).store, "harbour-times")
        page = page_of(app, f"/entries/{article.id}?q=kessel+dam")
        links = page.cssselect("aside.related a.title")
        assert len(links) >= 2
        # A related article read from here still leads back to the same results.
        for link in links:
            assert parse_qs(urlsplit(link.get("href")).query) == {"q": ["kessel dam"]}
        times = page.cssselect("time")
        assert len(times) == len(links) + 1
        assert all(DATE_LABEL.fullmatch(node.text_content()) for node in times)
    finally:
        services_of(app).close()


def test_article_page_shows_the_lead_image_and_caption_once(newsroom: Services) -> None:
    herald = entry_titled(newsroom, BARRIER_STORY["harbour-herald"])
    assert herald.image is not None and herald.image.caption is not None
    assert herald.image.caption.startswith("The Eastmouth estuary at high tide")
    page = page_of(create_app(newsroom.config, newsroom), f"/entries/{herald.id}")
    article = page.cssselect("article.entry")[0]
    pictures = [img.get("src") for img in article.cssselect("img")]
    assert [image_key(src) for src in pictures].count(image_key(herald.image.url)) == 1, pictures
    assert texts(article.cssselect("figcaption")) == [herald.image.caption]
    # The caption is not in the running text either, and the article's words are all there.
    assert "high tide" not in herald.text and "We have waited twenty years" in herald.text
    assert "We have waited twenty years" in article.cssselect(".content")[0].text_content()


def test_feeds_are_tagged_as_configured(newsroom: Services) -> None:
    # The fixture's premise: the operator's tags reach the store (sections are built from them).
    tags = {feed.title: set(feed.tags) for feed in newsroom.store.list_feeds()}
    assert sorted(map(sorted, tags.values())) == sorted(sorted(t) for t in OUTLETS.values())
