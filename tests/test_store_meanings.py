"""Meanings the writer stores for related coverage (aggregator/store_meanings.py), on SQLite and PostgreSQL.

The vectors are the product's own (the wordllama wheel's files); the web reads are checked through the
app `newsdesk serve` runs, on a real poll of fixture feeds on 127.0.0.1 (tests/test_story_related.py's world).
"""

from __future__ import annotations

import dataclasses
import json
import zlib
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from flask import Flask

import web.related as related
from aggregator.models import Entry
from aggregator.store import Store, open_store
from aggregator.store_meanings import terms_key
from aggregator.stories import StoryAssigner, article_from_entry
from aggregator.stories.cluster import forget_term_weights
from aggregator.stories.features import term_weights
from aggregator.stories.meaning import meaning_key, meaning_text, pack, shared_embedder, unpack
from aggregator.tables_stories import entry_meanings_table
from web.services import Services

from .support.cli import newsdesk
from .support.story_articles import EXPLOSION, OTHERS
from .test_store_stories import assign, entry_of, store_articles
from .test_story_related import world  # noqa: F401 (the fixture)


def text_of(entry: Entry) -> str:
    """What related coverage reads an entry's meaning from."""
    return meaning_text(entry.title, entry.text or entry.summary)


def rows(store: Store) -> dict[str, bytes]:
    t = entry_meanings_table.c
    with store.engine.connect() as conn:
        return {row.entry_id: bytes(row.text_key) for row in conn.execute(sa.select(t.entry_id, t.text_key))}


def test_the_writer_stores_each_assigned_entrys_meaning(any_store: Store) -> None:
    store_articles(any_store, EXPLOSION + OTHERS)
    stories = assign(any_store)
    entries = [entry_of(a) for a in EXPLOSION + OTHERS]
    assert rows(any_store) == {e.id: meaning_key(text_of(e)) for e in entries}
    settings = StoryAssigner(stories).settings.features
    stored = stories.stored_features(
        {e.id: meaning_key(text_of(e)) for e in entries},
        {e.id: terms_key(article_from_entry(e), settings) for e in entries},
    )
    embedder = shared_embedder()
    assert embedder is not None and set(stored.meanings) == set(stored.terms) == {e.id for e in entries}
    for entry in entries:
        fresh = embedder.vector(text_of(entry))
        assert fresh is not None
        # Half precision: the cosine to the meaning worked out afresh is 1 to three decimals.
        assert float(stored.meanings[entry.id] @ fresh) > 0.999
        # Term weights read back exactly.
        assert stored.terms[entry.id] == term_weights(
            entry.title, entry.text or entry.summary, entry.language, settings
        )


def test_a_meaning_of_other_words_is_not_used_until_the_writer_redoes_it(any_store: Store) -> None:
    store_articles(any_store, EXPLOSION)
    stories = assign(any_store)
    first = EXPLOSION[0]
    entry = entry_of(first)
    changed = dataclasses.replace(first, paragraphs=("Firefighters said the blaze was out by noon.", *first.paragraphs))
    store_articles(any_store, (changed,))
    now = entry_of(changed)
    assert now.id == entry.id and text_of(now) != text_of(entry)
    settings = StoryAssigner(stories).settings.features
    meaning_keys = {now.id: meaning_key(text_of(now))}
    term_keys = {now.id: terms_key(article_from_entry(now), settings)}
    assert term_keys != {now.id: terms_key(article_from_entry(entry), settings)}
    # The stored row is of the old words: not taken for the new ones.
    assert stories.stored_features(meaning_keys, term_keys) == ({}, {})
    # Nor are term weights worked out under other settings.
    other = dataclasses.replace(settings, body_words=settings.body_words + 1)
    assign(any_store)
    found = stories.stored_features(meaning_keys, term_keys)
    fresh = shared_embedder().vector(text_of(now))  # type: ignore[union-attr]
    assert fresh is not None and float(found.meanings[now.id] @ fresh) > 0.999
    assert set(found.terms) == {now.id}
    assert stories.stored_features({}, {now.id: terms_key(article_from_entry(now), other)}).terms == {}


def test_deleted_entries_lose_their_meanings(any_store: Store) -> None:
    store_articles(any_store, EXPLOSION + OTHERS)
    assign(any_store)
    courier = EXPLOSION[2]
    feed = any_store.find_feed(f"https://{courier.outlet}.example/feed")
    assert feed is not None and any_store.remove_feed(feed.id)
    assign(any_store)
    left = {entry_of(a).id for a in EXPLOSION + OTHERS if a.outlet != courier.outlet}
    assert set(rows(any_store)) == left


def test_a_headline_alone_is_not_stored(any_store: Store) -> None:
    first = EXPLOSION[0]
    headline = dataclasses.replace(
        first, slug="blast-flash", title="Blast at Talvik harbour", paragraphs=("Developing.",)
    )
    store_articles(any_store, (first, headline))
    assign(any_store)
    assert set(rows(any_store)) == {entry_of(first).id}


