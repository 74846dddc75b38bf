"""Candidate retrieval for related coverage straight from Whoosh postings, restricted to a time window.

Whoosh's own search loop costs ~50 µs per matching document, and a DateRange filter expands into
a union of numeric terms that costs seconds on a large index. Reading each distinctive term's
postings once (cached per index version) and summing weights in a numpy array makes a candidate
query cost a few milliseconds instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy
from whoosh.filedb.filestore import OverlayStorage
from whoosh.reading import SegmentReader
from whoosh.searching import Searcher
from whoosh.util.times import datetime_to_long

from ..search.doctable import column_values
from ..search.scoring import segment_postings

#: (field, factor): a term in the title says more about the story than one in the body.
FIELD_FACTORS = (("title", 2.0), ("summary", 1.0), ("text", 1.0))

IntArray = numpy.ndarray[Any, numpy.dtype[numpy.int64]]

#: Postings a process keeps in memory for related coverage, over all segments: 16 million document
#: numbers (4 bytes each) and about 110 bytes per term; the 228,000-entry bench corpus holds 4 million
#: postings in 112,000 terms (about 30 MB). A segment that does not fit is read term by term.
POSTINGS_IN_MEMORY = 16_000_000

#: Terms read (about 4 ms of work) between two pauses of a background read of whole postings.
YIELD_EVERY = 64
#: Tries at reading a segment's postings whole (a reader closed under a try: a newer index version);
#: a segment read, or one that does not fit, is marked as tried this often and never read again.
_TRIES = 3

log = logging.getLogger(__name__)


class SegmentPostings:
    """One segment's postings in some fields, all read at once: per field, every term's document numbers
    end to end (deleted documents included, as Whoosh lists them), and where each term's run starts."""

    __slots__ = ("fields", "size")

    def __init__(self) -> None:
        #: field -> (term -> run number, run bounds, document numbers).
        self.fields: dict[str, tuple[dict[str, int], IntArray, numpy.ndarray[Any, numpy.dtype[numpy.int32]]]] = {}
        #: Postings held.
        self.size = 0

    def get(self, field: str, term: str) -> IntArray:
        held = self.fields.get(field)
        run = None if held is None else held[0].get(term)
        if held is None or run is None:
            return numpy.zeros(0, dtype=numpy.int64)
        bounds, ids = held[1], held[2]
        return ids[bounds[run] : bounds[run + 1]].astype(numpy.int64)


def segment_postings_count(leaf: Any, fields: Sequence[str]) -> int:
    """Return how many postings a segment holds in ``fields`` (its lexicon's document frequencies summed)."""
    return sum(info.doc_frequency() for field in fields for _, info in leaf.iter_field(field))


def read_segment_postings(leaf: Any, fields: Sequence[str]) -> SegmentPostings:
    """Return a segment's postings in ``fields``, all of them."""
    table = SegmentPostings()
    for field in fields:
        decode = leaf.schema[field].from_bytes
        runs: dict[str, int] = {}
        parts: list[Any] = []
        bounds = [0]
        for raw, _ in leaf.iter_field(field):
            if len(parts) % YIELD_EVERY == YIELD_EVERY - 1:
                # A server's request threads get the interpreter at once, not after a switch interval
                # (5 ms) each time they come back from the database: this read is in the background.
                time.sleep(0.0005)
            term = decode(raw)
            found = segment_postings(leaf, field, term)
            ids = numpy.zeros(0, dtype=numpy.int32) if found is None else found[0].astype(numpy.int32)
            runs[term] = len(parts)
            parts.append(ids)
            bounds.append(bounds[-1] + len(ids))
        joined = numpy.concatenate(parts) if parts else numpy.zeros(0, dtype=numpy.int32)
        table.fields[field] = (runs, numpy.asarray(bounds, dtype=numpy.int64), joined)
        table.size += len(joined)
    return table


def private_reader(leaf: Any) -> Any:
    """Return a reader of a leaf's segment with files of its own (the leaf itself for one held in memory).

    Whoosh's readers keep one file position per segment file and seek before each read: a thread
    reading a segment's postings whole while request threads ask the same reader for terms read each
    other's bytes ("invalid load key" from the unpickler, or wrong postings). The background read
    opens the segment again instead, through the same storage, schema and codec.
    """
    segment = leaf.segment()
    if segment is None:
        return leaf
    storage = leaf.storage()
    if isinstance(storage, OverlayStorage):
        # A compound segment's reader reads through an overlay of its compound file on the index's
        # storage: the new reader opens the compound file again from the index's storage, so that
        # closing it closes its own files only (the index's FileStorage has nothing to close).
        storage = storage.b
    return SegmentReader(storage, leaf.schema, segment, codec=leaf.codec())


