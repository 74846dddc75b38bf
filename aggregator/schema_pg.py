"""What the schema needs on PostgreSQL only: column defaults and indexes of a shared store.

Several nodes (pollers, web followers) start against one database at once; Store.migrate runs under a
transaction-level advisory lock (``store._lock_for_migration``), so this runs once per upgrade. The change
log's ``txid`` and ``logged_at`` get their values from column defaults, set by the database for every
writer whatever code inserts the row.
"""

from __future__ import annotations

import sqlalchemy as sa

#: The writing transaction's id as a number: xid8 is 64 bits (epoch and xid), so it never wraps around.
TXID_DEFAULT = "(pg_current_xact_id()::text::bigint)"


def prepare(conn: sa.Connection, *, backfill: bool) -> None:
    """Set the change log's defaults and the indexes the scale-out reads by; ``backfill`` older rows once."""
    conn.execute(sa.text(f"ALTER TABLE changes ALTER COLUMN txid SET DEFAULT {TXID_DEFAULT}"))
    # clock_timestamp(), not now(): the insert happens at the end of a check's transaction, near its commit.
    conn.execute(sa.text("ALTER TABLE changes ALTER COLUMN logged_at SET DEFAULT timezone('UTC', clock_timestamp())"))
    conn.execute(sa.text("CREATE INDEX IF NOT EXISTS ix_changes_txid_seq ON changes (txid, seq)"))
    conn.execute(sa.text("CREATE INDEX IF NOT EXISTS ix_feeds_due ON feeds (next_check_at) WHERE enabled"))
    if backfill:
        # Rows written before version 3: all committed, so any one order is right; this transaction's id
        # puts them before every later row. Their grouping inputs come from the entries as stored now,
        # fixed here once, so every follower folds the same values.
        conn.execute(sa.text(f"UPDATE changes SET txid = {TXID_DEFAULT}, logged_at = at WHERE txid IS NULL"))
        conn.execute(
            sa.text(
                "UPDATE changes SET fingerprint = e.fingerprint, published_at = e.published_at "
                "FROM entries e WHERE changes.entry_id = e.id AND changes.op = 'upsert' "
                "AND changes.fingerprint IS NULL"
            )
        )
