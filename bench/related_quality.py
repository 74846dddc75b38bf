"""Related-coverage quality and latency on real story clusters, against Whoosh's more_like_this.

    .venv/bin/python bench/related_quality.py [--work-dir DIR] [--queries 2000] [--held-out 1000]

Reads ../shared/corpus/stories/uci-news-aggregator-dev.tsv.gz (headlines of many outlets, each
with a STORY id), leaves 1,000 whole stories out, ingests the rest through the real path
(normalize_feed -> Store.save_entries -> Indexer.catch_up, one feed per publisher), then:

- quality: for 2,000 headlines whose story has >= 5 items from >= 3 other publishers within
  +/- 7 days (identical titles not counted), the top 5 related items: P@5, Hit@1, nR@5, and the
  mean number of distinct publishers shown;
- abstention: one headline of each held-out story asked by title (as an embedding page would):
  the share that shows anything is the false-related rate;
- latency of GET /api/v1/related through the real app under waitress on 127.0.0.1.

The baseline is Whoosh's `more_like` with its defaults (title field, 5 key terms, Bo1 model),
with the same exclusions applied to what it returns. The store and index are kept in the work
directory and reused by later runs with the same corpus and held-out set.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import gzip
import io
import json
import random
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from aggregator.config import config_from_dict  # noqa: E402
from aggregator.models import FeedContext, ParsedEntry, ParsedFeed  # noqa: E402
from aggregator.normalize import normalize_feed  # noqa: E402
from aggregator.store import open_store  # noqa: E402
from index.indexer import Indexer  # noqa: E402
from index.related.finder import RelatedFinder  # noqa: E402
from index.related.rank import (  # noqa: E402
    ArticleQuery,
    RelatedSettings,
    title_key,
)
from index.search.engine import IndexReader  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpus" / "stories" / "uci-news-aggregator-dev.tsv.gz"
WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class Row:
    """One headline of the corpus."""

    id: str
    title: str
    url: str
    publisher: str
    story: str
    hostname: str
    published_at: datetime


def read_rows(path: Path) -> list[Row]:
    """Return the corpus rows."""
    rows = []
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader)
        for record in reader:
            if len(record) != 8:
                continue
            rid, title, url, publisher, _category, story, hostname, stamp = record
            rows.append(
                Row(rid, title, url, publisher, story, hostname, datetime.fromtimestamp(int(stamp) / 1000, UTC))
            )
    return rows


def feed_key(publisher: str) -> str:
    """Return the feed key the bench gives a publisher's feed."""
    return f"uci-publisher:{publisher}"


def ingest(rows: list[Row], work: Path) -> None:
    """Store and index ``rows`` through normalize -> store -> index, one feed per publisher."""
    store = open_store(f"sqlite:///{work / 'store.db'}")
    store.migrate()
    by_publisher: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_publisher[row.publisher].append(row)
    started = time.perf_counter()
    fetched_at = datetime(2014, 9, 1, tzinfo=UTC)
    for count, (publisher, items) in enumerate(sorted(by_publisher.items()), 1):
        key = feed_key(publisher)
        site = f"https://{items[0].hostname}/"
        feed = store.add_feed(key, title=publisher, origin="bench")
        parsed = ParsedFeed(
            title=publisher,
            site_url=site,
            language="en",
            ttl_minutes=None,
            update_period=None,
            update_frequency=None,
            base=None,
            entries=tuple(
                ParsedEntry(
                    guid=f"uci:{row.id}",
                    link=row.url,
                    original_link=None,
                    title=row.title,
                    title_type="text/plain",
                    summary=None,
                    contents=(),
                    authors=(),
                    published_raw=format_datetime(row.published_at),
                    updated_raw=None,
                    tags=(),
                    media=(),
                    language="en",
                    base=None,
                )
                for row in items
            ),
            version="rss20",
        )
        context = FeedContext(
            feed_key=feed.key, feed_url=key, source_title=publisher, site_url=site, fetched_at=fetched_at
        )
        store.save_entries(feed.id, normalize_feed(parsed, context), seen_at=fetched_at)
        if count % 2000 == 0:
            print(f"  stored {count}/{len(by_publisher)} publishers ({time.perf_counter() - started:.0f}s)", flush=True)
    stored = time.perf_counter()
    print(f"  stored {store.count_entries()} entries in {stored - started:.0f}s; indexing...", flush=True)
    stats = Indexer(work / "index", store, batch_size=5000).catch_up()
    Indexer(work / "index", store).optimize()
    print(f"  indexed {stats.upserts} in {time.perf_counter() - stored:.0f}s", flush=True)
    store.close()


