"""Related coverage: other outlets' articles on the same story, found in the index and ranked.

Candidates come from Whoosh (the article's most distinctive terms, within a time window); the
pure core in `index.related.rank` re-scores them by cosine similarity, applies exclusions,
diversity and the calibrated threshold. Answers are cached per index version, so a commit by
the indexer (new coverage) invalidates them in every process.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol

from whoosh.searching import Searcher

from aggregator.hosts import site_host
from aggregator.models import Entry

from ..search.engine import EntryLookup, IndexReader
from .frequencies import FrequencyView, SegmentFrequencies
from .postings import POSTINGS_IN_MEMORY, IndexView, SegmentCache
from .rank import (
    ArticleQuery,
    Candidate,
    RelatedSettings,
    cosine,
    query_terms,
    rank,
    term_counts,
    title_key,
    weigh,
    weighted_counts,
)
from .stored import read_terms
from .tokens import TermMemo

log = logging.getLogger(__name__)

__all__ = ["ArticleQuery", "RelatedFinder", "RelatedItem", "RelatedSettings", "query_for_entry"]

#: Fields whose document frequency counts.
_FIELDS = ("title", "summary", "text")


@dataclass(frozen=True)
class RelatedItem:
    """One piece of related coverage."""

    #: The related entry.
    entry: Entry
    #: Ranking score: similarity discounted by distance in time, 0..1.
    score: float
    #: Cosine similarity of the two articles' distinctive terms, 0..1.
    similarity: float


def query_for_entry(entry: Entry) -> ArticleQuery:
    """Return the related-coverage query for an entry we store."""
    return ArticleQuery(
        title=entry.title,
        text=entry.summary or entry.text,
        published_at=entry.published_at,
        entry_id=entry.id,
        feed_key=entry.feed_key,
        site=site_host(entry.source.site_url or entry.url) or None,
        fingerprint=entry.fingerprint,
    )


class LeadLookup(EntryLookup, Protocol):
    """Where entries and their leads come from (the store)."""

    def entry_leads(self, entry_ids: Sequence[str], chars: int) -> dict[str, tuple[str, str]]:
        """Return entry id -> (title, first ``chars`` characters of its summary, else of its text)."""
        ...


class _LRU:
    """A small thread-safe least-recently-used map."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


def index_version(searcher: Searcher) -> tuple[str, int]:
    """Return what identifies the index state a searcher sees: generation directory and commit generation."""
    reader = searcher.reader()
    folder = getattr(getattr(getattr(searcher, "_ix", None), "storage", None), "folder", "")
    generation = reader.generation()
    return (str(folder), -1 if generation is None else int(generation))


