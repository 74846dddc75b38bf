"""Polling throughput at scale against `reader` (lemon24) on the same locally served real feeds.

Usage: .venv/bin/python bench/poll.py [--feeds 1000] [--hosts 250] [--latency 0.1] [--concurrency 16]
                                      [--change-every 10] [--repeats 1] [--skip-reader] [--baseline REV]

A server process serves the 200 real bodies of ../shared/corpus/feeds/kagisearch__fastfeedparser/
benchmark_data/ replicated to --feeds URLs over --hosts loopback addresses (127.0.1.1, 127.0.1.2, ...),
each request delayed by --latency, with ETag / Last-Modified and gzip. It counts requests in flight
per host. Each contestant runs in its own process (clean CPU and memory figures):

- newsdesk pass 1: every feed fetched and parsed, with per-host politeness on (defaults: 2 at once,
  1 s apart per host); pass 2: the same feeds again, where 1 in --change-every has a new version and
  the rest answer 304;
- reader pass 1: reader.update_feeds(workers=--concurrency) on the same URLs (no per-host limits);
- with --baseline REV, our poller as of git revision REV too (checked out into a temporary worktree
  and run with this venv's libraries), so that a change in our own speed is told apart from the
  machine's: its figures and the ratios of CPU per feed are printed beside this tree's.

Prints feeds/s, CPU seconds per feed, peak memory, the share of conditional requests, the most
requests ever in flight to one host, and the ratios against the targets. Exits non-zero when our
per-host limit was exceeded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from email.utils import formatdate
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.baseline import checkout, run_in_tree, short_id, use_tree  # noqa: E402

use_tree()  # --baseline's contestant (and its parse workers) import that revision's code

CORPUS = REPO.parent / "shared" / "corpus" / "feeds" / "kagisearch__fastfeedparser" / "benchmark_data"
BASE_TIME = 1_767_225_600  # 2026-01-01, Last-Modified of version 0


def host_address(index: int) -> str:
    """Return the loopback address of bench host ``index`` (127.0.1.1 onwards; 127.0.0.1 is the control)."""
    return f"127.0.{1 + index // 250}.{1 + index % 250}"


# --------------------------------------------------------------------------- the server process


def serve(args: argparse.Namespace) -> None:
    """Serve the corpus on every bench host until stdin closes; print "ready PORT" once listening."""
    bodies = [p.read_bytes() for p in sorted(CORPUS.iterdir()) if p.is_file()]
    zipped = [gzip.compress(b, 6) for b in bodies]
    state: dict[str, Any] = {"round": 0}
    counts: Counter[str] = Counter()
    in_flight: Counter[str] = Counter()
    peak: Counter[str] = Counter()
    # Requests per feed, for bench/scale.py: several pollers must never fetch one feed twice in a pass.
    per_feed: Counter[int] = Counter()

    versions: dict[tuple[int, int], tuple[bytes, bytes]] = {}

    def version_of(number: int, version: int) -> tuple[bytes, bytes]:
        """Return (body, gzipped body) of a document at a version: new bytes, so nobody can skip them."""
        if version == 0:
            return bodies[number], zipped[number]
        if (number, version) not in versions:
            body = bodies[number] + f"\n<!-- version {version} -->\n".encode()
            versions[(number, version)] = (body, gzip.compress(body, 6))
        return versions[(number, version)]

    def reset() -> None:
        counts.clear()
        peak.clear()
        per_feed.clear()

    async def respond(writer: asyncio.StreamWriter, status: str, headers: dict[str, str], body: bytes) -> None:
        head = "".join(f"{k}: {v}\r\n" for k, v in {**headers, "Content-Length": str(len(body))}.items())
        writer.write(f"HTTP/1.1 {status}\r\n{head}\r\n".encode("latin-1") + body)
        await writer.drain()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host = writer.get_extra_info("sockname")[0]
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                target = lines[0].split(" ")[1]
                headers = {
                    k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)
                }
                if target.startswith("/_"):
                    # The counters as they were, then the action: a pass's figures end where the next begins.
                    stats = {
                        **counts,
                        "round": state["round"],
                        "peak_per_host": max(peak.values(), default=0),
                        "feeds_fetched": len(per_feed),
                        "repeat_fetches": sum(n - 1 for n in per_feed.values()),
                    }
                    if target == "/_round":
                        state["round"] += 1
                        reset()
                    elif target == "/_reset":
                        state["round"] = 0
                        reset()
                    await respond(writer, "200 OK", {"Content-Type": "application/json"}, json.dumps(stats).encode())
                    continue
                index = int(target.rsplit("/", 1)[1])
                counts["requests"] += 1
                per_feed[index] += 1
                in_flight[host] += 1
                peak[host] = max(peak[host], in_flight[host])
                try:
                    await asyncio.sleep(args.latency)
                    version = state["round"] if index % args.change_every == 0 else 0
                    etag = f'"{index}-{version}"'
                    modified = formatdate(BASE_TIME + version * 3600, usegmt=True)
                    conditional = "if-none-match" in headers or "if-modified-since" in headers
                    counts["conditional"] += conditional
                    fresh = (
                        headers.get("if-none-match") == etag
                        if "if-none-match" in headers
                        else headers.get("if-modified-since") == modified
                    )
                    common = {"ETag": etag, "Last-Modified": modified}
                    if conditional and fresh:
                        counts["not_modified"] += 1
                        await respond(writer, "304 Not Modified", common, b"")
                    else:
                        body, packed = version_of(index % len(bodies), version)
                        if "gzip" in headers.get("accept-encoding", ""):
                            body = packed
                            common["Content-Encoding"] = "gzip"
                        counts["bytes_sent"] += len(body)
                        await respond(writer, "200 OK", {**common, "Content-Type": "application/xml"}, body)
                finally:
                    in_flight[host] -= 1
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, IndexError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        probe = socket.socket()
        probe.bind((host_address(0), 0))
        port = probe.getsockname()[1]
        probe.close()
        servers = [await asyncio.start_server(handle, "127.0.0.1", port, backlog=512)]
        for index in range(args.hosts):
            servers.append(await asyncio.start_server(handle, host_address(index), port, backlog=512))
        print(f"ready {port}", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent goes

    asyncio.run(main())


# --------------------------------------------------------------------------- contestants


def control(port: int, action: str) -> dict[str, Any]:
    """Return the server's counters after ``action`` (stats, reset, round)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_{action}", timeout=30) as response:
        stats: dict[str, Any] = json.loads(response.read())
        return stats


