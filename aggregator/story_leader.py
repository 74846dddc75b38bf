"""Stories on a shared PostgreSQL store: one process at a time assigns them, reading the log in commit order.

With several pollers writing, a story cursor that reads the change log by sequence number would skip,
forever, a change whose transaction committed after a later-numbered one (see ``aggregator.changelog``).
So on a scaled-out store story assignment reads the log as web followers do, in (txid, seq) order below
the oldest transaction still running, and keeps its cursor as that position (``meta``, key
``stories_position``), moved by a compare-and-set in the same transaction as the batch's stories: each
change is assigned once, whoever tries.

Every `newsdesk poller` offers to assign (``StoryLeader``): the one holding a session advisory lock does
it, the others try for the lock every second. A poller that dies, or whose database session ends, frees
the lock with its session and another takes over from the stored position; should two ever overlap (a
holder that has not yet noticed its session ended), the compare-and-set drops the later batch.

A store switches to positions the first time a poller assigns, starting from the sequence cursor
`newsdesk run` kept (reading again what it may have covered: an article already in a story is left
there) and keeps them: from then on `run`, `poll` and the CLI assign by position too (``assign_stories``),
and only while no poller holds the lock. SQLite and a PostgreSQL store only ever used by `newsdesk run`
keep the sequence cursor.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from .changelog import ChangeLog, LogPosition
from .config import Config
from .dberrors import describe
from .errors import NewsdeskError, StorageError
from .gcpause import collector_paused
from .store import Store
from .store_stories import CursorMove, SqlStoryStore, StoriesMoved, assign_pending, batch_articles
from .stories import StoryAssigner, StorySettings
from .tables import meta_table
from .tables_stories import STORIES_POSITION_KEY

log = logging.getLogger("newsdesk.stories")

#: The advisory lock whose holder assigns stories.
LOCK_NAME = "story-assignment"
#: Seconds between two reads of the log by the assigning poller, and between two tries for the lock by the others.
ASSIGN_INTERVAL = 1.0


def story_assigner(config: Config, stories: SqlStoryStore) -> StoryAssigner:
    """Return a story assigner over ``stories`` with the config's [stories] options applied."""
    hours = float(config.stories.quiet_period) / 3600
    return StoryAssigner(stories, StorySettings(quiet_period_hours=hours))


