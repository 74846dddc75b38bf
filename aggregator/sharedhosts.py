"""Per-host politeness across every poller of one PostgreSQL store: N requests in flight per host, a delay between starts.

Slots are PostgreSQL session advisory locks, one key per (host, slot number): a poller that dies, or
whose connection drops, frees its slots with its session, so no count can leak. The delay is one row
per host in ``hosts`` whose ``next_allowed_at`` (epoch seconds on the database's clock) moves forward
in one atomic UPDATE only when it has passed. A slot is taken first, then the start time: a poller
that gets a slot but not the start gives the slot back and waits.

Every call runs on one autocommit connection of this process (advisory locks belong to a session), so
no statement here keeps a transaction open that would hold back the followers' watermark.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from .dberrors import describe
from .hosts import holding_slot

log = logging.getLogger("newsdesk.hosts")

#: Seconds before asking the database again for a host whose slots other pollers hold.
BUSY_RETRY = 0.1
#: Seconds before trying the database again after it failed.
ERROR_RETRY = 1.0

_EPOCH_NOW = "EXTRACT(EPOCH FROM clock_timestamp())"
_TAKE_START = sa.text(
    f"UPDATE hosts SET next_allowed_at = {_EPOCH_NOW} + :delay "
    f"WHERE host = :host AND next_allowed_at <= {_EPOCH_NOW} RETURNING host"
)
_WAIT = sa.text(f"SELECT next_allowed_at - {_EPOCH_NOW} FROM hosts WHERE host = :host")
_ADD_HOST = sa.text("INSERT INTO hosts (host, next_allowed_at) VALUES (:host, 0) ON CONFLICT (host) DO NOTHING")


def slot_key(namespace: str, host: str, slot: int) -> int:
    """Return the advisory lock key (signed 64 bits) of one slot of ``host`` in a store ``namespace``."""
    digest = hashlib.blake2b(f"newsdesk-host\0{namespace}\0{host}\0{slot}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class SharedHostLimiter:
    """Grants request slots per host name across all pollers of one PostgreSQL store; thread-safe."""

    def __init__(
        self, engine: Engine, per_host: int, min_delay: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        #: Requests allowed in flight to one host, over all pollers.
        self.per_host = per_host
        #: Seconds between two request starts to one host, over all pollers.
        self.min_delay = float(min_delay)
        #: Highest number of requests this process had in flight to each host.
        self.peak: dict[str, int] = {}
        self._engine = engine
        self._clock = clock
        self._lock = threading.Condition()
        self._conn: Connection | None = None
        # Advisory locks are re-entrant within a session: which slots this process holds is kept here,
        # so two of its threads never "take" the same slot twice.
        self._held: dict[str, list[int]] = {}
        self._not_before: dict[str, float] = {}
        self._known_hosts: set[str] = set()
        self._namespace = ""
        self._failing = False

    # ------------------------------------------------------------------ connection

    def _connection(self) -> Connection:
        if self._conn is None:
            conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            # The same host names in two databases (or two schemas of one) must not share slots.
            self._namespace = str(
                conn.execute(sa.text("SELECT current_database() || '.' || current_schema()")).scalar()
            )
            self._conn = conn
            self._known_hosts.clear()
            if self._failing:
                log.info("shared host limits: connected to the database again")
                self._failing = False
        return self._conn

    def _lost(self, exc: BaseException) -> None:
        """Forget the session after a database error: its advisory locks are gone with it."""
        if not self._failing:  # once per outage; the reconnect says when it is over
            log.error(
                "shared host limits: the database failed (%s); holding new requests and reconnecting", describe(exc)
            )
            self._failing = True
        if self._conn is not None:
            try:
                self._conn.invalidate()
                self._conn.close()
            except SQLAlchemyError:
                pass
        self._conn = None
        self._held.clear()

    def close(self) -> None:
        """Give back every slot (by closing the session) and the connection."""
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                except SQLAlchemyError:
                    pass
            self._conn = None
            self._held.clear()

    # ------------------------------------------------------------------ slots

    def try_acquire(self, host: str) -> float:
        """Take a slot for ``host`` and return 0, or return seconds until one may free up (inf: when one of ours ends)."""
        if not host:
            return 0.0  # local files: nobody to be polite to
        with self._lock:
            now = self._clock()
            not_before = self._not_before.get(host, 0.0)
            if now < not_before:
                return not_before - now
            held = self._held.setdefault(host, [])
            if len(held) >= self.per_host:
                return float("inf")
            try:
                wait = self._take(host, held)
            except SQLAlchemyError as exc:
                self._lost(exc)
                wait = ERROR_RETRY
            if wait > 0:
                self._not_before[host] = now + wait
                return wait
            self.peak[host] = max(self.peak.get(host, 0), len(held))
            return 0.0

    def _take(self, host: str, held: list[int]) -> float:
        """Take a free slot and the next start for ``host`` (appending the slot to ``held``); return 0 or a wait."""
        conn = self._connection()
        slot = None
        for number in range(self.per_host):
            if number in held:
                continue
            key = slot_key(self._namespace, host, number)
            if conn.execute(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar():
                slot = number
                break
        if slot is None:
            return BUSY_RETRY  # other pollers hold every slot
        if host not in self._known_hosts:
            conn.execute(_ADD_HOST, {"host": host})
            self._known_hosts.add(host)
        if conn.execute(_TAKE_START, {"host": host, "delay": self.min_delay}).first() is not None:
            held.append(slot)
            return 0.0
        wait = conn.execute(_WAIT, {"host": host}).scalar()
        conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": slot_key(self._namespace, host, slot)})
        return max(float(wait or 0.0), 0.01)

    def release(self, host: str) -> None:
        """Give back a slot taken for ``host``."""
        if not host:
            return
        with self._lock:
            held = self._held.get(host)
            if not held:
                return  # the session that held it is gone, and its locks with it
            slot = held.pop()
            try:
                conn = self._connection()
                conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": slot_key(self._namespace, host, slot)})
            except SQLAlchemyError as exc:
                self._lost(exc)
            self._lock.notify_all()

    def hold(self, host: str) -> AbstractContextManager[None]:
        """Block until a slot for ``host`` is free, hold it for the block, then give it back."""
        return holding_slot(self.try_acquire, self.release, self._lock, host)

    def in_flight(self, host: str) -> int:
        """Return how many requests to ``host`` this process has in flight now."""
        with self._lock:
            return len(self._held.get(host, ()))
