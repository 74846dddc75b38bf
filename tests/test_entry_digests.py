"""A changed feed re-normalizes only its new and edited items; the rest are known by digest."""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from aggregator.models import FeedContext, ParsedContent, ParsedEntry, ParsedMedia
from aggregator.normalize import normalize_feed
from aggregator.normalize.feed import item_values, normalize_changed
from aggregator.parse import parse_feed
from aggregator.poller import Poller
from aggregator.store import SCHEMA_VERSION, Store, open_store

from .conftest import make_config
from .support.httpserver import FeedServer, Reply

FETCHED = datetime(2024, 5, 8, 12, 0, tzinfo=UTC)


def rss(items: list[tuple[str, str, str | None]]) -> bytes:
    """Return an RSS document of (guid, body, pubDate or None) items."""
    parts = []
    for guid, body, date in items:
        when = f"<pubDate>{date}</pubDate>" if date else ""
        parts.append(
            f"<item><guid isPermaLink='false'>{guid}</guid><link>https://digest.example/{guid}</link>"
            f"<title>Story {guid}</title>{when}<description><![CDATA[<p>{body}</p>]]></description></item>"
        )
    return (
        "<?xml version='1.0'?><rss version='2.0'><channel><title>Digest Daily</title>"
        f"<link>https://digest.example/</link>{''.join(parts)}</channel></rss>"
    ).encode()


DATE = "Tue, 07 May 2024 08:30:00 +0000"
FIRST = rss([("a", "Alpha text.", DATE), ("b", "Beta text.", DATE), ("c", "Undated text.", None)])
# b edited, d new, a and c as before.
SECOND = rss(
    [
        ("d", "Delta text.", DATE),
        ("a", "Alpha text.", DATE),
        ("b", "Beta, corrected.", DATE),
        ("c", "Undated text.", None),
    ]
)


def context(feed_url: str = "https://digest.example/feed.xml") -> FeedContext:
    return FeedContext("digest", feed_url, "Digest Daily", "https://digest.example/", FETCHED)


def test_without_known_digests_the_records_are_normalize_feeds() -> None:
    parsed = parse_feed(FIRST)
    changed = normalize_changed(parsed, context(), {})
    assert changed.entries == normalize_feed(parsed, context())
    assert changed.known == []
    # The undated item's date is the fetch time: its record may not be reused, so it has no digest.
    digests = dict(zip((e.identity for e in changed.entries), changed.digests, strict=True))
    assert digests["a"] and digests["b"] and digests["a"] != digests["b"]
    assert digests["c"] is None


def test_known_items_are_skipped_and_reported_with_their_stored_id() -> None:
    first = normalize_changed(parse_feed(FIRST), context(), {})
    known = {d: e.id for e, d in zip(first.entries, first.digests, strict=True) if d}
    second = normalize_changed(parse_feed(SECOND), context(), known)
    assert [e.identity for e in second.entries] == ["d", "b", "c"]
    ids = {e.identity: e.id for e in first.entries}
    assert [entry_id for _digest, entry_id in second.known] == [ids["a"]]
    # What is normalized again is exactly what a full normalization gives for those items.
    full = {e.identity: e for e in normalize_feed(parse_feed(SECOND), context())}
    assert all(e == dataclasses.replace(full[e.identity]) for e in second.entries)


def full_item() -> ParsedEntry:
    return ParsedEntry(
        guid="g", link="l", original_link="o", title="t", title_type="text/plain",
        summary=ParsedContent("s", "text/html", "sb", "sl"),
        contents=(ParsedContent("c", "text/html", "cb", "cl"),),
        authors=("a",), published_raw="p", updated_raw="u", tags=("x",),
        media=(ParsedMedia("m", "image/png", "cap", 1, 2, "media:thumbnail"),),
        language="en", base="b",
    )  # fmt: skip


def changed(value: object) -> object:
    # A different value of the same kind, for every kind of field a parsed item has.
    if isinstance(value, str):
        return value + "!"
    if isinstance(value, int):
        return value + 1
    if isinstance(value, tuple):
        return (*value, value[0])
    raise AssertionError(value)