def entry_ids_by_row(work: Path) -> dict[str, str]:
    """Return corpus row id -> stored entry id."""
    store = open_store(f"sqlite:///{work / 'store.db'}")
    ids = {}
    for entry in store.iter_entries(5000):
        ids[entry.identity.removeprefix("uci:")] = entry.id
    store.close()
    return ids


def eligible_counts(row: Row, story_rows: list[Row]) -> tuple[int, int]:
    """Return (items, publishers) of other outlets' non-identical coverage within the window."""
    own = title_key(row.title)
    items = [
        other
        for other in story_rows
        if other.publisher != row.publisher
        and title_key(other.title) != own
        and abs(other.published_at - row.published_at) <= WINDOW
    ]
    return len(items), len({other.publisher for other in items})


@dataclass
class Scores:
    """Quality figures of one method."""

    shown: int = 0
    correct: int = 0
    hit1: int = 0
    recall: float = 0.0
    publishers: int = 0
    queries: int = 0
    empty: int = 0

    def line(self, name: str) -> str:
        """Return the figures as one report line."""
        q = max(self.queries, 1)
        return (
            f"{name:<22} P@5={self.correct / max(self.shown, 1):.3f}  Hit@1={self.hit1 / q:.3f}  "
            f"nR@5={self.recall / q:.3f}  publishers@5={self.publishers / q:.2f}  "
            f"shown/query={self.shown / q:.2f}  empty={self.empty / q:.1%}"
        )

    def as_dict(self) -> dict[str, float]:
        """Return the figures as a dict (for --json)."""
        q = max(self.queries, 1)
        return {
            "p_at_5": round(self.correct / max(self.shown, 1), 4),
            "hit_at_1": round(self.hit1 / q, 4),
            "nr_at_5": round(self.recall / q, 4),
            "publishers_at_5": round(self.publishers / q, 3),
            "empty_share": round(self.empty / q, 4),
        }


def score(scores: Scores, row: Row, shown: list[Row], eligible: int) -> None:
    """Add one query's top 5 to the figures."""
    shown = shown[:5]
    same = [s for s in shown if s.story == row.story]
    scores.queries += 1
    scores.shown += len(shown)
    scores.correct += len(same)
    scores.hit1 += bool(shown and shown[0].story == row.story)
    scores.recall += len(same) / min(5, eligible)
    scores.publishers += len({s.publisher for s in shown})
    scores.empty += not shown


def baseline_related(searcher, row: Row, entry_id: str | None, rows_by_entry: dict[str, Row]) -> list[Row]:
    """Return Whoosh more_like (defaults) results with the bench's exclusions applied."""
    docnum = searcher.document_number(id=entry_id) if entry_id else None
    results = searcher.more_like(-1 if docnum is None else docnum, "title", text=row.title, top=30)
    own = title_key(row.title)
    shown = []
    for hit in results:
        other = rows_by_entry.get(hit["id"])
        if other is None or other.publisher == row.publisher or title_key(other.title) == own:
            continue
        shown.append(other)
        if len(shown) == 5:
            break
    return shown


