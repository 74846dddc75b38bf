"""Search benchmark: real news text through normalize -> store -> index, then a fixed query mix.

Builds the corpus from ../shared/corpus (Reuters-21578, the BBC articles and the UCI headlines),
then reports, each next to a baseline measured in the same run:
  - indexing throughput of our Indexer (store change log -> Whoosh) vs raw Whoosh adding the
    same prepared documents with the same schema (target ratio >= 0.8);
  - query latency p50/p95/p99 over ~300 queries, through index.search.search and through
    GET /api/v1/search on a real waitress server, vs the `reader` library (SQLite FTS5) on the
    same corpus and query mix;
  - index size on disk and peak memory.

Usage: .venv/bin/python bench/search.py [--limit N] [--queries N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import gzip
import html
import itertools
import random
import re
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from aggregator.config import config_from_dict  # noqa: E402
from aggregator.models import FeedContext, ParsedContent, ParsedEntry, ParsedFeed  # noqa: E402
from aggregator.normalize import normalize_feed  # noqa: E402
from index.indexer import Indexer  # noqa: E402
from index.schema import build_schema, entry_document  # noqa: E402
from index.search.engine import Filters, search  # noqa: E402
from web.services import build_services  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpus"
REUTERS = CORPUS / "news" / "reuters21578__colibri17__TextCategorization" / "reuters21578"
BBC = CORPUS / "news" / "bbc_greene2006__moztom__bbc_ml" / "bbc"
UCI = CORPUS / "stories" / "uci-news-aggregator-dev.tsv.gz"
UCI_CATEGORIES = {"b": "business", "t": "science and technology", "e": "entertainment", "m": "health"}
BATCH = 2000
NOW = datetime(2026, 3, 1, tzinfo=UTC)


# ---------------------------------------------------------------- corpus -> parsed feeds


class Item:
    """One article of the corpus, before it becomes a ParsedEntry."""

    __slots__ = ("body", "guid", "link", "published", "tags", "title")

    def __init__(self, guid: str, title: str, body: str, link: str, published: datetime, tags: tuple[str, ...]):
        self.guid, self.title, self.body, self.link, self.published, self.tags = (
            guid,
            title,
            body,
            link,
            published,
            tags,
        )


def reuters_items(limit: int | None) -> Iterator[Item]:
    """Yield Reuters-21578 stories with a title."""
    count = 0
    for path in sorted(REUTERS.glob("reut2-*.sgm")):
        text = path.read_bytes().decode("latin-1")
        for block in re.findall(r"<REUTERS(.*?)</REUTERS>", text, re.S):
            title = re.search(r"<TITLE>(.*?)</TITLE>", block, re.S)
            if not title:
                continue
            body = re.search(r"<BODY>(.*?)</BODY>", block, re.S)
            date = re.search(r"<DATE>\s*(\d+-\w+-\d+)", block)
            newid = re.search(r'NEWID="(\d+)"', block)
            topics = tuple(re.findall(r"<D>(.*?)</D>", (re.search(r"<TOPICS>(.*?)</TOPICS>", block) or [""])[0]))
            # Some Reuters times are garbled ("605:12:19"): the day is enough, spread by story number.
            day = datetime.strptime(date.group(1), "%d-%b-%Y").replace(tzinfo=UTC) if date else NOW
            when = day + timedelta(minutes=count % 1440)
            ident = newid.group(1) if newid else str(count)
            yield Item(
                f"reuters-{ident}",
                html.unescape(title.group(1)).strip(),
                html.unescape(body.group(1)).replace("\x03", "").strip() if body else "",
                f"https://reuters.example/article/{ident}",
                when,
                topics,
            )
            count += 1
            if limit and count >= limit:
                return


def bbc_items(limit: int | None) -> Iterator[Item]:
    """Yield the BBC articles (no dates in the corpus: spread deterministically over 2004-05)."""
    for count, path in enumerate(sorted(BBC.glob("*/*.txt"))):
        lines = path.read_bytes().decode("utf-8", "replace").split("\n")
        title, body = lines[0].strip(), "\n\n".join(p.strip() for p in lines[1:] if p.strip())
        when = datetime(2004, 6, 1, tzinfo=UTC) + timedelta(hours=count * 3)
        slug = f"{path.parent.name}-{path.stem}"
        yield Item(f"bbc-{slug}", title, body, f"https://bbc.example/news/{slug}", when, (path.parent.name,))
        if limit and count + 1 >= limit:
            return


def uci_items(limit: int | None) -> Iterator[tuple[str, Item]]:
    """Yield (publisher, headline item) from the UCI News Aggregator sample."""
    with gzip.open(UCI, "rt", encoding="utf-8", errors="replace") as handle:
        next(handle)
        for count, line in enumerate(handle):
            if limit and count >= limit:
                return
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 8:
                continue
            ident, title, url, publisher, category, _story, _host, stamp = parts[:8]
            when = datetime.fromtimestamp(int(stamp) / 1000, UTC) if stamp.isdigit() else NOW
            publisher = publisher.replace("\\(", "(").replace("\\)", ")").strip() or "unknown"
            yield publisher, Item(f"uci-{ident}", title, "", url, when, (UCI_CATEGORIES.get(category, category),))


def parsed_feed(title: str, site: str, items: list[Item]) -> ParsedFeed:
    """Return a ParsedFeed holding ``items`` as a feed would carry them."""
    entries = tuple(
        ParsedEntry(
            guid=item.guid,
            link=item.link,
            original_link=None,
            title=item.title,
            title_type="text/plain",
            summary=None,
            contents=(ParsedContent("".join(f"<p>{html.escape(p)}</p>" for p in item.body.split("\n\n")), "text/html"),)
            if item.body
            else (),
            authors=(),
            published_raw=format_datetime(item.published, usegmt=True),
            updated_raw=None,
            tags=item.tags,
            media=(),
            language=None,
            base=None,
        )
        for item in items
    )
    return ParsedFeed(title, site, "en", None, None, None, None, entries, "rss20")


def corpus_feeds(limit: int | None) -> Iterator[tuple[str, str, list[Item]]]:
    """Yield (outlet title, site URL, items) for every outlet of the corpus."""
    yield "Reuters", "https://reuters.example/", list(reuters_items(limit))
    yield "BBC News", "https://bbc.example/", list(bbc_items(limit))
    by_publisher: dict[str, list[Item]] = defaultdict(list)
    for publisher, item in uci_items(limit * 8 if limit else None):
        by_publisher[publisher].append(item)
    for publisher, items in sorted(by_publisher.items()):
        slug = re.sub(r"[^a-z0-9]+", "-", publisher.lower()).strip("-") or "x"
        yield publisher, f"https://{slug}.example/", items


# ---------------------------------------------------------------- measuring


def percentiles(values: list[float]) -> tuple[float, float, float]:
    """Return p50, p95 and p99 of ``values`` (milliseconds in, milliseconds out)."""
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    return at(0.5), at(0.95), at(0.99)


def timed(run: Callable[[], Any]) -> float:
    """Return how long ``run`` took, in milliseconds."""
    started = time.perf_counter()
    run()
    return (time.perf_counter() - started) * 1000


def dir_size(path: Path) -> int:
    """Return the bytes of every file under ``path``."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def peak_rss_mb() -> float:
    """Return this process's peak resident memory so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


_STOP_WORDS = (
    "the a an and or of to in on for with at by from as is are was were be been that this it its said says will "
    "would could should has have had not but than then they their there which who whom what when where new over "
    "into after before about more most also year years percent mln pct dlrs"
)
_STOP = frozenset(_STOP_WORDS.split())


def query_mix(
    titles: list[str], sources: list[str], count: int, seed: int = 5
) -> list[tuple[str, str, dict[str, Any]]]:
    """Return (kind, query text, options) for a fixed mix of single words, ANDs, phrases, filtered, sorted, zero-hit."""
    rng = random.Random(seed)
    words_of = [[w for w in re.findall(r"[A-Za-z]{4,}", t.lower()) if w not in _STOP] for t in titles]
    usable = [w for w in words_of if len(w) >= 2]
    shares = {"word": 0.27, "and": 0.23, "phrase": 0.17, "filtered": 0.13, "newest": 0.13, "zero": 0.07}
    mix: list[tuple[str, str, dict[str, Any]]] = []
    for kind, share in shares.items():
        for _ in range(max(1, round(count * share))):
            words = rng.choice(usable)
            if kind == "word":
                mix.append((kind, rng.choice(words), {}))
            elif kind == "and":
                mix.append((kind, " ".join(rng.sample(words, 2)), {}))
            elif kind == "phrase":
                i = rng.randrange(len(words) - 1)
                mix.append((kind, f'"{words[i]} {words[i + 1]}"', {}))
            elif kind == "filtered":
                mix.append((kind, rng.choice(words), {"source": rng.choice(sources)}))
            elif kind == "newest":
                mix.append((kind, rng.choice(words), {"sort": "newest"}))
            else:
                mix.append((kind, "".join(rng.choice("qxzjkvw") for _ in range(9)), {}))
    return mix


# ---------------------------------------------------------------- the peer: reader (SQLite FTS5)


def build_reader(path: Path, feeds: list[tuple[str, str, list[Any]]]) -> tuple[Any, float]:
    """Return a `reader` Reader holding the same entries, search enabled, and its indexing seconds."""
    from reader import make_reader
    from reader._types import EntryUpdateIntent, entry_data_from_obj

    reader = make_reader(str(path))
    now = datetime.now(UTC)
    for title, url, entries in feeds:
        reader.add_feed(url, allow_invalid_url=True)
        reader.set_feed_user_title(url, title)
        # reader's public add_entry commits one entry per transaction; its storage's batch method
        # is what its own updater uses, so the baseline is not slowed by our choice of API.
        intents = [
            EntryUpdateIntent(
                entry=entry_data_from_obj(
                    {
                        "feed_url": url,
                        "id": e.id,
                        "title": e.title,
                        "link": e.url,
                        "published": e.published_at,
                        "summary": e.summary,
                        "content": [{"value": e.text, "type": "text/plain"}] if e.text else [],
                    }
                ),
                last_updated=now,
                first_updated=now,
                first_updated_epoch=now,
                recent_sort=e.published_at,
                added_by="user",
            )
            for e in entries
        ]
        reader._storage.add_or_update_entries(intents)
    reader.enable_search()
    started = time.perf_counter()
    reader.update_search()
    return reader, time.perf_counter() - started


def reader_query(text: str, options: dict[str, Any], feed_urls: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """Return the FTS5 query and search_entries options equivalent to one of our queries."""
    kwargs: dict[str, Any] = {"limit": 20}
    if options.get("sort") == "newest":
        kwargs["sort"] = "recent"
    if "source" in options:
        kwargs["feed"] = feed_urls[options["source"]]
    return text, kwargs


# ---------------------------------------------------------------- main


def main() -> int:
    """Run the benchmark and print its figures; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=None, help="At most N Reuters and N BBC articles, 8N headlines.")
    parser.add_argument("--queries", type=int, default=300, help="Queries in the mix (default 300).")
    parser.add_argument("--keep", type=Path, default=None, help="Build in DIR and keep it (default: a temp dir).")
    parser.add_argument("--no-reader", action="store_true", help="Skip the reader (FTS5) peer.")
    parser.add_argument(
        "--reuse", action="store_true", help="With --keep: reuse what an earlier run built there; time queries only."
    )
    args, _unknown = parser.parse_known_args()
    if not (REUTERS.is_dir() and BBC.is_dir() and UCI.exists()):
        print("../shared/corpus is not present: nothing to measure", file=sys.stderr)
        return 0
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="newsdesk-bench-search-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        return run(workdir, args)
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


