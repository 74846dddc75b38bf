"""Document frequencies for related coverage, remembered per index segment across index versions.

A term's document frequency is what Whoosh's multi-segment reader gives, the sum over segments,
taken in the field where it is largest. A segment never changes once written (deletions do not
change its term statistics), so what one segment said stays true for as long as the segment is
part of the index: after a commit only the new segment is asked, where the finder used to ask every
segment again for every term it met (a fifth of a cold answer's cost, and all of it again after each
commit of a polling writer).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from whoosh.searching import Searcher

#: Terms remembered per segment; past it the segment is asked each time (bounded memory).
SEGMENT_TERMS = 400_000


class SegmentFrequencies:
    """Per-segment document frequencies of terms in some fields, shared by every index version that holds the segment."""

    def __init__(self, fields: Sequence[str], *, limit: int = SEGMENT_TERMS) -> None:
        self.fields = tuple(fields)
        self._limit = limit
        self._segments: dict[tuple[str, str], dict[str, tuple[int, ...]]] = {}
        self._lock = threading.Lock()

    def of(self, searcher: Searcher, folder: str) -> FrequencyView:
        """Return the document frequencies as ``searcher``'s index version counts them; segments it no longer holds are forgotten."""
        leaves: list[tuple[Any, dict[str, tuple[int, ...]]]] = []
        with self._lock:
            kept: dict[tuple[str, str], dict[str, tuple[int, ...]]] = {}
            for leaf, _ in searcher.reader().leaf_readers():
                segment = leaf.segment()
                key = (folder, segment.segment_id() if segment is not None else f"reader-{id(leaf)}")
                known = kept[key] = self._segments.get(key, {})
                leaves.append((leaf, known))
            self._segments = kept
        return FrequencyView(self.fields, leaves, self._limit)


class FrequencyView:
    """One index version's document frequencies: the largest, over the fields, of a term's count summed over segments."""

    def __init__(
        self, fields: tuple[str, ...], leaves: Sequence[tuple[Any, dict[str, tuple[int, ...]]]], limit: int
    ) -> None:
        self._fields = fields
        self._leaves = leaves
        self._limit = limit

    def __call__(self, term: str) -> int:
        """Return how many documents have ``term`` in the field where it is most frequent."""
        totals = [0] * len(self._fields)
        for leaf, known in self._leaves:
            counts = known.get(term)
            if counts is None:
                counts = tuple(leaf.doc_frequency(field, term) for field in self._fields)
                if len(known) < self._limit:
                    known[term] = counts  # a plain dict store: atomic under the GIL, a race only asks twice
            for position, count in enumerate(counts):
                totals[position] += count
        return max(totals)
