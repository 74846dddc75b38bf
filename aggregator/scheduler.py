"""APScheduler wiring only: a periodic job that polls due feeds, then calls back; config reload.

The polling state (next check, backoff, validators) lives in the store, not in APScheduler, so a
restart neither re-polls everything at once nor forgets a backoff: the job just asks the store
which feeds are due on every tick.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.background import BackgroundScheduler

from .config import Config, load_config
from .configfeeds import sync_config_feeds
from .errors import NewsdeskError
from .observe import PollObserver
from .poller import PROCESS_POOL_MIN_FEEDS, Poller
from .store import Store

log = logging.getLogger("newsdesk.scheduler")

JOB_ID = "poll-due"


def poll_due(store: Store, config: Config, after: Callable[[], None] | None = None) -> int:
    """Check every feed that is due now, then run ``after``; return how many feeds were checked."""
    with Poller(store, config) as poller:
        return PollJob(store, config, after, poller=poller)()


class PollJob:
    """The scheduler's job: poll the feeds due at each tick with a long-lived Poller; reloadable."""

    def __init__(
        self,
        store: Store,
        config: Config,
        after: Callable[[], None] | None = None,
        *,
        poller: Poller | None = None,
        observer: PollObserver | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        #: The store feeds and their polling state come from.
        self.store = store
        #: The configuration in effect (replaced by ``reload``).
        self.config = config
        #: Called after each tick that checked feeds (e.g. to catch the index up).
        self.after = after
        #: Handed to every Poller this job builds (metrics in `newsdesk run`).
        self.observer = observer
        self._poller = poller
        self._lock = threading.Lock()
        #: Set by ``stop()``, or by whoever shares it (the process's stop signal): ticks then do nothing,
        #: and a poll in progress starts no more checks.
        self.stopping = stop if stop is not None else threading.Event()
        if poller is not None:
            poller.stopping = self.stopping
        # How many calls are running (a tick, and the ``after`` callback it runs), for ``wait_idle``.
        self._running = 0
        self._idle = threading.Condition()

    def __call__(self) -> int:
        """Check the feeds due now and return how many were checked."""
        if self.stopping.is_set():
            return 0
        with self._idle:
            self._running += 1
        try:
            return self._tick()
        finally:
            with self._idle:
                self._running -= 1
                self._idle.notify_all()

    def _tick(self) -> int:
        with self._lock:
            if self.stopping.is_set():
                return 0
            due = self.store.due_feeds(datetime.now(UTC))
            if due:
                if self._poller is None:
                    self._poller = Poller(self.store, self.config, observer=self.observer, stop=self.stopping)
                results = self._poller.poll(due)
                if not self.stopping.is_set():  # after a stop, the feeds not reached are not failures
                    failed = sum(1 for r in results if r.error)
                    log.info("tick checked=%d failed=%d", len(results), failed)
            if self._poller is not None and len(due) < PROCESS_POOL_MIN_FEEDS and not self.stopping.is_set():
                # Steady state is a few feeds per tick, parsed inline: idle workers would only hold memory.
                self._poller.release_workers()
        if due and self.after is not None and not self.stopping.is_set():
            self.after()
        return len(due)

    def stop(self) -> None:
        """Start no more checks: a tick in progress ends once its checks in flight do (callable from any thread)."""
        self.stopping.set()  # the poller shares the event

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the running tick to end; return whether none is running."""
        with self._idle:
            return self._idle.wait_for(lambda: self._running == 0, timeout=max(0.0, timeout))

    def reload(self, config: Config) -> None:
        """Adopt a new configuration: sync its feeds into the store and rebuild the poller."""
        sync_config_feeds(self.store, config)
        with self._lock:
            self.config = config
            if self._poller is not None:
                self._poller.close()
                self._poller = None
        log.info("configuration reloaded: %d configured feeds", len(config.feeds))

    def close(self) -> None:
        """Release the poller (HTTP client, worker processes)."""
        with self._lock:
            if self._poller is not None:
                self._poller.close()
                self._poller = None


def build_scheduler(
    store: Store,
    config: Config,
    *,
    after_poll: Callable[[], None] | None = None,
    tick_seconds: float = 15,
    observer: PollObserver | None = None,
    stop: threading.Event | None = None,
) -> BackgroundScheduler:
    """Return a (not yet started) scheduler that polls due feeds every ``tick_seconds``; ``stop`` ends its polls."""
    # One scheduler per process, in-memory job store: polling state lives in our own store,
    # so APScheduler's job stores are never shared between processes.
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.add_job(
        PollJob(store, config, after_poll, observer=observer, stop=stop),
        "interval",
        seconds=tick_seconds,
        id=JOB_ID,
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(UTC),
    )
    return scheduler


def stop_scheduler(scheduler: BackgroundScheduler, *, grace: float) -> bool:
    """Stop the scheduler and its poll job, waiting at most ``grace`` seconds; return whether the job ended.

    Safe to call again (a second SIGTERM, a ``finally`` after a signal handler): APScheduler's own
    shutdown raises SchedulerNotRunningError the second time.
    """
    try:
        job: PollJob | None = poll_job(scheduler)
    except LookupError:
        job = None
    if scheduler.running:
        try:
            scheduler.shutdown(wait=False)
        except SchedulerNotRunningError:  # stopped meanwhile by another thread
            pass
    if job is None:
        return True
    job.stop()
    if not job.wait_idle(grace):
        return False
    job.close()
    return True


def poll_job(scheduler: BackgroundScheduler) -> PollJob:
    """Return the PollJob a scheduler from ``build_scheduler`` runs."""
    job = scheduler.get_job(JOB_ID)
    if job is None or not isinstance(job.func, PollJob):
        raise LookupError("this scheduler was not built by build_scheduler")
    return job.func


def reload_config(scheduler: BackgroundScheduler, config_path: str | Path) -> Config | None:
    """Re-read the config file and apply it to the running poll job; return it, or None when invalid.

    An invalid file is logged and ignored: the running configuration stays in effect.
    """
    try:
        config = load_config(config_path)
    except NewsdeskError as exc:
        log.error("configuration not reloaded, keeping the running one: %s", exc)
        return None
    job = poll_job(scheduler)
    job.reload(config)
    # Poll soon: feeds just added are due now.
    scheduler.modify_job(JOB_ID, next_run_time=datetime.now(UTC))
    return config


def install_reload_on_sighup(scheduler: BackgroundScheduler, config_path: str | Path) -> None:
    """Reload the configuration on SIGHUP (the reload itself runs on the scheduler, not in the handler)."""

    def on_sighup(signum: int, frame: Any) -> None:
        scheduler.add_job(reload_config, args=(scheduler, config_path), id="reload-config", replace_existing=True)

    signal.signal(signal.SIGHUP, on_sighup)
