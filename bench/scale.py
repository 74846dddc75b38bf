"""Scale-out on one PostgreSQL: 1, 2 and 4 `newsdesk poller` processes over the same feeds, then 2 web followers' lag.

Usage: .venv/bin/python bench/scale.py [--feeds 2000] [--hosts 250] [--latency 0.1] [--pollers 1,2,4]
                                       [--concurrency 16] [--lag-feeds 100] [--lag-window 60] [--queries 40]
                                       [--database-url postgresql://postgres@127.0.0.1:5432/test]

Feeds are served by bench/poll.py's server (the 200 real bodies of ../shared/corpus, replicated over
--hosts loopback addresses, --latency per response); it counts requests per feed and in flight per host.
Every phase gets a fresh database on the PostgreSQL server given (dropped afterwards).

- Pollers: for each count in --pollers, that many `newsdesk poller --once` processes (each with
  polling.concurrency = --concurrency and node.parse_workers = cores / count, so they share the cores;
  default politeness: 2 requests in flight and 1 s between starts per host, over all pollers) check
  every feed once. Reported: wall time from start to the last exit, feeds/s, the scaling ratio against
  one poller, CPU per feed (pollers and their parse workers, sampled from /proc every 0.1 s, and the
  PostgreSQL backends serving them), repeated fetches (target 0) and the most requests the server ever
  saw in flight to one host (target <= 2).
- Followers: --lag-feeds feeds fall due evenly over --lag-window seconds; one poller polls them while two
  `newsdesk serve --follow` nodes follow the change log, each into its own index. The store and both
  followers' cursors (their state files) are sampled every 0.1 s; a change's lag on a follower is the
  time from when it was first visible in the store to when that follower's cursor passed it (the
  follower commits its index before moving the cursor; searches see each commit on their next query). Then a query mix
  runs against both nodes: their hit lists must be identical.
"""

from __future__ import annotations

import argparse
import bisect
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

from poll import CORPUS, control, host_address  # noqa: E402

NEWSDESK = str(Path(sys.executable).parent / "newsdesk")
TICK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- plumbing


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """Yield the URL of a new database on the server (dropped afterwards)."""
    import psycopg

    name = f"newsdesk_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield server_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def write_config(
    directory: Path, name: str, url: str, args: argparse.Namespace, port: int = 8080, parse_workers: int = 0
) -> Path:
    path = directory / f"{name}.toml"
    path.write_text(
        f'data_dir = "data-{name}"\ndatabase_url = "{url}"\nlog_level = "warning"\n'
        f"[server]\nport = {port}\nready_poll_staleness = 0\nthreads = 4\n"
        f'[node]\nname = "{name}"\nindex_dir = "replica-{name}"\nparse_workers = {parse_workers}\n'
        f"[polling]\nconcurrency = {args.concurrency}\n"
    )
    return path


def start(config: Path, *command: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "NEWSDESK_CONFIG"}
    log = open(config.with_suffix(".log"), "ab")  # noqa: SIM115 - the child keeps it
    return subprocess.Popen([NEWSDESK, "--config", str(config), *command], stdout=log, stderr=log, env=env)


def descendants(root: int) -> list[int]:
    """Return the process ids under ``root`` (children, grandchildren...)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, stack = [], [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


class CpuSampler:
    """Sums the CPU time of processes and everything under them, sampling /proc (each process's own time, at its last sample)."""

    def __init__(self, roots: list[int], interval: float = 0.1, database_url: str | None = None) -> None:
        self.roots = roots
        self.interval = interval
        self.seen: dict[tuple[int, int], float] = {}  # (pid, start time) -> CPU seconds
        #: The same, for the PostgreSQL backends serving the nodes (same machine), when a database is given.
        self.database: dict[tuple[int, int], float] = {}
        self.database_url = database_url
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        backends: list[int] = []
        last_lookup = 0.0
        while not self._stop.is_set():
            self.sample(self.roots + [pid for root in self.roots for pid in descendants(root)])
            if self.database_url:
                if time.monotonic() - last_lookup > 1.0:
                    backends, last_lookup = self._backends(), time.monotonic()
                self.sample(backends, into=self.database)
            self._stop.wait(self.interval)

    def _backends(self) -> list[int]:
        import psycopg

        assert self.database_url is not None
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'newsdesk-%'"
            ).fetchall()
        return [int(row[0]) for row in rows]

    def sample(self, pids: list[int], into: dict[tuple[int, int], float] | None = None) -> None:
        seen = self.seen if into is None else into
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            cpu = (int(fields[11]) + int(fields[12])) / TICK
            key = (pid, int(fields[19]))
            seen[key] = max(seen.get(key, 0.0), cpu)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def total(self) -> float:
        """Return the CPU seconds of every process seen."""
        return sum(self.seen.values())

    def roots_only(self) -> float:
        """Return the CPU seconds of the root processes themselves (the pollers, without their parse workers)."""
        return sum(cpu for (pid, _), cpu in self.seen.items() if pid in self.roots)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --------------------------------------------------------------------------- phase 1: pollers


