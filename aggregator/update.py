"""The one place that wires fetch -> parse -> normalize -> store for a feed.

A check runs in three stages so the poller can spread them: ``fetch_feed`` (I/O, in a thread),
``parse_document`` (CPU, picklable, may run in a worker process) and ``record_check`` (the store
writes and the policy decision, in the single writer).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import httpx

from .config import Config
from .errors import FeedError, FetchError, NewsdeskError, NotAFeedError
from .features import feed_warnings, unavailable_reason
from .fetch import FetchLimits, HostGate, fetch_url
from .hosts import host_title
from .models import Entry, Feed, FeedContext, FetchResult, ParsedFeed, UpdateResult
from .normalize.feed import feed_title, normalize_changed, site_link
from .normalize.fullcontent import with_full_content
from .normalize.reconcile import reconcile_identities, reconcile_identity
from .observe import PollObserver
from .parse import parse_feed
from .policy import RATE_WINDOW, Check, PollingPolicy, decide, publishing_rate
from .store import Store

log = logging.getLogger("newsdesk.poll")


def limits_from_config(config: Config) -> FetchLimits:
    """Return the fetch limits the configuration asks for."""
    p = config.polling
    return FetchLimits(
        connect_timeout=p.connect_timeout,
        read_timeout=p.read_timeout,
        deadline=p.deadline,
        max_body_size=p.max_body_size,
        max_redirects=p.max_redirects,
    )


def policy_from_config(config: Config) -> PollingPolicy:
    """Return the polling policy the configuration asks for."""
    p = config.polling
    return PollingPolicy(
        min_interval=p.min_interval,
        max_interval=p.max_interval,
        default_interval=p.default_interval,
        jitter=p.jitter,
        backoff_cap=p.backoff_cap,
        redirect_adopt_checks=p.redirect_adopt_checks,
        redirect_adopt_after=p.redirect_adopt_after,
    )


def feed_context(feed: Feed, parsed: ParsedFeed, final_url: str, fetched_at: datetime) -> FeedContext:
    """Return the context normalization needs for entries of ``feed``."""
    title = feed.title
    if not title or title == host_title(feed.url):
        # Until a feed's document has named it, the store shows its host name: the document's own
        # title is the better source name from the first poll on (and stays the same on the next).
        title = feed_title(parsed.title) or title or feed.url
    feed_url = final_url if final_url.startswith("http") else feed.url
    return FeedContext(
        feed_key=feed.key,
        feed_url=feed_url,
        source_title=title,
        # The stored link is checked too: a row written before site links were may hold javascript:.
        site_url=site_link(parsed.site_url, feed_url) or site_link(feed.site_url),
        fetched_at=fetched_at,
        timezone=feed.timezone,
        language=parsed.language,
        base=parsed.base,
    )


@dataclass(frozen=True)
class Document:
    """What parsing and normalizing one fetched body gave: entries and feed hints, or an error."""

    #: Clean entries, in document order.
    entries: tuple[Entry, ...] = ()
    #: The document's title.
    title: str | None = None
    #: The document's site URL.
    site_url: str | None = None
    #: <ttl>, minutes.
    ttl_minutes: int | None = None
    #: sy:updatePeriod.
    update_period: str | None = None
    #: sy:updateFrequency.
    update_frequency: int | None = None
    #: Why the body is not a usable feed, in plain words; None when it is.
    error: str | None = None
    #: Feed URLs an HTML page advertised (when ``error`` says it is not a feed).
    alternates: tuple[str, ...] = ()
    #: True when the body is identical to the last one parsed, so it was not parsed again.
    unchanged: bool = False
    #: SHA-256 of the body, kept on success so an identical body is skipped next time.
    body_hash: str | None = None
    #: Item digest of each of ``entries`` (same order), None where the record depends on the fetch time.
    digests: tuple[str | None, ...] = ()
    #: (digest, stored entry id) of the items not normalized again because their digest was known.
    known: tuple[tuple[str, str], ...] = ()
    #: New or changed items left for later checks by polling.max_entries_per_check.
    deferred: int = 0


def fetch_feed(client: httpx.Client, feed: Feed, config: Config, gate: HostGate | None = None) -> FetchResult:
    """Return the raw response for ``feed`` (conditional on its validators), or raise FetchError."""
    return fetch_url(
        client,
        feed.url,
        etag=feed.etag,
        last_modified=feed.last_modified,
        user_agent=feed.user_agent or config.polling.user_agent,
        limits=limits_from_config(config),
        gate=gate,
    )


def parse_document(
    feed: Feed,
    body: bytes,
    headers: dict[str, str],
    final_url: str,
    fetched_at: datetime,
    known: dict[str, str] | None = None,
    max_new: int | None = None,
) -> Document:
    """Return the parsed and normalized document; raises only MemoryError (errors come back in ``Document.error``).

    ``known`` (item digest -> stored entry id, from ``Store.entry_digests``): items seen unchanged
    in the feed's last document are not normalized again. ``max_new``: at most this many new or
    changed items are normalized, the newest (``Document.deferred`` counts the rest). Module-level
    and fed only picklable records, so a process pool can run it.
    """
    try:
        parsed = parse_feed(body, headers, url=final_url)
        context = feed_context(feed, parsed, final_url, fetched_at)
        changed = normalize_changed(parsed, context, known or {}, max_new=max_new)
    except NotAFeedError as exc:
        alternates = tuple(dict.fromkeys(urljoin(final_url, a) for a in exc.alternates))
        if not alternates:
            return Document(error=exc.message)
        listed = ", ".join(alternates[:3]) + (", ..." if len(alternates) > 3 else "")
        message = (
            f"not a feed: the URL returned an HTML page that links to {len(alternates)} feed(s): {listed} "
            "(`newsdesk feeds add` on the page's URL adopts one)"
        )
        return Document(error=message, alternates=alternates)
    except FeedError as exc:
        return Document(error=exc.message)
    except MemoryError:
        raise  # the worker process that ran out is replaced (aggregator/workers.py); inline, the poll says so
    except Exception as exc:  # a bug in a parser must cost one feed, never the poll
        log.exception("parse failed feed=%s", feed.url)
        return Document(error=f"internal error while reading the feed: {type(exc).__name__}: {exc}")
    return Document(
        entries=tuple(changed.entries),
        digests=tuple(changed.digests),
        known=tuple(changed.known),
        deferred=changed.deferred,
        # Feed-level fields are as raw as an entry's (markup, control characters, javascript: links):
        # the same rules make them plain text and http(s) URLs before they are stored and served.
        title=feed_title(parsed.title) or None,
        site_url=site_link(parsed.site_url, final_url),
        ttl_minutes=parsed.ttl_minutes,
        update_period=parsed.update_period,
        update_frequency=parsed.update_frequency,
    )


_WARM_UP_FEED = b"""<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Warm-up</title>
<link>https://warm-up.example/</link><item><title>Harbour fees rise</title><link>https://warm-up.example/1</link>
<pubDate>Mon, 02 Mar 2026 09:00:00 GMT</pubDate><description><![CDATA[<p>The harbour board raised its fees
for visiting boats this spring, the first rise in years.</p><p><img src="/a.jpg" alt="Boats"></p>]]></description>
</item></channel></rss>"""


def warm_up() -> None:
    """Parse and normalize a small built-in feed, loading what the first real parse would load lazily.

    A parse worker runs this before its memory cap is set, so that the cap measures what a feed's
    parse takes, not the language model and library buffers every parse shares.
    """
    feed = Feed(id=0, key="warm-up", url="https://warm-up.example/feed", title=None, site_url=None)
    parse_document(feed, _WARM_UP_FEED, {}, feed.url, datetime.now(UTC))


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


def body_digest(body: bytes) -> str:
    """Return the SHA-256 hex digest identifying a response body."""
    return hashlib.sha256(body).hexdigest()


def read_body(
    feed: Feed,
    fetched: FetchResult,
    fetched_at: datetime,
    known: dict[str, str] | None = None,
    max_new: int | None = None,
) -> Document:
    """Return the Document for a 200 in this thread, skipping the parse when the body is unchanged."""
    digest = body_digest(fetched.body)
    if feed.body_hash == digest:
        # Servers without validators resend the same bytes: parsing them again would change nothing.
        return Document(unchanged=True, body_hash=digest)
    document = parse_document(feed, fetched.body, dict(fetched.headers), fetched.final_url, fetched_at, known, max_new)
    return dataclasses.replace(document, body_hash=digest)


def item_digests(document: Document, stored: dict[str, str]) -> dict[str, str]:
    """Return item digest -> entry id for every item of ``document``, ids as the store will hold them."""
    digests = dict(document.known)
    for entry, digest in zip(document.entries, document.digests, strict=False):
        if digest is not None:
            # The id after the guid-churn remap, as save_entries will store it.
            digests[digest] = reconcile_identity(entry, stored).id
    return digests


def without_validators(headers: Mapping[str, str]) -> dict[str, str]:
    """Return response headers without ETag and Last-Modified (a conditional request would get a 304)."""
    return {name: value for name, value in headers.items() if name.lower() not in ("etag", "last-modified")}


def log_fields(**fields: Any) -> str:
    """Return ``key=value`` pairs for a log line, quoting values that need it."""
    parts = []
    for key, value in fields.items():
        if value is None:
            continue
        text = f"{value:.3f}" if isinstance(value, float) else str(value)
        if not text or any(c in text for c in ' "='):
            text = json.dumps(text, ensure_ascii=False)
        parts.append(f"{key}={text}")
    return " ".join(parts)


def record_check(
    store: Store,
    feed: Feed,
    fetched: FetchResult | FetchError,
    document: Document | None,
    *,
    checked_at: datetime,
    policy: PollingPolicy,
    rng: random.Random,
    duration: float = 0.0,
) -> UpdateResult:
    """Store what one check found (entries, then polling state) in one transaction; return its summary."""
    # One commit for the entries, digests and polling state: all of the check lands, or none of it.
    with store.transaction():
        new = updated = 0
        rate: float | None = None
        if isinstance(fetched, FetchError):
            check = Check(status=fetched.status, headers={}, error=fetched.message)
        elif fetched.status == 200 and document is not None and document.unchanged:
            check = Check(status=200, headers=fetched.headers, redirects=fetched.redirects, same_document=True)
        elif fetched.status == 200 and document is not None and document.error is None:
            # Feeds that mint a new guid on every fetch would duplicate their items: known URLs keep
            # their stored identity (decided here, in the single writer, which alone knows the store).
            stored = store.stored_identities(feed.id)
            entries = reconcile_identities(document.entries, stored)
            new, updated = store.save_entries(
                feed.id, entries, seen_at=checked_at, digests=item_digests(document, stored)
            )
            rate = publishing_rate(store.recent_publication_dates(feed.id, checked_at - RATE_WINDOW), checked_at)
            check = Check(
                status=200,
                headers=without_validators(fetched.headers) if document.deferred else fetched.headers,
                redirects=fetched.redirects,
                ttl_minutes=document.ttl_minutes,
                update_period=document.update_period,
                update_frequency=document.update_frequency,
                entries_per_week=rate,
                title=document.title,
                site_url=document.site_url,
            )
        elif fetched.status == 200:
            error = document.error if document is not None else "the response could not be read"
            check = Check(status=200, headers=fetched.headers, redirects=fetched.redirects, error=error)
        else:
            check = Check(status=fetched.status, headers=fetched.headers, redirects=fetched.redirects)
        update = decide(feed, check, now=checked_at, policy=policy, rng=rng)
        # A capped check keeps neither the body's hash nor its validators, so that the same document
        # is fetched and read again next time, for the items left over.
        keep_hash = (
            document.body_hash
            if document is not None and update.success and not document.unchanged and not document.deferred
            else None
        )
        store.apply_feed_update(feed.id, update, entries_per_week=rate, body_hash=keep_hash)
    size = 0 if isinstance(fetched, FetchError) else len(fetched.body)
    unchanged = document is not None and document.unchanged
    fields = {
        "feed": feed.url,
        "status": update.status,
        "duration": duration,
        "bytes": size,
        "new": new,
        "updated": updated,
        "next": update.next_check_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "unchanged": "yes" if unchanged else None,
        "reused": len(document.known) if document is not None and document.known else None,
        "deferred": document.deferred if document is not None and document.deferred else None,
        "adopted": update.new_url,
        "retired": "yes" if update.disable_reason else None,
        "error": update.error,
    }
    (log.warning if update.error else log.info)("poll %s", log_fields(**fields), extra={"poll": fields})
    notes = tuple(
        note
        for note in (
            f"moved to {update.new_url}" if update.new_url else None,
            "same body as last time; not parsed" if unchanged else None,
            *feed_warnings(feed),
            f"{document.deferred} more new items left for later checks (polling.max_entries_per_check)"
            if document is not None and document.deferred and update.success
            else None,
        )
        if note
    )
    return UpdateResult(
        url=feed.url,
        status=update.status,
        new_entries=new,
        updated_entries=updated,
        error=update.error,
        duration=duration,
        bytes=size,
        notes=notes,
    )


def check_feed(
    store: Store,
    client: httpx.Client,
    feed: Feed,
    config: Config,
    *,
    rng: random.Random | None = None,
    gate: HostGate | None = None,
) -> UpdateResult:
    """Check one feed now, in this thread, store what changed and return a summary; never raises FeedError."""
    rng = rng or random.Random()
    checked_at = datetime.now(UTC)
    started = time.monotonic()
    document: Document | None = None
    fetched: FetchResult | FetchError
    try:
        fetched = fetch_feed(client, feed, config, gate)
    except FetchError as exc:
        fetched = exc
    if isinstance(fetched, FetchResult) and fetched.status == 200:
        document = read_body(
            feed, fetched, checked_at, store.entry_digests(feed.id), config.polling.max_entries_per_check
        )
        if feed.full_content and document.entries and document.error is None:
            document = dataclasses.replace(
                document, entries=with_article_pages(store, client, feed, document.entries, config, gate)
            )
    return safe_record(store, feed, fetched, document, checked_at, policy_from_config(config), rng, started)


def safe_record(
    store: Store,
    feed: Feed,
    fetched: FetchResult | FetchError,
    document: Document | None,
    checked_at: datetime,
    policy: PollingPolicy,
    rng: random.Random,
    started: float,
) -> UpdateResult:
    """Return ``record_check``'s result, turning a storage failure into a logged, per-feed error."""
    try:
        return record_check(
            store,
            feed,
            fetched,
            document,
            checked_at=checked_at,
            policy=policy,
            rng=rng,
            duration=time.monotonic() - started,
        )
    except NewsdeskError as exc:
        return storage_failure(store, feed, exc)


