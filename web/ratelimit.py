"""A per-client request budget for the public related-coverage endpoints (the API, oEmbed and the embeds)."""

from __future__ import annotations

import math
import threading
import time


class RateLimiter:
    """Fixed one-minute windows per client address; thread-safe, in-process."""

    def __init__(self, per_minute: int) -> None:
        #: Requests one client may make per minute; 0 or less turns the limit off.
        self.per_minute = per_minute
        self._windows: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def check(self, client: str, now: float | None = None) -> int:
        """Return 0 when the request may proceed, else the seconds until the client may retry."""
        if self.per_minute <= 0:
            return 0
        now = time.time() if now is None else now
        window = int(now // 60)
        with self._lock:
            start, count = self._windows.get(client, (window, 0))
            if start != window:
                start, count = window, 0
                if len(self._windows) > 100_000:
                    self._windows = {k: v for k, v in self._windows.items() if v[0] == window}
            if count >= self.per_minute:
                return max(1, math.ceil((window + 1) * 60 - now))
            self._windows[client] = (start, count + 1)
        return 0
