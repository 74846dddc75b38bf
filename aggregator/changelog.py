"""The store's change log as web followers read it on PostgreSQL: committed changes, in one order every node agrees on.

The trap: a sequence value is taken when a row is inserted, not when its transaction commits. With
several pollers writing at once, a transaction holding seq 41 can commit after one holding seq 42; a
follower that read "seq > 40", saw 42 and moved its cursor there would skip 41 forever.

So each change row carries its writing transaction's id (``txid``, xid8 as a number) and followers
read only rows whose transaction is older than the oldest one still running,
``pg_snapshot_xmin(pg_current_snapshot())``: every such transaction has finished, so no row can still
appear below that watermark. Rows are read in (txid, seq) order and a follower's cursor is the last
(txid, seq) it applied. Any row that commits later has a txid at or above the watermark its follower
read under, hence above the cursor: nothing is skipped, and every follower applies the same rows in
the same order, whenever it reads them.

The price: one long transaction anywhere in the database cluster holds every follower back until it
ends (Newsdesk's own transactions last one feed check; `/readyz` shows a follower's lag).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from .dberrors import describe
from .errors import StorageError
from .models import Entry
from .store import Store
from .store_errors import database_errors

_WATERMARK = "(pg_snapshot_xmin(pg_current_snapshot())::text::bigint)"

_COMMITTED_AFTER = sa.text(
    f"""
    SELECT txid, seq, entry_id, op, fingerprint, published_at FROM changes
    WHERE (txid, seq) > (:txid, :seq) AND txid < {_WATERMARK}
    ORDER BY txid, seq LIMIT :limit
    """
)

_COMMITTED_BETWEEN = sa.text(
    """
    SELECT txid, seq, entry_id, op, fingerprint, published_at FROM changes
    WHERE (txid, seq) > (:txid, :seq) AND (txid, seq) <= (:upto_txid, :upto_seq)
    ORDER BY txid, seq LIMIT :limit
    """
)

# The first committed change past a sequence cursor, and the watermark, read under one snapshot: every
# change below the watermark that this does not find has a sequence number at or below the cursor.
_FIRST_PAST_SEQ = sa.text(
    f"""
    SELECT w.watermark, c.txid, c.seq
    FROM (SELECT {_WATERMARK} AS watermark) AS w
    LEFT JOIN LATERAL (
        SELECT txid, seq FROM changes WHERE seq > :seq AND txid < w.watermark ORDER BY txid, seq LIMIT 1
    ) AS c ON true
    """
)

_PENDING_AFTER = sa.text("SELECT count(*), min(COALESCE(logged_at, at)) FROM changes WHERE (txid, seq) > (:txid, :seq)")


@dataclass(frozen=True, order=True)
class LogPosition:
    """A place in the change log as followers read it: the writing transaction, then the sequence."""

    #: The writing transaction's id (64-bit xid8; 0 before any change).
    txid: int = 0
    #: The change's sequence number within the log.
    seq: int = 0


@dataclass(frozen=True)
class LoggedChange:
    """One committed change as a follower applies it, with what near-duplicate grouping needs."""

    #: Where it sits in the followers' order.
    position: LogPosition
    #: The entry that changed.
    entry_id: str
    #: "upsert" or "delete".
    op: str
    #: The entry's SimHash at this change (0 for deletes and unknown).
    fingerprint: int
    #: The entry's publication time at this change (None for deletes and unknown).
    published_at: datetime | None


def _change(row: Sequence[Any]) -> LoggedChange:
    published = row[5]
    return LoggedChange(
        position=LogPosition(int(row[0]), int(row[1])),
        entry_id=row[2],
        op=row[3],
        fingerprint=int(row[4] or 0),
        published_at=published.replace(tzinfo=UTC) if published is not None else None,
    )


@database_errors
class ChangeLog:
    """Committed changes of a PostgreSQL store in follower order, and the entries they name."""

    def __init__(self, store: Store) -> None:
        if store.engine.dialect.name != "postgresql":
            raise StorageError("web followers need a PostgreSQL store; on SQLite `newsdesk run` indexes")
        #: The store the log lives in.
        self.store = store

    def committed_after(
        self, position: LogPosition, limit: int = 1000, *, upto: LogPosition | None = None
    ) -> list[LoggedChange]:
        """Return up to ``limit`` changes after ``position`` whose transactions have all finished, in order.

        With ``upto``, the changes after ``position`` up to and including ``upto`` (a position already
        read below a watermark, so every one of them is committed).
        """
        params: dict[str, int] = {"txid": position.txid, "seq": position.seq, "limit": limit}
        query = _COMMITTED_AFTER
        if upto is not None:
            query = _COMMITTED_BETWEEN
            params.update(upto_txid=upto.txid, upto_seq=upto.seq)
        try:
            with self.store.engine.connect() as conn:
                return [_change(tuple(row)) for row in conn.execute(query, params)]
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot read the change log: {describe(exc)}") from exc

    def position_covering_seq(self, seq: int) -> LogPosition:
        """Return a position at or before which every change lies that a sequence cursor ``seq`` has consumed or could not see.

        Everything up to the returned position has a sequence number at or below ``seq``: a reader moving
        from a sequence cursor to positions starts there and misses nothing (it may read again changes the
        sequence cursor already covered).
        """
        if seq <= 0:
            return LogPosition()
        try:
            with self.store.engine.connect() as conn:
                watermark, txid, first_seq = conn.execute(_FIRST_PAST_SEQ, {"seq": seq}).one()
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot read the change log: {describe(exc)}") from exc
        if txid is None:  # every committed change is covered: start before the oldest transaction still running
            return LogPosition(int(watermark), 0)
        return LogPosition(int(txid), int(first_seq) - 1)

    def pending_after(self, position: LogPosition) -> tuple[int, datetime | None]:
        """Return how many changes were logged after ``position`` and when the oldest of them was (replica lag)."""
        try:
            with self.store.engine.connect() as conn:
                count, oldest = conn.execute(_PENDING_AFTER, {"txid": position.txid, "seq": position.seq}).one()
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot read the change log: {describe(exc)}") from exc
        return int(count), oldest.replace(tzinfo=UTC) if oldest is not None else None

    def get_entries(self, entry_ids: Sequence[str]) -> dict[str, Entry]:
        """Return the entries with these ids that exist now, by id."""
        try:
            return self.store.get_entries(entry_ids)
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot read entries: {describe(exc)}") from exc
