"""Related-coverage quality and latency on labelled stories, through the /api/v1/related code path.

    .venv/bin/python bench/related_quality.py [--work-dir DIR] [--queries 2000] [--held-out 1000]
    .venv/bin/python bench/related_quality.py --corpus allsides [--work-dir DIR] [--rounds 10] [--errors] [--anatomy]

Both corpora are read by `bench/story_data.py` and ingested through the real path: one feed per
outlet, normalize_feed -> Store.save_entries -> story assignment (the writer's `assign_stories`) ->
Indexer.catch_up. Related coverage is then asked of the app itself (`create_app`, Flask's client on
GET /api/v1/related), so the story-first answer and the related-coverage fill below it are measured
as a sidebar or an embed gets them.

UCI (headlines of many outlets, each with a STORY id): 1,000 whole stories are left out; the rest are
ingested, then
- quality: for 2,000 headlines whose story has >= 5 items from >= 3 other publishers within
  +/- 7 days (identical titles not counted), the top 5 related items: P@5, Hit@1, nR@5, and the
  mean number of distinct publishers shown;
- abstention: one headline of each held-out story asked by title (as an embedding page would):
  the share that shows anything is the false-related rate;
- latency of GET /api/v1/related through the real app under waitress on 127.0.0.1.
Quality and abstention are also given by half of the stories (bench/story_data.py's split): the
related-coverage rules are chosen on the calibration half, the held-out half is the check.
The baseline is Whoosh's `more_like` with its defaults (title field, 5 key terms, Bo1 model),
with the same exclusions applied to what it returns.

AllSides (a left, a center and a right outlet's lead paragraphs on one story, worded very
differently; each story's articles spread over 2 to 72 hours): see `allsides_main`.

The store and index are kept in the work directory and reused by later runs with the same input.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import random
import shutil
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from aggregator.config import Config, config_from_dict  # noqa: E402
from aggregator.models import FeedContext, ParsedContent, ParsedEntry, ParsedFeed  # noqa: E402
from aggregator.normalize import normalize_feed  # noqa: E402
from aggregator.store import open_store  # noqa: E402
from bench.story_data import (  # noqa: E402
    ALLSIDES,
    TEXT_KINDS,
    UCI,
    Item,
    as_fed,
    as_published,
    background,
    held_out,
    other_outlets_near,
    read_allsides,
    read_uci,
    spread,
)
from index.indexer import Indexer  # noqa: E402
from index.related.finder import RelatedFinder  # noqa: E402
from index.related.rank import (  # noqa: E402
    ArticleQuery,
    RelatedSettings,
    title_key,
)
from index.search.engine import IndexReader  # noqa: E402

WINDOW = timedelta(days=7)


# --------------------------------------------------------------------------- ingestion (shared)


def bench_config(work: Path) -> Config:
    """Return the configuration the bench's store, writer and app share (no rate limit)."""
    return config_from_dict(
        {
            "data_dir": str(work),
            "database_url": f"sqlite:///{work / 'store.db'}",
            "server": {"rate_limit_per_minute": 10**9},
        },
        label="bench",
    )


def ingest(items: Sequence[Item], work: Path) -> None:
    """Store ``items`` as hourly polls of one feed per outlet (text as the summary), assign their stories, index them.

    Articles arrive in time order, an hour's worth per poll, as a running `newsdesk run` sees them."""
    from web.services import build_services

    config = bench_config(work)
    services = build_services(config)
    store = services.store
    store.migrate()
    feeds = {}
    for outlet in sorted({item.outlet for item in items}):
        feeds[outlet] = store.add_feed(feed_key(outlet), title=outlet, origin="bench")
    polls: dict[tuple[datetime, str], list[Item]] = defaultdict(list)
    for item in items:
        hour = item.published_at.replace(minute=0, second=0, microsecond=0)
        polls[(hour, item.outlet)].append(item)
    started = time.perf_counter()
    for count, ((hour, outlet), group) in enumerate(sorted(polls.items()), 1):
        site = f"https://{group[0].host}/"
        parsed = ParsedFeed(
            title=outlet,
            site_url=site,
            language="en",
            ttl_minutes=None,
            update_period=None,
            update_frequency=None,
            base=None,
            entries=tuple(
                ParsedEntry(
                    guid=item.id,
                    link=item.url,
                    original_link=None,
                    title=item.title,
                    title_type="text/plain",
                    summary=ParsedContent(item.text, "text/plain") if item.text else None,
                    contents=(),
                    authors=(),
                    published_raw=format_datetime(item.published_at),
                    updated_raw=None,
                    tags=(),
                    media=(),
                    language="en",
                    base=None,
                )
                for item in sorted(group, key=lambda i: (i.published_at, i.id))
            ),
            version="rss20",
        )
        fetched_at = hour + timedelta(hours=1)
        context = FeedContext(
            feed_key=feeds[outlet].key,
            feed_url=feed_key(outlet),
            source_title=outlet,
            site_url=site,
            fetched_at=fetched_at,
        )
        store.save_entries(feeds[outlet].id, normalize_feed(parsed, context), seen_at=fetched_at)
        if count % 20000 == 0:
            print(f"  stored {count}/{len(polls)} polls ({time.perf_counter() - started:.0f}s)", flush=True)
    stored = time.perf_counter()
    print(f"  stored {store.count_entries()} entries in {stored - started:.0f}s; assigning stories...", flush=True)
    assigned = services.assign_stories()
    assigned_at = time.perf_counter()
    print(f"  assigned {assigned} in {assigned_at - stored:.0f}s; indexing...", flush=True)
    stats = Indexer(config.index_dir, store, batch_size=5000).catch_up()
    Indexer(config.index_dir, store).optimize()
    print(f"  indexed {stats.upserts} in {time.perf_counter() - assigned_at:.0f}s", flush=True)
    services.close()


