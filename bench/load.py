"""Load benchmark: the production web server under a fixed request mix at rising concurrency, while polling runs.

What runs, each in its own process (the load client never shares a GIL with the server):

- `newsdesk serve`, the real console script (waitress, `server.threads` threads), on 127.0.0.1;
- `newsdesk run` (default tick) on the same data dir, polling --feeds local feeds every 60 s and
  indexing what they publish (each feed publishes a new article every --publish-every seconds), so
  the index changes under the load exactly as it does in production (`run` writes, `serve` reads);
- a local feed server for those feeds;
- a "hello" WSGI app (one constant 6-byte answer) under waitress with the same settings: the
  ceiling of this stack on this machine, measured in the same run;
- the load client: asyncio, HTTP/1.1 keep-alive, closed loop (each of C connections sends its next
  request when the previous answer has arrived), one process per step. With --serve-processes N,
  N `serve` processes (and N hello servers) listen side by side and the client spreads its
  connections over them round-robin, as a reverse proxy would.

Each concurrency step runs the mix against `serve` for --duration seconds, then "hello" for the same
time, and reports sustained requests/s, p50/p95/p99 latency, errors (anything but a 200), the
server's RSS at the step's start and end, its CPU per request, and what polling ingested meanwhile.

The mix (weights): search API 25, search page 15, article page 20, related API 15, embed 15,
front page 10. Queries are bench/search.py's mix (words, ANDs, phrases, a source filter, newest
first, zero-hit) drawn from titles in the store; articles are drawn from 2,000 random entries
plus the live feeds' first entries.

Data: --data-dir DIR uses the store and index in DIR (a data dir, or the DIR that
`bench/search.py --keep DIR` built: its DIR/data), and builds one there with --entries N from
../shared/corpus when DIR holds none; an index behind its store is brought up to date first. Without --data-dir it builds --entries N in a temp dir.
The corpus outlets in the store are not real feeds: they are disabled (reason "load bench") so the
writer does not try to fetch them. The live feeds and their entries are removed again at the end.
The related-API rate limit is off for the bench (every request comes from one address).

Usage: .venv/bin/python bench/load.py [--data-dir DIR] [--entries N] [--duration 60]
           [--concurrency 1,2,4,8,16,32] [--threads 8] [--serve-processes 1] [--feeds 20]
           [--publish-every 10] [--no-polling]

Figures go to stdout as a table and to bench/results/load-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
NEWSDESK = str(Path(sys.executable).parent / "newsdesk")

#: Share of each request kind in the mix.
MIX = {"search_api": 25, "search_page": 15, "article": 20, "related": 15, "embed": 15, "front": 10}
#: Articles a live feed shows at once (its first poll stores this many).
LIVE_ITEMS = 10
#: Fixed polling interval of the live feeds (the smallest `feeds[].interval` allows).
LIVE_INTERVAL = 60
TARGET_RATIO = 0.5
TARGET_P99_MS = 250.0


# --------------------------------------------------------------------------- the load client (own process)


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str) -> tuple[int, bytes, bool]:
    """Send one GET on a kept-alive connection; return (status, body, server closes)."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: identity\r\n\r\n".encode("latin-1"))
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if not size:
                break
            parts.append(chunk[:-2])
        body = b"".join(parts)
    else:  # no length: the body ends with the connection
        body = await reader.read()
        return status, body, True
    return status, body, headers.get("connection", "").lower() == "close"


