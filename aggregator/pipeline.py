"""One check of one feed, stage by stage: fetch -> read (parse + normalize) -> article pages -> record.

Read this module to follow a feed URL through a check. A check in progress is a ``FeedCheck``, a
frozen record; each stage is a plain function that takes it and returns it with its own part
filled in::

    check = start(feed)                                        # the feed as stored, when the check began
    check = fetch(check, client, config, gate)                 # .fetched (the response or its FetchError), .body_hash
    check = read(check, stored_digests(store, feed), max_new)  # .normalized: clean entries and feed hints, or an error
    check = add_article_pages(check, store, client, config)    # full_content feeds: article text in place of summaries
    check = record(check, store, policy, rng)                  # .result: stored in one transaction, and logged

A stage never raises for a feed's faults: a failed fetch is the ``FetchError`` in ``.fetched``, a
body that is not a feed is ``.normalized.error``, a write the store refused is ``.result.error``;
``record`` turns each into the polling decision (``policy.decide``: next check, backoff, redirects).
A 304, an error status, or a 200 with the same bytes as the body last read has nothing to read:
``read`` and ``add_article_pages`` hand such a check on as it is.

Who runs a stage where is the caller's business, not the stage's:

- ``aggregator/poller.py`` runs many checks at once: ``fetch`` and ``add_article_pages`` on fetch
  threads (politely, per host), ``read`` in parse worker processes for big polls
  (``aggregator/workers.py``: everything a check holds is a picklable record, and ``read`` is a
  module-level function) or inline, and ``record`` on the single writer thread.
- ``newsdesk poller`` (``aggregator/pollnode.py``) records under the feed's poll lease
  (``record(..., hold=...)``, ``aggregator/leases.py``): a check whose lease went to another poller
  is dropped, never written over the new holder's.
- ``newsdesk inspect`` runs ``start``, ``fetch`` and ``read`` on a feed that is not stored
  (``unstored_feed``) and prints the entries; it never writes the store.

The pure work is elsewhere: ``parse.parse_feed`` (bytes -> ``ParsedFeed``), ``normalize``
(``ParsedFeed`` -> ``Entry`` records) and ``policy.decide`` (what a check saw -> ``FeedUpdate``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urljoin

import httpx

from .articlepages import with_article_pages
from .config import Config
from .errors import FeedError, FetchError, LeaseLost, NewsdeskError, NotAFeedError
from .features import feed_warnings
from .fetch import HostGate, fetch_url
from .from_config import limits_from_config
from .hosts import host_title
from .logfields import log_fields
from .models import Entry, Feed, FeedContext, FetchResult, ParsedFeed, UpdateResult
from .normalize.feed import feed_title, normalize_changed, site_link
from .normalize.reconcile import reconcile_identities, reconcile_identity
from .parse import parse_feed
from .policy import RATE_WINDOW, Check, PollingPolicy, decide, publishing_rate
from .store import Store

log = logging.getLogger("newsdesk.poll")


# --------------------------------------------------------------------------- the records


@dataclass(frozen=True)
class NormalizedFeed:
    """What parsing and normalizing one fetched body gave: clean entries and feed-level hints, or an error."""

    #: Clean entries, in document order.
    entries: tuple[Entry, ...] = ()
    #: The document's title, as plain text.
    title: str | None = None
    #: The document's site URL, as an absolute http(s) URL.
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
    #: Item digest of each of ``entries`` (same order), None where the record depends on the fetch time.
    digests: tuple[str | None, ...] = ()
    #: (digest, stored entry id) of the items not normalized again because their digest was known.
    known: tuple[tuple[str, str], ...] = ()
    #: New or changed items left for later checks by polling.max_entries_per_check.
    deferred: int = 0


@dataclass(frozen=True)
class FeedCheck:
    """One check of one feed in progress: each stage returns it with its own part filled in."""

    #: The feed as the store held it when the check began (its validators, options and last body's hash).
    feed: Feed
    #: When the check began, UTC: its entries' fetch time and the "now" of its polling decision.
    checked_at: datetime
    #: ``time.monotonic()`` when the check began, for the check's duration.
    started: float
    #: The response (``fetch``), or the FetchError that stands for one; None until fetched.
    fetched: FetchResult | FetchError | None = None
    #: SHA-256 of a 200's body (``fetch``): the same bytes next time are not read again.
    body_hash: str | None = None
    #: What reading the body gave (``read``, then ``add_article_pages``); None when there was nothing to read.
    normalized: NormalizedFeed | None = None
    #: What ``record`` stored, as a summary for logs and the CLI; None until recorded.
    result: UpdateResult | None = None

    @property
    def unchanged(self) -> bool:
        """True when a 200 returned the same bytes as the body last read: there is nothing new to parse."""
        return self.body_hash is not None and self.body_hash == self.feed.body_hash

    @property
    def has_new_body(self) -> bool:
        """True when the fetch returned a 200 whose body differs from the one last read (``read`` has work)."""
        return self.body_hash is not None and not self.unchanged


#: The record stage as the poller calls it: (check, store, policy, rng) -> the check with its result.
Recorder = Callable[[FeedCheck, Store, PollingPolicy, random.Random], FeedCheck]


# --------------------------------------------------------------------------- the stages


def start(feed: Feed) -> FeedCheck:
    """Return a check of ``feed`` beginning now."""
    return FeedCheck(feed=feed, checked_at=datetime.now(UTC), started=time.monotonic())


def fetch(check: FeedCheck, client: httpx.Client, config: Config, gate: HostGate | None = None) -> FeedCheck:
    """Return ``check`` with the feed's response (conditional on its validators), or the FetchError instead.

    ``gate`` is held around each request to a host (the poller's per-host slots; redirects included).
    """
    feed = check.feed
    fetched: FetchResult | FetchError
    try:
        fetched = fetch_url(
            client,
            feed.url,
            etag=feed.etag,
            last_modified=feed.last_modified,
            user_agent=feed.user_agent or config.polling.user_agent,
            limits=limits_from_config(config),
            gate=gate,
        )
    except FetchError as exc:
        fetched = exc
    except Exception as exc:  # a bug must cost one feed, never the poll
        log.exception("fetch failed feed=%s", feed.url)
        fetched = FetchError(feed.url, f"internal error while fetching: {type(exc).__name__}: {exc}")
    return with_response(check, fetched)


def with_response(check: FeedCheck, fetched: FetchResult | FetchError) -> FeedCheck:
    """Return ``check`` holding ``fetched`` (and a 200's body hash): what ``fetch`` returns for that response."""
    body_hash = None
    if isinstance(fetched, FetchResult) and fetched.status == 200:
        body_hash = hashlib.sha256(fetched.body).hexdigest()
    return dataclasses.replace(check, fetched=fetched, body_hash=body_hash)


def stored_digests(store: Store, feed: Feed) -> dict[str, str]:
    """Return the item digests of the feed's last document (``read``'s ``known``), or none if the store cannot say."""
    try:
        return store.entry_digests(feed.id)
    except NewsdeskError as exc:  # the check goes on: every item is simply normalized again
        log.warning("poll %s", log_fields(feed=feed.url, error=f"could not read item digests: {exc}"))
        return {}


def read(check: FeedCheck, known: Mapping[str, str] | None = None, max_new: int | None = None) -> FeedCheck:
    """Return ``check`` with its new body parsed and normalized; a check without a new body comes back as it is.

    ``known`` (item digest -> stored entry id, from ``stored_digests``): items seen unchanged in the
    feed's last document are not normalized again. ``max_new``: at most this many new or changed items
    are normalized, the newest (``NormalizedFeed.deferred`` counts the rest). Raises only MemoryError:
    the poller replaces a worker process that ran out, or says so on the feed when it ran inline.
    Module-level and fed only picklable records, so that a process pool can run it.
    """
    if not check.has_new_body:
        return check
    assert isinstance(check.fetched, FetchResult)  # has_new_body: a 200
    return dataclasses.replace(
        check, normalized=_normalized(check.feed, check.fetched, check.checked_at, known, max_new)
    )


def read_failed(check: FeedCheck, error: str) -> FeedCheck:
    """Return ``check`` as ``read`` returns it when reading its body failed with ``error`` (in plain words)."""
    return dataclasses.replace(check, normalized=NormalizedFeed(error=error))


def wants_article_pages(check: FeedCheck) -> bool:
    """Return True when ``add_article_pages`` has work: a ``full_content`` feed whose body gave entries."""
    return check.feed.full_content and check.normalized is not None and bool(check.normalized.entries)


def add_article_pages(
    check: FeedCheck, store: Store, client: httpx.Client, config: Config, gate: HostGate | None = None
) -> FeedCheck:
    """Return ``check`` with its new entries' article pages in place of the feed's summaries (``full_content``).

    Other checks come back as they are, and so does one whose pages failed: the feed's own content
    is still good to store. See ``aggregator/articlepages.py``.
    """
    normalized = check.normalized
    if normalized is None or not wants_article_pages(check):
        return check
    try:
        entries = with_article_pages(store, client, check.feed, normalized.entries, config, gate)
    except Exception:  # the feed's own content is still good: store that
        log.exception("full content failed feed=%s", check.feed.url)
        return check
    return dataclasses.replace(check, normalized=dataclasses.replace(normalized, entries=entries))


def record(
    check: FeedCheck,
    store: Store,
    policy: PollingPolicy,
    rng: random.Random,
    *,
    hold: Callable[[], AbstractContextManager[object]] | None = None,
) -> FeedCheck:
    """Return ``check`` with its result, once what it found is stored (entries, then polling state) in one transaction.

    A write the store refused becomes the result's error (logged; the other feeds go on). ``hold``
    is entered around the transaction: `newsdesk poller` passes the feed's poll lease
    (``Leases.held``), and when it raises LeaseLost the check is dropped (the feed's new holder
    records its own check).
    """
    try:
        with hold() if hold is not None else nullcontext():
            result = _store_check(store, check, policy, rng)
    except LeaseLost as exc:
        log.warning("poll %s", log_fields(feed=check.feed.url, error=str(exc)))
        result = UpdateResult(url=check.feed.url, status=None, error=str(exc))
    except NewsdeskError as exc:
        result = _storage_failure(store, check.feed, exc)
    return dataclasses.replace(check, result=result)


# --------------------------------------------------------------------------- feeds not in the store


def unstored_feed(url: str) -> Feed:
    """Return the record a feed URL has before it is stored: named by its host, no validators, no known items."""
    # What the store holds for a feed just added, so that a check of it reads the document as a first poll would.
    return Feed(id=0, key=url, url=url, title=host_title(url), site_url=None)


_WARM_UP_FEED = b"""<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Warm-up</title>
<link>https://warm-up.example/</link><item><title>Harbour fees rise</title><link>https://warm-up.example/1</link>
<pubDate>Mon, 02 Mar 2026 09:00:00 GMT</pubDate><description><![CDATA[<p>The harbour board raised its fees
for visiting boats this spring, the first rise in years.</p><p><img src="/a.jpg" alt="Boats"></p>]]></description>
</item></channel></rss>"""


def warm_up() -> None:
    """Read a small built-in feed, loading what the first real ``read`` would load lazily.

    A parse worker runs this before its memory cap is set, so that the cap measures what a feed's
    parse takes, not the language model and library buffers every parse shares.
    """
    url = "https://warm-up.example/feed"
    fetched = FetchResult(url=url, final_url=url, status=200, body=_WARM_UP_FEED, headers={})
    read(with_response(start(unstored_feed(url)), fetched))


# --------------------------------------------------------------------------- inside read


def normalization_context(feed: Feed, parsed: ParsedFeed, final_url: str, fetched_at: datetime) -> FeedContext:
    """Return what normalizing the entries of ``feed``'s document needs: the source's name and links, the fetch time."""
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


def _normalized(
    feed: Feed, fetched: FetchResult, fetched_at: datetime, known: Mapping[str, str] | None, max_new: int | None
) -> NormalizedFeed:
    final_url = fetched.final_url
    try:
        parsed = parse_feed(fetched.body, fetched.headers, url=final_url)
        context = normalization_context(feed, parsed, final_url, fetched_at)
        changed = normalize_changed(parsed, context, known or {}, max_new=max_new)
    except NotAFeedError as exc:
        alternates = tuple(dict.fromkeys(urljoin(final_url, a) for a in exc.alternates))
        if not alternates:
            return NormalizedFeed(error=exc.message)
        listed = ", ".join(alternates[:3]) + (", ..." if len(alternates) > 3 else "")
        message = (
            f"not a feed: the URL returned an HTML page that links to {len(alternates)} feed(s): {listed} "
            "(`newsdesk feeds add` on the page's URL adopts one)"
        )
        return NormalizedFeed(error=message, alternates=alternates)
    except FeedError as exc:
        return NormalizedFeed(error=exc.message)
    except MemoryError:
        raise  # the worker process that ran out is replaced (aggregator/workers.py); inline, the poll says so
    except Exception as exc:  # a bug in a parser must cost one feed, never the poll
        log.exception("parse failed feed=%s", feed.url)
        return NormalizedFeed(error=f"internal error while reading the feed: {type(exc).__name__}: {exc}")
    return NormalizedFeed(
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


# --------------------------------------------------------------------------- inside record


def _store_check(store: Store, check: FeedCheck, policy: PollingPolicy, rng: random.Random) -> UpdateResult:
    """Store what ``check`` found (entries, then polling state) in one transaction, log it, and return its summary."""
    feed, normalized, checked_at = check.feed, check.normalized, check.checked_at
    fetched = check.fetched or FetchError(feed.url, "internal error: the check was recorded before its fetch")
    # One commit for the entries, digests and polling state: all of the check lands, or none of it.
    with store.transaction():
        new = updated = 0
        rate: float | None = None
        if isinstance(fetched, FetchError):
            seen = Check(status=fetched.status, headers={}, error=fetched.message)
        elif fetched.status == 200 and check.unchanged:
            seen = Check(status=200, headers=fetched.headers, redirects=fetched.redirects, same_document=True)
        elif fetched.status == 200 and normalized is not None and normalized.error is None:
            # Feeds that mint a new guid on every fetch would duplicate their items: known URLs keep
            # their stored identity (decided here, in the single writer, which alone knows the store).
            stored = store.stored_identities(feed.id)
            entries = reconcile_identities(normalized.entries, stored)
            new, updated = store.save_entries(
                feed.id, entries, seen_at=checked_at, digests=_item_digests(normalized, stored)
            )
            rate = publishing_rate(store.recent_publication_dates(feed.id, checked_at - RATE_WINDOW), checked_at)
            seen = Check(
                status=200,
                headers=_without_validators(fetched.headers) if normalized.deferred else fetched.headers,
                redirects=fetched.redirects,
                ttl_minutes=normalized.ttl_minutes,
                update_period=normalized.update_period,
                update_frequency=normalized.update_frequency,
                entries_per_week=rate,
                title=normalized.title,
                site_url=normalized.site_url,
            )
        elif fetched.status == 200:
            error = normalized.error if normalized is not None else "the response could not be read"
            seen = Check(status=200, headers=fetched.headers, redirects=fetched.redirects, error=error)
        else:
            seen = Check(status=fetched.status, headers=fetched.headers, redirects=fetched.redirects)
        update = decide(feed, seen, now=checked_at, policy=policy, rng=rng)
        # A capped check keeps neither the body's hash nor its validators, so that the same document
        # is fetched and read again next time, for the items left over.
        keep_hash = (
            check.body_hash
            if normalized is not None and update.success and not check.unchanged and not normalized.deferred
            else None
        )
        store.apply_feed_update(feed.id, update, entries_per_week=rate, body_hash=keep_hash)
    duration = time.monotonic() - check.started
    size = 0 if isinstance(fetched, FetchError) else len(fetched.body)
    deferred = normalized.deferred if normalized is not None else 0
    fields = {
        "feed": feed.url,
        "status": update.status,
        "duration": duration,
        "bytes": size,
        "new": new,
        "updated": updated,
        "next": update.next_check_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "unchanged": "yes" if check.unchanged else None,
        "reused": len(normalized.known) if normalized is not None and normalized.known else None,
        "deferred": deferred or None,
        "adopted": update.new_url,
        "retired": "yes" if update.disable_reason else None,
        "error": update.error,
    }
    (log.warning if update.error else log.info)("poll %s", log_fields(**fields), extra={"poll": fields})
    notes = tuple(
        note
        for note in (
            f"moved to {update.new_url}" if update.new_url else None,
            "same body as last time; not parsed" if check.unchanged else None,
            *feed_warnings(feed),
            f"{deferred} more new items left for later checks (polling.max_entries_per_check)"
            if deferred and update.success
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


def _item_digests(normalized: NormalizedFeed, stored: dict[str, str]) -> dict[str, str]:
    """Return item digest -> entry id for every item of the document, ids as the store will hold them."""
    digests = dict(normalized.known)
    for entry, digest in zip(normalized.entries, normalized.digests, strict=False):
        if digest is not None:
            # The id after the guid-churn remap, as save_entries will store it.
            digests[digest] = reconcile_identity(entry, stored).id
    return digests


def _without_validators(headers: Mapping[str, str]) -> dict[str, str]:
    """Return response headers without ETag and Last-Modified (a conditional request would get a 304)."""
    return {name: value for name, value in headers.items() if name.lower() not in ("etag", "last-modified")}


def _storage_failure(store: Store, feed: Feed, exc: NewsdeskError) -> UpdateResult:
    """Return (and log) the per-feed result of a check whose writes failed; the other feeds go on."""
    # Most often the feed was removed while it was being checked.
    gone = store.get_feed(feed.id) is None
    message = "the feed was removed while it was being checked" if gone else f"could not store the check: {exc}"
    (log.info if gone else log.error)("poll %s", log_fields(feed=feed.url, error=message))
    return UpdateResult(url=feed.url, status=None, error=message)
