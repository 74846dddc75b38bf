"""Stored meanings: what each assigned entry means and the words it weighs, worked out once by the writer.

Related coverage of an article with text weighs a pool of up to 80 other articles by what they mean
(`aggregator.stories.meaning`) and by their words (the story assigner's term weights,
`aggregator.stories.features.term_weights`); `web.related.pooled_members` builds it. Worked out on
the web node, each candidate the process had not seen yet cost a tokenization and a mean of
word-piece vectors and a pass over its words: 7 and 8 ms of a slow answer's 35 at 228,020 entries
(bench/stories_speed.py), paid again by every web node and after every restart. The writer works
both out once, when it assigns the entry's story, and stores them beside the story tables
(``entry_meanings``); readers take them by entry id, in one query for a pool.

A row names what each part was worked out from (`meaning_key`, which also names the word vectors;
`terms_key`, which also names the settings that weigh words), so an entry whose words changed since,
or a row written under other vectors or settings, is not used for that part: the reader works it out
itself, as it did before. Rows are a cache of pure functions of the entry's title and text: losing
one costs time, never an answer. A headline alone is not stored (see `save_meanings`).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import astuple
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .stories import StoryArticle
from .stories.cluster import cached_term_weights
from .stories.features import FeatureSettings, headline_alone
from .stories.meaning import Vector, meaning_key, meaning_text, pack, shared_embedder, unpack
from .tables import entries_table
from .tables_stories import entry_meanings_table

__all__ = ["StoredFeatures", "delete_meanings", "fill_meanings", "save_meanings", "stored_features", "terms_key"]

#: Rows per IN (...) list: well under SQLite's bound on variables.
_CHUNK = 500


class StoredFeatures(NamedTuple):
    """What the writer stored for some entries, each part only where it is of the entry's words now."""

    #: Entry id -> its meaning.
    meanings: dict[str, Vector]
    #: Entry id -> its term weights.
    terms: dict[str, Mapping[str, float]]


def terms_key(article: StoryArticle, settings: FeatureSettings) -> bytes:
    """Return a 16-byte digest of what an article's term weights are worked out from, settings included."""
    named = json.dumps([article.title, article.text, article.language, astuple(settings)], ensure_ascii=False)
    return hashlib.blake2b(named.encode(), digest_size=16, person=b"terms-v1").digest()


def _pack_terms(weights: Mapping[str, float]) -> bytes:
    # Floats as JSON writes them read back exactly: the vectors made of them are those worked out afresh.
    return zlib.compress(json.dumps(dict(weights), ensure_ascii=False).encode())


def _unpack_terms(data: bytes) -> Mapping[str, float] | None:
    try:
        value = json.loads(zlib.decompress(data))
    except (zlib.error, ValueError):
        return None
    if not isinstance(value, dict) or not all(type(w) in (int, float) for w in value.values()):
        return None  # not weights as `_pack_terms` writes them: worked out afresh instead
    return value


def save_meanings(
    engine: Engine, articles: Sequence[StoryArticle], *, min_words: int, settings: FeatureSettings
) -> int:
    """Work out and store the meaning and term weights (under ``settings``) of each article with text of
    ``min_words`` words or more, replacing an entry's earlier ones; return how many.

    A headline alone is left out: its meaning takes a fifth of the time of a title and lead's (0.035 ms
    against 0.18-0.2 on 2,000 UCI headlines), its words are few, and a store of headline feeds would
    double in size (UCI's 205,000 headlines are 660 bytes an entry). Nothing is stored when the word
    vectors cannot be read (readers then weigh words alone, as before)."""
    embedder = shared_embedder()
    with_text = [a for a in articles if not headline_alone(a.text, min_words)]
    if embedder is None or not with_text:
        return 0
    texts = [meaning_text(a.title, a.text) for a in with_text]
    rows = [
        (
            article.id,
            meaning_key(text),
            pack(vector),
            terms_key(article, settings),
            _pack_terms(cached_term_weights(article.title, article.text, article.language, settings)),
        )
        for article, text, vector in zip(with_text, texts, embedder.vectors(texts), strict=True)
        if vector is not None
    ]
    if not rows:
        return 0
    t = entry_meanings_table
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            # Straight to the driver, as the story writer does with its members: plain columns.
            conn.exec_driver_sql(
                f"INSERT INTO {t.name} (entry_id, text_key, vector, terms_key, terms) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (entry_id) DO UPDATE SET text_key = excluded.text_key, vector = excluded.vector, "
                "terms_key = excluded.terms_key, terms = excluded.terms",
                rows,
            )
        else:
            from sqlalchemy.dialects.postgresql import insert

            statement = insert(t)
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=[t.c.entry_id],
                    set_={name: statement.excluded[name] for name in ("text_key", "vector", "terms_key", "terms")},
                ),
                [
                    {"entry_id": i, "text_key": k, "vector": v, "terms_key": tk, "terms": terms}
                    for i, k, v, tk, terms in rows
                ],
            )
    return len(rows)


