"""Poll leases on PostgreSQL: several pollers share the feeds of one store, and no feed is fetched twice.

A poller claims due feeds with one statement that skips rows another poller is claiming (``FOR UPDATE
SKIP LOCKED``) and marks them with its name, a fresh token and an expiry. The expiry is the visibility
timeout: a poller that dies loses its feeds to the others once it passes, and a live poller renews it
while its checks run. A finished check is written only while its token still holds, in the same
transaction that locks the feed's row, so a poller whose lease was taken over can never overwrite the
new owner's result.

SQLite keeps its single writer (``newsdesk run``); nothing here runs there.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import random
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from .dberrors import describe
from .errors import LeaseLost, NewsdeskError, StorageError
from .models import Feed, UpdateResult
from .pipeline import FeedCheck, record
from .policy import PollingPolicy
from .store import Store
from .store_errors import database_errors
from .tables import feeds_table

log = logging.getLogger("newsdesk.poll")

# The database's clock, in UTC like every stored time, so pollers on machines whose clocks disagree
# still agree on who holds what.
_DB_NOW = "timezone('UTC', clock_timestamp())"

# A CTE rather than `WHERE id IN (subquery)`: a CTE holding FOR UPDATE runs exactly once, whereas the
# planner may re-run an IN subquery (and its LIMIT) inside a join.
_CLAIM = sa.text(
    f"""
    WITH due AS (
        SELECT id FROM feeds
        WHERE enabled
          AND (next_check_at IS NULL OR next_check_at <= {_DB_NOW})
          AND (lease_until IS NULL OR lease_until < {_DB_NOW})
        ORDER BY next_check_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    UPDATE feeds SET lease_owner = :owner, lease_token = :token,
                     lease_until = {_DB_NOW} + make_interval(secs => :seconds)
    FROM due WHERE feeds.id = due.id
    RETURNING feeds.id
    """
)

_RENEW = sa.text(
    f"UPDATE feeds SET lease_until = {_DB_NOW} + make_interval(secs => :seconds) WHERE lease_token = :token"
)

_HOLD = sa.text("SELECT id FROM feeds WHERE id = :id AND lease_token = :token FOR UPDATE")

_RELEASE_ONE = sa.text(
    "UPDATE feeds SET lease_owner = NULL, lease_token = NULL, lease_until = NULL WHERE id = :id AND lease_token = :token"
)

_RELEASE = sa.text(
    "UPDATE feeds SET lease_owner = NULL, lease_token = NULL, lease_until = NULL WHERE lease_token = :token"
)

# Seconds until some feed may be claimed: due and free, or due once a lease ends.
_NEXT_CLAIMABLE = sa.text(
    f"""
    SELECT EXTRACT(EPOCH FROM MIN(GREATEST(COALESCE(next_check_at, '-infinity'),
                                           COALESCE(lease_until, '-infinity'))) - {_DB_NOW})
    FROM feeds WHERE enabled
    """
)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Claim:
    """Feeds one poller claimed in one statement, under one token."""

    #: The lease token; a check is written only while the feed still carries it.
    token: str
    #: The claimed feeds, earliest due first.
    feeds: tuple[Feed, ...]


@database_errors
class Leases:
    """Claims, renews and checks poll leases for one poller (``owner``) on a PostgreSQL store."""

    def __init__(self, store: Store, owner: str, lease_seconds: float) -> None:
        if store.engine.dialect.name != "postgresql":
            raise StorageError("poll leases need a PostgreSQL store; SQLite has a single writer (`newsdesk run`)")
        #: The store the leases live in.
        self.store = store
        #: This poller's name, written on every feed it holds (operators see who polls what).
        self.owner = owner
        #: How long a claim lasts without renewal.
        self.lease_seconds = float(lease_seconds)

    def claim(self, limit: int) -> Claim | None:
        """Claim up to ``limit`` due feeds no other poller holds; return them, or None when none is free."""
        token = str(uuid.uuid4())
        params = {"limit": limit, "owner": self.owner, "token": token, "seconds": self.lease_seconds}
        try:
            with self.store.engine.begin() as conn:
                ids = [row[0] for row in conn.execute(_CLAIM, params)]
            if not ids:
                return None
            query = self.store._feed_select().where(feeds_table.c.id.in_(ids))
            with self.store.engine.connect() as conn:
                feeds = [self.store._feed(row) for row in conn.execute(query)]
        except SQLAlchemyError as exc:  # claimed feeds not read come free when their lease ends
            raise StorageError(f"cannot claim feeds: {describe(exc)}") from exc
        feeds.sort(key=lambda f: (f.next_check_at is not None, f.next_check_at or _EPOCH, f.id))
        return Claim(token=token, feeds=tuple(feeds))

    def renew(self, token: str) -> int:
        """Push the expiry of every feed still held under ``token`` one lease ahead; return how many."""
        try:
            with self.store.engine.begin() as conn:
                return int(conn.execute(_RENEW, {"token": token, "seconds": self.lease_seconds}).rowcount)
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot renew poll leases: {describe(exc)}") from exc

    def release(self, token: str) -> int:
        """Give back every feed still held under ``token`` (they are due again at once); return how many."""
        try:
            with self.store.engine.begin() as conn:
                return int(conn.execute(_RELEASE, {"token": token}).rowcount)
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot release poll leases: {describe(exc)}") from exc

    def seconds_until_claimable(self) -> float | None:
        """Return seconds until some enabled feed may be claimed (<= 0: now), or None when there is none."""
        try:
            with self.store.engine.connect() as conn:
                value = conn.execute(_NEXT_CLAIMABLE).scalar()
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot read when feeds are due: {describe(exc)}") from exc
        return None if value is None else float(value)

    @contextmanager
    def held(self, feed_id: int, token: str) -> Iterator[None]:
        """Run the block in one store transaction that holds the feed's row while ``token`` still leases it.

        Raises LeaseLost (and writes nothing) when another poller has claimed the feed since. The row
        lock keeps a claim from taking the feed between this check and the commit; the lease is given
        back in the same commit.
        """
        with self.store.transaction(), self.store._write() as conn:
            if conn.execute(_HOLD, {"id": feed_id, "token": token}).first() is None:
                raise LeaseLost(f"the lease on feed {feed_id} passed to another poller; this check is dropped")
            yield
            conn.execute(_RELEASE_ONE, {"id": feed_id, "token": token})


class Heartbeat:
    """Renews one claim's leases in the background while its checks run (every third of a lease)."""

    def __init__(self, leases: Leases, token: str) -> None:
        self.leases = leases
        self.token = token
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="newsdesk-lease-heartbeat", daemon=True)

    def _beat(self) -> None:
        interval = max(self.leases.lease_seconds / 3, 0.2)
        failing = False
        while not self._stop.wait(interval):
            try:
                self.leases.renew(self.token)
                if failing:
                    log.info("poll leases renewed again")
                failing = False
            except NewsdeskError as exc:
                if not failing:  # once per outage: the next success says it is over
                    log.error("cannot renew poll leases (retrying every %.1f s): %s", interval, exc)
                failing = True

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


