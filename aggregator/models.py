"""Records passed between the stages: what a feed said, what we store, what an update decided.

Every datetime here is timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# --------------------------------------------------------------------------- fetch


@dataclass(frozen=True)
class FetchResult:
    """The outcome of one HTTP (or file) fetch that produced a response."""

    #: The URL we asked for.
    url: str
    #: The URL that answered after following redirects.
    final_url: str
    #: HTTP status of the final response (200 for a local file).
    status: int
    #: Decompressed body bytes (empty for 304).
    body: bytes
    #: Response headers, lower-cased names.
    headers: Mapping[str, str]
    #: Each redirect followed, in order: (status, location it pointed to).
    redirects: tuple[tuple[int, str], ...] = ()
    #: Seconds the fetch took, wall clock.
    elapsed: float = 0.0
    #: Bytes received on the wire (before decompression).
    wire_bytes: int = 0
    #: True when the request carried If-None-Match or If-Modified-Since.
    conditional: bool = False


# --------------------------------------------------------------------------- parse


@dataclass(frozen=True)
class ParsedContent:
    """One body of text as the feed carried it."""

    #: The raw value (HTML or plain text).
    value: str
    #: MIME type as declared: text/html, application/xhtml+xml, text/plain.
    type: str = "text/html"
    #: xml:base in effect for this value, if any.
    base: str | None = None
    #: xml:lang in effect for this value, if any.
    language: str | None = None


@dataclass(frozen=True)
class ParsedMedia:
    """An image or other media object the feed attached to an entry."""

    #: URL of the media object.
    url: str
    #: MIME type or medium ("image", "image/jpeg"), if given.
    type: str | None = None
    #: Caption or media:description, raw.
    caption: str | None = None
    #: Width in pixels, if given.
    width: int | None = None
    #: Height in pixels, if given.
    height: int | None = None
    #: Where it came from: "media:content", "media:thumbnail", "enclosure".
    origin: str = "media:content"


@dataclass(frozen=True)
class ParsedEntry:
    """One entry exactly as the feed said it, before any cleaning."""

    #: guid / atom:id as given, or None.
    guid: str | None
    #: The entry's link as given (may be relative or a tracking redirect).
    link: str | None
    #: feedburner:origLink, when the feed carries it.
    original_link: str | None
    #: Raw title (may contain HTML and entities).
    title: str | None
    #: MIME type of the title.
    title_type: str
    #: Raw summary/description.
    summary: ParsedContent | None
    #: Raw full contents (content:encoded, atom:content), in feed order.
    contents: tuple[ParsedContent, ...]
    #: Author strings as given (dc:creator, author name, RSS author e-mail form).
    authors: tuple[str, ...]
    #: Published date string as given.
    published_raw: str | None
    #: Updated date string as given.
    updated_raw: str | None
    #: Category terms as given.
    tags: tuple[str, ...]
    #: Media objects (media:content, media:thumbnail, enclosures).
    media: tuple[ParsedMedia, ...]
    #: xml:lang of the entry, if any.
    language: str | None
    #: xml:base of the entry, if any.
    base: str | None


@dataclass(frozen=True)
class ParsedFeed:
    """A whole feed document as feedparser read it."""

    #: Feed title, raw.
    title: str | None
    #: The site's home page (the feed's <link>).
    site_url: str | None
    #: Declared language (<language> or xml:lang).
    language: str | None
    #: <ttl> in minutes, if given.
    ttl_minutes: int | None
    #: sy:updatePeriod ("hourly", "daily", ...), if given.
    update_period: str | None
    #: sy:updateFrequency, if given.
    update_frequency: int | None
    #: xml:base of the feed element, if any.
    base: str | None
    #: Entries in document order.
    entries: tuple[ParsedEntry, ...]
    #: Feed format as feedparser names it ("rss20", "atom10", ...).
    version: str
    #: A non-fatal problem feedparser reported (bozo), in words, or None.
    warning: str | None = None


# --------------------------------------------------------------------------- normalized entry


@dataclass(frozen=True)
class Image:
    """The entry's lead image."""

    #: Absolute http(s) URL of the image.
    url: str
    #: Plain-text caption, or None.
    caption: str | None = None


@dataclass(frozen=True)
class Source:
    """Where an entry came from, as shown to readers."""

    #: URL of the feed the entry came from.
    feed_url: str
    #: The feed's display title.
    title: str
    #: The site's home page, if known.
    site_url: str | None


@dataclass(frozen=True)
class FeedContext:
    """What normalization needs to know about the feed and the fetch."""

    #: Stable key of the feed (its URL when first added); scopes entry ids.
    feed_key: str
    #: URL the feed document was fetched from (for resolving relative links).
    feed_url: str
    #: Display title for the source.
    source_title: str
    #: The site's home page, if known.
    site_url: str | None
    #: When the document was fetched (UTC); also "first seen" for new entries.
    fetched_at: datetime
    #: IANA zone name used to read dates that carry no zone.
    timezone: str = "UTC"
    #: Feed-level language, if declared.
    language: str | None = None
    #: Feed-level xml:base, if any.
    base: str | None = None


