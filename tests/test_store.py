"""The store against a real database: SQLite always, PostgreSQL when NEWSDESK_TEST_DATABASE_URL is set."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.errors import StorageError
from aggregator.models import Entry, FeedUpdate, Image, Source
from aggregator.store import SCHEMA_VERSION, Store, open_store

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def make_entry(feed_key: str, n: int, **changes: object) -> Entry:
    entry = Entry(
        id=f"{feed_key}-{n}",
        feed_key=feed_key,
        identity=f"guid-{n}",
        url=f"https://news.example/{n}",
        title=f"Story number {n}",
        authors=("Ann Author",),
        published_at=T0 + timedelta(hours=n),
        updated_at=None,
        summary="A summary.",
        content_html="<p>Body</p>",
        text="Body",
        image=Image("https://news.example/i.jpg", "A caption"),
        tags=("World", "Politics"),
        language="en",
        word_count=1,
        fingerprint=-(2**63) + n,
        source=Source(feed_url="ignored", title="ignored", site_url=None),
    )
    return dataclasses.replace(entry, **changes)


def test_schema_is_versioned(any_store: Store) -> None:
    assert any_store.schema_version() == SCHEMA_VERSION
    any_store.migrate()  # idempotent
    assert any_store.schema_version() == SCHEMA_VERSION


def test_feed_round_trip_and_due(any_store: Store) -> None:
    feed = any_store.add_feed("https://news.example/feed.xml", title="Example News", tags=("world",))
    assert feed.title == "Example News" and feed.tags == ("world",) and feed.enabled
    assert feed.next_check_at is not None and feed.next_check_at.tzinfo is not None
    assert [f.id for f in any_store.due_feeds(datetime.now(UTC) + timedelta(seconds=1))] == [feed.id]
    later = datetime.now(UTC) + timedelta(hours=1)
    any_store.apply_feed_update(
        feed.id,
        FeedUpdate(
            checked_at=T0,
            status=200,
            error=None,
            success=True,
            next_check_at=later,
            consecutive_failures=0,
            etag='"v1"',
            last_modified="Fri, 01 Mar 2024 12:00:00 GMT",
        ),
    )
    assert any_store.due_feeds(datetime.now(UTC)) == []
    stored = any_store.get_feed(feed.id)
    assert stored is not None
    assert stored.etag == '"v1"' and stored.last_status == 200 and stored.last_checked_at == T0
    assert stored.next_check_at is not None and abs(stored.next_check_at - later) < timedelta(seconds=1)
    # Adding the same URL again updates options instead of duplicating.
    again = any_store.add_feed("https://news.example/feed.xml", title="Renamed")
    assert again.id == feed.id and again.title == "Renamed" and len(any_store.list_feeds()) == 1


def test_save_entries_new_updated_unchanged_and_change_log(any_store: Store) -> None:
    feed = any_store.add_feed("https://news.example/feed.xml")
    entries = [make_entry(feed.key, n) for n in range(3)]
    assert any_store.save_entries(feed.id, entries, seen_at=T0) == (3, 0)
    assert any_store.last_seq() == 3
    # Seen again unchanged: nothing written, nothing to re-index.
    assert any_store.save_entries(feed.id, entries, seen_at=T0) == (0, 0)
    assert any_store.last_seq() == 3
    # One changed: updated in place, logged once.
    changed = dataclasses.replace(entries[1], title="Story number 1, updated")
    assert any_store.save_entries(feed.id, [changed, entries[0]], seen_at=T0) == (0, 1)
    changes = any_store.changes_since(3)
    assert [c.entry_id for c in changes] == [entries[1].id]
    assert changes[0].entry is not None and changes[0].entry.title == "Story number 1, updated"
    assert any_store.count_entries() == 3
    stored = any_store.get_entry(entries[2].id)
    assert stored is not None
    assert stored.published_at == entries[2].published_at and stored.published_at.tzinfo is not None
    assert stored.image == Image("https://news.example/i.jpg", "A caption")
    assert stored.tags == ("World", "Politics") and stored.fingerprint == entries[2].fingerprint
    assert stored.source.title == "news.example"
    assert any_store.get_feed(feed.id).entry_count == 3  # type: ignore[union-attr]


def test_missing_date_keeps_first_sighting(any_store: Store) -> None:
    feed = any_store.add_feed("https://news.example/feed.xml")
    first = make_entry(feed.key, 1, published_at=T0, flags=("date_missing",))
    any_store.save_entries(feed.id, [first], seen_at=T0)
    later = dataclasses.replace(first, published_at=T0 + timedelta(days=1), title="Changed")
    any_store.save_entries(feed.id, [later], seen_at=T0 + timedelta(days=1))
    stored = any_store.get_entry(first.id)
    assert stored is not None and stored.title == "Changed" and stored.published_at == T0


def test_remove_feed_logs_deletions(any_store: Store) -> None:
    feed = any_store.add_feed("https://news.example/feed.xml")
    any_store.save_entries(feed.id, [make_entry(feed.key, n) for n in range(2)], seen_at=T0)
    assert any_store.remove_feed(feed.id) == 2
    deletions = any_store.changes_since(2)
    assert len(deletions) == 2 and all(c.entry is None for c in deletions)
    assert any_store.list_feeds() == [] and any_store.count_entries() == 0


def test_iter_and_lookup(any_store: Store) -> None:
    feed = any_store.add_feed("https://news.example/feed.xml")
    entries = [make_entry(feed.key, n) for n in range(5)]
    any_store.save_entries(feed.id, entries, seen_at=T0)
    assert sorted(e.id for e in any_store.iter_entries(batch=2)) == sorted(e.id for e in entries)
    found = any_store.find_entry_by_url("https://news.example/3")
    assert found is not None and found.id == entries[3].id
    assert any_store.find_entry_by_url("https://news.example/none") is None


def test_naive_datetimes_are_refused(any_store: Store) -> None:
    feed = any_store.add_feed("https://news.example/feed.xml")
    naive = make_entry(feed.key, 1, published_at=datetime(2024, 1, 1))
    with pytest.raises(StorageError, match="naive datetime"):
        any_store.save_entries(feed.id, [naive])
    assert any_store.count_entries() == 0


def test_newer_schema_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'x.db'}"
    store = open_store(url)
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE meta SET value = '999' WHERE key = 'schema_version'"))
    with pytest.raises(StorageError, match="newer than this Newsdesk knows"):
        Store(url).migrate()
    store.close()


def test_sqlite_uses_wal(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    store = open_store(f"sqlite:///{tmp_path / 'w.db'}")
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
    store.close()


def test_a_transaction_commits_its_writes_together_or_not_at_all(any_store: Store) -> None:
    feed = any_store.add_feed("https://news.example/feed.xml")
    update = FeedUpdate(
        checked_at=T0,
        status=200,
        error=None,
        success=True,
        next_check_at=T0 + timedelta(hours=1),
        consecutive_failures=0,
    )
    with pytest.raises(RuntimeError, match="mid-check"):
        with any_store.transaction():
            assert any_store.save_entries(feed.id, [make_entry(feed.key, 1)], seen_at=T0) == (1, 0)
            any_store.apply_feed_update(feed.id, update)
            # Reads inside the transaction see its own writes.
            assert any_store.stored_identities(feed.id) == {"https://news.example/1": "guid-1"}
            raise RuntimeError("mid-check failure")
    # Nothing of the failed check landed: no entry, no change-log row, no check recorded.
    assert any_store.count_entries() == 0 and any_store.last_seq() == 0
    assert any_store.get_feed(feed.id).last_checked_at is None  # type: ignore[union-attr]

    with any_store.transaction():
        any_store.save_entries(feed.id, [make_entry(feed.key, 1)], seen_at=T0)
        any_store.apply_feed_update(feed.id, update)
    # (PostgreSQL's sequence does not roll back, so the sequence number may skip one.)
    assert any_store.count_entries() == 1 and len(any_store.changes_since(0)) == 1
    assert any_store.get_feed(feed.id).last_checked_at == T0  # type: ignore[union-attr]


def test_feeds_listed_without_counting_their_entries(any_store: Store) -> None:
    busy = any_store.add_feed("https://news.example/busy.xml", title="Busy", tags=("world", "politics"))
    quiet = any_store.add_feed("https://news.example/quiet.xml", tags=("science",))
    any_store.set_feed_enabled(quiet.id, False, "paused")
    any_store.save_entries(busy.id, [make_entry(busy.key, n) for n in range(3)], seen_at=T0)
    counted = any_store.list_feeds()
    assert [f.entry_count for f in counted] == [3, 0]
    # The same feeds and settings, entry_count left at 0 (the front page needs only tags and titles).
    uncounted = any_store.list_feeds(counts=False)
    assert uncounted == [dataclasses.replace(f, entry_count=0) for f in counted]
    assert [f.id for f in any_store.list_feeds(enabled_only=True, counts=False)] == [busy.id]


def test_entry_leads_cut_the_summary_else_the_text_in_characters(any_store: Store) -> None:
    feed = any_store.add_feed("https://news.example/feed.xml")
    long_text = "Ærø — naïve café. " * 60  # non-ASCII: the cut counts characters, not bytes
    entries = [
        make_entry(feed.key, 0),
        make_entry(feed.key, 1, summary="", text=long_text),
        make_entry(feed.key, 2, summary=long_text[3:], text="Body"),
        make_entry(feed.key, 3, summary="", text=""),
    ]
    any_store.save_entries(feed.id, entries, seen_at=T0)
    leads = any_store.entry_leads([e.id for e in entries] + ["missing"], 100)
    assert leads == {e.id: (e.title, (e.summary or e.text)[:100]) for e in entries}
    assert len(leads[entries[1].id][1]) == 100
