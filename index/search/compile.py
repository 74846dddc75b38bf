"""ParsedQuery -> Whoosh query objects, analyzed exactly as the index was."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from whoosh import query as wq
from whoosh.codec.base import Automata

from ..schema import TEXT_FIELDS, name_analyzer, news_analyzer
from .budget import QueryBudget
from .query import ParsedQuery, Term


@lru_cache(maxsize=1)
def _news() -> Any:
    return news_analyzer()


@lru_cache(maxsize=1)
def _names() -> Any:
    return name_analyzer()


def analyze(text: str, *, names: bool = False) -> list[str]:
    """Return the index terms of ``text`` (stemmed news terms, or plain name terms)."""
    analyzer = _names() if names else _news()
    return [token.text for token in analyzer(text)]


def _fold(text: str) -> str:
    """Return ``text`` lower-cased and accent-folded but not stemmed (for prefixes and fuzzy terms)."""
    words = analyze(text, names=True)
    return words[0] if words else ""


def _in_fields(fields: tuple[str, ...], terms: list[str], phrase: bool) -> wq.Query | None:
    if not terms:
        return None
    if len(terms) == 1 and not phrase:
        return wq.Or([wq.Term(f, terms[0]) for f in fields])
    if len(terms) == 1:
        return wq.Or([wq.Term(f, terms[0]) for f in fields])
    return wq.Or([wq.Phrase(f, terms) for f in fields])


class StemFuzzyTerm(wq.FuzzyTerm):  # type: ignore[misc]
    """A fuzzy term expanded against the field's own indexed (stemmed) terms.

    Whoosh's FuzzyTerm walks a field's spelling words when it has them (title has, for "did you
    mean"): those are unstemmed, so "ukraine~" expanded to "ukraine", which no title posting holds
    (the title term is "ukrain"), and the fuzzy query found fewer results than the plain word.
    """

    def _btexts(self, ixreader: Any) -> Iterator[bytes]:
        # Segment by segment: Whoosh's MultiCursor over several segments calls FieldCursor.term(),
        # which its own cursors do not implement, so every fuzzy query on an index with more than
        # one segment (any index the indexer has committed to twice) raised NotImplementedError.
        automata = Automata()
        to_bytes = ixreader.schema[self.fieldname].to_bytes
        dfa = None
        seen: set[str] = set()
        for leaf, _offset in ixreader.leaf_readers():
            cursor = leaf.cursor(self.fieldname)
            if not cursor.is_valid():
                continue
            dfa = dfa or automata.levenshtein_dfa(self.text, self.maxdist, self.prefixlength)
            for word in automata.find_matches(dfa, cursor):
                if word not in seen:
                    seen.add(word)
                    yield to_bytes(word)


def term_query(term: Term) -> wq.Query | None:
    """Return the Whoosh query for one term, or None when nothing of it is searchable (a stop word)."""
    if term.field == "author":
        names = analyze(term.text, names=True)
        if not names:
            return None
        return wq.Phrase("authors", names) if len(names) > 1 else wq.Term("authors", names[0])
    fields: tuple[str, ...] = ("title",) if term.field == "title" else TEXT_FIELDS
    if term.prefix:
        folded = _fold(term.text)
        return wq.Or([wq.Prefix(f, folded) for f in fields]) if folded else None
    if term.fuzzy:
        terms = analyze(term.text)
        if len(terms) != 1:
            return _in_fields(fields, terms, True)
        # Fuzzy matching compares stems, so "elektion~" still finds "election"; the word as typed is tried too,
        # as a typo can hide the suffix the stemmer would cut ("mackere~"). prefixlength keeps it fast.
        variants = dict.fromkeys(t for t in (terms[0], _fold(term.text)) if t)
        return wq.Or([StemFuzzyTerm(f, text, maxdist=term.fuzzy, prefixlength=1) for f in fields for text in variants])
    terms = analyze(term.text)
    # A word the tokenizer splits ("e-mail", "covid-19") must match as a phrase, like a quoted one.
    return _in_fields(fields, terms, term.phrase or len(terms) > 1)


def group_query(group: tuple[Term, ...], dropped: list[str]) -> wq.Query | None:
    """Return the query for one group (its terms ORed), adding stop words it drops to ``dropped``."""
    alternatives = []
    for term in group:
        built = term_query(term)
        if built is None:
            dropped.append(term.text)
        else:
            alternatives.append(built)
    if not alternatives:
        return None
    return alternatives[0] if len(alternatives) == 1 else wq.Or(alternatives)


@dataclass(frozen=True)
class ArrayPlan:
    """A group of terms the numpy path can score: plain words, and the index words of prefix and fuzzy terms."""

    #: (field, index term) pairs of plain words, scored by BM25F as Whoosh scores a Term.
    words: list[tuple[str, str]]
    #: Prefix and fuzzy queries, one per field (and spelling variant); each index word one matches is
    #: scored by BM25F like a plain word (Whoosh's MultiTerm ORs Terms; its "constant score" falls back
    #: to the searcher's weighting).
    expanding: list[wq.MultiTerm]


def array_plan(group: tuple[Term, ...]) -> ArrayPlan | None:
    """Return how to score a group with arrays, or None when it needs Whoosh's matchers (phrases, names)."""
    words: list[tuple[str, str]] = []
    expanding: list[wq.MultiTerm] = []
    for term in group:
        if term.phrase or term.field not in (None, "title"):
            return None
        if term.prefix or term.fuzzy:
            built = term_query(term)
            if built is None:
                continue  # nothing searchable in it, as group_query drops it
            leaves = list(built.leaves())
            if not all(isinstance(leaf, wq.MultiTerm) for leaf in leaves):
                return None  # a fuzzy word the analyzer splits is a phrase
            expanding += leaves
            continue
        terms = analyze(term.text)
        if len(terms) > 1:
            return None  # a split word is a phrase
        fields = ("title",) if term.field == "title" else TEXT_FIELDS
        words += [(f, terms[0]) for f in fields for _ in terms]
    return ArrayPlan(words, expanding)


def positive_query(parsed: ParsedQuery) -> tuple[wq.Query | None, list[str]]:
    """Return the ranked query (every group ANDed, terms within a group ORed) and the terms dropped as stop words."""
    clauses: list[wq.Query] = []
    dropped: list[str] = []
    for group in parsed.groups:
        built = group_query(group, dropped)
        if built is not None:
            clauses.append(built)
    if not clauses:
        return None, dropped
    return (clauses[0] if len(clauses) == 1 else wq.And(clauses)), dropped


def excluded_query(parsed: ParsedQuery) -> wq.Query | None:
    """Return a query matching every document the reader excluded, or None."""
    built = [q for q in (term_query(t) for t in parsed.excluded) if q is not None]
    if not built:
        return None
    return built[0] if len(built) == 1 else wq.Or(built)


def source_query(value: str) -> wq.Query | None:
    """Return the query for a source:/site: value: every word of it in the outlet's title or host."""
    words = analyze(value.replace(".", " "), names=True)
    if not words:
        return None
    return wq.And([wq.Term("source_words", w) for w in words]) if len(words) > 1 else wq.Term("source_words", words[0])


def highlight_terms(parsed: ParsedQuery) -> tuple[set[str], list[str]]:
    """Return the stems to mark in snippets, and the folded prefixes (word*) to mark too."""
    stems: set[str] = set()
    prefixes: list[str] = []
    for group in parsed.groups:
        for term in group:
            if term.field == "author":
                continue
            if term.prefix:
                folded = _fold(term.text)
                if folded:
                    prefixes.append(folded)
            else:
                stems.update(analyze(term.text))
    return stems, prefixes


#: Index words a fuzzy term may add to the words marked in snippets, at most.
FUZZY_MARKS = 32


def fuzzy_highlight_stems(parsed: ParsedQuery, reader: Any, budget: QueryBudget) -> set[str]:
    """Return the index words the query's fuzzy terms matched, so snippets mark them too.

    Marks are found by stem: "elektion~" matched documents through the index word "elect",
    which the stem of "elektion" ("elekt") would never mark. The words come from the budget's
    listing, so a term the query already expanded is not walked again.
    """
    found: set[str] = set()
    for group in parsed.groups:
        for term in group:
            built = term_query(term) if term.fuzzy and term.field != "author" else None
            if built is None:
                continue
            for leaf in built.leaves():
                if isinstance(leaf, StemFuzzyTerm):
                    words = budget.words(reader, leaf)
                    found.update(w.decode("utf-8") for w in words[:FUZZY_MARKS])
    return found