def stored_features(
    engine: Engine, meaning_keys: Mapping[str, bytes], term_keys: Mapping[str, bytes]
) -> StoredFeatures:
    """Return the stored meanings and term weights of the entries asked (entry id -> the key of its words now,
    for each part), leaving out a part stored for other words, vectors or settings."""
    found = StoredFeatures({}, {})
    ids = sorted(set(meaning_keys) | set(term_keys))
    if not ids:
        return found
    t = entry_meanings_table.c
    with engine.connect() as conn:
        for start in range(0, len(ids), _CHUNK):
            query = sa.select(t.entry_id, t.text_key, t.vector, t.terms_key, t.terms).where(
                t.entry_id.in_(ids[start : start + _CHUNK])
            )
            for entry_id, text_key, data, words_key, terms in conn.execute(query):
                wanted = meaning_keys.get(entry_id)
                vector = unpack(bytes(data)) if wanted is not None and bytes(text_key) == wanted else None
                if vector is not None:
                    found.meanings[entry_id] = vector
                wanted = term_keys.get(entry_id)
                if wanted is not None and words_key is not None and terms is not None and bytes(words_key) == wanted:
                    weights = _unpack_terms(bytes(terms))
                    if weights is not None:
                        found.terms[entry_id] = weights
    return found


def fill_meanings(
    engine: Engine,
    articles_of: Callable[[Sequence[str]], Mapping[str, StoryArticle]],
    *,
    min_words: int,
    settings: FeatureSettings,
    batch_size: int = 1000,
) -> int:
    """Store the meanings and term weights of every stored article with text that has none of its words now
    (a store made before they were stored, or whose rows were lost); return how many were stored.

    ``articles_of`` reads entries' story-assignment views by id (`SqlStoryStore.articles`). `reindex` runs
    it: 14 s for the 21,243 articles with text of the 228,020-entry bench store, 4.5 s when none lacks them."""
    e = entries_table.c
    stored = 0
    after = ""
    while True:
        with engine.connect() as conn:
            ids = list(conn.execute(sa.select(e.id).where(e.id > after).order_by(e.id).limit(batch_size)).scalars())
        if not ids:
            return stored
        after = ids[-1]
        found = articles_of(ids)
        articles = [found[i] for i in ids if i in found and not headline_alone(found[i].text, min_words)]
        have = stored_features(
            engine,
            {a.id: meaning_key(meaning_text(a.title, a.text)) for a in articles},
            {a.id: terms_key(a, settings) for a in articles},
        )
        missing = [a for a in articles if a.id not in have.meanings or a.id not in have.terms]
        stored += save_meanings(engine, missing, min_words=min_words, settings=settings)


def delete_meanings(conn: Connection, entry_ids: Sequence[str]) -> None:
    """Delete the stored meanings of these entries (in the caller's transaction)."""
    t = entry_meanings_table
    for start in range(0, len(entry_ids), _CHUNK):
        conn.execute(sa.delete(t).where(t.c.entry_id.in_(list(entry_ids[start : start + _CHUNK]))))
