"""Pollers and web followers as real processes on one PostgreSQL: no double fetches, shared host limits, full replicas, crashes."""

from __future__ import annotations

import itertools
import random
import signal
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from whoosh import index as whoosh_index

from aggregator.changelog import ChangeLog
from aggregator.store import Store, open_store
from index.follower import Follower
from index.indexer import IndexLocation

from .support.nodes import FeedHosts, free_port, replica_status, rss, running, start_node, until
from .support.pg import end_sessions
from .test_store import make_entry

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

HOSTS = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]
#: Every node's database sessions (they name themselves `newsdesk-poller NAME`, `newsdesk-web NAME`).
NODE_SESSIONS = (
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'newsdesk-%'"
)


def write_config(path: Path, url: str, name: str, *, port: int = 8080, node: str = "", polling: str = "") -> Path:
    path.write_text(
        f'data_dir = "data-{name}"\ndatabase_url = "{url}"\n'
        f"[server]\nport = {port}\nready_poll_staleness = 0\n"
        f'[node]\nname = "{name}"\nindex_dir = "replica-{name}"\nfollow_interval = "0.3s"\n{node}\n'
        f"[polling]\n{polling}\n"
    )
    return path


VOCABULARY = [
    "harbour",
    "council",
    "ferry",
    "storm",
    "budget",
    "election",
    "river",
    "school",
    "hospital",
    "museum",
    "bridge",
    "railway",
    "festival",
    "farmers",
    "market",
    "library",
    "court",
    "mayor",
    "strike",
    "energy",
    "housing",
    "weather",
    "football",
    "orchestra",
    "airport",
    "factory",
    "vaccine",
    "drought",
    "flood",
    "teachers",
    "nurses",
    "tram",
    "bakery",
    "theatre",
    "island",
    "mountain",
    "forest",
    "harvest",
]


def words(feed: int, item: int) -> str:
    """Return a word unique to one item (searchable, and nowhere else)."""
    return f"zq{feed:02d}x{item:02d}"


def item_text(feed: int, item: int) -> str:
    """Return an item's text: its own word, its feed's word and a dozen words of its own pick."""
    rng = random.Random(feed * 100 + item)
    return f"{words(feed, item)} zqfeed{feed:02d} " + " ".join(rng.choice(VOCABULARY) for _ in range(14))


def serve_feeds(hosts: FeedHosts, store: Store, count: int, host_of: int | None = None, first: int = 0) -> list[str]:
    """Serve ``count`` feeds of five items each over the hosts, add them to the store (interval 60 s); return URLs."""
    urls = []
    for n in range(first, first + count):
        items = [(f"f{n}-i{i}", f"Report {words(n, i)} number {i}", item_text(n, i)) for i in range(5)]
        url = hosts.add_feed(
            n % len(hosts.servers) if host_of is None else host_of, f"/feed/{n}.xml", rss(f"Outlet {n}", items)
        )
        store.add_feed(url, interval_seconds=60)
        urls.append(url)
    return urls


def index_ids(root: Path) -> list[str]:
    path = IndexLocation(root).current_dir()
    assert path is not None
    with whoosh_index.open_dir(str(path)).searcher() as searcher:
        return [fields["id"] for fields in searcher.all_stored_fields()]


def log_lines(path: Path, level: str) -> list[str]:
    return [line for line in path.read_text(errors="replace").splitlines() if f" {level} " in line]


