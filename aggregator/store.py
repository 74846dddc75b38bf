"""The database: the only module that speaks SQL. Source of truth for feeds, entries and the change log."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import SQLAlchemyError

from .errors import StorageError
from .models import Change, Entry, Feed, FeedUpdate, Image, Source

#: Bump when the schema changes; `migrate()` knows how to get from each older version.
SCHEMA_VERSION = 2
# 1 -> 2: the entry_digests table (created by create_all; nothing else changes).


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC: the same on SQLite (no zones) and PostgreSQL."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise StorageError("naive datetime given to the store; Newsdesk keeps UTC-aware datetimes only")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


metadata = sa.MetaData()

meta_table = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

feeds_table = sa.Table(
    "feeds",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.Text, nullable=False, unique=True),
    sa.Column("url", sa.Text, nullable=False, unique=True),
    sa.Column("origin", sa.String(16), nullable=False, default="config"),
    sa.Column("config_title", sa.Text),
    sa.Column("doc_title", sa.Text),
    sa.Column("site_url", sa.Text),
    sa.Column("tags", sa.Text, nullable=False, default="[]"),
    sa.Column("enabled", sa.Boolean, nullable=False, default=True),
    sa.Column("disabled_reason", sa.Text),
    sa.Column("interval_seconds", sa.Integer),
    sa.Column("user_agent", sa.Text),
    sa.Column("timezone", sa.String(64), nullable=False, default="UTC"),
    sa.Column("full_content", sa.Boolean, nullable=False, default=False),
    sa.Column("etag", sa.Text),
    sa.Column("last_modified", sa.Text),
    sa.Column("last_checked_at", UTCDateTime),
    sa.Column("last_success_at", UTCDateTime),
    sa.Column("last_status", sa.Integer),
    sa.Column("last_error", sa.Text),
    sa.Column("consecutive_failures", sa.Integer, nullable=False, default=0),
    sa.Column("next_check_at", UTCDateTime),
    sa.Column("retry_after_until", UTCDateTime),
    sa.Column("pending_redirect_url", sa.Text),
    sa.Column("pending_redirect_since", UTCDateTime),
    sa.Column("pending_redirect_count", sa.Integer, nullable=False, default=0),
    sa.Column("entries_per_week", sa.Float),
    sa.Column("min_interval_seconds", sa.Integer),
    sa.Column("body_hash", sa.String(64)),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

entries_table = sa.Table(
    "entries",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("feed_id", sa.Integer, sa.ForeignKey("feeds.id", ondelete="CASCADE"), nullable=False),
    sa.Column("identity", sa.Text, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("authors", sa.Text, nullable=False),
    sa.Column("published_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime),
    sa.Column("first_seen_at", UTCDateTime, nullable=False),
    sa.Column("last_changed_at", UTCDateTime, nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("content_html", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("image_url", sa.Text),
    sa.Column("image_caption", sa.Text),
    sa.Column("tags", sa.Text, nullable=False),
    sa.Column("language", sa.String(16)),
    sa.Column("word_count", sa.Integer, nullable=False),
    sa.Column("fingerprint", sa.BigInteger, nullable=False),
    sa.Column("flags", sa.Text, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Index("ix_entries_url", "url"),
    sa.Index("ix_entries_feed_published", "feed_id", "published_at"),
)

# The change log the indexer consumes: one row per insert, update or delete of an entry.
changes_table = sa.Table(
    "changes",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("entry_id", sa.String(64), nullable=False),
    sa.Column("op", sa.String(8), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Index("ix_changes_entry", "entry_id"),
)


# What each feed's last parsed document held, item by item: digest of the raw item -> the entry it
# became. A later poll of a changed document normalizes only items whose digest is not here.
entry_digests_table = sa.Table(
    "entry_digests",
    metadata,
    sa.Column("feed_id", sa.Integer, sa.ForeignKey("feeds.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("digest", sa.String(32), primary_key=True),
    sa.Column("entry_id", sa.String(64), nullable=False),
)


def _now() -> datetime:
    return datetime.now(UTC)


def host_title(url: str) -> str:
    """Return a readable stand-in title for a feed: its host name, or the file name."""
    parts = urlsplit(url)
    if parts.hostname:
        return parts.hostname.removeprefix("www.")
    return Path(parts.path or url).name or url


def content_hash(entry: Entry) -> str:
    """Return a digest of the fields whose change means the entry must be re-indexed."""
    return hashlib.sha256(repr(entry.content_key()).encode("utf-8", "surrogatepass")).hexdigest()


def _set_sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets web workers read while the single writer writes; NORMAL sync is safe with WAL.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def create_engine_for(url: str) -> Engine:
    """Return an Engine for a sqlite:// or postgresql:// URL, creating the SQLite directory."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _set_sqlite_pragmas)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


