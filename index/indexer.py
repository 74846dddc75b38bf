"""The single writer of the Whoosh index: consumes the store's change log, resumes where it stopped."""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any, Protocol

from whoosh import index as whoosh_index
from whoosh.filedb.filestore import StorageError as WhooshStorageError
from whoosh.index import FileIndex
from whoosh.writing import IndexingError, SegmentWriter

from aggregator.errors import NewsdeskError, SearchIndexError
from aggregator.models import Change, Entry

from .dupgroups import DupGroups
from .health import check_documents, describe
from .schema import SCHEMA_VERSION, add_missing_fields, build_schema, entry_document
from .writelock import DEFAULT_WAIT, WriterLock

log = logging.getLogger("newsdesk.index")

STATE_FILE = "newsdesk-indexer.json"
CURRENT_FILE = "CURRENT"
#: How `Indexer.check` begins when there is no index at all (not an index gone bad).
NO_INDEX_YET = "there is no index yet"
#: Prefix of a generation being built (by a rebuild): never live, renamed to ``gen-*`` when complete.
BUILDING_PREFIX = "building-"


class ChangeSource(Protocol):
    """What the indexer needs from the store: the change log."""

    def changes_since(self, seq: int, limit: int = 1000) -> list[Change]:
        """Return changes after ``seq``."""
        ...

    def last_seq(self) -> int:
        """Return the newest sequence number."""
        ...


class EntrySource(ChangeSource, Protocol):
    """What a full rebuild needs: every entry, too."""

    def iter_entries(self, batch: int = 1000) -> Iterator[Entry]:
        """Yield every entry."""
        ...

    def count_entries(self) -> int:
        """Return how many entries are stored."""
        ...


@dataclass(frozen=True)
class IndexStats:
    """What one indexing run did."""

    #: Documents added or replaced.
    upserts: int
    #: Documents deleted.
    deletes: int
    #: Commits made.
    commits: int
    #: The change sequence the index now reflects.
    seq: int


class IndexLocation:
    """The index root: generation directories and a CURRENT file naming the live one."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def current_dir(self) -> Path | None:
        """Return the live generation's directory, or None when no index exists yet."""
        try:
            name = (self.root / CURRENT_FILE).read_text().strip()
        except FileNotFoundError:
            return None
        path = self.root / name
        return path if path.is_dir() else None

    def current_name(self) -> str | None:
        """Return the generation CURRENT names (whether or not it exists), or None without a CURRENT file."""
        try:
            return (self.root / CURRENT_FILE).read_text().strip()
        except FileNotFoundError:
            return None

    def new_generation(self) -> Path:
        """Return a fresh, empty directory to build a generation in (not live; ``publish`` makes it so)."""
        self.root.mkdir(parents=True, exist_ok=True)
        # The pid in the name tells a build in progress from one whose process died (see remove_stale_builds).
        path = self.root / f"{BUILDING_PREFIX}{os.getpid()}-{time.time_ns()}"
        path.mkdir()
        return path

    def publish(self, building: Path) -> Path:
        """Rename a built generation to its final name and make it live; return its new path (hold the writer lock)."""
        path = self.root / f"gen-{time.time_ns()}"
        os.rename(building, path)
        self.make_live(path)
        return path

    def remove_stale_builds(self) -> None:
        """Delete generations left half-built by a process that died (killed during a rebuild)."""
        for path in self.root.glob(BUILDING_PREFIX + "*"):
            pid = path.name.removeprefix(BUILDING_PREFIX).split("-", 1)[0]
            if pid.isdigit() and not _process_alive(int(pid)):
                shutil.rmtree(path, ignore_errors=True)

    def make_live(self, path: Path) -> None:
        """Atomically point CURRENT at ``path`` and remove older generations."""
        tmp = self.root / (CURRENT_FILE + ".tmp")
        tmp.write_text(path.name + "\n")
        os.replace(tmp, self.root / CURRENT_FILE)  # atomic on POSIX: readers see the old or the new name
        for old in self.root.glob("gen-*"):
            if old != path and old.is_dir():
                shutil.rmtree(old, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: the pid was reused
        return False
    return True


#: What opening or writing an index on disk raises when it fails: Whoosh's own errors (a damaged or
#: locked index, a newer format) and the disk's (full, gone, not writable).
INDEX_FAILURES = (whoosh_index.IndexError, whoosh_index.LockError, IndexingError, WhooshStorageError, OSError)


@contextmanager
def index_errors(action: str, path: Path | None) -> Iterator[None]:
    """Raise SearchIndexError (chained) for an index failure inside the block; ``action`` says what was tried."""
    try:
        yield
    except INDEX_FAILURES as exc:
        raise SearchIndexError(f"cannot {action} the search index in {path}: {exc}") from exc


def create_index(path: Path) -> FileIndex:
    """Return a new empty index in ``path`` with our schema, its state at sequence 0."""
    ix = whoosh_index.create_in(str(path), build_schema())
    _write_state(path, 0)
    return ix


def _read_state(path: Path) -> dict[str, Any]:
    try:
        state: dict[str, Any] = json.loads((path / STATE_FILE).read_text())
        return state
    except (FileNotFoundError, json.JSONDecodeError):
        # No state file: an index this version just created (create_index writes one at once).
        return {"seq": 0, "schema": SCHEMA_VERSION}


def _write_state(path: Path, seq: int) -> None:
    tmp = path / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps({"seq": seq, "schema": SCHEMA_VERSION}))
    os.replace(tmp, path / STATE_FILE)