def test_two_pollers_and_two_followers(pg_url: str, tmp_path: Path) -> None:
    store = open_store(pg_url)
    with FeedHosts(HOSTS[:3]) as hosts:
        hosts.latency = 0.6  # longer than the delay: two requests to a host overlap whenever the limit allows
        urls = serve_feeds(hosts, store, 36)
        ports = [free_port(), free_port()]
        polling = 'concurrency = 8\nper_host_concurrency = 2\nper_host_delay = "0.3s"\n'
        nodes = [
            start_node(
                write_config(tmp_path / f"{n}.toml", pg_url, n, node="claim_batch = 4", polling=polling),
                tmp_path / f"{n}.log",
                "poller",
            )
            for n in ("poller-a", "poller-b")
        ]
        nodes += [
            start_node(
                write_config(tmp_path / f"{n}.toml", pg_url, n, port=port), tmp_path / f"{n}.log", "serve", "--follow"
            )
            for n, port in zip(("web-a", "web-b"), ports, strict=True)
        ]
        with running(*nodes):
            expected = 36 * 5
            until(lambda: store.count_entries() == expected, 90, "every feed stored")
            for port in ports:
                until(
                    lambda p=port: (s := replica_status(p)) and s["ok"] and s["lag_changes"] == 0,
                    60,
                    "replicas caught up",
                )

            # pg_terminate_backend on every node's connections: each reconnects and carries on.
            killed = end_sessions(store.engine, NODE_SESSIONS)
            assert killed >= 4
            more = serve_feeds(hosts, store, 6, first=36)
            until(lambda: store.count_entries() == expected + 30, 90, "feeds added after the disconnect stored")
            for port in ports:
                until(lambda p=port: (s := replica_status(p)) and s["lag_changes"] == 0, 60, "replicas caught up again")

            # Every stored entry is searchable on both web nodes, each from its own replica.
            stored = {e.id: e for e in store.iter_entries()}
            for port in ports:
                for n in range(42):
                    found = httpx.get(
                        f"http://127.0.0.1:{port}/api/v1/search",
                        params={"q": f"zqfeed{n:02d}", "per_page": 10, "collapse": "0"},
                        timeout=10,
                    ).json()
                    assert {h["id"] for h in found["hits"]} == {
                        i for i, e in stored.items() if f"zqfeed{n:02d}" in e.text
                    }
                    assert len(found["hits"]) == 5
                hit = httpx.get(f"http://127.0.0.1:{port}/api/v1/search", params={"q": words(7, 3)}, timeout=10).json()
                assert [h["title"] for h in hit["hits"]] == [f"Report {words(7, 3)} number 3"]
            for port in ports:  # the index lag gauges of a web node are its replica's
                metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
                assert "\nnewsdesk_index_lag_changes 0.0\n" in metrics
            for name in ("web-a", "web-b"):
                ids = index_ids(tmp_path / f"replica-{name}")
                assert len(ids) == len(set(ids)) == expected + 30 and set(ids) == set(stored)

            # Every feed fetched once in its interval, by one poller or the other (both did some).
            requests = hosts.requests()
            assert {url: requests[url] for url in urls + more} == dict.fromkeys(urls + more, 1)
            claimed = {
                n: sum(
                    int(line.split("claimed=")[1].split()[0])
                    for line in log_lines(tmp_path / f"{n}.log", "INFO")
                    if "claimed=" in line
                )
                for n in ("poller-a", "poller-b")
            }
            assert claimed["poller-a"] > 0 and claimed["poller-b"] > 0 and sum(claimed.values()) == 42
        assert [proc.returncode for proc in nodes[:2]] == [0, 0]  # SIGTERM: the pollers finish their batch and exit
        # Per-host limits held across both pollers, as the sites counted them.
        for address in HOSTS[:3]:
            stats = hosts.stats[address]
            assert stats.peak == 2, (address, stats.peak)  # reached, never exceeded
            starts = sorted(stats.starts)
            gaps = [b - a for a, b in itertools.pairwise(starts)]
            assert min(gaps) >= 0.1, (address, min(gaps))  # per_host_delay 0.3 s, give or take scheduling
    for name in ("poller-a", "poller-b", "web-a", "web-b"):
        errors = log_lines(tmp_path / f"{name}.log", "ERROR")
        assert len(errors) <= 2, errors  # a lost connection is said once (per connection kind), not per retry
        assert "Traceback" not in (tmp_path / f"{name}.log").read_text()
    store.close()