def proc_cpu(pids: list[int]) -> float:
    """Return the CPU seconds (user + system) used so far by live processes ``pids``."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return total


def proc_peak_rss(pid: int) -> float:
    """Return a live process's peak resident memory (VmHWM), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def urls_for(args: argparse.Namespace, port: int) -> list[str]:
    return [f"http://{host_address(i % args.hosts)}:{port}/feed/{i}" for i in range(args.feeds)]


def run_newsdesk(args: argparse.Namespace, port: int) -> dict[str, Any]:
    """Two passes of our poller over every URL; return the figures."""
    import logging

    from aggregator.config import config_from_dict
    from aggregator.poller import Poller
    from aggregator.store import open_store

    logging.disable(logging.WARNING)  # the corpus holds a few non-feeds; their errors are expected
    tmp = Path(tempfile.mkdtemp(prefix="newsdesk-bench-"))
    config = config_from_dict({"data_dir": str(tmp), "polling": {"concurrency": args.concurrency}})
    store = open_store(config.db_url)
    for url in urls_for(args, port):
        store.add_feed(url)
    feeds = store.list_feeds()
    control(port, "reset")
    figures: dict[str, Any] = {}
    cpu0, t0 = self_cpu(), time.perf_counter()
    poller = Poller(store, config)
    results = poller.poll(feeds)
    wall1 = time.perf_counter() - t0
    workers = poller.worker_pids()
    worker_cpu1 = proc_cpu(workers)
    cpu1 = self_cpu() - cpu0 + worker_cpu1
    stats1 = control(port, "round")  # also: 1 in change_every feeds gets a new version
    figures["pass1"] = {
        "wall": wall1,
        "cpu": cpu1,
        "cpu_workers": worker_cpu1,
        "ok": sum(1 for r in results if not r.error),
        "entries": store.count_entries(),
        "peak_per_host": max(poller.hosts.peak.values(), default=0),
        "server": stats1,
        "rss_parent": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_workers": [proc_peak_rss(pid) for pid in workers],
    }
    feeds = store.list_feeds()
    poller.hosts.peak.clear()
    cpu2, t2 = self_cpu(), time.perf_counter()
    results = poller.poll(feeds)
    wall2 = time.perf_counter() - t2
    cpu_2 = self_cpu() - cpu2 + proc_cpu(workers) - worker_cpu1
    stats2 = control(port, "stats")
    figures["pass2"] = {
        "wall": wall2,
        "cpu": cpu_2,
        "ok": sum(1 for r in results if not r.error),
        "not_modified": sum(1 for r in results if r.status == 304),
        "peak_per_host": max(poller.hosts.peak.values(), default=0),
        "server": stats2,
    }
    poller.close()
    store.close()
    return figures


