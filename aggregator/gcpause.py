"""Pausing Python's cyclic garbage collector around a burst of allocations that leaves no cycles behind.

Assigning a batch of stories allocates tens of thousands of short-lived containers (term dicts,
candidate lists, story states) while the writer holds every story it has seen in memory. Every
700 container allocations (net) start a young collection, every tenth of those an older one, and
now and then a full one walks the whole heap: over the 228,020-entry corpus the collector took
about a tenth of the writer's assignment CPU (README, "Stories speed").
A batch makes no reference cycles of its own (its garbage is freed by reference counting), so
the collector is paused while it runs and restored afterwards, whatever happens.

The collector's switch is the whole process's: in ``newsdesk run`` the web threads allocate
without cyclic collection for the length of a batch (well under a second), then collection
resumes as before. Pauses nest and may overlap across threads: the first one to start records
whether the collector was enabled and disables it, the last one to end restores that state, so
a collector that was enabled is never left disabled, and one disabled by someone else stays so.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collector_paused"]

_lock = threading.Lock()
# How many pauses are in progress, and whether the collector was enabled when the first began.
_depth = 0
_was_enabled = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """Return a context in which the cyclic garbage collector does not run; its state is restored on exit."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
