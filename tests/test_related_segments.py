"""Related coverage's per-segment caches (document frequencies, publication times, liveness, postings) agree with
Whoosh's reader across commits, merges and deletions (a real index on disk)."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import numpy
import pytest
from whoosh import index as whoosh_index

from index.related.frequencies import SegmentFrequencies
from index.related.postings import IndexView, SegmentCache
from index.schema import build_schema

from .support.story_articles import EXPLOSION, OTHERS

FIELDS = ("title", "summary", "text")


def add(ix: whoosh_index.Index, start: int, count: int, *, merge: bool = False, optimize: bool = False) -> None:
    articles = EXPLOSION + OTHERS
    with ix.writer() as writer:
        for number in range(start, start + count):
            article = articles[number % len(articles)]
            body = " ".join(article.paragraphs)
            writer.add_document(
                id=f"e{number}",
                title=article.title,
                summary=body[: 40 + number],
                text=body,
                published=datetime(2026, 3, 1 + number % 20, number % 24),
            )
        writer.merge = merge
        writer.optimize = optimize


def expected(searcher: object, term: str) -> int:
    return max(searcher.doc_frequency(field, term) for field in FIELDS)  # type: ignore[attr-defined]


def terms_of(searcher: object) -> set[str]:
    reader = searcher.reader()  # type: ignore[attr-defined]
    return {text.decode() for field in FIELDS for text in reader.lexicon(field)} | {"absent", "nothing"}


@pytest.mark.parametrize("limit", [400_000, 5])
def test_segment_frequencies_follow_commits_merges_and_deletions(tmp_path: Path, limit: int) -> None:
    # The default limit reads each segment's whole lexicon; a limit of 5 terms makes every segment too
    # large for that, so each is asked term by term: both must agree with Whoosh's reader.
    ix = whoosh_index.create_in(str(tmp_path), build_schema())
    frequencies = SegmentFrequencies(FIELDS, limit=limit)
    add(ix, 0, 4)
    add(ix, 4, 3)
    with ix.searcher() as searcher:
        assert len(searcher.reader().leaf_readers()) == 2  # two segments: the sums are exercised
        view = frequencies.of(searcher, str(tmp_path))
        words = terms_of(searcher)
        assert all(view(term) == expected(searcher, term) for term in words)
        assert any(expected(searcher, term) > 1 for term in words)
    first = dict(frequencies._segments)
    assert all(table.complete == (limit > 5) for table in first.values())
    if limit == 5:
        assert all(0 < len(table.asked) <= 5 for table in first.values())  # remembered up to the limit

    # A commit adds a segment: the two known ones are kept as they were read, and the sums stay right.
    add(ix, 7, 2)
    with ix.writer() as writer:
        writer.delete_by_term("id", "e1")  # deletions leave a segment's term statistics as they were
    with ix.searcher() as searcher:
        assert len(searcher.reader().leaf_readers()) == 3
        view = frequencies.of(searcher, str(tmp_path))
        assert set(first) < set(frequencies._segments)
        assert all(frequencies._segments[key] is table for key, table in first.items())
        assert all(view(term) == expected(searcher, term) for term in terms_of(searcher))

    # A merge into one segment: the merged ones are forgotten.
    add(ix, 9, 1, optimize=True)
    with ix.searcher() as searcher:
        view = frequencies.of(searcher, str(tmp_path))
        assert not set(first) & set(frequencies._segments) and len(frequencies._segments) == 1
        assert all(view(term) == expected(searcher, term) for term in terms_of(searcher))


def reference(searcher: object, terms: list[str]) -> tuple[list[int], list[int], dict[str, list[int]]]:
    """Return publication times, live documents and postings as Whoosh's multi-segment reader gives them."""
    reader = searcher.reader()  # type: ignore[attr-defined]
    published = list(reader.column_reader("published", translate=False))
    postings = {
        f"{field}:{term}": list(reader.postings(field, term).all_ids()) if (field, term) in reader else []
        for field in FIELDS
        for term in terms
    }
    return published, list(reader.all_doc_ids()), postings


def check_view(view: IndexView, searcher: object, terms: list[str]) -> None:
    published, live, postings = reference(searcher, terms)
    assert view.published.tolist() == published
    assert numpy.flatnonzero(view.live).tolist() == live
    for name, ids in postings.items():
        field, term = name.split(":", 1)
        assert view.postings(field, term).tolist() == ids, name
    weights = [(term, 1.0 + n) for n, term in enumerate(terms[:16])]
    fresh = IndexView(searcher)  # type: ignore[arg-type]
    window = (datetime(2026, 3, 2), datetime(2026, 3, 15))
    assert view.candidates(weights, *window, 5) == fresh.candidates(weights, *window, 5)


