"""Queries against the live index: parsing, filters, ranking, collapse, facets, snippets. Never writes."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from whoosh import index as whoosh_index
from whoosh.index import FileIndex
from whoosh.searching import Searcher

from aggregator.errors import QueryError, SearchIndexError
from aggregator.models import Entry

from ..health import describe
from ..indexer import IndexLocation
from ..schema import tag_key
from .budget import CHECK_EVERY, QueryBudget, QueryLimits
from .compile import (
    ArrayPlan,
    array_plan,
    excluded_query,
    fuzzy_highlight_stems,
    group_query,
    highlight_terms,
    positive_query,
    source_query,
)
from .doctable import DocTable, DocTableCache, IntArray
from .facets import Facets, FacetValue, count_facets
from .query import MAX_PER_PAGE, SORTS, ParsedQuery, parse_query
from .scoring import intersect, union
from .snippets import make_snippet, mark_title
from .suggest import suggest_query

#: Copies of a story listed under its result ("N more from other outlets"); the count covers all.
MAX_DUPLICATES_SHOWN = 10


class EntryLookup(Protocol):
    """Where full entries come from (the store)."""

    def get_entries(self, entry_ids: Sequence[str]) -> dict[str, Entry]:
        """Return entries by id."""
        ...


@dataclass(frozen=True)
class Filters:
    """Filters chosen outside the query text (facet links, API parameters); all optional."""

    #: Outlet names, exactly as the source facet lists them (any of them).
    sources: tuple[str, ...] = ()
    #: Tags (any of them), compared by index.schema.tag_key (case, commas and spacing do not matter).
    tags: tuple[str, ...] = ()
    #: ISO 639-1 language codes (any of them).
    languages: tuple[str, ...] = ()
    #: Published at or after this instant.
    date_from: datetime | None = None
    #: Published before this instant.
    date_to: datetime | None = None


@dataclass(frozen=True)
class Ranking:
    """How fresh coverage is favoured among equally relevant results."""

    #: Seconds after which the recency boost halves.
    half_life: float = 3 * 86400
    #: Largest share recency adds to a text score (0 turns it off).
    weight: float = 0.3


@dataclass(frozen=True)
class Duplicate:
    """Another outlet's copy of a result's story."""

    #: The copy.
    entry: Entry


@dataclass(frozen=True)
class SearchHit:
    """One result (the best-ranked copy of its story)."""

    #: The entry found.
    entry: Entry
    #: Final score: text relevance times the recency boost (0 when sorted by date alone).
    score: float
    #: Plain-text snippet with query terms wrapped in <mark>...</mark> (HTML-escaped otherwise).
    snippet: str
    #: The title, HTML-escaped, with query terms in <mark>.
    title_html: str = ""
    #: Copies of the same story from other outlets, best first (at most MAX_DUPLICATES_SHOWN).
    duplicates: tuple[Duplicate, ...] = ()
    #: How many copies there are in all (may exceed ``len(duplicates)``).
    duplicate_count: int = 0


@dataclass(frozen=True)
class SearchResults:
    """One page of results."""

    #: Matching documents in all (before collapsing copies of a story).
    total: int
    #: 1-based page number.
    page: int
    #: Results per page.
    per_page: int
    #: The hits on this page.
    hits: tuple[SearchHit, ...]
    #: Notes for the user (e.g. parts of the query that were ignored).
    notices: tuple[str, ...] = field(default_factory=tuple)
    #: Results after collapsing copies of a story (what pages are counted in).
    total_groups: int = 0
    #: Facet counts over every match.
    facets: Facets = field(default_factory=Facets)
    #: A respelled query with more (or any) results, or None.
    suggestion: str | None = None
    #: The order used.
    sort: str = "relevance"
    #: True when no result had every word and the results are those with any of them.
    relaxed: bool = False

    @property
    def pages(self) -> int:
        """Return the number of pages."""
        return max(1, math.ceil(self.total_groups / self.per_page))


class IndexReader:
    """Opens the live index generation and keeps a searcher fresh; safe to share between threads.

    Queries hold a lease on the searcher they use (``lease()``): when the indexer commits, the next
    lease gets a new searcher, and the old one is closed only once the last query using it is done.
    Closing it at once (as this did) pulled the files from under queries still reading them, and one
    request in a busy minute answered 500 (ReaderClosed) whenever the indexer committed.
    """

    def __init__(self, root: Path) -> None:
        self.location = IndexLocation(root)
        self._lock = threading.Lock()
        #: Held for a lease's whole length: one thread reads the index at a time (see `lease`).
        self._reading = threading.RLock()
        self._path: Path | None = None
        self._ix: FileIndex | None = None
        self._searcher: Searcher | None = None
        #: Leases held per searcher (by id), and the searchers replaced while leased (closed at the last release).
        self._leases: dict[int, int] = {}
        self._retired: dict[int, Searcher] = {}
        #: Per-document columns of the current searcher, for ranking, filters and facets.
        self.tables = DocTableCache()

    def searcher(self) -> Searcher | None:
        """Return an up-to-date searcher, or None when no index exists yet (a quick look: queries use lease())."""
        with self._lock:
            return self._current()

    @contextmanager
    def lease(self) -> Iterator[Searcher | None]:
        """Yield an up-to-date searcher (None when no index exists yet) that stays open until the block ends.

        One thread reads the index at a time (leases nest within a thread): Whoosh's readers keep one
        file position per segment file and seek before each read, so two threads reading one searcher
        at once read each other's bytes ("invalid load key", "Block tag error", or wrong postings:
        related coverage in eight threads after a commit failed two runs in three). Readers of their
        own per thread would keep apart, but every per-searcher cache here (document tables, term
        scores, the finder's views) would then be built once per thread; Python runs one thread's
        code at a time anyway, so what waits is only the overlap of one request's reads with
        another's database time.
        """
        with self._reading:
            with self._lock:
                searcher = self._current()
                if searcher is not None:
                    self._leases[id(searcher)] = self._leases.get(id(searcher), 0) + 1
            try:
                yield searcher
            finally:
                if searcher is not None:
                    self._release(searcher)

    def _release(self, searcher: Searcher) -> None:
        with self._lock:
            key = id(searcher)
            left = self._leases[key] - 1
            if left:
                self._leases[key] = left
                return
            del self._leases[key]
            retired = self._retired.pop(key, None)
        if retired is not None:
            retired.close()

    def _current(self) -> Searcher | None:
        # Two tries: a reindex may swap generations and delete the old one while we open it.
        for attempt in range(2):
            try:
                return self._fresh_searcher()
            except (FileNotFoundError, whoosh_index.EmptyIndexError) as exc:
                self._drop()
                if attempt:
                    raise _unreadable(self.location.root, exc) from exc
            except Exception as exc:  # a damaged TOC or segment: Whoosh raises anything from EOFError to TypeError
                self._drop()
                raise _unreadable(self.location.root, exc) from exc
        return None  # pragma: no cover - the loop returns or raises

    def _fresh_searcher(self) -> Searcher | None:
        path = self.location.current_dir()
        if path is None:
            return None
        if path != self._path or self._ix is None or self._searcher is None:
            if not whoosh_index.exists_in(str(path)):
                return None
            self._drop()
            self._ix = whoosh_index.open_dir(str(path))
            self._path = path
            self._searcher = self._ix.searcher()
        elif not self._searcher.up_to_date():
            # Not Searcher.refresh(): it reuses a segment's reader whenever the segment id matches
            # (whoosh Segment.__eq__), deletions or not, so a document replaced by update_document
            # (an entry edited in place) stayed live in its old segment and was found and counted.
            stale, self._searcher = self._searcher, self._ix.searcher()
            self._retire(stale)
        return self._searcher

    def _retire(self, searcher: Searcher) -> None:
        """Close a replaced searcher now, or at its last lease's end when queries still use it."""
        if id(searcher) in self._leases:
            self._retired[id(searcher)] = searcher
        else:
            searcher.close()

    def _drop(self) -> None:
        if self._searcher is not None:
            self._retire(self._searcher)
        self._searcher = None
        self._ix = None
        self._path = None

    def close(self) -> None:
        """Close the searcher (searchers still leased close when their queries end)."""
        with self._lock:
            self._drop()


def _unreadable(root: Path, exc: BaseException) -> SearchIndexError:
    # Readers never write the index: the writer (`newsdesk run`, `newsdesk index`) notices the damage
    # when it starts or catches up, and rebuilds a new generation that readers then open.
    return SearchIndexError(
        f"the search index in {root} cannot be read ({describe(exc)}); "
        "`newsdesk run` or `newsdesk index` rebuilds it from the store"
    )


def _scored_matches(searcher: Searcher, query: Any, budget: QueryBudget) -> tuple[IntArray, np.ndarray[Any, Any]]:
    """Return every matching document number and its BM25F score (no top-N cut: facets need all)."""
    docs: list[int] = []
    scores: list[float] = []
    query = budget.bound(query, searcher.reader())
    context = searcher.context(needs_current=True, weighting=searcher.weighting)
    for sub, offset in searcher.leaf_searchers():
        matcher = query.matcher(sub, context)
        append_doc, append_score = docs.append, scores.append
        walked = 0
        while matcher.is_active():
            append_doc(offset + matcher.id())
            append_score(matcher.score())
            matcher.next()
            walked += 1
            if walked % CHECK_EVERY == 0:
                budget.check_time()
    return np.asarray(docs, dtype=np.int64), np.asarray(scores, dtype=np.float64)


def _score_groups(
    searcher: Searcher, tables: DocTableCache, table: DocTable, parsed: ParsedQuery, budget: QueryBudget
) -> tuple[IntArray, np.ndarray[Any, Any]]:
    """Return the documents matching every group and their summed BM25F scores, ascending by document."""
    result: tuple[IntArray, np.ndarray[Any, Any]] | None = None
    for group in parsed.groups:
        budget.check_time()
        plan = array_plan(group)
        if plan is None:
            built = group_query(group, [])
            if built is None:
                continue
            part = _scored_matches(searcher, built, budget)
        elif not (plan.words or plan.expanding):
            continue  # only stop words: dropped from the AND, as in positive_query
        else:
            part = _array_scores(searcher, tables, table, plan, budget)
        result = part if result is None else intersect(result, part)
        if len(result[0]) == 0:
            break
    return result if result is not None else (np.zeros(0, dtype=np.int64), np.zeros(0))


def _array_scores(
    searcher: Searcher, tables: DocTableCache, table: DocTable, plan: ArrayPlan, budget: QueryBudget
) -> tuple[IntArray, np.ndarray[Any, Any]]:
    """Return the live documents matching any term of a group and their summed scores, as Whoosh would score them."""
    scores = tables.term_scores
    parts = [scores.scores(searcher, table.lengths, field, text) for field, text in plan.words]
    reader = searcher.reader()
    for leaf in plan.expanding:
        # Each index word a prefix or fuzzy term matches is scored like a plain word, as Whoosh's matchers do.
        words = budget.walk(budget.words(reader, leaf))
        parts += [scores.scores(searcher, table.lengths, leaf.fieldname, word.decode("utf-8")) for word in words]
    docs, summed = union(parts)
    alive = tables.alive(searcher)[1][docs]
    return docs[alive], summed[alive]


def _doc_set(searcher: Searcher, query: Any, budget: QueryBudget) -> IntArray:
    bounded = budget.bound(query, searcher.reader())
    return np.fromiter(budget.walk(searcher.docs_for_query(bounded)), dtype=np.int64)


def _codes_for(values: list[str], wanted: Sequence[str], *, fold: bool = False) -> list[int]:
    wanted_set = {w.lower() for w in wanted} if fold else set(wanted)
    return [i for i, v in enumerate(values) if (v.lower() if fold else v) in wanted_set]


def _apply_filters(
    searcher: Searcher, table: DocTable, docs: IntArray, parsed: ParsedQuery, filters: Filters, budget: QueryBudget
) -> np.ndarray[Any, Any]:
    """Return a boolean mask over ``docs``: True for documents every filter lets through."""
    keep = np.ones(len(docs), dtype=bool)
    after = max((d for d in (parsed.after, filters.date_from) if d), default=None)
    before = min((d for d in (parsed.before, filters.date_to) if d), default=None)
    if after is not None:
        keep &= table.published[docs] >= int(after.timestamp())
    if before is not None:
        keep &= table.published[docs] < int(before.timestamp())
    if filters.sources:
        keep &= np.isin(table.source_codes[docs], _codes_for(table.source_values, filters.sources))
    if filters.languages:
        keep &= np.isin(table.language_codes[docs], _codes_for(table.language_values, filters.languages, fold=True))
    if parsed.languages:
        keep &= np.isin(table.language_codes[docs], _codes_for(table.language_values, parsed.languages, fold=True))
    for tags in (filters.tags, parsed.tags):
        if tags:
            wanted = {tag_key(t) for t in tags}
            codes = [i for i, v in enumerate(table.tag_values) if tag_key(v) in wanted]
            tagged = np.unique(table.tag_docs[np.isin(table.tag_codes, codes)])
            keep &= np.isin(docs, tagged)
    for value in parsed.sources:
        built = source_query(value)
        if built is not None:
            keep &= np.isin(docs, _doc_set(searcher, built, budget))
    excluded = excluded_query(parsed)
    if excluded is not None:
        keep &= ~np.isin(docs, _doc_set(searcher, excluded, budget))
    return keep


def _order(
    table: DocTable, docs: IntArray, scores: np.ndarray[Any, Any], sort: str, ranking: Ranking, now: datetime
) -> tuple[IntArray, np.ndarray[Any, Any]]:
    """Return documents and final scores in result order; ties broken by date then id, so pages are stable."""
    published = table.published[docs]
    id_rank = table.id_rank[docs]
    if sort == "newest":
        order = np.lexsort((id_rank, -published))
        return docs[order], np.zeros(len(docs))
    if sort == "oldest":
        order = np.lexsort((id_rank, published))
        return docs[order], np.zeros(len(docs))
    if ranking.weight > 0 and ranking.half_life > 0:
        age = np.maximum(now.timestamp() - published, 0)
        scores = scores * (1 + ranking.weight * np.exp2(-age / ranking.half_life))
    # Rounded so float noise between equal texts cannot reorder pages; newer first among equals.
    order = np.lexsort((id_rank, -published, -np.round(scores, 9)))
    return docs[order], scores[order]


def first_by_date(table: DocTable, docs: IntArray, wanted: int, *, newest: bool) -> IntArray:
    """Return the documents of ``docs`` that can be among the ``wanted`` first by date (newest or oldest
    first), in no order: everything at least as new (old) as the wanted-th, so ties at the cut all stay and
    `_order` breaks them as it would over all of ``docs``."""
    if wanted >= len(docs):
        return docs
    published = table.published[docs]
    if newest:
        cut = np.partition(published, len(docs) - wanted)[len(docs) - wanted]
        kept: IntArray = docs[published >= cut]
    else:
        cut = np.partition(published, wanted - 1)[wanted - 1]
        kept = docs[published <= cut]
    return kept


def _collapse(table: DocTable, ranked: IntArray) -> tuple[IntArray, IntArray]:
    """Return, in result order, the position of each story's best copy and its number of copies."""
    groups = table.group_codes[ranked]
    _, first, counts = np.unique(groups, return_index=True, return_counts=True)
    order = np.argsort(first, kind="stable")
    return first[order], counts[order]


def search(
    reader: IndexReader,
    lookup: EntryLookup,
    query: str,
    *,
    page: int = 1,
    per_page: int = 20,
    filters: Filters | None = None,
    sort: str = "relevance",
    collapse: bool = True,
    ranking: Ranking | None = None,
    now: datetime | None = None,
    limits: QueryLimits | None = None,
    everything: bool = False,
) -> SearchResults:
    """Return a page of results for ``query`` (query syntax in index.search.query), best first.

    An empty query with no filter finds nothing (a search box submitted empty), unless ``everything``
    asks for a listing: then every entry matches, newest first unless ``sort`` says oldest.

    Raises QueryError for a bad argument, and QueryTooComplex when the query asks for more work than ``limits``.
    """
    if page < 1:
        raise QueryError("page must be 1 or more")
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise QueryError(f"per_page must be between 1 and {MAX_PER_PAGE}")
    if sort not in SORTS:
        raise QueryError(f"sort must be one of {', '.join(SORTS)}, got {sort!r}")
    filters = filters or Filters()
    ranking = ranking or Ranking()
    now = now or datetime.now(UTC)
    budget = QueryBudget(limits)
    budget.check_text(query)
    parsed = parse_query(query, now=now)
    budget.check_clauses(parsed, len(filters.sources) + len(filters.tags) + len(filters.languages))
    notices = list(parsed.notices)
    empty = SearchResults(total=0, page=page, per_page=per_page, hits=(), notices=tuple(notices), sort=sort)
    has_filters = bool(filters.sources or filters.tags or filters.languages or filters.date_from or filters.date_to)
    if parsed.is_empty and not has_filters and not everything:
        return empty
    # A lease: the searcher stays open for the whole query, even if the indexer commits meanwhile.
    with reader.lease() as searcher:
        if searcher is None:
            return empty
        table = reader.tables.table(searcher)
        # After the columns: the first query after a merge reads them for the whole index, and that is
        # the index's warm-up, not work the query asked for.
        budget.start_clock()
        docs, scores, relaxed, dropped = _match(searcher, reader.tables, table, parsed, filters, budget)
        if dropped:
            notices.append("ignored common words: " + ", ".join(dict.fromkeys(dropped)))
        if len(docs) == 0 and len(parsed.groups) > 1:
            docs, scores, _, _ = _match(searcher, reader.tables, table, parsed.as_any(), filters, budget)
            relaxed = len(docs) > 0
            if relaxed:
                notices.append("No result has all of your words; showing results with any of them.")
        if not parsed.has_terms and sort == "relevance":
            sort = "newest"  # nothing to rank by: filters alone list the newest first
        budget.check_time()
        suggestion = suggest_query(searcher, query, parsed) if len(docs) < 5 else None
        matched, all_docs = len(docs), docs
        if not collapse and sort in ("newest", "oldest"):
            # By date, each copy its own result: only the pages up to this one need ordering.
            docs = first_by_date(table, docs, page * per_page, newest=sort == "newest")
        ranked, final = _order(table, docs, scores, sort, ranking, now)
        if collapse:
            leaders, counts = _collapse(table, ranked)
        else:
            leaders, counts = np.arange(len(ranked)), np.ones(len(ranked), dtype=np.int64)
        facets = count_facets(table, all_docs, now)
        window = slice((page - 1) * per_page, page * per_page)
        page_leaders, page_counts = leaders[window], counts[window]
        stems, prefixes = highlight_terms(parsed.as_any() if relaxed else parsed)
        stems |= fuzzy_highlight_stems(parsed, searcher.reader(), budget)
        copies: dict[int, list[int]] = {}
        if collapse:
            groups = table.group_codes[ranked]
            for position, count in zip(page_leaders.tolist(), page_counts.tolist(), strict=True):
                if count > 1:
                    same = np.flatnonzero(groups == groups[position])
                    copies[position] = [int(ranked[p]) for p in same if p != position][:MAX_DUPLICATES_SHOWN]
        wanted = [table.ids[int(ranked[p])] for p in page_leaders.tolist()]
        wanted += [table.ids[d] for docs_of in copies.values() for d in docs_of]
        examples = reader.tables.tag_examples(searcher)
        tag_examples = {f.value: examples[f.value] for f in facets.tags if f.value in examples}
        wanted += [table.ids[d] for d in tag_examples.values()]
        entries = lookup.get_entries(wanted)
        facets = replace(facets, tags=_label_tags(facets.tags, tag_examples, table, entries))
        hits = []
        for position, count in zip(page_leaders.tolist(), page_counts.tolist(), strict=True):
            entry = entries.get(table.ids[int(ranked[position])])
            if entry is None:
                continue  # deleted from the store since the index last caught up
            duplicates = tuple(
                Duplicate(entries[table.ids[d]]) for d in copies.get(position, []) if table.ids[d] in entries
            )
            hits.append(
                SearchHit(
                    entry=entry,
                    score=float(final[position]),
                    snippet=make_snippet(entry.text or entry.summary, stems, prefixes),
                    title_html=mark_title(entry.title, stems, prefixes),
                    duplicates=duplicates,
                    duplicate_count=int(count) - 1,
                )
            )
        return SearchResults(
            total=matched,
            page=page,
            per_page=per_page,
            hits=tuple(hits),
            notices=tuple(notices),
            total_groups=len(leaders) if collapse else matched,
            facets=facets,
            suggestion=suggestion,
            sort=sort,
            relaxed=relaxed,
        )


def _label_tags(
    tags: Sequence[FacetValue], examples: dict[str, int], table: DocTable, entries: dict[str, Entry]
) -> tuple[FacetValue, ...]:
    """Return the tag facet values labelled as a feed spelled them ("Trump, Donald J"), not as indexed."""
    labelled = []
    for facet in tags:
        entry = entries.get(table.ids[examples[facet.value]]) if facet.value in examples else None
        spelled = [t for t in (entry.tags if entry else ()) if tag_key(t) == facet.value]
        labelled.append(replace(facet, label=spelled[0] if spelled else facet.label))
    return tuple(labelled)


def _match(
    searcher: Searcher,
    tables: DocTableCache,
    table: DocTable,
    parsed: ParsedQuery,
    filters: Filters,
    budget: QueryBudget,
) -> tuple[IntArray, np.ndarray[Any, Any], bool, list[str]]:
    """Return matching documents, their text scores, False (not relaxed), and stop words dropped."""
    positive, dropped = positive_query(parsed)
    if positive is None:
        if parsed.groups:
            # Every word was a stop word: nothing can match them; say so rather than list everything.
            return np.zeros(0, dtype=np.int64), np.zeros(0), False, dropped
        docs = tables.alive(searcher)[0]
        scores = np.zeros(len(docs))
    else:
        docs, scores = _score_groups(searcher, tables, table, parsed, budget)
    keep = _apply_filters(searcher, table, docs, parsed, filters, budget)
    return docs[keep], scores[keep], False, dropped