def run_pollers(args: argparse.Namespace, port: int, count: int, work: Path) -> dict[str, Any]:
    """Check every feed once with ``count`` poller processes; return the figures."""
    import sqlalchemy as sa

    from aggregator.store import open_store

    urls = [f"http://{host_address(i % args.hosts)}:{port}/feed/{i}" for i in range(args.feeds)]
    with fresh_database(args.database_url) as url:
        store = open_store(url)
        for feed_url in urls:
            store.add_feed(feed_url, interval_seconds=3600)  # due now, then not for an hour
        control(port, "reset")
        directory = work / f"pollers-{count}"
        directory.mkdir()
        # Pollers on one machine share its cores: each starts cores/count parse workers (at least one).
        workers = max(1, (os.cpu_count() or 1) // count)
        configs = [write_config(directory, f"poller-{n}", url, args, parse_workers=workers) for n in range(count)]
        started = time.perf_counter()
        procs = [start(config, "poller", "--once") for config in configs]
        with CpuSampler([p.pid for p in procs], database_url=url) as cpu:
            for proc in procs:
                proc.wait(timeout=3600)
            wall = time.perf_counter() - started
        stats = control(port, "stats")
        with store.engine.connect() as conn:
            checked, failed, first, last = conn.execute(
                sa.text(
                    "SELECT count(last_checked_at), count(last_error), min(last_checked_at), max(last_checked_at) FROM feeds"
                )
            ).one()
            leftover = conn.execute(sa.text("SELECT count(*) FROM feeds WHERE lease_token IS NOT NULL")).scalar()
        entries = store.count_entries()
        store.close()
    return {
        "pollers": count,
        "wall": wall,
        "window": (last - first).total_seconds() if first and last else 0.0,
        "checked": checked,
        "failed": failed,
        "entries": entries,
        "cpu": cpu.total(),
        "cpu_pollers": cpu.roots_only(),
        "cpu_database": sum(cpu.database.values()),
        "requests": stats.get("requests", 0),
        "feeds_fetched": stats.get("feeds_fetched", 0),
        "repeat_fetches": stats.get("repeat_fetches", 0),
        "peak_per_host": stats.get("peak_per_host", 0),
        "leftover_leases": leftover,
        "exit_codes": [p.returncode for p in procs],
    }


# --------------------------------------------------------------------------- phase 2: followers


def readyz(port: int) -> dict[str, Any] | None:
    try:
        checks: dict[str, Any] = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).json()["checks"]
    except (httpx.HTTPError, ValueError, KeyError):
        return None
    replica: dict[str, Any] | None = checks.get("replica")
    return replica