class RelatedFinder:
    """Finds related coverage; keeps per-index-version caches, so it is shared by a process's threads."""

    def __init__(
        self,
        reader: IndexReader,
        lookup: LeadLookup,
        settings: RelatedSettings | None = None,
        *,
        cache_size: int = 4096,
        postings_in_memory: int = POSTINGS_IN_MEMORY,
    ) -> None:
        self.reader = reader
        self.lookup = lookup
        self.settings = settings or RelatedSettings()
        self._answers = _LRU(cache_size)
        self._vectors = _LRU(50_000)
        self._frequencies: dict[str, int] = {}
        self._version: tuple[str, int] | None = None
        self._index_view: IndexView | None = None
        self._terms: TermMemo | None = None
        # Segments' document frequencies outlive index versions: a commit adds a segment, the others stay.
        self._segment_frequencies = SegmentFrequencies(_FIELDS)
        self._segment_view: tuple[Searcher, FrequencyView] | None = None
        self._segment_arrays = SegmentCache(in_memory=postings_in_memory)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ public

    def warm(self) -> threading.Thread:
        """Start reading, in the background, what answers read from the index whatever the article: each
        segment's lexicon (document frequencies) and, as far as memory allows, its postings
        (`SegmentCache.load`). A server calls it once it listens; answers meanwhile read term by term."""

        def read() -> None:
            try:
                with self.reader.lease() as searcher:
                    if searcher is None:
                        return
                    self._sync_version(searcher)
                    self._view(searcher)
                    self._frequency_view(searcher)
            except Exception as exc:  # an unreadable index: the answers say so, warming has nothing to add
                log.debug("related coverage: not warmed: %s", exc)

        thread = threading.Thread(target=read, name="newsdesk-related-warm", daemon=True)
        thread.start()
        return thread

    def postings_in_memory(self) -> dict[str, int]:
        """Return the index segments whose postings are held in memory, those being read, and the postings held."""
        return self._segment_arrays.in_memory()

    def wait_loaded(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the segments being read whole; return True when none is left."""
        return self._segment_arrays.wait_loaded(timeout)

    def for_entry(self, entry: Entry, *, limit: int = 5, now: datetime | None = None) -> list[RelatedItem]:
        """Return related coverage of an entry we store, best first (empty when nothing is close enough)."""
        return self.find(query_for_entry(entry), limit=limit, now=now)

    def find(self, article: ArticleQuery, *, limit: int = 5, now: datetime | None = None) -> list[RelatedItem]:
        """Return related coverage of an article, best first (empty when nothing is close enough)."""
        if not article.title.strip():
            return []
        # A lease keeps the searcher open for the whole computation, even if the indexer commits meanwhile.
        with self.reader.lease() as searcher:
            if searcher is None:
                return []
            return self._find(searcher, article, limit=limit, now=now or datetime.now(UTC))

    def _find(self, searcher: Searcher, article: ArticleQuery, *, limit: int, now: datetime) -> list[RelatedItem]:
        version = self._sync_version(searcher)
        key = (version, _article_key(article, now), limit)
        cached = self._answers.get(key)
        if cached is not None:
            ids, scores = cached
            entries = self.lookup.get_entries(ids)
            return [
                RelatedItem(entry=entries[i], score=s, similarity=sim)
                for i, (s, sim) in zip(ids, scores, strict=True)
                if i in entries
            ]
        items = self._compute(searcher, article, limit=limit, now=now)
        self._answers.put(key, ([i.entry.id for i in items], [(i.score, i.similarity) for i in items]))
        return items

    def candidate_vector(self, searcher: Searcher, title: str, body: str) -> dict[str, float]:
        """Return the tf-idf vector of an article's title and body as the index weighs it now."""
        counts = term_counts(self._term_memo(searcher).terms, title, body, self.settings)
        return weigh(counts, lambda t: self._df(searcher, t), searcher.doc_count(), self.settings)

    # ------------------------------------------------------------------ internals

    def _sync_version(self, searcher: Searcher) -> tuple[str, int]:
        version = index_version(searcher)
        with self._lock:
            if version != self._version:
                # New coverage changes document frequencies and candidates: start every cache afresh.
                self._version = version
                self._frequencies = {}
                self._vectors.clear()
                self._answers.clear()
                self._index_view = None
                self._segment_view = None
        return version

    def _term_memo(self, searcher: Searcher) -> TermMemo:
        analyzer = searcher.schema["title"].analyzer
        memo = self._terms
        # Each index version's searcher may unpickle its own copy of the analyzer: an equal one keeps the memo.
        if memo is None or (memo.analyzer is not analyzer and memo.analyzer != analyzer):
            memo = self._terms = TermMemo(analyzer)
        return memo

    def _frequency_view(self, searcher: Searcher) -> FrequencyView:
        with self._lock:
            held = self._segment_view
            if held is None or held[0] is not searcher:
                held = self._segment_view = (
                    searcher,
                    self._segment_frequencies.of(searcher, index_version(searcher)[0]),
                )
            return held[1]

    def _df(self, searcher: Searcher, term: str) -> int:
        frequencies = self._frequencies
        value = frequencies.get(term)
        if value is None:
            # A term in either the title or the body; the larger count approximates "documents with it".
            value = self._frequency_view(searcher)(term)
            if len(frequencies) < 500_000:
                frequencies[term] = value
        return value

    def _compute(self, searcher: Searcher, article: ArticleQuery, *, limit: int, now: datetime) -> list[RelatedItem]:
        settings = self.settings
        query_vector = self.candidate_vector(searcher, article.title, article.text)
        terms = query_terms(
            query_vector, lambda t: self._df(searcher, t), indexed=article.entry_id is not None, settings=settings
        )
        if not terms:
            return []
        center = article.published_at or now
        window = timedelta(seconds=settings.window)
        # Whoosh DATETIME fields hold naive UTC.
        start = (center - window).astimezone(UTC).replace(tzinfo=None)
        end = (center + window).astimezone(UTC).replace(tzinfo=None)
        view = self._view(searcher)
        docnums = view.candidates(terms, start, end, settings.candidates)
        hits = [(fields["id"], fields) for fields in (searcher.stored_fields(docnum) for docnum in docnums)]
        vectors = self._vectors_for(searcher, hits)
        candidates: list[Candidate] = []
        for entry_id, fields in hits:
            found = vectors.get(entry_id)
            if found is None:
                continue  # indexed but gone from the store: a delete the indexer has not applied yet
            vector, key = found
            published = fields.get("published")
            candidates.append(
                Candidate(
                    entry_id=entry_id,
                    similarity=cosine(query_vector, vector),
                    published_at=published.replace(tzinfo=UTC) if isinstance(published, datetime) else center,
                    feed_key=fields.get("feed_key") or "",
                    site=fields.get("site") or "",
                    fingerprint=int(fields.get("fingerprint") or 0),
                    title_key=key,
                )
            )
        chosen = rank(article, candidates, settings, limit=limit, now=now)
        entries = self.lookup.get_entries([r.candidate.entry_id for r in chosen])
        return [
            RelatedItem(entry=entries[r.candidate.entry_id], score=r.score, similarity=r.candidate.similarity)
            for r in chosen
            if r.candidate.entry_id in entries
        ]

    def _view(self, searcher: Searcher) -> IndexView:
        with self._lock:
            if self._index_view is None or self._index_view.searcher is not searcher:
                self._index_view = IndexView(searcher, segments=self._segment_arrays, prefix=index_version(searcher)[0])
            return self._index_view

    def _vectors_for(
        self, searcher: Searcher, hits: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> dict[str, tuple[dict[str, float], str]]:
        """Return entry id -> (term vector, folded title) of each candidate (its id and stored fields)."""
        found: dict[str, tuple[dict[str, float], str]] = {}
        missing: list[str] = []
        settings = self.settings
        frequency = partial(self._df, searcher)
        documents = searcher.doc_count()
        for entry_id, fields in hits:
            cached = self._vectors.get(entry_id)
            if cached is not None:
                found[entry_id] = cached
                continue
            # The terms the indexer stored with the document: no store read, no analysis.
            terms = read_terms(fields.get("related_terms"), settings.body_chars)
            if terms is None:
                missing.append(entry_id)
                continue
            value = (
                weigh(weighted_counts(terms.title, terms.lead, settings), frequency, documents, settings),
                terms.title_key,
            )
            self._vectors.put(entry_id, value)
            found[entry_id] = value
        if missing:
            # Documents indexed before the terms were stored: the store has their titles and leads (one
            # query for all), and only the lead the vector is made of (a full-text article's row is mostly what it skips).
            for entry_id, (title, lead) in self.lookup.entry_leads(missing, settings.body_chars).items():
                value = (self.candidate_vector(searcher, title, lead), title_key(title))
                self._vectors.put(entry_id, value)
                found[entry_id] = value
        return found


def _article_key(article: ArticleQuery, now: datetime) -> str:
    # An undated article is centred on "now": round it so answers stay cacheable for a while.
    center = article.published_at or now.replace(minute=0, second=0, microsecond=0)
    raw = "\x00".join(
        (
            article.title,
            article.text,
            center.isoformat(),
            article.entry_id or "",
            article.feed_key or "",
            article.site or "",
            str(article.fingerprint),
        )
    )
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()
