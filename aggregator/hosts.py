"""Hosts: a feed's stand-in title from its host, and per-host politeness (N requests in flight, a delay between starts)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit


def host_title(url: str) -> str:
    """Return a readable stand-in title for a feed: its host name, or the file name."""
    parts = urlsplit(url)
    if parts.hostname:
        return parts.hostname.removeprefix("www.")
    return Path(parts.path or url).name or url


def display_title(config_title: str | None, document_title: str | None, url: str) -> str:
    """Return the title a feed is shown under: the config's, else its document's, else its host (``host_title``)."""
    return config_title or document_title or host_title(url)


def site_host(url: str | None) -> str:
    """Return the host of a URL without a leading www., lower-cased ("" when none, or the URL is malformed).

    An article's outlet and the `site:` of search and related coverage. Hosts are few: each scheme and
    host is parsed once, not once per URL. The cache is keyed by what comes before the URL's path, query
    or fragment, which is all that `urlsplit` reads a host from (a URL without "//" has no host to cut).
    """
    url = url or ""
    start = url.find("//")
    if start >= 0:
        ends = [i for i in (url.find("/", start + 2), url.find("?", start + 2), url.find("#", start + 2)) if i >= 0]
        if ends:
            url = url[: min(ends)]
    return _parsed_host(url)


@lru_cache(maxsize=16384)
def _parsed_host(url: str) -> str:
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:  # a malformed URL (a bad IPv6 literal) has no usable host
        host = ""
    return host.removeprefix("www.")


def host_of(url: str) -> str:
    """Return the host name politeness is keyed by ("" for local files)."""
    return (urlsplit(url).hostname or "").lower()


class HostLimiter:
    """Grants request slots per host name; thread-safe.

    Keyed by host *name*, not address: 200 feeds on one site share its limits even when its
    name resolves to many addresses, which is the load the site's operator actually sees.
    """

    def __init__(self, per_host: int, min_delay: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        #: Requests allowed in flight to one host.
        self.per_host = per_host
        #: Seconds between two request starts to one host.
        self.min_delay = min_delay
        self._clock = clock
        self._cond = threading.Condition()
        self._in_flight: dict[str, int] = {}
        self._next_start: dict[str, float] = {}
        #: Highest number of requests seen in flight to each host (for tests and benchmarks).
        self.peak: dict[str, int] = {}

    def try_acquire(self, host: str) -> float:
        """Take a slot for ``host`` and return 0, or return seconds until one may free up (inf: when one ends)."""
        if not host:
            return 0.0  # local files: nobody to be polite to
        with self._cond:
            now = self._clock()
            if self._in_flight.get(host, 0) >= self.per_host:
                return float("inf")
            wait = self._next_start.get(host, 0.0) - now
            if wait > 0:
                return wait
            count = self._in_flight.get(host, 0) + 1
            self._in_flight[host] = count
            self.peak[host] = max(self.peak.get(host, 0), count)
            self._next_start[host] = now + self.min_delay
            return 0.0

    def release(self, host: str) -> None:
        """Give back a slot taken for ``host``."""
        if not host:
            return
        with self._cond:
            count = self._in_flight.get(host, 0) - 1
            if count > 0:
                self._in_flight[host] = count
            else:
                self._in_flight.pop(host, None)
            self._cond.notify_all()

    def hold(self, host: str) -> AbstractContextManager[None]:
        """Block until a slot for ``host`` is free, hold it for the block, then give it back."""
        return holding_slot(self.try_acquire, self.release, self._cond, host)

    def in_flight(self, host: str) -> int:
        """Return how many requests to ``host`` are in flight now."""
        with self._cond:
            return self._in_flight.get(host, 0)


class HostSlots(Protocol):
    """What the poller needs of a per-host limiter: this process's (HostLimiter) or all pollers' (SharedHostLimiter)."""

    #: Highest number of requests this process had in flight to each host.
    peak: dict[str, int]

    def try_acquire(self, host: str) -> float:
        """Take a slot for ``host`` and return 0, or return seconds until one may free up."""
        ...

    def release(self, host: str) -> None:
        """Give back a slot taken for ``host``."""
        ...

    def hold(self, host: str) -> AbstractContextManager[None]:
        """Block until a slot for ``host`` is free and hold it for the block."""
        ...


@contextmanager
def holding_slot(
    try_acquire: Callable[[str], float], release: Callable[[str], None], cond: threading.Condition, host: str
) -> Iterator[None]:
    """Wait (on ``cond``) until ``try_acquire(host)`` answers 0, hold the slot for the block, then release it."""
    while True:
        wait = try_acquire(host)
        if wait == 0:
            break
        with cond:
            # Bounded: a release between try_acquire and wait would otherwise be missed.
            cond.wait(timeout=min(wait, 0.25))
    try:
        yield
    finally:
        release(host)
