"""Pure polling decisions: given a feed's state, what a check saw and ``now``, what happens next."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from .models import Feed, FeedUpdate


@dataclass(frozen=True)
class PollingPolicy:
    """The polling options the decisions depend on (seconds)."""

    #: Shortest adaptive interval.
    min_interval: float = 300
    #: Longest adaptive interval.
    max_interval: float = 86400
    #: Interval when the publishing rate is unknown.
    default_interval: float = 3600
    #: Random spread, a fraction of the interval.
    jitter: float = 0.1
    #: Longest backoff.
    backoff_cap: float = 86400


def next_interval(feed: Feed, policy: PollingPolicy) -> float:
    """Return seconds until the next check of a healthy feed."""
    if feed.interval_seconds:
        return float(feed.interval_seconds)
    return min(max(policy.default_interval, policy.min_interval), policy.max_interval)


def decide_success(
    feed: Feed,
    *,
    status: int,
    now: datetime,
    policy: PollingPolicy,
    rng: random.Random,
    etag: str | None = None,
    last_modified: str | None = None,
    title: str | None = None,
    site_url: str | None = None,
) -> FeedUpdate:
    """Return the update after a 200 or 304."""
    interval = next_interval(feed, policy) * (1 + rng.uniform(-policy.jitter, policy.jitter))
    return FeedUpdate(
        checked_at=now,
        status=status,
        error=None,
        success=True,
        next_check_at=now + timedelta(seconds=interval),
        consecutive_failures=0,
        etag=etag,
        last_modified=last_modified,
        title=title,
        site_url=site_url,
    )


def decide_failure(
    feed: Feed, *, status: int | None, error: str, now: datetime, policy: PollingPolicy, rng: random.Random
) -> FeedUpdate:
    """Return the update after a failed check: exponential backoff with jitter, capped."""
    failures = feed.consecutive_failures + 1
    base = next_interval(feed, policy)
    delay = min(base * 2 ** min(failures - 1, 20), policy.backoff_cap)
    delay *= 1 + rng.uniform(0, policy.jitter)
    disable = "the server answered 410 Gone: the feed no longer exists" if status == 410 else None
    return FeedUpdate(
        checked_at=now,
        status=status,
        error=error,
        success=False,
        next_check_at=now + timedelta(seconds=delay),
        consecutive_failures=failures,
        disable_reason=disable,
        etag=feed.etag,
        last_modified=feed.last_modified,
    )
