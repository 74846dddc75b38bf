"""Table-driven tests of the pure polling policy: status x headers x history -> next check, backoff, redirects."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aggregator.models import Feed
from aggregator.policy import (
    Check,
    PollingPolicy,
    adaptive_interval,
    asked_min_interval,
    backoff_delay,
    decide,
    parse_retry_after,
    permanent_target,
    publishing_rate,
    waiting_reason,
)

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
HOUR = 3600.0
DAY = 86400.0
# No jitter, so every expected time is exact.
POLICY = PollingPolicy(
    min_interval=300,
    max_interval=DAY,
    default_interval=HOUR,
    jitter=0.0,
    backoff_cap=DAY,
    redirect_adopt_checks=3,
    redirect_adopt_after=DAY,
)
FEED = Feed(id=1, key="https://a.example/feed", url="https://a.example/feed", title="A", site_url=None)
OLD = "https://a.example/feed"
NEW = "https://b.example/feed"


def feed(**changes: Any) -> Feed:
    return replace(FEED, **changes)


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


# (name, feed state, check, expected fields of the FeedUpdate)
CASES: list[tuple[str, Feed, Check, dict[str, Any]]] = [
    (
        "200, rate unknown -> default interval, validators kept",
        feed(),
        Check(200, {"etag": '"v1"', "last-modified": "Mon, 02 Mar 2026 10:00:00 GMT"}),
        {"success": True, "next_check_at": at(HOUR), "etag": '"v1"', "consecutive_failures": 0},
    ),
    (
        "200, 7 entries/week -> daily",
        feed(),
        Check(200, {}, entries_per_week=7.0),
        {"next_check_at": at(DAY)},
    ),
    (
        "200, 10000 entries/week -> clamped to min_interval",
        feed(),
        Check(200, {}, entries_per_week=10_000.0),
        {"next_check_at": at(300)},
    ),
    (
        "200, silent feed (0/week) -> max_interval",
        feed(),
        Check(200, {}, entries_per_week=0.0),
        {"next_check_at": at(DAY)},
    ),
    (
        "200, busy feed but <ttl> 60 min -> never sooner than asked",
        feed(),
        Check(200, {}, entries_per_week=10_000.0, ttl_minutes=60),
        {"next_check_at": at(HOUR), "min_interval_seconds": 3600},
    ),
    (
        "200, sy:updatePeriod hourly x2 -> 30 min",
        feed(),
        Check(200, {}, entries_per_week=10_000.0, update_period="hourly", update_frequency=2),
        {"next_check_at": at(1800), "min_interval_seconds": 1800},
    ),
    (
        "200, Cache-Control max-age=7200 beats rate",
        feed(),
        Check(200, {"cache-control": "public, max-age=7200"}, entries_per_week=10_000.0),
        {"next_check_at": at(7200)},
    ),
    (
        "200, Expires 3 h after Date",
        feed(),
        Check(
            200,
            {"date": "Mon, 02 Mar 2026 12:00:00 GMT", "expires": "Mon, 02 Mar 2026 15:00:00 GMT"},
            entries_per_week=10_000.0,
        ),
        {"next_check_at": at(3 * HOUR)},
    ),
    (
        "200, Expires a year ahead -> capped at a week",
        feed(),
        Check(200, {"expires": "Tue, 02 Mar 2027 12:00:00 GMT"}, entries_per_week=10_000.0),
        {"next_check_at": at(7 * DAY)},
    ),
    (
        "200, operator interval overrides the rate",
        feed(interval_seconds=600),
        Check(200, {}, entries_per_week=0.0),
        {"next_check_at": at(600)},
    ),
    (
        "200, operator interval still honours the server's max-age",
        feed(interval_seconds=600),
        Check(200, {"cache-control": "max-age=3600"}),
        {"next_check_at": at(HOUR)},
    ),
    (
        "304 after failures -> reset, validators and the stored ask kept",
        feed(consecutive_failures=4, etag='"v1"', min_interval_seconds=7200, entries_per_week=10_000.0),
        Check(304, {}),
        {"success": True, "consecutive_failures": 0, "etag": '"v1"', "next_check_at": at(7200)},
    ),
    (
        "404 first failure -> one normal interval",
        feed(),
        Check(404, {}),
        {"success": False, "consecutive_failures": 1, "next_check_at": at(HOUR), "disable_reason": None},
    ),
    (
        "500 third failure -> 4x",
        feed(consecutive_failures=2),
        Check(500, {}),
        {"consecutive_failures": 3, "next_check_at": at(4 * HOUR)},
    ),
    (
        "network error 10th failure -> capped at 24 h, still retried",
        feed(consecutive_failures=9),
        Check(None, {}, error="could not connect: the connection was refused"),
        {"consecutive_failures": 10, "next_check_at": at(DAY), "status": None},
    ),
    (
        "410 -> retired with a reason",
        feed(),
        Check(410, {}),
        {"success": False, "disable_reason": "contains:410 Gone"},
    ),
    (
        "429 Retry-After seconds beyond backoff",
        feed(),
        Check(429, {"retry-after": "7200"}),
        {"next_check_at": at(7200), "retry_after_until": at(7200), "error": "contains:too often"},
    ),
    (
        "429 Retry-After shorter than backoff -> backoff wins",
        feed(consecutive_failures=3),
        Check(429, {"retry-after": "60"}),
        {"next_check_at": at(8 * HOUR), "retry_after_until": at(60)},
    ),
    (
        "503 Retry-After HTTP date",
        feed(),
        Check(503, {"retry-after": "Mon, 02 Mar 2026 18:00:00 GMT"}),
        {"next_check_at": at(6 * HOUR), "retry_after_until": at(6 * HOUR)},
    ),
    (
        "503 Retry-After garbage -> plain backoff",
        feed(),
        Check(503, {"retry-after": "soon"}),
        {"next_check_at": at(HOUR), "retry_after_until": None},
    ),
    (
        "404 ignores Retry-After (only 429/503 carry it here)",
        feed(),
        Check(404, {"retry-after": "99999"}),
        {"next_check_at": at(HOUR), "retry_after_until": None},
    ),
    (
        "200 via 301, first sighting -> pending 1",
        feed(),
        Check(200, {}, redirects=((301, NEW),)),
        {"new_url": None, "pending_redirect_url": NEW, "pending_redirect_count": 1, "pending_redirect_since": NOW},
    ),
    (
        "301 seen 3 times but only for an hour -> still pending",
        feed(pending_redirect_url=NEW, pending_redirect_since=NOW - timedelta(hours=1), pending_redirect_count=2),
        Check(200, {}, redirects=((301, NEW),)),
        {"new_url": None, "pending_redirect_count": 3},
    ),
    (
        "308 seen 3 times over 2 days -> adopted",
        feed(pending_redirect_url=NEW, pending_redirect_since=NOW - timedelta(days=2), pending_redirect_count=2),
        Check(200, {}, redirects=((308, NEW),)),
        {"new_url": NEW, "pending_redirect_url": None, "pending_redirect_count": 0},
    ),
    (
        "301 to a different target -> streak restarts",
        feed(pending_redirect_url=NEW, pending_redirect_since=NOW - timedelta(days=2), pending_redirect_count=5),
        Check(200, {}, redirects=((301, "https://c.example/feed"),)),
        {"new_url": None, "pending_redirect_url": "https://c.example/feed", "pending_redirect_count": 1},
    ),
    (
        "flapping: a direct 200 ends the streak",
        feed(pending_redirect_url=NEW, pending_redirect_since=NOW - timedelta(days=2), pending_redirect_count=5),
        Check(200, {}),
        {"new_url": None, "pending_redirect_url": None, "pending_redirect_count": 0},
    ),
    (
        "302 never moves the feed",
        feed(pending_redirect_url=NEW, pending_redirect_since=NOW - timedelta(days=2), pending_redirect_count=5),
        Check(200, {}, redirects=((302, NEW),)),
        {"new_url": None, "pending_redirect_url": None},
    ),
    (
        "301 then 302 in one chain is temporary",
        feed(),
        Check(200, {}, redirects=((301, NEW), (302, "https://c.example/x"))),
        {"pending_redirect_url": None},
    ),
    (
        "a failure keeps the pending redirect's streak",
        feed(pending_redirect_url=NEW, pending_redirect_since=NOW - timedelta(days=2), pending_redirect_count=2),
        Check(500, {}),
        {"pending_redirect_url": NEW, "pending_redirect_count": 2},
    ),
    (
        "200 that is not a feed is a failure, validators kept",
        feed(etag='"old"'),
        Check(200, {"etag": '"new"'}, error="not a feed: the URL returned an HTML page"),
        {"success": False, "status": 200, "etag": '"old"', "error": "contains:not a feed", "consecutive_failures": 1},
    ),
]


@pytest.mark.parametrize(("name", "state", "check", "expected"), CASES, ids=[c[0] for c in CASES])
def test_decide(name: str, state: Feed, check: Check, expected: dict[str, Any]) -> None:
    update = decide(state, check, now=NOW, policy=POLICY, rng=random.Random(1))
    for field, want in expected.items():
        got = getattr(update, field)
        if isinstance(want, str) and want.startswith("contains:"):
            assert got is not None and want.removeprefix("contains:") in got, (field, got)
        else:
            assert got == want, (field, got, want)
    assert update.checked_at == NOW


def test_jitter_spreads_but_never_goes_under_the_servers_ask() -> None:
    policy = replace(POLICY, jitter=0.3)
    check = Check(200, {"cache-control": "max-age=3600"}, entries_per_week=10_000.0)
    waits = {
        (decide(feed(), check, now=NOW, policy=policy, rng=random.Random(seed)).next_check_at - NOW).total_seconds()
        for seed in range(50)
    }
    assert min(waits) >= 3600
    assert len(waits) > 10  # spread out


def test_backoff_is_jittered_capped_and_never_below_normal() -> None:
    policy = replace(POLICY, jitter=0.2)
    rng = random.Random(7)
    delays = [backoff_delay(f, HOUR, policy, rng) for f in range(1, 40)]
    assert all(HOUR <= d <= DAY for d in delays)
    assert delays[-1] > DAY * 0.79
    # An operator interval longer than the cap is kept as is.
    assert backoff_delay(3, 2 * DAY, policy, rng) == 2 * DAY


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", at(120)),
        (" 0 ", NOW),
        ("Mon, 02 Mar 2026 13:00:00 GMT", at(HOUR)),
        ("Monday, 02-Mar-26 13:00:00 GMT", at(HOUR)),  # RFC 850 form, still an HTTP-date
        ("Mon, 02 Mar 2026 11:00:00 GMT", NOW),  # in the past: now
        ("99999999999", at(30 * DAY)),  # absurd: clamped
        ("-5", None),
        ("tomorrow", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: datetime | None) -> None:
    assert parse_retry_after(value, NOW) == expected


@pytest.mark.parametrize(
    ("headers", "ttl", "period", "frequency", "expected"),
    [
        ({}, None, None, None, None),
        ({"cache-control": "max-age=600"}, None, None, None, 600),
        ({"cache-control": "no-cache, max-age=600"}, None, None, None, None),
        ({"cache-control": "s-maxage=900, max-age=600"}, None, None, None, 600),
        ({"cache-control": "max-age=0"}, None, None, None, None),
        ({}, 30, None, None, 1800),
        ({}, None, "daily", None, 86400),
        ({}, None, "weekly", 7, 86400),
        ({}, None, "fortnightly", 1, None),
        ({"cache-control": "max-age=600"}, 30, None, None, 1800),  # the larger ask wins
        ({}, 100000, None, None, 7 * 86400),  # capped
    ],
)
def test_asked_min_interval(
    headers: dict[str, str], ttl: int | None, period: str | None, frequency: int | None, expected: int | None
) -> None:
    check = Check(200, headers, ttl_minutes=ttl, update_period=period, update_frequency=frequency)
    assert asked_min_interval(check, NOW) == expected


@pytest.mark.parametrize(
    ("rate", "expected"), [(None, HOUR), (0.0, DAY), (1.0, DAY), (7.0, DAY), (168.0, HOUR), (10_000.0, 300)]
)
def test_adaptive_interval(rate: float | None, expected: float) -> None:
    assert adaptive_interval(rate, POLICY) == pytest.approx(expected)


def test_publishing_rate() -> None:
    daily = [NOW - timedelta(days=d) for d in range(14)]
    assert publishing_rate(daily, NOW) == pytest.approx(7.0, rel=0.1)
    burst = [NOW - timedelta(minutes=m) for m in range(5)]
    assert publishing_rate(burst, NOW) == pytest.approx(35.0)  # five in a day, not thousands a week
    assert publishing_rate([NOW - timedelta(days=90)], NOW) == 0.0
    assert publishing_rate([NOW + timedelta(days=3)], NOW) == 0.0  # future dates do not count


def test_permanent_target() -> None:
    assert permanent_target([]) is None
    assert permanent_target([(301, "a"), (308, "b")]) == "b"
    assert permanent_target([(301, "a"), (307, "b")]) is None


def test_waiting_reason() -> None:
    assert waiting_reason(feed(), NOW) is None
    assert waiting_reason(feed(retry_after_until=at(60), next_check_at=at(60)), NOW) == (
        "the server asked us to wait",
        at(60),
    )
    reason = waiting_reason(feed(consecutive_failures=2, next_check_at=at(600)), NOW)
    assert reason is not None and reason[1] == at(600) and "backing off" in reason[0]
    # A healthy feed that is simply not due yet is not "waiting": --all checks it.
    assert waiting_reason(feed(next_check_at=at(600)), NOW) is None
