"""The one place that wires fetch -> parse -> normalize -> store for a feed."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx

from .config import Config
from .errors import FeedError, FetchError
from .fetch import FetchLimits, fetch_url, make_client
from .models import Entry, Feed, FeedContext, FetchResult, ParsedFeed, UpdateResult
from .normalize import normalize_feed
from .parse import parse_feed
from .policy import PollingPolicy, decide_failure, decide_success
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
    )


def feed_context(feed: Feed, parsed: ParsedFeed, final_url: str, fetched_at: datetime) -> FeedContext:
    """Return the context normalization needs for entries of ``feed``."""
    return FeedContext(
        feed_key=feed.key,
        feed_url=final_url if final_url.startswith("http") else feed.url,
        source_title=feed.title or parsed.title or feed.url,
        site_url=parsed.site_url or feed.site_url,
        fetched_at=fetched_at,
        timezone=feed.timezone,
        language=parsed.language,
        base=parsed.base,
    )


def fetch_and_parse(client: httpx.Client, feed: Feed, config: Config) -> tuple[FetchResult, ParsedFeed | None]:
    """Return the fetch result and, for a 200, the parsed feed; raise FeedError on failure."""
    result = fetch_url(
        client,
        feed.url,
        etag=feed.etag,
        last_modified=feed.last_modified,
        user_agent=feed.user_agent or config.polling.user_agent,
        limits=limits_from_config(config),
    )
    if result.status == 304:
        return result, None
    if result.status != 200:
        raise FetchError(feed.url, f"the server answered HTTP {result.status}", status=result.status)
    return result, parse_feed(result.body, result.headers, url=result.final_url)


def update_feed(
    store: Store,
    client: httpx.Client,
    feed: Feed,
    config: Config,
    *,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> UpdateResult:
    """Check one feed now, store what changed, and return a summary; never raises FeedError."""
    now = now or datetime.now(UTC)
    rng = rng or random.Random()
    policy = policy_from_config(config)
    started = time.monotonic()
    try:
        result, parsed = fetch_and_parse(client, feed, config)
    except FeedError as exc:
        status = getattr(exc, "status", None)
        update = decide_failure(feed, status=status, error=exc.message, now=now, policy=policy, rng=rng)
        store.apply_feed_update(feed.id, update)
        log.warning("poll feed=%s status=%s error=%r", feed.url, status, exc.message)
        return UpdateResult(url=feed.url, status=status, error=exc.message, duration=time.monotonic() - started)
    new = updated = 0
    title = site_url = None
    if parsed is not None:
        context = feed_context(feed, parsed, result.final_url, now)
        entries: list[Entry] = normalize_feed(parsed, context)
        new, updated = store.save_entries(feed.id, entries, seen_at=now)
        title, site_url = parsed.title, parsed.site_url
    update = decide_success(
        feed,
        status=result.status,
        now=now,
        policy=policy,
        rng=rng,
        etag=result.headers.get("etag"),
        last_modified=result.headers.get("last-modified"),
        title=title,
        site_url=site_url,
    )
    store.apply_feed_update(feed.id, update)
    duration = time.monotonic() - started
    log.info(
        "poll feed=%s status=%s duration=%.3f bytes=%d new=%d updated=%d",
        feed.url,
        result.status,
        duration,
        len(result.body),
        new,
        updated,
    )
    return UpdateResult(
        url=feed.url,
        status=result.status,
        new_entries=new,
        updated_entries=updated,
        duration=duration,
        bytes=len(result.body),
    )


def update_feeds(store: Store, feeds: Iterable[Feed], config: Config) -> list[UpdateResult]:
    """Check several feeds concurrently and return one result per feed, in input order."""
    feeds = list(feeds)
    if not feeds:
        return []
    with make_client(limits_from_config(config), max_connections=config.polling.concurrency) as client:
        with ThreadPoolExecutor(max_workers=config.polling.concurrency) as pool:
            return list(pool.map(lambda f: update_feed(store, client, f, config), feeds))


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