def prepare(items: Sequence[Item], work: Path, signature: dict[str, Any]) -> dict[str, str]:
    """Ingest ``items`` into ``work`` unless a run with the same signature did; return item id -> entry id.

    When only the story settings changed since, the stories are assigned afresh over the same entries."""
    from aggregator.stories import StorySettings

    stories = repr(StorySettings())
    marker = work / "bench-ready.json"
    done = json.loads(marker.read_text()) if marker.exists() else {}
    if done.get("ingest") != signature:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        print(f"ingesting {len(items)} articles into {work} ...", flush=True)
        ingest(items, work)
    elif done.get("stories") != stories:
        print("story settings changed: assigning the stories afresh ...", flush=True)
        reassign(work)
    marker.write_text(json.dumps({"ingest": signature, "stories": stories}))
    store = open_store(f"sqlite:///{work / 'store.db'}")
    ids = {entry.identity: entry.id for entry in store.iter_entries(5000)}
    store.close()
    return ids


def reassign(work: Path) -> None:
    """Forget the stories of the bench's store and assign them again from the change log."""
    import sqlalchemy as sa

    from aggregator import tables_stories as t
    from aggregator.tables import meta_table
    from web.services import build_services

    services = build_services(bench_config(work))
    with services.store.engine.begin() as conn:
        for table in (t.stories_table, t.story_aliases_table, t.story_members_table, t.story_terms_table):
            conn.execute(sa.delete(table))
        keys = (t.STORIES_SEQ_KEY, t.STORIES_DOCUMENTS_KEY)
        conn.execute(sa.delete(meta_table).where(meta_table.c.key.in_(keys)))
    started = time.perf_counter()
    assigned = services.assign_stories()
    print(f"  assigned {assigned} in {time.perf_counter() - started:.0f}s", flush=True)
    services.close()


def feed_key(outlet: str) -> str:
    """Return the feed key the bench gives an outlet's feed."""
    return f"bench-outlet:{outlet}"


class RelatedApi:
    """GET /api/v1/related on the app `newsdesk serve` runs, through Flask's client (no network in between)."""

    def __init__(self, work: Path) -> None:
        from web.app import create_app

        self.app = create_app(bench_config(work))
        self.client = self.app.test_client()

    def ask(self, params: dict[str, str], limit: int = 5) -> list[str]:
        """Return the entry ids the API answers for ``params``, in order."""
        return [entry_id for entry_id, _ in self.scored(params, limit)]

    def stories_of(self, entry_ids: Sequence[str]) -> dict[str, str | None]:
        """Return entry id -> the id of the story it is a member of."""
        from web.services import services_of

        with self.app.app_context():
            stories = services_of(self.app).stories.stories_of(list(entry_ids))
        return {entry_id: stories.get(entry_id) for entry_id in entry_ids}

    def scored(self, params: dict[str, str], limit: int = 5) -> list[tuple[str, float]]:
        """Return (entry id, score) of what the API answers for ``params``, in order (the story's own articles score 1)."""
        return [(item["id"], item["score"]) for item in self.answered(params, limit)]

    def answered(self, params: dict[str, str], limit: int = 5) -> list[dict[str, Any]]:
        """Return the items the API answers for ``params``, as JSON."""
        response = self.client.get("/api/v1/related", query_string={**params, "limit": str(limit)})
        assert response.status_code == 200, (response.status_code, response.get_data(as_text=True)[:200])
        items: list[dict[str, Any]] = response.get_json()["items"]
        return items


