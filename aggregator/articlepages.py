"""Article pages for ``full_content`` feeds: a page's main text in place of the feed's summary.

Fetched like feeds (the poller's client, the same per-host slots), at most ``FULL_CONTENT_PER_CHECK``
per check, and only for entries the store does not hold yet: a stored entry keeps what its page
gave, so a summary-only feed never overwrites an article with its teaser.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable

import httpx

from .config import Config
from .errors import FetchError
from .features import unavailable_reason
from .fetch import HostGate, fetch_url
from .from_config import limits_from_config
from .models import Entry, Feed
from .normalize.fullcontent import with_full_content
from .store import Store

log = logging.getLogger("newsdesk.poll")

#: Article pages fetched per feed per check, at most; the rest wait for the next check.
FULL_CONTENT_PER_CHECK = 20
#: Fields an article page replaces, carried over to later sightings of the same entry.
_FULL_FIELDS = ("content_html", "text", "summary", "language", "word_count", "fingerprint", "flags")


def with_article_pages(
    store: Store,
    client: httpx.Client,
    feed: Feed,
    entries: Iterable[Entry],
    config: Config,
    gate: HostGate | None = None,
) -> tuple[Entry, ...]:
    """Return ``entries`` with article pages' main text in place of the feed's summaries (full_content feeds).

    New entries get their page fetched (politely, through ``gate``); entries stored with full content
    keep it, so a summary-only feed never overwrites what the page gave. Failures keep the feed's content.
    """
    entries = tuple(entries)
    stored = store.get_entries([e.id for e in entries])
    # Without the extractor, fetching article pages would only cost their publishers (the feed says why).
    budget = 0 if unavailable_reason("full_content") else FULL_CONTENT_PER_CHECK
    enriched: list[Entry] = []
    for entry in entries:
        previous = stored.get(entry.id)
        if previous is not None:
            if "full_content" in previous.flags:
                entry = dataclasses.replace(entry, **{name: getattr(previous, name) for name in _FULL_FIELDS})
            enriched.append(entry)
            continue
        if budget > 0 and "url_missing" not in entry.flags and entry.url.startswith(("http://", "https://")):
            budget -= 1
            try:
                page = fetch_url(
                    client,
                    entry.url,
                    user_agent=feed.user_agent or config.polling.user_agent,
                    limits=limits_from_config(config),
                    gate=gate,
                )
                if page.status == 200:
                    entry = with_full_content(entry, page.body, page.final_url)
            except FetchError as exc:
                log.info("full content skipped entry=%s error=%r", entry.url, exc.message)
        enriched.append(entry)
    return tuple(enriched)
