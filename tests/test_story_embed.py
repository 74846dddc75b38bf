"""Related coverage by story id: /api/v1/related?story=, /embed/related?story= and the script's data-story.

The newsroom is polled for real from fixture feeds on 127.0.0.1 (tests/fixtures/front/newsroom.py):
three outlets cover the Eastmouth storm barrier story, hours to a day apart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from aggregator.stories import StoryChanges
from tests.fixtures.front.newsroom import BARRIER_STORY, build_newsroom, newsroom_config
from web.app import create_app, services_of
from web.services import Services

from .support.httpserver import FeedServer


@pytest.fixture
def newsroom(tmp_path: Path, feed_server: FeedServer) -> Iterator[tuple[Services, Flask]]:
    services = build_newsroom(newsroom_config(tmp_path, feed_server))
    services.assign_stories()
    app = create_app(services.config)
    yield services, app
    services_of(app).close()
    services.close()


def barrier_story(services: Services) -> tuple[str, dict[str, str]]:
    """Return the barrier story's id and its articles' title -> entry id."""
    titles = set(BARRIER_STORY.values())
    entries = {e.title: e.id for e in services.store.iter_entries() if e.title in titles}
    assert set(entries) == titles
    (story_id,) = set(services.stories.stories_of(list(entries.values())).values())
    return story_id, entries


def test_related_by_story_lists_its_outlets_newest_first(newsroom: tuple[Services, Flask]) -> None:
    services, app = newsroom
    story_id, entries = barrier_story(services)
    client = app.test_client()
    response = client.get("/api/v1/related", query_string={"story": story_id})
    assert response.status_code == 200 and response.headers["Access-Control-Allow-Origin"] == "*"
    items = response.get_json()["items"]
    assert {i["id"] for i in items} == set(entries.values())
    assert len({i["source"] for i in items}) == len(items) == 3
    dates = [i["published_at"] for i in items]
    assert dates == sorted(dates, reverse=True)
    assert {i["story_id"] for i in items} == {story_id}
    # story= wins over the article parameters, and limit still applies.
    limited = client.get("/api/v1/related", query_string={"story": story_id, "title": "Comet", "limit": 2})
    assert [i["id"] for i in limited.get_json()["items"]] == [i["id"] for i in items[:2]]

    frame = client.get("/embed/related", query_string={"story": story_id})
    page = frame.get_data(as_text=True)
    assert frame.status_code == 200 and all(title in page for title in entries)


def test_an_alias_resolves_and_an_unknown_story_is_404(newsroom: tuple[Services, Flask]) -> None:
    services, app = newsroom
    story_id, entries = barrier_story(services)
    everything = list(services.store.iter_entries())
    outlets = {e.source.title for e in everything if e.id in entries.values()}
    # An article of a fourth outlet, so the merged story lists it beside the three (one per outlet).
    other_entry = next(e for e in everything if e.source.title not in outlets)
    gone = services.stories.stories_of([other_entry.id])[other_entry.id]
    survivor, merged = services.stories.story(story_id), services.stories.story(gone)
    assert survivor is not None and merged is not None and gone != story_id
    seq = services.stories.cursor()
    merge = StoryChanges(
        stories=(
            dataclasses.replace(survivor, members=survivor.members + 1),
            dataclasses.replace(merged, merged_into=story_id),
        ),
        aliases=((gone, story_id),),
    )
    services.stories.save_at(merge, seq, seq)
    client = app.test_client()
    items = client.get("/api/v1/related", query_string={"story": gone}).get_json()["items"]
    assert {i["story_id"] for i in items} == {story_id}
    assert other_entry.id in {i["id"] for i in items} and set(entries.values()) <= {i["id"] for i in items}

    unknown = client.get("/api/v1/related?story=s-nope")
    assert unknown.status_code == 404 and "s-nope" in unknown.get_json()["message"]
    frame = client.get("/embed/related?story=s-nope")
    assert frame.status_code == 404 and "No other coverage" in frame.get_data(as_text=True)
    assert 'data-status="404"' in frame.get_data(as_text=True)
