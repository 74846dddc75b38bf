"""Poll leases, shared per-host limits and the version 3 migration, against a real PostgreSQL (and SQLite)."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from aggregator.errors import ConfigError, StorageError
from aggregator.leases import LeasedRecorder, Leases
from aggregator.models import Feed, FetchResult
from aggregator.pipeline import FeedCheck, NormalizedFeed
from aggregator.policy import PollingPolicy
from aggregator.sharedhosts import SharedHostLimiter
from aggregator.store import SCHEMA_VERSION, Store, open_store

from .conftest import make_config
from .support.cli import newsdesk
from .support.pg import fresh_database
from .test_store import make_entry

pytestmark = pytest.mark.postgres


@pytest.fixture
def two_stores(pg_url: str) -> Iterator[tuple[Store, Store]]:
    """Yield two Stores on one database, as two poller processes would hold (separate engines and locks)."""
    a, b = open_store(pg_url), open_store(pg_url)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def add_feeds(store: Store, count: int) -> list[int]:
    return [store.add_feed(f"http://127.0.0.1:9/feed/{i}").id for i in range(count)]


def fetched_ok(url: str) -> FetchResult:
    return FetchResult(url=url, final_url=url, status=200, headers={}, body=b"<rss/>")


def check_with_one_entry(feed: Feed) -> FeedCheck:
    """Return a check of ``feed`` that fetched and read one entry, ready for the record stage."""
    return FeedCheck(
        feed=feed,
        checked_at=datetime.now(UTC),
        started=time.monotonic(),
        fetched=fetched_ok(feed.url),
        normalized=NormalizedFeed(entries=(make_entry(feed.key, 1),)),
    )


def test_concurrent_claims_never_overlap(two_stores: tuple[Store, Store]) -> None:
    a, b = two_stores
    ids = add_feeds(a, 60)
    claimed: dict[str, list[int]] = {"a": [], "b": []}
    leases = {"a": Leases(a, "a", 60), "b": Leases(b, "b", 60)}

    def drain(name: str) -> None:
        while (claim := leases[name].claim(7)) is not None:
            claimed[name].extend(f.id for f in claim.feeds)

    threads = [threading.Thread(target=drain, args=(name,)) for name in leases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(claimed["a"] + claimed["b"]) == ids  # every feed once, none twice
    assert claimed["a"] and claimed["b"]  # both got work
    owners = {f.id: f for f in a.list_feeds()}
    assert len(owners) == 60
    with a.engine.connect() as conn:
        rows = dict(conn.execute(sa.text("SELECT id, lease_owner FROM feeds")).all())
    assert {rows[i] for i in claimed["a"]} == {"a"} and {rows[i] for i in claimed["b"]} == {"b"}


def test_a_locked_row_is_skipped_not_waited_for(two_stores: tuple[Store, Store]) -> None:
    a, b = two_stores
    first, *rest = add_feeds(a, 3)
    with a.engine.connect() as conn:
        conn.execute(sa.text("SELECT id FROM feeds WHERE id = :id FOR UPDATE"), {"id": first})
        started = time.monotonic()
        claim = Leases(b, "b", 60).claim(10)
        assert time.monotonic() - started < 5
        assert claim is not None and sorted(f.id for f in claim.feeds) == rest
        conn.rollback()


def test_an_expired_lease_moves_on_and_the_old_holder_cannot_write(two_stores: tuple[Store, Store]) -> None:
    a, b = two_stores
    (feed_id,) = add_feeds(a, 1)
    first = Leases(a, "a", 1).claim(5)
    assert first is not None
    assert Leases(b, "b", 1).claim(5) is None  # held
    time.sleep(1.3)
    second = Leases(b, "b", 30).claim(5)
    assert second is not None and [f.id for f in second.feeds] == [feed_id]  # the lease was the visibility timeout
    feed = first.feeds[0]

    # The first poller finishes late: its check must not land.
    late = LeasedRecorder(Leases(a, "a", 1))
    late.adopt(first)
    result = late(check_with_one_entry(feed), a, PollingPolicy(), random.Random(1)).result
    assert result.error is not None and "another poller" in result.error
    assert a.count_entries() == 0 and a.get_feed(feed_id).last_checked_at is None  # type: ignore[union-attr]

    # The new owner's check lands and gives the lease back.
    owner = LeasedRecorder(Leases(b, "b", 30))
    owner.adopt(second)
    result = owner(check_with_one_entry(feed), b, PollingPolicy(), random.Random(1)).result
    assert result.error is None and result.new_entries == 1
    stored = b.get_feed(feed_id)
    assert stored is not None and stored.last_status == 200 and stored.next_check_at > datetime.now(UTC)  # type: ignore[operator]
    with b.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT lease_token FROM feeds")).scalar() is None


def test_renewal_keeps_a_lease_and_release_frees_it(two_stores: tuple[Store, Store]) -> None:
    a, b = two_stores
    add_feeds(a, 2)
    mine = Leases(a, "a", 1)
    claim = mine.claim(5)
    assert claim is not None
    for _ in range(3):
        time.sleep(0.5)
        assert mine.renew(claim.token) == 2
    assert Leases(b, "b", 1).claim(5) is None  # 1.5 s after the claim, still held
    assert mine.release(claim.token) == 2
    again = Leases(b, "b", 1).claim(5)
    assert again is not None and len(again.feeds) == 2


def test_leases_and_roles_refuse_sqlite(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    with pytest.raises(StorageError, match="PostgreSQL"):
        Leases(store, "a", 10)
    store.close()
    from web.cli.roles import require_postgres

    with pytest.raises(ConfigError, match=r"needs a PostgreSQL store.*newsdesk run"):
        require_postgres(make_config(tmp_path), "poller")

    # Through the real command: one line, exit status 1, nothing started.
    config = tmp_path / "config.toml"
    config.write_text('data_dir = "data"\n')
    for args in (["poller"], ["serve", "--follow"]):
        result = newsdesk(config, *args, check=False)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 1 and len(lines) == 1, result.stderr
        assert "needs a PostgreSQL store" in lines[0] and "newsdesk run" in lines[0]


# --------------------------------------------------------------------------- shared per-host limits


def test_host_slots_are_shared_between_pollers(two_stores: tuple[Store, Store]) -> None:
    a, b = two_stores
    one = SharedHostLimiter(a.engine, per_host=2, min_delay=0)
    two = SharedHostLimiter(b.engine, per_host=2, min_delay=0)
    try:
        assert one.try_acquire("news.example") == 0
        assert two.try_acquire("news.example") == 0
        # Both slots are taken, one by each poller: neither gets a third.
        assert two.try_acquire("news.example") > 0
        time.sleep(0.15)
        assert one.try_acquire("news.example") > 0
        assert one.try_acquire("other.example") == 0  # hosts are independent
        one.release("news.example")
        time.sleep(0.15)  # past the busy back-off
        assert two.try_acquire("news.example") == 0
        assert two.in_flight("news.example") == 2 and one.in_flight("news.example") == 0
    finally:
        one.close()
        two.close()


def test_host_delay_is_shared_between_pollers(two_stores: tuple[Store, Store]) -> None:
    a, b = two_stores
    one = SharedHostLimiter(a.engine, per_host=4, min_delay=0.6)
    two = SharedHostLimiter(b.engine, per_host=4, min_delay=0.6)
    try:
        assert one.try_acquire("news.example") == 0
        wait = two.try_acquire("news.example")
        assert 0.3 < wait <= 0.6  # the other poller's start counts
        assert two.in_flight("news.example") == 0  # the slot it took is given back while it waits
        time.sleep(wait + 0.05)
        assert two.try_acquire("news.example") == 0
        assert one.try_acquire("news.example") > 0.3
    finally:
        one.close()
        two.close()


def test_a_dropped_session_frees_its_slots_and_reconnects_logging_once(
    two_stores: tuple[Store, Store], caplog: pytest.LogCaptureFixture
) -> None:
    a, b = two_stores
    one = SharedHostLimiter(a.engine, per_host=1, min_delay=0)
    two = SharedHostLimiter(b.engine, per_host=1, min_delay=0)
    try:
        assert one.try_acquire("news.example") == 0
        assert two.try_acquire("news.example") > 0
        assert one._conn is not None
        pid = one._conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        with b.engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            conn.commit()
        time.sleep(0.2)
        assert two.try_acquire("news.example") == 0  # the dead session's slot is free
        with caplog.at_level(logging.INFO, logger="newsdesk.hosts"):
            one.release("news.example")  # fails on the dead connection: logged, forgotten
            assert one.try_acquire("news.example") > 0  # retried later, not granted
            time.sleep(1.1)
            assert one.try_acquire("news.example") > 0  # reconnected: the slot is the other poller's
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and "the database failed" in errors[0].getMessage()
        assert any("connected to the database again" in r.getMessage() for r in caplog.records)
        two.release("news.example")
        time.sleep(0.15)
        assert one.try_acquire("news.example") == 0
    finally:
        one.close()
        two.close()


# --------------------------------------------------------------------------- migration 2 -> 3


NEW_COLUMNS = {
    "feeds": ("lease_owner", "lease_token", "lease_until"),
    "changes": ("txid", "logged_at", "fingerprint", "published_at"),
}


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_version_2_database_is_upgraded(engine: str, tmp_path: Path) -> None:
    if engine == "sqlite":
        run_upgrade(f"sqlite:///{tmp_path / 'store.db'}")
    else:
        with fresh_database() as url:
            run_upgrade(url)


def run_upgrade(url: str) -> None:
    store = open_store(url)
    feed = store.add_feed("https://news.example/feed.xml")
    store.save_entries(feed.id, [make_entry(feed.key, n) for n in range(3)])
    with store.engine.begin() as conn:  # back to what version 2 had
        conn.execute(sa.text("DROP TABLE hosts"))
        if store.engine.dialect.name == "postgresql":
            conn.execute(sa.text("DROP INDEX ix_changes_txid_seq"))
        for table, columns in NEW_COLUMNS.items():
            for column in columns:
                conn.execute(sa.text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        conn.execute(sa.text("UPDATE meta SET value = '2' WHERE key = 'schema_version'"))
    store.close()
    upgraded = open_store(url)
    assert upgraded.schema_version() == SCHEMA_VERSION == 3
    inspector = sa.inspect(upgraded.engine)
    for table, columns in NEW_COLUMNS.items():
        assert set(columns) <= {c["name"] for c in inspector.get_columns(table)}
    assert inspector.has_table("hosts")
    assert upgraded.get_feed(feed.id) is not None and upgraded.count_entries() == 3
    if upgraded.engine.dialect.name == "postgresql":
        from aggregator.changelog import ChangeLog, LogPosition

        # Old rows are backfilled once, so every follower folds the same values.
        changes = ChangeLog(upgraded).committed_after(LogPosition())
        assert len(changes) == 3 and all(c.position.txid > 0 for c in changes)
        assert sorted(c.fingerprint for c in changes) == sorted(-(2**63) + n for n in range(3))
    upgraded.close()


# --------------------------------------------------------------------------- the [node] table


def test_node_config_resolves_the_index_dir_and_checks_its_numbers(tmp_path: Path) -> None:
    from aggregator.config import load_config

    path = tmp_path / "config.toml"
    path.write_text('[node]\nname = "web-1"\nindex_dir = "replica"\nlease = "90s"\nclaim_batch = 8\n')
    config = load_config(path)
    assert config.node.name == "web-1" and config.node.lease == 90 and config.node.claim_batch == 8
    assert config.index_dir == tmp_path / "replica"  # relative to the config file, like data_dir
    path.write_text("[node]\n")
    assert load_config(path).index_dir == tmp_path / "data" / "index"  # unset: the embedded default
    path.write_text('[node]\nlease = "0s"\n')
    with pytest.raises(ConfigError, match=r"node\.lease: must be at least 1 second"):
        load_config(path)
    path.write_text("[node]\nclaim_batch = 0\n")
    with pytest.raises(ConfigError, match=r"node\.claim_batch: must be at least 1"):
        load_config(path)