def measure_latency(work: Path, queries: list[str], titles: list[dict[str, str]]) -> dict[str, float]:
    """Return p50/p95 milliseconds of GET /api/v1/related through waitress: by entry (uncached, cached), by title."""
    import threading

    import httpx
    from waitress.server import create_server

    from web.app import create_app

    config = config_from_dict(
        {
            "data_dir": str(work),
            "database_url": f"sqlite:///{work / 'store.db'}",
            "server": {"rate_limit_per_minute": 10**9},
        },
        label="bench",
    )
    app = create_app(config)
    # The real app under waitress on 127.0.0.1, as `newsdesk run` serves it; a daemon thread that
    # ends with the process (closing waitress under a running loop only prints noise).
    server: Any = create_server(app, host="127.0.0.1", port=0, threads=8, ident="newsdesk-bench")
    threading.Thread(target=server.run, daemon=True).start()
    base = f"http://127.0.0.1:{server.effective_port}"
    figures: dict[str, float] = {}
    with httpx.Client(base_url=base, timeout=30) as client:
        client.get("/api/v1/related", params={"entry": queries[0]}).raise_for_status()  # open the index once
        passes = {
            "uncached": [{"entry": entry_id} for entry_id in queries],
            "cached": [{"entry": entry_id} for entry_id in queries],
            "title": titles,
        }
        for label, requests in passes.items():
            times = []
            for params in requests:
                started = time.perf_counter()
                response = client.get("/api/v1/related", params=params)
                times.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
            times.sort()
            figures[f"{label}_p50_ms"] = round(statistics.median(times), 2)
            figures[f"{label}_p95_ms"] = round(times[int(len(times) * 0.95) - 1], 2)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/newsdesk-bench-related"))
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--held-out", type=int, default=1000)
    parser.add_argument("--latency-queries", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2014, help="chooses the held-out stories")
    parser.add_argument(
        "--query-seed",
        type=int,
        default=None,
        help="draw other queries and probes (a check that the calibration holds)",
    )
    parser.add_argument("--threshold", type=float, default=None, help="override the similarity threshold")
    parser.add_argument("--sweep", action="store_true", help="also print figures over a range of thresholds")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--json", type=Path, help="write the figures to this file as JSON")
    args = parser.parse_args()
    if not args.corpus.exists():
        print(f"{args.corpus} is not present; nothing to measure", file=sys.stderr)
        return 2

    rows = read_rows(args.corpus)
    rng = random.Random(args.seed)
    by_story: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_story[row.story].append(row)
    stories = sorted(by_story)
    held_out = set(rng.sample(stories, args.held_out))
    indexed_rows = [row for row in rows if row.story not in held_out]
    print(f"corpus: {len(rows)} headlines, {len(stories)} stories, {len({r.publisher for r in rows})} publishers")

    work: Path = args.work_dir
    marker = work / "bench-ready.json"
    signature = {"corpus": str(args.corpus), "rows": len(indexed_rows), "seed": args.seed, "held_out": args.held_out}
    if not marker.exists() or json.loads(marker.read_text()) != signature:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        print(f"ingesting {len(indexed_rows)} headlines into {work} ...", flush=True)
        ingest(indexed_rows, work)
        marker.write_text(json.dumps(signature))
    ids = entry_ids_by_row(work)
    rows_by_entry = {ids[row.id]: row for row in indexed_rows if row.id in ids}
    print(f"index: {len(rows_by_entry)} entries of {len(indexed_rows)} rows")

    candidates = []
    for row in indexed_rows:
        if row.id not in ids:
            continue
        items, publishers = eligible_counts(row, by_story[row.story])
        if items >= 5 and publishers >= 3:
            candidates.append((row, items))
    if args.query_seed is not None:
        rng = random.Random(args.query_seed)
    sample = rng.sample(candidates, min(args.queries, len(candidates)))
    print(f"quality queries: {len(sample)} (of {len(candidates)} eligible headlines)")
    probes = [rng.choice(by_story[story]) for story in sorted(held_out)]

    settings = RelatedSettings() if args.threshold is None else RelatedSettings(threshold=args.threshold)
    store = open_store(f"sqlite:///{work / 'store.db'}")
    reader = IndexReader(work / "index")
    searcher = reader.searcher()
    assert searcher is not None
    report: dict[str, object] = {"settings": dataclasses.asdict(settings)}

    # ------------------------------------------------------------ ours
    finder = RelatedFinder(reader, store, settings)
    ours = Scores()
    started = time.perf_counter()
    for row, eligible in sample:
        items = finder.find(_entry_query(store, ids[row.id]), limit=5)
        score(ours, row, [rows_by_entry[i.entry.id] for i in items], eligible)
    ours_seconds = time.perf_counter() - started
    false_related = 0
    for row in probes:
        if finder.find(_title_query(row), limit=5):
            false_related += 1

    # ------------------------------------------------------------ baseline
    base = Scores()
    started = time.perf_counter()
    for row, eligible in sample:
        score(base, row, baseline_related(searcher, row, ids[row.id], rows_by_entry), eligible)
    base_seconds = time.perf_counter() - started
    base_false = sum(1 for row in probes if baseline_related(searcher, row, None, rows_by_entry))

    print()
    print(
        f"similarity threshold={settings.threshold}  evidence threshold={settings.evidence_threshold} "
        f"(x exp(-h/{settings.evidence_hours:g}h))  ranking time scale={settings.time_hours:g}h "
        f"floor={settings.time_floor}  window=+/-7d  max_per_source={settings.max_per_source}"
    )
    print(ours.line("newsdesk related"))
    print(base.line("whoosh more_like"))
    print(
        f"false-related rate     newsdesk={false_related / len(probes):.1%}  "
        f"more_like={base_false / len(probes):.1%}  ({len(probes)} held-out stories)"
    )
    print(
        f"in-process time/query  newsdesk={ours_seconds / len(sample) * 1000:.1f} ms  "
        f"more_like={base_seconds / len(sample) * 1000:.1f} ms  "
        f"ratio={ours_seconds / max(base_seconds, 1e-9):.2f}x"
    )
    report["newsdesk"] = {**ours.as_dict(), "false_related": round(false_related / len(probes), 4)}
    report["more_like"] = {**base.as_dict(), "false_related": round(base_false / len(probes), 4)}

    if args.sweep:
        print("\nevidence-threshold sweep (newsdesk; the abstention knob):")
        for threshold in (0.15, 0.2, 0.25, 0.3, 0.35):
            swept = RelatedFinder(reader, store, replace(settings, evidence_threshold=threshold))
            s = Scores()
            for row, eligible in sample:
                items = swept.find(_entry_query(store, ids[row.id]), limit=5)
                score(s, row, [rows_by_entry[i.entry.id] for i in items], eligible)
            fr = sum(1 for row in probes if swept.find(_title_query(row), limit=5)) / len(probes)
            print(f"  {s.line(f't={threshold}')}  false-related={fr:.1%}")

    if not args.skip_latency:
        latency_ids = [ids[row.id] for row, _ in sample[: args.latency_queries]]
        titles = [
            {"title": row.title, "url": row.url, "date": row.published_at.isoformat()}
            for row in probes[: args.latency_queries]
        ]
        figures = measure_latency(work, latency_ids, titles)
        report["api_latency"] = figures
        print(
            f"API latency (GET /api/v1/related?entry=, {len(latency_ids)} requests, waitress on 127.0.0.1): "
            f"first ask p50={figures['uncached_p50_ms']} ms p95={figures['uncached_p95_ms']} ms; "
            f"repeat (cached) p50={figures['cached_p50_ms']} ms p95={figures['cached_p95_ms']} ms; "
            f"by title+url+date (embed path, {len(titles)} held-out headlines) "
            f"p50={figures['title_p50_ms']} ms p95={figures['title_p95_ms']} ms"
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    reader.close()
    store.close()
    return 0


_ENTRY_CACHE: dict[str, ArticleQuery] = {}


def _entry_query(store, entry_id: str) -> ArticleQuery:
    """Return the query for a stored entry (cached: the sweep asks the same ones again)."""
    from index.related.finder import query_for_entry

    query = _ENTRY_CACHE.get(entry_id)
    if query is None:
        entry = store.get_entry(entry_id)
        assert entry is not None
        query = _ENTRY_CACHE[entry_id] = query_for_entry(entry)
    return query


def _title_query(row: Row) -> ArticleQuery:
    """Return the query an embedding page would send for a headline we do not have."""
    from index.schema import site_of

    return ArticleQuery(title=row.title, published_at=row.published_at, site=site_of(row.url) or None)


if __name__ == "__main__":
    sys.stdout = io.TextIOWrapper(sys.stdout.buffer, line_buffering=True)
    raise SystemExit(main())
