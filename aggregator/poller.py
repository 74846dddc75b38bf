"""Checks many feeds at once: threads fetch (politely per host), processes parse, one thread writes.

    dispatcher (caller's thread) --picks a feed whose host has a free slot--> fetch threads
    fetch thread --200--> parse (worker process, or inline for small batches) --> writer thread
    fetch thread --304 / error--> writer thread

The dispatcher interleaves hosts, so 200 feeds on one site wait for that site's slots without
holding up the other sites. The writer is the store's single writer: entries and polling state
are written there, one transaction per feed.

Parsing reads what strangers wrote, so it runs in worker processes whenever a parse limit is set
(polling.parse_memory_limit, polling.parse_timeout; both are by default): a feed over either is
an error on that feed alone, its worker is replaced, and the poll goes on (aggregator/workers.py).
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import random
import select
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from typing import Any

from .config import Config
from .errors import FetchError, NewsdeskError
from .fetch import make_client
from .hosts import HostLimiter, HostSlots, host_of
from .models import Feed, FetchResult, UpdateResult
from .observe import PollObserver, check_outcome
from .policy import PollingPolicy
from .store import Store
from .update import (
    Document,
    body_digest,
    fetch_feed,
    limits_from_config,
    log_fields,
    parse_document,
    policy_from_config,
    read_body,
    safe_record,
    warm_up,
    with_article_pages,
)
from .workers import WorkerLimitError, WorkerLimits, WorkerPool, WorkerTaskError

log = logging.getLogger("newsdesk.poll")

#: Writes one finished check: (store, feed, fetched, document, checked_at, policy, rng, started) -> result.
Recorder = Callable[
    [Store, Feed, FetchResult | FetchError, Document | None, datetime, PollingPolicy, random.Random, float],
    UpdateResult,
]

#: Batches at least this large parse in worker processes (below it, a pool's start-up is not worth it).
PROCESS_POOL_MIN_FEEDS = 24


def _parse_worker_started(parent_pid: int) -> None:
    """Prepare a parse worker process: leave signals to the parent, and exit when the parent is gone."""
    # Already ignored from birth (aggregator._forkserver_signals); again in case the fork server was
    # started without that preload.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), name="newsdesk-parent-watch", daemon=True).start()


def _exit_with_parent(parent_pid: int) -> None:
    # A parent killed outright (SIGKILL, out of memory) never shuts the pool down, and a worker waits
    # for its next task forever: without this, every crash of `newsdesk run` left its workers behind.
    try:
        handle = os.pidfd_open(parent_pid)
    except (AttributeError, OSError):  # not Linux 5.3+: ask every second instead
        while _alive(parent_pid):
            time.sleep(1.0)
    else:
        select.select([handle], [], [])  # readable once the parent has exited
    os._exit(0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's (the pid was reused)
        return False
    return True


class Poller:
    """Long-lived polling machinery: one HTTP client, one host limiter, and (when useful) a process pool."""

    def __init__(
        self,
        store: Store,
        config: Config,
        *,
        parse_processes: int | None = None,
        rng: random.Random | None = None,
        observer: PollObserver | None = None,
        stop: threading.Event | None = None,
        hosts: HostSlots | None = None,
        record: Recorder | None = None,
    ) -> None:
        self.store = store
        self.config = config
        p = config.polling
        self.policy = policy_from_config(config)
        self.client = make_client(limits_from_config(config), max_connections=p.concurrency)
        #: Per-host slots (this process's own unless given, e.g. shared by all pollers); its ``peak`` shows
        #: the most requests ever in flight to each host.
        self.hosts: HostSlots = hosts or HostLimiter(p.per_host_concurrency, p.per_host_delay)
        #: Writes a finished check to the store (``safe_record``; under a poll lease for `newsdesk poller`).
        self.record: Recorder = record or safe_record
        self.rng = rng or random.Random()
        # None: decide per batch (one worker process when parse limits are set, one per core for big
        # batches on machines with more than one core). 0 parses inline, without the limits.
        self.parse_processes = parse_processes
        #: Told of every fetch and check (metrics, progress); does nothing by default.
        self.observer = observer or PollObserver()
        #: The bounds every parse worker process runs under.
        self.worker_limits = WorkerLimits(memory=int(p.parse_memory_limit), timeout=float(p.parse_timeout))
        self._pool: WorkerPool | None = None
        #: Set by ``stop()`` (or by the owner of a shared ``stop`` event, the moment a stop signal
        #: arrives): no new checks start; the ones in flight finish or are abandoned.
        self.stopping = stop if stop is not None else threading.Event()

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Release the HTTP client and stop the worker processes."""
        self.client.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def stop(self) -> None:
        """Start no more checks (callable from any thread); a poll in progress returns once its checks in flight end.

        Checks that never started are not recorded, so those feeds stay due and are checked at the
        next start; a check whose parse the stop cut short is abandoned the same way.
        """
        self.stopping.set()

    def release_workers(self) -> None:
        """Stop the parse worker processes (they start again when a big batch needs them)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def worker_pids(self) -> list[int]:
        """Return the process ids of the parse workers now running (empty when parsing inline)."""
        if self._pool is None:
            return []
        return self._pool.pids()

    def __enter__(self) -> Poller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _parse_pool(self, batch: int) -> WorkerPool | None:
        workers = self.parse_processes
        if workers is None:
            cores = os.cpu_count() or 1
            limited = bool(self.worker_limits.memory or self.worker_limits.timeout)
            # Only a separate process can be stopped, or capped in memory, without stopping the poll.
            workers = cores if cores > 1 and batch >= PROCESS_POOL_MIN_FEEDS else 1 if limited else 0
        if workers <= 0:
            return None
        if self._pool is None:
            # forkserver, not fork: the poller runs beside web and scheduler threads, and forking a
            # threaded process can copy a held lock into the child.
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["aggregator._forkserver_signals", "aggregator._preload"])
            self._pool = WorkerPool(workers, self.worker_limits, context, initializer=warm_up)
        return self._pool

    # ------------------------------------------------------------------ polling

    def poll(self, feeds: Iterable[Feed]) -> list[UpdateResult]:
        """Check every feed given, now, and return one result per feed in input order."""
        feeds = list(feeds)
        if not feeds:
            return []
        results: list[UpdateResult | None] = [None] * len(feeds)
        queues: dict[str, deque[int]] = {}
        for index, feed in enumerate(feeds):
            queues.setdefault(host_of(feed.url), deque()).append(index)
        run = _Run(self, feeds, results, self._parse_pool(len(feeds)))
        try:
            run.dispatch(queues)
        finally:
            run.shutdown()
        return [
            r if r is not None else UpdateResult(url=f.url, status=None, error="not checked")
            for r, f in zip(results, feeds, strict=True)
        ]


class _Run:
    """The state of one ``Poller.poll`` call."""

    def __init__(
        self, poller: Poller, feeds: list[Feed], results: list[UpdateResult | None], pool: WorkerPool | None
    ) -> None:
        self.poller = poller
        self.feeds = feeds
        self.results = results
        self.pool = pool
        concurrency = poller.config.polling.concurrency
        self.concurrency = concurrency
        self.fetchers = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="newsdesk-fetch")
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="newsdesk-write")
        self.wake = threading.Condition()
        self.in_flight = 0
        #: Checks started (fetch submitted) and checks ended (recorded or abandoned).
        self.started = 0
        self.finished = 0
        # Bodies fetched but not yet parsed. Fetching outruns parsing, so without a bound every body of
        # a big poll would wait in memory; at the bound the dispatcher stops starting fetches.
        self.backlog = 0
        workers = pool.max_workers if pool is not None else 0
        self.max_backlog = max(2, 3 * workers)
        #: New or changed entries one check takes at most.
        self.max_new = poller.config.polling.max_entries_per_check

    def dispatch(self, queues: dict[str, deque[int]]) -> None:
        hosts = self.poller.hosts
        order = list(queues)
        turn = 0
        stopping = self.poller.stopping
        with self.wake:
            while self.finished < len(self.feeds):
                if stopping.is_set():
                    # Stop starting checks; wait only for the ones in flight.
                    if self.finished >= self.started:
                        break
                    self.wake.wait(timeout=0.5)
                    continue
                soonest = float("inf")
                if order:
                    # Round-robin over hosts so one big site never starves the others.
                    turn %= len(order)
                    rotated = order[turn:] + order[:turn]
                    turn += 1
                    for host in rotated:
                        if self.in_flight >= self.concurrency or self.backlog >= self.max_backlog:
                            break
                        queue = queues[host]
                        wait = hosts.try_acquire(host)
                        if wait:
                            soonest = min(soonest, wait)
                            continue
                        index = queue.popleft()
                        if not queue:
                            del queues[host]
                            order.remove(host)
                        self.in_flight += 1
                        self.started += 1
                        self.fetchers.submit(self._fetch, index, host)
                if self.finished >= len(self.feeds):
                    break
                # Woken by a finished fetch or result; otherwise when the next host's delay is up.
                self.wake.wait(timeout=min(soonest, 0.5))

    def _fetch(self, index: int, host: str) -> None:
        feed = self.feeds[index]
        checked_at = datetime.now(UTC)
        started = time.monotonic()
        hosts = self.poller.hosts

        def gate(hop_host: str) -> AbstractContextManager[Any]:
            # The first host's slot is already ours; a redirect to another host waits for its own.
            return nullcontext() if hop_host == host else hosts.hold(hop_host)

        fetched: FetchResult | FetchError
        try:
            fetched = fetch_feed(self.poller.client, feed, self.poller.config, gate)
        except FetchError as exc:
            fetched = exc
        except Exception as exc:  # a bug must cost one feed, never the poll
            log.exception("fetch failed feed=%s", feed.url)
            fetched = FetchError(feed.url, f"internal error while fetching: {type(exc).__name__}: {exc}")
        finally:
            hosts.release(host)
            with self.wake:
                self.in_flight -= 1
                self.wake.notify_all()
        self._observe(self.poller.observer.fetched, feed, time.monotonic() - started, fetched.status)
        if isinstance(fetched, FetchResult) and fetched.status == 200:
            digest = body_digest(fetched.body)
            if feed.body_hash == digest:
                self._write(index, fetched, read_body(feed, fetched, checked_at), checked_at, started)
                return
            known = self._known(feed)
            if self.pool is None:
                self._write(index, fetched, self._read_inline(feed, fetched, checked_at, known), checked_at, started)
                return
            args = (feed, fetched.body, dict(fetched.headers), fetched.final_url, checked_at, known, self.max_new)
            with self.wake:
                self.backlog += 1
            try:
                future: Future[Document] = self.pool.submit(parse_document, *args)
            except Exception:  # the pool is shutting down or broken, or a worker could not start
                self._unqueue()
                if self.poller.stopping.is_set():
                    self._abandon()
                    return
                self._write(index, fetched, self._read_inline(feed, fetched, checked_at, known), checked_at, started)
                return
            future.add_done_callback(lambda f: self._parsed(index, fetched, f, checked_at, started, digest))
            return
        self._write(index, fetched, None, checked_at, started)

    def _read_inline(self, feed: Feed, fetched: FetchResult, checked_at: datetime, known: dict[str, str]) -> Document:
        try:
            return read_body(feed, fetched, checked_at, known, self.max_new)
        except MemoryError:
            return Document(error="parsing ran out of memory")

    def _known(self, feed: Feed) -> dict[str, str]:
        """Return the feed's item digests (items of its last document), or none if the store cannot say."""
        try:
            return self.poller.store.entry_digests(feed.id)
        except NewsdeskError as exc:  # the check goes on: every item is simply normalized again
            log.warning("poll %s", log_fields(feed=feed.url, error=f"could not read item digests: {exc}"))
            return {}

    def _parsed(
        self,
        index: int,
        fetched: FetchResult,
        future: Future[Document],
        checked_at: datetime,
        started: float,
        digest: str,
    ) -> None:
        self._unqueue()
        try:
            document = dataclasses.replace(future.result(), body_hash=digest)
        except WorkerLimitError as exc:  # over the time or memory cap, or the worker died: this feed only
            if self.poller.stopping.is_set():
                # Cancelled or cut short by the stop, not the feed's fault: checked again at the next start.
                self._abandon()
                return
            setting = {"timeout": " (polling.parse_timeout)", "memory": " (polling.parse_memory_limit)"}
            document = Document(error=f"parsing the feed {exc}{setting.get(exc.limit or '', '')}")
        except WorkerTaskError as exc:
            document = Document(error=f"internal error while reading the feed: {exc}")
        except Exception as exc:  # a bug must cost one feed, never the poll: logged, and shown on the feed
            if self.poller.stopping.is_set():
                # Cancelled or cut short by the stop, not the feed's fault: checked again at the next start.
                self._abandon()
                return
            log.exception("parse failed feed=%s", self.feeds[index].url)
            document = Document(error=f"internal error while reading the feed: {type(exc).__name__}: {exc}")
        self._write(index, fetched, document, checked_at, started)

    def _abandon(self) -> None:
        with self.wake:
            self.finished += 1
            self.wake.notify_all()

    def _unqueue(self) -> None:
        with self.wake:
            self.backlog -= 1
            self.wake.notify_all()

    def _write(
        self,
        index: int,
        fetched: FetchResult | FetchError,
        document: Document | None,
        checked_at: datetime,
        started: float,
    ) -> None:
        feed = self.feeds[index]
        if feed.full_content and isinstance(fetched, FetchResult) and document is not None and document.entries:
            # Article pages are fetched like feeds (same client, same per-host slots), off the writer thread.
            self.fetchers.submit(self._with_pages, index, fetched, document, checked_at, started)
            return
        self.writer.submit(self._record, index, fetched, document, checked_at, started)

    def _with_pages(
        self, index: int, fetched: FetchResult, document: Document, checked_at: datetime, started: float
    ) -> None:
        poller = self.poller
        try:
            entries = with_article_pages(
                poller.store, poller.client, self.feeds[index], document.entries, poller.config, poller.hosts.hold
            )
            document = dataclasses.replace(document, entries=entries)
        except Exception:  # the feed's own content is still good: store that
            log.exception("full content failed feed=%s", self.feeds[index].url)
        self.writer.submit(self._record, index, fetched, document, checked_at, started)

    def _record(
        self,
        index: int,
        fetched: FetchResult | FetchError,
        document: Document | None,
        checked_at: datetime,
        started: float,
    ) -> None:
        poller = self.poller
        try:
            self.results[index] = poller.record(
                poller.store, self.feeds[index], fetched, document, checked_at, poller.policy, poller.rng, started
            )
        except Exception as exc:
            log.exception("recording a check failed feed=%s", self.feeds[index].url)
            self.results[index] = UpdateResult(url=self.feeds[index].url, status=None, error=f"internal error: {exc}")
        finally:
            result = self.results[index]
            if result is not None:
                parse_error = document.error if document is not None else None
                outcome = check_outcome(fetched, parse_error, document is not None and document.unchanged, result)
                self._observe(poller.observer.checked, self.feeds[index], result, outcome)
            with self.wake:
                self.finished += 1
                self.wake.notify_all()

    @staticmethod
    def _observe(callback: Any, *args: Any) -> None:
        try:
            callback(*args)
        except Exception:  # watching a poll must never break it
            log.exception("a poll observer failed")

    def shutdown(self) -> None:
        self.fetchers.shutdown(wait=True)
        self.writer.shutdown(wait=True)
