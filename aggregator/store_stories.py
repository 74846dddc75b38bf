"""Stories in the database: the SQL `StoryStore`, the writer that assigns new entries, and the reads pages need.

The assigner (`aggregator.stories`) is pure; this module keeps its state in the store, the source
of truth, so `reindex`, a restart and every web process see the same stories. One writer consumes
the change log in order (`assign_pending`): each batch's `StoryChanges` and the advanced cursor
are written in one transaction, guarded by a compare-and-set on the cursor so two writers (a `run`
and a `poll --once`) can never assign a batch twice. Readers keep the recent stories' centroids in
memory and load only what changed since (``stories.updated_seq``). A lookup (`find`) for an article
older than that view reads the stories open around its date from the database (`_PastStories`).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from .errors import StorageError
from .models import Entry
from .stories import StoryArticle, StoryAssigner, StoryChanges, StoryMatch, StoryState, article_from_entry
from .stories.state import TermIndex, in_window
from .tables import entries_table, feeds_table, meta_table
from .tables_stories import (
    STORIES_DOCUMENTS_KEY,
    STORIES_SEQ_KEY,
    stories_table,
    story_aliases_table,
    story_members_table,
    story_terms_table,
)

__all__ = ["SqlStoryStore", "StoryRow", "assign_pending"]

log = logging.getLogger("newsdesk.stories")

#: Rows per IN (...) list: well under SQLite's bound on variables.
_CHUNK = 500
#: Days of past stories a reader keeps loaded for lookups of older articles (until the stories change).
_PAST_DAYS = 16


class StoriesMoved(StorageError):
    """Another writer advanced the story cursor first: this batch's work is dropped, the cache reloaded."""


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


