"""Crash safety with real processes: SIGKILL in the middle of polling and indexing, damaged indexes, and concurrency.

`newsdesk run` is killed outright at random points (seeded) many times while it polls a local
farm of feeds and indexes what it stored. After each kill every entry the store had committed is
still there; after a last restart catches up, every entry is in the store and the index exactly
once, no feed is left stuck, and the index opens and agrees with the store.
"""

from __future__ import annotations

import json
import random
import re
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.store import open_store
from index.indexer import STATE_FILE, Indexer, IndexLocation
from index.search import IndexReader

from .support.httpserver import FeedServer
from .support.procs import (
    TRACEBACK,
    Newsdesk,
    free_port,
    group_members,
    serve_feeds,
    store_query,
    wait_until,
    write_config,
)

SEED = 20240501
#: Kills per run of the test. Each start brings new feeds (enough to be parsed by worker processes),
#: so every start has polling and indexing to be killed in.
KILLS = 8
FEEDS_PER_START = 25
ENTRIES = 12
#: A rebuild after a kill is fine when the index did not exist yet; any other reason is corruption.
DAMAGE = re.compile(r"search index .*: (?!it is missing while)(.*); rebuilding it from the store")


def stored_ids(db: Path) -> set[str]:
    return {str(row[0]) for row in store_query(db, "SELECT id FROM entries")}


def index_ids(root: Path) -> list[str]:
    reader = IndexReader(root)
    try:
        searcher = reader.searcher()
        return [] if searcher is None else [fields["id"] for fields in searcher.all_stored_fields()]
    finally:
        reader.close()


def indexed_seq(root: Path) -> int:
    path = IndexLocation(root).current_dir()
    try:
        return 0 if path is None else int(json.loads((path / STATE_FILE).read_text())["seq"])
    except FileNotFoundError:
        return 0


def index_check(db: Path, root: Path, *, deep: bool = False) -> str | None:
    """Return what the indexer's own check finds wrong with the index (None: sound)."""
    store = open_store(f"sqlite:///{db}")
    try:
        return Indexer(root, store).check(deep=deep)
    finally:
        store.close()


def kill_at_a_random_point(process: Newsdesk, rng: random.Random) -> str:
    """Wait for a random moment of start-up, polling or indexing, then SIGKILL the process; return which."""
    where = rng.choice(["start-up", "polling", "polling", "indexing"])
    if where == "start-up":  # imports, opening the store, checking and catching up the index
        time.sleep(rng.uniform(0.5, 3.0))
    elif where == "polling":
        process.wait_for_log(r"poll feed=", timeout=60, count=rng.randint(1, FEEDS_PER_START // 2))
        time.sleep(rng.uniform(0.0, 0.2))
    else:  # the catch-up after a poll, or the start's own
        process.wait_for_log(r"indexed seq=|tick checked", timeout=60)
        time.sleep(rng.uniform(0.0, 0.5))
    process.proc.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    return where


@pytest.mark.slow
def test_kill_9_at_random_points_loses_and_duplicates_nothing(tmp_path: Path, feed_server: FeedServer) -> None:
    rng = random.Random(SEED)
    urls = serve_feeds(feed_server, FEEDS_PER_START * KILLS, ENTRIES, delay=0.02)
    db = tmp_path / "data" / "newsdesk.db"
    root = tmp_path / "data" / "index"
    port = free_port()
    committed: set[str] = set()
    points: list[str] = []
    progress: list[str] = []
    started = time.monotonic()
    for kill in range(KILLS):
        config = write_config(tmp_path, urls[: FEEDS_PER_START * (kill + 1)], port=port)
        process = Newsdesk(config, "run", "--tick", "1", log_name=f"run-{kill}.log")
        try:
            points.append(kill_at_a_random_point(process, rng))
            # The parse workers, their fork server and resource tracker die with their parent.
            assert wait_until(process.group_gone, timeout=10), group_members(process.pid)
        finally:
            process.kill_group()
        log = process.log()
        assert not TRACEBACK.search(log), log
        assert not DAMAGE.search(log), log
        now = stored_ids(db)
        assert committed <= now, f"committed entries lost after kill {kill}: {sorted(committed - now)[:5]}"
        committed = now
        progress.append(
            f"{points[-1]}: {len(now)} stored, index at {indexed_seq(root)}, {time.monotonic() - started:.0f} s"
        )
    killing = time.monotonic() - started

    # A reindex killed while it builds leaves the live index alone; its half-built generation goes.
    reindex = Newsdesk(config, "reindex", log_name="reindex.log")
    try:
        assert wait_until(lambda: any(root.glob("building-*")), timeout=30), reindex.log()
        time.sleep(rng.uniform(0.0, 0.5))
    finally:
        reindex.kill_group()
    assert list(root.glob("building-*")), "the reindex was not killed while building"
    assert index_check(db, root) is None

    # The last start catches up: every feed checked once, every entry indexed.
    expected = len(urls) * ENTRIES
    process = Newsdesk(config, "run", "--tick", "1", log_name="run-final.log")
    try:
        assert process.wait_for_log("Serving on", timeout=60), process.log()
        caught_up = wait_until(
            lambda: (
                len(stored_ids(db)) == expected
                and indexed_seq(root) == int(store_query(db, "SELECT max(seq) FROM changes")[0][0] or 0)
            ),
            timeout=120,
            interval=0.5,
        )
        assert caught_up, process.log()
        process.signal_group(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        process.kill_group()
    log = process.log()
    assert not TRACEBACK.search(log) and not DAMAGE.search(log), log

    # Store: every entry once (the primary key says so), every feed checked, none stuck or failing.
    assert len(committed) <= expected == len(stored_ids(db))
    now = datetime.now(UTC)
    feeds = store_query(
        db, "SELECT url, last_status, last_error, consecutive_failures, next_check_at, last_checked_at FROM feeds"
    )
    assert len(feeds) == len(urls)
    for url, status, error, failures, next_check, checked in feeds:
        assert (status, error, failures) == (200, None, 0), url
        assert checked is not None
        due = datetime.fromisoformat(str(next_check)).replace(tzinfo=UTC)
        assert now < due < now + timedelta(days=1, hours=3), (url, due)  # max_interval 24h plus jitter

    # Index: opens, each entry once, the same set as the store, and its own check finds nothing wrong.
    ids = index_ids(root)
    assert len(ids) == len(set(ids)) == expected
    assert set(ids) == stored_ids(db)
    assert index_check(db, root, deep=True) is None
    assert not list(root.glob("building-*")) and len(list(root.glob("gen-*"))) == 1
    final = time.monotonic() - started - killing
    print(f"{KILLS} kills in {killing:.1f} s, then caught up in {final:.1f} s:", *progress, sep="\n  ")
