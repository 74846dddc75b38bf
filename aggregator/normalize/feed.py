"""A whole parsed feed -> one Entry per distinct article, with repeated and churning guids handled."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from importlib import metadata
from operator import attrgetter
from pathlib import Path

from ..models import Entry, FeedContext, ParsedContent, ParsedEntry, ParsedFeed, ParsedMedia
from .dates import parse_feed_date
from .entry import normalize_entry
from .identity import content_identity, repeated_guids
from .limits import FEED_TITLE, URL, cap_line, fits_url, raw_line
from .reconcile import reconcile_identities
from .text import clean_line, clean_title
from .urls import article_url, canonical_url, is_http_url


def feed_title(raw: str | None) -> str:
    """Return a feed's title as one capped line of plain text ("" when it has none)."""
    # The same rules as an entry's title: a source's name is shown, indexed and served as text.
    return cap_line(clean_title(raw_line(raw, FEED_TITLE)), FEED_TITLE)


def site_link(raw: str | None, base: str | None = None) -> str | None:
    """Return a feed's site link as a canonical absolute http(s) URL, or None (javascript:, data:, too long)."""
    if not raw or not raw.strip() or len(raw) > URL * 2:
        return None
    url = canonical_url(raw.strip(), base if is_http_url(base) else None)
    return url if is_http_url(url) and fits_url(url) else None


def feed_context(parsed: ParsedFeed, context: FeedContext) -> FeedContext:
    """Return ``context`` with the language, xml:base and site link the document declares filled in."""
    return dataclasses.replace(
        context,
        language=context.language or parsed.language,
        base=context.base or parsed.base,
        site_url=context.site_url or site_link(parsed.site_url, context.feed_url),
    )