def run_reader(args: argparse.Namespace, port: int) -> dict[str, Any]:
    """reader's first pass (and a second, for information) over every URL; return the figures."""
    import importlib
    import logging

    # reader's vendored feedparser imports "sgmllib"; this venv has the same module under its newer
    # name (feedparser-sgmllib). Alias it here, in the reader process only.
    sys.modules.setdefault("sgmllib", importlib.import_module("feedparser_sgmllib"))
    import reader

    logging.disable(logging.CRITICAL)
    tmp = Path(tempfile.mkdtemp(prefix="reader-bench-"))
    library = reader.make_reader(str(tmp / "reader.sqlite"))
    for url in urls_for(args, port):
        library.add_feed(url)
    control(port, "reset")
    cpu0, t0 = self_cpu(), time.perf_counter()
    outcomes = list(library.update_feeds_iter(workers=args.concurrency))
    wall1 = time.perf_counter() - t0
    cpu1 = self_cpu() - cpu0
    stats1 = control(port, "round")
    counts = library.get_entry_counts()
    figures: dict[str, Any] = {
        "pass1": {
            "wall": wall1,
            "cpu": cpu1,
            "ok": sum(1 for o in outcomes if not isinstance(o.value, Exception)),
            "entries": counts.total,
            "server": stats1,
            "rss_parent": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_workers": [],
        }
    }
    cpu2, t2 = self_cpu(), time.perf_counter()
    list(library.update_feeds_iter(workers=args.concurrency, scheduled=False))
    figures["pass2"] = {
        "wall": time.perf_counter() - t2,
        "cpu": self_cpu() - cpu2,
        "server": control(port, "stats"),
    }
    library.close()
    return figures


# --------------------------------------------------------------------------- report


