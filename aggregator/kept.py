"""Values kept in a process by key, least recently used out first, each for a while: the one cache mechanism
the layers share (related answers and meanings on the web side, story lists, term weights for story
assignment and related coverage)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

__all__ = ["Kept"]


class Kept:
    """Values by key, each served again for ``seconds`` (the key names the data it came from); thread-safe,
    least recently used out first. Values are shared: callers must not change one they were given."""

    def __init__(self, size: int, seconds: float) -> None:
        self.size = size
        self.seconds = seconds
        self._values: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        #: Values served from here and computed, since the process started.
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """Return the value kept for ``key`` when recent enough, else ``compute()`` (and keep it)."""
        now = time.monotonic()
        with self._lock:
            held = self._values.get(key)
            if held is not None and now - held[0] < self.seconds:
                self._values.move_to_end(key)
                self.hits += 1
                return held[1]
        value = compute()
        with self._lock:
            self.misses += 1
            self._values[key] = (now, value)
            self._values.move_to_end(key)
            while len(self._values) > self.size:
                self._values.popitem(last=False)
        return value

    def holds(self, key: Hashable) -> bool:
        """Return True when a value for ``key`` would be served from here now (counts nothing)."""
        with self._lock:
            held = self._values.get(key)
            return held is not None and time.monotonic() - held[0] < self.seconds

    def clear(self) -> None:
        """Forget every value (the counts stay)."""
        with self._lock:
            self._values.clear()
