"""Property tests: untrusted header values and bodies never crash the policy or the decoders."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.fetch import _decoders, _TooLarge
from aggregator.models import Feed
from aggregator.policy import Check, PollingPolicy, decide, header_min_interval, parse_retry_after

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
FEED = Feed(id=1, key="k", url="https://a.example/feed", title="A", site_url=None)
HEADER_NAMES = st.sampled_from(["retry-after", "cache-control", "expires", "date", "etag", "last-modified"])


@given(st.text(max_size=80))
def test_retry_after_never_raises_and_never_goes_back_in_time(value: str) -> None:
    when = parse_retry_after(value, NOW)
    assert when is None or NOW <= when <= NOW + timedelta(days=30)


@given(st.dictionaries(HEADER_NAMES, st.text(max_size=60), max_size=6))
def test_header_hints_never_raise(headers: dict[str, str]) -> None:
    seconds = header_min_interval(headers, NOW)
    assert seconds is None or seconds > 0


@settings(max_examples=200)
@given(
    st.sampled_from([None, 200, 304, 301, 404, 410, 429, 500, 503]),
    st.dictionaries(HEADER_NAMES, st.text(max_size=40), max_size=6),
    st.integers(min_value=0, max_value=60),
    st.one_of(st.none(), st.floats(min_value=0, max_value=1e6)),
)
def test_decide_always_schedules_a_future_check(
    status: int | None, headers: dict[str, str], failures: int, rate: float | None
) -> None:
    feed = Feed(id=1, key="k", url="https://a.example/feed", title="A", site_url=None, consecutive_failures=failures)
    error = None if status in (200, 304) else "failed"
    update = decide(
        feed,
        Check(status, headers, error=error, entries_per_week=rate),
        now=NOW,
        policy=PollingPolicy(),
        rng=random.Random(0),
    )
    assert NOW + timedelta(seconds=200) < update.next_check_at <= NOW + timedelta(days=31)
    assert update.success == (error is None)


@given(st.sampled_from(["gzip", "deflate", "br", "gzip, br"]), st.binary(max_size=2048))
def test_decoders_reject_garbage_with_their_own_errors(encoding: str, data: bytes) -> None:
    try:
        for decoder in _decoders(encoding):
            data = decoder.decode(data, 1 << 20)
    except _TooLarge:
        raise AssertionError("2 KiB of garbage cannot inflate past 1 MiB") from None
    except Exception as exc:  # the fetcher turns these into a FetchError naming the encoding
        assert type(exc).__module__ in ("zlib", "brotli", "_brotli") or exc.__class__.__name__ == "error"