def contestant(args: argparse.Namespace, name: str, port: int, tree: Path | None = None) -> dict[str, Any]:
    """Run one contestant in a fresh process (our poller from ``tree`` when given) and return its figures."""
    command = [sys.executable, __file__, "--contestant", name, "--port", str(port), *args.passthrough]
    done = run_in_tree(command, tree, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-4000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the run whose first pass took the (lower) median time, its figures kept together."""
    ordered = sorted(runs, key=lambda r: r["pass1"]["wall"])
    return ordered[(len(ordered) - 1) // 2]


def cpu_split(feeds: int, figures: dict[str, Any]) -> str:
    """Return the line that splits a pass's CPU per feed between our main process and the parse workers."""
    main_process = (figures["cpu"] - figures["cpu_workers"]) / feeds * 1000
    return (
        f"{'':<24}(CPU: {main_process:.1f} ms/feed in the fetching and writing process, "
        f"{figures['cpu_workers'] / feeds * 1000:.1f} ms/feed in the parse workers)"
    )


def row(label: str, feeds: int, figures: dict[str, Any]) -> str:
    wall, cpu = figures["wall"], figures["cpu"]
    rss = ""
    if "rss_parent" in figures:
        workers = figures.get("rss_workers") or []
        rss = f"{figures['rss_parent']:.0f} MiB" + (
            f" + {len(workers)}x{max(workers):.0f} MiB workers" if workers else ""
        )
    server = figures["server"]
    share = server.get("conditional", 0) / max(server.get("requests", 1), 1)
    return (
        f"{label:<24}{wall:>8.1f}{feeds / wall:>10.1f}{cpu / feeds * 1000:>13.1f}"
        f"{server.get('peak_per_host', 0):>10}{share:>8.0%}   {rss}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=250)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds added to every response")
    parser.add_argument("--concurrency", type=int, default=16, help="our global concurrency = reader's workers")
    parser.add_argument("--change-every", type=int, default=10, help="1 feed in N has a new version in pass 2")
    parser.add_argument("--skip-reader", action="store_true")
    parser.add_argument("--repeats", type=int, default=1, help="alternate the contestants N times; report medians")
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also run our poller as of git revision REV (e.g. the README's figures' commit)",
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--contestant", choices=["newsdesk", "reader"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args, _unknown = parser.parse_known_args()  # run_all.py passes its own options along
    args.passthrough = [
        f"--feeds={args.feeds}",
        f"--hosts={args.hosts}",
        f"--latency={args.latency}",
        f"--concurrency={args.concurrency}",
        f"--change-every={args.change_every}",
    ]
    if not CORPUS.is_dir():
        print(f"poll bench skipped: {CORPUS} is not present")
        return 0
    if args.serve:
        serve(args)
        return 0
    if args.contestant:
        run = run_newsdesk if args.contestant == "newsdesk" else run_reader
        print(json.dumps(run(args, args.port)))
        return 0

    with contextlib.ExitStack() as stack:
        baseline = stack.enter_context(checkout(args.baseline)) if args.baseline else None
        return report(args, baseline)


def report(args: argparse.Namespace, baseline: Path | None) -> int:
    """Serve the feeds, run the contestants in turn, and print the figures; return the exit status."""
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", *args.passthrough],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().split()[1])
        corpus_mb = sum(p.stat().st_size for p in CORPUS.iterdir() if p.is_file()) * args.feeds / 200 / 1e6
        print(
            f"poll bench: {args.feeds} feeds ({len(list(CORPUS.iterdir()))} real bodies replicated, {corpus_mb:.0f} MB), "
            f"{args.hosts} hosts on 127.0.x.y, {args.latency * 1000:.0f} ms latency, concurrency {args.concurrency}, "
            f"{os.cpu_count()} cores (load average {os.getloadavg()[0]:.1f}: other work on the machine slows both)",
            flush=True,
        )
        runs: dict[str, list[dict[str, Any]]] = {"newsdesk": [], "reader": [], "baseline": []}
        for _ in range(max(args.repeats, 1)):
            # Alternating spreads whatever else the machine is doing over all contestants.
            runs["newsdesk"].append(contestant(args, "newsdesk", port))
            if not args.skip_reader:
                runs["reader"].append(contestant(args, "reader", port))
            if baseline is not None:
                runs["baseline"].append(contestant(args, "newsdesk", port, baseline))
        ours = median_run(runs["newsdesk"])
        theirs = median_run(runs["reader"]) if runs["reader"] else None
        before = median_run(runs["baseline"]) if runs["baseline"] else None
        if args.repeats > 1:
            for name, figures in runs.items():
                walls = ", ".join(f"{f['pass1']['wall']:.1f}" for f in figures)
                if walls:
                    print(f"{name} pass 1 wall times: {walls} s (lower median shown below)")
    finally:
        if server.stdin:
            server.stdin.close()
        server.wait(timeout=30)

    n = args.feeds
    print(f"{'':<24}{'wall s':>8}{'feeds/s':>10}{'CPU ms/feed':>13}{'max/host':>10}{'cond.':>8}   peak RSS")
    print(row("newsdesk pass 1", n, ours["pass1"]))
    print(cpu_split(n, ours["pass1"]))
    print(row("newsdesk pass 2 (304s)", n, ours["pass2"]))
    if before:
        label = short_id(args.baseline)
        print(row(f"newsdesk {label} pass 1", n, before["pass1"]))
        print(cpu_split(n, before["pass1"]))
        print(row(f"newsdesk {label} pass 2", n, before["pass2"]))
    if theirs:
        print(row("reader pass 1", n, theirs["pass1"]))
        print(row("reader pass 2", n, theirs["pass2"]))
    p1, p2 = ours["pass1"], ours["pass2"]
    print(
        f"newsdesk: pass 1 stored {p1['entries']} entries ({p1['ok']} feeds ok); pass 2: "
        f"{p2['not_modified']} answered 304, {p2['server'].get('conditional', 0)}/{p2['server'].get('requests', 0)} "
        "requests conditional"
    )
    speedup = p1["wall"] / p2["wall"]
    print(f"pass 2 vs pass 1: {speedup:.1f}x faster (target >= 5x): {'met' if speedup >= 5 else 'MISSED'}")
    if theirs:
        r1 = theirs["pass1"]
        ratio = r1["wall"] / p1["wall"]
        print(f"reader: pass 1 stored {r1['entries']} entries ({r1['ok']} feeds ok)")
        print(f"first pass vs reader: {ratio:.1f}x its throughput (target >= 3x): {'met' if ratio >= 3 else 'MISSED'}")
        print(
            f"CPU per feed, first pass: newsdesk {p1['cpu'] / n * 1000:.1f} ms, reader {r1['cpu'] / n * 1000:.1f} ms; "
            f"per entry stored: newsdesk {p1['cpu'] / max(p1['entries'], 1) * 1000:.2f} ms, "
            f"reader {r1['cpu'] / max(r1['entries'], 1) * 1000:.2f} ms"
        )
    if before:
        b1 = before["pass1"]
        print(
            f"against {short_id(args.baseline)} in the same run: pass 1 CPU per feed {p1['cpu'] / b1['cpu']:.2f}x "
            f"(main process {(p1['cpu'] - p1['cpu_workers']) / max(b1['cpu'] - b1['cpu_workers'], 1e-9):.2f}x, "
            f"parse workers {p1['cpu_workers'] / max(b1['cpu_workers'], 1e-9):.2f}x), wall {p1['wall'] / b1['wall']:.2f}x; "
            f"it stored {b1['entries']} entries ({b1['ok']} feeds ok)"
        )
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    limit = 2  # polling.per_host_concurrency default
    worst = max(p1["server"]["peak_per_host"], p2["server"]["peak_per_host"])
    print(f"most requests in flight to one host (server-counted): {worst} (limit {limit})")
    if worst > limit:
        print("FAILED: the per-host limit was exceeded")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