def fill_table(fills: Sequence[tuple[float, bool]]) -> str:
    """Return how precise the related-coverage items below a story's own articles are, by smallest score kept."""
    lines = ["  items below the story's own (score < 1), by smallest score kept: kept / precision"]
    for floor in (0.0, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6):
        kept = [right for score, right in fills if score >= floor]
        share = sum(kept) / len(kept) if kept else float("nan")
        lines.append(f"    >= {floor:<4}  {len(kept):>5} items  precision {share:.3f}")
    return "\n".join(lines)


def embed_params(item: Item) -> dict[str, str]:
    """Return what an embedding page sends for an article we do not store: title, text, date, its URL."""
    params = {"title": item.title, "date": item.published_at.isoformat(), "url": item.url}
    if item.text:
        params["text"] = item.text
    return params


# --------------------------------------------------------------------------- UCI headlines


def eligible_counts(row: Item, story_rows: list[Item]) -> tuple[int, int]:
    """Return (items, publishers) of other outlets' non-identical coverage within the window."""
    own = title_key(row.title)
    items = [
        other
        for other in story_rows
        if other.outlet != row.outlet
        and title_key(other.title) != own
        and abs(other.published_at - row.published_at) <= WINDOW
    ]
    return len(items), len({other.outlet for other in items})


@dataclass
class Coverage:
    """Related-coverage figures of one kind of query (top 5 shown per query)."""

    #: Queries whose story has other outlets' articles in the index.
    queries: int = 0
    #: Items shown, and how many of them are of the query's story.
    shown: int = 0
    correct: int = 0
    #: Sum over queries of (coverage found in the top 5 / coverage there is to find, at most 5).
    recall: float = 0.0
    #: Queries whose first item is of the query's story.
    hit1: int = 0
    #: Queries that showed nothing although coverage exists.
    empty: int = 0
    #: Sum over queries of the distinct outlets shown.
    outlets: int = 0
    #: Probes of stories absent from the index, and those that showed anything.
    probes: int = 0
    false_related: int = 0

    def add(self, item: Item, shown: list[Item], found: int, there: int) -> None:
        """Add one query's top 5: ``found`` of the ``there`` pieces of coverage to find are in it."""
        shown = shown[:5]
        self.queries += 1
        self.shown += len(shown)
        self.correct += sum(1 for s in shown if s.story == item.story)
        self.recall += found / min(5, there) if there else 0.0
        self.hit1 += bool(shown) and shown[0].story == item.story
        self.empty += not shown
        self.outlets += len({s.outlet for s in shown})

    def probe(self, shown: list[Item]) -> None:
        """Add one probe of a story absent from the index (anything shown is false-related)."""
        self.probes += 1
        self.false_related += bool(shown)

    def merge(self, other: Coverage) -> None:
        """Add another draw's counts to these (pooled figures weigh every query and probe the same)."""
        for field in dataclasses.fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

    def figures(self) -> dict[str, float]:
        """Return the figures as shares."""
        q = max(self.queries, 1)
        return {
            "queries": self.queries,
            "recall_at_5": round(self.recall / q, 4),
            "precision_at_5": round(self.correct / max(self.shown, 1), 4),
            "hit_at_1": round(self.hit1 / q, 4),
            # The same among the answers that show something (an empty answer counts as a miss above).
            "hit_at_1_answered": round(self.hit1 / max(self.queries - self.empty, 1), 4),
            "empty": round(self.empty / q, 4),
            "outlets_at_5": round(self.outlets / q, 3),
            "probes": self.probes,
            "false_related": round(self.false_related / max(self.probes, 1), 4),
        }

    def line(self, name: str, probed: str = "absent stories") -> str:
        """Return the figures as one report line (``probed`` names what the probes were)."""
        f = self.figures()
        probes = f"  false-related={f['false_related']:.1%} ({self.probes} {probed})" if self.probes else ""
        return (
            f"  {name:<34} R@5={f['recall_at_5']:.3f}  P@5={f['precision_at_5']:.3f}  Hit@1={f['hit_at_1']:.3f} "
            f"(answered {f['hit_at_1_answered']:.3f})  empty={f['empty']:.1%}  outlets@5={f['outlets_at_5']:.2f}  ({self.queries} queries){probes}"
        )


