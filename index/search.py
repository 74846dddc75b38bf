"""Queries against the live index: parsing, ranking, snippets. Readers only; never writes."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from whoosh import highlight
from whoosh import index as whoosh_index
from whoosh.index import FileIndex
from whoosh.qparser import MultifieldParser, OrGroup
from whoosh.searching import Searcher

from aggregator.errors import QueryError
from aggregator.models import Entry

from .indexer import IndexLocation


class EntryLookup(Protocol):
    """Where full entries come from (the store)."""

    def get_entries(self, entry_ids: Sequence[str]) -> dict[str, Entry]:
        """Return entries by id."""
        ...


@dataclass(frozen=True)
class SearchHit:
    """One result."""

    #: The entry found.
    entry: Entry
    #: Relevance score.
    score: float
    #: Plain-text snippet with query terms wrapped in <mark>...</mark> (HTML-escaped otherwise).
    snippet: str


@dataclass(frozen=True)
class SearchResults:
    """One page of results."""

    #: Matching documents in all.
    total: int
    #: 1-based page number.
    page: int
    #: Results per page.
    per_page: int
    #: The hits on this page.
    hits: tuple[SearchHit, ...]
    #: Notes for the user (e.g. parts of the query that were ignored).
    notices: tuple[str, ...] = field(default_factory=tuple)


class IndexReader:
    """Opens the live index generation and keeps a searcher fresh; safe to share between threads."""

    def __init__(self, root: Path) -> None:
        self.location = IndexLocation(root)
        self._lock = threading.Lock()
        self._path: Path | None = None
        self._ix: FileIndex | None = None
        self._searcher: Searcher | None = None

    def searcher(self) -> Searcher | None:
        """Return an up-to-date searcher, or None when no index exists yet."""
        with self._lock:
            path = self.location.current_dir()
            if path is None or not whoosh_index.exists_in(str(path)):
                return None
            if path != self._path or self._ix is None or self._searcher is None:
                if self._searcher is not None:
                    self._searcher.close()
                self._ix = whoosh_index.open_dir(str(path))
                self._path = path
                self._searcher = self._ix.searcher()
            elif not self._searcher.up_to_date():
                self._searcher = self._searcher.refresh()
            return self._searcher

    def close(self) -> None:
        """Close the searcher."""
        with self._lock:
            if self._searcher is not None:
                self._searcher.close()
            self._searcher = None
            self._ix = None


_SNIPPET_FORMATTER = highlight.HtmlFormatter(tagname="mark", between=" … ")


def make_snippet(hit: Any, text: str, fallback: str) -> str:
    """Return an HTML-safe snippet of ``text`` with the hit's terms marked."""
    import html as html_module

    try:
        hit.results.formatter = _SNIPPET_FORMATTER
        hit.results.fragmenter = highlight.ContextFragmenter(maxchars=220, surround=60)
        marked = hit.highlights("text", text=text, top=2)
    except Exception:  # highlighting is best effort; never fail a search for it
        marked = ""
    return marked or html_module.escape(fallback[:220])


def search(reader: IndexReader, lookup: EntryLookup, query: str, *, page: int = 1, per_page: int = 20) -> SearchResults:
    """Return a page of entries matching ``query``, best first."""
    if page < 1:
        raise QueryError("page must be 1 or more")
    if not 1 <= per_page <= 100:
        raise QueryError("per_page must be between 1 and 100")
    searcher = reader.searcher()
    if searcher is None or not query.strip():
        return SearchResults(total=0, page=page, per_page=per_page, hits=())
    parser = MultifieldParser(["title", "text", "summary"], searcher.schema)
    parsed = parser.parse(query)
    results = searcher.search_page(parsed, page, pagelen=per_page)
    if results.total == 0:
        parser = MultifieldParser(["title", "text", "summary"], searcher.schema, group=OrGroup)
    ids = [hit["id"] for hit in results]
    entries = lookup.get_entries(ids)
    hits = []
    for hit in results:
        entry = entries.get(hit["id"])
        if entry is None:
            continue
        hits.append(
            SearchHit(entry=entry, score=float(hit.score or 0), snippet=make_snippet(hit, entry.text, entry.summary))
        )
    return SearchResults(total=results.total, page=page, per_page=per_page, hits=tuple(hits))
