"""How much work one query may ask for: its length, its clauses, the words its wildcards expand to, its time.

A query string is untrusted input that decides how much the server does. An OR of a few hundred
prefixes (``co* OR re* OR ...``) expanded to most of the index's vocabulary and held a worker for
minutes; fifty fuzzy words took seconds. Each request gets a QueryBudget: the query is refused with
QueryTooComplex (a QueryError, so a 400 with a message) before it is run when it is too long or has
too many clauses, and while it runs when its wildcard and fuzzy words expand past the limit (counted
over the whole query) or its time is up. Checks are cooperative: the matching loops call
``check_time`` every few hundred documents, so a query stops within a fraction of a second of its
deadline.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from whoosh import query as wq

from aggregator.errors import QueryError

from .query import ParsedQuery

#: Documents a matching loop walks between two looks at the clock.
CHECK_EVERY = 256


class QueryTooComplex(QueryError):
    """The query asks for more work than the limits allow (a client error: ask for less)."""


@dataclass(frozen=True)
class QueryLimits:
    """The most work one query may ask for (search.max_* in config.toml)."""

    #: Longest query text accepted, in characters.
    max_length: int = 2000
    #: Most terms, phrases and filters (typed or passed as parameters) one query may combine.
    max_clauses: int = 64
    #: Most index words the query's prefix (word*) and fuzzy (word~) terms may expand to, all together.
    max_expansions: int = 2000
    #: Longest a query may run, in seconds, before it is stopped.
    max_seconds: float = 5.0


def clause_count(parsed: ParsedQuery, filter_values: int = 0) -> int:
    """Return how many clauses a parsed query combines: terms, excluded terms, field filters and filter values."""
    terms = sum(len(group) for group in parsed.groups) + len(parsed.excluded)
    return terms + len(parsed.sources) + len(parsed.tags) + len(parsed.languages) + filter_values


class ExpandedTerms(wq.MultiTerm):  # type: ignore[misc]
    """A prefix or fuzzy term whose index words were already listed (and counted against the budget).

    It matches and scores exactly as the query it replaces (Whoosh's MultiTerm ORs the words), only
    the listing is done once per request, under the budget, instead of inside each matcher.
    """

    def __init__(self, fieldname: str, words: tuple[bytes, ...], *, boost: float = 1.0, constantscore: bool) -> None:
        self.fieldname = fieldname
        self.words = words
        self.text = b" ".join(words[:3])
        self.boost = boost
        self.constantscore = constantscore

    def _btexts(self, ixreader: Any) -> tuple[bytes, ...]:
        return self.words

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ExpandedTerms) and (self.fieldname, self.words, self.boost, self.constantscore) == (
            other.fieldname,
            other.words,
            other.boost,
            other.constantscore,
        )

    def __hash__(self) -> int:
        return hash((ExpandedTerms, self.fieldname, self.words, self.boost))

    def __repr__(self) -> str:
        return f"ExpandedTerms({self.fieldname!r}, {len(self.words)} words)"


class QueryBudget:
    """One request's allowance: raises QueryTooComplex when the query has used it up."""

    def __init__(self, limits: QueryLimits | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits or QueryLimits()
        self._clock = clock
        self.deadline = clock() + self.limits.max_seconds
        #: Index words listed so far, over the whole query.
        self.expanded = 0
        self._words: dict[tuple[Any, ...], tuple[bytes, ...]] = {}

    def start_clock(self) -> None:
        """Start the query's time from now (the index's per-reader columns, read once per commit, do not count)."""
        self.deadline = self._clock() + self.limits.max_seconds

    def check_text(self, text: str) -> None:
        """Refuse a query text longer than the limit (before any work is done)."""
        limit = self.limits.max_length
        if len(text) > limit:
            raise QueryTooComplex(f"the query is too long ({len(text)} characters; at most {limit})")

    def check_clauses(self, parsed: ParsedQuery, filter_values: int = 0) -> None:
        """Refuse a query that combines more clauses than the limit (before any work is done)."""
        count = clause_count(parsed, filter_values)
        limit = self.limits.max_clauses
        if count > limit:
            raise QueryTooComplex(
                f"the query combines too many words and filters ({count}; at most {limit}): search for fewer at once"
            )

    def check_time(self) -> None:
        """Stop the query when its time is up."""
        if self._clock() > self.deadline:
            raise QueryTooComplex(
                f"the query took too long (over {self.limits.max_seconds:g} s) and was stopped: "
                "try fewer or more specific words"
            )

    def walk(self, items: Iterable[Any]) -> Iterable[Any]:
        """Yield ``items``, looking at the clock every CHECK_EVERY of them."""
        for count, item in enumerate(items):
            if count % CHECK_EVERY == 0:
                self.check_time()
            yield item

    def words(self, reader: Any, term: wq.MultiTerm) -> tuple[bytes, ...]:
        """Return the index words a prefix or fuzzy term expands to, counted once per request against the limit."""
        key = (type(term), term.fieldname, term.text, getattr(term, "maxdist", 0), getattr(term, "prefixlength", 0))
        found = self._words.get(key)
        if found is not None:
            return found
        room = self.limits.max_expansions - self.expanded
        # One more than the room left: enough to know the limit is passed without listing everything.
        found = tuple(itertools.islice(self.walk(term._btexts(reader)), room + 1))
        if len(found) > room:
            label = f"{term.text}*" if isinstance(term, wq.Prefix) else f"{term.text}~"
            raise QueryTooComplex(
                f"“{label}” and the query's other wildcard and fuzzy words match too many index words "
                f"(over {self.limits.max_expansions}): type more letters, or use fewer of them"
            )
        self.expanded += len(found)
        self._words[key] = found
        return found

    def bound(self, query: Any, reader: Any) -> Any:
        """Return ``query`` with its prefix and fuzzy terms listed under the budget (the rest unchanged)."""

        def replace(node: Any) -> Any:
            if isinstance(node, wq.MultiTerm) and not isinstance(node, ExpandedTerms):
                words = self.words(reader, node)
                return ExpandedTerms(node.fieldname, words, boost=node.boost, constantscore=node.constantscore)
            return node.apply(replace)

        return replace(query)