def test_item_values_see_every_field_of_an_item_and_its_parts() -> None:
    item = full_item()
    base = item_values(item)
    variants = [dataclasses.replace(item, **{f.name: changed(getattr(item, f.name))}) for f in dataclasses.fields(item)
                if f.name not in ("summary", "contents", "media")]  # fmt: skip
    for name, kind in (("summary", ParsedContent), ("contents", ParsedContent), ("media", ParsedMedia)):
        value = getattr(item, name)
        part = value[0] if isinstance(value, tuple) else value
        for f in dataclasses.fields(kind):
            edited = dataclasses.replace(part, **{f.name: changed(getattr(part, f.name))})
            variants.append(dataclasses.replace(item, **{name: (edited,) if isinstance(value, tuple) else edited}))
    assert len(variants) == len(dataclasses.fields(ParsedEntry)) - 3 + 4 + 4 + 6
    assert all(item_values(variant) != base for variant in variants)
    assert len({repr(item_values(variant)) for variant in variants}) == len(variants)

    def plain(value: object) -> bool:
        return (isinstance(value, tuple) and all(map(plain, value))) or isinstance(value, str | int | type(None))

    assert plain(base)


def test_digest_covers_the_context_an_item_is_read_in() -> None:
    parsed = parse_feed(FIRST)
    here = normalize_changed(parsed, context(), {}).digests
    moved = normalize_changed(parsed, context("https://elsewhere.example/feed.xml"), {}).digests
    assert here[0] and moved[0] and here[0] != moved[0]
    # A guid that becomes shared by two different items changes how the item is identified: a new digest.
    shared = parse_feed(FIRST.replace(b"<guid isPermaLink='false'>b<", b"<guid isPermaLink='false'>a<"))
    assert normalize_changed(shared, context(), {}).digests[0] != here[0]


def test_store_keeps_the_last_documents_digests(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    feed = store.add_feed("https://digest.example/feed.xml")
    first = normalize_changed(parse_feed(FIRST), context(), {})
    store.save_entries(feed.id, first.entries, digests={"d1": first.entries[0].id, "d2": first.entries[1].id})
    assert store.entry_digests(feed.id) == {"d1": first.entries[0].id, "d2": first.entries[1].id}
    # Replaced, not merged; and a digest whose entry is gone is not offered.
    store.save_entries(feed.id, [], digests={"d3": first.entries[2].id, "d4": "no-such-entry"})
    assert store.entry_digests(feed.id) == {"d3": first.entries[2].id}
    store.remove_feed(feed.id)
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM entry_digests")).scalar() == 0
    store.close()


def test_a_version_1_database_is_upgraded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    store = open_store(url)
    with store.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE entry_digests"))
        conn.execute(sa.text("UPDATE meta SET value = '1' WHERE key = 'schema_version'"))
    store.close()
    store = open_store(url)
    assert store.schema_version() == SCHEMA_VERSION >= 2  # upgraded past v2 (digests) to the current version
    feed = store.add_feed("https://digest.example/feed.xml")
    assert store.entry_digests(feed.id) == {}
    store.close()


@pytest.mark.parametrize("parse_processes", [0, 1], ids=["inline", "worker-process"])
def test_polls_store_the_same_records_while_reusing_known_items(
    tmp_path: Path, feed_server: FeedServer, parse_processes: int, caplog: pytest.LogCaptureFixture
) -> None:
    feed_server.route("/feed.xml", Reply(200, FIRST))
    config = make_config(tmp_path, polling={"per_host_delay": 0})
    store: Store = open_store(config.db_url)
    store.add_feed(feed_server.url("/feed.xml"))
    with Poller(store, config, parse_processes=parse_processes) as poller:
        (first,) = poller.poll(store.list_feeds())
        assert first.new_entries == 3
        before = {e.identity: e for e in store.iter_entries()}
        feed_server.route("/feed.xml", Reply(200, SECOND))
        with caplog.at_level(logging.INFO, logger="newsdesk.poll"):
            (second,) = poller.poll(store.list_feeds())
    # d is new, b was edited; a is known by digest; c (undated) is normalized again and unchanged.
    assert (second.new_entries, second.updated_entries) == (1, 1)
    assert any("reused=1" in r.getMessage() for r in caplog.records)
    after = {e.identity: e for e in store.iter_entries()}
    assert after["a"] == before["a"] and after["c"].published_at == before["c"].published_at
    assert after["b"].text == "Beta, corrected."
    # Every stored record is what normalizing the whole second document gives (dates of undated
    # items aside: they keep their first sighting).
    feed = store.list_feeds()[0]
    full = normalize_feed(
        parse_feed(SECOND), dataclasses.replace(context(feed.url), feed_key=feed.key, source_title=feed.title or "")
    )
    for entry in full:
        stored = after[entry.identity]
        assert (stored.title, stored.text, stored.url, stored.id) == (entry.title, entry.text, entry.url, entry.id)
    assert set(store.entry_digests(feed.id).values()) == {after["a"].id, after["b"].id, after["d"].id}
    store.close()
