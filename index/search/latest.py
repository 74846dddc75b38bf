"""The newest entries of the live index, for the front page: all feeds, or the feeds of one topic.

Search lists nothing for an empty query (a search box submitted empty should not list the whole
archive), so "what is new" is asked here instead. The cost is a partial sort of the publication
dates held in memory (index.search.doctable), never a pass over the store's rows.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
from numpy.typing import NDArray

from .doctable import DocTable, IntArray
from .engine import IndexReader, first_by_date


def newest_ids(reader: IndexReader, limit: int, *, feed_keys: Collection[str] | None = None) -> list[str]:
    """Return the ids of the ``limit`` newest entries, newest first, one per near-duplicate group.

    With ``feed_keys``, only entries of those feeds count (an empty collection finds nothing).
    """
    if limit < 1 or (feed_keys is not None and not feed_keys):
        return []
    with reader.lease() as searcher:  # read under a lease: one thread reads the index at a time
        if searcher is None:
            return []
        table = reader.tables.table(searcher)
        docs = reader.tables.alive(searcher)[0]
    if feed_keys is not None:
        codes = [code for code, key in enumerate(table.feed_values) if key in feed_keys]
        docs = docs[np.isin(table.feed_codes[docs], codes)]
    if len(docs) == 0:
        return []
    # Copies of one wire story arrive together; look a few places past the limit so that dropping
    # them still leaves ``limit`` entries, and widen the look only when that was not enough.
    take = min(len(docs), limit * 4)
    while True:
        ranked = _newest_first(table, docs, take)
        chosen = _one_per_group(table.group_codes, ranked, limit)
        if len(chosen) >= limit or take >= len(docs):
            return [table.ids[int(doc)] for doc in chosen]
        take = min(len(docs), take * 4)


def _newest_first(table: DocTable, docs: IntArray, take: int) -> IntArray:
    """Return the ``take`` newest of ``docs`` in order (ties by id, so the order is stable), and any tied
    with the take-th."""
    docs = first_by_date(table, docs, take, newest=True)
    order = np.lexsort((table.id_rank[docs], -table.published[docs]))
    return docs[order]


def _one_per_group(group_codes: NDArray[np.int32], ranked: IntArray, limit: int) -> list[int]:
    """Return at most ``limit`` documents of ``ranked``, keeping the first of each near-duplicate group."""
    seen: set[int] = set()
    chosen: list[int] = []
    for doc, group in zip(ranked.tolist(), group_codes[ranked].tolist(), strict=True):
        if group in seen:
            continue
        seen.add(group)
        chosen.append(doc)
        if len(chosen) == limit:
            break
    return chosen