def replica_cursor(root: Path) -> tuple[int, int] | None:
    """Return the (txid, seq) a follower's live replica has applied, from its state file."""
    from index.follower import read_position
    from index.indexer import IndexLocation

    try:
        path = IndexLocation(root).current_dir()
        position = read_position(path) if path is not None else None
    except (OSError, ValueError, KeyError):
        return None
    return None if position is None else (position.txid, position.seq)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_followers(args: argparse.Namespace, port: int, work: Path) -> dict[str, Any]:
    """Poll --lag-feeds feeds falling due over --lag-window while two web followers follow; return the figures."""
    import sqlalchemy as sa

    from aggregator.store import open_store

    directory = work / "followers"
    directory.mkdir()
    urls = [f"http://{host_address(i % args.hosts)}:{port}/feed/{i}" for i in range(args.lag_feeds)]
    with fresh_database(args.database_url) as url:
        store = open_store(url)
        web_ports = [free_port(), free_port()]
        webs = [
            start(write_config(directory, f"web-{n}", url, args, p), "serve", "--follow")
            for n, p in enumerate(web_ports)
        ]
        try:
            deadline = time.monotonic() + 120
            while not all((s := readyz(p)) and s["ok"] for p in web_ports):
                assert time.monotonic() < deadline, "the web followers did not start"
                time.sleep(0.25)
            begin = datetime.now(UTC) + timedelta(seconds=5)
            for n, feed_url in enumerate(urls):
                due = begin + timedelta(seconds=args.lag_window * n / max(len(urls), 1))
                store.add_feed(feed_url, interval_seconds=3600, next_check_at=due)
            control(port, "reset")
            poller = start(write_config(directory, "poller", url, args), "poller")
            visible: dict[tuple[int, int], float] = {}
            cursors: list[list[tuple[float, tuple[int, int]]]] = [[], []]
            replica_lag: list[float] = [0.0, 0.0]
            roots = [directory / f"replica-web-{n}" for n in range(2)]
            ingest_started = time.time()
            deadline = time.monotonic() + args.lag_window + 600
            done_at: float | None = None
            floor, probed, caught_up = 0, 0.0, False
            while time.monotonic() < deadline:
                now = time.time()
                with store.engine.connect() as conn:
                    # One writer (one poller) logs nearly in order; the margin covers the rest.
                    for txid, seq in conn.execute(
                        sa.text("SELECT txid, seq FROM changes WHERE seq > :floor"), {"floor": floor}
                    ):
                        visible.setdefault((txid, seq), now)
                        floor = max(floor, seq - 1000)
                    checked = conn.execute(sa.text("SELECT count(last_checked_at) FROM feeds")).scalar()
                # The followers' cursors from their state files (written right after each index commit):
                # probing /readyz this often would cost the followers more CPU than following does.
                for i, root in enumerate(roots):
                    cursor = replica_cursor(root)
                    if cursor is not None:
                        cursors[i].append((time.time(), cursor))
                if now - probed > 2.0:
                    probed, caught_up = now, True
                    for i, web_port in enumerate(web_ports):
                        status = readyz(web_port)
                        if status is None:
                            caught_up = False
                            continue
                        replica_lag[i] = max(replica_lag[i], status["lag_seconds"])
                        caught_up = caught_up and status["lag_changes"] == 0
                if checked == len(urls) and caught_up:
                    done_at = done_at or time.time()
                    if time.time() - done_at > 1.0:
                        break
                time.sleep(0.1)
            ingest_seconds = (done_at or time.time()) - ingest_started
            poller.terminate()
            poller.wait(timeout=120)
            from poll import proc_cpu

            follower_cpu = [proc_cpu([w.pid]) for w in webs]
            entries = store.count_entries()
            words = query_words(store, args.queries)
            identical, compared, examples = 0, 0, []
            for q in words:
                answers = []
                for web_port in web_ports:
                    found = httpx.get(
                        f"http://127.0.0.1:{web_port}/api/v1/search", params={"q": q, "per_page": 20}, timeout=30
                    ).json()
                    answers.append(
                        (
                            found["total"],
                            [(h["id"], tuple(d["id"] for d in h.get("duplicates", []))) for h in found["hits"]],
                        )
                    )
                compared += 1
                identical += answers[0] == answers[1]
                if answers[0] != answers[1] and len(examples) < 3:
                    examples.append(q)
        finally:
            for proc in webs:
                proc.terminate()
            for proc in webs:
                proc.wait(timeout=60)
        store.close()
    lags: list[list[float]] = []
    keys = sorted(visible)
    for samples in cursors:
        times = [t for t, _ in samples]
        positions = [c for _, c in samples]
        follower_lags = []
        for key in keys:
            # The first sample whose cursor is at or past the change (cursors only move forward).
            index = bisect.bisect_left(positions, key)
            if index < len(positions):
                follower_lags.append(max(0.0, times[index] - visible[key]))
        lags.append(follower_lags)
    return {
        "feeds": len(urls),
        "entries": entries,
        "changes": len(keys),
        "ingest_seconds": ingest_seconds,
        "lags": lags,
        "replica_lag_max": replica_lag,
        "follower_cpu": follower_cpu,
        "queries": compared,
        "identical": identical,
        "differing": examples,
    }


