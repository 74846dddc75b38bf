"""A one-line progress bar on stderr for long operator commands, drawn only when stderr is a terminal.

Redirected to a file, piped, or under cron, a command prints exactly what it printed before: no bar,
no carriage returns. Lines a command prints while the bar is up go above it.
"""

from __future__ import annotations

import logging
import shutil
import sys
import threading
import time
from typing import IO, Any

import click

from aggregator.models import Feed, UpdateResult
from aggregator.observe import PollObserver

#: Shortest time between two redraws: a fast loop must not spend its time drawing.
REDRAW_SECONDS = 0.1


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or odd stream is no terminal
        return False


class Progress:
    """Counts work done out of ``total`` and draws ``label [####    ] done/total pct eta`` on a terminal."""

    def __init__(self, label: str, total: int, *, stream: IO[str] | None = None) -> None:
        self.label = label
        self.total = max(0, total)
        self.done = 0
        self.stream = stream or sys.stderr
        #: Whether anything is drawn at all (stderr is a terminal and there is more than one step).
        self.visible = _is_terminal(self.stream) and self.total > 1
        self._started = time.monotonic()
        self._drawn_at = 0.0
        self._lock = threading.RLock()  # poll observers advance it from the poller's writer thread
        self._diverted: list[logging.StreamHandler[Any]] = []

    def __enter__(self) -> Progress:
        if self.visible:
            # Log lines (a poll logs one per feed) go above the bar instead of after it on its line.
            for handler in logging.getLogger().handlers:
                if isinstance(handler, logging.StreamHandler) and handler.stream is self.stream:
                    handler.setStream(_AboveBar(self))
                    self._diverted.append(handler)
        self._draw(force=True)
        return self

    def __exit__(self, *exc: object) -> None:
        for handler in self._diverted:
            handler.setStream(self.stream)
        self._diverted.clear()
        self._clear()

    def advance(self, steps: int = 1) -> None:
        """Count ``steps`` more units of work done and redraw (at most every REDRAW_SECONDS)."""
        with self._lock:
            self.done = min(self.total, self.done + steps) if self.total else self.done + steps
            self._draw(force=self.done == self.total)

    def echo(self, line: str, *, err: bool = False) -> None:
        """Print ``line`` (to stdout, or stderr with ``err``) above the bar, then draw the bar again."""
        with self._lock:
            self._clear()
            click.echo(line, err=err)
            self._draw(force=True)

    def render(self, width: int) -> str:
        """Return the bar as one line of at most ``width`` characters."""
        fraction = self.done / self.total if self.total else 0.0
        elapsed = time.monotonic() - self._started
        eta = ""
        if 0 < self.done < self.total:
            eta = f" {_clock(elapsed / self.done * (self.total - self.done))} left"
        tail = f" {self.done}/{self.total} {fraction:4.0%}{eta}"
        room = width - len(self.label) - len(tail) - 3
        if room < 10:
            return f"{self.label}{tail}"[: max(0, width - 1)]
        filled = round(room * fraction)
        return f"{self.label} [{'#' * filled}{'-' * (room - filled)}]{tail}"

    def _draw(self, *, force: bool = False) -> None:
        if not self.visible:
            return
        now = time.monotonic()
        if not force and now - self._drawn_at < REDRAW_SECONDS:
            return
        self._drawn_at = now
        width = shutil.get_terminal_size((80, 24)).columns
        self.stream.write("\r\x1b[K" + self.render(width))
        self.stream.flush()

    def _clear(self) -> None:
        if self.visible:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


class _AboveBar:
    """A stream for log handlers while a bar is up: each line clears the bar, is written, and the bar comes back."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def write(self, text: str) -> int:
        progress = self.progress
        with progress._lock:
            progress._clear()
            written = progress.stream.write(text)
            if text.endswith("\n"):
                progress._draw(force=True)
            return written

    def flush(self) -> None:
        self.progress.stream.flush()


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class ProgressObserver(PollObserver):
    """Advances a Progress by one for every feed a poll has checked."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def checked(self, feed: Feed, result: UpdateResult, outcome: str) -> None:
        """Count one feed done."""
        self.progress.advance()


class CountingEntries:
    """An entry source for a rebuild that advances a Progress per entry read (wraps the store)."""

    def __init__(self, source: Any, progress: Progress) -> None:
        self.source = source
        self.progress = progress

    def iter_entries(self, batch: int = 1000) -> Any:
        """Yield the source's entries, counting each."""
        for entry in self.source.iter_entries(batch):
            self.progress.advance()
            yield entry

    def __getattr__(self, name: str) -> Any:
        # changes_since, last_seq...: the rest of the store as it is.
        return getattr(self.source, name)
