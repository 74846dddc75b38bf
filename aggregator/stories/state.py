"""What story assignment remembers, and the interface of the store that keeps it.

A story's state is small and serializable: its id, the heaviest terms of the sum of its
members' vectors (the centroid), when it was first and last reported, how many articles and
which outlets it has, and whether it was merged into another story. The store is the source of
truth (every node must see the same stories), so the assigner reads and writes through the
`StoryStore` protocol; `MemoryStoryStore` implements it in memory for tests and benchmarks.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import operator
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, Protocol

__all__ = [
    "MemoryStoryStore",
    "StoryChanges",
    "StoryState",
    "StoryStore",
    "TermIndex",
    "in_window",
    "overlap",
    "story_id_for",
]


def story_id_for(article_id: str) -> str:
    """Return the id of a story founded by an article: stable, URL-safe, the same on every node."""
    # Derived from the founder rather than counted, so assigning the same articles in the same
    # order from scratch (a rebuild, another node) gives the same ids.
    return "s" + hashlib.blake2b(article_id.encode(), digest_size=8).hexdigest()


@dataclass(frozen=True)
class StoryState:
    """One story as the assigner needs it between articles."""

    #: Story id ("s" + 16 hex digits, derived from the founding article's id).
    id: str
    #: The heaviest terms of the sum of its members' unit vectors: term -> weight (never mutated).
    centroid: Mapping[str, float]
    #: Earliest publication time among its members (UTC).
    first_seen: datetime
    #: Latest publication time among its members (UTC); the quiet period runs from here.
    last_seen: datetime
    #: Number of articles assigned to it (including those of stories merged into it).
    members: int
    #: Distinct outlets that covered it, in the order they joined (capped).
    outlets: tuple[str, ...] = ()
    #: Id of the story it was merged into, or None while it stands on its own.
    merged_into: str | None = None

    @cached_property
    def norm(self) -> float:
        """Return the length of the centroid (computed once per state)."""
        weights = self.centroid.values()
        # The same products summed in the same order as a generator would, multiplied in C.
        return math.sqrt(sum(map(operator.mul, weights, weights))) or 1.0

    def to_json(self) -> dict[str, Any]:
        """Return the state as plain JSON-able values (what a store may persist as one document)."""
        return {
            "id": self.id,
            "centroid": dict(self.centroid),
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "members": self.members,
            "outlets": list(self.outlets),
            "merged_into": self.merged_into,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StoryState:
        """Return the state that `to_json` wrote."""
        return cls(
            id=str(data["id"]),
            centroid={str(term): float(weight) for term, weight in data["centroid"].items()},
            first_seen=datetime.fromisoformat(data["first_seen"]),
            last_seen=datetime.fromisoformat(data["last_seen"]),
            members=int(data["members"]),
            outlets=tuple(str(outlet) for outlet in data["outlets"]),
            merged_into=data.get("merged_into"),
        )


@dataclass(frozen=True)
class StoryChanges:
    """Everything a batch of assignments changed; a store writes it in one transaction."""

    #: New or changed stories, each in its final state for the batch (merged ones have `merged_into`).
    stories: tuple[StoryState, ...] = ()
    #: (article id, story id) for each newly assigned article (the surviving story when it bridged a merge).
    assignments: tuple[tuple[str, str], ...] = ()
    #: (merged story id, surviving story id): the merged id keeps redirecting to the survivor.
    aliases: tuple[tuple[str, str], ...] = ()
    #: Term -> number of the batch's articles that contain it (add to the document frequencies).
    frequencies: Mapping[str, int] = field(default_factory=dict)
    #: Number of articles the batch added to the document count.
    documents: int = 0


class StoryStore(Protocol):
    """What the assigner needs from the store; `MemoryStoryStore` is the reference implementation."""

    def stories_for_terms(
        self,
        terms: Mapping[str, float],
        start: datetime,
        end: datetime,
        limit: int,
        exclude: Container[str] = frozenset(),
    ) -> list[tuple[float, StoryState]]:
        """Return (`overlap`, story) of the ``limit`` best unmerged stories with a centroid term among
        ``terms`` whose span reaches into [start, end] (last_seen >= start and first_seen <= end), best
        first (ties by id), leaving out the ids in ``exclude`` (the batch's own, which it ranks itself).
        The score must be `overlap` computed exactly so (the assigner merges lists by it without
        computing it again, and drops by it the candidates of a short vector that cannot reach the
        threshold); returning more is harmless: the assigner keeps the best ``limit``."""
        ...

    def document_frequencies(self, terms: Iterable[str]) -> dict[str, int]:
        """Return term -> number of assigned articles containing it (0 for unknown terms), a new dict the caller may change."""
        ...

    def document_count(self) -> int:
        """Return the number of articles whose terms were counted."""
        ...

    def story_of(self, article_id: str) -> str | None:
        """Return the story id an article was assigned to (not following aliases), or None."""
        ...

    def resolve(self, story_id: str) -> str:
        """Return the story id that ``story_id`` stands for now, following merge aliases."""
        ...

    def story(self, story_id: str) -> StoryState | None:
        """Return a story's state by id (merged ones too), or None."""
        ...

    def stage(self, story: StoryState) -> None:
        """Show a batch's new state of a story to `stories_for_terms` before the batch is saved.

        The batch's stories are ranked in the store's own term index, filed once, rather than in an
        index of the batch's beside it (filed again when saved); `save` keeps what was staged, and
        `unstage` takes it back."""
        ...

    def unstage(self) -> None:
        """Take back what was staged since the last `save` (a batch that failed): lookups see the saved stories again."""
        ...

    def save(self, changes: StoryChanges) -> None:
        """Persist a batch's changes atomically (the states it staged become the saved ones)."""
        ...


class TermIndex:
    """An inverted index of story centroid terms by time: day -> term -> {story id: centroid weight}.

    A story is filed under every day its span (first to last report) touches, so a lookup for an
    article walks only the stories of the days around it, however many older stories the index
    holds: the cost of a lookup follows how many stories are open at once, not how many there were.
    Each story stands once per term in the posting of its first day ("starting") and in those of the
    later days of its span ("continuing"); a lookup reads both at its first day and only "starting"
    after that, so every story it meets is counted once.
    """

    def __init__(self, bucket_seconds: float = 86400.0) -> None:
        # Insertion-ordered dicts throughout, so nothing depends on the process's hash seed.
        self._bucket = bucket_seconds
        self._starting: dict[int, dict[str, dict[str, float]]] = {}
        self._continuing: dict[int, dict[str, dict[str, float]]] = {}
        #: Story id -> the centroid it is indexed with.
        self.terms_of: dict[str, Mapping[str, float]] = {}
        self._span: dict[str, tuple[int, int]] = {}

    def _day(self, when: datetime) -> int:
        return int(when.timestamp() // self._bucket)

    def put(self, story: StoryState) -> None:
        """Index a story's current centroid and span (a merged story is taken out)."""
        new: Mapping[str, float] = story.centroid if story.merged_into is None else {}
        story_id = story.id
        first, last = self._day(story.first_seen), self._day(story.last_seen)
        old = self.terms_of.get(story_id)
        if old is not None and (not new or self._span[story_id][0] != first):
            self.remove(story_id)
            old = None
        if not new:
            return
        if old is None:
            self._file(story_id, new.items(), (), first, first, last)
        else:
            # An article joining changes the weights of its own terms only, and may lengthen the span:
            # the days already filed get the changes, the new days everything.
            old_last = self._span[story_id][1]
            changed = [(term, weight) for term, weight in new.items() if old.get(term) != weight]
            dropped = [term for term in old if term not in new]
            self._file(story_id, changed, dropped, first, first, min(last, old_last))
            if last > old_last:
                self._file(story_id, new.items(), (), first, old_last + 1, last)
            for day in range(last + 1, old_last + 1):  # a shorter span (a story rebuilt without some articles)
                self._unfile(story_id, old, first, day)
        self.terms_of[story_id] = new
        self._span[story_id] = (first, last)

    def _file(
        self,
        story_id: str,
        weights: Iterable[tuple[str, float]],
        dropped: Iterable[str],
        first: int,
        start: int,
        stop: int,
    ) -> None:
        """Set the story's weights (and take out the dropped terms) on the days start..stop of a span from ``first``."""
        weights = list(weights)
        for day in range(start, stop + 1):
            postings = (self._starting if day == first else self._continuing).setdefault(day, {})
            for term in dropped:
                _discard(postings, term, story_id)
            for term, weight in weights:
                posting = postings.get(term)
                if posting is None:
                    postings[term] = {story_id: weight}
                else:
                    posting[story_id] = weight

    def _unfile(self, story_id: str, terms: Iterable[str], first: int, day: int) -> None:
        table = self._starting if day == first else self._continuing
        postings = table[day]
        for term in terms:
            _discard(postings, term, story_id)
        if not postings:
            del table[day]

    def remove(self, story_id: str) -> None:
        """Take a story out of the index."""
        terms = self.terms_of.pop(story_id, None)
        if terms is None:
            return
        first, last = self._span.pop(story_id)
        for day in range(first, last + 1):
            self._unfile(story_id, terms, first, day)

    def ranked(
        self,
        terms: Mapping[str, float],
        limit: int,
        accept: Callable[[str], bool],
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[str]:
        """Return up to ``limit`` accepted story ids sharing a term, best first by `overlap`, ties by id.

        With ``start`` and ``end`` only stories whose span reaches into [start, end] are met (and
        then offered to ``accept``); without, every story is.
        """
        window = None if start is None or end is None else (start, end)
        return [story_id for _, story_id in self.scored(terms, limit, accept, window)]

    def scored(
        self,
        terms: Mapping[str, float],
        limit: int,
        accept: Callable[[str], bool],
        window: tuple[datetime, datetime] | None,
    ) -> list[tuple[float, str]]:
        """Return (`overlap`, story id) of what `ranked` returns for a ``window`` (start, end), in its order.

        The score is the float `overlap` gives (the same products summed in the same order), so lists
        from two indexes can be merged by it without computing it again.
        """
        heap = self._ranking(terms, window)
        best: list[tuple[float, str]] = []
        # Best first until ``limit`` are accepted: ``accept`` is asked about the few at the top, not all.
        while heap and len(best) < limit:
            score, story_id = heapq.heappop(heap)
            if accept(story_id):
                best.append((-score, story_id))
        return best

    def _ranking(self, terms: Mapping[str, float], window: tuple[datetime, datetime] | None) -> list[tuple[float, str]]:
        """Return a heap of (-`overlap`, story id) of the stories sharing a term (filed in the window's days)."""
        if window is None:
            tables = [self._starting[day] for day in sorted(self._starting)]
        else:
            first, last = self._day(window[0]), self._day(window[1])
            tables = [self._starting[day] for day in range(first, last + 1) if day in self._starting]
            if first in self._continuing:
                tables.append(self._continuing[first])
        scores: dict[str, float] = {}
        get = scores.get
        lookups = [postings.get for postings in tables]
        # Summed term by term in the query's order, exactly as `overlap` does, so both rank alike.
        for term, weight in terms.items():
            for lookup in lookups:
                posting = lookup(term)
                if posting:
                    for story_id, other in posting.items():
                        scores[story_id] = get(story_id, 0.0) + weight * other
        heap = [(-score, i) for i, score in scores.items()]
        heapq.heapify(heap)
        return heap

    def stories_for_terms(
        self,
        stories: Mapping[str, StoryState],
        terms: Mapping[str, float],
        start: datetime,
        end: datetime,
        limit: int,
        exclude: Container[str] = frozenset(),
    ) -> list[tuple[float, StoryState]]:
        """`StoryStore.stories_for_terms` for a store that indexes its ``stories`` (by id) here: (overlap,
        story) of up to ``limit`` of them sharing a term and overlapping [start, end], none in ``exclude``."""
        return best_in_window(self._ranking(terms, (start, end)), stories.get, start, end, limit, exclude)


def best_in_window(
    heap: list[tuple[float, str]],
    story: Callable[[str], StoryState | None],
    start: datetime,
    end: datetime,
    limit: int,
    exclude: Container[str],
) -> list[tuple[float, StoryState]]:
    """Pop a heap of (-`overlap`, story id) until ``limit`` stories overlapping [start, end] and not in
    ``exclude`` are found; return them as (overlap, story), best first (``story``: by id, None when gone)."""
    pop = heapq.heappop
    best: list[tuple[float, StoryState]] = []
    # `in_window` inlined: asked of every story met until ``limit`` are accepted (two dozen per article),
    # without a function call for each.
    while heap and len(best) < limit:
        score, story_id = pop(heap)
        found = story(story_id)
        if found is not None and found.last_seen >= start and found.first_seen <= end and story_id not in exclude:
            best.append((-score, found))
    return best


def _discard(postings: dict[str, dict[str, float]], term: str, story_id: str) -> None:
    posting = postings.get(term)
    if posting is not None:
        posting.pop(story_id, None)
        if not posting:
            del postings[term]


def overlap(terms: Mapping[str, float], centroid: Mapping[str, float]) -> float:
    """Return the partial dot product stores rank candidates by: query weight x centroid weight, summed."""
    total = 0.0
    for term, weight in terms.items():
        other = centroid.get(term)
        if other is not None:
            total += weight * other
    return total


def in_window(story: StoryState, start: datetime, end: datetime) -> bool:
    """Return True when a story's span reaches into [start, end]."""
    return story.last_seen >= start and story.first_seen <= end


class MemoryStoryStore:
    """A `StoryStore` in memory: stories, an inverted index of centroid terms, aliases, frequencies."""

    def __init__(self, *, retain_seconds: float = 4 * 86400, halve_frequencies_at: int = 200_000) -> None:
        #: Story id -> latest state (merged ones included, for aliases and inspection).
        self.stories: dict[str, StoryState] = {}
        #: Article id -> story id it was assigned to.
        self.assignments: dict[str, str] = {}
        #: Merged story id -> the story it was merged into.
        self.aliases: dict[str, str] = {}
        self._frequencies: dict[str, int] = {}
        self._documents = 0
        self._index = TermIndex()
        # Stories quiet for longer than this before the newest one leave the term index; keep it above
        # the quiet period plus how late an article may arrive after newer ones (4 days: 72 h + 1 day).
        self._retain = retain_seconds
        self._latest: datetime | None = None
        self._saves = 0
        # As the SQL store does: when the counted articles reach this many, every count halves.
        self._halve_at = halve_frequencies_at
        # Story id -> its state before the batch in hand first staged it (None: it was not here).
        self._before_staging: dict[str, StoryState | None] = {}

    def stories_for_terms(
        self,
        terms: Mapping[str, float],
        start: datetime,
        end: datetime,
        limit: int,
        exclude: Container[str] = frozenset(),
    ) -> list[tuple[float, StoryState]]:
        """Return (overlap, story) of up to ``limit`` unmerged stories sharing a term and overlapping [start, end], best first."""
        return self._index.stories_for_terms(self.stories, terms, start, end, limit, exclude)

    def document_frequencies(self, terms: Iterable[str]) -> dict[str, int]:
        """Return term -> number of articles containing it."""
        frequencies = self._frequencies
        return {term: frequencies.get(term, 0) for term in terms}

    def document_count(self) -> int:
        """Return the number of articles counted."""
        return self._documents

    def story_of(self, article_id: str) -> str | None:
        """Return the story an article was assigned to, or None."""
        return self.assignments.get(article_id)

    def resolve(self, story_id: str) -> str:
        """Return the story id ``story_id`` redirects to now."""
        seen = 0
        while story_id in self.aliases and seen < 1000:  # a chain, never a cycle; the bound guards anyway
            story_id = self.aliases[story_id]
            seen += 1
        return story_id

    def story(self, story_id: str) -> StoryState | None:
        """Return a story's state by id, or None."""
        return self.stories.get(story_id)

    def members(self) -> dict[str, str]:
        """Return article id -> the story it belongs to now (aliases followed)."""
        return {article_id: self.resolve(story_id) for article_id, story_id in self.assignments.items()}

    def stage(self, story: StoryState) -> None:
        """Show a batch's new state of a story to lookups before the batch is saved."""
        if story.id not in self._before_staging:
            self._before_staging[story.id] = self.stories.get(story.id)
        self.stories[story.id] = story
        self._index.put(story)

    def unstage(self) -> None:
        """Take back what was staged since the last save."""
        for story_id, before in self._before_staging.items():
            if before is None:
                self.stories.pop(story_id, None)
                self._index.remove(story_id)
            else:
                self.stories[story_id] = before
                self._index.put(before)
        self._before_staging.clear()

    def save(self, changes: StoryChanges) -> None:
        """Apply a batch's changes."""
        stories = self.stories
        for story in changes.stories:
            if stories.get(story.id) is not story:  # a staged state is filed already
                stories[story.id] = story
                self._index.put(story)
            if self._latest is None or story.last_seen > self._latest:
                self._latest = story.last_seen
        self._before_staging.clear()
        self.assignments.update(changes.assignments)
        self.aliases.update(changes.aliases)
        frequencies = self._frequencies
        for term, count in changes.frequencies.items():
            frequencies[term] = frequencies.get(term, 0) + count
        self._documents += changes.documents
        if changes.documents and self._documents >= self._halve_at:
            self._frequencies = {term: count // 2 for term, count in frequencies.items() if count >= 2}
            self._documents //= 2
        self._saves += 1
        if self._saves % 500 == 0:
            self._prune()

    def _prune(self) -> None:
        # Stories quiet for longer than the retention can no longer be joined (the assigner asks only
        # for recent ones); dropping them from the term index keeps lookups short on long streams.
        if self._latest is None:
            return
        horizon = self._latest.timestamp() - self._retain
        stale = [i for i in self._index.terms_of if self.stories[i].last_seen.timestamp() < horizon]
        for story_id in stale:
            self._index.remove(story_id)
