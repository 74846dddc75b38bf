"""The composition root: what a process needs, built once from the config, for every role alike.

``build_services(config, role)`` opens the store and the index reader and builds, from the config,
the related-coverage finder, the rate limiter, the search ranking and query limits, and the public
URL. ``create_app`` and every CLI command get their objects here and nowhere else; what a role adds
on top (the writer's scheduler and index jobs in ``web.writer``, a web node's follower) is attached
to the same object. A new role is a new ``Role`` and the wiring it adds, not a new way to build the
store or the finder.
"""

from __future__ import annotations

import enum
import functools
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aggregator.config import Config, RelatedConfig, SearchConfig
from aggregator.store import Store, open_store
from index.indexer import Indexer
from index.related.finder import RelatedFinder
from index.related.rank import RelatedSettings
from index.search.budget import QueryLimits
from index.search.engine import IndexReader, Ranking

from .ratelimit import RateLimiter

if TYPE_CHECKING:
    from flask import Flask

    from aggregator.store_stories import SqlStoryStore
    from aggregator.stories import StoryAssigner

    from .metrics import Metrics


class Role(enum.Enum):
    """What a process is for: it decides what the process may write and what runs in it."""

    #: `run`, `poll`, `index`, `reindex`, `feeds add` and the other editing commands: polls (scheduled
    #: in `run`), writes the store, and is the only writer of the index (``web.writer``).
    WRITER = "writer"
    #: `serve`: answers web requests; reads the store and the index, never writes the index.
    WEB = "web"
    #: `serve --follow`: a web server of a scaled-out Newsdesk whose follower keeps its own index replica.
    WEB_NODE = "web node"
    #: `poller`: claims due feeds under leases and polls them; writes the store only.
    POLLER = "poller"
    #: A one-shot command that only reads (`feeds list`, `feeds export`, `search`): it writes nothing.
    READER = "reader"


def related_settings(options: RelatedConfig) -> RelatedSettings:
    """Return the related-coverage algorithm's settings with the operator's [related] options applied."""
    return RelatedSettings(
        window=float(options.window),
        exclude_same_source=options.exclude_same_source,
        max_per_source=options.max_per_source,
    )


def search_ranking(options: SearchConfig) -> Ranking:
    """Return the ranking the [search] options ask for (recency's half-life and weight)."""
    return Ranking(half_life=float(options.recency_half_life), weight=float(options.recency_weight))


def query_limits(options: SearchConfig) -> QueryLimits:
    """Return the bounds on one query's work that the [search] options set."""
    return QueryLimits(
        max_length=options.max_query_length,
        max_clauses=options.max_clauses,
        max_expansions=options.max_expansions,
        max_seconds=float(options.max_query_seconds),
    )


@dataclass
class Services:
    """The objects one process shares: store, index reader, related finder, rate limiter, ranking, public URL."""

    #: The configuration in effect.
    config: Config
    #: The database.
    store: Store
    #: Opens searchers on the live index (an index.search.engine.IndexReader; it never writes).
    index_reader: IndexReader
    #: What this process is for.
    role: Role = Role.WRITER
    #: The polling scheduler this process runs (`newsdesk run`), for /readyz; None when it runs none.
    scheduler: Any = None
    #: The index replica this web node keeps (`newsdesk serve --follow`, an index.follower.Follower), for /readyz.
    follower: Any = None
    #: When this process started watching (readiness counts a feed's lateness from here at the earliest).
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: The objects built from the config, each with the options it was built from (see ``_built``).
    _derived: dict[str, tuple[Any, Any]] = field(init=False, default_factory=dict, repr=False)
    _derived_lock: threading.Lock = field(init=False, default_factory=threading.Lock, repr=False)

    def _built(self, name: str, options: Any, build: Any) -> Any:
        # One object per process, rebuilt only when the options it was built from change (a test or a
        # reload replacing ``config``), so it never disagrees with the config in effect.
        with self._derived_lock:
            held = self._derived.get(name)
            if held is None or held[0] != options:
                held = (options, build(options))
                self._derived[name] = held
            return held[1]

    @property
    def related(self) -> RelatedFinder:
        """Return related coverage over the index reader (its caches live as long as the process)."""
        held = self.config.related.postings_in_memory
        return self._built(
            "related",
            (related_settings(self.config.related), held),
            lambda options: RelatedFinder(self.index_reader, self.store, options[0], postings_in_memory=held),
        )

    @property
    def rate_limiter(self) -> RateLimiter:
        """Return the per-client budget of the related endpoints (server.rate_limit_per_minute)."""
        return self._built("rate_limiter", self.config.server.rate_limit_per_minute, RateLimiter)

    @property
    def ranking(self) -> Ranking:
        """Return how search ranks by recency ([search] options)."""
        return search_ranking(self.config.search)

    @property
    def query_limits(self) -> QueryLimits:
        """Return the bounds on one query's work ([search] options)."""
        return query_limits(self.config.search)

    @property
    def public_url(self) -> str:
        """Return the site's configured public base URL (server.public_url), or "" to use each request's own."""
        return self.config.server.public_url

    def indexer(self, stop: threading.Event | None = None) -> Indexer:
        """Return an Indexer over this store (its writes hold the index's writer lock); ``stop`` cuts long runs short.

        Writes belong to the writer role; the other roles only ask it questions (``index_problem``).
        """
        return Indexer(self.config.index_dir, self.store, stop=stop)

    def index_problem(self) -> str | None:
        """Return what is wrong with the index on disk (missing, unreadable, an id twice), or None; reads only."""
        return self.indexer().check()

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

        return SqlStoryStore(self.store.engine, memory_stories=self.config.stories.memory_stories)

    @functools.cached_property
    def story_assigner(self) -> StoryAssigner:
        """Return the story assigner over ``stories``, with the [stories] options applied."""
        from aggregator.story_leader import story_assigner

        return story_assigner(self.config, self.stories)

    def assign_stories(self, stop: threading.Event | None = None) -> int:
        """Assign stories to the entries stored since the last assignment (the writer calls this); return how many."""
        from aggregator.story_leader import assign_stories

        return assign_stories(self.store, self.stories, self.story_assigner, stop=stop)

    def close(self) -> None:
        """Release the database and the searcher."""
        self.index_reader.close()
        self.store.close()


def build_services(
    config: Config, role: Role = Role.WRITER, *, store: Store | None = None, session: str | None = None, **extra: Any
) -> Services:
    """Return Services for ``config`` in ``role``, creating the data directory and schema as needed.

    ``store`` replaces the one opened from config.db_url (a node names itself to PostgreSQL);
    ``session`` names this process's PostgreSQL sessions ``SESSION NODE`` (see `aggregator.sessions`);
    ``extra`` sets the role's own fields (``follower``, ``scheduler``).
    """
    config.data_dir.mkdir(parents=True, exist_ok=True)
    if store is None:
        url = config.db_url
        if session is not None and url.startswith("postgresql"):
            from aggregator.pollnode import node_name
            from aggregator.sessions import with_application_name

            url = with_application_name(url, f"{session} {node_name(config)}")
        store = open_store(url)
    return Services(config=config, store=store, index_reader=IndexReader(config.index_dir), role=role, **extra)


def services_of(app: Flask) -> Services:
    """Return the Services attached to an app."""
    services: Services = app.extensions["newsdesk"]
    return services