@dataclass
class Anatomy:
    """Where the by-entry answers' misses come from, against the stories the writer formed (`--anatomy`).

    Every other outlet's article of the asked one's labelled story is shown, or missed while in the asked
    article's own story (the listing rules left it out), or missed in another story: the labelled story
    was split, and then either side may be a story of one. Every wrong item shown is a member of the
    asked article's own story (the story joined another labelled story: sequels of one event) or another
    story's. A missed article in another story is also checked against the two articles' meanings: is
    each the other's nearest other-outlet article in meaning within 72 hours (a mutual nearest neighbour),
    which a rule over meanings alone could list."""

    counts: dict[str, int] = dataclasses.field(default_factory=lambda: defaultdict(int))

    def merge(self, other: Anatomy) -> None:
        """Add another draw's counts to these."""
        for key, value in other.counts.items():
            self.counts[key] += value

    def lines(self) -> list[str]:
        """Return the counts as report lines, with each as a share of its kind."""
        c = self.counts
        links = c["shown"] + c["missed, in its story"] + c["missed, in another story"]
        wrong = c["wrong, of its story"] + c["wrong, of another story"]
        lines = [f"  anatomy of the by-entry answers: {links} other-outlet articles to show, {wrong} wrong items shown"]
        splits = sorted(key for key in c if key.startswith("  of which"))  # "mutual nearest pairs" are apart
        order = ["shown", "missed, in its story", "missed, in another story", *splits]
        for key in [*order, "wrong, of its story", "wrong, of another story"]:
            base = wrong if key.startswith("wrong") else links
            lines.append(f"    {key:<40} {c[key]:>6}  ({c[key] / max(base, 1):.1%})")
        pairs, right = c["mutual nearest pairs"], c["mutual nearest pairs, right"]
        lines.append(
            f"  asked articles with a mutual nearest in meaning: {pairs}, of its story {right / max(pairs, 1):.1%}"
        )
        return lines


def nearest_in_meaning(indexed: Sequence[Item]) -> dict[str, tuple[str, float]]:
    """Return item id -> (id, similarity) of its nearest other outlet's item in meaning within 72 hours."""
    import numpy as np

    from aggregator.stories.meaning import meaning_text, shared_embedder

    embedder = shared_embedder()
    if embedder is None or not indexed:
        return {}
    vectors = np.stack(embedder.vectors([meaning_text(i.title, i.text) for i in indexed])).astype(np.float32)
    nearest: dict[str, tuple[str, float]] = {}
    for k, scores, allowed in other_outlets_near(indexed, vectors):
        best = int(np.argmax(np.where(allowed, scores, -2.0)))
        nearest[indexed[k].id] = (indexed[best].id, float(scores[best]))
    return nearest


def dissect(
    anatomy: Anatomy,
    item: Item,
    shown: Sequence[tuple[Item, str | None]],
    gold: Sequence[Item],
    story_of: dict[str, str | None],
    sizes: Counter[str | None],
    nearest: dict[str, tuple[str, float]],
) -> None:
    """Add one by-entry answer (``shown``: item and the story the API named) to ``anatomy``; ``sizes``:
    story id -> its members among the stored items."""
    own = story_of.get(item.id)
    listed = {s.id for s, _ in shown[:5]}
    # The asked article's mutual nearest neighbour in meaning, if it has one.
    ahead = nearest.get(item.id)
    partner = ahead[0] if ahead is not None and nearest.get(ahead[0], ("", 0.0))[0] == item.id else None
    for other in gold:
        if other.id in listed:
            anatomy.counts["shown"] += 1
        elif story_of.get(other.id) == own:
            anatomy.counts["missed, in its story"] += 1
        else:
            alone = {
                (True, True): "both alone",
                (True, False): "the asked one alone",
                (False, True): "the missed one alone",
                (False, False): "neither alone",
            }[(sizes[own] == 1, sizes[story_of.get(other.id)] == 1)]
            anatomy.counts["missed, in another story"] += 1
            anatomy.counts[f"  of which {alone}"] += 1
            if partner == other.id:
                anatomy.counts["  of which mutual nearest in meaning"] += 1
    if partner is not None:
        # Would a rule over meanings alone be right? Its pair, whatever the stories.
        anatomy.counts["mutual nearest pairs"] += 1
        anatomy.counts["mutual nearest pairs, right"] += partner in {other.id for other in gold}
    for shown_item, story in shown[:5]:
        if shown_item.story != item.story:
            anatomy.counts["wrong, of its story" if story == own else "wrong, of another story"] += 1