def run(workdir: Path, args: argparse.Namespace) -> int:
    """Run every phase in ``workdir``."""
    config = config_from_dict({"data_dir": str(workdir / "data")}, label="bench")
    services = build_services(config)
    store = services.store

    if args.reuse and store.count_entries():
        merge_segments(config, store)
        return run_queries(workdir, args, config, services, *_corpus_titles(args.limit))

    # 1. normalize -> store (not part of the indexing comparison, reported for context).
    started = time.perf_counter()
    feed_titles: list[str] = []
    titles: list[str] = []
    normalized = 0
    for title, site, items in corpus_feeds(args.limit):
        feed = store.add_feed(site + "feed.xml", title=title)
        context = FeedContext(feed.key, feed.url, title, site, NOW, "UTC", "en")
        entries = normalize_feed(parsed_feed(title, site, items), context)
        store.save_entries(feed.id, entries, seen_at=NOW)
        normalized += len(entries)
        feed_titles.append(title)
        titles.extend(i.title for i in items[:50])
    normalize_seconds = time.perf_counter() - started
    print(
        f"corpus: {normalized} entries from {len(feed_titles)} outlets, normalized and stored in "
        f"{normalize_seconds:.1f}s ({normalized / normalize_seconds:.0f}/s)",
        flush=True,
    )

    # 2. raw Whoosh on the same prepared documents (the baseline), then our indexer from the change log.
    documents = [entry_document(e) for e in store.iter_entries()]
    from whoosh import index as whoosh_index

    raw_dir = workdir / "raw-whoosh"
    raw_dir.mkdir()
    raw_ix = whoosh_index.create_in(str(raw_dir), build_schema())
    started = time.perf_counter()
    for start in range(0, len(documents), BATCH):
        writer = raw_ix.writer(limitmb=128)
        for doc in documents[start : start + BATCH]:
            writer.add_document(**doc)
        writer.commit(merge=True)
    raw_seconds = time.perf_counter() - started
    raw_size = dir_size(raw_dir)
    del documents, raw_ix
    shutil.rmtree(raw_dir, ignore_errors=True)

    started = time.perf_counter()
    stats = Indexer(config.index_dir, store, batch_size=BATCH).catch_up()
    ours_seconds = time.perf_counter() - started
    ours_rate, raw_rate = stats.upserts / ours_seconds, normalized / raw_seconds
    live_dir = services.index_reader.location.current_dir()
    assert live_dir is not None
    print(
        f"indexing: ours {ours_rate:.0f} docs/s ({ours_seconds:.1f}s, {stats.commits} commits) | "
        f"raw Whoosh {raw_rate:.0f} docs/s ({raw_seconds:.1f}s) | ratio ours/raw {ours_rate / raw_rate:.2f} "
        "(target >= 0.8)",
        flush=True,
    )
    print(
        f"index size: ours {dir_size(live_dir) / 2**20:.1f} MiB | raw Whoosh {raw_size / 2**20:.1f} MiB | "
        f"peak RSS so far {peak_rss_mb():.0f} MiB",
        flush=True,
    )

    merge_segments(config, store)
    return run_queries(workdir, args, config, services, feed_titles, titles)