def test_segment_arrays_follow_commits_deletions_and_merges(tmp_path: Path) -> None:
    ix = whoosh_index.create_in(str(tmp_path), build_schema())
    segments = SegmentCache()
    add(ix, 0, 5)
    add(ix, 5, 4)
    with ix.searcher() as searcher:
        terms = sorted(terms_of(searcher))
        check_view(IndexView(searcher, segments=segments, prefix="a"), searcher, terms)
    known = set(segments._published)
    assert len(known) == 2

    # A new segment, and deletions in an old one: the old segment's times are reused, its liveness and postings not.
    add(ix, 9, 3)
    with ix.writer() as writer:
        writer.delete_by_term("id", "e2")
        writer.delete_by_term("id", "e6")
    with ix.searcher() as searcher:
        assert searcher.reader().has_deletions()
        view = IndexView(searcher, segments=segments, prefix="a")
        assert known < set(segments._published) and len(segments._published) == 3
        check_view(view, searcher, terms)

    add(ix, 12, 1, optimize=True)
    with ix.searcher() as searcher:
        check_view(IndexView(searcher, segments=segments, prefix="a"), searcher, terms)
        assert len(segments._published) == 1 and not known & set(segments._published)


def test_whole_segments_postings_in_memory_agree_with_whoosh(tmp_path: Path) -> None:
    # Read whole in the background (`SegmentCache.load`), as far as memory allows: the same postings as
    # Whoosh's reader gives, deletions taken out, and a segment that does not fit is read term by term.
    ix = whoosh_index.create_in(str(tmp_path), build_schema())
    add(ix, 0, 5)
    add(ix, 5, 4)
    with ix.writer() as writer:
        writer.delete_by_term("id", "e2")
    with ix.searcher() as searcher:
        terms = sorted(terms_of(searcher))
        held = sum(searcher.doc_frequency(field, term) for field in FIELDS for term in terms)
        roomy = SegmentCache()
        view = IndexView(searcher, segments=roomy, prefix="a")
        assert roomy.wait_loaded(30)
        found = roomy.in_memory()
        # Every posting, deleted documents' too (a term left only in a deleted document lists none).
        assert found["segments"] == 2 and found["loading"] == 0 and held - 50 < found["postings"] <= held
        check_view(view, searcher, terms)
        # Room for the first segment only (each holds about half): the second is asked term by term.
        first = next(iter(searcher.reader().leaf_readers()))[0]
        first_size = sum(first.doc_frequency(field, term) for field in FIELDS for term in terms)
        tight = SegmentCache(in_memory=first_size)
        view = IndexView(searcher, segments=tight, prefix="b")
        assert tight.wait_loaded(30)
        assert tight.in_memory()["segments"] == 1 and tight.in_memory()["postings"] <= first_size
        check_view(view, searcher, terms)
        # Nothing is read whole with no room at all.
        none = SegmentCache(in_memory=0)
        check_view(IndexView(searcher, segments=none, prefix="c"), searcher, terms)
        assert none.wait_loaded(1) and none.in_memory() == {"segments": 0, "loading": 0, "postings": 0}
    # A merge: the merged segments are forgotten, the new one is read whole.
    add(ix, 9, 1, optimize=True)
    with ix.searcher() as searcher:
        view = IndexView(searcher, segments=roomy, prefix="a")
        assert roomy.wait_loaded(30)
        assert roomy.in_memory()["segments"] == 1
        check_view(view, searcher, sorted(terms_of(searcher)))


def test_postings_asked_while_a_segment_is_read_whole_are_read_right(tmp_path: Path) -> None:
    # Whoosh's readers keep one file position per segment file: a background read of a segment's whole
    # postings and a request thread asking for a term of the same segment must not read each other's
    # bytes (it raised "invalid load key" in a browser test, and could as well return wrong postings).
    ix = whoosh_index.create_in(str(tmp_path), build_schema())
    add(ix, 0, 60)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads take turns as often as the interpreter allows: the race shows
    try:
        with ix.searcher() as searcher:
            terms = sorted(terms_of(searcher))
            want = {(field, term): searcher.doc_frequency(field, term) for field in FIELDS for term in terms}
            asked = 0
            for round_ in range(10):
                cache = SegmentCache(postings_cache=0)  # nothing kept: every ask reads the segment
                view = IndexView(searcher, segments=cache, prefix=f"r{round_}", postings_cache=0)
                while cache.in_memory()["loading"]:  # asked while the background read goes on
                    for field, term in want:
                        assert view.postings(field, term).size == want[field, term], (field, term)
                        asked += 1
                assert cache.wait_loaded(30) and cache.in_memory()["segments"] == 1
            assert asked > 0
            # The background reads closed their own files only: the searcher's reader still reads.
            for field, term in want:
                if want[field, term]:
                    assert len(list(searcher.postings(field, term).all_ids())) == want[field, term]
    finally:
        sys.setswitchinterval(interval)