def baseline_related(searcher: Any, row: Item, entry_id: str | None, rows_by_entry: dict[str, Item]) -> list[Item]:
    """Return Whoosh more_like (defaults) results with the bench's exclusions applied."""
    docnum = searcher.document_number(id=entry_id) if entry_id else None
    results = searcher.more_like(-1 if docnum is None else docnum, "title", text=row.title, top=30)
    own = title_key(row.title)
    shown = []
    for hit in results:
        other = rows_by_entry.get(hit["id"])
        if other is None or other.outlet == row.outlet or title_key(other.title) == own:
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

    app = create_app(bench_config(work))
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


def uci_main(args: argparse.Namespace) -> int:
    """Measure related coverage on the UCI headlines (by entry; abstention by title); return the exit status."""
    rows = read_uci(args.corpus_path or UCI)
    rng = random.Random(args.seed)
    by_story: dict[str, list[Item]] = defaultdict(list)
    for row in rows:
        by_story[row.story].append(row)
    stories = sorted(by_story)
    absent = set(rng.sample(stories, args.held_out))
    indexed_rows = [row for row in rows if row.story not in absent]
    print(f"corpus: {len(rows)} headlines, {len(stories)} stories, {len({r.outlet for r in rows})} publishers")

    work: Path = args.work_dir
    signature = {
        "corpus": "uci",
        "rows": len(indexed_rows),
        "seed": args.seed,
        "held_out": args.held_out,
        "order": "hourly polls",
    }
    ids = prepare(indexed_rows, work, signature)
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
    probes = [rng.choice(by_story[story]) for story in sorted(absent)]

    settings = RelatedSettings()
    report: dict[str, object] = {"settings": dataclasses.asdict(settings)}
    api = RelatedApi(work)

    # ------------------------------------------------------------ ours, through the API
    ours = Coverage()
    # The same figures by half (bench/story_data.py's split): what is tuned is chosen on the calibration half.
    halves = {False: Coverage(), True: Coverage()}
    fills: list[tuple[float, bool]] = []
    started = time.perf_counter()
    for row, eligible in sample:
        answer = api.scored({"entry": ids[row.id]})
        shown = [rows_by_entry[i] for i, _ in answer]
        fills.extend((s, rows_by_entry[i].story == row.story) for i, s in answer if s < 1.0)
        found = sum(1 for s in shown[:5] if s.story == row.story)
        ours.add(row, shown, found, eligible)
        halves[held_out(row.story)].add(row, shown, found, eligible)
    ours_seconds = time.perf_counter() - started
    for row in probes:
        shown = [rows_by_entry[i] for i in api.ask(embed_params(row))]
        ours.probe(shown)
        halves[held_out(row.story)].probe(shown)

    # ------------------------------------------------------------ baseline
    store = open_store(f"sqlite:///{work / 'store.db'}")
    reader = IndexReader(work / "index")
    searcher = reader.searcher()
    assert searcher is not None
    base = Coverage()
    started = time.perf_counter()
    for row, eligible in sample:
        shown = baseline_related(searcher, row, ids[row.id], rows_by_entry)
        base.add(row, shown, sum(1 for s in shown[:5] if s.story == row.story), eligible)
    base_seconds = time.perf_counter() - started
    for row in probes:
        base.probe(baseline_related(searcher, row, None, rows_by_entry))

    print()
    print(
        f"similarity threshold={settings.threshold}  evidence threshold={settings.evidence_threshold} "
        f"(x exp(-h/{settings.evidence_hours:g}h))  ranking time scale={settings.time_hours:g}h "
        f"floor={settings.time_floor}  window=+/-7d  max_per_source={settings.max_per_source}"
    )
    print(ours.line("newsdesk related (API)"))
    print(halves[False].line("  calibration half"))
    print(halves[True].line("  held-out half"))
    print(base.line("whoosh more_like"))
    print(fill_table(fills))
    print(
        f"time/query  newsdesk (API, in process)={ours_seconds / len(sample) * 1000:.1f} ms  "
        f"more_like={base_seconds / len(sample) * 1000:.1f} ms"
    )
    report["newsdesk"] = ours.figures()
    report["newsdesk_calibration"] = halves[False].figures()
    report["newsdesk_held_out"] = halves[True].figures()
    report["more_like"] = base.figures()

    if args.sweep:
        print("\nevidence-threshold sweep (the related-coverage finder alone; the abstention knob):")
        for threshold in (0.15, 0.2, 0.25, 0.3, 0.35):
            swept = RelatedFinder(reader, store, replace(settings, evidence_threshold=threshold))
            figures = Coverage()
            for row, eligible in sample:
                items = swept.find(_entry_query(store, ids[row.id]), limit=5)
                shown = [rows_by_entry[i.entry.id] for i in items]
                figures.add(row, shown, sum(1 for s in shown if s.story == row.story), eligible)
            for row in probes:
                figures.probe([rows_by_entry[i.entry.id] for i in swept.find(_title_query(row), limit=5)])
            print(figures.line(f"t={threshold}"))

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


