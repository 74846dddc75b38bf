"""Stories in the database: the SQL `StoryStore`, the writer that assigns new entries, and the reads pages need.

The assigner (`aggregator.stories`) is pure; this module keeps its state in the store, the source
of truth, so `reindex`, a restart and every web process see the same stories. One writer consumes
the change log in order (`assign_pending`): each batch's `StoryChanges` and the advanced cursor
are written in one transaction, guarded by a compare-and-set on the cursor so two writers (a `run`
and a `poll --once`) can never assign a batch twice. On a scaled-out PostgreSQL store the cursor is
a change-log position instead (``aggregator.story_leader``); the batch code here serves both.
Readers keep the recent stories' centroids in memory and load only what changed since: every saved
batch takes the next story version (``meta``), written on the rows it touched (``updated_seq``).
A lookup (`find`) for an article older than that view reads the stories open around its date from
the database (`_PastStories`).
"""

from __future__ import annotations

import dataclasses
import heapq
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from .errors import StorageError
from .gcpause import collector_paused
from .hosts import display_title
from .store_errors import database_errors
from .store_meanings import StoredFeatures, delete_meanings, fill_meanings, save_meanings, stored_features
from .stories import (
    StoryArticle,
    StoryAssigner,
    StoryChanges,
    StoryMatch,
    StorySettings,
    StoryState,
    article_from_entry,
)
from .stories.features import article_from_fields
from .stories.state import TermIndex
from .tables import changes_table, entries_table, feeds_table, meta_table
from .tables_stories import (
    STORIES_DOCUMENTS_KEY,
    STORIES_SEQ_KEY,
    STORIES_VERSION_KEY,
    stories_table,
    story_aliases_table,
    story_members_table,
    story_terms_table,
)

__all__ = [
    "HALVE_FREQUENCIES_AT",
    "MEMORY_STORIES",
    "CursorMove",
    "MemberRow",
    "SqlStoryStore",
    "StoryRow",
    "assign_pending",
    "batch_articles",
    "rebuilt",
]

log = logging.getLogger("newsdesk.stories")

#: Rows per IN (...) list: well under SQLite's bound on variables.
_CHUNK = 500
# A story's state as stored (json.dumps(state, ensure_ascii=False) would build this encoder per story).
_STATE_JSON = json.JSONEncoder(ensure_ascii=False)
#: Counted articles at which the document frequencies halve (see `SqlStoryStore`).
HALVE_FREQUENCIES_AT = 200_000
#: Stories a store keeps in memory at most (the writer's, a web process's): past it, those quiet longest leave
#: (to 80% of it) and are read back by the week like any older story (`_past_week`). A running writer used
#: to keep every story it assigned (380 MiB resident at 228,020 entries, 28,392 stories): a year of
#: polling would have grown it to gigabytes. 60,000 is about two months of 200 busy feeds.
MEMORY_STORIES = 60_000
#: Past stories a reader keeps loaded, by whole weeks, for lookups of older articles: about 2.1 KB each (their
#: centroids as arrays and their states as stored; 5.2 KB as parsed JSON), 85 MB at most; a week's stories
#: stay until one of them changes. The 228,020-entry bench store has 28,392 standing stories: all fit.
_PAST_STORIES = 40_000


class StoriesMoved(StorageError):
    """Another writer advanced the story cursor first: this batch's work is dropped, the cache reloaded."""


#: Advances a story cursor inside a batch's transaction, or raises StoriesMoved when another writer moved it.
CursorMove = Callable[[Connection], None]


@dataclass(frozen=True)
class StoryRow:
    """A story as lists show it (its members are read separately)."""

    #: The story id.
    id: str
    #: Earliest publication among its articles.
    first_seen: datetime
    #: Latest publication among its articles.
    last_seen: datetime
    #: Articles in it.
    members: int
    #: Distinct outlets that covered it.
    outlet_count: int


class MemberRow(NamedTuple):
    """A story's article as a card picks from: no text, so a story of hundreds of articles is cheap to scan."""

    #: The entry's id.
    entry_id: str
    #: Its outlet as pages name it (the feed's title).
    outlet: str
    #: Its picture's URL as stored (not checked), or None.
    image_url: str | None
    #: Its title (copies of one wire text share it).
    title: str = ""
    #: Its near-duplicate fingerprint (0: none).
    fingerprint: int = 0
    #: Its outlet's site, else the entry's own URL ("" when unknown).
    site_url: str = ""