class SegmentCache:
    """What an IndexView reads per index segment, kept across index versions (shared by a process's threads).

    A segment never changes once written, except that documents in it get deleted: publication
    times are kept per segment, and postings and liveness per segment and live-document count
    (deletions only ever lower it). After a commit only the new segment is read, where every index
    version used to read every segment again (0.7 s on 228,000 documents, paid by the first
    related-coverage answer after each commit of a polling writer).
    """

    def __init__(self, *, postings_cache: int = 20_000, in_memory: int = POSTINGS_IN_MEMORY) -> None:
        self._published: dict[str, IntArray] = {}
        self._live: dict[tuple[str, int], numpy.ndarray[Any, numpy.dtype[numpy.bool_]] | None] = {}
        self._postings: OrderedDict[tuple[str, int, str, str], IntArray] = OrderedDict()
        self._limit = postings_cache
        self._lock = threading.Lock()
        # Whole segments' postings, read in the background (`load`) as far as ``in_memory`` allows.
        self._in_memory = in_memory
        self._whole: dict[str, SegmentPostings] = {}
        self._loading: dict[str, threading.Thread] = {}
        self._tried: dict[str, int] = {}
        self._reserved: dict[str, int] = {}

    def load(self, key: str, leaf: Any) -> None:
        """Start reading a segment's whole postings in the background, once, if they fit what memory allows.

        Until they are read (seconds for a large segment) and for a segment that does not fit, postings
        are read term by term as they are asked for. A cold related answer on the 228,000-entry corpus
        spent about a third of its time unpickling Whoosh's posting blocks of terms nobody had asked about
        before, so a web node that has read them answers any article as fast as a recent one.
        """
        with self._lock:
            if key in self._whole or key in self._loading or self._tried.get(key, 0) >= _TRIES or self._in_memory <= 0:
                return
            self._tried[key] = self._tried.get(key, 0) + 1
            thread = threading.Thread(target=self._read_whole, args=(key, leaf), name="newsdesk-postings", daemon=True)
            self._loading[key] = thread
        thread.start()

    def _read_whole(self, key: str, shared: Any) -> None:
        fields = [field for field, _ in FIELD_FACTORS]
        table = None
        leaf = shared
        try:
            leaf = private_reader(shared)
            size = segment_postings_count(leaf, fields)
            with self._lock:
                # Segments read at the same time count against the room each other takes.
                held = sum(whole.size for whole in self._whole.values()) + sum(self._reserved.values())
                fits = size <= self._in_memory - held
                if fits:
                    self._reserved[key] = size
                else:
                    self._tried[key] = _TRIES  # does not fit: read term by term for as long as it stands
            if fits:
                table = read_segment_postings(leaf, fields)
        except Exception as exc:  # a reader closed under it (a newer index version): tried again by the next
            log.debug("related coverage: postings of segment %s not read whole: %s", key, exc)
        finally:
            if leaf is not shared:
                leaf.close()
        with self._lock:
            self._loading.pop(key, None)
            self._reserved.pop(key, None)
            if table is None:
                return
            if key in self._tried:  # not merged away meanwhile
                self._whole[key] = table
                self._tried[key] = _TRIES  # read: never again
            else:
                self._tried.pop(key, None)

    def wait_loaded(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the segments being read whole; return True when none is left."""
        with self._lock:
            threads = list(self._loading.values())
        for thread in threads:
            thread.join(timeout)
        with self._lock:
            return not self._loading

    def in_memory(self) -> dict[str, int]:
        """Return how many segments are held whole and being read, and the postings held."""
        with self._lock:
            return {
                "segments": len(self._whole),
                "loading": len(self._loading),
                "postings": sum(table.size for table in self._whole.values()),
            }

    def published(self, key: str, leaf: Any) -> IntArray:
        """Return a segment's publication times (Whoosh's longs) by document number."""
        with self._lock:
            found = self._published.get(key)
        if found is None:
            size = leaf.doc_count_all()
            found = numpy.fromiter(column_values(leaf, "published", translate=False), dtype=numpy.int64, count=size)
            with self._lock:
                self._published[key] = found
        return found

    def live(self, key: str, leaf: Any) -> numpy.ndarray[Any, numpy.dtype[numpy.bool_]] | None:
        """Return a segment's mask of live documents, None when none is deleted."""
        if not leaf.has_deletions():
            return None
        state = (key, leaf.doc_count())
        with self._lock:
            if state in self._live:
                return self._live[state]
        mask = numpy.zeros(leaf.doc_count_all(), dtype=bool)
        mask[numpy.fromiter(leaf.all_doc_ids(), dtype=numpy.int64)] = True
        with self._lock:
            self._live = {k: v for k, v in self._live.items() if k[0] != key}  # older deletion states
            self._live[state] = mask
        return mask

    def postings(self, key: str, leaf: Any, field: str, term: str) -> IntArray:
        """Return the segment's live document numbers containing ``term`` in ``field``."""
        state = (key, leaf.doc_count(), field, term)
        with self._lock:
            cached = self._postings.get(state)
            if cached is not None:
                self._postings.move_to_end(state)
                return cached
        with self._lock:
            whole = self._whole.get(key)
        if whole is not None:
            ids = whole.get(field, term)
        else:
            # A block of up to 128 postings at a time as arrays (search's reader), not one Python call per
            # posting. Its lists hold deleted documents too, which the segment's live mask takes out.
            found = segment_postings(leaf, field, term) if (field, term) in leaf else None
            ids = numpy.zeros(0, dtype=numpy.int64) if found is None else found[0]
        mask = self.live(key, leaf)
        if mask is not None and ids.size:
            ids = ids[mask[ids]]
        with self._lock:
            self._postings[state] = ids
            while len(self._postings) > self._limit:
                self._postings.popitem(last=False)
        return ids

    def retain(self, keys: set[str]) -> None:
        """Forget the segments not in ``keys`` (merged away); their postings age out of the LRU."""
        with self._lock:
            self._published = {k: v for k, v in self._published.items() if k in keys}
            self._live = {k: v for k, v in self._live.items() if k[0] in keys}
            self._whole = {k: v for k, v in self._whole.items() if k in keys}
            self._tried = {k: v for k, v in self._tried.items() if k in keys}