def _entry_query(store: Any, entry_id: str) -> ArticleQuery:
    """Return the query for a stored entry (cached: the sweep asks the same ones again)."""
    from index.related.finder import query_for_entry

    query = _ENTRY_CACHE.get(entry_id)
    if query is None:
        entry = store.get_entry(entry_id)
        assert entry is not None
        query = _ENTRY_CACHE[entry_id] = query_for_entry(entry)
    return query


def _title_query(row: Item) -> ArticleQuery:
    """Return the query an embedding page would send for a headline we do not have."""
    from aggregator.hosts import site_host

    return ArticleQuery(title=row.title, published_at=row.published_at, site=site_host(row.url) or None)


# --------------------------------------------------------------------------- AllSides


def allsides_plan(items: Sequence[Item], seed: int) -> tuple[list[Item], list[Item], list[Item], list[Item]]:
    """Return (indexed, withheld, probes, lone): what is ingested, the one article per story an embedding page
    asks about without our having it, one article of each story left out of the index entirely, and the
    articles stored with no other outlet's coverage of their story (asked by entry: anything shown is wrong).

    By a seeded draw per story: a fifth of the stories are left out of the index (their first article
    by id is a probe); of the rest, half are ingested whole and half without one article (withheld).
    A second draw, of its own (so the first is the same as before lone articles were drawn), keeps a
    quarter of the whole stories to one article."""
    rng = random.Random(seed)
    lone_rng = random.Random(f"lone-{seed}")
    lone: list[Item] = []
    by_story: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        by_story[item.story].append(item)
    indexed: list[Item] = []
    withheld: list[Item] = []
    probes: list[Item] = []
    for story in sorted(by_story):
        members = sorted(by_story[story], key=lambda i: i.id)
        draw = rng.random()
        if draw < 0.2:
            probes.append(members[rng.randrange(len(members))])
        elif draw < 0.6 and len(members) >= 3:
            out = members.pop(rng.randrange(len(members)))
            withheld.append(out)
            indexed.extend(members)
        elif lone_rng.random() < 0.25:
            lone.append(members[lone_rng.randrange(len(members))])
            indexed.append(lone[-1])
        else:
            indexed.extend(members)
    return indexed, withheld, probes, lone


#: A round's figures: part ("calibration", "held-out") -> (by entry, by title+text, the fill's (score, right)).
RoundFigures = dict[str, tuple["Coverage", "Coverage", list[tuple[float, bool]]]]


def plan_seeds(seed: int, rounds: int) -> list[int]:
    """Return the plan seeds of ``rounds`` draws: the first is ``seed`` itself (the single-seed figures)."""
    return [seed + 1000 * r for r in range(rounds)]