def merge_segments(config: Any, store: Any) -> None:
    """Run the merge `newsdesk run` schedules every few hours, so queries meet a steady-state index."""
    indexer = Indexer(config.index_dir, store, batch_size=BATCH)
    before = indexer.segment_count()
    started = time.perf_counter()
    merged = indexer.optimize_if_needed()
    print(
        f"segments: {before} after indexing; scheduled merge {'ran' if merged else 'not needed'} "
        f"({time.perf_counter() - started:.1f}s) -> {indexer.segment_count()}",
        flush=True,
    )


def _corpus_titles(limit: int | None) -> tuple[list[str], list[str]]:
    """Return outlet titles and sample titles (50 per outlet) exactly as a fresh run draws its query mix."""
    feed_titles: list[str] = []
    titles: list[str] = []
    for title, _site, items in corpus_feeds(limit):
        feed_titles.append(title)
        titles.extend(i.title for i in items[:50])
    return feed_titles, titles


def run_queries(
    workdir: Path, args: argparse.Namespace, config: Any, services: Any, feed_titles: list[str], titles: list[str]
) -> int:
    """Time the query mix through search(), the HTTP API and the reader peer; print the figures."""
    store = services.store
    normalized = store.count_entries()
    # 3. queries through the search function.
    counts = Counter(feed_titles)
    sources = ["Reuters", "BBC News", *[t for t, _ in counts.most_common(12) if t not in ("Reuters", "BBC News")]]
    mix = query_mix(titles, sources[:10], args.queries)

    def ours(text: str, options: dict[str, Any]) -> Any:
        filters = Filters(sources=(options["source"],)) if "source" in options else None
        return search(
            services.index_reader, store, text, per_page=20, filters=filters, sort=options.get("sort", "relevance")
        )

    started = time.perf_counter()
    ours("warm up", {})
    print(f"first query (opens the index, reads its columns): {(time.perf_counter() - started) * 1000:.0f} ms")
    for text, options in ((t, o) for _k, t, o in mix[:20]):
        ours(text, options)
    ours_ms = {kind: [] for kind, _t, _o in mix}  # type: dict[str, list[float]]
    totals = []
    for kind, text, options in mix:
        ours_ms[kind].append(timed(lambda t=text, o=options: totals.append(ours(t, o).total)))
    all_ours = [v for values in ours_ms.values() for v in values]
    # The same mix again: a next page or a popular query re-runs a search whose terms' scores are cached.
    again_ms = [timed(lambda t=text, o=options: ours(t, o)) for _kind, text, options in mix]

    # 4. the same through the HTTP API on a real server.
    import httpx

    from tests.support.live import LiveServer
    from web.app import create_app

    api_ms: list[float] = []
    services.index_reader.tables.term_scores.clear()  # the API pass starts as cold as the first one
    with LiveServer(create_app(config, services)) as live, httpx.Client(base_url=live.base, timeout=30) as client:
        client.get("/api/v1/search", params={"q": "warm up"})
        for _kind, text, options in mix:
            params = {"q": text, "per_page": "20", **options}
            started = time.perf_counter()
            response = client.get("/api/v1/search", params=params)
            api_ms.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text
    print(f"peak RSS after queries: {peak_rss_mb():.0f} MiB", flush=True)

    # 5. the peer: reader (SQLite FTS5) on the same entries and queries.
    reader_ms: list[float] = []
    reader_by_kind: dict[str, list[float]] = defaultdict(list)
    if not args.no_reader:
        feeds: dict[str, list[Any]] = defaultdict(list)
        for entry in store.iter_entries():
            feeds[entry.source.title].append(entry)
        feed_urls = {title: f"https://peer.example/{i}/feed.xml" for i, title in enumerate(sorted(feeds))}
        started = time.perf_counter()
        reader_path = workdir / "reader.sqlite"
        if args.reuse and reader_path.exists():
            from reader import make_reader

            reader, reader_index_seconds = make_reader(str(reader_path)), float("nan")
        else:
            reader, reader_index_seconds = build_reader(
                reader_path, [(t, feed_urls[t], feeds[t]) for t in sorted(feeds)]
            )
        print(
            f"reader: loaded in {time.perf_counter() - started:.1f}s; FTS5 update_search {reader_index_seconds:.1f}s "
            f"({normalized / reader_index_seconds:.0f} docs/s); db {dir_size(workdir) and (workdir / 'reader.sqlite').stat().st_size / 2**20:.1f} MiB",
            flush=True,
        )
        del feeds
        for text, options in ((t, o) for _k, t, o in mix[:20]):
            query, kwargs = reader_query(text, options, feed_urls)
            list(itertools.islice(reader.search_entries(query, **kwargs), 20))
        for kind, text, options in mix:
            query, kwargs = reader_query(text, options, feed_urls)
            spent = timed(lambda q=query, k=kwargs: list(itertools.islice(reader.search_entries(q, **k), 20)))
            reader_ms.append(spent)
            reader_by_kind[kind].append(spent)
        reader.close()

    # 6. the figures.
    print(f"\nquery latency over {len(mix)} queries (ms; 20 results per page, facets, collapse, snippets):")
    print(f"{'':14}{'p50':>8}{'p95':>8}{'p99':>8}")
    rows = [("search()", all_ours), ("  repeated", again_ms), ("HTTP API", api_ms)] + (
        [("reader FTS5", reader_ms)] if reader_ms else []
    )
    for label, values in rows:
        p50, p95, p99 = percentiles(values)
        print(f"{label:14}{p50:8.1f}{p95:8.1f}{p99:8.1f}")
    print("by kind (p50 ms, ours | reader):")
    for kind, values in ours_ms.items():
        peer = f"{statistics.median(reader_by_kind[kind]):.1f}" if reader_by_kind.get(kind) else "-"
        print(f"  {kind:9} n={len(values):3}  {statistics.median(values):7.1f} | {peer}")
    a50, a95, _ = percentiles(api_ms)
    s50, _, _ = percentiles(all_ours)
    print(
        f"targets: API p95 {a95:.1f} <= 100 ms: {'yes' if a95 <= 100 else 'NO'}; "
        f"API p50 {a50:.1f} <= 25 ms: {'yes' if a50 <= 25 else 'NO'}"
    )
    if reader_ms:
        r50, r95, _ = percentiles(reader_ms)
        print(
            f"ratios ours/reader: search() p50 {s50 / r50:.2f}, p95 {percentiles(all_ours)[1] / r95:.2f} "
            f"(target p50 ratio <= 1.0); API p50 {a50 / r50:.2f}"
        )
    print(f"mean hits per query: {statistics.mean(totals):.0f}; peak RSS {peak_rss_mb():.0f} MiB")
    services.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
