"""The writer role: the one process that assigns stories and writes the index after polls store entries.

`newsdesk run` is the writer with a scheduler: its polls call ``Writer.catch_up`` when they have
stored something, an interval job catches up with entries other processes stored, and a slower one
merges index segments. `poll`, `index`, `reindex` and `feeds add` are one-shot writers: they call
the same methods once. Index writes also hold the index's writer lock across processes
(``index.writelock``); the lock here keeps this process's own jobs from overlapping.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from aggregator.errors import IndexBusyError, SearchIndexError

from .services import Services

#: Segments allowed before the scheduled maintenance merges them all.
MAX_SEGMENTS = 8
#: Hours between two scheduled index maintenance runs in `newsdesk run`.
MAINTENANCE_HOURS = 6

_index_log = logging.getLogger("newsdesk.index")


def assign_stories(services: Services, stop: threading.Event | None = None) -> None:
    """Assign stories to the entries stored since the last run (in change-log order), logging how many."""
    assigned = services.assign_stories(stop)
    if assigned:
        logging.getLogger("newsdesk.stories").info("stories assigned to %d new entries", assigned)


def catch_up_index(services: Services, stop: threading.Event | None = None) -> None:
    """Bring stories and the index up to date with the store's change log; a busy index is logged and left to its writer."""
    assign_stories(services, stop)
    try:
        stats = services.indexer(stop).catch_up()
    except IndexBusyError as exc:
        # Another process (`run`, `reindex`) is writing it and catches up with these changes too.
        _index_log.info("index not caught up now: %s", exc)
        return
    if stats.upserts or stats.deletes:
        _index_log.info("index caught up to seq=%d (+%d -%d)", stats.seq, stats.upserts, stats.deletes)


class Writer:
    """The index-writing jobs of one writer process, serialized by one lock."""

    def __init__(self, services: Services, stop: threading.Event | None = None) -> None:
        #: The process's services (role WRITER).
        self.services = services
        #: Set when the process is stopping: long runs end after the batch in hand.
        self.stop = stop
        #: Held while a job writes the index (catch-up or maintenance).
        self.lock = threading.Lock()

    def prepare(self) -> None:
        """At start: assign pending stories, check the index, rebuild it if missing or damaged (logged), catch up."""
        assign_stories(self.services, self.stop)
        try:
            self.services.indexer(self.stop).repair()
        except IndexBusyError as exc:
            _index_log.info("index not checked at start: %s", exc)
        except SearchIndexError:
            if self.stop is None or not self.stop.is_set():
                raise
            # A stop cut the rebuild short; the half-built generation is removed and the next start rebuilds.

    def catch_up(self) -> None:
        """Index what the store changed (after a poll); a failure is logged and retried at the next call."""
        with self.lock:
            try:
                catch_up_index(self.services, self.stop)
            except SearchIndexError as exc:
                _index_log.error("index not caught up: %s", exc)

    def catch_up_if_behind(self) -> None:
        """Catch up when the store holds changes the index lacks (stored by other processes, or a busy catch-up)."""
        if self.services.indexer().indexed_seq() < self.services.store.last_seq():
            self.catch_up()

    def maintain(self) -> bool:
        """Merge the index's segments when there are too many; return whether it did."""
        with self.lock:
            return self.services.indexer().optimize_if_needed(MAX_SEGMENTS)

    def schedule(self, scheduler: Any, tick: float) -> None:
        """Add the catch-up and maintenance jobs to a scheduler (polls call ``catch_up`` themselves)."""
        # Entries stored by other processes (`feeds add`, `poll --no-index`) or a catch-up that found
        # the index busy: the poll ticks alone would leave them unindexed until the next due feed.
        scheduler.add_job(
            self.catch_up_if_behind,
            "interval",
            seconds=max(tick, 5.0),
            id="index-catch-up",
            max_instances=1,
            coalesce=True,
        )
        scheduler.add_job(
            self.maintain, "interval", hours=MAINTENANCE_HOURS, id="index-maintenance", max_instances=1, coalesce=True
        )

    def idle(self, timeout: float) -> bool:
        """Return True once no job writes the index (waiting at most ``timeout`` seconds)."""
        if self.lock.acquire(timeout=max(timeout, 0.0)):
            self.lock.release()
            return True
        return False