@database_errors
class SqlStoryStore:
    """The `StoryStore` protocol over the database, with an in-memory view of the recent stories.

    Thread-safe through ``lock``: the writer holds it for a batch, readers (``find``) for a lookup.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        retain: timedelta = timedelta(days=4),
        halve_frequencies_at: int = HALVE_FREQUENCIES_AT,
        memory_stories: int = MEMORY_STORIES,
    ) -> None:
        self.engine = engine
        self._memory_stories = memory_stories
        # When the counted articles reach this many, every document frequency and the count halve
        # (terms left at zero go): the table follows the recent vocabulary and stays bounded.
        self._halve_at = halve_frequencies_at
        #: Held while the in-memory view is read or changed.
        self.lock = threading.RLock()
        # Stories quiet longer than this before the newest are not kept in memory (the assigner asks
        # only for stories open at an article's time): above the quiet period plus late arrivals.
        self._retain = retain
        self._loaded_version = -1
        self._stories: dict[str, StoryState] = {}
        self._index = TermIndex()
        self._aliases: dict[str, str] = {}
        self._frequencies: dict[str, int] = {}
        # True when _frequencies holds the whole table (the writer's view): an unknown term is 0, unread.
        self._complete = False
        self._documents = 0
        self._known: dict[str, str | None] = {}
        self._target: CursorMove | None = None
        self._saved = False
        # Stories whose last article is older than this are not in memory (None: all are).
        self._horizon: datetime | None = None
        # Week number -> the stories open in that week, read from the database for lookups of older articles.
        self._past: OrderedDict[int, _PastWindow] = OrderedDict()
        # Stories held in ``_past`` (kept under `_PAST_STORIES`), and the ids their terms are filed by.
        self._past_stories = 0
        self._terms: dict[str, int] = {}
        self._warming = False
        # Story id -> its state in this view before the batch in hand first staged it (None: not in it).
        self._before_staging: dict[str, StoryState | None] = {}

    # ------------------------------------------------------------------ cursor and cache

    def cursor(self) -> int:
        """Return the change-log sequence story assignment has consumed (0 before the first batch)."""
        with self.engine.connect() as conn:
            return _meta_int(conn, STORIES_SEQ_KEY)

    def refresh(self) -> None:
        """Load what other writers changed since this view was last loaded (cheap when nothing did)."""
        with self.lock, self.engine.connect() as conn:
            version = _version(conn)
            if version == self._loaded_version:
                return
            s = stories_table.c
            query = sa.select(s.state).where(s.merged_into.is_(None))
            if self._loaded_version < 0 or version < self._loaded_version:
                self._reset()
                newest = conn.execute(sa.select(sa.func.max(s.last_seen))).scalar()
                if newest is not None:
                    self._horizon = newest - self._retain
                    query = query.where(s.last_seen >= self._horizon)
                aliases = conn.execute(sa.select(story_aliases_table.c.alias, story_aliases_table.c.story_id))
            else:
                query = sa.select(s.state).where(s.updated_seq > self._loaded_version)
                aliases = conn.execute(
                    sa.select(story_aliases_table.c.alias, story_aliases_table.c.story_id).where(
                        story_aliases_table.c.seq > self._loaded_version
                    )
                )
            self._aliases.update({alias: story_id for alias, story_id in aliases})
            changed = [StoryState.from_json(json.loads(state)) for (state,) in conn.execute(query)]
            for story in changed:
                self._put(story)
            self._forget_past(changed)
            self._documents = _meta_int(conn, STORIES_DOCUMENTS_KEY)
            self._frequencies.clear()  # others counted terms too: read them afresh
            self._complete = False
            self._loaded_version = version
            self._keep_memory_bounded()

    def _reset(self) -> None:
        self._before_staging.clear()
        self._horizon = None
        self._clear_past()
        self._stories.clear()
        self._index = TermIndex()
        self._aliases.clear()
        self._frequencies.clear()
        self._complete = False

    def _load_frequencies(self) -> None:
        """Read the whole frequency table once (the writer's view): every article then looks its terms up in memory.

        Asking the database for each article's unseen terms cost one query per article; the table is
        bounded by its halving (a few hundred thousand terms, tens of MiB).
        """
        t = story_terms_table.c
        with self.engine.connect() as conn:
            self._frequencies = {term: int(count) for term, count in conn.execute(sa.select(t.term, t.documents))}
        self._complete = True

    def _forget_past(self, changed: Iterable[StoryState]) -> None:
        """Drop the past weeks the changed stories are open in (the caller holds ``lock``).

        A story's span only grows while its articles are kept (its old weeks are among its new ones); a
        merged story's state keeps its span, so the weeks that listed it are dropped too. Removing articles
        can shrink a span: that path clears every week."""
        if not self._past:
            return
        for story in changed:
            first = story.first_seen.date().toordinal() // 7
            last = story.last_seen.date().toordinal() // 7
            if last - first >= len(self._past):
                for week in [w for w in self._past if first <= w <= last]:
                    self._drop_week(week)
            else:
                for week in range(first, last + 1):
                    self._drop_week(week)

    def _keep_memory_bounded(self) -> None:
        """Past `MEMORY_STORIES` in memory, let the stories quiet longest leave (the caller holds ``lock``, between
        batches): every story whose last article is at or after the new horizon stays, so what memory lacks
        is what `_past_week` reads, for the writer's late articles and lookups of older ones alike. Their
        saved states are the database's, so nothing is lost and no past week is stale."""
        if len(self._stories) <= self._memory_stories:
            return
        by_age = sorted(self._stories.values(), key=lambda story: (story.last_seen, story.id))
        leaving = by_age[: len(by_age) - int(self._memory_stories * 0.8)]
        horizon = leaving[-1].last_seen + timedelta(microseconds=1)
        for story in leaving:
            del self._stories[story.id]
            self._index.remove(story.id)
        if self._horizon is None or horizon > self._horizon:
            self._horizon = horizon

    def _clear_past(self) -> None:
        self._past.clear()
        self._past_stories = 0
        self._terms = {}

    def _drop_week(self, week: int) -> None:
        window = self._past.pop(week, None)
        if window is not None:
            self._past_stories -= window.size

    def _put(self, story: StoryState) -> None:
        if story.merged_into is None:
            self._stories[story.id] = story
        else:
            self._stories.pop(story.id, None)
        self._index.put(story)

    # ------------------------------------------------------------------ the StoryStore protocol

    def stories_for_terms(
        self,
        terms: Mapping[str, float],
        start: datetime,
        end: datetime,
        limit: int,
        exclude: Container[str] = frozenset(),
    ) -> list[tuple[float, StoryState]]:
        """Return (overlap, story) of up to ``limit`` unmerged stories sharing a term and overlapping [start, end], best first.

        A window that starts before the stories held in memory (the writer's: an article older than they
        are, from a feed added with its backlog or published late) also reads the stories open then from
        the database, as lookups of older articles do (`_past_week`; the caller holds ``lock``), so the
        article joins its event's story instead of starting one of its own. Those in memory stand for
        themselves (their state may be newer than the database's); the rest rank by the same sums."""
        found = self._index.stories_for_terms(self._stories, terms, start, end, limit, exclude)
        horizon = self._horizon
        if horizon is None or start >= horizon:
            return found
        # Memory stands for itself, and so does what this batch staged: a story it merged away is gone from
        # memory but not yet from the database (nor from a week read before the merge).
        skip = _EitherOf(exclude, self._stories, self._before_staging)
        merged = {story.id: (score, story) for score, story in found}
        for week in range(start.date().toordinal() // 7, min(end, horizon).date().toordinal() // 7 + 1):
            for score, story in self._past_week(week).stories_for_terms(terms, start, end, limit, skip):
                merged.setdefault(story.id, (score, story))
        return sorted(merged.values(), key=lambda item: (-item[0], item[1].id))[:limit]

    def document_frequencies(self, terms: Iterable[str]) -> dict[str, int]:
        """Return term -> number of counted articles containing it."""
        cache = self._frequencies
        if self._complete:
            return {term: cache.get(term, 0) for term in terms}
        terms = list(terms)
        missing = [term for term in terms if term not in cache]
        if missing:
            with self.engine.connect() as conn:
                for start in range(0, len(missing), _CHUNK):
                    chunk = missing[start : start + _CHUNK]
                    rows = conn.execute(
                        sa.select(story_terms_table.c.term, story_terms_table.c.documents).where(
                            story_terms_table.c.term.in_(chunk)
                        )
                    )
                    found = {row[0]: row[1] for row in rows}
                    for term in chunk:
                        cache[term] = int(found.get(term, 0))
            if len(cache) > 500_000:  # a bounded cache: a long-running writer sees ever new words
                kept = {term: cache[term] for term in terms}
                cache.clear()
                cache.update(kept)
        return {term: cache[term] for term in terms}

    def document_count(self) -> int:
        """Return the number of counted articles."""
        return self._documents

    def story_of(self, article_id: str) -> str | None:
        """Return the story an article is in (the surviving one after merges), or None."""
        if article_id in self._known:
            return self._known[article_id]
        with self.engine.connect() as conn:
            value: str | None = conn.execute(
                sa.select(story_members_table.c.story_id).where(story_members_table.c.entry_id == article_id)
            ).scalar()
        return value

    def resolve(self, story_id: str) -> str:
        """Return the story id ``story_id`` redirects to now (aliases always name the final story)."""
        return self._aliases.get(story_id, story_id)

    def story(self, story_id: str) -> StoryState | None:
        """Return a story's state by id (merged ones too), or None."""
        found = self._stories.get(story_id)
        if found is not None:
            return found
        with self.engine.connect() as conn:
            state = conn.execute(sa.select(stories_table.c.state).where(stories_table.c.id == story_id)).scalar()
        return None if state is None else StoryState.from_json(json.loads(state))

    def stage(self, story: StoryState) -> None:
        """Show a batch's new state of a story to this view's lookups before the batch is saved (under ``lock``)."""
        if story.id not in self._before_staging:
            self._before_staging[story.id] = self._stories.get(story.id)
        self._put(story)

    def unstage(self) -> None:
        """Take back what was staged since the last save: the view shows the saved stories again."""
        for story_id, before in self._before_staging.items():
            if before is not None:
                self._put(before)
            else:
                self._stories.pop(story_id, None)
                self._index.remove(story_id)
        self._before_staging.clear()

    def save_at(self, changes: StoryChanges, from_seq: int, to_seq: int) -> None:
        """Persist changes made from the change log (from_seq, to_seq] and advance the cursor (one transaction)."""
        with self.lock:
            self._target = _seq_move(from_seq, to_seq)
            try:
                self.save(changes)
            finally:
                self._target = None

    def save(self, changes: StoryChanges) -> None:
        """Persist a batch's changes and advance the cursor, all in one transaction (see `assign_pending`)."""
        move = self._target
        if move is None:
            raise StorageError("story changes are saved only by assign_pending, which advances the cursor")
        try:
            with self.engine.begin() as conn:
                move(conn)
                previous, version = _next_version(conn)
                halved = self._write(conn, changes, version)
        except SQLAlchemyError as exc:
            self._loaded_version = -1
            raise StorageError(f"cannot save stories: {exc}") from exc
        except StoriesMoved:
            self._loaded_version = -1
            raise
        self._saved = True
        # The database has it; the in-memory view follows without reading it back.
        final = dict(changes.aliases)
        for alias, story_id in final.items():
            self._aliases[alias] = self._final(story_id, final)
        for alias, story_id in list(self._aliases.items()):
            if story_id in final:
                self._aliases[alias] = self._final(story_id, final)
        stories = self._stories
        for story in changes.stories:
            if stories.get(story.id) is not story:  # a state the batch staged is filed already
                self._put(story)
        self._before_staging.clear()
        if halved is not None:
            self._frequencies.clear()
            self._complete = False
            self._documents = halved
        else:
            cache = self._frequencies
            for term, count in changes.frequencies.items():
                if term in cache:
                    cache[term] += count
                elif self._complete:
                    cache[term] = count
            self._documents += changes.documents
        if previous == self._loaded_version:  # else another writer saved since our view: refresh loads both
            self._loaded_version = version
        self._forget_past(changes.stories)
        self._keep_memory_bounded()

    def _final(self, story_id: str, pending: Mapping[str, str]) -> str:
        for _ in range(1000):  # a chain, never a cycle; the bound guards anyway
            nxt = pending.get(story_id) or self._aliases.get(story_id)
            if nxt is None or nxt == story_id:
                break
            story_id = nxt
        return story_id

    def _write(self, conn: Connection, changes: StoryChanges, version: int) -> int | None:
        """Write a batch's changes; return the halved article count when the frequencies were halved, else None."""
        _write_states(conn, changes.stories, version)
        if changes.assignments:
            if conn.dialect.name == "sqlite":  # plain strings and an integer: straight to the driver, as terms are
                conn.exec_driver_sql(
                    f"INSERT INTO {story_members_table.name} (entry_id, story_id, seq) VALUES (?, ?, ?)",
                    [(a, story_id, version) for a, story_id in changes.assignments],
                )
            else:
                conn.execute(
                    sa.insert(story_members_table),
                    [{"entry_id": a, "story_id": story_id, "seq": version} for a, story_id in changes.assignments],
                )
        if changes.aliases:
            pending = dict(changes.aliases)
            moves = [
                {"merged_id": alias, "final_id": self._final(story_id, pending)} for alias, story_id in changes.aliases
            ]
            m, al = story_members_table, story_aliases_table
            # Members and older aliases move to the survivor, so every read is one lookup. Every target
            # is a final story (never an alias of this batch), so the moves commute: one statement each.
            conn.execute(
                sa.update(m).where(m.c.story_id == sa.bindparam("merged_id")).values(story_id=sa.bindparam("final_id")),
                moves,
            )
            conn.execute(
                sa.update(al)
                .where(al.c.story_id == sa.bindparam("merged_id"))
                .values(story_id=sa.bindparam("final_id"), seq=version),
                moves,
            )
            aliases = [move["merged_id"] for move in moves]
            for start in range(0, len(aliases), _CHUNK):
                conn.execute(sa.delete(al).where(al.c.alias.in_(aliases[start : start + _CHUNK])))
            conn.execute(
                sa.insert(al),
                [{"alias": move["merged_id"], "story_id": move["final_id"], "seq": version} for move in moves],
            )
        self._count_terms(conn, changes.frequencies)
        if not changes.documents:
            return None
        documents = _meta_add(conn, STORIES_DOCUMENTS_KEY, changes.documents)
        if documents < self._halve_at:
            return None
        t = story_terms_table
        conn.execute(sa.update(t).values(documents=t.c.documents // 2))
        conn.execute(sa.delete(t).where(t.c.documents < 1))
        _meta_add(conn, STORIES_DOCUMENTS_KEY, documents // 2 - documents)
        log.info("story term frequencies halved at %d articles", documents)
        return documents // 2

    @staticmethod
    def _count_terms(conn: Connection, frequencies: Mapping[str, int]) -> None:
        if not frequencies:
            return
        t = story_terms_table
        # One statement adds to the known terms and inserts the new ones (no asking which exist first).
        if conn.dialect.name == "sqlite":
            # Straight to the driver: a batch counts some thousands of terms, and SQLAlchemy's handling
            # of each row's parameters cost more than SQLite's work (two plain columns: nothing to convert).
            conn.exec_driver_sql(
                f"INSERT INTO {t.name} (term, documents) VALUES (?, ?) ON CONFLICT (term) "
                f"DO UPDATE SET documents = {t.name}.documents + excluded.documents",
                list(frequencies.items()),
            )
            return
        statement = _upsert_for(conn.dialect.name)(t)
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=[t.c.term], set_={"documents": t.c.documents + statement.excluded.documents}
            ),
            [{"term": term, "documents": count} for term, count in frequencies.items()],
        )

    # ------------------------------------------------------------------ the writer's batch

    def assign(self, assigner: StoryAssigner, articles: Sequence[StoryArticle], from_seq: int, to_seq: int) -> int:
        """Assign a batch of articles taken from the change log (from_seq, to_seq]; return how many were new."""
        return self.assign_moving(assigner, articles, _seq_move(from_seq, to_seq))

    def assign_moving(self, assigner: StoryAssigner, articles: Sequence[StoryArticle], move: CursorMove) -> int:
        """Assign a batch of articles, advancing the cursor with ``move`` in the same transaction; return how many were new."""
        # The collector paused for the batch (`aggregator.gcpause`): in a writer holding many stories its
        # collections cost a large share of the batch's CPU, and a batch leaves no cycles to collect.
        with self.lock, collector_paused():
            if not self._complete:
                self._load_frequencies()
            self._known = self._members([article.id for article in articles])
            self._target = move
            self._saved = False
            try:
                results = assigner.assign_many(articles)
                if not self._saved:
                    try:
                        with self.engine.begin() as conn:
                            move(conn)
                    except SQLAlchemyError as exc:
                        raise StorageError(f"cannot save the story cursor: {exc}") from exc
            finally:
                self._target = None
                self._known = {}
        self._save_meanings(articles, assigner.settings)
        return sum(1 for result in results if not result.repeated)

    def _save_meanings(self, articles: Sequence[StoryArticle], settings: StorySettings) -> None:
        # What each article means, for related coverage (`aggregator.store_meanings`): a cache of its words,
        # so a failure to write it is told and passed over (readers work a missing one out themselves).
        try:
            with collector_paused():
                save_meanings(self.engine, articles, min_words=settings.headline_words, settings=settings.features)
        except SQLAlchemyError as exc:
            log.warning("meanings of %d articles not stored (related coverage works them out): %s", len(articles), exc)

    def articles(self, entry_ids: Sequence[str]) -> dict[str, StoryArticle]:
        """Return the story-assignment view of the entries with these ids that exist, by id.

        Reads only the columns assignment uses (no HTML, authors, tags or flags to decode): for the
        writer, reading whole entries cost as much as a tenth of assigning them.
        """
        e, f = entries_table.c, feeds_table.c
        query = sa.select(e.id, e.title, e.published_at, e.text, e.summary, e.url, e.language, f.key, f.site_url).join(
            feeds_table, f.id == e.feed_id
        )
        found: dict[str, StoryArticle] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(entry_ids), _CHUNK):
                chunk = list(entry_ids[start : start + _CHUNK])
                for row in conn.execute(query.where(e.id.in_(chunk))):
                    entry_id, title, published_at, text, summary, url, language, feed_key, site_url = row
                    found[entry_id] = article_from_fields(
                        entry_id, title, published_at, text or summary, site_url or url, feed_key, language
                    )
        return found

    def changes_after(self, seq: int, limit: int) -> list[tuple[int, str]]:
        """Return (seq, entry id) of up to ``limit`` logged changes after ``seq``, in order (as `changes_since` lists them)."""
        c = changes_table.c
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(c.seq, c.entry_id).where(c.seq > seq).order_by(c.seq).limit(limit)).all()
        return [(int(row[0]), str(row[1])) for row in rows]

    def _members(self, entry_ids: Sequence[str]) -> dict[str, str | None]:
        known: dict[str, str | None] = dict.fromkeys(entry_ids)
        with self.engine.connect() as conn:
            for start in range(0, len(entry_ids), _CHUNK):
                chunk = list(entry_ids[start : start + _CHUNK])
                rows = conn.execute(
                    sa.select(story_members_table.c.entry_id, story_members_table.c.story_id).where(
                        story_members_table.c.entry_id.in_(chunk)
                    )
                )
                known.update({row[0]: row[1] for row in rows})
        return known

    def forget(self, assigner: StoryAssigner, entries: Any, entry_ids: Sequence[str]) -> int:
        """Take deleted entries out of their stories; return how many were members.

        Each story that lost an article is rebuilt from the articles it still has (``entries`` is the
        store: ``get_entries``): its centroid from their vectors, its span, member count and outlets,
        so a removed outlet no longer counts towards the front page. A story left with no article
        keeps its id (links to it answer 404) and matches nothing. Idempotent: safe to run again after
        a crash. Document frequencies are not lowered (the deleted text is gone); their halving
        (``halve_frequencies_at``) fades them like every other count.
        """
        with self.lock:
            gone = {i: s for i, s in self._members(list(entry_ids)).items() if s is not None}
            if not gone:
                return 0
            states: list[StoryState] = []
            for story_id in sorted(set(gone.values())):
                state = self.story(story_id)
                if state is None:
                    continue
                kept = entries.get_entries([i for i in self.member_ids(story_id) if i not in gone])
                states.append(rebuilt(state, [article_from_entry(e) for e in kept.values()], assigner))
            with self.engine.begin() as conn:
                m = story_members_table
                ids = sorted(gone)
                for start in range(0, len(ids), _CHUNK):
                    conn.execute(sa.delete(m).where(m.c.entry_id.in_(ids[start : start + _CHUNK])))
                # Meanings are stored only for assigned articles (`_save_meanings`): members' go with them.
                delete_meanings(conn, ids)
                previous, version = _next_version(conn)
                _write_states(conn, states, version)
            for state in states:
                self._put(state)
            self._clear_past()
            if previous == self._loaded_version:
                self._loaded_version = version
            return len(gone)

    def find(
        self,
        assigner: StoryAssigner,
        article: StoryArticle,
        *,
        second_chance: bool = False,
        exclude: str | None = None,
        threshold: float | None = None,
    ) -> StoryMatch | None:
        """Return the story an article we do not store belongs to (read-only), or None; the keywords as
        `StoryAssigner.find` takes them."""
        self.refresh()
        with self.lock:
            return self._assigner_around(assigner, article.published_at).find(
                article, second_chance=second_chance, exclude=exclude, threshold=threshold
            )

    def nearby(
        self,
        assigner: StoryAssigner,
        article: StoryArticle,
        *,
        limit: int,
        threshold: float,
        min_shared: int,
        exclude: str | None = None,
    ) -> list[StoryMatch]:
        """Return the stories an article is near (`StoryAssigner.nearby`), read as `find` reads them."""
        self.refresh()
        with self.lock:
            return self._assigner_around(assigner, article.published_at).nearby(
                article, limit=limit, threshold=threshold, min_shared=min_shared, exclude=exclude
            )

    def _assigner_around(self, assigner: StoryAssigner, when: datetime) -> StoryAssigner:
        """Return ``assigner`` when the stories open around ``when`` are in memory, else one over those stories
        read from the database (the caller holds ``lock``)."""
        quiet = timedelta(hours=assigner.settings.quiet_period_hours)
        if self._horizon is None or when - quiet >= self._horizon:
            return assigner
        # An embedding page asks about an article older than the stories kept in memory (a page read a
        # week after it was published): the stories open around its day, from the database.
        weeks = range((when - quiet).date().toordinal() // 7, (when + quiet).date().toordinal() // 7 + 1)
        return StoryAssigner(_PastStories(self, [self._past_week(week) for week in weeks]), assigner.settings)

    def warm_past(self) -> threading.Thread:
        """Start reading, in the background, the past weeks lookups of older articles read (`_past_week`), newest
        first, as long as they fit in `_PAST_STORIES`: a server calls it once it listens, so that the first ask
        about an article of each past week does not pay for reading the week (30-40 ms for a week of 1,000
        stories). Answers meanwhile read what they need themselves."""

        def read() -> None:
            try:
                self.refresh()
                horizon = self._horizon
                if horizon is None:
                    return  # every story is in memory
                s = stories_table.c
                weeks: set[int] = set()
                with self.engine.connect() as conn:
                    spans = conn.execute(
                        sa.select(s.first_seen, s.last_seen).where(s.merged_into.is_(None), s.first_seen < horizon)
                    )
                    # Each story's weeks and the week either side: a lookup reads the weeks its quiet period
                    # reaches, and an empty one is read (and kept) as any other.
                    for first, last in spans:
                        weeks.update(range(first.date().toordinal() // 7 - 1, last.date().toordinal() // 7 + 2))
                for week in sorted(weeks, reverse=True):
                    with self.lock:
                        if self._past_stories >= _PAST_STORIES * 0.8:
                            return
                        if week not in self._past:
                            self._past_week(week)
                            self._past.move_to_end(week, last=False)  # older weeks read later go first
            except Exception as exc:  # a database gone away, a damaged row: the lookups will say so themselves
                log.warning("past stories not read ahead: %s", exc)
            finally:
                self._warming = False

        self._warming = True  # before the thread starts: a readiness check right after sees it loading
        thread = threading.Thread(target=read, name="newsdesk-stories-warm", daemon=True)
        thread.start()
        return thread

    def past_in_memory(self) -> dict[str, int]:
        """Return the recent stories held in memory (at most `MEMORY_STORIES`), the past weeks held for lookups of
        older articles, their stories, and 1 while those are being read ahead."""
        return {
            "recent": len(self._stories),
            "weeks": len(self._past),
            "stories": self._past_stories,
            "loading": int(self._warming),
        }

    def _past_week(self, week: int) -> _PastWindow:
        """Return the unmerged stories open at some time of a week (days ``7 * week`` to ``7 * week + 6`` by
        ordinal), indexed by term.

        A lookup reads the weeks its quiet period either side touches (one or two), and each week read
        serves every lookup that touches it until one of its stories changes: a cold lookup's cost is
        mostly reading and filing the stories of its weeks (30-40 ms for 1,000 stories at 228,020
        articles), so `warm_past` reads them ahead.
        """
        window = self._past.get(week)
        if window is not None:
            self._past.move_to_end(week)
            return window
        start = datetime.combine(date.fromordinal(max(1, week * 7)), time.min, tzinfo=UTC)
        end = datetime.combine(date.fromordinal(week * 7 + 6), time.max, tzinfo=UTC)
        with self.engine.connect() as conn, collector_paused():  # thousands of dicts, no cycles
            window = _PastWindow([state for (state,) in conn.execute(open_between(start, end))], self._terms)
        self._past[week] = window
        self._past_stories += window.size
        while self._past_stories > _PAST_STORIES and len(self._past) > 1:
            self._drop_week(next(iter(self._past)))
        return window

    # ------------------------------------------------------------------ reads for pages and the API

    def resolve_stored(self, story_id: str) -> str | None:
        """Return the id a story id stands for now (itself, or the survivor of a merge), or None when unknown."""
        with self.engine.connect() as conn:
            alias = conn.execute(
                sa.select(story_aliases_table.c.story_id).where(story_aliases_table.c.alias == story_id)
            ).scalar()
            if alias is not None:
                return str(alias)
            found = conn.execute(
                sa.select(stories_table.c.id).where(
                    stories_table.c.id == story_id, stories_table.c.merged_into.is_(None)
                )
            ).scalar()
        return None if found is None else str(found)

    def story_row(self, story_id: str) -> StoryRow | None:
        """Return a standing story's row, or None."""
        s = stories_table.c
        with self.engine.connect() as conn:
            row = conn.execute(_row_select().where(s.id == story_id, s.merged_into.is_(None))).first()
        return None if row is None else _story_row(row)

    def story_rows(self, story_ids: Sequence[str]) -> dict[str, StoryRow]:
        """Return the rows of the standing stories among ``story_ids``, by id."""
        s = stories_table.c
        found: dict[str, StoryRow] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(story_ids), _CHUNK):
                chunk = list(story_ids[start : start + _CHUNK])
                for row in conn.execute(_row_select().where(s.id.in_(chunk), s.merged_into.is_(None))):
                    found[row.id] = _story_row(row)
        return found

    def first_members(self, story_ids: Sequence[str]) -> dict[str, str]:
        """Return story id -> the id of its first report still stored (earliest, then lowest id)."""
        m, e = story_members_table.c, entries_table.c
        found: dict[str, str] = {}
        with self.engine.connect() as conn:
            for story_id in story_ids:
                first = conn.execute(
                    sa.select(m.entry_id)
                    .join(entries_table, e.id == m.entry_id)
                    .where(m.story_id == story_id)
                    .order_by(e.published_at, e.id)
                    .limit(1)
                ).scalar()
                if first is not None:
                    found[story_id] = str(first)
        return found

    def member_ids(self, story_id: str) -> list[str]:
        """Return the ids of a story's articles that are still stored, oldest first."""
        m, e = story_members_table.c, entries_table.c
        query = (
            sa.select(m.entry_id)
            .join(entries_table, entries_table.c.id == m.entry_id)
            .where(m.story_id == story_id)
            .order_by(e.published_at, e.id)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def fill_meanings(self, settings: StorySettings) -> int:
        """Store the meanings and term weights of the stored articles with text that lack them (`reindex` after
        an upgrade: `aggregator.store_meanings.fill_meanings`); return how many were stored."""
        return fill_meanings(self.engine, self.articles, min_words=settings.headline_words, settings=settings.features)

    def stored_features(self, meaning_keys: Mapping[str, bytes], term_keys: Mapping[str, bytes]) -> StoredFeatures:
        """Return the meanings and term weights the writer stored for these entries (entry id -> the key of
        its words now, for each part), leaving out those worked out from other words (`aggregator.store_meanings`)."""
        return stored_features(self.engine, meaning_keys, term_keys)

    def member_rows(self, story_ids: Sequence[str], *, only: Sequence[str] | None = None) -> dict[str, list[MemberRow]]:
        """Return each story's stored articles as light rows, oldest first (by publication, then id; stories
        without any are left out); with ``only``, just those of these entry ids."""
        m, e, f = story_members_table.c, entries_table.c, feeds_table.c
        among = None if only is None else m.entry_id.in_(list(only))
        found: dict[str, list[MemberRow]] = {}
        outlets: dict[tuple[str | None, str | None, str], str] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(story_ids), _CHUNK):
                query = (
                    sa.select(
                        m.story_id,
                        m.entry_id,
                        e.image_url,
                        e.title,
                        e.fingerprint,
                        e.url.label("entry_url"),
                        f.site_url,
                        f.config_title,
                        f.doc_title,
                        f.url,
                    )
                    .select_from(
                        story_members_table.join(entries_table, e.id == m.entry_id).join(feeds_table, f.id == e.feed_id)
                    )
                    .where(m.story_id.in_(list(story_ids[start : start + _CHUNK])))
                    .order_by(e.published_at, e.id)
                )
                if among is not None:
                    query = query.where(among)
                for row in conn.execute(query):
                    # A big story has hundreds of articles from a few dozen feeds: name each feed once.
                    feed = (row.config_title, row.doc_title, row.url)
                    outlet = outlets.get(feed)
                    if outlet is None:
                        outlet = outlets[feed] = display_title(*feed)
                    found.setdefault(row.story_id, []).append(
                        MemberRow(
                            row.entry_id,
                            outlet,
                            row.image_url,
                            row.title,
                            int(row.fingerprint or 0),
                            row.site_url or row.entry_url or "",
                        )
                    )
        return found

    def stories_of(self, entry_ids: Sequence[str]) -> dict[str, str]:
        """Return entry id -> the story it belongs to now, for the entries that have one."""
        return {i: s for i, s in self._members(entry_ids).items() if s is not None}

    def top(
        self,
        *,
        min_outlets: int,
        limit: int,
        offset: int = 0,
        since: datetime | None = None,
        window: timedelta = timedelta(hours=72),
        tags: Sequence[str] = (),
        languages: Sequence[str] = (),
        sources: Sequence[str] = (),
    ) -> tuple[list[StoryRow], int]:
        """Return a page of top stories and how many there are in all: at least ``min_outlets`` outlets,
        reported within ``window`` of the newest story (or since ``since``), ranked by outlets then recency."""
        s = stories_table.c
        with self.engine.connect() as conn:
            newest = conn.execute(sa.select(sa.func.max(s.last_seen)).where(s.merged_into.is_(None))).scalar()
            if newest is None:
                return [], 0
            # Counted from the newest story rather than the clock, so an install that stopped polling
            # still opens on its last news instead of nothing.
            start = since if since is not None else newest - window
            conditions: list[Any] = [s.merged_into.is_(None), s.outlet_count >= min_outlets, s.last_seen >= start]
            member = _member_filter(tags, languages, sources)
            if member is not None:
                conditions.append(sa.exists(member))
            total = int(
                conn.execute(sa.select(sa.func.count()).select_from(stories_table).where(*conditions)).scalar_one()
            )
            rows = conn.execute(
                _row_select()
                .where(*conditions)
                .order_by(s.outlet_count.desc(), s.last_seen.desc(), s.id)
                .limit(limit)
                .offset(offset)
            ).all()
        return [_story_row(row) for row in rows], total

    def stats(self) -> dict[str, int]:
        """Return counts for the CLI: stories, standing stories of two outlets or more, aliases, cursor."""
        s = stories_table.c
        with self.engine.connect() as conn:
            stories = conn.execute(sa.select(sa.func.count()).where(s.merged_into.is_(None))).scalar_one()
            shown = conn.execute(
                sa.select(sa.func.count()).where(s.merged_into.is_(None), s.outlet_count >= 2)
            ).scalar_one()
            aliases = conn.execute(sa.select(sa.func.count()).select_from(story_aliases_table)).scalar_one()
            seq = _meta_int(conn, STORIES_SEQ_KEY)
        return {"stories": int(stories), "multi_outlet": int(shown), "aliases": int(aliases), "seq": seq}


def rebuilt(state: StoryState, articles: Sequence[StoryArticle], assigner: StoryAssigner) -> StoryState:
    """Return a story's state made again from the articles it still has (none: an empty story that matches nothing)."""
    if not articles:
        return dataclasses.replace(state, centroid={}, members=0, outlets=())
    in_time = sorted(articles, key=lambda a: (a.published_at, a.id))
    centroid: dict[str, float] = {}
    for article in in_time:
        for term, weight in assigner.vector(article).items():
            centroid[term] = centroid.get(term, 0.0) + weight
    # Heaviest first, as the assigner keeps a centroid, cut to the same size.
    ranked = sorted(centroid.items(), key=lambda item: (-item[1], item[0]))[: assigner.settings.centroid_terms]
    outlets = tuple(dict.fromkeys(a.outlet for a in in_time if a.outlet))
    return dataclasses.replace(
        state,
        centroid=dict(ranked),
        first_seen=in_time[0].published_at,
        last_seen=in_time[-1].published_at,
        members=len(in_time),
        outlets=outlets[: assigner.settings.max_outlets],
    )


class _PastWindow:
    """The stories open in one past week, read from the database for lookups of older articles.

    Their centroids are kept as one inverted table of arrays (term id -> the week's stories with that term
    and their weights, sorted by term id) and their states as stored, each made a `StoryState` only when
    a lookup accepts it: about 2.1 KB a story, against 5.2 KB as parsed JSON, so a reader keeps the weeks
    it has read until one of their stories changes. Lookups rank exactly as `TermIndex.scored`
    does: each story's score is its weights times the query's, summed in the query's order (the same
    sums as `overlap`), best first, ties by id, the window asked of each story met.
    """

    def __init__(self, states: Sequence[str], terms: dict[str, int]) -> None:
        count = len(states)
        self._states = list(states)
        self._parsed: dict[int, StoryState] = {}
        self.size = count
        self._ids: list[str] = []
        first = np.empty(count, dtype=np.int64)
        last = np.empty(count, dtype=np.int64)
        term_ids: list[int] = []
        owners: list[int] = []
        weights: list[float] = []
        for k, state in enumerate(states):
            data = json.loads(state)
            self._ids.append(str(data["id"]))
            first[k] = _microseconds(datetime.fromisoformat(data["first_seen"]))
            last[k] = _microseconds(datetime.fromisoformat(data["last_seen"]))
            centroid: dict[str, float] = data["centroid"]
            for term, weight in centroid.items():
                term_id = terms.get(term)
                if term_id is None:
                    term_id = terms[term] = len(terms)
                term_ids.append(term_id)
                owners.append(k)
                weights.append(weight)
        order = np.argsort(np.array(term_ids, dtype=np.int32), kind="stable")
        self._term_ids = np.array(term_ids, dtype=np.int32)[order]
        self._owners = np.array(owners, dtype=np.int32)[order]
        self._weights = np.array(weights, dtype=np.float64)[order]
        self._first = first
        self._last = last
        self._terms = terms

    def state(self, k: int) -> StoryState:
        found = self._parsed.get(k)
        if found is None:
            found = self._parsed[k] = StoryState.from_json(json.loads(self._states[k]))
        return found

    def stories_for_terms(
        self, terms: Mapping[str, float], start: datetime, end: datetime, limit: int, exclude: Container[str]
    ) -> list[tuple[float, StoryState]]:
        """`StoryStore.stories_for_terms` over this week's stories."""
        scores = np.zeros(self.size, dtype=np.float64)
        shares = np.zeros(self.size, dtype=bool)
        for term, weight in terms.items():  # in the query's order, as `overlap` sums
            term_id = self._terms.get(term)
            if term_id is None:
                continue
            lo = int(np.searchsorted(self._term_ids, term_id, side="left"))
            hi = int(np.searchsorted(self._term_ids, term_id, side="right"))
            if lo == hi:
                continue
            owners = self._owners[lo:hi]
            scores[owners] += weight * self._weights[lo:hi]
            shares[owners] = True
        # The window and the exclusions `best_in_window` asks of each story popped, asked first: the same
        # stories are accepted in the same order, and none outside the window is parsed.
        shares &= (self._last >= _microseconds(start)) & (self._first <= _microseconds(end))
        ids = self._ids
        ranked = heapq.nsmallest(
            limit,
            ((-float(scores[k]), ids[k], k) for k in np.flatnonzero(shares).tolist() if ids[k] not in exclude),
        )
        return [(-score, self.state(k)) for score, _, k in ranked]


class _EitherOf:
    """The union of containers, for membership tests."""

    def __init__(self, *containers: Container[str]) -> None:
        self.containers = containers

    def __contains__(self, item: object) -> bool:
        return any(item in container for container in self.containers)


def _microseconds(moment: datetime) -> int:
    """Return a UTC moment as whole microseconds since 1970 (exact, unlike a float timestamp)."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _PastStories:
    """A read-only `StoryStore` for lookups of older articles: candidates from past weeks, the rest from the store."""

    def __init__(self, store: SqlStoryStore, windows: Sequence[_PastWindow]) -> None:
        self.store = store
        self.windows = windows

    def stories_for_terms(
        self,
        terms: Mapping[str, float],
        start: datetime,
        end: datetime,
        limit: int,
        exclude: Container[str] = frozenset(),
    ) -> list[tuple[float, StoryState]]:
        # Each week's best ``limit`` (a story open in two weeks scores the same in both): the best
        # ``limit`` of all are among them, ranked as one index ranks (best first, ties by id).
        found: dict[str, tuple[float, StoryState]] = {}
        for window in self.windows:
            for score, story in window.stories_for_terms(terms, start, end, limit, exclude):
                found[story.id] = (score, story)
        return sorted(found.values(), key=lambda item: (-item[0], item[1].id))[:limit]

    def document_frequencies(self, terms: Iterable[str]) -> dict[str, int]:
        return self.store.document_frequencies(terms)

    def document_count(self) -> int:
        return self.store.document_count()

    def story_of(self, article_id: str) -> str | None:
        return self.store.story_of(article_id)

    def resolve(self, story_id: str) -> str:
        return self.store.resolve(story_id)

    def story(self, story_id: str) -> StoryState | None:
        return self.store.story(story_id)

    def stage(self, story: StoryState) -> None:
        raise StorageError("a lookup of a past article changes no story")

    def unstage(self) -> None:
        pass  # nothing is ever staged here

    def save(self, changes: StoryChanges) -> None:
        raise StorageError("a lookup of a past article saves nothing")


def _row_select() -> sa.Select[Any]:
    s = stories_table.c
    return sa.select(s.id, s.first_seen, s.last_seen, s.members, s.outlet_count)


def _story_row(row: Any) -> StoryRow:
    return StoryRow(
        id=row.id,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        members=int(row.members),
        outlet_count=int(row.outlet_count),
    )


def _like_json_string(value: str) -> str:
    # Tags are stored as a JSON list: match the quoted value, with LIKE's own wildcards escaped.
    quoted = json.dumps(value, ensure_ascii=False)
    return "%" + quoted.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _member_filter(tags: Sequence[str], languages: Sequence[str], sources: Sequence[str]) -> Any:
    """Return a SELECT of the story's members matching the filters (for EXISTS), or None without filters."""
    if not (tags or languages or sources):
        return None
    m, e, f = story_members_table.c, entries_table.c, feeds_table.c
    query = (
        sa.select(sa.literal(1))
        .select_from(story_members_table.join(entries_table, e.id == m.entry_id).join(feeds_table, f.id == e.feed_id))
        .where(m.story_id == stories_table.c.id)
    )
    if tags:
        query = query.where(
            sa.or_(*(col.like(_like_json_string(tag), escape="\\") for tag in tags for col in (e.tags, f.tags)))
        )
    if languages:
        query = query.where(e.language.in_([lang.lower() for lang in languages]))
    if sources:
        title = sa.func.coalesce(f.config_title, f.doc_title)
        query = query.where(sa.or_(title.in_(list(sources)), f.key.in_(list(sources))))
    return query


def _upsert_for(dialect: str) -> Any:
    """Return the dialect's INSERT that takes ON CONFLICT DO UPDATE (the store runs on SQLite or PostgreSQL)."""
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert
    from sqlalchemy.dialects.postgresql import insert as postgresql_insert

    return postgresql_insert


def _meta_int(conn: Connection, key: str) -> int:
    value = conn.execute(sa.select(meta_table.c.value).where(meta_table.c.key == key)).scalar()
    return int(value) if value is not None else 0


def _version(conn: Connection) -> int:
    """Return the story version readers compare (before versions existed, the sequence cursor played that part)."""
    value = conn.execute(sa.select(meta_table.c.value).where(meta_table.c.key == STORIES_VERSION_KEY)).scalar()
    return int(value) if value is not None else _meta_int(conn, STORIES_SEQ_KEY)


def _next_version(conn: Connection) -> tuple[int, int]:
    """Take the next story version for a batch being saved; return (previous, new)."""
    m = meta_table.c
    # Incremented in the database: the row lock orders two writers, so each batch gets a version of its own.
    bumped = conn.execute(
        sa.update(meta_table)
        .where(m.key == STORIES_VERSION_KEY)
        .values(value=sa.cast(sa.cast(m.value, sa.BigInteger) + 1, sa.Text))
        .returning(m.value)
    ).scalar()
    if bumped is not None:
        return int(bumped) - 1, int(bumped)
    previous = _meta_int(conn, STORIES_SEQ_KEY)
    conn.execute(sa.insert(meta_table).values(key=STORIES_VERSION_KEY, value=str(previous + 1)))
    return previous, previous + 1


def _meta_add(conn: Connection, key: str, amount: int) -> int:
    value = _meta_int(conn, key) + amount
    changed = conn.execute(sa.update(meta_table).where(meta_table.c.key == key).values(value=str(value))).rowcount
    if not changed:
        conn.execute(sa.insert(meta_table).values(key=key, value=str(value)))
    return value


def _write_states(conn: Connection, states: Sequence[StoryState], seq: int) -> None:
    """Replace the rows of these stories with their new states, marked as written by change ``seq``."""
    s = stories_table
    if conn.dialect.name == "sqlite":
        if not states:
            return
        # Straight to the driver, as members and terms are, without SQLAlchemy's handling of each row's
        # parameters (2% of assigning the whole corpus). The times go through the column type's own
        # processor (the same text SQLAlchemy stores); REPLACE deletes a story's old row as the DELETE below does.
        when = s.c.first_seen.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
        assert when is not None  # UTCDateTime always converts (aware UTC -> naive -> SQLite's text)
        conn.exec_driver_sql(
            f"INSERT OR REPLACE INTO {s.name} (id, first_seen, last_seen, members, outlet_count, merged_into, "
            "state, updated_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    story.id,
                    when(story.first_seen),
                    when(story.last_seen),
                    story.members,
                    max(1, len(story.outlets)),
                    story.merged_into,
                    _STATE_JSON.encode(story.to_json()),
                    seq,
                )
                for story in states
            ],
        )
        return
    ids = [story.id for story in states]
    for start in range(0, len(ids), _CHUNK):
        conn.execute(sa.delete(s).where(s.c.id.in_(ids[start : start + _CHUNK])))
    if states:
        conn.execute(sa.insert(s), [state_row(story, seq) for story in states])


def state_row(story: StoryState, seq: int) -> dict[str, Any]:
    """Return a story's row of the stories table, written by change ``seq`` (SQLAlchemy's parameters)."""
    return {
        "id": story.id,
        "first_seen": story.first_seen,
        "last_seen": story.last_seen,
        "members": story.members,
        "outlet_count": max(1, len(story.outlets)),
        "merged_into": story.merged_into,
        "state": _STATE_JSON.encode(story.to_json()),
        "updated_seq": seq,
    }


def _seq_move(from_seq: int, to_seq: int) -> CursorMove:
    return lambda conn: _advance(conn, from_seq, to_seq)


def _advance(conn: Connection, from_seq: int, to_seq: int) -> None:
    """Move the cursor from ``from_seq`` to ``to_seq``, or raise StoriesMoved when another writer moved it first."""
    m = meta_table.c
    changed = conn.execute(
        sa.update(meta_table).where(m.key == STORIES_SEQ_KEY, m.value == str(from_seq)).values(value=str(to_seq))
    ).rowcount
    if changed:
        return
    current = conn.execute(sa.select(m.value).where(m.key == STORIES_SEQ_KEY)).scalar()
    if current is None and from_seq == 0:
        try:
            with conn.begin_nested():
                conn.execute(sa.insert(meta_table).values(key=STORIES_SEQ_KEY, value=str(to_seq)))
            return
        except IntegrityError:
            pass
    raise StoriesMoved(f"story assignment moved past change {from_seq} in another process")


def batch_articles(
    stories: SqlStoryStore, assigner: StoryAssigner, entries: Any, entry_ids: Sequence[str]
) -> list[StoryArticle]:
    """Return a logged batch's articles to assign, in log order and each once, first taking the entries
    gone from the store (deleted since, their feed removed or pruned) out of their stories.

    ``entry_ids`` are the batch's changes' entry ids in log order (an entry changed twice is assigned
    once); ``entries`` is what reads the kept members (``get_entries``).
    """
    ids = list(dict.fromkeys(entry_ids))
    found = stories.articles(ids)
    deleted = [entry_id for entry_id in ids if entry_id not in found]
    if deleted:
        stories.forget(assigner, entries, deleted)
    return [found[entry_id] for entry_id in ids if entry_id in found]


def assign_pending(
    changes: Any,
    stories: SqlStoryStore,
    assigner: StoryAssigner,
    *,
    batch_size: int = 1000,
    stop: threading.Event | None = None,
) -> int:
    """Assign stories to the entries logged since the story cursor, in change-log order; return how many.

    ``changes`` is the store (``changes_since``). A batch another process assigned first is dropped
    and the loop goes on from where that process got to.
    """
    assigned = 0
    stories.refresh()
    while not (stop is not None and stop.is_set()):
        seq = stories.cursor()
        batch = stories.changes_after(seq, batch_size)
        if not batch:
            break
        with collector_paused():  # the batch's reading too (see SqlStoryStore.assign_moving)
            articles = batch_articles(stories, assigner, changes, [entry_id for _, entry_id in batch])
            try:
                assigned += stories.assign(assigner, articles, seq, batch[-1][0])
            except StoriesMoved as exc:
                log.info("%s; going on from there", exc)
                stories.refresh()
    return assigned


def open_between(start: datetime, end: datetime) -> sa.Select[Any]:
    """Return the query for the states of the standing stories open at some time between ``start`` and ``end``."""
    s = stories_table.c
    return sa.select(s.state).where(s.merged_into.is_(None), s.last_seen >= start, s.first_seen <= end)
