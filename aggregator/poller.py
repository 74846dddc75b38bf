"""Checks many feeds at once: threads fetch (politely per host), processes parse, one thread writes.

What one check does is ``aggregator/pipeline.py``'s stages; this module only decides where each runs:

    dispatcher (caller's thread) --picks a feed whose host has a free slot--> fetch threads
    fetch thread: fetch --new 200 body--> read (worker process, or inline for small batches)
    --> [add_article_pages on a fetch thread] --> record on the writer thread
    fetch thread: fetch --304 / error / same body--> record on the writer thread

The dispatcher interleaves hosts, so 200 feeds on one site wait for that site's slots without
holding up the other sites. The writer is the store's single writer: entries and polling state
are written there, one transaction per feed.

Parsing reads what strangers wrote, so it runs in worker processes whenever a parse limit is set
(polling.parse_memory_limit, polling.parse_timeout; both are by default): a feed over either is
an error on that feed alone, its worker is replaced, and the poll goes on (aggregator/workers.py).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import random
import select
import signal
import threading
import time
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from .config import Config
from .fetch import make_client
from .from_config import limits_from_config, policy_from_config
from .hosts import HostLimiter, HostSlots, host_of
from .models import Feed, UpdateResult
from .observe import PollObserver, check_outcome
from .pipeline import (
    FeedCheck,
    Recorder,
    add_article_pages,
    fetch,
    read,
    read_failed,
    record,
    start,
    stored_digests,
    wants_article_pages,
    warm_up,
)
from .store import Store
from .workers import WorkerLimitError, WorkerLimits, WorkerPool, WorkerTaskError

log = logging.getLogger("newsdesk.poll")

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
        recorder: Recorder | None = None,
    ) -> None:
        self.store = store
        self.config = config
        p = config.polling
        self.policy = policy_from_config(config)
        self.client = make_client(limits_from_config(config), max_connections=p.concurrency)
        #: Per-host slots (this process's own unless given, e.g. shared by all pollers); its ``peak`` shows
        #: the most requests ever in flight to each host.
        self.hosts: HostSlots = hosts or HostLimiter(p.per_host_concurrency, p.per_host_delay)
        #: The record stage: writes a finished check to the store (``pipeline.record``; under a poll lease
        #: for `newsdesk poller`).
        self.recorder: Recorder = recorder or record
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
        poller = self.poller
        hosts = poller.hosts
        check = start(self.feeds[index])

        def gate(hop_host: str) -> AbstractContextManager[Any]:
            # The first host's slot is already ours; a redirect to another host waits for its own.
            return nullcontext() if hop_host == host else hosts.hold(hop_host)

        try:
            check = fetch(check, poller.client, poller.config, gate)
        finally:
            hosts.release(host)
            with self.wake:
                self.in_flight -= 1
                self.wake.notify_all()
        status = check.fetched.status if check.fetched is not None else None
        self._observe(poller.observer.fetched, check.feed, time.monotonic() - check.started, status)
        if not check.has_new_body:  # a 304, an error, or the same body as last time: nothing to read
            self._write(index, check)
            return
        known = stored_digests(poller.store, check.feed)
        if self.pool is None:
            self._write(index, self._read_inline(check, known))
            return
        with self.wake:
            self.backlog += 1
        try:
            future: Future[FeedCheck] = self.pool.submit(read, check, known, self.max_new)
        except Exception:  # the pool is shutting down or broken, or a worker could not start
            self._unqueue()
            if poller.stopping.is_set():
                self._abandon()
                return
            self._write(index, self._read_inline(check, known))
            return
        future.add_done_callback(lambda f: self._parsed(index, check, f))

    def _read_inline(self, check: FeedCheck, known: dict[str, str]) -> FeedCheck:
        try:
            return read(check, known, self.max_new)
        except MemoryError:
            return read_failed(check, "parsing ran out of memory")

    def _parsed(self, index: int, check: FeedCheck, future: Future[FeedCheck]) -> None:
        self._unqueue()
        try:
            check = future.result()
        except WorkerLimitError as exc:  # over the time or memory cap, or the worker died: this feed only
            if self.poller.stopping.is_set():
                # Cancelled or cut short by the stop, not the feed's fault: checked again at the next start.
                self._abandon()
                return
            setting = {"timeout": " (polling.parse_timeout)", "memory": " (polling.parse_memory_limit)"}
            check = read_failed(check, f"parsing the feed {exc}{setting.get(exc.limit or '', '')}")
        except WorkerTaskError as exc:
            check = read_failed(check, f"internal error while reading the feed: {exc}")
        except Exception as exc:  # a bug must cost one feed, never the poll: logged, and shown on the feed
            if self.poller.stopping.is_set():
                # Cancelled or cut short by the stop, not the feed's fault: checked again at the next start.
                self._abandon()
                return
            log.exception("parse failed feed=%s", check.feed.url)
            check = read_failed(check, f"internal error while reading the feed: {type(exc).__name__}: {exc}")
        self._write(index, check)

    def _abandon(self) -> None:
        with self.wake:
            self.finished += 1
            self.wake.notify_all()

    def _unqueue(self) -> None:
        with self.wake:
            self.backlog -= 1
            self.wake.notify_all()

    def _write(self, index: int, check: FeedCheck) -> None:
        if wants_article_pages(check):
            # Article pages are fetched like feeds (same client, same per-host slots), off the writer thread.
            self.fetchers.submit(self._with_pages, index, check)
            return
        self.writer.submit(self._record, index, check)

    def _with_pages(self, index: int, check: FeedCheck) -> None:
        poller = self.poller
        check = add_article_pages(check, poller.store, poller.client, poller.config, poller.hosts.hold)
        self.writer.submit(self._record, index, check)

    def _record(self, index: int, check: FeedCheck) -> None:
        poller = self.poller
        result: UpdateResult | None = None
        try:
            result = poller.recorder(check, poller.store, poller.policy, poller.rng).result
        except Exception as exc:
            log.exception("recording a check failed feed=%s", check.feed.url)
            result = UpdateResult(url=check.feed.url, status=None, error=f"internal error: {exc}")
        finally:
            self.results[index] = result
            if result is not None:
                parse_error = check.normalized.error if check.normalized is not None else None
                outcome = check_outcome(check.fetched, parse_error, check.unchanged, result)
                self._observe(poller.observer.checked, check.feed, result, outcome)
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


def update_feeds(
    store: Store, feeds: Iterable[Feed], config: Config, *, observer: PollObserver | None = None
) -> list[UpdateResult]:
    """Check several feeds concurrently, politely per host, and return one result per feed, in input order."""
    with Poller(store, config, observer=observer) as poller:
        return poller.poll(feeds)
