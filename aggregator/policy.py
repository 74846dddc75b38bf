"""Pure polling decisions: given a feed's state, what a check saw and ``now``, what happens next.

No I/O here: every function takes data and returns data, so the whole policy is table-testable.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from .models import Feed, FeedUpdate

WEEK = 7 * 86400.0
#: Longest wait any server hint may impose (a bogus Expires a year ahead must not silence a feed).
HINT_CAP = 7 * 86400.0
#: Longest Retry-After honoured; beyond it the value is treated as a mistake and clamped.
RETRY_AFTER_CAP = 30 * 86400.0
#: Window over which the publishing rate is measured.
RATE_WINDOW = timedelta(days=28)

_PERIOD_SECONDS = {"hourly": 3600, "daily": 86400, "weekly": WEEK, "monthly": 30 * 86400, "yearly": 365 * 86400}
_MAX_AGE = re.compile(r"(?:^|[,\s])(s-maxage|max-age)\s*=\s*\"?([0-9]+)", re.IGNORECASE)
#: RFC 9110 delay-seconds: ASCII digits only (str.isdigit would also accept "¹" and then fail).
_DELAY_SECONDS = re.compile(r"[0-9]+")
_RETIRE_REASON = "the server answered 410 Gone: the feed no longer exists (remove it, or re-enable it if it returns)"


@dataclass(frozen=True)
class PollingPolicy:
    """The polling options the decisions depend on (seconds)."""

    #: Shortest adaptive interval.
    min_interval: float = 300
    #: Longest adaptive interval.
    max_interval: float = 86400
    #: Interval when the publishing rate is unknown.
    default_interval: float = 3600
    #: Random spread, a fraction of the interval.
    jitter: float = 0.1
    #: Longest backoff.
    backoff_cap: float = 86400
    #: Checks in a row a permanent redirect must be seen before it is adopted.
    redirect_adopt_checks: int = 3
    #: How long a permanent redirect must have been seen before it is adopted.
    redirect_adopt_after: float = 86400


@dataclass(frozen=True)
class Check:
    """What one check of a feed saw, as plain data for ``decide``."""

    #: HTTP status of the final response, None for a network error or a refused response.
    status: int | None
    #: Response headers, lower-cased names (empty when there was no response).
    headers: Mapping[str, str]
    #: What went wrong, in plain words; None when the check succeeded.
    error: str | None = None
    #: Redirects followed, in order: (status, target URL).
    redirects: tuple[tuple[int, str], ...] = ()
    #: <ttl> of the document, minutes.
    ttl_minutes: int | None = None
    #: sy:updatePeriod of the document.
    update_period: str | None = None
    #: sy:updateFrequency of the document.
    update_frequency: int | None = None
    #: Entries per week measured after this check (None: keep what we knew).
    entries_per_week: float | None = None
    #: Title the document gave.
    title: str | None = None
    #: Site URL the document gave.
    site_url: str | None = None
    #: True for a 200 whose body is byte-identical to the last one parsed (so not parsed again).
    same_document: bool = False


def describe_status(status: int) -> str:
    """Return a plain-words description of an HTTP error status for operators."""
    known = {
        400: "the server rejected the request (HTTP 400 Bad Request)",
        401: "the server asks for a login (HTTP 401 Unauthorized)",
        403: "the server refuses access (HTTP 403 Forbidden); it may block feed readers",
        404: "the feed was not found (HTTP 404); check the URL",
        405: "the server does not allow GET here (HTTP 405)",
        406: "the server has no feed format we accept (HTTP 406)",
        408: "the server timed out waiting for us (HTTP 408)",
        410: "the feed is gone for good (HTTP 410 Gone)",
        429: "the server says we are polling too often (HTTP 429 Too Many Requests)",
        451: "the feed is unavailable for legal reasons (HTTP 451)",
        500: "the server failed (HTTP 500 Internal Server Error)",
        502: "a gateway in front of the server failed (HTTP 502 Bad Gateway)",
        503: "the server is unavailable for now (HTTP 503 Service Unavailable)",
        504: "a gateway timed out reaching the server (HTTP 504 Gateway Timeout)",
    }
    if status in known:
        return known[status]
    if 500 <= status < 600:
        return f"the server failed (HTTP {status})"
    if 400 <= status < 500:
        return f"the server refused the request (HTTP {status})"
    if 300 <= status < 400:
        return f"unexpected redirect status without a usable Location (HTTP {status})"
    return f"unexpected HTTP status {status}; expected 200 or 304"


def parse_http_date(value: str | None) -> datetime | None:
    """Return the aware UTC datetime of an HTTP-date (RFC 9110 §5.6.7), or None if unreadable."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:  # RFC 9110: HTTP-dates are always GMT.
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def parse_retry_after(value: str | None, now: datetime) -> datetime | None:
    """Return when Retry-After lets us come back (delay-seconds or HTTP-date, RFC 9110 §10.2.3), or None."""
    if not value:
        return None
    value = value.strip()
    if _DELAY_SECONDS.fullmatch(value):
        seconds = min(float(value), RETRY_AFTER_CAP)
        return now + timedelta(seconds=seconds)
    when = parse_http_date(value)
    if when is None:
        return None
    return min(max(when, now), now + timedelta(seconds=RETRY_AFTER_CAP))


