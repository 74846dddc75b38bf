"""The search page in a real headless Chromium: search, filter by a facet, paginate, expand copies, phone layout."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.search.world import build_world
from web.app import create_app

from .support.browser import artifact
from .support.live import LiveServer

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    services = build_world(tmp_path_factory.mktemp("world"))
    with LiveServer(create_app(services.config, services)) as server:
        yield server
    services.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    yield page
    context.close()


def test_search_filter_paginate(live: LiveServer, page: Any) -> None:
    page.goto(live.base + "/")
    # Keyboard only: the query box is labelled and focused; Enter submits.
    box = page.get_by_label("Search the news")
    box.fill("tide")
    box.press("Enter")
    page.wait_for_url("**/?q=tide*")
    assert "46 results" in page.locator("#results-heading").inner_text()
    assert page.locator("li.hit").count() == 20
    page.screenshot(path=str(artifact("search-results.png")), full_page=True)

    # Filter by a facet: the outlet link narrows the results and shows as an active filter.
    page.locator(".facets").get_by_role("link", name="Tide Tables").click()
    page.wait_for_url("**source=Tide+Tables*")
    assert "45 results" in page.locator("#results-heading").inner_text()
    assert page.locator(".active-filters").get_by_text("source: Tide Tables").is_visible()

    # Paginate: page 2 holds different results, and says it is the current page.
    first_titles = page.locator("li.hit h2").all_inner_texts()
    page.get_by_role("navigation", name="Result pages").get_by_role("link", name="2", exact=True).click()
    page.wait_for_url("**page=2*")
    assert page.locator(".pagination [aria-current=page]").inner_text() == "2"
    second_titles = page.locator("li.hit h2").all_inner_texts()
    assert second_titles and not set(first_titles) & set(second_titles)
    page.screenshot(path=str(artifact("search-page-2.png")), full_page=True)


def test_copies_expand_and_phone_layout(live: LiveServer, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    page = context.new_page()
    try:
        page.goto(live.base + "/?q=dock+strike")
        # The first result is on the first screen, before the facets.
        first = page.locator("ol.results > li").first.bounding_box()
        assert first is not None and first["y"] + 40 < 844
        facets = page.locator(".facets").bounding_box()
        assert facets is not None and facets["y"] > first["y"]
        summary = page.get_by_text("2 more from other outlets")
        copies = page.locator("details.duplicates li")
        assert not copies.first.is_visible()
        summary.click()
        assert copies.count() == 2 and copies.first.is_visible()
        # Nothing overflows sideways on a phone.
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert page.locator("main").count() == 1 and page.get_by_role("search").count() == 1
        page.screenshot(path=str(artifact("search-phone.png")), full_page=True)
        page.goto(live.base + "/?q=mackrel")
        page.get_by_role("link", name="mackerel").click()
        assert (
            "1 result" in page.locator("#results-heading").inner_text()
            or "2 results" in page.locator("#results-heading").inner_text()
        )
    finally:
        context.close()


def test_artifacts_written(tmp_path: Path) -> None:
    assert artifact("search-results.png").parent.is_dir()
