"""Crash safety with real processes: SIGKILL in the middle of polling and indexing, damaged indexes, and concurrency.

`newsdesk run` is killed outright at random points (seeded) many times while it polls a local
farm of feeds and indexes what it stored. After each kill every entry the store had committed is
still there; after a last restart catches up, every entry is in the store and the index exactly
once, no feed is left stuck, and the index opens and agrees with the store.
"""

from __future__ import annotations

import gc
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from aggregator.store import open_store
from index.indexer import STATE_FILE, Indexer, IndexLocation
from index.search.engine import IndexReader

from .support.cli import newsdesk
from .support.httpserver import FeedServer
from .support.procs import (
    NEWSDESK,
    TRACEBACK,
    Newsdesk,
    env,
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
#: A rebuild after a kill is corruption (building an index that did not exist yet says "building").
DAMAGE = re.compile(r"search index .*: (.*); rebuilding it from the store")


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
        with warnings.catch_warnings():
            # Whoosh leaves a file it failed to read open; it is closed when collected, right here.
            warnings.simplefilter("ignore", ResourceWarning)
            try:
                return Indexer(root, store).check(deep=deep)
            finally:
                gc.collect()
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
        assert process.wait_for_log("Newsdesk on", timeout=60), process.log()
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


# ---------------------------------------------------------------------- a damaged or deleted index


def live_generation(root: Path) -> Path:
    path = IndexLocation(root).current_dir()
    assert path is not None
    return path


def delete_the_index(root: Path) -> None:
    shutil.rmtree(root)


def truncate_a_segment(root: Path) -> None:
    segment = next(live_generation(root).glob("*.seg"))
    data = segment.read_bytes()
    segment.write_bytes(data[: len(data) // 2])


def garble_the_toc(root: Path) -> None:
    toc = next(live_generation(root).glob("_MAIN_*.toc"))
    toc.write_bytes(bytes(b ^ 0x5A for b in toc.read_bytes()))


def point_current_nowhere(root: Path) -> None:
    (root / "CURRENT").write_text("gen-0\n")


def garble_the_state(root: Path) -> None:
    (live_generation(root) / STATE_FILE).write_text('{"seq": ')


def lose_a_document(root: Path) -> None:
    from whoosh import index as whoosh_index

    ix = whoosh_index.open_dir(str(live_generation(root)))
    with ix.reader() as reader:
        victim = next(iter(reader.all_stored_fields()))["id"]
    writer = ix.writer()
    writer.delete_by_term("id", victim)
    writer.commit()


def index_an_entry_twice(root: Path) -> None:
    from whoosh import index as whoosh_index

    ix = whoosh_index.open_dir(str(live_generation(root)))
    with ix.reader() as reader:
        fields = next(iter(reader.all_stored_fields()))
    writer = ix.writer()
    writer.add_document(**{k: v for k, v in fields.items() if k in ix.schema.names()})
    writer.commit()


DAMAGES = {
    delete_the_index: "there is no index yet while the store holds changes",
    truncate_a_segment: "it cannot be read",
    garble_the_toc: "it cannot be read",
    point_current_nowhere: "CURRENT names gen-0, which does not exist",
    garble_the_state: "its state file cannot be read",
    lose_a_document: "it holds 35 documents for the store's 36 entries",
    index_an_entry_twice: "is indexed twice",
}


@pytest.fixture
def polled(tmp_path: Path, feed_server: FeedServer) -> Path:
    """Return a config whose store and index hold 36 entries of 3 feeds (polled by the real CLI)."""
    config = write_config(tmp_path, serve_feeds(feed_server, 3, 12))
    newsdesk(config, "poll")
    return config


@pytest.mark.slow
def test_a_damaged_or_deleted_index_is_rebuilt_by_the_next_writer_with_a_log_line(polled: Path) -> None:
    db = polled.parent / "data" / "newsdesk.db"
    root = polled.parent / "data" / "index"
    entries = stored_ids(db)
    assert len(entries) == 36 and sorted(index_ids(root)) == sorted(entries)
    for damage, reason in DAMAGES.items():
        damage(root)
        assert index_check(db, root, deep=True) is not None, damage.__name__
        result = newsdesk(polled, "index")
        # A damaged index is a warning; a deleted one is built again as a new install's is, without one.
        deleted = damage is delete_the_index
        verb, done = ("building", "built") if deleted else ("rebuilding", "rebuilt")
        assert reason in result.stderr and f"; {verb} it from the store" in result.stderr, result.stderr
        assert f"search index {done} from the store: 36 entries" in result.stderr, result.stderr
        assert ("WARNING" in result.stderr) is not deleted, result.stderr
        assert not TRACEBACK.search(result.stderr), result.stderr
        ids = index_ids(root)
        assert sorted(ids) == sorted(entries), damage.__name__
        assert index_check(db, root, deep=True) is None
    # A sound index is left as it is: no rebuild, no warning.
    result = newsdesk(polled, "index")
    assert "rebuild" not in result.stderr and "WARNING" not in result.stderr, result.stderr


@pytest.mark.slow
def test_run_rebuilds_a_damaged_index_at_start_and_serves_it(polled: Path) -> None:
    root = polled.parent / "data" / "index"
    truncate_a_segment(root)
    port = int(polled.read_text().split("port = ")[1].split()[0])
    process = Newsdesk(polled, "run", "--tick", "1")
    try:
        assert process.wait_for_log("Newsdesk on", timeout=90), process.log()
        answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/search", params={"q": "polling", "collapse": "0"})
        assert answer.status_code == 200 and answer.json()["total"] == 36
        process.signal_group(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        process.kill_group()
    log = process.log()
    assert "it cannot be read" in log and "search index rebuilt from the store: 36 entries" in log, log
    assert not TRACEBACK.search(log), log


@pytest.mark.slow
def test_readers_report_a_damaged_index_and_pick_up_the_rebuilt_one(polled: Path) -> None:
    root = polled.parent / "data" / "index"
    garble_the_toc(root)
    damaged = {p.name: p.read_bytes() for p in live_generation(root).iterdir()}
    # `search` reads only: one clear line, no traceback, the index untouched.
    result = newsdesk(polled, "search", "polling", check=False)
    assert result.returncode == 1
    assert "search index" in result.stderr and "`newsdesk index` rebuilds it" in result.stderr, result.stderr
    assert "newsdesk: error: the search index" in result.stderr and not TRACEBACK.search(result.stderr)
    port = int(polled.read_text().split("port = ")[1].split()[0])
    process = Newsdesk(polled, "serve")
    try:
        assert process.wait_for_log("Newsdesk on", timeout=90), process.log()
        search = f"http://127.0.0.1:{port}/api/v1/search"
        answer = httpx.get(search, params={"q": "polling", "collapse": "0"})
        assert answer.status_code == 503 and "rebuilt" in answer.json()["message"]
        assert answer.headers["retry-after"] == "30"
        assert {p.name: p.read_bytes() for p in live_generation(root).iterdir()} == damaged  # serve never writes
        # The writer rebuilds; the running server opens the new generation on its next search.
        newsdesk(polled, "index")
        answer = httpx.get(search, params={"q": "polling", "collapse": "0"})
        assert answer.status_code == 200 and answer.json()["total"] == 36
        process.signal_group(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        process.kill_group()
    log = process.log()
    assert "it cannot be read" in log and "`serve` never writes the index" in log, log
    assert not TRACEBACK.search(log), log


# ---------------------------------------------------------------------- everything at once


def port_of(config: Path) -> int:
    return int(config.read_text().split("port = ")[1].split()[0])


@pytest.mark.slow
def test_run_feeds_add_reindex_search_and_two_servers_at_once(tmp_path: Path, feed_server: FeedServer) -> None:
    urls = serve_feeds(feed_server, 30, 15, delay=0.01)
    config = write_config(tmp_path, urls[:24])
    readers = [write_config(tmp_path, [], name=f"serve-{n}.toml") for n in range(2)]
    run = Newsdesk(config, "run", "--tick", "1", log_name="run.log")
    servers = [Newsdesk(path, "serve", log_name=f"{path.stem}.log") for path in readers]
    statuses: list[int] = []
    stop = threading.Event()

    def read_while_writing(port: int) -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                for path in ("/api/v1/search?q=polling", "/?q=story", "/api/v1/search?q=story&sort=newest"):
                    statuses.append(client.get(f"http://127.0.0.1:{port}{path}").status_code)

    threads = [threading.Thread(target=read_while_writing, args=(port_of(path),)) for path in readers]
    commands: list[tuple[str, int, str]] = []
    try:
        for process in (run, *servers):
            assert process.wait_for_log("Newsdesk on", timeout=120), process.log()
        db = tmp_path / "data" / "newsdesk.db"
        root = tmp_path / "data" / "index"
        # Reading starts once the index holds documents (an empty index is another issue's finding).
        assert wait_until(lambda: indexed_seq(root) > 0, timeout=120), run.log()
        for thread in threads:
            thread.start()
        # Everything an operator might do while `run` polls and indexes, all at once.
        batch = [("feeds add", cli(config, "feeds", "add", url)) for url in urls[24:]]
        batch += [("reindex", cli(config, "reindex")), ("index", cli(config, "index"))]
        batch += [("search", cli(config, "search", "polling")) for _ in range(2)]
        for name, command in batch:
            out, err = command.communicate(timeout=180)
            commands.append((name, command.returncode, out + err))
        # Let `run` poll the added feeds and index them.
        assert wait_until(
            lambda: (
                len(stored_ids(db)) == 30 * 15
                and indexed_seq(root) == int(store_query(db, "SELECT max(seq) FROM changes")[0][0] or 0)
            ),
            timeout=120,
            interval=0.5,
        ), run.log()
    finally:
        stop.set()
        for thread in threads:
            if thread.ident is not None:
                thread.join(timeout=60)
        codes = [process.stop(signal.SIGTERM, timeout=30) for process in (run, *servers)]
    for name, code, output in commands:
        assert code == 0, f"{name}: {output}"
        assert not TRACEBACK.search(output) and "being written by" not in output, f"{name}: {output}"
    for process in (run, *servers):
        assert not TRACEBACK.search(process.log()), process.log()
    assert codes == [0, 0, 0]
    assert statuses and set(statuses) == {200}, sorted(set(statuses))
    assert sorted(index_ids(root)) == sorted(stored_ids(db)) and index_check(db, root, deep=True) is None
    print(f"{len(statuses)} reads during {len(commands)} commands")


OPEN_AT_THE_SIGNAL = """
import os, sys
from aggregator.store import open_store
print("ready", flush=True)
while not os.path.exists(sys.argv[2]):
    pass
open_store(sys.argv[1]).close()
"""


def test_processes_starting_together_create_the_schema_once(tmp_path: Path) -> None:
    # `run` and two `serve` started together on a fresh data directory each create the schema. Turning a
    # new file to WAL takes an exclusive lock, which SQLite may refuse at once ("database is locked")
    # rather than wait for: about one start in eight failed so before that wait was ours. Four starts.
    repo = Path(__file__).resolve().parents[1]
    for start in range(4):
        go = tmp_path / f"go-{start}"
        database = tmp_path / f"fresh-{start}.db"
        starters = [
            subprocess.Popen(
                [sys.executable, "-c", OPEN_AT_THE_SIGNAL, f"sqlite:///{database}", str(go)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**env(), "PYTHONPATH": str(repo)},
            )
            for _ in range(8)
        ]
        for starter in starters:  # every process imported and waiting
            assert starter.stdout is not None and starter.stdout.readline() == "ready\n"
        go.touch()
        errors = [p.communicate(timeout=120)[1] for p in starters]
        assert [p.returncode for p in starters] == [0] * 8, errors
        assert store_query(database, "SELECT value FROM meta WHERE key = 'schema_version'")
        assert store_query(database, "PRAGMA journal_mode") == [("wal",)]


def cli(config: Path, *args: str) -> subprocess.Popen[str]:
    """Start a `newsdesk` command in the background, its output kept."""
    return subprocess.Popen(
        [NEWSDESK, "--config", str(config), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env()
    )


# ---------------------------------------------------------------------- the index's writer lock


def test_a_second_writer_waits_for_the_lock_then_writes(tmp_path: Path) -> None:
    from index.writelock import WriterLock

    from .test_index_indexer import filled_store

    store = filled_store(tmp_path, 20)
    root = tmp_path / "index"
    holder = WriterLock(root)
    holder.acquire()
    release = threading.Timer(0.5, holder.release)
    release.start()
    waited = time.monotonic()
    stats = Indexer(root, store, lock_wait=30).catch_up()
    assert time.monotonic() - waited >= 0.4 and stats.upserts == 20
    store.close()


def test_a_writer_that_cannot_get_the_lock_says_who_holds_it(tmp_path: Path) -> None:
    from aggregator.errors import IndexBusyError
    from index.writelock import WriterLock

    from .test_index_indexer import filled_store

    store = filled_store(tmp_path, 5)
    root = tmp_path / "index"
    with WriterLock(root):
        with pytest.raises(IndexBusyError, match=rf"being written by process {os.getpid()} \(.*\) \(waited 0 s\)"):
            Indexer(root, store, lock_wait=0.2).catch_up()
        stopping = threading.Event()
        stopping.set()
        started = time.monotonic()
        with pytest.raises(IndexBusyError):  # a stopping process does not wait at all
            Indexer(root, store, stop=stopping).catch_up()
        assert time.monotonic() - started < 1.0
    assert Indexer(root, store).catch_up().upserts == 5  # released on leaving the block
    store.close()
