"""BM25F over whole posting lists with numpy, for the common case of plain words.

Whoosh scores one posting at a time in Python (a few microseconds each); a news query for a
common word touches tens of thousands of postings and facets need every match anyway. For
groups of plain words this reads each term's posting blocks as arrays and scores them in one
pass, with the same formula, statistics and field boosts as Whoosh's BM25F, so results agree.
Phrases, prefixes, fuzzy terms and names go through Whoosh's own matchers.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from whoosh.codec.whoosh3 import LENGTHS_COLUMN, W3LeafMatcher
from whoosh.matching.wrappers import FilterMatcher
from whoosh.reading import TermNotFound
from whoosh.util.numeric import byte_to_length

# Whoosh's BM25F defaults (whoosh.scoring.BM25F): the ranking must not change with the code path.
K1 = 1.2
B = 0.75
_LENGTHS = np.array([byte_to_length(i) for i in range(256)], dtype=np.float64)

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def segment_postings(leaf: Any, fieldname: str, text: str) -> tuple[IntArray, FloatArray] | None:
    """Return a segment's (document numbers, weights) for a term, deleted documents included."""
    try:
        matcher = leaf.postings(fieldname, text)
    except TermNotFound:
        return None
    while isinstance(matcher, FilterMatcher):
        matcher = matcher.child
    ids: list[Any] = []
    weights: list[Any] = []
    if isinstance(matcher, W3LeafMatcher) and not matcher._byteids:
        # Whole blocks at a time: each block holds up to 128 postings as arrays.
        while matcher.is_active():
            block_ids, block_weights = _block(matcher)
            ids.append(block_ids)
            weights.append(block_weights)
            matcher._next_block()
        if not ids:
            return None
        return np.concatenate(ids), np.concatenate(weights)
    while matcher.is_active():  # another codec or an in-memory segment: one posting at a time
        ids.append(matcher.id())
        weights.append(matcher.weight())
        matcher.next()
    return np.asarray(ids, dtype=np.int64), np.asarray(weights, dtype=np.float64)


def _block(matcher: Any) -> tuple[IntArray, FloatArray]:
    """Return the current block's document numbers and weights as arrays.

    What W3LeafMatcher's _read_ids/_read_weights give, without their per-posting Python loops:
    ids are stored delta-encoded from 0 in each block, weights as an array, one float for all
    of them, or None for all 1.0.
    """
    if matcher._data is None:
        matcher._read_data()
    raw_ids, raw_weights = matcher._data[0], matcher._data[1]
    count = matcher._blocklength
    block_ids = np.cumsum(np.asarray(raw_ids, dtype=np.int64))
    if raw_weights is None:
        block_weights = np.ones(count, dtype=np.float64)
    elif isinstance(raw_weights, float):
        block_weights = np.full(count, raw_weights, dtype=np.float64)
    else:
        block_weights = np.asarray(raw_weights, dtype=np.float64)
    return block_ids, block_weights


def field_lengths(leaf: Any, fieldname: str) -> FloatArray:
    """Return the (approximate, as Whoosh stores them) length of a field in each document of a segment."""
    size = leaf.doc_count_all()
    try:
        column = leaf._perdoc._cached_reader(f"_{fieldname}_len", LENGTHS_COLUMN)
    except (AttributeError, KeyError):
        column = None
    if column is None:
        return np.zeros(size, dtype=np.float64)
    codes = np.fromiter((column[i] for i in range(size)), dtype=np.uint8, count=size)
    return _LENGTHS[codes]


def term_scores(
    searcher: Any, lengths: dict[str, FloatArray], fieldname: str, text: str
) -> tuple[IntArray, FloatArray]:
    """Return every document containing a term and its BM25F score for that term (global numbers)."""
    docs: list[IntArray] = []
    weights: list[FloatArray] = []
    for leaf, offset in searcher.reader().leaf_readers():
        found = segment_postings(leaf, fieldname, text)
        if found is not None:
            docs.append(found[0] + offset)
            weights.append(found[1])
    if not docs:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    doc_array = np.concatenate(docs)
    weight = np.concatenate(weights)
    # Whoosh's document frequency counts postings in every segment, deleted documents included: so does this.
    idf = math.log(searcher.doc_count_all() / (len(doc_array) + 1)) + 1
    average = searcher.avg_field_length(fieldname) or 1
    length = lengths[fieldname][doc_array]
    scores = idf * (weight * (K1 + 1)) / (weight + K1 * ((1 - B) + B * length / average))
    return doc_array, scores


def union(parts: Sequence[tuple[IntArray, FloatArray]]) -> tuple[IntArray, FloatArray]:
    """Return the documents in any part, each with the sum of its scores (an OR)."""
    parts = [p for p in parts if len(p[0])]
    if not parts:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    if len(parts) == 1:
        order = np.argsort(parts[0][0], kind="stable")
        return parts[0][0][order], parts[0][1][order]
    docs = np.concatenate([p[0] for p in parts])
    scores = np.concatenate([p[1] for p in parts])
    unique, inverse = np.unique(docs, return_inverse=True)
    summed: FloatArray = np.bincount(inverse, weights=scores, minlength=len(unique)).astype(np.float64)
    return unique.astype(np.int64), summed


def intersect(a: tuple[IntArray, FloatArray], b: tuple[IntArray, FloatArray]) -> tuple[IntArray, FloatArray]:
    """Return the documents in both (sorted, unique inputs), with their scores added (an AND)."""
    docs, left, right = np.intersect1d(a[0], b[0], assume_unique=True, return_indices=True)
    scores: FloatArray = np.add(a[1][left], b[1][right], dtype=np.float64)
    return docs.astype(np.int64), scores


class TermScoreCache:
    """Each term's (documents, BM25F scores) for the current searcher, least recently used dropped first.

    Decoding a common word's posting blocks is most of a query's time, and news searches repeat
    their words (the story of the day, names in the news). The scores depend on the searcher's
    statistics, so the cache belongs to one reader and empties when a new one comes; bounded in bytes.
    """

    def __init__(self, max_bytes: int = 64 * 2**20) -> None:
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._reader: Any = None
        self._entries: OrderedDict[tuple[str, str], tuple[IntArray, FloatArray]] = OrderedDict()
        self._bytes = 0

    def clear(self) -> None:
        """Forget every cached term."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def scores(
        self, searcher: Any, lengths: dict[str, FloatArray], fieldname: str, text: str
    ) -> tuple[IntArray, FloatArray]:
        """Return ``term_scores(searcher, lengths, fieldname, text)``, from the cache when it holds it."""
        reader = searcher.reader()
        key = (fieldname, text)
        with self._lock:
            if self._reader is not reader:
                self._reader, self._bytes = reader, 0
                self._entries.clear()
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found
        result = term_scores(searcher, lengths, fieldname, text)
        size = result[0].nbytes + result[1].nbytes
        with self._lock:
            if self._reader is reader and size <= self.max_bytes and key not in self._entries:
                self._entries[key] = result
                self._bytes += size
                while self._bytes > self.max_bytes:
                    _, (docs, scores) = self._entries.popitem(last=False)
                    self._bytes -= docs.nbytes + scores.nbytes
        return result