class SqlStoryStore:
    """The `StoryStore` protocol over the database, with an in-memory view of the recent stories.

    Thread-safe through ``lock``: the writer holds it for a batch, readers (``find``) for a lookup.
    """

    def __init__(self, engine: Engine, *, retain: timedelta = timedelta(days=4)) -> None:
        self.engine = engine
        #: Held while the in-memory view is read or changed.
        self.lock = threading.RLock()
        # Stories quiet longer than this before the newest are not kept in memory (the assigner asks
        # only for stories open at an article's time): above the quiet period plus late arrivals.
        self._retain = retain
        self._loaded_seq = -1
        self._stories: dict[str, StoryState] = {}
        self._index = TermIndex()
        self._aliases: dict[str, str] = {}
        self._frequencies: dict[str, int] = {}
        self._documents = 0
        self._known: dict[str, str | None] = {}
        self._target: tuple[int, int] | None = None
        self._saved = False
        # Stories whose last article is older than this are not in memory (None: all are).
        self._horizon: datetime | None = None
        # Day -> the stories open around it, read from the database for lookups of older articles.
        self._past: OrderedDict[date, _PastWindow] = OrderedDict()

    # ------------------------------------------------------------------ cursor and cache

    def cursor(self) -> int:
        """Return the change-log sequence story assignment has consumed (0 before the first batch)."""
        with self.engine.connect() as conn:
            return _meta_int(conn, STORIES_SEQ_KEY)

    def refresh(self) -> None:
        """Load what other writers changed since this view was last loaded (cheap when nothing did)."""
        with self.lock, self.engine.connect() as conn:
            seq = _meta_int(conn, STORIES_SEQ_KEY)
            if seq == self._loaded_seq:
                return
            self._past.clear()  # stories changed: past windows are read again when asked
            s = stories_table.c
            query = sa.select(s.state).where(s.merged_into.is_(None))
            if self._loaded_seq < 0 or seq < self._loaded_seq:
                self._reset()
                newest = conn.execute(sa.select(sa.func.max(s.last_seen))).scalar()
                if newest is not None:
                    self._horizon = newest - self._retain
                    query = query.where(s.last_seen >= self._horizon)
                aliases = conn.execute(sa.select(story_aliases_table.c.alias, story_aliases_table.c.story_id))
            else:
                query = sa.select(s.state).where(s.updated_seq > self._loaded_seq)
                aliases = conn.execute(
                    sa.select(story_aliases_table.c.alias, story_aliases_table.c.story_id).where(
                        story_aliases_table.c.seq > self._loaded_seq
                    )
                )
            self._aliases.update({alias: story_id for alias, story_id in aliases})
            for (state,) in conn.execute(query):
                self._put(StoryState.from_json(json.loads(state)))
            self._documents = _meta_int(conn, STORIES_DOCUMENTS_KEY)
            self._frequencies.clear()  # others counted terms too: read them afresh
            self._loaded_seq = seq

    def _reset(self) -> None:
        self._horizon = None
        self._past.clear()
        self._stories.clear()
        self._index = TermIndex()
        self._aliases.clear()
        self._frequencies.clear()

    def _put(self, story: StoryState) -> None:
        if story.merged_into is None:
            self._stories[story.id] = story
        else:
            self._stories.pop(story.id, None)
        self._index.put(story)

    # ------------------------------------------------------------------ the StoryStore protocol

    def stories_for_terms(
        self, terms: Mapping[str, float], start: datetime, end: datetime, limit: int
    ) -> list[StoryState]:
        """Return up to ``limit`` unmerged stories sharing a term and overlapping [start, end], best first."""
        stories = self._stories
        ranked = self._index.ranked(
            terms, limit, lambda story_id: story_id in stories and in_window(stories[story_id], start, end)
        )
        return [stories[story_id] for story_id in ranked]

    def document_frequencies(self, terms: Iterable[str]) -> dict[str, int]:
        """Return term -> number of counted articles containing it."""
        terms = list(terms)
        cache = self._frequencies
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

    def save_at(self, changes: StoryChanges, from_seq: int, to_seq: int) -> None:
        """Persist changes made from the change log (from_seq, to_seq] and advance the cursor (one transaction)."""
        with self.lock:
            self._target = (from_seq, to_seq)
            try:
                self.save(changes)
            finally:
                self._target = None

    def save(self, changes: StoryChanges) -> None:
        """Persist a batch's changes and advance the cursor, all in one transaction (see `assign_pending`)."""
        target = self._target
        if target is None:
            raise StorageError("story changes are saved only by assign_pending, which advances the cursor")
        seq = target[1]
        try:
            with self.engine.begin() as conn:
                _advance(conn, *target)
                self._write(conn, changes, seq)
        except SQLAlchemyError as exc:
            self._loaded_seq = -1
            raise StorageError(f"cannot save stories: {exc}") from exc
        except StoriesMoved:
            self._loaded_seq = -1
            raise
        self._saved = True
        # The database has it; the in-memory view follows without reading it back.
        final = dict(changes.aliases)
        for alias, story_id in final.items():
            self._aliases[alias] = self._final(story_id, final)
        for alias, story_id in list(self._aliases.items()):
            if story_id in final:
                self._aliases[alias] = self._final(story_id, final)
        for story in changes.stories:
            self._put(story)
        for term, count in changes.frequencies.items():
            if term in self._frequencies:
                self._frequencies[term] += count
        self._documents += changes.documents
        self._loaded_seq = seq
        self._past.clear()

    def _final(self, story_id: str, pending: Mapping[str, str]) -> str:
        for _ in range(1000):  # a chain, never a cycle; the bound guards anyway
            nxt = pending.get(story_id) or self._aliases.get(story_id)
            if nxt is None or nxt == story_id:
                break
            story_id = nxt
        return story_id

    def _write(self, conn: Connection, changes: StoryChanges, seq: int) -> None:
        s = stories_table
        ids = [story.id for story in changes.stories]
        for start in range(0, len(ids), _CHUNK):
            conn.execute(sa.delete(s).where(s.c.id.in_(ids[start : start + _CHUNK])))
        if changes.stories:
            conn.execute(
                sa.insert(s),
                [
                    {
                        "id": story.id,
                        "first_seen": story.first_seen,
                        "last_seen": story.last_seen,
                        "members": story.members,
                        "outlet_count": max(1, len(story.outlets)),
                        "merged_into": story.merged_into,
                        "state": json.dumps(story.to_json(), ensure_ascii=False),
                        "updated_seq": seq,
                    }
                    for story in changes.stories
                ],
            )
        if changes.assignments:
            conn.execute(
                sa.insert(story_members_table),
                [{"entry_id": a, "story_id": story_id, "seq": seq} for a, story_id in changes.assignments],
            )
        pending = dict(changes.aliases)
        m, al = story_members_table, story_aliases_table
        for alias, story_id in changes.aliases:
            final = self._final(story_id, pending)
            # Members and older aliases move to the survivor, so every read is one lookup.
            conn.execute(sa.update(m).where(m.c.story_id == alias).values(story_id=final))
            conn.execute(sa.update(al).where(al.c.story_id == alias).values(story_id=final, seq=seq))
            conn.execute(sa.delete(al).where(al.c.alias == alias))
            conn.execute(sa.insert(al).values(alias=alias, story_id=final, seq=seq))
        self._count_terms(conn, changes.frequencies)
        if changes.documents:
            _meta_add(conn, STORIES_DOCUMENTS_KEY, changes.documents)

    @staticmethod
    def _count_terms(conn: Connection, frequencies: Mapping[str, int]) -> None:
        t = story_terms_table
        terms = list(frequencies)
        existing: set[str] = set()
        for start in range(0, len(terms), _CHUNK):
            chunk = terms[start : start + _CHUNK]
            existing.update(conn.execute(sa.select(t.c.term).where(t.c.term.in_(chunk))).scalars())
        updates = [{"t": term, "n": frequencies[term]} for term in terms if term in existing]
        inserts = [{"term": term, "documents": frequencies[term]} for term in terms if term not in existing]
        if updates:
            conn.execute(
                sa.update(t).where(t.c.term == sa.bindparam("t")).values(documents=t.c.documents + sa.bindparam("n")),
                updates,
            )
        if inserts:
            conn.execute(sa.insert(t), inserts)

    # ------------------------------------------------------------------ the writer's batch

    def assign(self, assigner: StoryAssigner, articles: Sequence[StoryArticle], from_seq: int, to_seq: int) -> int:
        """Assign a batch of articles taken from the change log (from_seq, to_seq]; return how many were new."""
        with self.lock:
            self._known = self._members([article.id for article in articles])
            self._target = (from_seq, to_seq)
            self._saved = False
            try:
                results = assigner.assign_many(articles)
                if not self._saved:
                    with self.engine.begin() as conn:
                        _advance(conn, from_seq, to_seq)
                    self._loaded_seq = to_seq
            finally:
                self._target = None
                self._known = {}
        return sum(1 for result in results if not result.repeated)

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

    def find(self, assigner: StoryAssigner, article: StoryArticle) -> StoryMatch | None:
        """Return the story an article we do not store belongs to (read-only), or None."""
        self.refresh()
        with self.lock:
            quiet = timedelta(hours=assigner.settings.quiet_period_hours)
            if self._horizon is None or article.published_at - quiet >= self._horizon:
                return assigner.find(article)
            # An embedding page asks about an article older than the stories kept in memory (a page
            # read a week after it was published): the stories open around its day, from the database.
            past = _PastStories(self, self._past_window(article.published_at.date(), quiet))
            return StoryAssigner(past, assigner.settings).find(article)

    def _past_window(self, day: date, quiet: timedelta) -> _PastWindow:
        """Return the unmerged stories open within ``quiet`` of ``day`` (any time of it), indexed by term."""
        window = self._past.get(day)
        if window is not None:
            self._past.move_to_end(day)
            return window
        start = datetime.combine(day, time.min, tzinfo=UTC) - quiet
        end = datetime.combine(day, time.max, tzinfo=UTC) + quiet
        s = stories_table.c
        window = _PastWindow()
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(s.state).where(s.merged_into.is_(None), s.last_seen >= start, s.first_seen <= end)
            )
            for (state,) in rows:
                window.put(StoryState.from_json(json.loads(state)))
        self._past[day] = window
        while len(self._past) > _PAST_DAYS:
            self._past.popitem(last=False)
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