def query_words(store: Any, count: int) -> list[str]:
    """Return a fixed mix of one- and two-word queries drawn from stored titles."""
    vocabulary: set[str] = set()
    for entry in store.iter_entries():
        vocabulary.update(w.lower() for w in re.findall(r"[A-Za-z]{5,}", entry.title))
    pool = sorted(vocabulary)
    rng = random.Random(7)
    queries = [rng.choice(pool) for _ in range(count // 2)]
    queries += [f"{rng.choice(pool)} {rng.choice(pool)}" for _ in range(count - count // 2)]
    return queries


# --------------------------------------------------------------------------- report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--hosts", type=int, default=250)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds added to every response")
    parser.add_argument("--pollers", default="1,2,4", help="poller process counts to compare")
    parser.add_argument("--concurrency", type=int, default=16, help="polling.concurrency of each poller")
    parser.add_argument("--lag-feeds", type=int, default=100, help="feeds polled while the followers follow (0: skip)")
    parser.add_argument("--lag-window", type=float, default=60, help="seconds over which those feeds fall due")
    parser.add_argument("--queries", type=int, default=40, help="queries compared between the two followers")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("NEWSDESK_TEST_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test",
    )
    args, _unknown = parser.parse_known_args()  # run_all.py passes its own options along
    if not CORPUS.is_dir():
        print(f"scale bench skipped: {CORPUS} is not present")
        return 0
    try:
        import psycopg

        psycopg.connect(args.database_url, connect_timeout=3).close()
    except Exception as exc:  # no server: nothing to measure
        print(f"scale bench skipped: PostgreSQL at {args.database_url} does not answer ({exc})")
        return 0
    counts = [int(c) for c in args.pollers.split(",") if c.strip()]
    served = max(args.feeds, args.lag_feeds)
    server = subprocess.Popen(
        [
            sys.executable,
            str(BENCH / "poll.py"),
            "--serve",
            f"--feeds={served}",
            f"--hosts={args.hosts}",
            f"--latency={args.latency}",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    work = Path(tempfile.mkdtemp(prefix="newsdesk-scale-"))
    results: list[dict[str, Any]] = []
    followers: dict[str, Any] | None = None
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().split()[1])
        print(
            f"scale bench: {args.feeds} feeds on {args.hosts} loopback hosts, {args.latency * 1000:.0f} ms latency, "
            f"concurrency {args.concurrency} per poller, per-host limit 2 in flight / 1 s apart over all pollers; "
            f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        for count in counts:
            figures = run_pollers(args, port, count, work)
            results.append(figures)
            print(
                f"  {count} poller(s): {figures['wall']:.1f} s, {figures['checked']} checked, "
                f"{figures['repeat_fetches']} repeated fetches, load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
        if args.lag_feeds:
            followers = run_followers(args, port, work)
    finally:
        if server.stdin:
            server.stdin.close()
        server.wait(timeout=30)

    base = results[0]["checked"] / results[0]["wall"] if results else 0.0
    print(
        f"\n{'pollers':>8}{'wall s':>9}{'feeds/s':>9}{'scaling':>9}{'CPU ms/feed':>13}{'+ PG ms/feed':>14}"
        f"{'repeats':>9}{'max/host':>10}{'failed':>8}"
    )
    for r in results:
        rate = r["checked"] / r["wall"]
        per_feed = 1000 / max(r["checked"], 1)
        print(
            f"{r['pollers']:>8}{r['wall']:>9.1f}{rate:>9.1f}{rate / base:>8.2f}x{r['cpu'] * per_feed:>13.1f}"
            f"{r['cpu_database'] * per_feed:>14.1f}{r['repeat_fetches']:>9}{r['peak_per_host']:>10}{r['failed']:>8}"
        )
    for r in results:
        per_feed = 1000 / max(r["checked"], 1)
        print(
            f"  {r['pollers']} poller(s): CPU per feed {r['cpu_pollers'] * per_feed:.1f} ms in the pollers (fetch, leases, "
            f"host slots, store writes) + {(r['cpu'] - r['cpu_pollers']) * per_feed:.1f} ms in parse workers + "
            f"{r['cpu_database'] * per_feed:.1f} ms in PostgreSQL; {r['checked']}/{args.feeds} feeds checked, {r['feeds_fetched']} fetched by the server "
            f"({r['requests']} requests), {r['entries']} entries, first to last check {r['window']:.1f} s, "
            f"leases left {r['leftover_leases']}, exit codes {r['exit_codes']}"
        )
    ok = all(r["repeat_fetches"] == 0 and r["peak_per_host"] <= 2 and r["checked"] == args.feeds for r in results)
    if followers:
        f = followers
        print(
            f"\nfollowers: {f['feeds']} feeds due over {args.lag_window:.0f} s -> {f['entries']} entries, "
            f"{f['changes']} changes in {f['ingest_seconds']:.1f} s ({f['changes'] / max(f['ingest_seconds'], 0.001):.0f} changes/s)"
        )
        for n, lags in enumerate(f["lags"]):
            print(
                f"  web-{n}: commit -> searchable lag p50 {percentile(lags, 0.5):.2f} s, p95 {percentile(lags, 0.95):.2f} s, "
                f"max {max(lags, default=float('nan')):.2f} s over {len(lags)} changes; /readyz lag_seconds max "
                f"{f['replica_lag_max'][n]:.1f}; CPU {f['follower_cpu'][n]:.1f} s "
                f"({f['follower_cpu'][n] / max(f['entries'], 1) * 1000:.1f} ms per entry)"
            )
        print(f"  query mix: {f['identical']}/{f['queries']} queries gave identical hit lists on both replicas")
        if f["differing"]:
            print(f"  differing: {f['differing']}")
        p95 = max(percentile(lags, 0.95) for lags in f["lags"])
        print(f"  lag p95 {p95:.2f} s (target <= 5 s): {'met' if p95 <= 5 else 'MISSED'}")
        ok = ok and f["identical"] == f["queries"]
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    if not ok:
        print("FAILED: a repeated fetch, the per-host limit exceeded, a feed left unchecked or replicas that differ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
