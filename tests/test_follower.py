"""Web followers on a real PostgreSQL and real Whoosh indexes: the commit-order trap, identical replicas, crash recovery."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from whoosh import index as whoosh_index

from aggregator.changelog import ChangeLog, LogPosition
from aggregator.errors import StorageError
from aggregator.models import Entry
from aggregator.store import Store
from index.follower import FOLLOWER_STATE, Follower, read_position
from index.indexer import IndexLocation

from .test_store import make_entry

pytestmark = pytest.mark.postgres

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def replica(root: Path) -> dict[str, str]:
    """Return id -> dupgroup of every live document in the replica at ``root``."""
    path = IndexLocation(root).current_dir()
    assert path is not None
    with whoosh_index.open_dir(str(path)).searcher() as searcher:
        return {fields["id"]: fields["dupgroup"] for fields in searcher.all_stored_fields()}


def store_ids(store: Store) -> set[str]:
    return {entry.id for entry in store.iter_entries()}


def until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Wait for ``condition``: another session anywhere in the cluster may hold the watermark back briefly."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


# --------------------------------------------------------------------------- the commit-order trap


def test_a_transaction_open_across_a_later_commit_is_not_skipped(stores: Callable[[], Store], tmp_path: Path) -> None:
    a, b, reader = stores(), stores(), stores()
    fa, fb = a.add_feed("https://a.example/feed"), b.add_feed("https://b.example/feed")
    early, late = make_entry(fa.key, 1), make_entry(fb.key, 2)
    follower = Follower(tmp_path / "replica", ChangeLog(reader), batch_size=10)
    follower.catch_up()

    with a.transaction():
        a.save_entries(fa.id, [early])  # takes the lower sequence number, commits last
        b.save_entries(fb.id, [late])  # commits first with the higher one
        # A follower reading "seq > cursor" sees only the later change and moves past the earlier one.
        naive = reader.changes_since(0)
        assert [c.entry_id for c in naive] == [late.id]
        naive_cursor = naive[-1].seq
        # Ours reads nothing yet: the open transaction is older than the committed one.
        follower.catch_up()
        assert replica(tmp_path / "replica") == {}
    assert reader.changes_since(naive_cursor) == []  # the trap: the early change is skipped forever
    until(lambda: follower.catch_up() is not None and len(replica(tmp_path / "replica")) == 2)
    assert set(replica(tmp_path / "replica")) == {early.id, late.id} == store_ids(reader)


def test_a_transaction_ordered_first_that_logs_last_is_not_skipped(stores: Callable[[], Store], tmp_path: Path) -> None:
    # Transaction ids and sequence numbers disagree: the transaction that started first logs its
    # change after the other one, commits first, and the other one stays open.
    a, b, reader = stores(), stores(), stores()
    fa, fb = a.add_feed("https://a.example/feed"), b.add_feed("https://b.example/feed")
    first, second = make_entry(fa.key, 1), make_entry(fb.key, 2)
    follower = Follower(tmp_path / "replica", ChangeLog(reader), batch_size=10)
    follower.catch_up()
    with ExitStack() as open_b:
        with a.transaction():
            a.set_feed_enabled(fa.id, True)  # a write: transaction a gets its id now
            open_b.enter_context(b.transaction())
            b.save_entries(fb.id, [second])  # lower sequence number, transaction id after a's
            a.save_entries(fa.id, [first])
        until(lambda: follower.catch_up() is not None and first.id in replica(tmp_path / "replica"))
        assert set(replica(tmp_path / "replica")) == {first.id}
        naive = reader.changes_since(0)
        assert [c.entry_id for c in naive] == [first.id]  # a seq cursor would now stand past the second
        assert reader.changes_since(naive[-1].seq) == []
    # b commits: its change sits below the seq cursor, above ours.
    until(lambda: follower.catch_up() is not None and len(replica(tmp_path / "replica")) == 2)
    assert set(replica(tmp_path / "replica")) == {first.id, second.id}
    assert follower.status(datetime.now(UTC))["lag_changes"] == 0


# --------------------------------------------------------------------------- identical replicas


def near(fingerprint: int, bit: int) -> int:
    """Return ``fingerprint`` with one bit flipped (a near-duplicate), as a signed 64-bit value."""
    value = (fingerprint & (2**64 - 1)) ^ (1 << bit)
    return value - 2**64 if value >= 2**63 else value


def story(feed_key: str, n: int, fingerprint: int, hours: float) -> Entry:
    return make_entry(feed_key, n, fingerprint=fingerprint, published_at=T0 + timedelta(hours=hours))


def test_replicas_derive_the_same_groups_whenever_they_read(stores: Callable[[], Store], tmp_path: Path) -> None:
    writer, reader = stores(), stores()
    feeds = [writer.add_feed(f"https://outlet{i}.example/feed") for i in range(3)]
    wire = 0x5A5A_1234_0F0F_7777
    steady = Follower(tmp_path / "steady", ChangeLog(reader), batch_size=3)
    crashing = Follower(tmp_path / "crashing", ChangeLog(reader), batch_size=3)
    steady.catch_up()

    # Three outlets run one wire story; the first copy is later edited into something else, so what the
    # store holds now would group the copies differently from the order they arrived in.
    writer.save_entries(feeds[0].id, [story(feeds[0].key, 1, wire, 0)])
    steady.catch_up()
    writer.save_entries(feeds[1].id, [story(feeds[1].key, 1, near(wire, 3), 1), story(feeds[1].key, 2, 77, 1)])
    writer.save_entries(feeds[2].id, [story(feeds[2].key, 1, near(wire, 9), 2)])
    steady.catch_up()
    crashing.catch_up()
    edited = dataclasses.replace(story(feeds[0].key, 1, 0x0123_4567_89AB_CDEF, 0), title="Edited into another story")
    writer.save_entries(feeds[0].id, [edited])
    writer.save_entries(feeds[2].id, [story(feeds[2].key, n, near(wire, 20 + n), 3) for n in range(2, 8)])
    steady.catch_up()
    writer.remove_feed(feeds[1].id)  # deletes, logged
    writer.save_entries(feeds[0].id, [story(feeds[0].key, 9, near(wire, 40), 4)])
    until(lambda: steady.catch_up() is not None and steady.status(datetime.now(UTC))["lag_changes"] == 0)

    # The crashing replica applied everything, but "crashed" before writing its cursor for the last
    # batches: a new process starts from the older cursor and replays them.
    until(lambda: crashing.catch_up() is not None and crashing.status(datetime.now(UTC))["lag_changes"] == 0)
    live = IndexLocation(tmp_path / "crashing").current_dir()
    assert live is not None
    logged = ChangeLog(reader).committed_after(LogPosition(), 1000)
    assert crashing.position == logged[-1].position
    rewound = logged[-8].position  # the last seven changes: more than two batches of three
    state = json.loads((live / FOLLOWER_STATE).read_text())
    (live / FOLLOWER_STATE).write_text(json.dumps({**state, "txid": rewound.txid, "seq": rewound.seq}))
    restarted = Follower(tmp_path / "crashing", ChangeLog(reader), batch_size=3)
    until(lambda: restarted.catch_up() is not None and restarted.status(datetime.now(UTC))["lag_changes"] == 0)

    late = Follower(tmp_path / "late", ChangeLog(reader), batch_size=4)  # a new node: replays the log
    late.catch_up()

    groups = replica(tmp_path / "steady")
    assert set(groups) == store_ids(reader) and len(groups) == 9
    assert replica(tmp_path / "crashing") == groups
    assert replica(tmp_path / "late") == groups
    # Not vacuous: the wire copies share a group, and the edited first copy keeps the group it had.
    wire_group = groups[story(feeds[2].key, 1, 0, 0).id]
    assert wire_group == edited.id
    assert sum(1 for g in groups.values() if g == wire_group) >= 7
    assert read_position(live) == restarted.position
    # The scheduled merge changes segments, not documents or groups.
    assert steady.maintain(max_segments=0)
    assert replica(tmp_path / "steady") == groups


def test_one_index_root_serves_one_follower(stores: Callable[[], Store], tmp_path: Path) -> None:
    reader = stores()
    first = Follower(tmp_path / "replica", ChangeLog(reader))
    first.lock()
    try:
        with pytest.raises(StorageError, match="another process follows into"):
            Follower(tmp_path / "replica", ChangeLog(reader)).lock()
    finally:
        first.close()
    again = Follower(tmp_path / "replica", ChangeLog(reader))
    again.lock()  # free again
    again.close()


def test_changelog_positions_order_by_transaction_then_sequence() -> None:
    assert LogPosition(5, 100) < LogPosition(6, 1) < LogPosition(6, 2)


def test_readiness_of_a_web_node_follows_its_replica_lag(stores: Callable[[], Store], tmp_path: Path) -> None:
    from index.search.engine import IndexReader
    from web.ops import readiness
    from web.services import Services

    from .conftest import make_config

    writer, reader = stores(), stores()
    config = make_config(tmp_path, node={"index_dir": str(tmp_path / "replica"), "max_replica_lag": 1})
    follower = Follower(config.index_dir, ChangeLog(reader))
    services = Services(config=config, store=reader, index_reader=IndexReader(config.index_dir), follower=follower)
    try:
        report = readiness(services, datetime.now(UTC))
        assert report["status"] == "error" and "being built" in report["checks"]["index"]["error"]
        follower.catch_up()
        report = readiness(services, datetime.now(UTC))
        assert report["status"] == "ok", report
        assert report["checks"]["replica"]["lag_changes"] == 0
        feed = writer.add_feed("https://a.example/feed")
        writer.save_entries(feed.id, [make_entry(feed.key, n) for n in range(3)])
        time.sleep(1.3)
        replica = readiness(services, datetime.now(UTC))["checks"]["replica"]
        assert not replica["ok"] and replica["lag_changes"] == 3 and replica["lag_seconds"] > 1
        assert "behind the store" in replica["error"]
        until(lambda: follower.catch_up() is not None and readiness(services, datetime.now(UTC))["status"] == "ok")
    finally:
        services.close()
