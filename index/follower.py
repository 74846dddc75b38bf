"""A web node's own Whoosh replica, following the store's change log (`newsdesk serve --follow`).

Each web node keeps its index on local disk (Whoosh on a shared network file system is not an
option: it deletes segment files other processes may still read) and applies the committed changes
past its cursor, in the order every node reads them (see ``aggregator.changelog``). Searchers in the
same process see each commit on their next query.

State derived at index time is the same on every node: near-duplicate groups are a fold over the log,
in log order, of the fingerprint and date each change row recorded, never of what a node happens to
read from the store or its own index. A node that started later, replayed the log or restarted after a
crash therefore holds exactly the groups of one that followed from the start.

A new node (or one whose index is missing or of another schema) replays the whole log into a fresh
index generation beside the live one and swaps it in when done, so a crash halfway leaves nothing
half-built in use. The log is never truncated, so a replay needs nothing but the store.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Protocol

from whoosh import index as whoosh_index
from whoosh.index import FileIndex

from aggregator.changelog import LoggedChange, LogPosition
from aggregator.errors import StorageError
from aggregator.models import Entry

from .dupgroups import DupGroups
from .indexer import IndexLocation, create_index
from .schema import SCHEMA_VERSION, add_missing_fields, entry_document

log = logging.getLogger("newsdesk.follower")

#: The follower's cursor and index schema, in the live generation's directory.
FOLLOWER_STATE = "newsdesk-follower.json"
#: Held (flock) by the one follower process using an index root.
LOCK_FILE = "follower.lock"
#: Change rows read per query while replaying the log.
REPLAY_READ = 10_000
#: Documents per commit while replaying (nobody searches a generation being built: big commits are cheapest).
REPLAY_COMMIT = 5_000
#: Seconds between two segment-count checks of a following replica (as `newsdesk run` does for its index).
MAINTENANCE_SECONDS = 6 * 3600
#: Segments allowed before the maintenance merges them all (which also drops replaced documents for good).
MAX_SEGMENTS = 8


class ChangeFeed(Protocol):
    """What a follower needs from the store: committed changes in follower order, and entries."""

    def committed_after(
        self, position: LogPosition, limit: int = 1000, *, upto: LogPosition | None = None
    ) -> list[LoggedChange]:
        """Return committed changes after ``position`` in order."""
        ...

    def pending_after(self, position: LogPosition) -> tuple[int, datetime | None]:
        """Return how many changes come after ``position`` and when the oldest was logged."""
        ...

    def get_entries(self, entry_ids: Sequence[str]) -> dict[str, Entry]:
        """Return the entries with these ids that exist now."""
        ...


@dataclass(frozen=True)
class FollowStats:
    """What one catch-up did."""

    #: Change rows applied.
    changes: int
    #: Documents added or replaced.
    upserts: int
    #: Documents deleted.
    deletes: int
    #: Where the replica now is.
    position: LogPosition


def fold(groups: DupGroups, change: LoggedChange) -> str | None:
    """Apply one change to the group table; return the entry's group, or None when it was deleted."""
    if change.op == "delete":
        groups.remove(change.entry_id)
        return None
    published = change.published_at.timestamp() if change.published_at is not None else 0.0
    return groups.assign(change.entry_id, change.fingerprint, published)