def header_min_interval(headers: Mapping[str, str], now: datetime) -> float | None:
    """Return the freshness lifetime the response declares (Cache-Control max-age, else Expires), seconds."""
    cache_control = headers.get("cache-control", "")
    if re.search(r"no-cache|no-store", cache_control, re.IGNORECASE):
        return None
    ages = [int(m.group(2)) for m in _MAX_AGE.finditer(cache_control)]
    if ages:
        # RFC 9111 §4.2.1: max-age wins over Expires; a shared cache would prefer s-maxage, we are private.
        private = [int(m.group(2)) for m in _MAX_AGE.finditer(cache_control) if m.group(1).lower() == "max-age"]
        return float((private or ages)[0]) or None
    expires = parse_http_date(headers.get("expires"))
    if expires is None:
        return None
    date = parse_http_date(headers.get("date")) or now
    seconds = (expires - date).total_seconds()
    return seconds if seconds > 0 else None


def document_min_interval(ttl_minutes: int | None, period: str | None, frequency: int | None) -> float | None:
    """Return the shortest interval the document asks for (<ttl>, sy:updatePeriod/updateFrequency), seconds."""
    asked: list[float] = []
    if ttl_minutes and ttl_minutes > 0:
        asked.append(ttl_minutes * 60.0)
    if period and period.strip().lower() in _PERIOD_SECONDS:
        # RSS 1.0 syndication module: updateFrequency times per updatePeriod (default 1).
        asked.append(_PERIOD_SECONDS[period.strip().lower()] / max(frequency or 1, 1))
    return max(asked) if asked else None


def asked_min_interval(check: Check, now: datetime) -> int | None:
    """Return the shortest interval the feed or server asked for, capped at HINT_CAP, in whole seconds."""
    asked = [
        value
        for value in (
            header_min_interval(check.headers, now),
            document_min_interval(check.ttl_minutes, check.update_period, check.update_frequency),
        )
        if value
    ]
    return int(min(max(asked), HINT_CAP)) if asked else None


def adaptive_interval(entries_per_week: float | None, policy: PollingPolicy) -> float:
    """Return the interval matching a publishing rate: about one check per expected entry, clamped."""
    if entries_per_week is None:
        interval = policy.default_interval
    elif entries_per_week <= 0:
        interval = policy.max_interval
    else:
        interval = WEEK / entries_per_week
    return min(max(interval, policy.min_interval), policy.max_interval)


def healthy_interval(
    feed: Feed, policy: PollingPolicy, *, entries_per_week: float | None = None, asked: int | None = None
) -> float:
    """Return seconds until the next check of a healthy feed, before jitter."""
    rate = entries_per_week if entries_per_week is not None else feed.entries_per_week
    interval = float(feed.interval_seconds) if feed.interval_seconds else adaptive_interval(rate, policy)
    floor = asked if asked is not None else feed.min_interval_seconds
    return max(interval, float(floor or 0))


def publishing_rate(published: Iterable[datetime], now: datetime, window: timedelta = RATE_WINDOW) -> float:
    """Return entries per week from publication dates: those inside the window over the span they cover."""
    recent = [d for d in published if now - window <= d <= now]
    if not recent:
        return 0.0
    # The span runs from the oldest recent entry to now, at least a day, so a burst of five
    # entries in one hour reads as five a day rather than a thousand a week.
    span = max((now - min(recent)).total_seconds(), 86400.0)
    return len(recent) * WEEK / span


def jittered(seconds: float, jitter: float, rng: random.Random) -> float:
    """Return ``seconds`` moved at random by up to ``jitter`` of itself either way."""
    return seconds * (1 + rng.uniform(-jitter, jitter)) if jitter else seconds


