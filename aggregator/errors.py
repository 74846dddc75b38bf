"""The exception tree: one root, a few branches, third-party errors chained."""

from __future__ import annotations


class NewsdeskError(Exception):
    """Root of every error Newsdesk raises on purpose."""


class ConfigError(NewsdeskError):
    """The configuration file (or a value given on the command line) is invalid."""


class FeedError(NewsdeskError):
    """Something went wrong with one feed; ``url`` says which."""

    def __init__(self, url: str, message: str) -> None:
        super().__init__(f"{url}: {message}")
        #: The feed URL the error is about.
        self.url = url
        #: The message without the URL prefix, for status pages.
        self.message = message


class FetchError(FeedError):
    """The feed could not be fetched (network, HTTP status, limits)."""

    def __init__(self, url: str, message: str, *, status: int | None = None) -> None:
        super().__init__(url, message)
        #: The HTTP status when there was a response, else None.
        self.status = status


class ParseError(FeedError):
    """The bytes fetched are not a feed we can read."""


class NotAFeedError(ParseError):
    """The URL answered with an HTML page (or other document) instead of a feed."""

    def __init__(self, url: str, message: str, *, alternates: tuple[str, ...] = ()) -> None:
        super().__init__(url, message)
        #: Feed URLs advertised by the page with <link rel="alternate">.
        self.alternates = alternates


class StorageError(NewsdeskError):
    """The database refused or failed an operation."""


class LeaseLost(StorageError):
    """A check finished after its feed's poll lease went to another poller: its result is dropped."""


class SearchIndexError(NewsdeskError):
    """The search index on disk could not be opened, read or written (it can be rebuilt: `newsdesk reindex`)."""


class QueryError(NewsdeskError):
    """A search or related-coverage request is invalid."""


class IndexBusyError(SearchIndexError):
    """Another process holds the index's writer lock longer than we may wait."""
