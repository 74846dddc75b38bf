"""The database schema (tables, version) and engines: what every part of the store shares."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from .errors import StorageError
from .models import Entry

#: Bump when the schema changes; `migrate()` knows how to get from each older version.
SCHEMA_VERSION = 3
# 1 -> 2: the entry_digests table (created by create_all; nothing else changes).
# 2 -> 3: scale-out (several pollers and web followers on one PostgreSQL): poll leases on feeds, the
#         hosts table, and on changes the writing transaction (txid), the commit-ish time (logged_at)
#         and the inputs of near-duplicate grouping (fingerprint, published_at). Added columns are
#         created by ``missing_columns`` in Store.migrate; see aggregator/schema_pg.py.
# The story tables (aggregator/tables_stories.py, registered on ``metadata`` by aggregator/store.py) are
# part of the schema too; they only add tables, which create_all makes on any version, so they need no bump.


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
    # Poll leases (PostgreSQL pollers only; see aggregator/leases.py): who holds the feed, under which
    # claim, until when. A lease past lease_until is free again: the lease is the visibility timeout.
    sa.Column("lease_owner", sa.Text),
    sa.Column("lease_token", sa.String(36)),
    sa.Column("lease_until", UTCDateTime),
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
    # On PostgreSQL, the writing transaction's id (xid8 as a number) and its start time, set by column
    # defaults (aggregator/schema_pg.py): followers read in (txid, seq) order below the oldest running
    # transaction, because sequence values do not follow commit order. NULL on SQLite (one writer).
    sa.Column("txid", sa.BigInteger),
    sa.Column("logged_at", UTCDateTime),
    # What near-duplicate grouping needs of an upsert, as it was at that change: replicas fold the log
    # in one order with these, so every node derives the same groups (NULL for deletes).
    sa.Column("fingerprint", sa.BigInteger),
    sa.Column("published_at", UTCDateTime),
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


# Per-host politeness shared by every poller (PostgreSQL only; see aggregator/sharedhosts.py): the
# earliest time (epoch seconds, on the database's clock) the next request to the host may start.
hosts_table = sa.Table(
    "hosts",
    metadata,
    sa.Column("host", sa.Text, primary_key=True),
    sa.Column("next_allowed_at", sa.Float, nullable=False, default=0.0),
)


def missing_columns(conn: sa.Connection) -> list[tuple[str, sa.Column[Any]]]:
    """Return (table name, column) for every column our tables declare that the database lacks."""
    inspector = sa.inspect(conn)
    missing: list[tuple[str, sa.Column[Any]]] = []
    for table in metadata.sorted_tables:
        if not inspector.has_table(table.name):
            continue  # create_all makes it whole
        present = {column["name"] for column in inspector.get_columns(table.name)}
        missing.extend((table.name, column) for column in table.columns if column.name not in present)
    return missing


def add_column(conn: sa.Connection, table: str, column: sa.Column[Any]) -> None:
    """Add a nullable column to an existing table (the only kind of change our migrations make)."""
    kind = column.type.compile(dialect=conn.dialect)
    preparer = conn.dialect.identifier_preparer
    conn.execute(sa.text(f"ALTER TABLE {preparer.quote(table)} ADD COLUMN {preparer.quote(column.name)} {kind}"))


def _now() -> datetime:
    return datetime.now(UTC)


def content_hash(entry: Entry) -> str:
    """Return a digest of the fields whose change means the entry must be re-indexed."""
    return hashlib.sha256(repr(entry.content_key()).encode("utf-8", "surrogatepass")).hexdigest()


#: Seconds a SQLite connection waits for another process's write transaction before "database is locked".
#: Processes share the file (`run`, `serve`, CLI commands): a check storing a big feed or removing a
#: feed with many entries can hold the write lock for seconds on a busy machine, and waiting is
#: always better than failing the other process's write.
SQLITE_BUSY_TIMEOUT = 30


def _set_sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT * 1000}")
    # WAL lets web workers read while the single writer writes; NORMAL sync is safe with WAL
    # (a killed process loses nothing it committed; only a power cut may lose the last commits).
    _enable_wal(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _enable_wal(cursor: Any) -> None:
    """Turn the file to WAL (a no-op once it is), retrying while another process holds the lock it needs.

    A new file is turned to WAL under an exclusive lock. When several processes open a new data
    directory together (`run` and two `serve`), SQLite may answer "database is locked" at once, without
    waiting out busy_timeout, because waiting could deadlock two connections that each read the file
    first. So this connection waits here instead, for up to the same timeout."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT
    delay = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


def create_engine_for(url: str) -> Engine:
    """Return an Engine for a sqlite:// or postgresql:// URL, creating the SQLite directory."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT})
        event.listen(engine, "connect", _set_sqlite_pragmas)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)