def test_a_damaged_row_is_worked_out_afresh_not_served(any_store: Store) -> None:
    store_articles(any_store, EXPLOSION)
    stories = assign(any_store)
    settings = StoryAssigner(stories).settings.features
    entries = [entry_of(a) for a in EXPLOSION]
    meaning_keys = {e.id: meaning_key(text_of(e)) for e in entries}
    term_keys = {e.id: terms_key(article_from_entry(e), settings) for e in entries}
    t = entry_meanings_table
    with any_store.engine.begin() as conn:
        conn.execute(
            sa.update(t)
            .where(t.c.entry_id == entries[0].id)
            .values(vector=b"\x00" * 10, terms=zlib.compress(b"[1, 2]"))
        )
        conn.execute(sa.update(t).where(t.c.entry_id == entries[1].id).values(terms=zlib.compress(b'{"blast": "x"}')))
        conn.execute(sa.update(t).where(t.c.entry_id == entries[2].id).values(terms=b"not zlib at all"))
    found = stories.stored_features(meaning_keys, term_keys)
    assert set(found.meanings) == {entries[1].id, entries[2].id}
    assert found.terms == {}


def test_rows_lost_or_never_written_are_filled_once(any_store: Store) -> None:
    store_articles(any_store, EXPLOSION + OTHERS)
    stories = assign(any_store)
    settings = StoryAssigner(stories).settings
    before = rows(any_store)
    first = entry_of(EXPLOSION[0]).id
    t = entry_meanings_table
    with any_store.engine.begin() as conn:  # as a store made before the writer kept them: no rows but one
        conn.execute(sa.delete(t).where(t.c.entry_id != first))
    assert stories.fill_meanings(settings) == len(before) - 1
    assert rows(any_store) == before
    assert stories.fill_meanings(settings) == 0  # nothing left to do


def test_reindex_stores_what_an_older_store_lacks(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = tmp_path / "config.toml"
    config.write_text(f'data_dir = "{data}"\n')
    data.mkdir()
    store = open_store(f"sqlite:///{data / 'newsdesk.db'}")
    try:
        store_articles(store, EXPLOSION)
        assign(store)
        with store.engine.begin() as conn:
            conn.execute(sa.delete(entry_meanings_table))
    finally:
        store.close()
    result = newsdesk(config, "reindex")
    assert "stored the meanings of 3 older articles" in result.stdout
    again = open_store(f"sqlite:///{data / 'newsdesk.db'}")
    try:
        assert set(rows(again)) == {entry_of(a).id for a in EXPLOSION}
    finally:
        again.close()
    assert "meanings" not in newsdesk(config, "reindex").stdout  # said only when there was something to do


def test_a_stored_meaning_of_the_wrong_width_is_not_one() -> None:
    assert unpack(b"\x00" * 10) is None
    vector = np.ones(256, dtype=np.float32) / 16.0
    back = unpack(pack(vector))
    assert back is not None and np.allclose(back, vector)


def test_related_coverage_reads_the_pools_meanings_the_writer_stored(
    world: tuple[Services, Flask],  # noqa: F811
) -> None:
    services, app = world
    entries = sorted(services.store.iter_entries(), key=lambda e: e.id)[:4]
    articles = [article_from_entry(e) for e in entries]
    keys = {e.id: meaning_key(text_of(e)) for e in entries}
    # Mark what the store holds for one entry (a vector and words no text of it gives), so where an answer's
    # meaning and words came from shows: the stored row, not the process's own working out.
    marked = entries[0]
    mark = np.zeros(256, dtype=np.float32)
    mark[7] = 1.0
    t = entry_meanings_table
    with services.store.engine.begin() as conn:
        conn.execute(
            sa.update(t)
            .where(t.c.entry_id == marked.id)
            .values(vector=pack(mark), terms=zlib.compress(json.dumps({"zzmarked": 1.0}).encode()))
        )
    related.MEANINGS.clear()  # as in a web process just started: it has worked nothing out yet
    forget_term_weights()
    with app.app_context():
        meanings, terms = related.pool_features(articles)
        assert meanings[0] is not None and float(meanings[0] @ mark) == 1.0
        assert terms[marked.id] == {"zzmarked": 1.0}
        assert set(terms) == {e.id for e in entries}  # the poll's writer stored them all
        # Kept in the process from then on, and each other one is its stored meaning.
        assert related.MEANINGS.holds(keys[marked.id])
        for entry, vector in zip(entries[1:], meanings[1:], strict=True):
            fresh = shared_embedder().vector(text_of(entry))  # type: ignore[union-attr]
            assert vector is not None and fresh is not None and float(vector @ fresh) > 0.999
        # The pool's vectors are made of the stored words, and the process keeps them: asked again, the
        # pool reads nothing from the store.
        vectors = services.story_assigner.vectors(articles, known=terms)
        assert set(vectors[0]) == {"zzmarked"}
        assert related.pool_features(articles)[1] == {}
        assert set(services.story_assigner.vectors(articles)[0]) == {"zzmarked"}
        forget_term_weights()  # the marked words are not the text's: not kept for other tests
    # An entry with no stored row (its writer had no word vectors, or it predates them) is worked out here.
    with services.store.engine.begin() as conn:
        conn.execute(sa.delete(t))
    related.MEANINGS.clear()
    forget_term_weights()
    with app.app_context():
        again, none = related.pool_features(articles)
    fresh = shared_embedder().vector(text_of(marked))  # type: ignore[union-attr]
    assert again[0] is not None and fresh is not None and float(again[0] @ fresh) > 0.999
    assert none == {}
    related.MEANINGS.clear()
