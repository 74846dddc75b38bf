"""Per-document columns of the live index as numpy arrays: dates, outlets, feeds, languages, tags, groups.

Ranking by recency, date filters, facets and collapse are array operations over these, so a
query's cost beyond Whoosh's own matching does not grow with Python loops over matches.
Arrays are built once per segment (segments never change, only their deletions) and joined
per searcher, so a commit of a few entries costs a few entries' worth of work.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from whoosh.util.times import datetime_to_long

from ..schema import TEXT_FIELDS
from .scoring import FloatArray, TermScoreCache, field_lengths

# Whoosh stores DATETIME columns as microseconds since datetime.min; this is the Unix epoch in that unit.
_EPOCH_US = datetime_to_long(datetime(1970, 1, 1))

IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class _Codes:
    """One categorical column: a code per document and the distinct values."""

    codes: NDArray[np.int32]
    values: list[str]


@dataclass(frozen=True)
class _Segment:
    published: IntArray
    ids: list[str]
    sources: _Codes
    groups: _Codes
    languages: _Codes
    feeds: _Codes
    tag_docs: IntArray
    tag_codes: NDArray[np.int32]
    tag_values: list[str]
    lengths: dict[str, FloatArray]


def _codes_from_values(values: Iterable[Any]) -> _Codes:
    mapping: dict[str, int] = {}
    codes = [mapping.setdefault(str(v or ""), len(mapping)) for v in values]
    return _Codes(np.asarray(codes, dtype=np.int32), list(mapping))


def _codes_from_postings(leaf: Any, fieldname: str, size: int) -> _Codes:
    """Return codes for a single-valued field without a column, from its postings (few distinct values)."""
    codes = np.zeros(size, dtype=np.int32)
    values = [""]
    for term in leaf.lexicon(fieldname):
        text = term.decode("utf-8") if isinstance(term, bytes) else str(term)
        docs = np.fromiter(leaf.postings(fieldname, term).all_ids(), dtype=np.int64)
        codes[docs] = len(values)
        values.append(text)
    return _Codes(codes, values)


def column_values(reader: Any, fieldname: str, *, translate: bool) -> Iterable[Any]:
    """Return a reader's values of a column field in document order (none for a reader without documents)."""
    if reader.doc_count_all() == 0:
        # An index without segments (a fresh install, or every document merged away) opens as Whoosh's
        # EmptyReader, whose column_reader raises NotImplementedError: it has no documents, so no values.
        return ()
    return reader.column_reader(fieldname, translate=translate)  # type: ignore[no-any-return]


def _read_segment(leaf: Any) -> _Segment:
    size = leaf.doc_count_all()
    published = np.fromiter(column_values(leaf, "published", translate=False), dtype=np.int64, count=size)
    published = (published - _EPOCH_US) // 1_000_000
    ids = [str(v) for v in column_values(leaf, "id", translate=True)]
    tag_docs: list[int] = []
    tag_codes: list[int] = []
    tag_values: list[str] = []
    for term in leaf.lexicon("tags"):
        docs = list(leaf.postings("tags", term).all_ids())
        tag_docs.extend(docs)
        tag_codes.extend([len(tag_values)] * len(docs))
        tag_values.append(term.decode("utf-8") if isinstance(term, bytes) else str(term))
    return _Segment(
        published=published,
        ids=ids,
        sources=_codes_from_values(column_values(leaf, "source_name", translate=True)),
        groups=_codes_from_values(column_values(leaf, "dupgroup", translate=True)),
        languages=_codes_from_postings(leaf, "language", size),
        feeds=_codes_from_postings(leaf, "feed_key", size),
        tag_docs=np.asarray(tag_docs, dtype=np.int64),
        tag_codes=np.asarray(tag_codes, dtype=np.int32),
        tag_values=tag_values,
        lengths={name: field_lengths(leaf, name) for name in TEXT_FIELDS},
    )