@cache
def _code_fingerprint() -> bytes:
    """Return a digest of everything normalization's output depends on besides its input.

    The normalize package's and the models' source, and the versions of the libraries that shape
    the output: any change to them makes every entry digest new, so nothing stale is reused.
    """
    digest = hashlib.blake2b(digest_size=16)
    package = Path(__file__).parent
    for path in sorted([*package.glob("*.py"), package.parent / "models.py"]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    for library in ("nh3", "lxml", "py3langid", "numpy", "trafilatura"):
        try:
            digest.update(f"{library}={metadata.version(library)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{library}=-".encode())
    return digest.digest()


_CONTENT_VALUES = attrgetter(*(f.name for f in dataclasses.fields(ParsedContent)))
_MEDIA_VALUES = attrgetter(*(f.name for f in dataclasses.fields(ParsedMedia)))
_NESTED = ("summary", "contents", "media")
_FLAT_VALUES = attrgetter(*(f.name for f in dataclasses.fields(ParsedEntry) if f.name not in _NESTED))


def item_values(item: ParsedEntry) -> tuple[object, ...]:
    """Return every value of ``item`` as nested tuples of plain values, in a fixed order.

    What repr() of the dataclasses would say, at a fraction of the cost: their generated __repr__
    runs per object in Python, with a recursion guard each time.
    """
    summary = item.summary
    return (
        _FLAT_VALUES(item),
        None if summary is None else _CONTENT_VALUES(summary),
        tuple(map(_CONTENT_VALUES, item.contents)),
        tuple(map(_MEDIA_VALUES, item.media)),
    )


def entry_digest(item: ParsedEntry, context: FeedContext, *, repeated_guid: bool, future_tolerance: float) -> str:
    """Return a digest of everything ``normalize_entry`` reads for ``item``, except the fetch time.

    Two sightings with the same digest normalize to the same record, unless that record depends
    on the fetch time (a missing or future date), which callers check on the record.
    """
    context_fields = (
        context.feed_key,
        context.feed_url,
        context.source_title,
        context.site_url,
        context.timezone,
        context.language,
        context.base,
    )
    # repr, not pickle: pickle's output depends on which equal strings happen to be one object.
    payload = repr((context_fields, repeated_guid, future_tolerance, item_values(item))).encode(
        "utf-8", "surrogatepass"
    )
    return hashlib.blake2b(_code_fingerprint() + payload, digest_size=16).hexdigest()


#: Flags of records that depend on when the entry was fetched: never reused from a digest.
TIME_DEPENDENT_FLAGS = frozenset({"date_missing", "future_date_clamped"})


@dataclass
class ChangedEntries:
    """What ``normalize_changed`` found: the records to store, and the items known already."""

    #: Clean records of the items not known by digest, in document order, one per id.
    entries: list[Entry] = field(default_factory=list)
    #: Digest of each record in ``entries`` (same order); None when the record depends on the fetch time.
    digests: list[str | None] = field(default_factory=list)
    #: (digest, stored entry id) of the items skipped because their digest was known.
    known: list[tuple[str, str]] = field(default_factory=list)
    #: New or changed items left for a later check because of the per-check cap (the oldest ones).
    deferred: int = 0


def newest_first(items: list[ParsedEntry], timezone: str) -> list[int]:
    """Return the positions of ``items``, newest date first; undated items after, in document order."""
    dated: list[tuple[float, int]] = []
    undated: list[int] = []
    for position, item in enumerate(items):
        when = parse_feed_date(item.published_raw or item.updated_raw, timezone)
        if when is None:
            undated.append(position)
        else:
            dated.append((-when.timestamp(), position))
    return [position for _, position in sorted(dated)] + undated


def normalize_changed(
    parsed: ParsedFeed,
    context: FeedContext,
    known: Mapping[str, str],
    *,
    future_tolerance_seconds: float = 600.0,
    with_digests: bool = True,
    max_new: int | None = None,
) -> ChangedEntries:
    """Return the clean Entries of a parsed feed, skipping items whose digest is in ``known``.

    ``known`` maps entry digest -> id of the stored entry that digest produced (the store keeps it
    per feed). A poll of a changed feed re-normalizes only its new and edited items; the rest are
    reported in ``known`` with their stored id. Without ``known`` this is ``normalize_feed`` plus
    the digests; ``with_digests=False`` (and no ``known``) skips computing them.
    ``max_new``: normalize at most this many new or changed items, the newest; the others are
    counted in ``deferred`` (their digests are not stored, so the next check finds them new again).
    """
    context = feed_context(parsed, context)
    shared = repeated_guids(parsed.entries)
    result = ChangedEntries()
    ids: set[str] = set()
    pending: list[tuple[ParsedEntry, bool, str | None]] = []
    for item in parsed.entries:
        repeated = bool(item.guid and item.guid.strip() in shared)
        digest = None
        if with_digests or known:
            digest = entry_digest(item, context, repeated_guid=repeated, future_tolerance=future_tolerance_seconds)
            stored_id = known.get(digest)
            if stored_id is not None:
                if stored_id not in ids:
                    ids.add(stored_id)
                    result.known.append((digest, stored_id))
                continue
        pending.append((item, repeated, digest))
    if max_new is not None and len(pending) > max_new:
        # One check's work is bounded: the newest items now, the rest on later checks.
        chosen = set(newest_first([item for item, _, _ in pending], context.timezone)[:max_new])
        result.deferred = len(pending) - len(chosen)
        pending = [p for position, p in enumerate(pending) if position in chosen]
    for item, repeated, digest in pending:
        entry = _normalize_item(item, context, repeated, future_tolerance_seconds)
        # The same item twice in one document (same guid, link and title) is one entry: keep the first.
        if entry.id in ids:
            continue
        ids.add(entry.id)
        result.entries.append(entry)
        # A capped check keeps the digest of every record it took, fetch-time dates included: the
        # store keeps an undated entry's first-seen date anyway, and without the digest the same
        # undated (or future-dated) items would be taken again on every check, the rest never.
        reusable = result.deferred or not TIME_DEPENDENT_FLAGS.intersection(entry.flags)
        result.digests.append(digest if reusable else None)
    return result


def _normalize_item(item: ParsedEntry, context: FeedContext, repeated: bool, future_tolerance: float) -> Entry:
    identity = None
    if repeated:
        # The guid names many items here, so it names none: fall back to the link, then content.
        base = context.site_url or context.feed_url
        identity = article_url(item.link, item.original_link, base) or content_identity(
            clean_line(item.title), item.published_raw or item.updated_raw
        )
    entry = normalize_entry(item, context, identity=identity, future_tolerance_seconds=future_tolerance)
    if identity is not None:
        entry = dataclasses.replace(entry, flags=(*entry.flags, "guid_repeated"))
    return entry


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
    changed = normalize_changed(
        parsed, context, {}, future_tolerance_seconds=future_tolerance_seconds, with_digests=False
    )
    result = changed.entries
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
