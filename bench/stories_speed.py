"""Stories speed benchmark at about 200,000 entries: what stories cost the writer and the web.

Builds (or, with --reuse, reopens) the corpus data dir `bench/search.py --keep` builds: 228,020
entries (Reuters-21578, BBC, the UCI headlines, one feed per outlet) through normalize -> store,
then reports, each next to a baseline measured in the same run:

- the writer: indexing throughput of the Indexer alone (store change log -> Whoosh), and with
  story assignment (`assign_pending` over the same change log, as `run`, `poll` and `index` do
  before indexing): the cost of stories as a share of indexing throughput (target <= 20%). A
  steady-state step follows: a poll's worth of new entries (--increment, default 2,000) on top of
  the built store, assigned and indexed the same way;
- the web: one `newsdesk serve` (waitress, the console script) on 127.0.0.1, timed from a
  sequential keep-alive client: the front page `/`, story pages `/stories/<id>` of distinct
  stories of two outlets or more, `/api/v1/related?entry=` of distinct entries (any; of the last
  hours; with text, whose answer weighs a pool of candidates; and title+text as an embedding page
  asks, from an article with text), and `/healthz` (an answer that touches nothing: this stack's
  floor) as the baseline. Targets: front and story page p95 <= 50 ms, related p95 <= 30 ms.

Usage: .venv/bin/python bench/stories_speed.py [--data-dir DIR] [--reuse] [--limit N]
           [--requests 300] [--increment 2000] [--threads 8] [--no-web] [--newsdesk PATH]

DIR defaults to a temp dir removed at the end; keep a built one outside the repo (e.g.
/work/wt/benchdata-storyspeed) and pass --reuse to measure again without building.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
NEWSDESK = str(Path(sys.executable).parent / "newsdesk")

#: Writer batch size, as `run` uses (the Indexer's and assign_pending's own defaults differ; both shown).
INDEX_BATCH = 2000
FRONT_P95_MS = 50.0
STORY_P95_MS = 50.0
RELATED_P95_MS = 30.0
ASSIGN_COST_SHARE = 0.20
#: An entry with this many characters of text or more is asked in the "with text" related series.
TEXT_CHARS = 200
#: Characters of an article's text an embedding page sends in the title+text series.
TEXT_SENT = 1500
#: "Recent" articles for the second related series: published within this many hours of the newest
#: entry (what a site embedding the widget next to today's article asks about; the first series draws
#: from the whole corpus, 1987 to 2014, so most of its articles are older than the stories in memory).
RECENT_HOURS = 72


def _module(name: str) -> Any:
    """Return a sibling bench script as a module (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


corpus = _module("search")
load = _module("load")


# --------------------------------------------------------------------------- the writer


def store_corpus(services: Any, limit: int | None) -> int:
    """Normalize and store the corpus as bench/search.py does (one feed per outlet); return how many entries."""
    store = services.store
    started = time.perf_counter()
    stored = 0
    for title, site, items in corpus.corpus_feeds(limit):
        stored += save_items(store, store.add_feed(site + "feed.xml", title=title), title, site, items)
    seconds = time.perf_counter() - started
    print(f"corpus: {stored} entries normalized and stored in {seconds:.0f}s ({stored / seconds:.0f}/s)", flush=True)
    return stored


def save_items(store: Any, feed: Any, title: str, site: str, items: list[Any]) -> int:
    """Normalize corpus items as one poll of ``feed`` and store them; return how many entries."""
    from aggregator.models import FeedContext
    from aggregator.normalize import normalize_feed

    context = FeedContext(feed.key, feed.url, title, site, corpus.NOW, "UTC", "en")
    entries = normalize_feed(corpus.parsed_feed(title, site, items), context)
    store.save_entries(feed.id, entries, seen_at=corpus.NOW)
    return len(entries)


def writer_pass(services: Any, label: str) -> dict[str, float]:
    """Index then assign stories to what the change log holds beyond each cursor; print and return the figures."""
    from index.indexer import Indexer

    started = time.perf_counter()
    stats = Indexer(services.config.index_dir, services.store, batch_size=INDEX_BATCH).catch_up()
    index_seconds = time.perf_counter() - started
    started = time.perf_counter()
    assigned = services.assign_stories()
    assign_seconds = time.perf_counter() - started
    indexed = stats.upserts
    if not indexed:
        print(f"{label}: nothing to index; stories assigned to {assigned} in {assign_seconds:.1f}s", flush=True)
        return {"indexed": 0, "index_s": index_seconds, "assigned": assigned, "assign_s": assign_seconds}
    without = indexed / index_seconds if index_seconds else float("nan")
    with_stories = indexed / (index_seconds + assign_seconds) if indexed else float("nan")
    share = assign_seconds / (index_seconds + assign_seconds) if indexed else float("nan")
    print(
        f"{label}: indexed {indexed} in {index_seconds:.1f}s ({without:.0f} docs/s); stories assigned to {assigned} "
        f"in {assign_seconds:.1f}s ({assigned / assign_seconds if assign_seconds else float('nan'):.0f}/s); "
        f"indexing with stories {with_stories:.0f} docs/s = {with_stories / without:.2f} of without "
        f"(stories cost {share:.1%} of throughput, target <= {ASSIGN_COST_SHARE:.0%}: "
        f"{'met' if share <= ASSIGN_COST_SHARE else 'NOT met'})",
        flush=True,
    )
    return {"indexed": indexed, "index_s": index_seconds, "assigned": assigned, "assign_s": assign_seconds}


def assign_cost_by_cpu(services: Any, sample: int) -> None:
    """Assign stories to everything stored (CPU time of this process), against indexing a sample's CPU time.

    For a machine too busy to index 200,000 entries in good time: CPU seconds per entry do not depend
    on what else runs. Indexing is timed as raw Whoosh adding the entries' documents in batches of
    2,000 (our indexer runs at 1.02x raw Whoosh, bench/search.py).
    """
    from whoosh import index as whoosh_index

    from index.schema import build_schema, entry_document

    cpu, wall = time.process_time(), time.perf_counter()
    assigned = services.assign_stories()
    assign_cpu, assign_wall = time.process_time() - cpu, time.perf_counter() - wall
    print(
        f"stories: assigned {assigned} in {assign_wall:.0f}s wall, {assign_cpu:.1f}s CPU "
        f"({assign_cpu * 1000 / max(1, assigned):.2f} ms CPU per entry)",
        flush=True,
    )
    entries = []
    for entry in services.store.iter_entries():
        entries.append(entry)
        if len(entries) >= sample:
            break
    with tempfile.TemporaryDirectory(prefix="newsdesk-bench-whoosh-") as folder:
        ix = whoosh_index.create_in(folder, build_schema())
        cpu = time.process_time()
        for start in range(0, len(entries), INDEX_BATCH):
            writer = ix.writer(limitmb=128)
            for entry in entries[start : start + INDEX_BATCH]:
                writer.add_document(**entry_document(entry))
            writer.commit(merge=True)
        index_cpu = time.process_time() - cpu
    per_index = index_cpu * 1000 / len(entries)
    per_assign = assign_cpu * 1000 / max(1, assigned)
    share = per_assign / (per_index + per_assign)
    print(
        f"indexing {len(entries)} of them (raw Whoosh): {index_cpu:.1f}s CPU ({per_index:.2f} ms per entry); "
        f"stories cost {share:.1%} of the writer's CPU per entry (target <= {ASSIGN_COST_SHARE:.0%}: "
        f"{'met' if share <= ASSIGN_COST_SHARE else 'NOT met'})",
        flush=True,
    )


def add_increment(services: Any, count: int, seed: int) -> int:
    """Store ``count`` new entries in the newest week of the store, as a poll of the outlets would; return how many."""
    import sqlalchemy as sa

    from aggregator.models import FeedContext
    from aggregator.normalize import normalize_feed
    from aggregator.tables import entries_table

    store = services.store
    feeds = [f for f in store.list_feeds(counts=False) if f.title not in ("Reuters", "BBC News")]
    rng = random.Random(seed)
    picked = rng.sample(feeds, min(40, len(feeds)))
    with store.engine.connect() as conn:
        newest = conn.execute(sa.select(sa.func.max(entries_table.c.published_at))).scalar()
    items_by_feed: dict[str, list[Any]] = {}
    # Fresh copies of corpus headlines (new guids, the newest times): the words of real stories, so they
    # join existing stories and found new ones as a poll's would.
    sample = [item for _publisher, item in corpus.uci_items(None)]
    rng.shuffle(sample)
    base = newest or max(item.published for item in sample)
    stamp = time.strftime("%Y%m%d%H%M%S")
    for number, item in enumerate(sample[:count]):
        feed = picked[number % len(picked)]
        copy = corpus.Item(
            f"{item.guid}-inc{stamp}-{number}",
            item.title,
            item.body,
            f"{item.link}?inc={stamp}-{number}",
            base + timedelta(minutes=number % 600),
            item.tags,
        )
        items_by_feed.setdefault(feed.key, []).append(copy)
    stored = 0
    by_key = {f.key: f for f in picked}
    for key, items in items_by_feed.items():
        feed = by_key[key]
        site = feed.site_url or feed.url
        context = FeedContext(feed.key, feed.url, feed.title, site, corpus.NOW, "UTC", "en")
        entries = normalize_feed(corpus.parsed_feed(feed.title, site, items), context)
        store.save_entries(feed.id, entries, seen_at=corpus.NOW)
        stored += len(entries)
    return stored


# --------------------------------------------------------------------------- the web


def request_samples(services: Any, count: int, seed: int) -> dict[str, list[str]]:
    """Return distinct story ids (two outlets or more) and entry ids to request, drawn with a fixed seed."""
    import sqlalchemy as sa

    from aggregator.tables import entries_table
    from aggregator.tables_stories import stories_table, story_members_table

    rng = random.Random(seed)
    s, m = stories_table.c, story_members_table.c
    with services.store.engine.connect() as conn:
        shown = sorted(
            conn.execute(sa.select(s.id).where(s.merged_into.is_(None), s.outlet_count >= 2)).scalars().all()
        )
        in_stories = sorted(
            conn.execute(
                sa.select(m.entry_id)
                .join(stories_table, s.id == m.story_id)
                .where(s.outlet_count >= 2, s.merged_into.is_(None))
            )
            .scalars()
            .all()
        )
        every = sorted(conn.execute(sa.select(entries_table.c.id)).scalars().all())
        e = entries_table.c
        newest = conn.execute(sa.select(sa.func.max(e.published_at))).scalar()
        # Articles with text (Reuters, BBC): related coverage weighs a pool for those, not a headline's rules.
        with_text = conn.execute(
            sa.select(e.id, e.title, e.text, e.published_at).where(sa.func.length(e.text) >= TEXT_CHARS)
        ).all()
        recent: list[str] = []
        if newest is not None:
            since = newest - timedelta(hours=RECENT_HOURS)
            recent = sorted(conn.execute(sa.select(e.id).where(e.published_at >= since)).scalars().all())
    # Half the related requests name an article of a multi-outlet story, half any article.
    entries = rng.sample(in_stories, min(count // 2, len(in_stories)))
    entries += rng.sample(every, min(count - len(entries), len(every)))
    rng.shuffle(entries)
    texts = rng.sample(sorted(with_text, key=lambda row: row.id), min(count, len(with_text)))
    pages = [
        "/api/v1/related?"
        + urlencode({"title": row.title, "text": row.text[:TEXT_SENT], "date": row.published_at.isoformat()})
        for row in texts
    ]
    return {
        "text": [row.id for row in texts],
        "pages": pages,
        "stories": rng.sample(shown, min(count, len(shown))),
        "entries": entries,
        "recent": rng.sample(recent, min(count, len(recent))),
        "shown": [str(len(shown))],
    }


def time_paths(client: Any, paths: list[str]) -> list[float]:
    """GET each path in turn on a kept-alive connection; return the latencies in ms (any non-200 stops the bench)."""
    latencies = []
    for path in paths:
        started = time.perf_counter()
        response = client.get(path)
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"GET {path} answered {response.status_code}: {response.text[:300]}")
    return latencies


def wait_for_related_postings(client: Any, timeout: float = 600.0) -> None:
    """Wait until the server holds the index's postings for related coverage and the past weeks' stories (both
    read in the background once it listens: `SegmentCache.load`, `SqlStoryStore.warm_past`), and say how long
    that took; what a server does not report is not waited for."""
    started = time.perf_counter()
    while True:
        index = client.get("/readyz").json().get("checks", {}).get("index", {})
        held = index.get("related_postings")
        past = index.get("past_stories")
        loading = (held or {}).get("loading", 0) or (past or {}).get("loading", 0)
        if held is None and past is None:
            return
        if not loading or time.perf_counter() - started > timeout:
            break
        time.sleep(0.5)
    waited = time.perf_counter() - started
    if held is not None:
        print(
            f"related postings in memory: {held['postings']:,} in {held['segments']} segment(s), "
            f"{held['loading']} still being read, after waiting {waited:.1f}s",
            flush=True,
        )
    if past is not None:
        print(f"past stories in memory: {past['stories']:,} in {past['weeks']} week(s)", flush=True)


def web_pass(services: Any, data_dir: Path, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Time the story pages, the front page and related coverage through `newsdesk serve`; print the figures."""
    import httpx

    samples = request_samples(services, args.requests, args.seed)
    count = args.requests
    port = load.free_port()
    config_path = workdir / "serve.toml"
    load.write_config(config_path, data_dir, port, args.threads, [])
    env = {k: v for k, v in os.environ.items() if k != "NEWSDESK_CONFIG"}
    log_path = workdir / "serve.log"
    with log_path.open("w") as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            [args.newsdesk, "--config", str(config_path), "serve"], stdout=log, stderr=subprocess.STDOUT, env=env
        )
        try:
            base = f"http://127.0.0.1:{port}"
            load.wait_for(f"{base}/healthz", process, 300, "newsdesk serve")
            print(
                f"serve: answering after {time.perf_counter() - started:.1f}s; {samples['shown'][0]} stories of two "
                f"outlets or more; load average {os.getloadavg()[0]:.1f}",
                flush=True,
            )
            stories = [f"/stories/{i}" for i in samples["stories"]]
            related = [f"/api/v1/related?entry={i}" for i in samples["entries"]]
            recent = [f"/api/v1/related?entry={i}" for i in samples["recent"]]
            with httpx.Client(base_url=base, timeout=60) as client:
                # The first request of each kind opens what a fresh process opens (index, caches): untimed.
                first = {p: time_paths(client, [p])[0] for p in ("/", stories[-1], related[-1])}
                wait_for_related_postings(client)
                measured = {
                    "healthz": time_paths(client, ["/healthz"] * count),
                    "front": time_paths(client, ["/"] * count),
                    "story": time_paths(client, stories[:count]),
                    "related": time_paths(client, related[:count]),
                    "related_recent": time_paths(client, recent[:count]),
                    "related_text": time_paths(client, [f"/api/v1/related?entry={i}" for i in samples["text"]]),
                    "related_page": time_paths(client, samples["pages"]),
                    "stories_api": time_paths(client, ["/api/v1/stories"] * min(count, 100)),
                }
        finally:
            load.stop(process)
    floor = load.percentiles(measured["healthz"])[0]
    print(f"\nfirst requests (untimed below): {', '.join(f'{p} {ms:.0f} ms' for p, ms in first.items())}")
    print(f"{'GET':28}{'n':>5}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'p50/healthz':>13}  target")
    targets = {
        "front": FRONT_P95_MS,
        "story": STORY_P95_MS,
        "related": RELATED_P95_MS,
        "related_recent": RELATED_P95_MS,
        "related_text": RELATED_P95_MS,
        "related_page": RELATED_P95_MS,
    }
    labels = {
        "healthz": "/healthz (floor)",
        "front": "/",
        "story": "/stories/<id> (distinct)",
        "related": "/api/v1/related?entry=",
        "related_recent": f"  ...of the last {RECENT_HOURS} h",
        "related_text": "  ...of an article with text",
        "related_page": "  ...title+text, as embeds ask",
        "stories_api": "/api/v1/stories",
    }
    summary: dict[str, Any] = {}
    for kind, values in measured.items():
        if not values:
            continue
        p50, p95, p99 = load.percentiles(values)
        target = targets.get(kind)
        verdict = "" if target is None else f"p95 <= {target:.0f}: {'met' if p95 <= target else 'NOT met'}"
        print(f"{labels[kind]:28}{len(values):5}{p50:9.1f}{p95:9.1f}{p99:9.1f}{p50 / floor:13.1f}  {verdict}")
        summary[kind] = {"n": len(values), "p50_ms": p50, "p95_ms": p95, "p99_ms": p99}
    return summary


# --------------------------------------------------------------------------- main


def main() -> int:
    """Build or reopen the data dir, measure the writer and the web, print the figures; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=None, help="Build in DIR and keep it (default: a temp dir).")
    parser.add_argument("--reuse", action="store_true", help="With --data-dir: reuse what an earlier run built.")
    parser.add_argument("--limit", type=int, default=None, help="At most N Reuters and N BBC articles, 8N headlines.")
    parser.add_argument("--requests", type=int, default=300, help="Timed requests per kind (default 300).")
    parser.add_argument("--increment", type=int, default=2000, help="New entries of the steady-state step (0: none).")
    parser.add_argument("--threads", type=int, default=8, help="server.threads of waitress (default 8, as shipped).")
    parser.add_argument("--no-web", action="store_true", help="Measure the writer only.")
    parser.add_argument(
        "--assign-cpu",
        type=int,
        default=0,
        metavar="N",
        help="With --reuse: assign stories to the stored corpus and compare CPU time per entry with indexing N "
        "of its entries (for a machine too busy for wall-clock figures), then stop.",
    )
    parser.add_argument(
        "--newsdesk",
        default=NEWSDESK,
        help="The `newsdesk` console script to serve with (another checkout's, to compare; default: this one's).",
    )
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    if not (corpus.REUTERS.is_dir() and corpus.BBC.is_dir() and corpus.UCI.exists()):
        print("../shared/corpus is not present: nothing to measure", file=sys.stderr)
        return 0
    if args.data_dir is not None:
        args.data_dir.mkdir(parents=True, exist_ok=True)
        return run(args.data_dir.resolve(), args)
    with tempfile.TemporaryDirectory(prefix="newsdesk-bench-stories-") as temporary:
        return run(Path(temporary), args)


def run(workdir: Path, args: argparse.Namespace) -> int:
    """Run every phase with the data dir under ``workdir``."""
    from aggregator.config import config_from_dict
    from index.indexer import Indexer
    from web.services import build_services

    data_dir = workdir / "data"
    config = config_from_dict({"data_dir": str(data_dir)}, label="bench")
    services = build_services(config)
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; data dir {data_dir}", flush=True)
    if args.assign_cpu and args.reuse and services.store.count_entries():
        assign_cost_by_cpu(services, args.assign_cpu)
        services.close()
        return 0
    if not (args.reuse and services.store.count_entries()):
        store_corpus(services, args.limit)
        writer_pass(services, "build")
    else:
        # An index or stories behind the store (an interrupted build) catch up here, and are measured.
        writer_pass(services, "catch up with the stored corpus")
    started = time.perf_counter()
    if Indexer(config.index_dir, services.store, batch_size=INDEX_BATCH).optimize_if_needed():
        print(f"scheduled segment merge: {time.perf_counter() - started:.0f}s", flush=True)
    print(f"store: {services.store.count_entries()} entries; stories: {services.stories.stats()}", flush=True)
    if args.increment:
        stored = add_increment(services, args.increment, args.seed + int(time.time()) % 1000)
        writer_pass(services, f"steady state (+{stored} new entries on the built store)")
    if not args.no_web:
        web_pass(services, data_dir, workdir, args)
    services.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
