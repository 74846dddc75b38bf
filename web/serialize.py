"""Domain records -> JSON-ready dicts, shared by the API, the CLI and the feeds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aggregator.features import feed_warnings
from aggregator.models import Entry, Feed
from aggregator.normalize.urls import is_http_url

#: Every word ``feed_state`` returns.
FEED_STATES = ("ok", "new", "failing", "disabled", "retired")


def feed_state(*, enabled: bool, disabled_reason: str | None, checked: bool, failing: bool) -> str:
    """Return a feed's state in one word (one of FEED_STATES) from its polling facts."""
    if not enabled:
        return "retired" if disabled_reason and "410" in disabled_reason else "disabled"
    if not checked:
        return "new"
    return "failing" if failing else "ok"


def entry_link(entry: Entry) -> str | None:
    """Return the article link to hand out for an entry, or None when the feed gave no usable http(s) link."""
    # Normalization stores the site's home page as the URL of an entry flagged url_missing (it needs
    # some URL); handing that out would send readers to a home page labelled with the article's title.
    if "url_missing" in entry.flags or not is_http_url(entry.url):
        return None
    return entry.url


def site_link(url: str | None) -> str | None:
    """Return a site's link when it is an http(s) URL, else None (rows stored before feeds' links were checked)."""
    return url if is_http_url(url) else None


def iso(value: datetime | None) -> str | None:
    """Return an ISO 8601 UTC string with a Z suffix, or None."""
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def article_ref(entry: Entry) -> dict[str, Any]:
    """Return what every public list of articles says of one (search hits' copies, related items, a story's articles)."""
    return {
        "id": entry.id,
        # None when the feed gave no usable link (url_missing): entry.url is then the site's home page.
        "url": entry_link(entry),
        "title": entry.title,
        "source": entry.source.title,
        "published_at": iso(entry.published_at),
    }


def entry_json(entry: Entry, *, full: bool = False) -> dict[str, Any]:
    """Return the public JSON form of an entry (the `inspect --json` contract)."""
    data: dict[str, Any] = {
        "id": entry.id,
        # None when the feed gave no usable link (url_missing): entry.url is then the site's home page.
        "url": entry_link(entry),
        "title": entry.title,
        "authors": list(entry.authors),
        "published_at": iso(entry.published_at),
        "updated_at": iso(entry.updated_at),
        "summary": entry.summary,
        "text": entry.text,
        "image": {"url": entry.image.url, "caption": entry.image.caption} if entry.image else None,
        "tags": list(entry.tags),
        "language": entry.language,
        "word_count": entry.word_count,
        "source": {
            "feed_url": entry.source.feed_url,
            "title": entry.source.title,
            "site_url": site_link(entry.source.site_url),
        },
        "flags": list(entry.flags),
    }
    if full:
        data["content_html"] = entry.content_html
        data["fingerprint"] = entry.fingerprint
    return data


def feed_json(feed: Feed) -> dict[str, Any]:
    """Return the public JSON form of a feed and its polling state."""
    return {
        "id": feed.id,
        "url": feed.url,
        "key": feed.key,
        "title": feed.title,
        "site_url": site_link(feed.site_url),
        "tags": list(feed.tags),
        "enabled": feed.enabled,
        "disabled_reason": feed.disabled_reason,
        "last_checked_at": iso(feed.last_checked_at),
        "last_success_at": iso(feed.last_success_at),
        "last_status": feed.last_status,
        "last_error": feed.last_error,
        "consecutive_failures": feed.consecutive_failures,
        "next_check_at": iso(feed.next_check_at),
        "retry_after_until": iso(feed.retry_after_until),
        "entries_per_week": None if feed.entries_per_week is None else round(feed.entries_per_week, 2),
        "entry_count": feed.entry_count,
        "interval_seconds": feed.interval_seconds,
        "min_interval_seconds": feed.min_interval_seconds,
        "pending_redirect_url": feed.pending_redirect_url,
        "pending_redirect_count": feed.pending_redirect_count,
        "warnings": list(feed_warnings(feed)),
    }