@dataclass(frozen=True)
class Entry:
    """A clean article record: what we store, index and show."""

    #: Stable id, unique across feeds (hash of feed key and identity).
    id: str
    #: Key of the feed that carried the entry.
    feed_key: str
    #: The identity the id was derived from (guid, link, or title+date hash).
    identity: str
    #: Canonical absolute URL of the article (tracking parameters removed).
    url: str
    #: Plain-text title, never empty.
    title: str
    #: Author names.
    authors: tuple[str, ...]
    #: Publication time (UTC); first-seen time when the feed gave none.
    published_at: datetime
    #: Last update time (UTC), or None.
    updated_at: datetime | None
    #: Plain-text summary, at most ~300 characters.
    summary: str
    #: Sanitized HTML for display.
    content_html: str
    #: Clean plain text without boilerplate, for indexing and snippets.
    text: str
    #: Lead image, or None.
    image: Image | None
    #: Tags as displayed (deduplicated case-insensitively).
    tags: tuple[str, ...]
    #: ISO 639-1 language code, or None when unknown.
    language: str | None
    #: Number of words in ``text``.
    word_count: int
    #: 64-bit SimHash of the clean text (signed, to fit SQL BIGINT).
    fingerprint: int
    #: Where the entry came from.
    source: Source
    #: Flags raised while normalizing, e.g. "future_date_clamped", "date_missing".
    flags: tuple[str, ...] = ()

    def content_key(self) -> tuple[Any, ...]:
        """Return the fields whose change means the entry must be updated and re-indexed."""
        return (
            self.url,
            self.title,
            self.authors,
            self.updated_at,
            self.summary,
            self.content_html,
            self.image,
            self.tags,
            self.language,
        )


# --------------------------------------------------------------------------- stored feed


@dataclass(frozen=True)
class Feed:
    """A feed as the store keeps it: configuration plus polling state."""

    #: Database id.
    id: int
    #: Stable key (the URL when first added); entry ids are scoped to it.
    key: str
    #: URL polled now (changes when a permanent redirect is adopted).
    url: str
    #: Title from config, else from the feed document, else the URL host.
    title: str | None
    #: The site's home page, from the feed document.
    site_url: str | None
    #: Operator tags from config.
    tags: tuple[str, ...] = ()
    #: False when retired (410) or disabled by the operator.
    enabled: bool = True
    #: Why the feed is disabled, in plain words.
    disabled_reason: str | None = None
    #: Per-feed polling interval in seconds from config, overriding the adaptive one.
    interval_seconds: int | None = None
    #: Per-feed User-Agent override.
    user_agent: str | None = None
    #: Zone for dates without one.
    timezone: str = "UTC"
    #: Fetch the article page for full text.
    full_content: bool = False
    #: ETag validator from the last 200.
    etag: str | None = None
    #: Last-Modified validator from the last 200.
    last_modified: str | None = None
    #: When we last tried to fetch it.
    last_checked_at: datetime | None = None
    #: When a fetch last succeeded (200 or 304).
    last_success_at: datetime | None = None
    #: HTTP status of the last attempt (304 included), None for network errors.
    last_status: int | None = None
    #: The last error in plain words, None after a success.
    last_error: str | None = None
    #: Failures in a row since the last success.
    consecutive_failures: int = 0
    #: When the feed is next due.
    next_check_at: datetime | None = None
    #: The server asked us not to come back before this time (Retry-After).
    retry_after_until: datetime | None = None
    #: A permanent-redirect target seen but not yet adopted.
    pending_redirect_url: str | None = None
    #: When that redirect was first seen.
    pending_redirect_since: datetime | None = None
    #: How many checks in a row have seen it.
    pending_redirect_count: int = 0
    #: Recent publishing rate, entries per week.
    entries_per_week: float | None = None
    #: Minimum interval the feed or server asked for (ttl, sy:*, max-age), seconds.
    min_interval_seconds: int | None = None
    #: Number of entries stored for this feed.
    entry_count: int = 0
    #: SHA-256 of the last body parsed successfully (an identical 200 is not parsed again).
    body_hash: str | None = None


@dataclass(frozen=True)
class FeedUpdate:
    """What a check of one feed decided: the new polling state to store."""

    #: When this check happened.
    checked_at: datetime
    #: HTTP status (None for a network error).
    status: int | None
    #: Plain-words error, or None on success.
    error: str | None
    #: True when the fetch succeeded (200 parsed, or 304).
    success: bool
    #: When to check next.
    next_check_at: datetime
    #: Failures in a row after this check.
    consecutive_failures: int
    #: Retry-After deadline, or None.
    retry_after_until: datetime | None = None
    #: New ETag / Last-Modified to keep (None keeps nothing).
    etag: str | None = None
    #: New Last-Modified validator.
    last_modified: str | None = None
    #: A URL to adopt as the feed's new URL (permanent redirect confirmed).
    new_url: str | None = None
    #: Pending redirect bookkeeping after this check.
    pending_redirect_url: str | None = None
    #: When the pending redirect was first seen.
    pending_redirect_since: datetime | None = None
    #: Consecutive sightings of the pending redirect.
    pending_redirect_count: int = 0
    #: Set to retire the feed (410 Gone); the reason in plain words.
    disable_reason: str | None = None
    #: Minimum interval the feed or server asked for, seconds.
    min_interval_seconds: int | None = None
    #: Title and site URL learned from the document, if any.
    title: str | None = None
    #: Site URL from the feed document.
    site_url: str | None = None


@dataclass(frozen=True)
class UpdateResult:
    """Summary of one feed update, for logs and the CLI."""

    #: The feed URL.
    url: str
    #: HTTP status, or None.
    status: int | None
    #: Entries stored for the first time.
    new_entries: int = 0
    #: Entries whose content changed.
    updated_entries: int = 0
    #: Error in plain words, or None.
    error: str | None = None
    #: Seconds spent.
    duration: float = 0.0
    #: Body bytes received.
    bytes: int = 0
    #: Extra facts worth logging.
    notes: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Change:
    """One row of the store's change log, as the indexer consumes it."""

    #: Monotonic sequence number.
    seq: int
    #: The entry id that changed.
    entry_id: str
    #: The entry as stored now, or None when it was deleted.
    entry: Entry | None