def storage_failure(store: Store, feed: Feed, exc: NewsdeskError) -> UpdateResult:
    """Return (and log) the per-feed result of a check whose writes failed; the other feeds go on."""
    # Most often the feed was removed while it was being checked.
    gone = store.get_feed(feed.id) is None
    message = "the feed was removed while it was being checked" if gone else f"could not store the check: {exc}"
    (log.info if gone else log.error)("poll %s", log_fields(feed=feed.url, error=message))
    return UpdateResult(url=feed.url, status=None, error=message)


def update_feeds(
    store: Store, feeds: Iterable[Feed], config: Config, *, observer: PollObserver | None = None
) -> list[UpdateResult]:
    """Check several feeds concurrently, politely per host, and return one result per feed, in input order."""
    from .poller import Poller

    with Poller(store, config, observer=observer) as poller:
        return poller.poll(feeds)


def sync_config_feeds(store: Store, config: Config) -> list[Feed]:
    """Make the store's config-declared feeds match config.feeds; return the feeds now configured."""
    configured: list[Feed] = []
    wanted = set()
    for fc in config.feeds:
        wanted.add(fc.url)
        configured.append(
            store.add_feed(
                fc.url,
                title=fc.title or None,
                tags=fc.tags,
                interval_seconds=int(fc.interval) if fc.interval else None,
                user_agent=fc.user_agent or None,
                timezone=fc.timezone,
                full_content=fc.full_content,
                enabled=fc.enabled,
                origin="config",
            )
        )
    origins = store.feed_origins()
    for feed in store.list_feeds():
        if origins.get(feed.id) == "config" and feed.key not in wanted and feed.url not in wanted:
            store.remove_feed(feed.id)
    return configured
