"""Normalization throughput against raw feedparser.parse (its defaults) on the same 200 real feed bodies.

Usage: .venv/bin/python bench/normalize.py [--repeats N] [--baseline REV]

Prints the median CPU time over N repeats of: raw feedparser.parse with its defaults (sanitizer and
relative-URI pass on), our parse_feed alone (feedparser with those passes off), and parse_feed +
normalize_feed (what a poll does), plus the ratio of the last to the first.

The baseline is plain feedparser: it is measured before any of our modules is imported (they change
nothing in feedparser anyway; tests/test_architecture.py checks that), so nothing of ours can speed it up.

--baseline REV also times parse_feed and parse_feed + normalize_feed as of git revision REV (checked
out into a temporary worktree, run in a process of its own with this venv's libraries) and prints the
ratios of each stage, so that a change in our code is told apart from a change in the machine.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.baseline import checkout, run_in_tree, short_id, use_tree  # noqa: E402

use_tree()  # --baseline's own process imports that revision's code

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


def our_stages(bodies: list[tuple[str, bytes]], repeats: int) -> dict[str, float]:
    """Return the median CPU times of parse_feed and of parse_feed + normalize_feed, and their entry counts."""
    # One warm-up pass: the language model loads and the word-hash cache fills once per process.
    parse_and_normalize(bodies)
    parsed, parsed_entries = measure(parse_only, bodies, repeats)
    ours, our_entries = measure(parse_and_normalize, bodies, repeats)
    return {"parse": parsed, "parse_entries": parsed_entries, "both": ours, "entries": our_entries}


def baseline_stages(revision: str, repeats: int) -> dict[str, float]:
    """Return ``our_stages`` as measured on the code of git revision ``revision``, in a process of its own."""
    with checkout(revision) as tree:
        done = run_in_tree([sys.executable, __file__, "--stages-only", f"--repeats={repeats}"], tree)
    if done.returncode != 0:
        raise SystemExit(f"the baseline {revision} failed:\n{done.stderr[-4000:]}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main() -> int:
    """Print the medians and the ratio; exit 2 when the corpus is absent."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline", metavar="REV", help="also time our stages as of git revision REV")
    parser.add_argument("--stages-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not CORPUS.is_dir():
        print(f"{CORPUS}: corpus not present", file=sys.stderr)
        return 2
    warnings.simplefilter("ignore")  # feedparser's deprecation notices are not what we measure
    bodies = load_bodies()
    if args.stages_only:
        print(json.dumps(our_stages(bodies, args.repeats)))
        return 0
    # The baseline first, while none of our modules is loaded: plain feedparser, as shipped.
    raw_feedparser(bodies)
    assert not [name for name in sys.modules if name.split(".")[0] in {"aggregator", "index", "web"}]
    baseline, baseline_entries = measure(raw_feedparser, bodies, args.repeats)
    stages = our_stages(bodies, args.repeats)
    parsed, parsed_entries, ours, our_entries = (
        stages["parse"],
        int(stages["parse_entries"]),
        stages["both"],
        int(stages["entries"]),
    )
    size = sum(len(body) for _name, body in bodies) / 1e6
    print(f"corpus: {len(bodies)} bodies, {size:.1f} MB; CPU time, medians of {args.repeats} runs")
    print(f"feedparser.parse (defaults)    {baseline:7.3f} s  {baseline_entries:6d} entries")
    print(f"parse_feed                     {parsed:7.3f} s  {parsed_entries:6d} entries")
    print(f"parse_feed + normalize_feed    {ours:7.3f} s  {our_entries:6d} entries")
    per_entry = (ours - parsed) / max(our_entries, 1) * 1000
    print(f"normalize alone: {ours - parsed:.3f} s, {per_entry:.2f} ms per entry")
    print(f"ratio (parse+normalize / raw feedparser): {ours / baseline:.2f}x")
    if args.baseline:
        before = baseline_stages(args.baseline, args.repeats)
        was_normalize = before["both"] - before["parse"]
        print(f"as of {short_id(args.baseline)} (same venv, measured next):")
        print(f"parse_feed                     {before['parse']:7.3f} s  {int(before['parse_entries']):6d} entries")
        print(f"parse_feed + normalize_feed    {before['both']:7.3f} s  {int(before['entries']):6d} entries")
        print(
            f"this tree against {short_id(args.baseline)}: parse {parsed / before['parse']:.2f}x, "
            f"normalize {(ours - parsed) / max(was_normalize, 1e-9):.2f}x, both {ours / before['both']:.2f}x"
        )
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
