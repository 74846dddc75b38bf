"""The index's writer lock: one process (and one thread) at a time writes the index, the others wait a bounded time.

`newsdesk run` indexes after every poll while an operator may run `newsdesk index`, `reindex`
or `poll` from a shell. Whoosh's own write lock fails at once (``LockError``) when it is taken,
and a reindex swapping generations under a running writer would delete the directory it writes
to. So every write goes through this lock: an ``flock`` on a file in the index root, which the
kernel releases when its holder dies (a SIGKILL never leaves the index locked), held per open
file, so two threads of one process exclude each other as well.
"""

from __future__ import annotations

import fcntl
import os
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

from aggregator.errors import IndexBusyError

#: The lock file, in the index root (beside CURRENT and the generation directories).
LOCK_FILE = "newsdesk-writer.lock"
#: Seconds a writer waits for the lock unless told otherwise.
DEFAULT_WAIT = 60.0


class WriterLock:
    """An exclusive, bounded-wait lock on writing the index under ``root``."""

    def __init__(self, root: Path, *, wait: float = DEFAULT_WAIT, stop: threading.Event | None = None) -> None:
        #: The index root holding the lock file.
        self.root = Path(root)
        #: Seconds to wait for another writer before giving up.
        self.wait = wait
        #: When set, waiting gives up at once (the process is stopping).
        self.stop = stop
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, waiting up to ``wait`` seconds; raise IndexBusyError naming the holder if it stays taken."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.wait
        delay = 0.02
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                stopping = self.stop is not None and self.stop.is_set()
                if stopping or time.monotonic() >= deadline:
                    holder = _read_holder(fd)
                    os.close(fd)
                    raise IndexBusyError(
                        f"the search index is being written by {holder}"
                        + ("" if stopping else f" (waited {self.wait:.0f} s)")
                        + "; try again when it is done"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.25)
        # Who holds it, for the message another writer shows while it waits in vain.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {_command()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Release the lock (closing the file releases the flock)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _command() -> str:
    line = " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]]) if sys.argv else "python"
    return line if len(line) <= 120 else line[:117] + "..."


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    pid, _, command = text.partition(" ")
    if not pid.isdigit():
        return "another process"
    return f"process {pid} ({command or 'newsdesk'})"
