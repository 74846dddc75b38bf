"""Normalize every feed file of the shared corpus: no traceback, clean records, or a one-line error."""

from __future__ import annotations

import html
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.errors import ParseError
from aggregator.models import FeedContext
from aggregator.normalize import normalize_feed
from aggregator.parse import parse_feed

SHARED = Path(__file__).resolve().parents[2] / "shared"
CORPUS = SHARED / "corpus" / "feeds"
NOT_FEEDS = (".json", ".tsv", ".md", ".txt", ".py", ".go", ".rs", ".js", ".rb", ".ts")
# What an HTML parser would read as a tag. Checked per paragraph: code samples put a literal "<" in
# one paragraph and a ">" in a later one, which is text, not markup.
TAG = re.compile(r"<(?:[A-Za-z]|/[A-Za-z]|!|\?)[^<>]*>")
FETCHED_AT = datetime(2026, 3, 1, tzinfo=UTC)

pytestmark = pytest.mark.slow


def _feed_files() -> list[Path]:
    return [
        path
        for path in sorted(CORPUS.rglob("*"))
        if path.is_file()
        and not path.name.upper().startswith(("LICENSE", "README", "COPYING"))
        and path.suffix.lower() not in NOT_FEEDS
    ]


def test_every_corpus_feed_normalizes_cleanly_or_says_why() -> None:
    if not CORPUS.is_dir():
        pytest.skip("../shared/corpus/feeds is not present")
    files = _feed_files()
    assert len(files) > 100, "the corpus looks truncated"
    errors: Counter[str] = Counter()
    problems: list[str] = []
    total = 0
    for path in files:
        context = FeedContext(
            feed_key=path.as_uri(),
            feed_url=path.as_uri(),
            source_title=path.name,
            site_url=None,
            fetched_at=FETCHED_AT,
        )
        try:
            entries = normalize_feed(parse_feed(path.read_bytes()), context)
        except ParseError as exc:
            message = str(exc)
            assert message and "\n" not in message, f"{path}: error is not one line: {message!r}"
            errors[exc.message.split(" (", 1)[0].split(";", 1)[0]] += 1
            continue
        if not entries:
            errors["a feed without entries"] += 1
            continue
        total += len(entries)
        assert len({e.id for e in entries}) == len(entries), f"{path}: duplicate ids"
        for entry in entries:
            where = f"{path.relative_to(CORPUS)}: {entry.identity[:60]!r}"
            if not entry.title.strip() or not entry.id:
                problems.append(f"{where}: empty title or id")
            if entry.published_at.tzinfo is None or entry.published_at.utcoffset() != UTC.utcoffset(None):
                problems.append(f"{where}: published_at is not UTC")
            if entry.updated_at is not None and entry.updated_at.utcoffset() != UTC.utcoffset(None):
                problems.append(f"{where}: updated_at is not UTC")
            for field in ("title", "text", "summary"):
                value = getattr(entry, field)
                tags = [match.group(0) for part in value.split("\n\n") if (match := TAG.search(part))]
                if tags:
                    problems.append(f"{where}: {field} holds a tag: {tags[0][:60]!r}")
                if html.unescape(value) != value:
                    problems.append(f"{where}: {field} holds an entity")
    assert not problems, "\n".join(problems[:30])
    assert total > 5000
    # Every error is one a user can act on ("not a feed: ..."), never a crash.
    assert all(kind.startswith("not a feed:") or kind == "a feed without entries" for kind in errors), errors
    print(f"files={len(files)} entries={total} errors={dict(errors)}")