class IndexView:
    """One index version's arrays: publication time and liveness per document, and cached postings."""

    def __init__(
        self,
        searcher: Searcher,
        *,
        segments: SegmentCache | None = None,
        prefix: str = "",
        postings_cache: int = 20_000,
    ) -> None:
        reader = searcher.reader()
        self.searcher = searcher
        self.count = reader.doc_count_all()
        self._segments = segments or SegmentCache(postings_cache=postings_cache)
        self._leaves: list[tuple[str, Any, int]] = []
        for leaf, offset in reader.leaf_readers() if self.count else []:
            segment = leaf.segment()
            name = segment.segment_id() if segment is not None else f"reader-{id(leaf)}"
            self._leaves.append((f"{prefix}/{name}", leaf, offset))
        self._segments.retain({key for key, _, _ in self._leaves})
        self.published: IntArray = numpy.zeros(0, dtype=numpy.int64)
        self.live = numpy.ones(self.count, dtype=bool)
        if self._leaves:
            self.published = numpy.concatenate([self._segments.published(key, leaf) for key, leaf, _ in self._leaves])
        for key, leaf, _ in self._leaves:
            self._segments.load(key, leaf)
        for key, leaf, offset in self._leaves:
            # Postings still list deleted documents until their segment is merged away.
            mask = self._segments.live(key, leaf)
            if mask is not None:
                self.live[offset : offset + len(mask)] = mask
        self._postings: OrderedDict[tuple[str, str], IntArray] = OrderedDict()
        self._limit = postings_cache
        self._lock = threading.Lock()

    def postings(self, field: str, term: str) -> IntArray:
        """Return the document numbers containing ``term`` in ``field``."""
        key = (field, term)
        with self._lock:
            cached = self._postings.get(key)
            if cached is not None:
                self._postings.move_to_end(key)
                return cached
        parts = [self._segments.postings(name, leaf, field, term) + offset for name, leaf, offset in self._leaves]
        ids = numpy.concatenate(parts) if parts else numpy.zeros(0, dtype=numpy.int64)
        with self._lock:
            self._postings[key] = ids
            while len(self._postings) > self._limit:
                self._postings.popitem(last=False)
        return ids

    def candidates(self, terms: Sequence[tuple[str, float]], start: datetime, end: datetime, limit: int) -> list[int]:
        """Return up to ``limit`` document numbers published in [start, end], best weighted term overlap first."""
        scores = numpy.zeros(self.count, dtype=numpy.float32)
        for term, weight in terms:
            for field, factor in FIELD_FACTORS:
                ids = self.postings(field, term)
                if ids.size:
                    scores[ids] += weight * factor
        # Whoosh DATETIME columns hold naive UTC as longs.
        low = datetime_to_long(start.replace(tzinfo=None))
        high = datetime_to_long(end.replace(tzinfo=None))
        mask = (scores > 0) & self.live & (self.published >= low) & (self.published <= high)
        found = numpy.flatnonzero(mask)
        if found.size > limit:
            best = numpy.argpartition(-scores[found], limit - 1)[:limit]
            found = found[best]
        order = numpy.argsort(-scores[found], kind="stable")
        return [int(docnum) for docnum in found[order]]