class _Joiner:
    """Merges per-segment categorical codes into one global numbering."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.values: list[str] = []

    def remap(self, local: list[str]) -> NDArray[np.int32]:
        out = np.empty(len(local), dtype=np.int32)
        for i, value in enumerate(local):
            code = self.index.get(value)
            if code is None:
                code = self.index[value] = len(self.values)
                self.values.append(value)
            out[i] = code
        return out


@dataclass(frozen=True)
class DocTable:
    """Columns for every document number of one searcher (deleted documents included, never matched)."""

    #: Publication time, seconds since the Unix epoch (UTC).
    published: IntArray
    #: Entry ids by document number.
    ids: list[str]
    #: Rank of each document's id among all ids: a tie-break that survives segment merges.
    id_rank: IntArray
    #: Outlet code by document number, and the outlet names.
    source_codes: NDArray[np.int32]
    source_values: list[str]
    #: Near-duplicate group code by document number.
    group_codes: NDArray[np.int32]
    #: Language code by document number, and the language values ("" for unknown).
    language_codes: NDArray[np.int32]
    language_values: list[str]
    #: Feed code by document number, and the feed keys (the front page's topic sections select by feed).
    feed_codes: NDArray[np.int32]
    feed_values: list[str]
    #: (document, tag) pairs: documents and tag codes side by side, and the tag names.
    tag_docs: IntArray
    tag_codes: NDArray[np.int32]
    tag_values: list[str]
    #: Length of each text field by document number (for BM25F).
    lengths: dict[str, FloatArray]

    @property
    def size(self) -> int:
        """Return the number of document numbers covered."""
        return len(self.published)


class DocTableCache:
    """Keeps per-segment arrays between searchers; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._segments: dict[str, _Segment] = {}
        self._table: tuple[Any, DocTable] | None = None
        self._alive: tuple[Any, IntArray, NDArray[np.bool_]] | None = None
        self._tag_examples: tuple[Any, dict[str, int]] | None = None
        #: Decoded and scored posting lists of recent query terms (per reader).
        self.term_scores = TermScoreCache()

    def alive(self, searcher: Any) -> tuple[IntArray, NDArray[np.bool_]]:
        """Return the live (not deleted) document numbers of ``searcher``'s reader and a mask of them (cached)."""
        reader = searcher.reader()
        with self._lock:
            if self._alive is not None and self._alive[0] is reader:
                return self._alive[1], self._alive[2]
        docs = np.fromiter(reader.all_doc_ids(), dtype=np.int64)
        mask = np.zeros(reader.doc_count_all(), dtype=bool)
        mask[docs] = True
        with self._lock:
            self._alive = (reader, docs, mask)
        return docs, mask

    def tag_examples(self, searcher: Any) -> dict[str, int]:
        """Return tag value -> a live document carrying it (the first in table order), cached per reader."""
        reader = searcher.reader()
        with self._lock:
            if self._tag_examples is not None and self._tag_examples[0] is reader:
                return self._tag_examples[1]
        table = self.table(searcher)
        examples: dict[str, int] = {}
        if len(table.tag_docs):
            pairs = np.flatnonzero(self.alive(searcher)[1][table.tag_docs])
            found, first = np.unique(table.tag_codes[pairs], return_index=True)
            docs = table.tag_docs[pairs[first]]
            examples = {table.tag_values[int(c)]: int(d) for c, d in zip(found.tolist(), docs.tolist(), strict=True)}
        with self._lock:
            self._tag_examples = (reader, examples)
        return examples

    def table(self, searcher: Any) -> DocTable:
        """Return the DocTable for ``searcher``'s reader, reusing arrays of unchanged segments."""
        reader = searcher.reader()
        with self._lock:
            if self._table is not None and self._table[0] is reader:
                return self._table[1]
            leaves = reader.leaf_readers()
            fresh: dict[str, _Segment] = {}
            parts: list[tuple[_Segment, int]] = []
            for leaf, offset in leaves:
                key = leaf.segment().segment_id() if hasattr(leaf, "segment") and leaf.segment() else str(id(leaf))
                segment = self._segments.get(key) or _read_segment(leaf)
                fresh[key] = segment
                parts.append((segment, offset))
            self._segments = fresh
            table = _join(parts, reader.doc_count_all())
            self._table = (reader, table)
            return table


def _join(parts: list[tuple[_Segment, int]], size: int) -> DocTable:
    published = np.zeros(size, dtype=np.int64)
    ids: list[str] = [""] * size
    source_codes = np.zeros(size, dtype=np.int32)
    group_codes = np.zeros(size, dtype=np.int32)
    language_codes = np.zeros(size, dtype=np.int32)
    feed_codes = np.zeros(size, dtype=np.int32)
    sources, groups, languages, feeds, tags = _Joiner(), _Joiner(), _Joiner(), _Joiner(), _Joiner()
    tag_docs: list[IntArray] = []
    tag_codes: list[NDArray[np.int32]] = []
    lengths = {name: np.zeros(size, dtype=np.float64) for name in TEXT_FIELDS}
    for segment, offset in parts:
        end = offset + len(segment.published)
        published[offset:end] = segment.published
        ids[offset:end] = segment.ids
        source_codes[offset:end] = sources.remap(segment.sources.values)[segment.sources.codes]
        group_codes[offset:end] = groups.remap(segment.groups.values)[segment.groups.codes]
        language_codes[offset:end] = languages.remap(segment.languages.values)[segment.languages.codes]
        feed_codes[offset:end] = feeds.remap(segment.feeds.values)[segment.feeds.codes]
        for name in TEXT_FIELDS:
            lengths[name][offset:end] = segment.lengths[name]
        if len(segment.tag_docs):
            tag_docs.append(segment.tag_docs + offset)
            tag_codes.append(tags.remap(segment.tag_values)[segment.tag_codes])
    order = np.argsort(np.asarray(ids, dtype=object), kind="stable")
    id_rank = np.empty(size, dtype=np.int64)
    id_rank[order] = np.arange(size, dtype=np.int64)
    return DocTable(
        published=published,
        ids=ids,
        id_rank=id_rank,
        source_codes=source_codes,
        source_values=sources.values,
        group_codes=group_codes,
        language_codes=language_codes,
        language_values=languages.values,
        feed_codes=feed_codes,
        feed_values=feeds.values,
        tag_docs=np.concatenate(tag_docs) if tag_docs else np.zeros(0, dtype=np.int64),
        tag_codes=np.concatenate(tag_codes) if tag_codes else np.zeros(0, dtype=np.int32),
        tag_values=tags.values,
        lengths=lengths,
    )
