"""Normalize every feed file of ../shared/corpus/feeds and print the counts: files, entries, errors by kind.

Usage: .venv/bin/python bench/corpus_report.py [CORPUS_DIR] [--errors]
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from aggregator.errors import NotAFeedError, ParseError  # noqa: E402
from aggregator.models import Entry, FeedContext  # noqa: E402
from aggregator.normalize import normalize_feed  # noqa: E402
from aggregator.parse import parse_feed  # noqa: E402

DEFAULT_CORPUS = REPO.parent / "shared" / "corpus" / "feeds"
# Files in the corpus that are not feed documents: licences, the other parsers' expected outputs, indexes.
NOT_FEEDS = (".json", ".tsv", ".md", ".txt", ".py", ".go", ".rs", ".js", ".rb", ".ts")
FETCHED_AT = datetime(2026, 3, 1, tzinfo=UTC)


def feed_files(root: Path) -> Iterator[Path]:
    """Yield every feed document under ``root`` in a stable order."""
    for path in sorted(root.rglob("*")):
        licence = path.name.upper().startswith(("LICENSE", "README", "COPYING"))
        if path.is_file() and not licence and path.suffix.lower() not in NOT_FEEDS:
            yield path


def context_for(path: Path) -> FeedContext:
    """Return the FeedContext a poll of ``path`` would use (no site URL known beforehand)."""
    url = path.resolve().as_uri()
    return FeedContext(feed_key=url, feed_url=url, source_title=path.name, site_url=None, fetched_at=FETCHED_AT)


def error_kind(exc: Exception) -> str:
    """Return a short label for the kind of a per-file failure."""
    if isinstance(exc, NotAFeedError):
        return "not a feed: HTML page"
    if isinstance(exc, ParseError):
        message = getattr(exc, "message", str(exc))
        return message.split(" (", 1)[0]
    return f"crash: {type(exc).__name__}"


def normalize_file(path: Path) -> tuple[list[Entry], str | None]:
    """Return the entries of one file, or no entries and a one-line error saying why."""
    try:
        parsed = parse_feed(path.read_bytes())
        entries = normalize_feed(parsed, context_for(path))
    except ParseError as exc:
        return [], error_kind(exc)
    if not entries:
        return [], "a feed without entries"
    return entries, None


def main(argv: list[str]) -> int:
    """Print the corpus counts; exit 1 when anything crashed."""
    show_errors = "--errors" in argv
    args = [a for a in argv if not a.startswith("--")]
    root = Path(args[0]) if args else DEFAULT_CORPUS
    if not root.is_dir():
        print(f"{root}: no such corpus directory", file=sys.stderr)
        return 2
    files = entries = 0
    errors: Counter[str] = Counter()
    flags: Counter[str] = Counter()
    crashed = False
    started = time.perf_counter()
    for path in feed_files(root):
        files += 1
        try:
            found, error = normalize_file(path)
        except Exception as exc:  # the report must list a crash, not stop at it
            found, error, crashed = [], f"crash: {type(exc).__name__}: {exc}", True
        entries += len(found)
        for entry in found:
            flags.update(entry.flags)
        if error:
            errors[error] += 1
            if show_errors:
                print(f"{path.relative_to(root)}: {error}")
    elapsed = time.perf_counter() - started
    print(f"corpus: {root}")
    print(f"files: {files}  with entries: {files - sum(errors.values())}  entries: {entries}  ({elapsed:.1f} s)")
    print(f"errors: {sum(errors.values())}")
    for kind, count in errors.most_common():
        print(f"  {count:4d}  {kind}")
    print("entry flags:")
    for flag, count in flags.most_common():
        print(f"  {count:5d}  {flag}")
    return 1 if crashed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
