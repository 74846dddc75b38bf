"""A whole parsed feed -> one Entry per distinct article, with repeated and churning guids handled."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime

from ..models import Entry, FeedContext, ParsedFeed
from .entry import normalize_entry
from .identity import content_identity, repeated_guids
from .reconcile import reconcile_identities
from .text import clean_line
from .urls import article_url


def feed_context(parsed: ParsedFeed, context: FeedContext) -> FeedContext:
    """Return ``context`` with the language, xml:base and site link the document declares filled in."""
    return dataclasses.replace(
        context,
        language=context.language or parsed.language,
        base=context.base or parsed.base,
        site_url=context.site_url or parsed.site_url,
    )


def normalize_feed(
    parsed: ParsedFeed,
    context: FeedContext,
    *,
    future_tolerance_seconds: float = 600.0,
    previous_identities: Mapping[str, str] | None = None,
    first_seen: Mapping[str, datetime] | None = None,
) -> list[Entry]:
    """Return the clean Entries of a parsed feed, one per distinct id, in document order.

    ``future_tolerance_seconds``: dates later than the fetch time plus this are clamped to the
    fetch time and flagged "future_date_clamped".
    ``previous_identities``: canonical URL -> identity of the entries already stored for this feed;
    an entry whose guid is new but whose URL is known keeps the stored identity (flag "guid_changed"),
    so feeds that mint new guids on every fetch do not duplicate their items.
    ``first_seen``: entry id -> when we first saw it; used as the date of entries that carry none.
    """
    context = feed_context(parsed, context)
    shared = repeated_guids(parsed.entries)
    entries: dict[str, Entry] = {}
    for item in parsed.entries:
        identity = None
        if item.guid and item.guid.strip() in shared:
            # The guid names many items here, so it names none: fall back to the link, then content.
            base = context.site_url or context.feed_url
            identity = article_url(item.link, item.original_link, base) or content_identity(
                clean_line(item.title), item.published_raw or item.updated_raw
            )
        entry = normalize_entry(item, context, identity=identity, future_tolerance_seconds=future_tolerance_seconds)
        flags = list(entry.flags)
        if identity is not None:
            flags.append("guid_repeated")
        if flags != list(entry.flags):
            entry = dataclasses.replace(entry, flags=tuple(flags))
        # The same item twice in one document (same guid, link and title) is one entry: keep the first.
        entries.setdefault(entry.id, entry)
    result = list(entries.values())
    if previous_identities:
        result = reconcile_identities(result, previous_identities)
    if first_seen:
        result = [
            dataclasses.replace(e, published_at=first_seen[e.id])
            if "date_missing" in e.flags and e.id in first_seen
            else e
            for e in result
        ]
    return result
