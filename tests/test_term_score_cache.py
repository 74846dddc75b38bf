"""The per-searcher cache of decoded term scores: same answers, bounded, emptied by a new searcher."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from index.search.engine import search
from index.search.scoring import TermScoreCache, term_scores
from tests.fixtures.search.world import NOW, build_world
from web.services import Services


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    services = build_world(tmp_path_factory.mktemp("world"))
    yield services
    services.close()


def test_cached_scores_are_the_computed_ones_and_bounded(world: Services) -> None:
    searcher = world.index_reader.searcher()
    assert searcher is not None
    lengths = world.index_reader.tables.table(searcher).lengths
    direct = term_scores(searcher, lengths, "text", "harbour")
    assert len(direct[0]) > 1
    one_term = direct[0].nbytes + direct[1].nbytes
    cache = TermScoreCache(max_bytes=one_term * 2)
    first = cache.scores(searcher, lengths, "text", "harbour")
    again = cache.scores(searcher, lengths, "text", "harbour")
    assert again is first and len(cache) == 1
    assert np.array_equal(first[0], direct[0]) and np.array_equal(first[1], direct[1])
    # Filling past the bound drops the least recently used term first.
    for word in ("mackerel", "council", "storm", "school"):
        cache.scores(searcher, lengths, "text", word)
    assert sum(d.nbytes + s.nbytes for d, s in cache._entries.values()) <= one_term * 2
    assert ("text", "harbour") not in cache._entries


def test_repeated_queries_answer_the_same(world: Services) -> None:
    world.index_reader.tables.term_scores.clear()
    runs = [search(world.index_reader, world.store, "harbour council", now=NOW) for _ in range(2)]
    assert len(world.index_reader.tables.term_scores) > 0
    first, second = ([(h.entry.id, h.score) for h in r.hits] for r in runs)
    assert first and first == second
    assert runs[0].total == runs[1].total


def test_a_new_searcher_empties_the_cache(tmp_path: Path) -> None:
    services = build_world(tmp_path)
    try:
        searcher = services.index_reader.searcher()
        assert searcher is not None
        lengths = services.index_reader.tables.table(searcher).lengths
        cache = TermScoreCache()
        cache.scores(searcher, lengths, "text", "harbour")
        services.index_reader.close()  # the next searcher is a new one, as after the indexer commits
        newer = services.index_reader.searcher()
        assert newer is not None and newer.reader() is not searcher.reader()
        cache.scores(newer, lengths, "text", "mackerel")
        assert len(cache) == 1 and ("text", "mackerel") in cache._entries
    finally:
        services.close()