async def _load(ports: list[int], connections: int, duration: float, pool: dict[str, Any], seed: int) -> dict[str, Any]:
    """Drive ``connections`` closed-loop connections for ``duration`` s; return latencies and errors."""
    kinds = list(pool["weights"])
    weights = [pool["weights"][k] for k in kinds]
    latencies: dict[str, list[float]] = {k: [] for k in kinds}
    errors: Counter[str] = Counter()
    samples: list[dict[str, Any]] = []
    deadline = time.perf_counter() + duration

    async def connect(index: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        # Connections are spread over the server processes as a round-robin proxy would spread them.
        return await asyncio.open_connection("127.0.0.1", ports[index % len(ports)], limit=2**22)

    async def worker(index: int) -> None:
        rng = random.Random(seed * 10_007 + index)
        reader, writer = await connect(index)
        while time.perf_counter() < deadline:
            kind = rng.choices(kinds, weights)[0]
            path = rng.choice(pool["paths"][kind])
            started = time.perf_counter()
            try:
                status, body, closes = await asyncio.wait_for(_request(reader, writer, path), 30)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError) as exc:
                errors[f"{kind}: {type(exc).__name__}"] += 1
                if len(samples) < 5:
                    samples.append({"path": path, "error": repr(exc)})
                writer.close()
                reader, writer = await connect(index)
                continue
            latencies[kind].append((time.perf_counter() - started) * 1000)
            if status != 200:
                errors[f"{kind}: HTTP {status}"] += 1
                if len(samples) < 5:
                    samples.append({"path": path, "status": status, "body": body[:300].decode("utf-8", "replace")})
            if closes:
                writer.close()
                reader, writer = await connect(index)
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(connections)))
    elapsed = time.perf_counter() - started
    return {"elapsed": elapsed, "latencies": latencies, "errors": dict(errors), "error_samples": samples}


