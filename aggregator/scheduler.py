"""APScheduler wiring only: a periodic job that polls due feeds, then calls back."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler

from .config import Config
from .store import Store
from .update import update_feeds

log = logging.getLogger("newsdesk.scheduler")


def poll_due(store: Store, config: Config, after: Callable[[], None] | None = None) -> int:
    """Check every feed that is due now, then run ``after``; return how many feeds were checked."""
    due = store.due_feeds(datetime.now(UTC))
    if due:
        update_feeds(store, due, config)
    if after is not None:
        after()
    return len(due)


def build_scheduler(
    store: Store, config: Config, *, after_poll: Callable[[], None] | None = None, tick_seconds: float = 15
) -> BackgroundScheduler:
    """Return a (not yet started) scheduler that polls due feeds every ``tick_seconds``."""
    # One scheduler per process, in-memory job store: polling state lives in our own store,
    # so APScheduler's job stores are never shared between processes.
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.add_job(
        poll_due,
        "interval",
        seconds=tick_seconds,
        args=(store, config, after_poll),
        id="poll-due",
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(UTC),
    )
    return scheduler
