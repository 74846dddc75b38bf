"""The long-lived objects a process needs, built once from the config and passed explicitly."""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aggregator.config import Config
from aggregator.store import Store, open_store
from index.indexer import Indexer
from index.search.engine import IndexReader

if TYPE_CHECKING:
    from flask import Flask

    from aggregator.store_stories import SqlStoryStore
    from aggregator.stories import StoryAssigner

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

    def indexer(self, stop: threading.Event | None = None) -> Indexer:
        """Return an Indexer over this store (its writes hold the index's writer lock); ``stop`` cuts long runs short."""
        return Indexer(self.config.index_dir, self.store, stop=stop)

    @functools.cached_property
    def metrics(self) -> Metrics:
        """Return this process's Prometheus metrics (built on first use, in a registry of their own)."""
        from .metrics import Metrics

        return Metrics(self.store, self.config.index_dir, self.replica_status)

    def replica_status(self, now: datetime) -> dict[str, Any] | None:
        """Return the status of this web node's own replica (its lag behind the store), or None without one."""
        return self.follower.status(now) if self.follower is not None else None

    @functools.cached_property
    def stories(self) -> SqlStoryStore:
        """Return the stories kept in the store (one per process: it caches the recent stories' centroids)."""
        from aggregator.store_stories import SqlStoryStore

        return SqlStoryStore(self.store.engine)

    @functools.cached_property
    def story_assigner(self) -> StoryAssigner:
        """Return the story assigner over ``stories``, with the [stories] options applied."""
        from aggregator.stories import StoryAssigner, StorySettings

        hours = float(self.config.stories.quiet_period) / 3600
        return StoryAssigner(self.stories, StorySettings(quiet_period_hours=hours))

    def assign_stories(self, stop: threading.Event | None = None) -> int:
        """Assign stories to the entries stored since the last assignment (the writer calls this); return how many."""
        from aggregator.store_stories import assign_pending

        return assign_pending(self.store, self.stories, self.story_assigner, stop=stop)

    def close(self) -> None:
        """Release the database and the searcher."""
        self.reader.close()
        self.store.close()


def build_services(config: Config) -> Services:
    """Return Services for ``config``, creating the data directory and schema as needed."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(config.db_url)
    return Services(config=config, store=store, reader=IndexReader(config.index_dir))


def services_of(app: Flask) -> Services:
    """Return the Services attached to an app."""
    services: Services = app.extensions["newsdesk"]
    return services