def client_main(argv: list[str]) -> int:
    """Entry point of the client process: run one step and print its raw figures as JSON."""
    parser = argparse.ArgumentParser(prog="load.py _client")
    parser.add_argument("--ports", required=True)
    parser.add_argument("--connections", type=int, required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--pool", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    pool = json.loads(args.pool.read_text())
    cpu_before = time.process_time()
    result = asyncio.run(
        _load([int(p) for p in args.ports.split(",")], args.connections, args.duration, pool, args.seed)
    )
    result["client_cpu_seconds"] = time.process_time() - cpu_before
    json.dump(result, sys.stdout)
    return 0


# --------------------------------------------------------------------------- the ceiling: hello under waitress


def hello_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Answer every request with a constant 6-byte body: the least work a WSGI app can do."""
    body = b"hello\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def hello_main(argv: list[str]) -> int:
    """Entry point of the hello server: waitress with the settings `newsdesk serve` passes it."""
    from waitress import serve

    port, threads = int(argv[0]), int(argv[1])
    serve(hello_app, host="127.0.0.1", port=port, threads=threads, ident="newsdesk")
    return 0


# --------------------------------------------------------------------------- the live feeds (own process)


def feeds_main(argv: list[str]) -> int:
    """Entry point of the feed server: --feeds RSS feeds that publish an article every --every seconds."""
    import html
    from datetime import UTC, datetime
    from email.utils import format_datetime
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    port, feeds, every, articles_path = int(argv[0]), int(argv[1]), float(argv[2]), Path(argv[3])
    articles = json.loads(articles_path.read_text())
    began = time.time()

    def newest(feed: int, now: float) -> int:
        # Feeds publish out of phase, so polls find new items at different moments.
        return LIVE_ITEMS - 1 + int((now - began + feed * every / feeds) // every)

    def document(feed: int, last: int) -> bytes:
        items = []
        for number in range(max(0, last - LIVE_ITEMS + 1), last + 1):
            title, text = articles[(number * 7 + feed * 13) % len(articles)]
            published = datetime.fromtimestamp(began + (number - LIVE_ITEMS + 1) * every - feed * every / feeds, UTC)
            paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in text.split("\n\n") if p.strip())
            items.append(
                f"<item><title>{html.escape(title)}</title>"
                f"<link>https://live{feed}.example/story/{number}</link>"
                f"<guid isPermaLink='false'>live-{feed}-{number}</guid>"
                f"<pubDate>{format_datetime(published, usegmt=True)}</pubDate>"
                f"<description>{html.escape(paragraphs)}</description></item>"
            )
        return (
            f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>Live wire {feed + 1}</title>"
            f"<link>https://live{feed}.example/</link><description>load bench</description>{''.join(items)}"
            "</channel></rss>"
        ).encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            try:
                feed = int(self.path.rsplit("/", 1)[1].split(".")[0])
            except ValueError:
                feed = -1
            if not 0 <= feed < feeds:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            last = newest(feed, time.time())
            etag = f'"{feed}-{last}"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = document(feed, last)
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
    return 0


# --------------------------------------------------------------------------- preparing the data


def load_search_bench() -> Any:
    """Return bench/search.py as a module (its corpus readers and query mix)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_search", REPO / "bench" / "search.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def resolve_data_dir(path: Path) -> Path:
    """Return the data dir in ``path``: ``path`` itself, or the data/ that `bench/search.py --keep` made."""
    if not (path / "newsdesk.db").exists() and (path / "data" / "newsdesk.db").exists():
        return path / "data"
    return path


def build_data_dir(data_dir: Path, entries: int) -> None:
    """Build a store and index of about ``entries`` corpus entries in ``data_dir`` (as bench/search.py does)."""
    from aggregator.config import config_from_dict
    from aggregator.models import FeedContext
    from aggregator.normalize import normalize_feed
    from index.indexer import Indexer
    from web.services import build_services

    corpus = load_search_bench()
    if not (corpus.REUTERS.is_dir() and corpus.BBC.is_dir() and corpus.UCI.exists()):
        raise SystemExit("../shared/corpus is not present: give --data-dir of a built data dir")
    config = config_from_dict({"data_dir": str(data_dir)}, label="load bench")
    services = build_services(config)
    store = services.store
    started = time.perf_counter()
    stored = 0
    # corpus_feeds(limit) yields up to limit Reuters, limit BBC and 8 x limit headlines.
    for title, site, items in corpus.corpus_feeds(max(1, entries // 10)):
        items = items[: entries - stored]
        if not items:
            break
        feed = store.add_feed(site + "feed.xml", title=title)
        context = FeedContext(feed.key, feed.url, title, site, corpus.NOW, "UTC", "en")
        normalized = normalize_feed(corpus.parsed_feed(title, site, items), context)
        store.save_entries(feed.id, normalized, seen_at=corpus.NOW)
        stored += len(normalized)
    indexer = Indexer(config.index_dir, store, batch_size=2000)
    indexer.catch_up()
    indexer.optimize_if_needed()
    services.close()
    print(f"built {stored} entries in {data_dir} in {time.perf_counter() - started:.0f}s", flush=True)


def catch_up_index(data_dir: Path) -> None:
    """Index what the store holds and the index does not yet (as `newsdesk index`), then merge segments as `run` does."""
    from aggregator.config import config_from_dict
    from aggregator.store import open_store
    from index.indexer import Indexer

    config = config_from_dict({"data_dir": str(data_dir)}, label="load bench")
    store = open_store(config.db_url)
    indexer = Indexer(config.index_dir, store, batch_size=2000)
    behind = store.last_seq() - indexer.indexed_seq()
    if behind > 0:
        started = time.perf_counter()
        print(f"the index is {behind} changes behind the store: indexing them", flush=True)
        stats = indexer.catch_up()
        merged = indexer.optimize_if_needed()
        print(
            f"indexed {stats.upserts} entries in {time.perf_counter() - started:.0f}s"
            f"{', then merged the segments' if merged else ''}",
            flush=True,
        )
    store.close()


def park_corpus_feeds(data_dir: Path) -> int:
    """Disable every enabled feed of the store (corpus outlets, not fetchable); return how many."""
    from aggregator.config import config_from_dict
    from aggregator.store import open_store

    config = config_from_dict({"data_dir": str(data_dir)}, label="load bench")
    store = open_store(config.db_url)
    parked = 0
    for feed in store.list_feeds(enabled_only=True):
        store.set_feed_enabled(feed.id, False, "load bench: corpus outlet, not a fetchable feed")
        parked += 1
    store.close()
    return parked


def write_config(path: Path, data_dir: Path, port: int, threads: int, feed_urls: list[str]) -> None:
    """Write a config.toml for one process of the bench (the writer and the server share data and feeds)."""
    lines = [
        f'data_dir = "{data_dir}"',
        "[server]",
        'host = "127.0.0.1"',
        f"port = {port}",
        f"threads = {threads}",
        "# Every bench request comes from 127.0.0.1: a per-client limit would turn into a global one.",
        "rate_limit_per_minute = 0",
    ]
    for number, url in enumerate(feed_urls):
        lines += ["[[feeds]]", f'url = "{url}"', f'title = "Live wire {number + 1}"', f'interval = "{LIVE_INTERVAL}s"']
    path.write_text("\n".join(lines) + "\n")


class Probe:
    """Read-only view of the store and index the bench reports on (live entries, index lag)."""

    def __init__(self, data_dir: Path) -> None:
        from aggregator.config import config_from_dict
        from aggregator.store import open_store
        from index.indexer import Indexer

        self.config = config_from_dict({"data_dir": str(data_dir)}, label="load bench")
        self.store = open_store(self.config.db_url)
        self.indexer = Indexer(self.config.index_dir, self.store)

    def live_entries(self, feed_urls: list[str]) -> int:
        """Return how many entries the live feeds have in the store."""
        import sqlalchemy as sa

        from aggregator.tables import entries_table, feeds_table

        query = (
            sa.select(sa.func.count())
            .select_from(entries_table.join(feeds_table, entries_table.c.feed_id == feeds_table.c.id))
            .where(feeds_table.c.url.in_(feed_urls))
        )
        with self.store.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def sequences(self) -> tuple[int, int]:
        """Return (the store's last change, the change the live index reflects)."""
        return self.store.last_seq(), self.indexer.indexed_seq()

    def request_pool(self, feed_urls: list[str], seed: int) -> dict[str, Any]:
        """Return the mix's request paths by kind, drawn from the store with a fixed seed."""
        from urllib.parse import urlencode

        import sqlalchemy as sa

        from aggregator.tables import entries_table, feeds_table

        corpus = load_search_bench()
        with self.store.engine.connect() as conn:
            rows = [(row.id, row.title) for row in conn.execute(sa.select(entries_table.c.id, entries_table.c.title))]
            live = [
                row.id
                for row in conn.execute(
                    sa.select(entries_table.c.id)
                    .select_from(entries_table.join(feeds_table, entries_table.c.feed_id == feeds_table.c.id))
                    .where(feeds_table.c.url.in_(feed_urls))
                )
            ]
        rows.sort()
        sampled = random.Random(seed).sample(rows, min(3000, len(rows)))
        entries = self.store.get_entries([i for i, _ in sampled[:500]])
        sources = [title for title, _ in Counter(e.source.title for e in entries.values()).most_common(10)]
        queries = corpus.query_mix([t for _, t in sampled], sources or ["none"], 300, seed=seed)
        ids = [i for i, _ in sampled[:2000]] + live
        searches = [urlencode({"q": text, **options}) for _kind, text, options in queries]
        return {
            "weights": MIX,
            "paths": {
                "search_api": [f"/api/v1/search?{s}" for s in searches],
                "search_page": [f"/?{s}" for s in searches],
                "article": [f"/entries/{i}" for i in ids],
                "related": [f"/api/v1/related?entry={i}" for i in ids],
                "embed": [f"/embed/related?entry={i}" for i in ids],
                "front": ["/"],
            },
        }

    def articles(self, count: int = 400) -> list[tuple[str, str]]:
        """Return (title, text) of ``count`` stored entries with text, for the live feeds to publish."""
        import sqlalchemy as sa

        from aggregator.tables import entries_table

        query = (
            sa.select(entries_table.c.title, entries_table.c.text)
            .where(entries_table.c.word_count > 40)
            .order_by(entries_table.c.id)
            .limit(count)
        )
        with self.store.engine.connect() as conn:
            rows = [(r.title, r.text) for r in conn.execute(query)]
        return rows or [(f"Bench story {n}", f"Bench story number {n} about load and latency.") for n in range(50)]

    def remove_live_feeds(self) -> None:
        """Remove the live feeds and their entries again, and bring the index up to date."""
        from aggregator.config import config_from_dict
        from aggregator.configfeeds import sync_config_feeds

        sync_config_feeds(self.store, config_from_dict({"data_dir": str(self.config.data_dir)}, label="load bench"))
        self.indexer.catch_up()

    def close(self) -> None:
        """Release the store."""
        self.store.close()


# --------------------------------------------------------------------------- processes and measuring


def free_port() -> int:
    """Return a TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen[Any], timeout: float, what: str) -> None:
    """Wait until ``url`` answers 200; stop the bench when ``process`` exits or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with status {process.returncode} before answering")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{what} did not answer {url} within {timeout:.0f}s")


def rss_mib(pid: int, kind: str = "VmRSS") -> float:
    """Return a process's resident memory in MiB (``kind`` "RssAnon": its own heap, not mapped files)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{kind}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """Return a process's user + system CPU time so far, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentiles(values: list[float]) -> tuple[float, float, float]:
    """Return p50, p95 and p99 (nearest rank) of ``values``; NaN when there are none."""
    if not values:
        return float("nan"), float("nan"), float("nan")
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    return at(0.5), at(0.95), at(0.99)


def run_client(ports: list[int], connections: int, duration: float, pool: Path, seed: int) -> dict[str, Any]:
    """Run one step's load client in its own process and return its figures."""
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            "_client",
            f"--ports={','.join(map(str, ports))}",
            f"--connections={connections}",
            f"--duration={duration}",
            f"--pool={pool}",
            f"--seed={seed}",
        ],
        capture_output=True,
        text=True,
        timeout=duration + 120,
    )
    if done.returncode != 0:
        raise SystemExit(f"load client failed: {done.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def measure(
    label: str,
    ports: list[int],
    pids: list[int],
    connections: int,
    duration: float,
    pool: Path,
    seed: int,
    probe: Probe | None,
    feed_urls: list[str],
    writer_pid: int | None = None,
) -> dict[str, Any]:
    """Run one step against one server and return its summary (latencies by kind kept for the JSON)."""
    writer_start = cpu_seconds(writer_pid) if writer_pid else 0.0
    live_before = probe.live_entries(feed_urls) if probe and feed_urls else 0
    seq_before = probe.sequences() if probe else (0, 0)
    rss_start, cpu_start = [rss_mib(p) for p in pids], sum(cpu_seconds(p) for p in pids)
    raw = run_client(ports, connections, duration, pool, seed)
    rss_end, cpu_end = [rss_mib(p) for p in pids], sum(cpu_seconds(p) for p in pids)
    writer_cpu = (cpu_seconds(writer_pid) - writer_start) if writer_pid else 0.0
    seq_after = probe.sequences() if probe else (0, 0)
    everything = [v for values in raw["latencies"].values() for v in values]
    count = len(everything)
    p50, p95, p99 = percentiles(everything)
    return {
        "target": label,
        "concurrency": connections,
        "seconds": round(raw["elapsed"], 2),
        "requests": count,
        "rps": count / raw["elapsed"],
        "p50_ms": p50,
        "p95_ms": p95,
        "p99_ms": p99,
        "errors": sum(raw["errors"].values()),
        "errors_by_kind": raw["errors"],
        "error_samples": raw["error_samples"],
        "rss_start_mib": sum(rss_start),
        "rss_end_mib": sum(rss_end),
        "rss_end_mib_by_process": rss_end,
        # Resident pages of mapped index files are page cache that several processes share; the rest is each one's own.
        "rss_anon_end_mib": sum(rss_mib(p, "RssAnon") for p in pids),
        "server_cpu_ms_per_request": (cpu_end - cpu_start) * 1000 / max(1, count),
        "client_cpu_ms_per_request": raw["client_cpu_seconds"] * 1000 / max(1, count),
        "by_kind": {
            kind: dict(zip(("n", "p50_ms", "p95_ms", "p99_ms"), (len(v), *percentiles(v)), strict=True))
            for kind, v in raw["latencies"].items()
        },
        # The writer competes for the same cores: its share tells polling's cost from the server's own.
        "writer_cpu_share": writer_cpu / raw["elapsed"],
        "live_entries_ingested": (probe.live_entries(feed_urls) - live_before) if probe and feed_urls else 0,
        "index_changes_applied": seq_after[1] - seq_before[1],
        "index_lag_changes_at_end": seq_after[0] - seq_after[1],
        "load_average": os.getloadavg()[0],
    }


