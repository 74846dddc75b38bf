"""What a poll tells whoever watches it (metrics, progress bars), without knowing who that is.

The aggregator knows nothing of Prometheus or terminals: the poller calls a ``PollObserver``'s
methods, and the composition root (``web/``) hands in one that feeds metrics or draws a bar.
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import FetchError
from .models import Feed, FetchResult, UpdateResult

#: Every outcome ``check_outcome`` returns, for metrics that want their label values up front.
OUTCOMES = (
    "ok",
    "unchanged",
    "not_modified",
    "http_error",
    "fetch_error",
    "parse_error",
    "store_error",
)


class PollObserver:
    """Callbacks from a poll; every method does nothing here, so observers override what they need.

    The methods are called from the poller's fetch and writer threads: implementations must be thread-safe
    and quick (they run inside the poll).
    """

    def fetched(self, feed: Feed, seconds: float, status: int | None) -> None:
        """Called when one HTTP fetch ended (``status`` None when no response came), after ``seconds``."""

    def checked(self, feed: Feed, result: UpdateResult, outcome: str) -> None:
        """Called when one feed's check is recorded; ``outcome`` is one of ``OUTCOMES``."""


class ObserverGroup(PollObserver):
    """Passes every call on to several observers, in order."""

    def __init__(self, observers: Sequence[PollObserver]) -> None:
        self.observers = tuple(observers)

    def fetched(self, feed: Feed, seconds: float, status: int | None) -> None:
        """Pass the fetch on to every observer."""
        for observer in self.observers:
            observer.fetched(feed, seconds, status)

    def checked(self, feed: Feed, result: UpdateResult, outcome: str) -> None:
        """Pass the check on to every observer."""
        for observer in self.observers:
            observer.checked(feed, result, outcome)


def check_outcome(
    fetched: FetchResult | FetchError | None, parse_error: str | None, unchanged: bool, result: UpdateResult
) -> str:
    """Return what one check came to, as one of ``OUTCOMES``.

    ``parse_error`` is the document's error (a 200 that is not a usable feed), ``unchanged`` whether the
    body was identical to the last one, and ``result`` what was recorded.
    """
    if fetched is None or isinstance(fetched, FetchError):
        # No usable answer: network, timeouts, size limits, redirect loops.
        return "fetch_error"
    if fetched.status == 304:
        return "not_modified"
    if fetched.status != 200:
        # The server answered with an error status (404, 410, 429, 5xx...).
        return "http_error"
    if parse_error is not None:
        return "parse_error"
    if result.error is not None:
        # The fetch and the parse went well: only storing the check can have failed.
        return "store_error"
    return "unchanged" if unchanged else "ok"
