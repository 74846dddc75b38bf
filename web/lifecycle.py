"""How `newsdesk run` and `newsdesk serve` stop: SIGTERM or SIGINT, once or more, ends the process in bounded time.

The first signal (or the second: `make` passes a SIGTERM on to its child, and Ctrl-C or
`kill -TERM -<pgid>` reaches every process of the group, so two in a row are normal) logs one
line and starts the stop: the web server stops accepting, no new feed check starts, the checks
and requests in flight get ``grace`` seconds to end, and the process exits 0. A third signal
forces the exit at once. Work abandoned by a stop is safe: the store commits one check at a time,
the index resumes from the last change it committed, and feeds not yet checked stay due.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from typing import Any

log = logging.getLogger("newsdesk")

#: Seconds a stop waits for work in flight (checks, index batches, requests) before abandoning it.
STOP_GRACE_SECONDS = 4.0
#: Signals that ask the process to stop.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: The signal count that forces the exit without waiting.
FORCE_AFTER = 3


class Shutdown:
    """Counts stop signals: the first starts a graceful stop, the third forces the exit."""

    def __init__(self, grace: float = STOP_GRACE_SECONDS) -> None:
        #: Seconds the stop waits for work in flight.
        self.grace = grace
        #: Set by the first stop signal (or ``request``); loops and long tasks check it.
        self.requested = threading.Event()
        #: When the stop was requested (monotonic clock), for the grace deadline.
        self.requested_at: float | None = None
        self._signals = 0

    def install(self) -> None:
        """Handle SIGTERM and SIGINT in this process (call from the main thread, early)."""
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)

    def request(self, reason: str) -> None:
        """Start the stop (idempotent), logging ``reason`` once."""
        if self.requested.is_set():
            return
        self.requested_at = time.monotonic()
        self.requested.set()
        log.info("stopping (%s): finishing work in flight for up to %.0f s", reason, self.grace)

    def remaining(self) -> float:
        """Return the seconds left of the grace period (all of it when no stop was requested)."""
        if self.requested_at is None:
            return self.grace
        return max(0.0, self.requested_at + self.grace - time.monotonic())

    def _on_signal(self, signum: int, frame: Any) -> None:
        # Runs in the main thread between two bytecodes: set flags, log, never raise.
        self._signals += 1
        if self._signals >= FORCE_AFTER:
            os.write(2, b"newsdesk: stop forced by a third signal; work in flight abandoned\n")
            os._exit(1)
        self.request(signal.Signals(signum).name)


def serve_until_stopped(server: Any, shutdown: Shutdown) -> None:
    """Run a waitress server until a stop is requested, then stop accepting and let requests in flight finish."""
    adjustments = server.adj
    sockets: dict[int, Any] = getattr(server, "_map", None) or server.map

    def turn() -> None:
        # Short slices rather than server.run(): the loop notices a stop within half a second, and
        # the sockets are closed on this thread, the one that polls them.
        server.asyncore.loop(
            timeout=min(0.5, adjustments.asyncore_loop_timeout),
            map=sockets,
            use_poll=adjustments.asyncore_use_poll,
            count=1,
        )

    try:
        while not shutdown.requested.is_set():
            turn()
        for listener in _listeners(server):
            # The dispatcher's own close, not the server's: that one also closes the trigger that
            # request threads still pull when their answer is ready.
            server.asyncore.dispatcher.close(listener)
        # Requests already taken are answered; their bytes go out through this loop.
        tasks = server.task_dispatcher
        deadline = time.monotonic() + min(2.0, shutdown.remaining())
        while time.monotonic() < deadline and (
            tasks.active_count or tasks.queue or any(getattr(c, "total_outbufs_len", 0) for c in sockets.values())
        ):
            turn()
    finally:
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=0.5)
        for channel in list(sockets.values()):
            try:
                channel.close()
            except OSError:  # already closed by its peer
                pass


def _listeners(server: Any) -> list[Any]:
    """Return the listening dispatchers of a waitress server (itself, or one per address of a multi-socket one)."""
    from waitress.server import BaseWSGIServer

    if isinstance(server, BaseWSGIServer):
        return [server]
    return [d for d in server.map.values() if isinstance(d, BaseWSGIServer)]


def exit_soon(seconds: float) -> None:
    """Make sure the process is gone within ``seconds`` from now, however the interpreter's exit goes."""

    # A normal exit runs the finalizers (multiprocessing's included: an os._exit leaves the resource
    # tracker warning about "leaked" semaphores), then joins the threads the scheduler and thread
    # pools started. A job still running past the grace period (an index merge) would hold the exit
    # there; this daemon thread still runs during that join and cuts it short.
    def watchdog() -> None:
        time.sleep(seconds)
        exit_now(0)

    threading.Thread(target=watchdog, name="newsdesk-exit-watchdog", daemon=True).start()


def exit_now(code: int = 0) -> None:
    """Flush the logs and leave the process at once, without waiting for threads still at work."""
    # Everything such a thread does is crash-safe: a check commits as one transaction, the index
    # resumes from its last commit, and feeds not checked stay due.
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