def test_a_killed_pollers_feeds_go_to_the_other_after_its_lease(pg_url: str, tmp_path: Path) -> None:
    store = open_store(pg_url)
    with FeedHosts(HOSTS[:1]) as hosts:
        hosts.latency = 6.0  # poller a is mid-fetch when it dies
        urls = serve_feeds(hosts, store, 6, host_of=0)
        node = 'lease = "3s"'
        a = start_node(write_config(tmp_path / "a.toml", pg_url, "poller-a", node=node), tmp_path / "a.log", "poller")
        with running(a):
            until(lambda: hosts.stats["127.0.0.1"].in_flight >= 1, 60, "poller a fetching")
            a.send_signal(signal.SIGKILL)
            a.wait(timeout=10)
        killed_at = time.time()
        with store.engine.connect() as conn:
            leases = conn.execute(sa.text("SELECT lease_owner, EXTRACT(EPOCH FROM lease_until) FROM feeds")).all()
        assert {owner for owner, _ in leases} == {"poller-a"}  # a held every feed
        expiry = min(float(until_epoch) for _, until_epoch in leases)
        assert expiry > killed_at - 1.5  # renewed while a lived
        hosts.latency = 0.05
        before = hosts.requests()
        b = start_node(write_config(tmp_path / "b.toml", pg_url, "poller-b", node=node), tmp_path / "b.log", "poller")
        with running(b):
            until(lambda: store.count_entries() == 30, 60, "b stores every feed")
            time.sleep(1.0)  # anything duplicated would show now
        after = hosts.requests()
        b_starts = sorted(hosts.stats["127.0.0.1"].starts)[sum(before.values()) :]
    assert b_starts and min(b_starts) >= expiry - 0.5  # b waited for a's leases to end
    assert {url: after[url] - before[url] for url in urls} == dict.fromkeys(urls, 1)  # b checked each once
    feeds = store.list_feeds()
    assert all(f.last_status == 200 and f.last_error is None for f in feeds)
    with store.engine.connect() as conn:
        per_entry = conn.execute(sa.text("SELECT entry_id, count(*) FROM changes GROUP BY entry_id")).all()
        owners = conn.execute(sa.text("SELECT count(*) FROM feeds WHERE lease_token IS NOT NULL")).scalar()
    assert len(per_entry) == 30 and {count for _, count in per_entry} == {1}  # nothing lost, nothing twice
    assert owners == 0
    store.close()


def test_a_killed_follower_restarts_into_an_index_equal_to_the_store(pg_url: str, tmp_path: Path) -> None:
    store = open_store(pg_url)
    feed = store.add_feed("https://wire.example/feed")
    port = free_port()
    config = write_config(tmp_path / "web.toml", pg_url, "web", port=port, node="follow_batch = 50")
    web = start_node(config, tmp_path / "web.log", "serve", "--follow")
    with running(web):
        until(lambda: (s := replica_status(port)) and s["ok"], 60, "the follower ready")
        for start in range(0, 1500, 50):  # thirty transactions of fifty entries
            entries = [
                make_entry(feed.key, n, fingerprint=(n * 2654435761) % 2**62 + 1) for n in range(start, start + 50)
            ]
            store.save_entries(feed.id, entries)
        status = until(
            lambda: (s := replica_status(port)) and 0 < s["applied"] < 1500 and s, 60, "the follower mid-way"
        )
        web.send_signal(signal.SIGKILL)
        web.wait(timeout=10)
    assert status["lag_changes"] > 0
    web = start_node(config, tmp_path / "web.log", "serve", "--follow")
    with running(web):
        until(lambda: (s := replica_status(port)) and s["ok"] and s["lag_changes"] == 0, 90, "the follower caught up")
        ids = index_ids(tmp_path / "replica-web")
    assert len(ids) == len(set(ids)) == store.count_entries() == 1500
    assert set(ids) == {e.id for e in store.iter_entries()}
    # The same groups as a replica that never crashed.
    reference = Follower(tmp_path / "reference", ChangeLog(store))
    reference.catch_up()
    path, ref = (
        IndexLocation(tmp_path / "replica-web").current_dir(),
        IndexLocation(tmp_path / "reference").current_dir(),
    )
    assert path is not None and ref is not None
    with whoosh_index.open_dir(str(path)).searcher() as s1, whoosh_index.open_dir(str(ref)).searcher() as s2:
        assert {f["id"]: f["dupgroup"] for f in s1.all_stored_fields()} == {
            f["id"]: f["dupgroup"] for f in s2.all_stored_fields()
        }
    store.close()
