"""Search results grouped by story: a story's hits sit together under its best one, which links full coverage.

The pure grouping is checked on made-up hits; the page on the front-page newsroom, polled for real from
fixture feeds on 127.0.0.1 (tests/fixtures/front/newsroom.py), whose barrier story has three outlets.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import html as lxml_html

from index.search.engine import SearchHit
from tests.fixtures.front.newsroom import BARRIER_STORY, build_newsroom, newsroom_config
from web.app import create_app
from web.search_groups import group_by_story
from web.services import Services

from .support.httpserver import FeedServer
from .test_related import make_entry


def having(cls: str) -> str:
    """Return the XPath test for an element carrying a class (lxml's cssselect needs a package we do not ship)."""
    return f"contains(concat(' ', normalize-space(@class), ' '), ' {cls} ')"


def hit(name: str) -> SearchHit:
    return SearchHit(entry=make_entry(name, name, name.title(), f"About {name}."), score=1.0, snippet=name)


def test_group_by_story_moves_a_storys_hits_under_its_first() -> None:
    hits = [hit(n) for n in ("a1", "x", "b1", "a2", "y", "b2", "a3")]
    stories = {"a1-a1": "sa", "a2-a2": "sa", "a3-a3": "sa", "b1-b1": "sb", "b2-b2": "sb", "y-y": "sy"}
    outlets = {"sa": 3, "sb": 2, "sy": 1}
    grouped = group_by_story(hits, stories, outlets, min_outlets=2)
    assert [g.hit.entry.id.split("-")[0] for g in grouped] == ["a1", "a2", "a3", "x", "b1", "b2", "y"]
    first = {g.hit.entry.id.split("-")[0]: g for g in grouped}
    assert (first["a1"].story_others, first["a1"].story_outlets, first["a1"].in_group) == (2, 3, False)
    assert first["a2"].in_group and first["a3"].in_group and first["a2"].story_others == 0
    assert (first["b1"].story_others, first["b1"].story_outlets) == (1, 2)
    # A story of one outlet is not shown as a story; a hit without a story stands alone.
    assert (first["y"].story_others, first["y"].story_outlets) == (0, 0)
    assert (first["x"].story_id, first["x"].in_group) == (None, False)
    assert len(grouped) == len(hits)


@pytest.fixture
def newsroom(tmp_path: Path, feed_server: FeedServer) -> Iterator[Services]:
    services = build_newsroom(newsroom_config(tmp_path, feed_server))
    services.assign_stories()
    yield services
    services.close()


def test_the_results_page_links_the_storys_full_coverage(newsroom: Services) -> None:
    app = create_app(newsroom.config, newsroom)
    client = app.test_client()
    hits = client.get("/api/v1/search?q=eastmouth+barrier").get_json()["hits"]
    barrier = {h["story_id"] for h in hits if h["title"] in BARRIER_STORY.values()}
    assert len(barrier) == 1
    (story_id,) = barrier
    on_story = [h for h in hits if h["story_id"] == story_id]
    assert len(on_story) >= 2

    page = lxml_html.fromstring(client.get("/?q=eastmouth+barrier").get_data(as_text=True))
    items = page.xpath(f"//li[{having('hit')}]")
    assert len(items) == len(hits)
    links = page.xpath(f"//li[{having('hit')}]//a[{having('story-link')}]")
    assert [a.get("href") for a in links] == [f"/stories/{story_id}"]
    assert links[0].text_content() == f"Full coverage: {len(BARRIER_STORY)} outlets"
    first = next(i for i, li in enumerate(items) if li.xpath(f".//a[{having('story-link')}]"))
    # The story's other hits follow its first one, marked as part of its group.
    followers = items[first + 1 : first + len(on_story)]
    assert all("in-story" in li.get("class") for li in followers)
    assert {li.xpath(".//h2/a")[0].text_content() for li in [items[first], *followers]} == {
        h["title"] for h in on_story
    }
    assert (
        items[first].xpath(f".//*[{having('story-others')}]")[0].text_content()
        == f"{len(on_story) - 1} more of this story below"
    )
