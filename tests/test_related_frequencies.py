"""Per-segment document frequencies agree with Whoosh's reader across commits, merges and deletions (a real index on disk)."""

from __future__ import annotations

from pathlib import Path

from whoosh import index as whoosh_index

from index.related.frequencies import SegmentFrequencies
from index.schema import build_schema

from .support.story_articles import EXPLOSION, OTHERS

FIELDS = ("title", "summary", "text")


def add(ix: whoosh_index.Index, start: int, count: int, *, merge: bool = False, optimize: bool = False) -> None:
    articles = EXPLOSION + OTHERS
    with ix.writer() as writer:
        for number in range(start, start + count):
            article = articles[number % len(articles)]
            body = " ".join(article.paragraphs)
            writer.add_document(id=f"e{number}", title=article.title, summary=body[: 40 + number], text=body)
        writer.merge = merge
        writer.optimize = optimize


def expected(searcher: object, term: str) -> int:
    return max(searcher.doc_frequency(field, term) for field in FIELDS)  # type: ignore[attr-defined]


def terms_of(searcher: object) -> set[str]:
    reader = searcher.reader()  # type: ignore[attr-defined]
    return {text.decode() for field in FIELDS for text in reader.lexicon(field)} | {"absent", "nothing"}


def test_segment_frequencies_follow_commits_merges_and_deletions(tmp_path: Path) -> None:
    ix = whoosh_index.create_in(str(tmp_path), build_schema())
    frequencies = SegmentFrequencies(FIELDS)
    add(ix, 0, 4)
    add(ix, 4, 3)
    with ix.searcher() as searcher:
        assert len(searcher.reader().leaf_readers()) == 2  # two segments: the sums are exercised
        view = frequencies.of(searcher, str(tmp_path))
        words = terms_of(searcher)
        assert all(view(term) == expected(searcher, term) for term in words)
        assert any(expected(searcher, term) > 1 for term in words)
    first_segments = set(frequencies._segments)

    # A commit adds a segment: the two known ones keep what they learnt, and the sums stay right.
    add(ix, 7, 2)
    with ix.writer() as writer:
        writer.delete_by_term("id", "e1")  # deletions leave a segment's term statistics as they were
    with ix.searcher() as searcher:
        assert len(searcher.reader().leaf_readers()) == 3
        view = frequencies.of(searcher, str(tmp_path))
        assert first_segments < set(frequencies._segments)
        assert all(frequencies._segments[key] for key in first_segments)
        assert all(view(term) == expected(searcher, term) for term in terms_of(searcher))

    # A merge into one segment: the merged ones are forgotten.
    add(ix, 9, 1, optimize=True)
    with ix.searcher() as searcher:
        view = frequencies.of(searcher, str(tmp_path))
        assert not first_segments & set(frequencies._segments) and len(frequencies._segments) == 1
        assert all(view(term) == expected(searcher, term) for term in terms_of(searcher))