class LeasedRecorder:
    """The poller's record stage for `newsdesk poller`: ``pipeline.record``, but only while the feed's lease holds."""

    def __init__(self, leases: Leases) -> None:
        self.leases = leases
        self._tokens: dict[int, str] = {}
        self._lock = threading.Lock()

    def adopt(self, claim: Claim) -> None:
        """Remember the token each of ``claim``'s feeds is leased under."""
        with self._lock:
            self._tokens.update((feed.id, claim.token) for feed in claim.feeds)

    def __call__(self, check: FeedCheck, store: Store, policy: PollingPolicy, rng: random.Random) -> FeedCheck:
        """Return ``check`` recorded under its lease (a lost lease is a per-feed error, and nothing is written)."""
        feed = check.feed
        with self._lock:
            token = self._tokens.pop(feed.id, None)
        if token is None:
            result = UpdateResult(url=feed.url, status=None, error="internal error: the feed was not claimed")
            return dataclasses.replace(check, result=result)
        return record(check, store, policy, rng, hold=functools.partial(self.leases.held, feed.id, token))


@contextmanager
def exclusive(store: Store, name: str) -> Iterator[None]:
    """Run the block while no other node runs a block of the same ``name`` (a session advisory lock)."""
    key = int.from_bytes(uuid.uuid5(uuid.NAMESPACE_URL, f"newsdesk:{name}").bytes[:8], "big", signed=True)
    try:
        conn = store.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot reach the database: {describe(exc)}") from exc
    try:
        conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": key})
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
    finally:
        conn.close()