class SessionLock:
    """A PostgreSQL session advisory lock, held on a connection of its own and freed with its session."""

    def __init__(self, engine: Engine, name: str) -> None:
        self.engine = engine
        #: What the lock stands for; its key is derived from it and the database and schema.
        self.name = name
        self._conn: Connection | None = None
        #: Why the lock was last found gone (the database's own words), for the log line that says so.
        self.lost_because = ""

    def acquire(self) -> bool:
        """Take the lock if no other session holds it; return whether this one holds it now."""
        if self._conn is not None:
            return True
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            # The same lock in two databases, or two schemas of one, must not be one lock.
            namespace = conn.execute(sa.text("SELECT current_database() || '.' || current_schema()")).scalar()
            digest = hashlib.blake2b(f"newsdesk-lock\0{namespace}\0{self.name}".encode(), digest_size=8).digest()
            key = int.from_bytes(digest, "big", signed=True)
            taken = bool(conn.execute(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar())
        except BaseException:
            conn.invalidate()
            conn.close()
            raise
        if not taken:
            conn.close()
            return False
        self._conn = conn
        return True

    def holding(self) -> bool:
        """Return whether this process still holds the lock (its session is alive); forget it when not."""
        if self._conn is None:
            return False
        try:
            self._conn.execute(sa.text("SELECT 1"))
        except SQLAlchemyError as exc:
            self.lost_because = describe(exc)
            self._drop()
            return False
        return True

    def release(self) -> None:
        """Give the lock back (by ending its session)."""
        self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.invalidate()  # the session ends, and its advisory locks with it
                conn.close()
            except SQLAlchemyError:
                pass


def _text(position: LogPosition) -> str:
    return f"{position.txid}:{position.seq}"


def stored_position(engine: Engine) -> LogPosition | None:
    """Return the change-log position story assignment has consumed, or None while the store uses the sequence cursor."""
    with engine.connect() as conn:
        value = conn.execute(sa.select(meta_table.c.value).where(meta_table.c.key == STORIES_POSITION_KEY)).scalar()
    if value is None:
        return None
    txid, _, seq = str(value).partition(":")
    return LogPosition(int(txid), int(seq))


def move_position(old: LogPosition, new: LogPosition) -> CursorMove:
    """Return the compare-and-set that moves the story position from ``old`` to ``new`` in a batch's transaction."""

    def move(conn: Connection) -> None:
        m = meta_table.c
        changed = conn.execute(
            sa.update(meta_table).where(m.key == STORIES_POSITION_KEY, m.value == _text(old)).values(value=_text(new))
        ).rowcount
        if not changed:
            raise StoriesMoved(f"story assignment moved past change {_text(old)} in another process")

    return move


def _start_positions(changelog: ChangeLog, stories: SqlStoryStore) -> None:
    """Store the first story position: where the sequence cursor leaves off, missing nothing."""
    seq = stories.cursor()
    start = changelog.position_covering_seq(seq)
    try:
        with stories.engine.begin() as conn:
            conn.execute(sa.insert(meta_table).values(key=STORIES_POSITION_KEY, value=_text(start)))
    except IntegrityError:
        return  # another poller started them first
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot save the story position: {describe(exc)}") from exc
    log.info(
        "stories: assigned from the change log by position from now on (from %s; sequence cursor %d)", _text(start), seq
    )


def assign_logged(
    changelog: ChangeLog,
    stories: SqlStoryStore,
    assigner: StoryAssigner,
    *,
    batch_size: int = 1000,
    stop: threading.Event | None = None,
) -> int:
    """Assign stories to the committed changes past the story position, in follower order; return how many.

    The caller holds the story lock. A batch another process assigned first is dropped and the loop
    goes on from where that process got to.
    """
    assigned = 0
    stories.refresh()
    while not (stop is not None and stop.is_set()):
        position = stored_position(stories.engine)
        if position is None:
            _start_positions(changelog, stories)
            continue
        batch = changelog.committed_after(position, batch_size)
        if not batch:
            break
        with collector_paused():  # the batch's reading too (see SqlStoryStore.assign_moving)
            articles = batch_articles(stories, assigner, changelog, [change.entry_id for change in batch])
            try:
                assigned += stories.assign_moving(assigner, articles, move_position(position, batch[-1].position))
            except StoriesMoved as exc:
                log.info("%s; going on from there", exc)
                stories.refresh()
    return assigned


def assign_stories(
    store: Store,
    stories: SqlStoryStore,
    assigner: StoryAssigner,
    *,
    batch_size: int = 1000,
    stop: threading.Event | None = None,
) -> int:
    """Assign stories to what the store logged since the last assignment, as the store's mode wants; return how many.

    By sequence (``assign_pending``) on SQLite and on a PostgreSQL store no poller has assigned on; by
    position on a scaled-out store, and then only when no poller holds the story lock (it assigns).
    """
    if store.engine.dialect.name != "postgresql" or stored_position(store.engine) is None:
        return assign_pending(store, stories, assigner, batch_size=batch_size, stop=stop)
    lock = SessionLock(store.engine, LOCK_NAME)
    if not lock.acquire():
        log.debug("stories: a poller assigns them")
        return 0
    try:
        return assign_logged(ChangeLog(store), stories, assigner, batch_size=batch_size, stop=stop)
    finally:
        lock.release()


class StoryLeader:
    """A poller's offer to assign stories: while it holds the story lock, it assigns what the log has committed."""

    def __init__(self, store: Store, config: Config, name: str) -> None:
        #: This poller's name, in log lines.
        self.name = name
        self.stories = SqlStoryStore(store.engine, memory_stories=config.stories.memory_stories)
        self.assigner = story_assigner(config, self.stories)
        self.changelog = ChangeLog(store)
        self.lock = SessionLock(store.engine, LOCK_NAME)
        #: Articles this process has assigned.
        self.assigned = 0
        #: Whether this process held the lock at its last step.
        self.leading = False
        self._failing = False

    def step(self, stop: threading.Event | None = None) -> int:
        """Assign what is committed when this process holds (or can take) the lock; return how many were new."""
        if not self.lock.holding():
            if self.leading:
                log.warning(
                    "stories: poller %s lost the story lock (its database session ended: %s); "
                    "another poller or this one takes over from the stored position",
                    self.name,
                    self.lock.lost_because,
                )
                self.leading = False
            if not self.lock.acquire():
                return 0
            log.info("stories: poller %s assigns stories now", self.name)
            self.leading = True
        assigned = assign_logged(self.changelog, self.stories, self.assigner, stop=stop)
        self.assigned += assigned
        if assigned:
            log.info("stories assigned to %d new entries", assigned)
        return assigned

    def run(self, stop: threading.Event, interval: float = ASSIGN_INTERVAL) -> None:
        """Assign (or stand by for the lock) every ``interval`` seconds until ``stop`` is set, then give the lock back."""
        try:
            while not stop.is_set():
                self._attempt(stop, interval)
                stop.wait(interval)
        finally:
            self.lock.release()

    def drain(self, timeout: float, interval: float = ASSIGN_INTERVAL) -> bool:
        """Take the lock (waiting up to ``timeout`` seconds) and assign everything committed; return whether it did.

        ``poller --once`` calls this at its end, so what it stored has stories when it exits (what other
        pollers still write is theirs to assign).
        """
        deadline = time.monotonic() + timeout
        try:
            while True:
                if self._attempt(None, interval) and self.leading:
                    return True
                if time.monotonic() >= deadline:
                    return False
                time.sleep(interval)
        finally:
            self.lock.release()

    def _attempt(self, stop: threading.Event | None, interval: float) -> bool:
        """Run one step, logging a failing store once per outage; return whether the step went through."""
        try:
            self.step(stop)
        except (NewsdeskError, SQLAlchemyError) as exc:
            if not self._failing:  # once per outage; the recovery is logged too
                reason: Any = describe(exc) if isinstance(exc, SQLAlchemyError) else exc
                log.error("stories: poller %s cannot assign (retrying every %.0f s): %s", self.name, interval, reason)
            self._failing = True
            return False
        if self._failing:
            log.info("stories: poller %s assigns again", self.name)
            self._failing = False
        return True
