"""The `newsdesk poller` role: claim due feeds under leases, poll them politely across nodes, write the store only.

Any number of pollers run against one PostgreSQL store, on one machine or many. Each loops: claim a
batch of due feeds (``leases``), poll it with the ordinary Poller whose per-host slots are shared by
every poller (``sharedhosts``) and whose writes go through the lease check, renewing the claim while
the batch runs; sleep until a feed may be due when none is. The local timer is this loop (an
APScheduler job store is never shared between processes). Pollers never touch a search index: web
followers index from the change log.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from .config import Config
from .dberrors import describe
from .errors import NewsdeskError, StorageError
from .leases import Heartbeat, LeasedRecorder, Leases
from .observe import PollObserver
from .poller import PROCESS_POOL_MIN_FEEDS, Poller
from .sharedhosts import SharedHostLimiter
from .store import Store

log = logging.getLogger("newsdesk.poller")

#: Longest sleep between two looks for due feeds when none is due.
IDLE_SECONDS = 5.0
#: Sleep after the store failed, before trying again.
RETRY_SECONDS = 2.0


# Pollers connect as "newsdesk-poller NAME"; one that died moments ago still holds leases until they end.
_ACTIVE_POLLERS = sa.text(
    """
    SELECT substr(application_name, 17) FROM pg_stat_activity
    WHERE datname = current_database() AND application_name LIKE 'newsdesk-poller %' AND pid <> pg_backend_pid()
    UNION
    SELECT lease_owner FROM feeds WHERE lease_until > timezone('UTC', clock_timestamp()) AND lease_owner IS NOT NULL
    """
)


# `newsdesk run` and `newsdesk poll` on PostgreSQL connect as "newsdesk-writer NAME" (aggregator.sessions).
_ACTIVE_WRITERS = sa.text(
    """
    SELECT DISTINCT substr(application_name, 17) FROM pg_stat_activity
    WHERE datname = current_database() AND application_name LIKE 'newsdesk-writer %' AND pid <> pg_backend_pid()
    """
)


def active_writers(store: Store) -> list[str]:
    """Return the names of the processes polling this PostgreSQL store without leases (`newsdesk run`/`poll`)."""
    return _names(store, _ACTIVE_WRITERS, "writers")


def _names(store: Store, query: sa.TextClause, what: str) -> list[str]:
    try:
        with store.engine.connect() as conn:
            return sorted(str(name) for (name,) in conn.execute(query))
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot tell which {what} are running: {describe(exc)}") from exc


def active_pollers(store: Store) -> list[str]:
    """Return the names of the `newsdesk poller` nodes connected to this PostgreSQL store or holding leases in it."""
    return _names(store, _ACTIVE_POLLERS, "pollers")


def node_name(config: Config) -> str:
    """Return this node's name: ``node.name``, else host name and process id."""
    return config.node.name or f"{socket.gethostname()}-{os.getpid()}"


class PollNode:
    """One poller process: its leases, its shared host limits and its Poller."""

    def __init__(
        self,
        store: Store,
        config: Config,
        *,
        name: str | None = None,
        observer: PollObserver | None = None,
    ) -> None:
        #: This poller's name in leases and logs.
        self.name = name or node_name(config)
        self.store = store
        self.config = config
        self.leases = Leases(store, self.name, float(config.node.lease))
        p = config.polling
        #: Per-host slots shared with every other poller of the store.
        self.hosts = SharedHostLimiter(store.engine, p.per_host_concurrency, p.per_host_delay)
        self.recorder = LeasedRecorder(self.leases)
        self.poller = Poller(
            store,
            config,
            observer=observer,
            # None: one worker per core for big batches (the Poller's own rule).
            parse_processes=config.node.parse_workers or None,
            hosts=self.hosts,
            recorder=self.recorder,
        )
        #: Feeds this process has checked (successfully or not).
        self.checked = 0

    def close(self) -> None:
        """Stop the parse workers, close the HTTP client and give back every host slot."""
        self.poller.close()
        self.hosts.close()

    def poll_claimed(self) -> int:
        """Claim a batch of due feeds and check them; return how many were claimed (0: none was free)."""
        claim = self.leases.claim(self.config.node.claim_batch)
        if claim is None:
            return 0
        self.recorder.adopt(claim)
        with Heartbeat(self.leases, claim.token):
            results = self.poller.poll(claim.feeds)
        if len(claim.feeds) < PROCESS_POOL_MIN_FEEDS:
            self.poller.release_workers()  # trickling feeds parse inline; idle workers would only hold memory
        failed = sum(1 for r in results if r.error)
        self.checked += len(results)
        log.info("claimed=%d failed=%d node=%s", len(results), failed, self.name)
        return len(claim.feeds)

    def run(self, stop: threading.Event, *, until_idle: bool = False) -> int:
        """Poll until ``stop`` is set (or, ``until_idle``, until no feed is free to claim); return feeds checked."""
        failing = False
        while not stop.is_set():
            try:
                claimed = self.poll_claimed()
                wait = 0.0
                if not claimed:
                    if until_idle:
                        break
                    due_in = self.leases.seconds_until_claimable()
                    wait = IDLE_SECONDS if due_in is None else min(max(due_in, 0.2), IDLE_SECONDS)
                if failing:
                    log.info("poller %s: the store answers again", self.name)
                    failing = False
            except NewsdeskError as exc:
                if not failing:  # once per outage; the recovery is logged too
                    log.error("poller %s: the store failed (retrying every %.0f s): %s", self.name, RETRY_SECONDS, exc)
                failing = True
                wait = RETRY_SECONDS
            if wait:
                stop.wait(wait)
        return self.checked