def allsides_round(
    items: Sequence[Item],
    plan_seed: int,
    seed: int,
    work: Path,
    show_errors: bool = False,
    text: str = "full",
    distractors: Sequence[Item] = (),
    times: str = "spread",
    anatomy: dict[str, Anatomy] | None = None,
) -> RoundFigures:
    """Ingest one draw of the AllSides plan into ``work``, with ``distractors`` (background news, never asked
    about) beside it, and ask it everything; return its figures by half."""
    indexed, withheld, probes, lone = allsides_plan(items, plan_seed)
    indexed = sorted([*indexed, *distractors], key=lambda i: (i.published_at, i.id))
    print(
        f"plan seed {plan_seed}: indexed {len(indexed)}, withheld {len(withheld)} (one per story, asked by "
        f"title+text), {len(probes)} stories left out of the index (probes), {len(lone)} stored alone"
        + (f"; {len(distractors)} background articles" if distractors else "")
    )
    signature = {
        "corpus": "allsides",
        "rows": len(indexed),
        "seed": seed,
        "plan_seed": plan_seed,
        "order": "hourly polls",
        **({"text": text} if text != "full" else {}),
        **({"times": times} if times != "spread" else {}),
        **({"background": len(distractors)} if distractors else {}),
    }
    ids = prepare(indexed, work, signature)
    by_entry = {ids[item.id]: item for item in indexed}
    outlets: dict[str, set[str]] = defaultdict(set)
    for item in indexed:
        outlets[item.story].add(item.outlet)
    api = RelatedApi(work)
    if anatomy is not None:
        entry_ids = {entry_id: item.id for entry_id, item in by_entry.items()}
        story_of = {entry_ids[e]: story for e, story in api.stories_of(list(entry_ids)).items()}
        sizes = Counter(story_of.values())
        nearest = nearest_in_meaning(indexed)
    figures: RoundFigures = {}
    for part, wanted in (("calibration", False), ("held-out", True)):
        by_id = Coverage()
        by_text = Coverage()
        fills: list[tuple[float, bool]] = []
        asks = [(item, {"entry": ids[item.id]}, by_id) for item in indexed]
        asks += [(item, embed_params(item), by_text) for item in withheld]
        for item, params, coverage in asks:
            others = outlets[item.story] - {item.outlet}
            if held_out(item.story) != wanted or not others:
                continue
            answered = api.answered(params)
            answer = [(a["id"], a["score"]) for a in answered]
            if anatomy is not None and "entry" in params:
                gold = [o for o in indexed if o.story == item.story and o.outlet != item.outlet]
                shown_stories = [(by_entry[a["id"]], a.get("story_id")) for a in answered]
                dissect(anatomy[part], item, shown_stories, gold, story_of, sizes, nearest)
            fills.extend((s, by_entry[i].story == item.story) for i, s in answer if s < 1.0)
            shown = [by_entry[i] for i, _ in answer]
            found = len({s.outlet for s in shown[:5] if s.story == item.story} & others)
            coverage.add(item, shown, found, len(others))
            if show_errors and (not shown or any(s.story != item.story for s in shown[:5])):
                print_error(part, "entry" if "entry" in params else "title+text", item, answer, by_entry)
        for item in lone:
            if held_out(item.story) == wanted:
                answer = api.scored({"entry": ids[item.id]})
                by_id.probe([by_entry[i] for i, _ in answer])
                if show_errors and answer:
                    print_error(part, "alone", item, answer, by_entry)
        for item in probes:
            if held_out(item.story) == wanted:
                answer = api.scored(embed_params(item))
                by_text.probe([by_entry[i] for i, _ in answer])
                if show_errors and answer:
                    print_error(part, "absent", item, answer, by_entry)
        figures[part] = (by_id, by_text, fills)
    return figures


def print_error(part: str, kind: str, item: Item, answer: list[tuple[str, float]], by_entry: dict[str, Item]) -> None:
    """Print one wrong or empty answer: the asked article, then each item shown (right or wrong, hours apart, score)."""
    print(f"  [{part} {kind}] {item.title[:90]!r} ({item.outlet}, {item.published_at:%m-%d %H:%M})")
    if not answer:
        print("      (nothing shown)")
    for entry_id, score in answer[:5]:
        shown = by_entry[entry_id]
        hours = (shown.published_at - item.published_at).total_seconds() / 3600
        mark = "ok " if shown.story == item.story else "BAD"
        print(f"      {mark} {hours:+6.1f} h  score {score:.3f}  {shown.title[:80]!r} ({shown.outlet})")


def spread_line(rounds: Sequence[dict[str, float]], key: str) -> str:
    """Return the per-round spread of one figure: min-max and the standard deviation."""
    values = [r[key] for r in rounds]
    deviation = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{key} {min(values):.3f}-{max(values):.3f} (sd {deviation:.3f})"