def read_position(path: Path) -> LogPosition | None:
    """Return the cursor a generation directory's follower state records, or None without a usable one."""
    try:
        state = json.loads((path / FOLLOWER_STATE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if int(state.get("schema", 0)) != SCHEMA_VERSION:
        return None
    return LogPosition(int(state["txid"]), int(state["seq"]))


def _write_position(path: Path, position: LogPosition) -> None:
    tmp = path / (FOLLOWER_STATE + ".tmp")
    tmp.write_text(json.dumps({"txid": position.txid, "seq": position.seq, "schema": SCHEMA_VERSION}))
    os.replace(tmp, path / FOLLOWER_STATE)


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Follower:
    """Keeps one local index replica equal to the store by applying its change log; one per index root."""

    def __init__(self, root: Path, feed: ChangeFeed, *, batch_size: int = 2000) -> None:
        self.location = IndexLocation(root)
        self.feed = feed
        self.batch_size = batch_size
        #: The last change applied to the live index (read by /readyz from other threads).
        self.position = LogPosition()
        #: True while the log is being replayed into a new generation (the replica is not ready).
        self.replaying = False
        #: Changes applied since this process started.
        self.applied = 0
        self._ix: FileIndex | None = None
        self._path: Path | None = None
        self._groups: DupGroups | None = None
        # After a start or a failure, the index may already hold the next batch (committed before the
        # cursor was written): replace documents instead of adding them until one batch is through.
        self._recovering = True
        self._lock_file: IO[str] | None = None

    # ------------------------------------------------------------------ lifecycle

    def lock(self) -> None:
        """Claim the index root for this process; raise StorageError when another follower uses it."""
        self.location.root.mkdir(parents=True, exist_ok=True)
        handle = open(self.location.root / LOCK_FILE, "w")  # noqa: SIM115 - held for the process's life
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            handle.close()
            raise StorageError(
                f"another process follows into {self.location.root}; give each web node its own node.index_dir"
            ) from exc
        self._lock_file = handle

    def close(self) -> None:
        """Release the index root."""
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def prepare(self) -> None:
        """Open the live replica and rebuild its group table from the log, or replay the log when there is none."""
        path = self.location.current_dir()
        position = read_position(path) if path is not None and whoosh_index.exists_in(str(path)) else None
        if path is None or position is None:
            self.replay()
            return
        self._remove_other_generations(path)
        self._groups = self._fold_upto(position)
        self._ix = whoosh_index.open_dir(str(path))
        self._path = path
        self.position = position
        self._recovering = True

    def _remove_other_generations(self, live: Path) -> None:
        # A replay a crash interrupted leaves a generation that never went live.
        for other in self.location.root.glob("gen-*"):
            if other != live and other.is_dir():
                shutil.rmtree(other, ignore_errors=True)

    def _fold_upto(self, upto: LogPosition) -> DupGroups:
        """Return the group table after every change up to ``upto`` (read from the log, not from the index)."""
        groups = DupGroups()
        position = LogPosition()
        while True:
            changes = self.feed.committed_after(position, REPLAY_READ, upto=upto)
            if not changes:
                return groups
            for change in changes:
                fold(groups, change)
            position = changes[-1].position

    def replay(self) -> FollowStats:
        """Build the replica afresh from the whole log in a new generation, then make it live."""
        self.replaying = True
        started = time.monotonic()
        try:
            path = self.location.new_generation()
            ix = create_index(path)
            groups = DupGroups()
            final: dict[str, str | None] = {}
            position = LogPosition()
            changes = 0
            while True:
                batch = self.feed.committed_after(position, REPLAY_READ)
                if not batch:
                    break
                for change in batch:
                    final[change.entry_id] = fold(groups, change)
                position = batch[-1].position
                changes += len(batch)
            live = sorted(entry_id for entry_id, group in final.items() if group is not None)
            added = 0
            for chunk in _chunks(live, max(self.batch_size, REPLAY_COMMIT)):
                entries = self.feed.get_entries(chunk)
                writer = ix.writer(limitmb=256)
                try:
                    for entry_id in chunk:
                        entry = entries.get(entry_id)
                        group = final[entry_id]
                        if entry is not None and group is not None:  # gone since: its delete comes later
                            writer.add_document(**entry_document(entry, dupgroup=group))
                            added += 1
                    writer.commit(merge=True)
                except BaseException:
                    writer.cancel()
                    raise
            _write_position(path, position)
            self.location.make_live(path)
        finally:
            self.replaying = False
        self._ix, self._path, self._groups = ix, path, groups
        self.position = position
        self._recovering = False
        self.applied += changes
        log.info(
            "replica replayed from the log: %d changes, %d documents, up to txid=%d seq=%d in %.1f s",
            changes,
            added,
            position.txid,
            position.seq,
            time.monotonic() - started,
        )
        return FollowStats(changes=changes, upserts=added, deletes=0, position=position)

    # ------------------------------------------------------------------ following

    def catch_up(self) -> FollowStats:
        """Apply every committed change past the cursor, a batch per commit; return what was done."""
        if self._ix is None or self._path is None or self._groups is None:
            self.prepare()
        assert self._ix is not None and self._path is not None and self._groups is not None
        total = upserts = deletes = 0
        while True:
            changes = self.feed.committed_after(self.position, self.batch_size)
            if not changes:
                break
            try:
                done = self._apply(changes)
            except BaseException:
                # The group table saw changes that never reached the index: rebuild it from the log next time.
                self._groups = None
                raise
            upserts += done[0]
            deletes += done[1]
            total += len(changes)
            if len(changes) < self.batch_size:
                break
        return FollowStats(changes=total, upserts=upserts, deletes=deletes, position=self.position)

    def _apply(self, changes: list[LoggedChange]) -> tuple[int, int]:
        assert self._ix is not None and self._path is not None and self._groups is not None
        groups = self._groups
        known: dict[str, bool] = {}
        final: dict[str, str | None] = {}
        for change in changes:
            known.setdefault(change.entry_id, change.entry_id in groups)
            final[change.entry_id] = fold(groups, change)
        entries = self.feed.get_entries([i for i, group in final.items() if group is not None])
        upserts = deletes = 0
        writer = self._ix.writer(limitmb=128)
        try:
            add_missing_fields(writer)  # a replica made before a stored field was added takes it from now on
            for entry_id, group in final.items():
                entry = entries.get(entry_id)
                if group is None or entry is None:  # deleted, or deleted since (its delete row comes later)
                    writer.delete_by_term("id", entry_id)
                    deletes += 1
                    continue
                document = entry_document(entry, dupgroup=group)
                if known[entry_id] or self._recovering:
                    writer.update_document(**document)
                else:
                    writer.add_document(**document)  # new to this replica: no delete-by-id lookup needed
                upserts += 1
            writer.commit(merge=True)
        except BaseException:
            writer.cancel()
            raise
        position = changes[-1].position
        # Written after the commit: a crash in between replays the batch, and replacing documents is idempotent.
        _write_position(self._path, position)
        self.position = position
        self._recovering = False
        self.applied += len(changes)
        log.debug("applied txid=%d seq=%d (+%d -%d)", position.txid, position.seq, upserts, deletes)
        return upserts, deletes

    def maintain(self, max_segments: int = MAX_SEGMENTS) -> bool:
        """Merge the replica's segments into one when there are more than ``max_segments``; return whether it did."""
        if self._ix is None or len(self._ix._segments()) <= max_segments:
            return False
        self._ix.writer().commit(optimize=True)
        return True

    def follow(self, stop: threading.Event, interval: float) -> None:
        """Catch up every ``interval`` seconds until ``stop`` is set; a failure is logged once and retried."""
        failing = False
        maintained = time.monotonic()
        while not stop.is_set():
            try:
                if time.monotonic() - maintained > MAINTENANCE_SECONDS:
                    maintained = time.monotonic()
                    self.maintain()
                stats = self.catch_up()
            except Exception as exc:  # the store went away, a disk filled: say so once, keep trying
                if not failing:
                    log.error("replica cannot follow the store (retrying every %.1f s): %s", max(interval, 1.0), exc)
                failing = True
                stop.wait(max(interval, 1.0))
                continue
            if failing:
                log.info("replica follows the store again from txid=%d seq=%d", self.position.txid, self.position.seq)
                failing = False
            if stats.changes < self.batch_size:
                stop.wait(interval)

    # ------------------------------------------------------------------ status

    def status(self, now: datetime) -> dict[str, Any]:
        """Return the replica's cursor and lag: changes logged past it, and the age of the oldest of them."""
        pending, oldest = self.feed.pending_after(self.position)
        lag = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
        return {
            "txid": self.position.txid,
            "seq": self.position.seq,
            "replaying": self.replaying,
            "applied": self.applied,
            "lag_changes": pending,
            "lag_seconds": round(lag, 3),
        }

    def document_ids(self) -> set[str]:
        """Return the ids of every live document in the replica (for checks and tests)."""
        path = self.location.current_dir()
        if path is None:
            return set()
        ix = whoosh_index.open_dir(str(path))
        with ix.searcher() as searcher:
            return {fields["id"] for fields in searcher.all_stored_fields()}
