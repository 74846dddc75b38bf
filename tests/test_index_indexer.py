"""The indexer: the only writer; resumes after a kill -9 at any point; rebuilds beside the live index."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aggregator.models import Entry, Source
from aggregator.store import Store, open_store
from index.indexer import Indexer
from index.search.engine import IndexReader, search

REPO = Path(__file__).resolve().parents[1]
START = datetime(2024, 5, 1, tzinfo=UTC)


def make_entry(n: int, word: str = "lantern") -> Entry:
    return Entry(
        id=f"e{n:05d}",
        feed_key="k",
        identity=f"i{n}",
        url=f"https://example.org/{n}",
        title=f"Story {n} about the {word}",
        authors=(),
        published_at=START + timedelta(minutes=n),
        updated_at=None,
        summary="",
        content_html="",
        text=f"Paragraph {n} mentions the {word} and the number {n}.",
        image=None,
        tags=("t",),
        language="en",
        word_count=8,
        fingerprint=(n * 0x9E3779B97F4A7C15) % (1 << 63),
        source=Source(feed_url="https://example.org/feed", title="Example", site_url="https://example.org/"),
    )


def filled_store(tmp_path: Path, count: int) -> Store:
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    feed = store.add_feed("https://example.org/feed")
    for start in range(0, count, 500):
        store.save_entries(feed.id, [make_entry(n) for n in range(start, min(count, start + 500))])
    return store


def indexed_ids(root: Path) -> list[str]:
    reader = IndexReader(root)
    searcher = reader.searcher()
    assert searcher is not None
    ids = [fields["id"] for fields in searcher.all_stored_fields()]
    reader.close()
    return ids


KILLABLE = """
import sys
from pathlib import Path
from aggregator.store import open_store
from index.indexer import Indexer
store = open_store(sys.argv[1])
print("ready", flush=True)
Indexer(Path(sys.argv[2]), store, batch_size=int(sys.argv[3])).catch_up()
print("done", flush=True)
"""


def test_resumes_after_kill_9_without_losing_or_duplicating(tmp_path: Path) -> None:
    count = 3000
    store = filled_store(tmp_path, count)
    root = tmp_path / "index"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for delay in (0.3, 0.8, 1.5, 2.5):
        proc = subprocess.Popen(
            [sys.executable, "-c", KILLABLE, store.url, str(root), "250"], env=env, stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    # Changes arriving between the kills must be picked up too.
    feed = store.list_feeds()[0]
    store.save_entries(feed.id, [make_entry(n, "beacon") for n in range(10)])  # updates
    store.save_entries(feed.id, [make_entry(n) for n in range(count, count + 5)])  # new ones
    stats = Indexer(root, store, batch_size=250).catch_up()
    assert stats.seq == store.last_seq()
    ids = indexed_ids(root)
    assert len(ids) == len(set(ids)) == count + 5
    beacon = search(IndexReader(root), store, "beacon", per_page=50, collapse=False)
    assert beacon.total == 10


def test_deletes_reach_the_index(tmp_path: Path) -> None:
    store = filled_store(tmp_path, 20)
    root = tmp_path / "index"
    Indexer(root, store).catch_up()
    store.remove_feed(store.list_feeds()[0].id)
    stats = Indexer(root, store).catch_up()
    assert stats.deletes == 20 and indexed_ids(root) == []


def test_rebuild_swaps_in_while_searches_keep_working(tmp_path: Path) -> None:
    store = filled_store(tmp_path, 1500)
    root = tmp_path / "index"
    indexer = Indexer(root, store, batch_size=300)
    indexer.catch_up()
    reader = IndexReader(root)
    before = reader.location.current_dir()
    failures: list[BaseException] = []
    totals: list[int] = []
    stop = threading.Event()

    def searching() -> None:
        while not stop.is_set():
            try:
                totals.append(search(reader, store, "lantern", per_page=5).total)
            except BaseException as exc:  # any failure during the swap is the bug we look for
                failures.append(exc)
                return

    thread = threading.Thread(target=searching)
    thread.start()
    try:
        stats = indexer.rebuild(store)
    finally:
        stop.set()
        thread.join()
    assert failures == []
    assert totals and set(totals) == {1500}
    assert stats.upserts == 1500 and reader.location.current_dir() != before
    assert len(list(root.glob("gen-*"))) == 1
    assert search(reader, store, "lantern").total == 1500


def test_optimize_when_segments_pile_up(tmp_path: Path) -> None:
    store = filled_store(tmp_path, 600)
    root = tmp_path / "index"
    indexer = Indexer(root, store, batch_size=50)
    indexer.catch_up()
    assert indexer.segment_count() > 1
    assert indexer.optimize_if_needed(max_segments=1) is True
    assert indexer.segment_count() == 1
    assert indexer.optimize_if_needed(max_segments=1) is False
    assert len(indexed_ids(root)) == 600


def test_an_index_of_an_older_schema_is_rebuilt(tmp_path: Path) -> None:
    import json

    store = filled_store(tmp_path, 30)
    root = tmp_path / "index"
    indexer = Indexer(root, store)
    indexer.catch_up()
    live = indexer.location.current_dir()
    assert live is not None
    state = live / "newsdesk-indexer.json"
    state.write_text(json.dumps({"seq": 0, "schema": 1}))
    stats = indexer.catch_up()
    assert stats.upserts == 30 and indexer.location.current_dir() != live
    assert len(indexed_ids(root)) == 30