def backoff_delay(failures: int, normal: float, policy: PollingPolicy, rng: random.Random) -> float:
    """Return seconds to wait after ``failures`` failures in a row: doubling, jittered, capped."""
    if normal >= policy.backoff_cap:
        return normal  # the operator's own interval is longer than any backoff
    delay = jittered(min(normal * 2.0 ** min(failures - 1, 30), policy.backoff_cap), policy.jitter, rng)
    # Never poll a failing feed more often than a healthy one, nor wait beyond the cap.
    return min(max(delay, normal), policy.backoff_cap)


def permanent_target(redirects: Sequence[tuple[int, str]]) -> str | None:
    """Return where a chain of redirects leads if every hop was permanent (301/308), else None."""
    if not redirects or any(status not in (301, 308) for status, _ in redirects):
        return None
    return redirects[-1][1]


def redirect_state(
    feed: Feed, redirects: Sequence[tuple[int, str]], now: datetime, policy: PollingPolicy
) -> tuple[str | None, str | None, datetime | None, int]:
    """Return (URL to adopt now, pending URL, pending since, sightings) after a successful check."""
    target = permanent_target(redirects)
    if target is None or target == feed.url:
        # A direct answer or a temporary redirect ends any streak: flapping never adds up.
        return None, None, None, 0
    if target == feed.pending_redirect_url and feed.pending_redirect_since is not None:
        since, count = feed.pending_redirect_since, feed.pending_redirect_count + 1
    else:
        since, count = now, 1
    seen_for = (now - since).total_seconds()
    if count >= policy.redirect_adopt_checks and seen_for >= policy.redirect_adopt_after:
        return target, None, None, 0
    return None, target, since, count


def decide(feed: Feed, check: Check, *, now: datetime, policy: PollingPolicy, rng: random.Random) -> FeedUpdate:
    """Return the polling state to store after ``check``: next check, backoff, validators, redirects, retirement."""
    retry_after = parse_retry_after(check.headers.get("retry-after"), now) if check.status in (429, 503) else None
    success = check.error is None and check.status in (200, 304)
    if success:
        asked = asked_min_interval(check, now)
        if (check.status == 304 or check.same_document) and asked is None:
            # No document was read (so no <ttl>): keep what the last parsed one asked for.
            asked = feed.min_interval_seconds
        interval = healthy_interval(feed, policy, entries_per_week=check.entries_per_week, asked=asked)
        # Jitter spreads feeds out but never past the longest interval (unless the feed's own is longer).
        wait = min(jittered(interval, policy.jitter, rng), max(policy.max_interval, interval))
        if asked:
            wait = max(wait, float(asked))  # jitter never takes us under what the server asked
        new_url, pending_url, pending_since, pending_count = redirect_state(feed, check.redirects, now, policy)
        return FeedUpdate(
            checked_at=now,
            status=check.status,
            error=None,
            success=True,
            next_check_at=now + timedelta(seconds=wait),
            consecutive_failures=0,
            etag=check.headers.get("etag") if check.status == 200 else feed.etag,
            last_modified=check.headers.get("last-modified") if check.status == 200 else feed.last_modified,
            new_url=new_url,
            pending_redirect_url=pending_url,
            pending_redirect_since=pending_since,
            pending_redirect_count=pending_count,
            min_interval_seconds=asked,
            title=check.title,
            site_url=check.site_url,
        )
    failures = feed.consecutive_failures + 1
    error = check.error or (describe_status(check.status) if check.status is not None else "the check failed")
    next_check = now + timedelta(seconds=backoff_delay(failures, healthy_interval(feed, policy), policy, rng))
    if retry_after is not None:
        next_check = max(next_check, retry_after)  # never earlier than the server asked
        error = f"{error}; it asked us to come back after {retry_after.strftime('%Y-%m-%d %H:%M:%S')} UTC"
    return FeedUpdate(
        checked_at=now,
        status=check.status,
        error=error,
        success=False,
        next_check_at=next_check,
        consecutive_failures=failures,
        retry_after_until=retry_after,
        etag=feed.etag,
        last_modified=feed.last_modified,
        # A failure says nothing about a pending redirect: keep counting where we were.
        pending_redirect_url=feed.pending_redirect_url,
        pending_redirect_since=feed.pending_redirect_since,
        pending_redirect_count=feed.pending_redirect_count,
        disable_reason=_RETIRE_REASON if check.status == 410 else None,
    )


def waiting_reason(feed: Feed, now: datetime) -> tuple[str, datetime] | None:
    """Return why a forced check must still skip this feed (server asked to wait, or backing off) and until when."""
    if feed.retry_after_until is not None and feed.retry_after_until > now:
        return "the server asked us to wait", feed.retry_after_until
    if feed.consecutive_failures and feed.next_check_at is not None and feed.next_check_at > now:
        return f"backing off after {feed.consecutive_failures} failure(s)", feed.next_check_at
    return None
