"""The front page, its top-story cards, a story page, a fresh install's welcome and the article page in headless Chromium.

Pages are read with JavaScript off (they must work without it) at a desktop and a 375 px phone
width, with screenshots saved under test-artifacts/; feed strings are checked inert with it on.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import render_template

from tests.fixtures.front.newsroom import BARRIER_STORY, PICTURES, build_newsroom, newsroom_config
from web.app import create_app
from web.front import build_front_page, story_card, story_path
from web.related import teaser
from web.services import Services, build_services

from .conftest import make_config
from .support.browser import artifact
from .support.httpserver import FeedServer
from .support.live import LiveServer
from .test_browser_embed import INSPECT, assert_inert

pytestmark = pytest.mark.browser

#: (name, viewport) of the two screens every page is checked on.
SCREENS = (("desktop", {"width": 1280, "height": 900}), ("phone", {"width": 375, "height": 812}))
#: A test-only route showing the front page with top-story cards (the app shows none until stories exist).
WITH_STORIES = "/test/front-with-stories"


@pytest.fixture(scope="module")
def newsroom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Services, LiveServer]]:
    with FeedServer() as feeds:  # serves the pictures too, so it lives as long as the pages
        services = build_newsroom(newsroom_config(tmp_path_factory.mktemp("front"), feeds))
        app = create_app(services.config, services)
        entries = {entry.title: entry for entry in services.store.iter_entries()}
        hostile = [entry for entry in entries.values() if "Hostile" in entry.source.title]

        def front_with_stories() -> str:
            cards = [
                story_card("eastmouth-barrier", [entries[title] for title in BARRIER_STORY.values()]),
                story_card("hostile-story", [*hostile, entries["Bee populations recover along wildflower corridors"]]),
            ]
            return render_template(
                "pages/front.html", front=build_front_page(services, stories=cards), story_path=story_path
            )

        app.add_url_rule(WITH_STORIES, "front_with_stories", front_with_stories)
        with LiveServer(app) as live:
            yield services, live
        services.close()


@pytest.fixture(scope="module")
def storyroom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Services, LiveServer]]:
    """The same newsroom with its stories assigned, as the writer does after a poll (a real story page)."""
    with FeedServer() as feeds:
        services = build_newsroom(newsroom_config(tmp_path_factory.mktemp("stories"), feeds))
        services.assign_stories()
        with LiveServer(create_app(services.config, services)) as live:
            yield services, live
        services.close()


def screens(browser: Any) -> Iterator[tuple[str, dict[str, int], Any]]:
    """Yield (screen name, viewport, a new page with JavaScript off) for each of SCREENS, closing each after its turn."""
    for name, viewport in SCREENS:
        context = browser.new_context(viewport=viewport, java_script_enabled=False)
        try:
            yield name, viewport, context.new_page()
        finally:
            context.close()


def no_sideways_scroll(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def box(page: Any, selector: str) -> dict[str, float]:
    found = page.locator(selector).first.bounding_box()
    assert found is not None, selector
    return dict(found)


def test_front_page_on_desktop_and_phone_without_javascript(
    browser: Any, newsroom: tuple[Services, LiveServer]
) -> None:
    _services, live = newsroom
    for name, viewport, page in screens(browser):
        page.goto(live.base + "/")
        page.screenshot(path=str(artifact(f"front-{name}.png")), full_page=True)
        assert no_sideways_scroll(page), name
        latest, first = box(page, "section.latest"), box(page, "section.latest li.article h3")
        # The search box on top, then the news: the first headline is on the first screen.
        assert box(page, "form[role=search]")["y"] < latest["y"]
        assert first["y"] + first["height"] < viewport["height"], name
        side = box(page, "section.topic")
        if name == "desktop":
            assert side["x"] > latest["x"] + latest["width"] - 1 and abs(side["y"] - latest["y"]) < 5
        else:  # one column on a phone: the sections follow "Latest"
            assert side["y"] >= latest["y"] + latest["height"] - 1
            assert latest["width"] <= viewport["width"] and side["width"] <= viewport["width"]
        # Every picture loaded and sits inside its list item, beside the headline.
        loaded = page.evaluate(
            """names => [...document.querySelectorAll('img.thumb')]
                 .filter(img => names.some(n => img.src.includes('/img/' + n + '.png')))
                 .map(img => [img.naturalWidth, img.getBoundingClientRect().right,
                              img.closest('li').getBoundingClientRect().right])""",
            list(PICTURES),
        )
        assert len(loaded) >= 3, loaded
        assert all(width > 0 and right <= li_right + 0.5 for width, right, li_right in loaded), loaded
        # Searching needs no script: type, press Enter, get results.
        page.get_by_label("Search the news").fill("eastmouth")
        page.get_by_label("Search the news").press("Enter")
        page.wait_for_url("**/?q=eastmouth")
        assert page.locator("li.hit").count() >= 2


def test_top_story_cards_on_desktop_and_phone(browser: Any, newsroom: tuple[Services, LiveServer]) -> None:
    _services, live = newsroom
    for name, viewport, page in screens(browser):
        page.goto(live.base + WITH_STORIES)
        page.screenshot(path=str(artifact(f"front-top-stories-{name}.png")), full_page=True)
        assert no_sideways_scroll(page), name
        cards = page.locator(".top-stories li.story-card")
        assert cards.count() == 2
        barrier = cards.first
        assert barrier.locator("h3").inner_text() == BARRIER_STORY["capitol-report"]
        assert barrier.locator(".story-link a").inner_text().startswith("Full coverage: 3 outlets")
        assert barrier.locator(".story-link a").get_attribute("href") == "/stories/eastmouth-barrier"
        assert barrier.locator(".other-coverage li").count() == 2
        assert page.evaluate("document.querySelector('.story-card img.thumb').naturalWidth") > 0
        first, second = box(page, ".story-card"), box(page, ".story-card:nth-child(2)")
        if name == "desktop":  # two cards side by side, above "Latest"
            assert abs(first["y"] - second["y"]) < 1 and second["x"] > first["x"] + first["width"]
        else:
            assert second["y"] >= first["y"] + first["height"] and first["width"] <= viewport["width"]
        assert box(page, "section.latest")["y"] > first["y"] + first["height"]


def test_feed_strings_are_inert_on_the_front_page(browser: Any, newsroom: tuple[Services, LiveServer]) -> None:
    _services, live = newsroom
    context = browser.new_context()  # script on: anything the feeds managed to inject would run
    dialogs: list[str] = []
    try:
        page = context.new_page()
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        for path in ("/", WITH_STORIES):
            page.goto(live.base + path)
            assert page.get_by_text("Harbour lights").first.is_visible()
            assert_inert(page.evaluate(INSPECT), dialogs, path)
            # No picture from a javascript: or broken-out URL: every thumbnail is an http(s) address.
            sources = page.evaluate("[...document.querySelectorAll('img')].map(img => img.getAttribute('src'))")
            assert sources and all(src.startswith("http://127.0.0.1:") and '"' not in src for src in sources)
    finally:
        context.close()


def test_fresh_install_welcome_on_desktop_and_phone(browser: Any, tmp_path: Path, feed_server: FeedServer) -> None:
    config = make_config(
        tmp_path,
        feeds=[
            {"url": feed_server.url("/world.xml"), "title": "World Desk", "tags": ["world"]},
            {"url": feed_server.url("/a/very/long/path/to/a/feed/that/must/wrap/on/a/phone/screen/rss.xml")},
        ],
    )
    services = build_services(config)
    try:
        with LiveServer(create_app(config, services)) as live:
            for name, _viewport, page in screens(browser):
                response = page.goto(live.base + "/")
                assert response is not None and response.status == 200
                page.screenshot(path=str(artifact(f"front-welcome-{name}.png")), full_page=True)
                assert no_sideways_scroll(page), name
                welcome = page.locator("section.welcome")
                assert welcome.get_by_role("heading", name="Welcome to Newsdesk").is_visible()
                assert welcome.get_by_role("heading", name="2 feeds configured").is_visible()
                assert welcome.get_by_text("newsdesk poll --once").is_visible()
                assert welcome.locator(".welcome-feeds li").count() == 2
    finally:
        services.close()


def test_article_page_is_centred_and_leads_back(browser: Any, newsroom: tuple[Services, LiveServer]) -> None:
    _services, live = newsroom
    for name, _viewport, page in screens(browser):
        page.goto(live.base + "/?q=eastmouth")
        page.locator("li.hit h2 a", has_text="go-ahead").click()
        page.wait_for_url("**/entries/**")
        page.screenshot(path=str(artifact(f"entry-{name}.png")), full_page=True)
        assert no_sideways_scroll(page), name
        article = box(page, "article.entry")
        width = page.evaluate("document.documentElement.clientWidth")
        left, right = article["x"], width - article["x"] - article["width"]
        assert abs(left - right) <= 2, (name, left, right)
        # The lead picture once, then the text; the way back returns to the same results.
        assert page.locator("article.entry img").count() == 1
        assert page.locator("article.entry figcaption").count() == 1
        page.locator("p.back a").click()
        page.wait_for_url("**/?q=eastmouth")
        assert page.locator("li.hit").count() >= 2


def test_article_page_with_its_sidebar_is_centred(browser: Any, tmp_path: Path, feed_server: FeedServer) -> None:
    from .test_related_api import OTHER_OUTLET, STORY_OUTLETS, entry_of
    from .test_related_api import build_newsroom as build_related_newsroom
    from .test_related_api import newsroom_config as related_config

    app = build_related_newsroom(related_config(tmp_path), feed_server, (*STORY_OUTLETS, OTHER_OUTLET))
    services = app.extensions["newsdesk"]
    try:
        article = entry_of(services.store, "harbour-times")
        with LiveServer(app) as live:
            context = browser.new_context(viewport={"width": 1280, "height": 900}, java_script_enabled=False)
            try:
                page = context.new_page()
                page.goto(f"{live.base}/entries/{article.id}")
                layout, sidebar = box(page, ".entry-layout"), box(page, "aside.related")
                width = page.evaluate("document.documentElement.clientWidth")
                assert abs(layout["x"] - (width - layout["x"] - layout["width"])) <= 2, layout
                assert sidebar["x"] > box(page, "article.entry")["x"] + 300  # beside the article, not below it
                assert page.locator("p.back a").get_attribute("href") == "/"
            finally:
                context.close()
    finally:
        services.close()


def test_story_page_on_desktop_and_phone(browser: Any, storyroom: tuple[Services, LiveServer]) -> None:
    services, live = storyroom
    entries = {entry.title: entry for entry in services.store.iter_entries()}
    barrier = sorted((entries[title] for title in BARRIER_STORY.values()), key=lambda e: (e.published_at, e.id))
    (story_id,) = set(services.stories.stories_of([entry.id for entry in barrier]).values())
    first_picture = next(entry.image.url for entry in barrier if entry.image and entry.image.url.startswith("http"))
    for name, viewport, page in screens(browser):
        response = page.goto(f"{live.base}/stories/{story_id}")
        assert response is not None and response.status == 200
        page.screenshot(path=str(artifact(f"story-{name}.png")), full_page=True)
        assert no_sideways_scroll(page), name
        assert page.locator("h1").inner_text() == barrier[0].title
        assert page.locator(".outlet-count").inner_text() == "3 outlets"
        # The timeline: every outlet's article in time order, the first report marked, and only it.
        items = page.locator("ol.story-timeline li")
        assert items.count() == 3
        assert [items.nth(i).locator("a.title").inner_text() for i in range(3)] == [e.title for e in barrier]
        assert [items.nth(i).locator(".source").inner_text() for i in range(3)] == [e.source.title for e in barrier]
        times = [items.nth(i).locator("time").get_attribute("datetime") for i in range(3)]
        assert times == sorted(times)
        assert page.locator("li.first-report").count() == 1
        assert items.first.get_attribute("class") == "first-report"
        assert items.first.locator(".first-label").inner_text() == "First to report"
        # The best picture: the earliest one an outlet gave, loaded and within the screen.
        picture = page.locator("article.story figure img")
        assert picture.count() == 1 and picture.get_attribute("src") == first_picture
        assert page.evaluate("document.querySelector('article.story figure img').naturalWidth") > 0
        shown = box(page, "article.story figure img")
        assert shown["x"] >= 0 and shown["x"] + shown["width"] <= viewport["width"], name
        # ...at the column's width (up to 40rem), aligned with the headline, not a thumbnail indented by the figure.
        column = box(page, "article.story h1")
        assert abs(shown["x"] - column["x"]) <= 1, (name, shown, column)
        assert shown["width"] >= min(column["width"], 640) - 1, (name, shown, column)
        # Each outlet's teaser under its headline: how it covered the story, in its own words.
        teasers = [items.nth(i).locator(".teaser").inner_text() for i in range(3)]
        assert teasers == [teaser(e) for e in barrier] and all(teasers), teasers
        for i in range(3):  # long headlines wrap inside the screen rather than run off it
            title = box(page, f"ol.story-timeline li:nth-child({i + 1}) a.title")
            assert title["x"] >= 0 and title["x"] + title["width"] <= viewport["width"] + 0.5, (name, i)
        # Each headline leads to its article page.
        assert items.nth(1).locator("a.title").get_attribute("href") == f"/entries/{barrier[1].id}"


def test_feed_strings_are_inert_on_story_pages(browser: Any, storyroom: tuple[Services, LiveServer]) -> None:
    services, live = storyroom
    hostile = [entry for entry in services.store.iter_entries() if "Hostile" in entry.source.title]
    story_ids = sorted(set(services.stories.stories_of([entry.id for entry in hostile]).values()))
    assert hostile and story_ids
    context = browser.new_context()  # script on: anything the feeds managed to inject would run
    dialogs: list[str] = []
    try:
        page = context.new_page()
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        for story_id in story_ids:
            path = f"/stories/{story_id}"
            response = page.goto(live.base + path)
            assert response is not None and response.status == 200
            # The hostile outlet's name and headline are shown as text...
            assert page.locator("ol.story-timeline .source", has_text="Hostile").count() >= 1
            assert_inert(page.evaluate(INSPECT), dialogs, path)
            # ...and no picture or link comes from a javascript:, data: or broken-out URL.
            sources = page.evaluate("[...document.querySelectorAll('img')].map(img => img.getAttribute('src'))")
            assert all(src.startswith("http://127.0.0.1:") and '"' not in src for src in sources), sources
        page.screenshot(path=str(artifact("story-hostile.png")), full_page=True)
    finally:
        context.close()