def stop(process: subprocess.Popen[Any] | None) -> None:
    """Stop a process we started: SIGTERM, then SIGKILL after 15 s."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


# --------------------------------------------------------------------------- report


def print_report(steps: list[dict[str, Any]], serve_rss: list[float]) -> dict[str, Any]:
    """Print the table, ratios and verdicts; return the summary for the JSON."""
    print(
        f"\n{'target':9}{'conc':>5}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}"
        f"{'RSS start→end MiB':>20}{'srv CPU ms/req':>16}{'cli CPU':>9}{'ingested':>10}{'idx changes':>13}"
    )
    for s in steps:
        print(
            f"{s['target']:9}{s['concurrency']:5}{s['rps']:9.1f}{s['p50_ms']:9.1f}{s['p95_ms']:9.1f}{s['p99_ms']:9.1f}"
            f"{s['errors']:8}{s['rss_start_mib']:11.0f} → {s['rss_end_mib']:<6.0f}{s['server_cpu_ms_per_request']:14.2f}"
            f"{s['client_cpu_ms_per_request']:9.2f}"
            f"{s['live_entries_ingested']:10}{s['index_changes_applied']:13}"
        )
    mix = {s["concurrency"]: s for s in steps if s["target"] == "newsdesk"}
    hello = {s["concurrency"]: s for s in steps if s["target"] == "hello"}
    print("\nnewsdesk mix / hello ceiling, requests/s:")
    for c in sorted(mix):
        if c in hello:
            print(
                f"  concurrency {c:3}: {mix[c]['rps']:8.1f} / {hello[c]['rps']:8.1f} = {mix[c]['rps'] / hello[c]['rps']:.3f}"
            )
    summary: dict[str, Any] = {}
    if mix:
        peak = max(mix.values(), key=lambda s: s["rps"])
        ceiling = max(hello.values(), key=lambda s: s["rps"]) if hello else None
        print(f"\npeak of the mix: {peak['rps']:.1f} req/s at concurrency {peak['concurrency']}; by kind there:")
        for kind, figures in peak["by_kind"].items():
            print(
                f"  {kind:12} n={figures['n']:6}  p50 {figures['p50_ms']:7.1f}  p95 {figures['p95_ms']:7.1f}"
                f"  p99 {figures['p99_ms']:7.1f} ms"
            )
        ratio = peak["rps"] / ceiling["rps"] if ceiling else float("nan")
        errors = sum(s["errors"] for s in mix.values())
        print(
            f"targets: peak / hello peak = {peak['rps']:.1f} / {ceiling['rps'] if ceiling else float('nan'):.1f} = "
            f"{ratio:.3f} (>= {TARGET_RATIO}: {'met' if ratio >= TARGET_RATIO else 'NOT met'}); "
            f"p99 at the peak {peak['p99_ms']:.1f} ms (<= {TARGET_P99_MS:.0f}: "
            f"{'met' if peak['p99_ms'] <= TARGET_P99_MS else 'NOT met'}); errors {errors} (target 0)"
        )
        if serve_rss:
            print(
                f"server RSS: {serve_rss[0]:.0f} MiB at the first step, {serve_rss[-1]:.0f} MiB after the last, "
                f"max {max(serve_rss):.0f} MiB; by step: {', '.join(f'{v:.0f}' for v in serve_rss)}"
            )
        for s in mix.values():
            for sample in s["error_samples"]:
                print(f"  error sample (concurrency {s['concurrency']}): {sample}")
        summary = {
            "peak_concurrency": peak["concurrency"],
            "peak_rps": peak["rps"],
            "peak_p99_ms": peak["p99_ms"],
            "hello_peak_rps": ceiling["rps"] if ceiling else None,
            "ratio_to_ceiling": ratio,
            "errors": errors,
            "serve_rss_mib_by_step_end": serve_rss,
        }
    return summary


# --------------------------------------------------------------------------- main


def main() -> int:
    """Run the benchmark (or, with a leading _client/_hello/_feeds, one of its helper processes)."""
    if len(sys.argv) > 1 and sys.argv[1] in ("_client", "_hello", "_feeds"):
        role = {"_client": client_main, "_hello": hello_main, "_feeds": feeds_main}[sys.argv[1]]
        return role(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=None, help="Built data dir to use (or to build into).")
    parser.add_argument("--entries", type=int, default=20_000, help="Entries to build when there is no data dir.")
    parser.add_argument("--duration", type=float, default=60.0, help="Seconds per step and target (default 60).")
    parser.add_argument("--concurrency", default="1,2,4,8,16,32", help="Client connections per step.")
    parser.add_argument("--threads", type=int, default=8, help="server.threads of waitress (default 8, as shipped).")
    parser.add_argument(
        "--serve-processes", type=int, default=1, help="`newsdesk serve` processes (and hello servers) side by side."
    )
    parser.add_argument("--feeds", type=int, default=20, help="Live feeds the writer polls (default 20).")
    parser.add_argument("--publish-every", type=float, default=10.0, help="Seconds between a live feed's articles.")
    parser.add_argument("--no-polling", action="store_true", help="No writer, no live feeds: a static index.")
    parser.add_argument("--warmup", type=float, default=10.0, help="Unmeasured seconds of the mix first.")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",") if c.strip()]

    sys.path.insert(0, str(REPO))
    workdir = Path(tempfile.mkdtemp(prefix="newsdesk-bench-load-"))
    if args.data_dir is None:
        data_dir = workdir / "data"
        build_data_dir(data_dir, args.entries)
    else:
        data_dir = resolve_data_dir(args.data_dir.resolve())
        if not (data_dir / "newsdesk.db").exists():
            build_data_dir(data_dir, args.entries)
    catch_up_index(data_dir)
    parked = park_corpus_feeds(data_dir)
    if parked:
        print(f"disabled {parked} corpus outlets in the store (not fetchable feeds)", flush=True)

    processes: dict[str, subprocess.Popen[Any]] = {}
    probe = Probe(data_dir)
    servers = args.serve_processes
    names = ["feeds", "writer", *(f"serve{n}" for n in range(servers)), *(f"hello{n}" for n in range(servers))]
    logs = {name: (workdir / f"{name}.log").open("w") for name in names}
    env = {k: v for k, v in os.environ.items() if k != "NEWSDESK_CONFIG"}
    feed_urls: list[str] = []
    try:
        if not args.no_polling:
            feeds_port = free_port()
            articles = workdir / "articles.json"
            articles.write_text(json.dumps(probe.articles()))
            processes["feeds"] = subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "_feeds",
                    str(feeds_port),
                    str(args.feeds),
                    str(args.publish_every),
                    str(articles),
                ],
                stdout=logs["feeds"],
                stderr=subprocess.STDOUT,
            )
            feed_urls = [f"http://127.0.0.1:{feeds_port}/feed/{n}.xml" for n in range(args.feeds)]
            wait_for(feed_urls[0], processes["feeds"], 30, "the feed server")
            write_config(workdir / "writer.toml", data_dir, free_port(), args.threads, feed_urls)
            processes["writer"] = subprocess.Popen(
                [NEWSDESK, "--config", str(workdir / "writer.toml"), "run"],
                stdout=logs["writer"],
                stderr=subprocess.STDOUT,
                env=env,
            )
            wait_for_first_poll(probe, feed_urls, args.feeds * LIVE_ITEMS, processes["writer"])
        serve_ports = [free_port() for _ in range(servers)]
        hello_ports = [free_port() for _ in range(servers)]
        for n, port in enumerate(serve_ports):
            # One config per process: they differ only in server.port, as they would behind a proxy.
            write_config(workdir / f"serve{n}.toml", data_dir, port, args.threads, feed_urls)
            processes[f"serve{n}"] = subprocess.Popen(
                [NEWSDESK, "--config", str(workdir / f"serve{n}.toml"), "serve"],
                stdout=logs[f"serve{n}"],
                stderr=subprocess.STDOUT,
                env=env,
            )
        for n, port in enumerate(hello_ports):
            processes[f"hello{n}"] = subprocess.Popen(
                [sys.executable, __file__, "_hello", str(port), str(args.threads)],
                stdout=logs[f"hello{n}"],
                stderr=subprocess.STDOUT,
            )
        for n, port in enumerate(serve_ports):
            wait_for(f"http://127.0.0.1:{port}/healthz", processes[f"serve{n}"], 300, "newsdesk serve")
        for n, port in enumerate(hello_ports):
            wait_for(f"http://127.0.0.1:{port}/", processes[f"hello{n}"], 60, "the hello server")

        entries = probe.store.count_entries()
        index_dir = probe.indexer.location.current_dir()
        index_mib = sum(p.stat().st_size for p in index_dir.rglob("*") if p.is_file()) / 2**20 if index_dir else 0.0
        print(
            f"store: {entries} entries, index {index_mib:.0f} MiB; {servers} `newsdesk serve` process(es) with "
            f"{args.threads} waitress threads; "
            f"{'writer polling ' + str(args.feeds) + ' live feeds' if feed_urls else 'no polling'}; "
            f"{args.duration:.0f} s per step; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        pool_path, hello_pool = workdir / "pool.json", workdir / "hello.json"
        pool_path.write_text(json.dumps(probe.request_pool(feed_urls, args.seed)))
        hello_pool.write_text(json.dumps({"weights": {"hello": 1}, "paths": {"hello": ["/"]}}))
        writer_pid = processes["writer"].pid if "writer" in processes else None
        serve_pids = [processes[f"serve{n}"].pid for n in range(servers)]
        hello_pids = [processes[f"hello{n}"].pid for n in range(servers)]
        rss_at_start = sum(rss_mib(pid) for pid in serve_pids)
        if args.warmup > 0:
            run_client(serve_ports, 2 * servers, args.warmup, pool_path, args.seed + 1000)
            run_client(hello_ports, 2 * servers, min(args.warmup, 3), hello_pool, args.seed + 1000)

        steps: list[dict[str, Any]] = []
        for number, connections in enumerate(levels):
            for label, ports, pids, pool in (
                ("newsdesk", serve_ports, serve_pids, pool_path),
                ("hello", hello_ports, hello_pids, hello_pool),
            ):
                step = measure(
                    label,
                    ports,
                    pids,
                    connections,
                    args.duration,
                    pool,
                    args.seed + number,
                    probe,
                    feed_urls,
                    writer_pid,
                )
                steps.append(step)
                print(
                    f"{label:9} c={connections:<3} {step['rps']:8.1f} req/s  p50 {step['p50_ms']:6.1f}  "
                    f"p99 {step['p99_ms']:7.1f} ms  errors {step['errors']}  RSS {step['rss_start_mib']:.0f}→"
                    f"{step['rss_end_mib']:.0f} MiB (anon {step['rss_anon_end_mib']:.0f})  ingested {step['live_entries_ingested']}  "
                    f"writer CPU {step['writer_cpu_share']:.0%}  "
                    f"load {step['load_average']:.1f}",
                    flush=True,
                )
                for name, process in processes.items():
                    if process.poll() is not None:
                        raise SystemExit(f"{name} exited with status {process.returncode}; see {workdir}/{name}.log")
        serve_rss = [rss_at_start] + [s["rss_end_mib"] for s in steps if s["target"] == "newsdesk"]
        summary = print_report(steps, serve_rss)
        if writer_pid:
            summary["writer_rss_mib_at_end"] = rss_mib(writer_pid)
            print(f"writer (`newsdesk run`) RSS at the end: {summary['writer_rss_mib_at_end']:.0f} MiB")
        RESULTS.mkdir(parents=True, exist_ok=True)
        out = RESULTS / f"load-{time.strftime('%Y%m%d-%H%M%S')}.json"
        out.write_text(
            json.dumps(
                {
                    "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                    "entries": entries,
                    "index_mib": index_mib,
                    "cpus": os.cpu_count(),
                    "mix": MIX,
                    "summary": summary,
                    "steps": steps,
                },
                indent=1,
            )
        )
        print(f"\nresults: {out}")
        return 0
    finally:
        for name in reversed(names):
            stop(processes.get(name))
        for handle in logs.values():
            handle.close()
        if feed_urls and args.data_dir is not None:
            probe.remove_live_feeds()
        probe.close()
        if args.data_dir is None and sys.exc_info()[0] is None:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"process logs: {workdir}", flush=True)


def wait_for_first_poll(probe: Probe, feed_urls: list[str], expected: int, writer: subprocess.Popen[Any]) -> None:
    """Wait until the writer's first poll of the live feeds is stored and indexed (at most 300 s)."""
    deadline = time.monotonic() + 300
    while True:
        stored_seq, indexed_seq = probe.sequences()
        if probe.live_entries(feed_urls) >= expected and indexed_seq >= stored_seq:
            return
        if writer.poll() is not None:
            raise SystemExit(f"newsdesk run exited with status {writer.returncode}")
        if time.monotonic() > deadline:
            print("warning: the first poll is not indexed after 300 s; going on", flush=True)
            return
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
