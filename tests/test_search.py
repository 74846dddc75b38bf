"""Search against a real index built from the fixture feeds: syntax, filters, facets, collapse, ranking, pages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.errors import QueryError
from index.search.engine import Filters, Ranking, SearchResults, search
from tests.fixtures.search.world import BULK_ITEMS, NOW, build_world
from web.services import Services


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    services = build_world(tmp_path_factory.mktemp("world"))
    yield services
    services.close()


def run(world: Services, query: str, **options: object) -> SearchResults:
    return search(world.index_reader, world.store, query, now=NOW, **options)  # type: ignore[arg-type]


def titles(results: SearchResults) -> list[str]:
    return [hit.entry.title for hit in results.hits]


def test_words_are_anded(world: Services) -> None:
    assert titles(run(world, "mackerel quay")) == ["Record mackerel catch lands at the north quay"]


def test_stemming_and_accent_folding(world: Services) -> None:
    assert "School election chooses youngest ever council member" in titles(run(world, "elections"))
    assert titles(run(world, "cafe")) == ["Le café du port rouvre ses portes"]
    assert titles(run(world, "élection municipale")) == ["Élection municipale : la participation en hausse"]


def test_exact_phrase(world: Services) -> None:
    assert titles(run(world, '"sea wall"')) == ["Council approves new sea wall for the harbour"]
    assert run(world, '"wall sea"').total == 0


def test_or(world: Services) -> None:
    assert set(titles(run(world, "cheese OR viaduct"))) == {
        "Cheese festival draws record crowds",
        "Old railway viaduct to reopen as a footpath",
    }


def test_excluded(world: Services) -> None:
    with_mackerel = set(titles(run(world, "harbour")))
    without = set(titles(run(world, "harbour -mackerel")))
    assert "Record mackerel catch lands at the north quay" in with_mackerel - without


def test_not_and_and_operators(world: Services) -> None:
    excluded = run(world, "harbour NOT mackerel")
    assert titles(excluded) == titles(run(world, "harbour -mackerel"))
    assert "Record mackerel catch lands at the north quay" not in titles(excluded)
    assert not any("NOT" in n or "AND" in n for n in excluded.notices)
    assert titles(run(world, "mackerel AND quay")) == ["Record mackerel catch lands at the north quay"]


def test_title_and_author_fields(world: Services) -> None:
    assert titles(run(world, "title:keeper")) == ["Lighthouse keeper retires after forty years"]
    assert run(world, "title:automation").total == 0  # only in the body
    by_priya = run(world, 'author:"priya raman"', collapse=False)
    assert by_priya.total == 3 and all(h.entry.source.title == "Northern Wire" for h in by_priya.hits)


def test_source_site_tag_lang_filters_in_the_query(world: Services) -> None:
    assert {h.entry.source.title for h in run(world, "source:valley").hits} == {"Valley Times"}
    assert {h.entry.source.title for h in run(world, "site:coastal-daily.example").hits} == {"Coastal Daily"}
    assert titles(run(world, "tag:weather")) == ["Storm warning issued for the weekend"]
    french = run(world, "lang:fr")
    assert french.total == 3 and {h.entry.language for h in french.hits} == {"fr"}


def test_tags_match_however_they_are_written(world: Services) -> None:
    # The feed's tag is "Moffat, Alasdair": once indexed as "moffat  alasdair" (comma -> space),
    # which no way of typing it matched, and the Topic facet showed that mangled form.
    keeper = ["Lighthouse keeper retires after forty years"]
    for typed in (
        'tag:"Moffat, Alasdair"',
        'tag:"moffat alasdair"',
        'tag:"MOFFAT,ALASDAIR"',
        'tag:"Moffat,  Alasdair"',
    ):
        assert titles(run(world, typed)) == keeper, typed
    for value in ("Moffat, Alasdair", "moffat alasdair", " moffat ,alasdair "):
        assert titles(run(world, "", filters=Filters(tags=(value,)))) == keeper, value
    # A tag matches whole: one word of it is not the tag.
    assert run(world, "tag:moffat").total == 0
    facet = next(f for f in run(world, "keeper").facets.tags if f.value == "moffat alasdair")
    assert facet.label == "Moffat, Alasdair" and facet.count == 1
    # The facet's value is what a facet link filters on.
    assert titles(run(world, "", filters=Filters(tags=(facet.value,)))) == keeper


def test_date_filters(world: Services) -> None:
    after = run(world, "harbour after:2024-05-17", collapse=False)
    assert after.total >= 2 and all(h.entry.published_at >= datetime(2024, 5, 17, tzinfo=UTC) for h in after.hits)
    before = run(world, "mackerel before:2024-01-01")
    assert titles(before) == ["Mackerel quotas cut by a fifth"]
    week = run(world, 'mackerel date:"past week"')
    assert titles(week) == ["Record mackerel catch lands at the north quay"]


def test_fuzzy_and_prefix(world: Services) -> None:
    assert "Election campaign enters its final week" in titles(run(world, "elektion~"))
    assert set(titles(run(world, "lighthous*"))) == {
        "Lighthouse keeper retires after forty years",
        "Lifeboat crew rescues kayakers off the point",
    }


@pytest.mark.parametrize(
    ("word", "typo"),
    [
        ("election", "elektion"),
        ("retires", "retirse"),
        ("strikes", "strikse"),
        ("harbour", "harbor"),
        ("mackerel", "mackere"),
    ],
)
def test_fuzzy_finds_at_least_what_the_plain_word_finds(world: Services, word: str, typo: str) -> None:
    # The title's fuzzy terms once expanded through its unstemmed spelling words ("retires"),
    # which no title posting holds (the title term is the stem "retir"): fewer results than the word.
    plain = {h.entry.id for h in run(world, word, collapse=False, per_page=100).hits}
    for fuzzy in (f"{word}~", f"{typo}~"):
        assert plain <= {h.entry.id for h in run(world, fuzzy, collapse=False, per_page=100).hits}, fuzzy
    title_only = {h.entry.id for h in run(world, f"title:{word}", collapse=False, per_page=100).hits}
    assert title_only
    assert title_only <= {h.entry.id for h in run(world, f"title:{word}~", collapse=False, per_page=100).hits}


def test_unparseable_query_falls_back_and_says_so(world: Services) -> None:
    results = run(world, 'colour:blue "sea wall')
    assert any("colour:" in n for n in results.notices) and any("not closed" in n for n in results.notices)
    assert "Council approves new sea wall for the harbour" in titles(results)


def test_zero_results_with_and_retries_as_or(world: Services) -> None:
    results = run(world, "mackerel zeppelin")
    assert results.relaxed and results.total == 2
    assert any("any of them" in n for n in results.notices)


def test_did_you_mean(world: Services) -> None:
    results = run(world, "mackrel")
    assert results.total == 0 and results.suggestion == "mackerel"
    assert run(world, "mackerel").suggestion is None


def test_filters_outside_the_query(world: Services) -> None:
    results = run(world, "strike OR election", filters=Filters(sources=("Valley Times",)), collapse=False)
    assert {h.entry.source.title for h in results.hits} == {"Valley Times"} and results.total == 2
    assert run(world, "harbour", filters=Filters(tags=("FISHING",))).total == 1
    assert run(world, "", filters=Filters(languages=("fr",))).total == 3
    window = Filters(date_from=datetime(2024, 5, 15, tzinfo=UTC), date_to=datetime(2024, 5, 16, tzinfo=UTC))
    assert titles(run(world, "ferry", filters=window)) == ["Ferry timetable changes for the summer season"]


def test_facets_count_every_match(world: Services) -> None:
    facets = run(world, "dock strike").facets
    assert {(f.value, f.count) for f in facets.sources} == {
        ("Coastal Daily", 1),
        ("Northern Wire", 1),
        ("Valley Times", 1),
    }
    assert [(f.value, f.count) for f in facets.tags] == [("economy", 3)]
    assert [(f.value, f.count) for f in facets.languages] == [("en", 3)]
    assert {f.value: f.count for f in facets.dates} == {"day": 0, "week": 3, "month": 3, "year": 3}
    tides = run(world, "tide").facets
    assert tides.sources[0].value == "Tide Tables" and tides.sources[0].count == BULK_ITEMS


def test_near_duplicates_collapse_and_expand(world: Services) -> None:
    results = run(world, "dock workers strike")
    assert results.total == 3 and results.total_groups == 1
    hit = results.hits[0]
    assert hit.duplicate_count == 2
    outlets = {hit.entry.source.title} | {d.entry.source.title for d in hit.duplicates}
    assert outlets == {"Northern Wire", "Valley Times", "Coastal Daily"}
    assert run(world, "dock workers strike", collapse=False).total_groups == 3


def test_snippets_mark_terms_from_clean_text(world: Services) -> None:
    hit = run(world, "ferry sailings").hits[0]
    assert "<mark>ferry</mark>" in hit.snippet and "<mark>sailings</mark>" in hit.snippet
    assert "<p>" not in hit.snippet
    assert hit.title_html == "<mark>Ferry</mark> timetable changes for the summer season"


def test_pagination_is_stable_and_disjoint(world: Services) -> None:
    seen: list[str] = []
    for page in range(1, 5):
        results = run(world, "tide report", page=page, per_page=10, collapse=False)
        again = run(world, "tide report", page=page, per_page=10, collapse=False)
        assert [h.entry.id for h in results.hits] == [h.entry.id for h in again.hits]
        seen += [h.entry.id for h in results.hits]
    assert len(seen) == len(set(seen)) == 40
    last = run(world, "tide report", page=5, per_page=10, collapse=False)
    assert len(last.hits) == BULK_ITEMS - 40 and last.pages == 5
    assert run(world, "tide report", page=99).hits == ()


def test_collapsed_pages_cover_every_story_once(world: Services) -> None:
    first = run(world, "tide report", per_page=10)
    pages = [run(world, "tide report", page=p, per_page=10) for p in range(1, first.pages + 1)]
    leaders = [h.entry.id for page in pages for h in page.hits]
    copies = [d.entry.id for page in pages for h in page.hits for d in h.duplicates]
    assert len(leaders) == first.total_groups and len(set(leaders) | set(copies)) == len(leaders) + len(copies)
    assert len(leaders) + sum(h.duplicate_count for page in pages for h in page.hits) == first.total


def test_recency_breaks_ties_between_equally_relevant_results(world: Services) -> None:
    # Every tide report matches "estuary pilots" alike; the boost must order them newest first.
    results = run(world, '"estuary pilots"', per_page=5)
    dates = [h.entry.published_at for h in results.hits]
    assert dates == sorted(dates, reverse=True)
    flat = run(world, '"estuary pilots"', per_page=5, ranking=Ranking(weight=0))
    assert flat.total == results.total


def test_sort_orders(world: Services) -> None:
    newest = run(world, "harbour", sort="newest", collapse=False)
    oldest = run(world, "harbour", sort="oldest", collapse=False)
    assert [h.entry.id for h in newest.hits] == [h.entry.id for h in reversed(oldest.hits)]
    dates = [h.entry.published_at for h in newest.hits]
    assert dates == sorted(dates, reverse=True)


def test_bad_arguments_are_query_errors(world: Services) -> None:
    for options in ({"page": 0}, {"per_page": 101}, {"sort": "random"}):
        with pytest.raises(QueryError):
            run(world, "harbour", **options)


def test_empty_query_and_missing_index(world: Services, tmp_path: Path) -> None:
    assert run(world, "   ").total == 0
    from index.search.engine import IndexReader

    assert search(IndexReader(tmp_path / "none"), world.store, "harbour").total == 0


@pytest.mark.parametrize(
    "query",
    [
        "harbour",
        "dock strike",
        "ferry OR mackerel",
        "title:election",
        "council harbour",
        # Prefix and fuzzy words: scored by frequency as Whoosh's constant-score matchers do.
        "harb*",
        "harbor~",
        "tide OR harb*",
        "mackrel~ quay",
        "title:elect* council",
    ],
)
def test_array_scoring_matches_whoosh_bm25f(world: Services, query: str) -> None:
    import numpy as np

    from index.search.budget import QueryBudget
    from index.search.compile import positive_query
    from index.search.engine import _score_groups, _scored_matches
    from index.search.query import parse_query

    searcher = world.index_reader.searcher()
    assert searcher is not None
    parsed = parse_query(query)
    whoosh_query, _ = positive_query(parsed)
    expected_docs, expected_scores = _scored_matches(searcher, whoosh_query, QueryBudget())
    table = world.index_reader.tables.table(searcher)
    docs, scores = _score_groups(searcher, world.index_reader.tables, table, parsed, QueryBudget())
    order = np.argsort(expected_docs)
    assert docs.tolist() == expected_docs[order].tolist() and len(docs) > 0
    assert np.allclose(scores, expected_scores[order])


def test_fuzzy_matches_are_marked_in_snippets(world: Services) -> None:
    # "harbor~" finds "harbour" through the index word, which the stem of "harbor" never marks.
    results = run(world, "harbor~")
    assert results.total >= 1
    assert all("<mark>" in hit.snippet or "<mark>" in hit.title_html for hit in results.hits)
    assert any("<mark>harbour</mark>" in (hit.snippet + hit.title_html).lower() for hit in results.hits)
