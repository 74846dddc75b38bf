"""The newest entries of the live index (the front page's Latest and topic sections), on a real index."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from index.search.engine import Filters, IndexReader, search
from index.search.latest import newest_ids
from tests.fixtures.search.world import build_world
from web.services import Services

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    services = build_world(tmp_path_factory.mktemp("latest"))
    yield services
    services.close()


def newest_by_search(world: Services, **filters: object) -> list[str]:
    """Return what search lists, newest first with copies collapsed: the same question asked another way."""
    wanted = Filters(date_from=EPOCH, **filters)  # type: ignore[arg-type]
    results = search(world.index_reader, world.store, "", filters=wanted, sort="newest", per_page=100)
    assert results.total_groups <= 100
    return [hit.entry.id for hit in results.hits]


def test_newest_first_one_per_wire_story(world: Services) -> None:
    entries = {entry.id: entry for entry in world.store.iter_entries()}
    everything = newest_ids(world.index_reader, len(entries))
    dates = [entries[i].published_at for i in everything]
    assert dates == sorted(dates, reverse=True)
    assert everything == newest_by_search(world)
    # The dock strike ran as one wire text in three outlets: one of them stands for it.
    wire = [i for i in entries if entries[i].title == "Ports fall silent as dock strike starts"]
    copies = {
        d.entry.id for hit in search(world.index_reader, world.store, '"dock strike"').hits for d in hit.duplicates
    }
    assert wire and copies and len(set(everything) & (set(wire) | copies)) == 1
    assert len(everything) < len(entries)
    # A shorter list is the head of the longer one, even when dropped copies fall inside it.
    for limit in (1, 3, 7, 20):
        assert newest_ids(world.index_reader, limit) == everything[:limit]


def test_only_the_given_feeds(world: Services) -> None:
    feeds = {feed.title: feed for feed in world.store.list_feeds()}
    stored = {entry.id: entry for entry in world.store.iter_entries()}
    tides = newest_ids(world.index_reader, 100, feed_keys={feeds["Tide Tables"].key})
    assert tides and tides == newest_by_search(world, sources=("Tide Tables",))
    assert {stored[i].feed_key for i in tides} == {feeds["Tide Tables"].key}
    two = {feeds["Tide Tables"].key, feeds["Valley Times"].key}
    both = newest_ids(world.index_reader, 5, feed_keys=two)
    assert both == newest_by_search(world, sources=("Tide Tables", "Valley Times"))[:5]
    assert {stored[i].feed_key for i in both} == two
    assert newest_ids(world.index_reader, 5, feed_keys=set()) == []
    assert newest_ids(world.index_reader, 5, feed_keys={"no-such-feed"}) == []
    assert newest_ids(world.index_reader, 0) == []


def test_no_index_yet(tmp_path: Path) -> None:
    assert newest_ids(IndexReader(tmp_path / "index"), 10) == []
