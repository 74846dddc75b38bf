"""Facet counts for the current result set: outlets, tags, languages and date ranges."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from .doctable import DocTable, IntArray

#: Date facet buckets: (key, label, how far back), newest first; each counts results within it.
DATE_BUCKETS = (
    ("day", "Past 24 hours", timedelta(days=1)),
    ("week", "Past week", timedelta(days=7)),
    ("month", "Past month", timedelta(days=31)),
    ("year", "Past year", timedelta(days=366)),
)


@dataclass(frozen=True)
class FacetValue:
    """One value of a facet and how many results carry it."""

    #: The value as filtered on (outlet name, tag, language code, or a date bucket key).
    value: str
    #: Results with this value.
    count: int
    #: Text for readers (the value itself, or a bucket's label).
    label: str = ""


@dataclass(frozen=True)
class Facets:
    """Counts of each facet value over every result of the current query (before collapsing)."""

    #: Outlets, most results first.
    sources: tuple[FacetValue, ...] = ()
    #: Tags, most results first.
    tags: tuple[FacetValue, ...] = ()
    #: Languages, most results first.
    languages: tuple[FacetValue, ...] = ()
    #: Results within each recent period (cumulative: the past week includes the past day).
    dates: tuple[FacetValue, ...] = ()


def _top(counts: IntArray, values: list[str], limit: int) -> tuple[FacetValue, ...]:
    nonzero = np.flatnonzero(counts)
    keep = limit + 1  # one more than shown: the code of an empty value (there is at most one) is dropped below
    if len(nonzero) > keep:
        # Only codes counted at least as often as the keep-th most counted can be shown (ties at the cut
        # all stay, so the order below is the one over every code): not thousands of sources sorted in Python.
        present = counts[nonzero]
        cut = np.partition(present, len(present) - keep)[len(present) - keep]
        nonzero = nonzero[present >= cut]
    # Most results first; equal counts alphabetically, so the order is stable between requests.
    ordered = sorted(nonzero.tolist(), key=lambda code: (-int(counts[code]), values[code]))
    return tuple(FacetValue(values[c], int(counts[c]), values[c]) for c in ordered if values[c])[:limit]


def count_facets(table: DocTable, docs: IntArray, now: datetime, *, limit: int = 12) -> Facets:
    """Return facet counts for the documents ``docs`` (global document numbers)."""
    if len(docs) == 0:
        return Facets()
    sources = np.bincount(table.source_codes[docs], minlength=len(table.source_values))
    languages = np.bincount(table.language_codes[docs], minlength=len(table.language_values))
    if len(table.tag_docs):
        member = np.zeros(table.size, dtype=bool)
        member[docs] = True
        tag_codes = table.tag_codes[member[table.tag_docs]]
        tags = np.bincount(tag_codes, minlength=len(table.tag_values))
    else:
        tags = np.zeros(0, dtype=np.int64)
    published = table.published[docs]
    now_ts = int(now.timestamp())
    dates = tuple(
        FacetValue(key, int(np.count_nonzero(published >= now_ts - int(span.total_seconds()))), label)
        for key, label, span in DATE_BUCKETS
    )
    return Facets(
        sources=_top(sources, table.source_values, limit),
        tags=_top(tags, table.tag_values, limit),
        languages=_top(languages, table.language_values, limit),
        dates=dates,
    )
