"""Imported only as a fork server preload: the fork server, and every parse worker it forks, ignores SIGINT and SIGTERM.

Ctrl-C (through `make run`, too) and `kill -TERM -<pgid>` reach every process of the group. The
parent decides what a stop means (finish or abandon the checks in flight) and shuts its workers
down; a worker killed by the signal would fail its parse as if the feed were at fault, or print a
KeyboardInterrupt traceback while it starts (a second or more: it re-imports the main script).
The fork server imports its preloads before it saves the handlers its children get back, and an
ignored signal stays ignored across fork, so workers are deaf from their first instruction.
"""

from __future__ import annotations

import signal
import sys


def _in_fork_server() -> bool:
    # The fork server runs as `python -c 'from multiprocessing.forkserver import main; main(...)'`.
    return sys.argv[:1] == ["-c"] and "multiprocessing.forkserver" in sys.modules


if _in_fork_server():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