class Store:
    """Feeds, entries and the change log in one SQL database."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine = create_engine_for(url)
        except (SQLAlchemyError, ImportError) as exc:
            raise StorageError(f"cannot open the database {url!r}: {exc}") from exc
        # One writer at a time in this process keeps the change log's sequence in commit order.
        self._write_lock = threading.RLock()

    # ------------------------------------------------------------------ lifecycle

    def migrate(self) -> None:
        """Create or upgrade the schema to SCHEMA_VERSION; refuse a newer database."""
        try:
            with self.engine.begin() as conn:
                metadata.create_all(conn)
                row = conn.execute(sa.select(meta_table.c.value).where(meta_table.c.key == "schema_version")).first()
                if row is None:
                    conn.execute(sa.insert(meta_table).values(key="schema_version", value=str(SCHEMA_VERSION)))
                elif int(row[0]) > SCHEMA_VERSION:
                    raise StorageError(
                        f"the database schema is version {row[0]}, newer than this Newsdesk knows "
                        f"({SCHEMA_VERSION}); upgrade Newsdesk"
                    )
                elif int(row[0]) < SCHEMA_VERSION:
                    # Every step so far only added tables, which create_all has just made.
                    conn.execute(
                        sa.update(meta_table)
                        .where(meta_table.c.key == "schema_version")
                        .values(value=str(SCHEMA_VERSION))
                    )
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot prepare the database {self.url!r}: {exc}") from exc

    def schema_version(self) -> int:
        """Return the schema version recorded in the database."""
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(meta_table.c.value).where(meta_table.c.key == "schema_version")).scalar()
        return int(value or 0)

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    def _write(self) -> Any:
        return _WriteTransaction(self)

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
            title=m["config_title"] or m["doc_title"] or host_title(m["url"]),
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

    def list_feeds(self, *, enabled_only: bool = False) -> list[Feed]:
        """Return every feed, ordered by id."""
        query = self._feed_select().order_by(feeds_table.c.id)
        if enabled_only:
            query = query.where(feeds_table.c.enabled.is_(True))
        with self.engine.connect() as conn:
            return [self._feed(r) for r in conn.execute(query)]

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
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(entries_table.c.published_at).where(
                    entries_table.c.feed_id == feed_id,
                    entries_table.c.published_at >= since,
                    # A missing date falls back to "first seen", which says nothing about the rate.
                    entries_table.c.flags.not_like('%"date_missing"%'),
                )
            )
            return [r[0] for r in rows]

    # ------------------------------------------------------------------ entries

    def save_entries(
        self,
        feed_id: int,
        entries: Iterable[Entry],
        *,
        seen_at: datetime | None = None,
        digests: Mapping[str, str] | None = None,
    ) -> tuple[int, int]:
        """Insert new entries and update changed ones in one transaction; return (new, updated).

        ``digests`` (item digest -> entry id), when given, replaces what the feed's last document
        held (see ``entry_digests``), in the same transaction.
        """
        entries = list(entries)
        if not entries and digests is None:
            return (0, 0)
        seen_at = seen_at or _now()
        new = updated = 0
        with self._write() as conn:
            if digests is not None:
                conn.execute(sa.delete(entry_digests_table).where(entry_digests_table.c.feed_id == feed_id))
                if digests:
                    conn.execute(
                        sa.insert(entry_digests_table),
                        [{"feed_id": feed_id, "digest": d, "entry_id": i} for d, i in digests.items()],
                    )
            if not entries:
                return (0, 0)
            existing: dict[str, Row[Any]] = {}
            ids = [e.id for e in entries]
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                for row in conn.execute(
                    sa.select(
                        entries_table.c.id,
                        entries_table.c.content_hash,
                        entries_table.c.published_at,
                        entries_table.c.first_seen_at,
                        entries_table.c.feed_id,
                    ).where(entries_table.c.id.in_(chunk))
                ):
                    existing[row.id] = row
            inserts: list[dict[str, Any]] = []
            change_rows: list[dict[str, Any]] = []
            for entry in entries:
                digest = content_hash(entry)
                old = existing.get(entry.id)
                if old is None:
                    inserts.append(self._entry_values(entry, feed_id, digest, seen_at, seen_at))
                    change_rows.append({"entry_id": entry.id, "op": "upsert", "at": seen_at})
                    new += 1
                elif old.content_hash != digest:
                    values = self._entry_values(entry, feed_id, digest, old.first_seen_at, seen_at)
                    if "date_missing" in entry.flags:
                        # The fallback date is "first seen": keep the first sighting, not this one.
                        values["published_at"] = old.published_at
                    del values["id"]
                    conn.execute(sa.update(entries_table).where(entries_table.c.id == entry.id).values(**values))
                    change_rows.append({"entry_id": entry.id, "op": "upsert", "at": seen_at})
                    updated += 1
            if inserts:
                conn.execute(sa.insert(entries_table), inserts)
            if change_rows:
                conn.execute(sa.insert(changes_table), change_rows)
        return (new, updated)

    @staticmethod
    def _entry_values(
        entry: Entry, feed_id: int, digest: str, first_seen: datetime, changed_at: datetime
    ) -> dict[str, Any]:
        return {
            "id": entry.id,
            "feed_id": feed_id,
            "identity": entry.identity,
            "url": entry.url,
            "title": entry.title,
            "authors": json.dumps(list(entry.authors)),
            "published_at": entry.published_at,
            "updated_at": entry.updated_at,
            "first_seen_at": first_seen,
            "last_changed_at": changed_at,
            "summary": entry.summary,
            "content_html": entry.content_html,
            "text": entry.text,
            "image_url": entry.image.url if entry.image else None,
            "image_caption": entry.image.caption if entry.image else None,
            "tags": json.dumps(list(entry.tags)),
            "language": entry.language,
            "word_count": entry.word_count,
            "fingerprint": entry.fingerprint,
            "flags": json.dumps(list(entry.flags)),
            "content_hash": digest,
        }

    def entry_digests(self, feed_id: int) -> dict[str, str]:
        """Return item digest -> entry id for the items of the feed's last document still stored."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(entry_digests_table.c.digest, entry_digests_table.c.entry_id)
                .join(entries_table, entries_table.c.id == entry_digests_table.c.entry_id)
                .where(entry_digests_table.c.feed_id == feed_id)
            ).all()
        return {row.digest: row.entry_id for row in rows}

    def stored_identities(self, feed_id: int, limit: int = 2000) -> dict[str, str]:
        """Return canonical URL -> identity of the feed's most recently seen entries."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(entries_table.c.url, entries_table.c.identity)
                .where(entries_table.c.feed_id == feed_id)
                .order_by(entries_table.c.first_seen_at.desc())
                .limit(limit)
            ).all()
        identities: dict[str, str] = {}
        for row in reversed(rows):  # newest last, so it wins for a URL seen under several identities
            identities[row.url] = row.identity
        return identities

    def _entry_select(self) -> sa.Select[Any]:
        return sa.select(
            entries_table,
            feeds_table.c.key.label("feed_key"),
            feeds_table.c.url.label("feed_url"),
            feeds_table.c.config_title,
            feeds_table.c.doc_title,
            feeds_table.c.site_url,
        ).join(feeds_table, feeds_table.c.id == entries_table.c.feed_id)

    @staticmethod
    def _entry(row: Row[Any]) -> Entry:
        m = row._mapping
        return Entry(
            id=m["id"],
            feed_key=m["feed_key"],
            identity=m["identity"],
            url=m["url"],
            title=m["title"],
            authors=tuple(json.loads(m["authors"])),
            published_at=m["published_at"],
            updated_at=m["updated_at"],
            summary=m["summary"],
            content_html=m["content_html"],
            text=m["text"],
            image=Image(m["image_url"], m["image_caption"]) if m["image_url"] else None,
            tags=tuple(json.loads(m["tags"])),
            language=m["language"],
            word_count=m["word_count"],
            fingerprint=m["fingerprint"],
            source=Source(
                feed_url=m["feed_url"],
                title=m["config_title"] or m["doc_title"] or host_title(m["feed_url"]),
                site_url=m["site_url"],
            ),
            flags=tuple(json.loads(m["flags"])),
        )

    def get_entry(self, entry_id: str) -> Entry | None:
        """Return the entry with this id, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(self._entry_select().where(entries_table.c.id == entry_id)).first()
        return None if row is None else self._entry(row)

    def get_entries(self, entry_ids: Sequence[str]) -> dict[str, Entry]:
        """Return the entries with these ids that exist, by id."""
        found: dict[str, Entry] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(entry_ids), 500):
                chunk = list(entry_ids[start : start + 500])
                for row in conn.execute(self._entry_select().where(entries_table.c.id.in_(chunk))):
                    entry = self._entry(row)
                    found[entry.id] = entry
        return found

    def find_entry_by_url(self, url: str) -> Entry | None:
        """Return the most recent entry whose canonical URL is ``url``, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(
                self._entry_select().where(entries_table.c.url == url).order_by(entries_table.c.published_at.desc())
            ).first()
        return None if row is None else self._entry(row)

    def iter_entries(self, batch: int = 1000) -> Iterator[Entry]:
        """Yield every entry, in id order, a batch of rows at a time."""
        last = ""
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    self._entry_select().where(entries_table.c.id > last).order_by(entries_table.c.id).limit(batch)
                ).all()
            if not rows:
                return
            for row in rows:
                yield self._entry(row)
            last = rows[-1].id

    def count_entries(self) -> int:
        """Return how many entries are stored."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(entries_table)).scalar_one())

    # ------------------------------------------------------------------ change log

    def last_seq(self) -> int:
        """Return the newest change sequence number (0 when the log is empty)."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(changes_table.c.seq))).scalar() or 0)

    def changes_since(self, seq: int, limit: int = 1000) -> list[Change]:
        """Return up to ``limit`` changes after ``seq``, each with the entry as stored now."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(changes_table.c.seq, changes_table.c.entry_id)
                .where(changes_table.c.seq > seq)
                .order_by(changes_table.c.seq)
                .limit(limit)
            ).all()
        entries = self.get_entries([r.entry_id for r in rows])
        return [Change(seq=r.seq, entry_id=r.entry_id, entry=entries.get(r.entry_id)) for r in rows]


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
            raise StorageError(f"cannot write to the database: {exc}") from exc
        except BaseException:
            self.store._write_lock.release()
            raise
        return conn

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            self._context.__exit__(exc_type, exc, tb)
        except SQLAlchemyError as error:
            raise StorageError(f"cannot write to the database: {error}") from error
        finally:
            self.store._write_lock.release()
        if isinstance(exc, SQLAlchemyError):
            raise StorageError(f"cannot write to the database: {exc}") from exc


def open_store(url: str) -> Store:
    """Return a Store for ``url`` with its schema created or upgraded."""
    store = Store(url)
    store.migrate()
    return store
