"""Normalization throughput against raw feedparser.parse (its defaults) on the same 200 real feed bodies.

Usage: .venv/bin/python bench/normalize.py [--repeats N]

Prints the median CPU time over N repeats of: raw feedparser.parse with its defaults (sanitizer and
relative-URI pass on), our parse_feed alone (feedparser with those passes off), and parse_feed +
normalize_feed (what a poll does), plus the ratio of the last to the first.

The baseline is plain feedparser: it is measured before any of our modules is imported (they change
nothing in feedparser anyway; tests/test_architecture.py checks that), so nothing of ours can speed it up.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import feedparser  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpus" / "feeds" / "kagisearch__fastfeedparser" / "benchmark_data"
FETCHED_AT = datetime(2026, 3, 1, tzinfo=UTC)


def load_bodies() -> list[tuple[str, bytes]]:
    """Return (name, bytes) for every body of the benchmark corpus."""
    return [(path.name, path.read_bytes()) for path in sorted(CORPUS.iterdir()) if path.is_file()]


def raw_feedparser(bodies: list[tuple[str, bytes]]) -> int:
    """Parse every body with feedparser's defaults; return the number of entries."""
    count = 0
    for _name, body in bodies:
        result = feedparser.parse(io.BytesIO(body), sanitize_html=True, resolve_relative_uris=True)
        count += len(result.entries)
    return count


def parse_only(bodies: list[tuple[str, bytes]]) -> int:
    """Run our parse_feed on every body; return the number of entries."""
    from aggregator.errors import ParseError
    from aggregator.parse import parse_feed

    count = 0
    for _name, body in bodies:
        try:
            count += len(parse_feed(body).entries)
        except ParseError:
            continue
    return count


def parse_and_normalize(bodies: list[tuple[str, bytes]]) -> int:
    """Run parse_feed + normalize_feed on every body; return the number of entries."""
    from aggregator.errors import ParseError
    from aggregator.models import FeedContext
    from aggregator.normalize import normalize_feed
    from aggregator.parse import parse_feed

    count = 0
    for name, body in bodies:
        context = FeedContext(
            feed_key=name,
            feed_url=f"https://bench.invalid/{name}",
            source_title=name,
            site_url=None,
            fetched_at=FETCHED_AT,
        )
        try:
            count += len(normalize_feed(parse_feed(body), context))
        except ParseError:
            continue
    return count


def measure(
    run: Callable[[list[tuple[str, bytes]]], int], bodies: list[tuple[str, bytes]], repeats: int
) -> tuple[float, int]:
    """Return the median CPU time of ``repeats`` runs and the entry count of the last."""
    # CPU time, not wall time: the machine is shared, and a busy neighbour must not move the numbers.
    times = []
    count = 0
    for _ in range(repeats):
        started = time.process_time()
        count = run(bodies)
        times.append(time.process_time() - started)
    return statistics.median(times), count


def main() -> int:
    """Print the medians and the ratio; exit 2 when the corpus is absent."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if not CORPUS.is_dir():
        print(f"{CORPUS}: corpus not present", file=sys.stderr)
        return 2
    warnings.simplefilter("ignore")  # feedparser's deprecation notices are not what we measure
    bodies = load_bodies()
    # The baseline first, while none of our modules is loaded: plain feedparser, as shipped.
    raw_feedparser(bodies)
    assert not [name for name in sys.modules if name.split(".")[0] in {"aggregator", "index", "web"}]
    baseline, baseline_entries = measure(raw_feedparser, bodies, args.repeats)
    # One warm-up pass: the language model loads and the word-hash cache fills once per process.
    parse_and_normalize(bodies)
    parsed, parsed_entries = measure(parse_only, bodies, args.repeats)
    ours, our_entries = measure(parse_and_normalize, bodies, args.repeats)
    size = sum(len(body) for _name, body in bodies) / 1e6
    print(f"corpus: {len(bodies)} bodies, {size:.1f} MB; CPU time, medians of {args.repeats} runs")
    print(f"feedparser.parse (defaults)    {baseline:7.3f} s  {baseline_entries:6d} entries")
    print(f"parse_feed                     {parsed:7.3f} s  {parsed_entries:6d} entries")
    print(f"parse_feed + normalize_feed    {ours:7.3f} s  {our_entries:6d} entries")
    per_entry = (ours - parsed) / max(our_entries, 1) * 1000
    print(f"normalize alone: {ours - parsed:.3f} s, {per_entry:.2f} ms per entry")
    print(f"ratio (parse+normalize / raw feedparser): {ours / baseline:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