def allsides_main(args: argparse.Namespace) -> int:
    """Measure related coverage on the AllSides stories, by entry and by title+text; return the exit status.

    With ``--rounds K`` the plan is drawn K times (plan seeds ``seed``, ``seed`` + 1000, ...; the time
    spread stays the one of ``--seed``): each round has its own absent stories and withheld articles,
    so over ten rounds nine stories in ten are left out once. The figures are pooled over the rounds
    (counts summed, so every ask weighs the same), with the spread of the rounds' own figures."""
    read = read_allsides(args.corpus_path or ALLSIDES)
    timed = as_published(read) if args.times == "roundup" else spread(read, args.seed)
    items = as_fed(timed, args.text, args.seed)
    when = "at their roundup's date" if args.times == "roundup" else "spread over 2-72 h each"
    print(
        f"AllSides: {len(items)} articles in {len({i.story for i in items})} stories, {when}; "
        f"text: {args.text} ({sum(1 for i in items if i.text)} with text, "
        f"{statistics.mean(len(i.text.split()) for i in items):.0f} words on average)"
    )
    others = background(items, args.background, args.seed) if args.background else []
    if others:
        print(f"background: {len(others)} BBC News articles (full text) dated over the same months, never asked about")
    seeds = plan_seeds(args.seed, args.rounds)
    anatomy = {"calibration": Anatomy(), "held-out": Anatomy()} if args.anatomy else None
    rounds: list[RoundFigures] = []
    for plan_seed in seeds:
        work = args.work_dir if len(seeds) == 1 else args.work_dir / f"plan-{plan_seed}"
        rounds.append(
            allsides_round(items, plan_seed, args.seed, work, args.errors, args.text, others, args.times, anatomy)
        )
    report: dict[str, Any] = {
        "seed": args.seed,
        "plan_seeds": seeds,
        "text": args.text,
        "times": args.times,
        "background": len(others),
    }
    for part in ("calibration", "held-out"):
        by_id, by_text, fills = Coverage(), Coverage(), []
        for figures in rounds:
            by_id.merge(figures[part][0])
            by_text.merge(figures[part][1])
            fills.extend(figures[part][2])
        pooled = f" (pooled over {len(rounds)} rounds)" if len(rounds) > 1 else ""
        print(f"\n== {part} stories{pooled}")
        print(by_id.line("by entry", "articles stored alone"))
        print(by_text.line("by title+text (article not stored)"))
        report[part] = {"by_entry": by_id.figures(), "by_title_text": by_text.figures()}
        if len(rounds) > 1:
            entry_rounds = [figures[part][0].figures() for figures in rounds]
            text_rounds = [figures[part][1].figures() for figures in rounds]
            keys = ("recall_at_5", "precision_at_5", "hit_at_1", "empty")
            print("  per round, by entry:      " + "; ".join(spread_line(entry_rounds, k) for k in keys))
            print(
                "  per round, by title+text: "
                + "; ".join(spread_line(text_rounds, k) for k in (*keys, "false_related"))
            )
            report[part]["rounds"] = {"by_entry": entry_rounds, "by_title_text": text_rounds}
        print(fill_table(fills))
        if anatomy is not None:
            print("\n".join(anatomy[part].lines()))
            report[part]["anatomy"] = dict(anatomy[part].counts)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


def main() -> int:
    """Run the benchmark on the chosen corpus; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", choices=("uci", "allsides"), default="uci")
    parser.add_argument("--corpus-path", type=Path, default=None, help="read the corpus from this file")
    parser.add_argument("--work-dir", type=Path, default=None, help="default: /tmp/newsdesk-bench-related[-allsides]")
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--held-out", type=int, default=1000)
    parser.add_argument("--latency-queries", type=int, default=1000)
    parser.add_argument(
        "--seed", type=int, default=2014, help="chooses the held-out stories (UCI), the plan (AllSides)"
    )
    parser.add_argument(
        "--query-seed",
        type=int,
        default=None,
        help="draw other queries and probes (a check that the calibration holds)",
    )
    parser.add_argument("--sweep", action="store_true", help="also print figures over a range of thresholds")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="AllSides: draw the plan this many times (plan seeds seed, seed+1000, ...) and pool the figures",
    )
    parser.add_argument(
        "--text",
        choices=TEXT_KINDS,
        default="full",
        help="AllSides: what the feeds carry (full lead paragraphs; a third headline-only; first sentences; "
        "headlines only); embedding pages ask with the same",
    )
    parser.add_argument(
        "--times",
        choices=("spread", "roundup"),
        default="spread",
        help="AllSides: each story's articles spread over 2-72 hours (default), or all at the roundup's date",
    )
    parser.add_argument(
        "--background",
        type=int,
        default=0,
        help="AllSides: also store this many BBC News articles (other news, dated over the same months)",
    )
    parser.add_argument("--errors", action="store_true", help="AllSides: print every wrong or empty answer")
    parser.add_argument(
        "--anatomy",
        action="store_true",
        help="AllSides: count where the by-entry answers' misses and wrong items come from (the stories formed)",
    )
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--json", type=Path, help="write the figures to this file as JSON")
    args = parser.parse_args()
    path = args.corpus_path or (UCI if args.corpus == "uci" else ALLSIDES)
    if not path.exists():
        print(f"{path} is not present; nothing to measure", file=sys.stderr)
        return 2
    if args.work_dir is None:
        suffix = "" if args.corpus == "uci" else "-allsides"
        args.work_dir = Path(f"/tmp/newsdesk-bench-related{suffix}")
    return uci_main(args) if args.corpus == "uci" else allsides_main(args)


if __name__ == "__main__":
    sys.stdout = io.TextIOWrapper(sys.stdout.buffer, line_buffering=True)
    raise SystemExit(main())
