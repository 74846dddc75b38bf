"""The database: the only package part that speaks SQL. Source of truth for feeds, entries and the change log.

Split in three: ``tables`` (schema and engines), ``store_entries`` (entries and the change log)
and this module (the Store itself: lifecycle, feeds and polling state, the single writer).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import SQLAlchemyError

from . import schema_pg
from . import tables_stories as _tables_stories  # noqa: F401  (registers the story tables for create_all)
from .errors import StorageError
from .hosts import display_title
from .models import Feed, FeedUpdate
from .store_entries import EntryStore
from .store_errors import database_errors, describe
from .tables import (
    SCHEMA_VERSION,
    _now,
    add_column,
    changes_table,
    content_hash,
    create_engine_for,
    entries_table,
    entry_digests_table,
    feeds_table,
    meta_table,
    metadata,
    missing_columns,
)

__all__ = ["SCHEMA_VERSION", "Store", "content_hash", "create_engine_for", "open_store"]


@database_errors
class Store(EntryStore):
    """Feeds, entries and the change log in one SQL database."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine = create_engine_for(url)
        except (SQLAlchemyError, ImportError) as exc:
            raise StorageError(f"cannot open the database {url!r}: {exc}") from exc
        # One writer at a time in this process keeps the change log's sequence in commit order.
        self._write_lock = threading.RLock()
        self._local = _OpenTransaction()

    # ------------------------------------------------------------------ lifecycle

    def migrate(self) -> None:
        """Create or upgrade the schema to SCHEMA_VERSION; refuse a newer database."""
        try:
            with self.engine.begin() as conn:
                # Several processes (or nodes sharing one PostgreSQL store) may start at once.
                _lock_for_migration(conn)
                postgres = conn.dialect.name == "postgresql"
                metadata.create_all(conn)
                # create_all makes only missing tables: an index added to a table that exists is made here.
                for known in metadata.sorted_tables:
                    for index in known.indexes:
                        index.create(conn, checkfirst=True)
                row = conn.execute(sa.select(meta_table.c.value).where(meta_table.c.key == "schema_version")).first()
                if row is None:
                    conn.execute(sa.insert(meta_table).values(key="schema_version", value=str(SCHEMA_VERSION)))
                elif int(row[0]) > SCHEMA_VERSION:
                    raise StorageError(
                        f"the database schema is version {row[0]}, newer than this Newsdesk knows "
                        f"({SCHEMA_VERSION}); upgrade Newsdesk"
                    )
                elif int(row[0]) < SCHEMA_VERSION:
                    # Every step so far only added tables (which create_all has just made) and nullable columns.
                    for table, column in missing_columns(conn):
                        add_column(conn, table, column)
                    conn.execute(
                        sa.update(meta_table)
                        .where(meta_table.c.key == "schema_version")
                        .values(value=str(SCHEMA_VERSION))
                    )
                if postgres and (row is None or int(row[0]) < 3):
                    # Once, when the tables are made or upgraded: ALTER TABLE locks the change log.
                    schema_pg.prepare(conn, backfill=row is not None)
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot prepare the database {self.url!r}: {describe(exc)}") from exc

    def schema_version(self) -> int:
        """Return the schema version recorded in the database."""
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(meta_table.c.value).where(meta_table.c.key == "schema_version")).scalar()
        return int(value or 0)

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    def _write(self) -> Any:
        conn = self._local.conn
        return _WriteTransaction(self) if conn is None else nullcontext(conn)

    def _read(self) -> Any:
        # Inside transaction(), reads see what it has written so far.
        conn = self._local.conn
        return self.engine.connect() if conn is None else nullcontext(conn)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run this thread's store calls inside as one write transaction: one commit, all or nothing.

        A poll's check writes entries, digests and the feed's state; committing them together
        costs one commit instead of two, and a failure leaves none of them half-written.
        """
        if self._local.conn is not None:
            yield
            return
        with _WriteTransaction(self) as conn:
            self._local.conn = conn
            try:
                yield
            finally:
                self._local.conn = None

    # ------------------------------------------------------------------ feeds

    def add_feed(
        self,
        url: str,
        *,
        title: str | None = None,
        tags: Sequence[str] = (),
        interval_seconds: int | None = None,
        user_agent: str | None = None,
        timezone: str = "UTC",
        full_content: bool = False,
        enabled: bool = True,
        origin: str = "cli",
        next_check_at: datetime | None = None,
    ) -> Feed:
        """Return the feed stored for ``url``, inserting it (or updating its options) as needed."""
        values = {
            "config_title": title or None,
            "tags": json.dumps(list(tags)),
            "interval_seconds": interval_seconds,
            "user_agent": user_agent or None,
            "timezone": timezone,
            "full_content": full_content,
        }
        with self._write() as conn:
            existing = conn.execute(
                sa.select(feeds_table.c.id, feeds_table.c.enabled, feeds_table.c.disabled_reason).where(
                    sa.or_(feeds_table.c.url == url, feeds_table.c.key == url)
                )
            ).first()
            if existing is None:
                feed_id = conn.execute(
                    sa.insert(feeds_table).values(
                        key=url,
                        url=url,
                        origin=origin,
                        enabled=enabled,
                        disabled_reason=None if enabled else "disabled in the configuration",
                        next_check_at=next_check_at or _now(),
                        created_at=_now(),
                        consecutive_failures=0,
                        pending_redirect_count=0,
                        **values,
                    )
                ).inserted_primary_key[0]
            else:
                feed_id = existing.id
                if not enabled:
                    values.update(enabled=False, disabled_reason="disabled in the configuration")
                elif not existing.enabled and existing.disabled_reason == "disabled in the configuration":
                    values.update(enabled=True, disabled_reason=None)
                conn.execute(sa.update(feeds_table).where(feeds_table.c.id == feed_id).values(**values))
        feed = self.get_feed(int(feed_id))
        assert feed is not None
        return feed

    def update_feed_options(
        self, feed_id: int, *, title: str | None = None, tags: Sequence[str] | None = None
    ) -> Feed | None:
        """Change only the options given (None keeps the stored value); return the feed, or None if absent."""
        values: dict[str, Any] = {}
        if title is not None:
            values["config_title"] = title or None
        if tags is not None:
            values["tags"] = json.dumps(list(tags))
        if values:
            with self._write() as conn:
                conn.execute(sa.update(feeds_table).where(feeds_table.c.id == feed_id).values(**values))
        return self.get_feed(feed_id)

    def remove_feed(self, feed_id: int) -> int:
        """Delete a feed and its entries (logging each deletion); return how many entries went."""
        with self._write() as conn:
            ids = [r[0] for r in conn.execute(sa.select(entries_table.c.id).where(entries_table.c.feed_id == feed_id))]
            now = _now()
            if ids:
                conn.execute(sa.insert(changes_table), [{"entry_id": i, "op": "delete", "at": now} for i in ids])
            conn.execute(sa.delete(entry_digests_table).where(entry_digests_table.c.feed_id == feed_id))
            conn.execute(sa.delete(entries_table).where(entries_table.c.feed_id == feed_id))
            conn.execute(sa.delete(feeds_table).where(feeds_table.c.id == feed_id))
        return len(ids)

    def set_feed_enabled(self, feed_id: int, enabled: bool, reason: str | None = None) -> None:
        """Enable a feed, or disable it with a reason shown to operators."""
        with self._write() as conn:
            conn.execute(
                sa.update(feeds_table)
                .where(feeds_table.c.id == feed_id)
                .values(enabled=enabled, disabled_reason=None if enabled else (reason or "disabled"))
            )

    def _feed_select(self) -> sa.Select[Any]:
        counts = (
            sa.select(entries_table.c.feed_id, sa.func.count().label("entry_count"))
            .group_by(entries_table.c.feed_id)
            .subquery()
        )
        return sa.select(feeds_table, sa.func.coalesce(counts.c.entry_count, 0).label("entry_count")).outerjoin(
            counts, counts.c.feed_id == feeds_table.c.id
        )

    @staticmethod
    def _feed(row: Row[Any]) -> Feed:
        m = row._mapping
        return Feed(
            id=m["id"],
            key=m["key"],
            url=m["url"],
            title=display_title(m["config_title"], m["doc_title"], m["url"]),
            site_url=m["site_url"],
            tags=tuple(json.loads(m["tags"] or "[]")),
            enabled=bool(m["enabled"]),
            disabled_reason=m["disabled_reason"],
            interval_seconds=m["interval_seconds"],
            user_agent=m["user_agent"],
            timezone=m["timezone"] or "UTC",
            full_content=bool(m["full_content"]),
            etag=m["etag"],
            last_modified=m["last_modified"],
            last_checked_at=m["last_checked_at"],
            last_success_at=m["last_success_at"],
            last_status=m["last_status"],
            last_error=m["last_error"],
            consecutive_failures=m["consecutive_failures"] or 0,
            next_check_at=m["next_check_at"],
            retry_after_until=m["retry_after_until"],
            pending_redirect_url=m["pending_redirect_url"],
            pending_redirect_since=m["pending_redirect_since"],
            pending_redirect_count=m["pending_redirect_count"] or 0,
            entries_per_week=m["entries_per_week"],
            min_interval_seconds=m["min_interval_seconds"],
            entry_count=int(m["entry_count"] or 0),
            body_hash=m["body_hash"],
        )

    def get_feed(self, feed_id: int) -> Feed | None:
        """Return the feed with this id, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(self._feed_select().where(feeds_table.c.id == feed_id)).first()
        return None if row is None else self._feed(row)

    def find_feed(self, url_or_key: str) -> Feed | None:
        """Return the feed whose URL or key is this, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(
                self._feed_select().where(sa.or_(feeds_table.c.url == url_or_key, feeds_table.c.key == url_or_key))
            ).first()
        return None if row is None else self._feed(row)

    def list_feeds(self, *, enabled_only: bool = False, counts: bool = True, tagged_only: bool = False) -> list[Feed]:
        """Return every feed, ordered by id; with ``counts=False`` their entry_count is 0, not counted.

        Counting reads every entry's row in an index (60 ms at 200,000 entries on SQLite): callers
        that need only the feeds' settings, such as the front page on every request, skip it. With
        ``tagged_only`` only feeds carrying a tag are read (the front page's sections need no others:
        with 9,000 untagged outlets, reading them all cost it a second).
        """
        if counts:
            query = self._feed_select().order_by(feeds_table.c.id)
        else:
            query = sa.select(feeds_table, sa.literal(0).label("entry_count")).order_by(feeds_table.c.id)
        if enabled_only:
            query = query.where(feeds_table.c.enabled.is_(True))
        if tagged_only:
            query = query.where(feeds_table.c.tags != "[]")
        with self.engine.connect() as conn:
            return [self._feed(r) for r in conn.execute(query)]

    def count_feeds(self, *, enabled_only: bool = False) -> int:
        """Return how many feeds there are (only the enabled ones with ``enabled_only``)."""
        query = sa.select(sa.func.count()).select_from(feeds_table)
        if enabled_only:
            query = query.where(feeds_table.c.enabled.is_(True))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def feed_origins(self) -> dict[int, str]:
        """Return each feed's origin ("config", "cli", "opml") by id."""
        with self.engine.connect() as conn:
            return {r.id: r.origin for r in conn.execute(sa.select(feeds_table.c.id, feeds_table.c.origin))}

    def due_feeds(self, now: datetime) -> list[Feed]:
        """Return enabled feeds whose next check is due at ``now``, earliest first."""
        query = (
            self._feed_select()
            .where(feeds_table.c.enabled.is_(True))
            .where(sa.or_(feeds_table.c.next_check_at.is_(None), feeds_table.c.next_check_at <= now))
            .order_by(feeds_table.c.next_check_at)
        )
        with self.engine.connect() as conn:
            return [self._feed(r) for r in conn.execute(query)]

    def apply_feed_update(
        self,
        feed_id: int,
        update: FeedUpdate,
        *,
        entries_per_week: float | None = None,
        body_hash: str | None = None,
    ) -> None:
        """Store the polling state an update decided, a new publishing rate and body hash if given (one write)."""
        values: dict[str, Any] = {
            "last_checked_at": update.checked_at,
            "last_status": update.status,
            "last_error": update.error,
            "consecutive_failures": update.consecutive_failures,
            "next_check_at": update.next_check_at,
            "retry_after_until": update.retry_after_until,
            "pending_redirect_url": update.pending_redirect_url,
            "pending_redirect_since": update.pending_redirect_since,
            "pending_redirect_count": update.pending_redirect_count,
        }
        if update.success:
            values["last_success_at"] = update.checked_at
        if update.status == 200:
            # A 200 replaces the validators, even with none (the server stopped sending them).
            values["etag"] = update.etag
            values["last_modified"] = update.last_modified
        if update.status == 200 or update.min_interval_seconds is not None:
            # A 200 says afresh what the feed asks for (nothing, when it stopped asking).
            values["min_interval_seconds"] = update.min_interval_seconds
        if entries_per_week is not None:
            values["entries_per_week"] = entries_per_week
        if body_hash is not None:
            values["body_hash"] = body_hash
        if update.title:
            values["doc_title"] = update.title
        if update.site_url:
            values["site_url"] = update.site_url
        if update.disable_reason:
            values["enabled"] = False
            values["disabled_reason"] = update.disable_reason
        with self._write() as conn:
            if update.new_url:
                taken = conn.execute(
                    sa.select(feeds_table.c.id).where(feeds_table.c.url == update.new_url, feeds_table.c.id != feed_id)
                ).first()
                if taken is None:
                    values["url"] = update.new_url
            conn.execute(sa.update(feeds_table).where(feeds_table.c.id == feed_id).values(**values))

    def recent_publication_dates(self, feed_id: int, since: datetime) -> list[datetime]:
        """Return the publication dates of the feed's entries since ``since`` whose date the feed gave."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(entries_table.c.published_at).where(
                    entries_table.c.feed_id == feed_id,
                    entries_table.c.published_at >= since,
                    # A missing date falls back to "first seen", which says nothing about the rate.
                    entries_table.c.flags.not_like('%"date_missing"%'),
                )
            )
            return [r[0] for r in rows]

    # ------------------------------------------------------------------ monitoring (cheap aggregate reads)

    def feed_state_counts(self) -> dict[tuple[bool, str | None, bool, bool], int]:
        """Return how many feeds share each (enabled, disabled reason, ever checked, failing) combination."""
        f = feeds_table.c
        checked = f.last_checked_at.is_not(None)
        failing = f.consecutive_failures > 0
        query = sa.select(f.enabled, f.disabled_reason, checked, failing, sa.func.count()).group_by(
            f.enabled, f.disabled_reason, checked, failing
        )
        with self.engine.connect() as conn:
            return {
                (bool(enabled), reason, bool(was_checked), bool(is_failing)): int(count)
                for enabled, reason, was_checked, is_failing, count in conn.execute(query)
            }

    def last_check_at(self) -> datetime | None:
        """Return when any feed was last checked, or None when none ever was."""
        with self.engine.connect() as conn:
            value: datetime | None = conn.execute(sa.select(sa.func.max(feeds_table.c.last_checked_at))).scalar()
        return value

    def oldest_due_at(self, now: datetime) -> datetime | None:
        """Return the due time of the enabled feed that has waited longest past it, or None when none is due."""
        f = feeds_table.c
        # A feed never scheduled is due since it was added.
        due = sa.func.coalesce(f.next_check_at, f.created_at)
        query = sa.select(sa.func.min(due)).where(f.enabled.is_(True), due <= now)
        with self.engine.connect() as conn:
            value: datetime | None = conn.execute(query).scalar()
        return value


#: PostgreSQL advisory lock key taken while the schema is created or upgraded (any constant will do).
_MIGRATION_LOCK_KEY = 0x6E657773  # "news"


def _lock_for_migration(conn: Connection) -> None:
    """Make this transaction the only one creating or upgrading the schema until it commits.

    Processes started together (`run`, two `serve`, a CLI command) all migrate at start; create_all
    checks for each table and then creates it, and two of them interleaving failed with "table
    meta already exists".
    """
    if conn.dialect.name == "sqlite":
        # pysqlite starts transactions lazily, before the first INSERT, so the checks and CREATE
        # TABLEs of create_all would each run on their own; BEGIN IMMEDIATE takes the write lock
        # now (waiting up to busy_timeout for another process's migration to commit).
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})


class _OpenTransaction(threading.local):
    """The connection of the ``Store.transaction()`` this thread has open, if any."""

    conn: Connection | None = None


class _WriteTransaction:
    """A write transaction under the store's writer lock, turning database errors into StorageError."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._context: Any = None

    def __enter__(self) -> Connection:
        self.store._write_lock.acquire()
        try:
            self._context = self.store.engine.begin()
            conn: Connection = self._context.__enter__()
        except SQLAlchemyError as exc:
            self.store._write_lock.release()
            raise StorageError(f"cannot write to the database: {describe(exc)}") from exc
        except BaseException:
            self.store._write_lock.release()
            raise
        return conn

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            self._context.__exit__(exc_type, exc, tb)
        except SQLAlchemyError as error:
            raise StorageError(f"cannot write to the database: {describe(error)}") from error
        finally:
            self.store._write_lock.release()
        if isinstance(exc, SQLAlchemyError):
            raise StorageError(f"cannot write to the database: {describe(exc)}") from exc


def open_store(url: str) -> Store:
    """Return a Store for ``url`` with its schema created or upgraded."""
    store = Store(url)
    store.migrate()
    return store