class Indexer:
    """Applies the change log to the live index; the only code that writes to Whoosh.

    Every write holds the index's writer lock (see ``writelock``), waiting at most ``lock_wait``
    seconds for another process's write to end.
    """

    def __init__(
        self,
        root: Path,
        source: ChangeSource,
        *,
        batch_size: int = 2000,
        stop: threading.Event | None = None,
        lock_wait: float = DEFAULT_WAIT,
    ) -> None:
        self.location = IndexLocation(root)
        self.source = source
        self.batch_size = batch_size
        #: When set, long runs end after the batch in progress (the process is stopping).
        self.stop = stop
        #: Seconds to wait for the writer lock another process holds.
        self.lock_wait = lock_wait

    def writer_lock(self) -> WriterLock:
        """Return the (not yet taken) lock every write of this index holds."""
        return WriterLock(self.location.root, wait=self.lock_wait, stop=self.stop)

    def open(self) -> tuple[FileIndex, Path]:
        """Return the live index (creating an empty one if none exists) and its directory; hold the writer lock."""
        path = self.location.current_dir()
        with index_errors("open", path or self.location.root):
            if path is None or not whoosh_index.exists_in(str(path)):
                building = self.location.new_generation()
                create_index(building)
                path = self.location.publish(building)
            return whoosh_index.open_dir(str(path)), path

    def indexed_seq(self) -> int:
        """Return the change sequence the live index reflects."""
        path = self.location.current_dir()
        return int(_read_state(path)["seq"]) if path else 0

    def catch_up(self, *, max_batches: int | None = None) -> IndexStats:
        """Apply every change since the last committed one, a batch per commit; return what was done.

        An index written with another schema version cannot take new documents, and one that no
        longer opens cannot take any: either is rebuilt from the store beside the live one
        (searches keep using the old one until the swap).
        """
        with self.writer_lock():
            return self._catch_up(max_batches)

    def _catch_up(self, max_batches: int | None) -> IndexStats:
        rebuildable = hasattr(self.source, "iter_entries")
        problem = self.check()  # opens every segment: cheap next to a batch, and a damaged index cannot take one
        if problem is not None and rebuildable:
            return self._rebuild_because(problem)
        ix, path = self.open()
        if int(_read_state(path).get("schema", 0)) != SCHEMA_VERSION and rebuildable:
            return self._rebuild_because(f"its schema changed (now version {SCHEMA_VERSION})")
        return apply_changes(ix, path, self.source, self.batch_size, max_batches=max_batches, stop=self.stop)

    def _rebuild_because(self, problem: str) -> IndexStats:
        # No index at all is how every install starts (a first `poll` stores entries before it indexes
        # them) and what deleting the index's directory asks for: building one is routine, not a warning.
        # A damaged index is worth one.
        first = problem.startswith(NO_INDEX_YET)
        level = logging.INFO if first else logging.WARNING
        verb = "building" if first else "rebuilding"
        log.log(level, "search index %s: %s; %s it from the store", self.location.root, problem, verb)
        stats = self._rebuild(self.source, locked=True)  # type: ignore[arg-type]
        done = "built" if first else "rebuilt"
        log.log(level, "search index %s from the store: %d entries (change seq %d)", done, stats.upserts, stats.seq)
        return stats

    def check(self, *, deep: bool = False) -> str | None:
        """Return what is wrong with the live index, or None when it is sound; writes nothing (readers may call it).

        The quick check opens the index and every segment; ``deep`` also reads every document id
        (each must appear once) and, when the index is level with the store, compares the counts.
        """
        location = self.location
        name = location.current_name()
        if name is None:
            if any(location.root.glob("gen-*")):
                return f"its {CURRENT_FILE} file is missing"
            stored = self.source.last_seq()
            return f"{NO_INDEX_YET} while the store holds changes up to seq {stored}" if stored else None
        path = location.root / name
        if not path.is_dir():
            return f"{CURRENT_FILE} names {name}, which does not exist"
        try:
            state = json.loads((path / STATE_FILE).read_text())
            seq = int(state["seq"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return f"its state file cannot be read ({describe(exc)})"
        try:
            ix = whoosh_index.open_dir(str(path))
            with ix.reader() as reader:
                if not deep:
                    return None
                problem, documents = check_documents(reader)
        except Exception as exc:  # whatever a damaged file makes Whoosh raise
            return f"it cannot be read ({describe(exc)})"
        if problem is not None or not hasattr(self.source, "count_entries"):
            return problem
        before = self.source.last_seq()
        stored = self.source.count_entries()  # type: ignore[attr-defined]
        # Only when no change landed between the reads, and the index has applied them all.
        if before == seq == self.source.last_seq() and stored != documents:
            return f"it holds {documents} documents for the store's {stored} entries"
        return None

    def repair(self) -> str | None:
        """Catch the index up, checking it; rebuild it from the store when missing or damaged. Return what was wrong.

        Called when a writer starts (`run`, `index`): a deleted or damaged index is noticed at
        once and logged, rather than when a search fails. Catching up checks quickly (every
        segment opens); this also reads every document id back and compares counts with the store.
        """
        self.location.remove_stale_builds()
        with self.writer_lock():
            problem = self.check()
            if problem is None:
                try:
                    self._catch_up(None)
                except Exception as exc:
                    if isinstance(exc, NewsdeskError) or (
                        isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError)
                    ):
                        raise  # busy, disk full, no permission: rebuilding would not help
                    problem = f"it cannot be updated ({describe(exc)})"  # a segment opens but cannot be read
                if problem is None and not self._stopping():
                    problem = self.check(deep=True)
            if problem is not None:
                self._rebuild_because(problem)
        return problem

    def segment_count(self) -> int:
        """Return how many segments the live index has (0 when there is none yet)."""
        path = self.location.current_dir()
        if path is None or not whoosh_index.exists_in(str(path)):
            return 0
        return len(whoosh_index.open_dir(str(path))._segments())

    def optimize(self) -> None:
        """Merge the live index's segments into one (run on a schedule, not per commit)."""
        with self.writer_lock(), index_errors("merge", self.location.root):
            ix, _ = self.open()
            writer = ix.writer()
            writer.commit(optimize=True)

    def optimize_if_needed(self, max_segments: int = 8) -> bool:
        """Merge segments when there are more than ``max_segments``; return whether it did.

        The `run` command schedules this every few hours: per-commit merges stay cheap
        (merge=True), and the full merge waits until fragmentation slows searches.
        """
        if self.segment_count() <= max_segments:
            return False
        self.optimize()
        return True

    def rebuild(self, source: EntrySource | None = None) -> IndexStats:
        """Build a fresh index beside the live one from every stored entry, then swap it in.

        The build itself takes no lock (the live index goes on taking changes meanwhile); only the
        last catch-up and the swap wait for the writer lock.
        """
        self.location.remove_stale_builds()
        return self._rebuild(source or self.source, locked=False)  # type: ignore[arg-type]

    def _stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def _rebuild(self, source: EntrySource, *, locked: bool) -> IndexStats:
        path = self.location.new_generation()
        try:
            ix = create_index(path)
            # Read the sequence first: changes after it are replayed by the catch-up below.
            seq = source.last_seq()
            count = 0
            commits = 0
            groups = DupGroups()
            for batch in _batched(source.iter_entries(), self.batch_size):
                if self._stopping():
                    raise SearchIndexError(
                        "stopped before the search index was rebuilt; it is rebuilt at the next start"
                    )
                writer = ix.writer(limitmb=256)
                for entry in batch:
                    group = groups.assign(entry.id, entry.fingerprint, entry.published_at.timestamp())
                    writer.add_document(**entry_document(entry, dupgroup=group))
                writer.commit(merge=True)
                commits += 1
                count += len(batch)
            _write_state(path, seq)
            _remember_groups(path, seq, groups)
            with nullcontext() if locked else self.writer_lock():
                caught = apply_changes(ix, path, source, self.batch_size)
                live = self.location.publish(path)
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        _rekey_groups(path, live)
        return IndexStats(
            upserts=count + caught.upserts, deletes=caught.deletes, commits=commits + caught.commits, seq=caught.seq
        )


def _batched(items: Iterable[Entry], size: int) -> Iterator[list[Entry]]:
    batch: list[Entry] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def apply_changes(
    ix: FileIndex,
    path: Path,
    source: ChangeSource,
    batch_size: int,
    *,
    max_batches: int | None = None,
    stop: threading.Event | None = None,
) -> IndexStats:
    """Apply changes after the index's recorded sequence to ``ix`` (until ``stop`` is set); return what was done."""
    seq = int(_read_state(path)["seq"])
    upserts = deletes = commits = 0
    batches = 0
    groups: DupGroups | None = None
    while (max_batches is None or batches < max_batches) and not (stop is not None and stop.is_set()):
        changes = source.changes_since(seq, limit=batch_size)
        if not changes:
            break
        if groups is None:
            groups = _dup_groups(ix, path, seq)
        # Only the newest state of each entry matters within a batch.
        latest: dict[str, Change] = {}
        for change in changes:
            latest[change.entry_id] = change
        try:
            writer: SegmentWriter = ix.writer(limitmb=128)
            add_missing_fields(writer)  # an index made before a stored field was added takes it from now on
            for entry_id, change in latest.items():
                if change.entry is None:
                    groups.remove(entry_id)
                    writer.delete_by_term("id", entry_id)
                    deletes += 1
                else:
                    entry = change.entry
                    # The group table knows every indexed id: a new entry skips update's delete-by-id lookup.
                    known = entry.id in groups
                    group = groups.assign(entry.id, entry.fingerprint, entry.published_at.timestamp())
                    document = entry_document(entry, dupgroup=group)
                    if known:
                        writer.update_document(**document)
                    else:
                        writer.add_document(**document)
                    upserts += 1
            # merge=True lets Whoosh merge small segments cheaply; full optimize runs on a schedule.
            writer.commit(merge=True)
        except BaseException as exc:
            # The in-memory groups saw changes that never reached the index: rebuild them next time.
            _forget_groups(path)
            if isinstance(exc, INDEX_FAILURES):
                raise SearchIndexError(f"cannot write the search index in {path}: {exc}") from exc
            raise
        seq = changes[-1].seq
        # Written after the commit: a crash in between replays the batch, and update_document is idempotent.
        _write_state(path, seq)
        _remember_groups(path, seq, groups)
        commits += 1
        batches += 1
        log.info("indexed seq=%d upserts=%d deletes=%d", seq, upserts, deletes)
    return IndexStats(upserts=upserts, deletes=deletes, commits=commits, seq=seq)


# The writer process keeps its group table between catch-up runs, keyed by generation and sequence,
# so a poll every few minutes does not re-read every fingerprint from the index.
_GROUPS_LOCK = threading.Lock()
_GROUPS: dict[Path, tuple[int, DupGroups]] = {}


def _remember_groups(path: Path, seq: int, groups: DupGroups) -> None:
    with _GROUPS_LOCK:
        _GROUPS.clear()  # one live generation per process is enough
        _GROUPS[path] = (seq, groups)


def _rekey_groups(old: Path, new: Path) -> None:
    """Keep the group table a rebuild made under its building name for the name it went live under."""
    with _GROUPS_LOCK:
        cached = _GROUPS.pop(old, None)
        if cached is not None:
            _GROUPS.clear()
            _GROUPS[new] = cached


def _forget_groups(path: Path) -> None:
    with _GROUPS_LOCK:
        _GROUPS.pop(path, None)


def _dup_groups(ix: FileIndex, path: Path, seq: int) -> DupGroups:
    """Return the group table for the index at ``path`` as of ``seq``, from memory or read from the index."""
    with _GROUPS_LOCK:
        cached = _GROUPS.get(path)
    if cached is not None and cached[0] == seq:
        return cached[1]
    groups = DupGroups()
    with ix.reader() as reader:
        for leaf, _offset in reader.leaf_readers():
            if leaf.doc_count_all() == 0:
                continue
            ids = leaf.column_reader("id", translate=True) if leaf.has_column("id") else None
            if ids is None:
                # An index written before the id column existed: read stored fields instead.
                for _docnum, fields in leaf.iter_docs():
                    published = fields["published"].replace(tzinfo=UTC).timestamp()
                    group = fields.get("dupgroup") or fields["id"]
                    groups.add(fields["id"], int(fields.get("fingerprint") or 0), published, group)
                continue
            fingerprints = leaf.column_reader("fingerprint", translate=True)
            published = leaf.column_reader("published", translate=True)
            dupgroups = leaf.column_reader("dupgroup", translate=True)
            deleted = leaf.is_deleted
            for docnum in range(leaf.doc_count_all()):
                if not deleted(docnum):
                    when = published[docnum].replace(tzinfo=UTC).timestamp()
                    groups.add(ids[docnum], fingerprints[docnum], when, dupgroups[docnum])
    return groups
