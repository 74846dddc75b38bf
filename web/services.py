"""The long-lived objects a process needs, built once from the config and passed explicitly."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aggregator.config import Config
from aggregator.store import Store, open_store
from index.indexer import Indexer
from index.search import IndexReader

if TYPE_CHECKING:
    from .metrics import Metrics


@dataclass
class Services:
    """Store, index reader and (in the writer process only) the indexer."""

    #: The configuration in effect.
    config: Config
    #: The database.
    store: Store
    #: Opens searchers on the live index.
    reader: IndexReader
    #: The polling scheduler this process runs (`newsdesk run`), for /readyz; None when it runs none.
    scheduler: Any = None
    #: The index replica this web node keeps (`newsdesk serve --follow`, an index.follower.Follower), for /readyz.
    follower: Any = None
    #: When this process started watching (readiness counts a feed's lateness from here at the earliest).
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def indexer(self) -> Indexer:
        """Return an Indexer over this store (only the single writer process may use it)."""
        return Indexer(self.config.index_dir, self.store)

    @functools.cached_property
    def metrics(self) -> Metrics:
        """Return this process's Prometheus metrics (built on first use, in a registry of their own)."""
        from .metrics import Metrics

        return Metrics(self)

    def close(self) -> None:
        """Release the database and the searcher."""
        self.reader.close()
        self.store.close()


def build_services(config: Config) -> Services:
    """Return Services for ``config``, creating the data directory and schema as needed."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(config.db_url)
    return Services(config=config, store=store, reader=IndexReader(config.index_dir))
