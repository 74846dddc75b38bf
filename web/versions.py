"""What the pages built from stored data depend on, as one comparable value (for the caches that keep them)."""

from __future__ import annotations

from collections.abc import Hashable

from index.related.finder import index_version

from .services import Services


def data_version(services: Services) -> Hashable:
    """Return the state the front page and related answers are built from: the index version, the store's
    change-log position and the story cursor (feed titles and tags change none of them)."""
    with services.index_reader.lease() as searcher:
        index = None if searcher is None else index_version(searcher)
    return (index, services.store.last_seq(), services.stories.cursor())