class _PastWindow:
    """Stories read from the database for one past day, with their term index."""

    def __init__(self) -> None:
        self.stories: dict[str, StoryState] = {}
        self.index = TermIndex()

    def put(self, story: StoryState) -> None:
        self.stories[story.id] = story
        self.index.put(story)


class _PastStories:
    """A read-only `StoryStore` for lookups of older articles: candidates from a past window, the rest from the store."""

    def __init__(self, store: SqlStoryStore, window: _PastWindow) -> None:
        self.store = store
        self.window = window

    def stories_for_terms(
        self, terms: Mapping[str, float], start: datetime, end: datetime, limit: int
    ) -> list[StoryState]:
        stories = self.window.stories
        ranked = self.window.index.ranked(terms, limit, lambda i: in_window(stories[i], start, end))
        return [stories[story_id] for story_id in ranked]

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


def _meta_int(conn: Connection, key: str) -> int:
    value = conn.execute(sa.select(meta_table.c.value).where(meta_table.c.key == key)).scalar()
    return int(value) if value is not None else 0


def _meta_add(conn: Connection, key: str, amount: int) -> None:
    value = _meta_int(conn, key) + amount
    changed = conn.execute(sa.update(meta_table).where(meta_table.c.key == key).values(value=str(value))).rowcount
    if not changed:
        conn.execute(sa.insert(meta_table).values(key=key, value=str(value)))


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
        batch = changes.changes_since(seq, limit=batch_size)
        if not batch:
            break
        seen: set[str] = set()
        articles: list[StoryArticle] = []
        for change in batch:
            entry: Entry | None = change.entry
            if entry is not None and entry.id not in seen:
                seen.add(entry.id)
                articles.append(article_from_entry(entry))
        try:
            assigned += stories.assign(assigner, articles, seq, batch[-1].seq)
        except StoriesMoved as exc:
            log.info("%s; going on from there", exc)
            stories.refresh()
    return assigned
