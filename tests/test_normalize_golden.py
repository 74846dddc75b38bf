"""Golden tests: a feed file in, exactly the expected records out.

Each tests/fixtures/golden/<name>.json holds the FeedContext to normalize with and the expected
records of tests/fixtures/feeds/<name> (the seed story's golden reads ../shared/seed). After a
deliberate change, regenerate with ``NEWSDESK_UPDATE_GOLDEN=1 pytest tests/test_normalize_golden.py``
and review the diff.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from aggregator.models import Entry, FeedContext
from aggregator.normalize import normalize_feed
from aggregator.parse import parse_feed

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FEEDS = FIXTURES / "feeds"
GOLDEN = FIXTURES / "golden"
SEED = Path(__file__).resolve().parents[2] / "shared" / "seed" / "story-feed.xml"
UPDATE = os.environ.get("NEWSDESK_UPDATE_GOLDEN") == "1"


def record(entry: Entry) -> dict[str, Any]:
    """Return an Entry as a JSON-ready dict, dates in ISO 8601 UTC."""
    return {
        "id": entry.id,
        "identity": entry.identity,
        "url": entry.url,
        "title": entry.title,
        "authors": list(entry.authors),
        "published_at": entry.published_at.isoformat().replace("+00:00", "Z"),
        "updated_at": entry.updated_at.isoformat().replace("+00:00", "Z") if entry.updated_at else None,
        "summary": entry.summary,
        "content_html": entry.content_html,
        "text": entry.text,
        "image": {"url": entry.image.url, "caption": entry.image.caption} if entry.image else None,
        "tags": list(entry.tags),
        "language": entry.language,
        "word_count": entry.word_count,
        "fingerprint": entry.fingerprint,
        "flags": list(entry.flags),
    }


def context_from(table: dict[str, Any]) -> FeedContext:
    """Return the FeedContext a golden file describes."""
    return FeedContext(
        feed_key=table["feed_key"],
        feed_url=table["feed_url"],
        source_title=table["source_title"],
        site_url=table.get("site_url"),
        fetched_at=datetime.fromisoformat(table["fetched_at"]),
        timezone=table.get("timezone", "UTC"),
    )


def golden_cases() -> list[str]:
    return sorted(path.stem for path in GOLDEN.glob("*.json"))


def feed_path(name: str) -> Path:
    if name == "story-feed":
        return SEED
    matches = sorted(FEEDS.glob(f"{name}.*"))
    assert matches, f"no fixture feed for golden {name}.json"
    return matches[0]


@pytest.mark.parametrize("name", golden_cases())
def test_feed_gives_exactly_the_expected_records(name: str) -> None:
    path = feed_path(name)
    if not path.exists():
        pytest.skip(f"{path} is not present")
    golden_file = GOLDEN / f"{name}.json"
    golden = json.loads(golden_file.read_text(encoding="utf-8"))
    entries = normalize_feed(parse_feed(path.read_bytes()), context_from(golden["context"]))
    actual = [record(entry) for entry in entries]
    if UPDATE:
        golden["entries"] = actual
        golden_file.write_text(json.dumps(golden, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    assert actual == golden["entries"]


def test_every_fixture_feed_has_a_golden_file() -> None:
    missing = [path.name for path in FEEDS.iterdir() if not (GOLDEN / f"{path.stem}.json").exists()]
    assert not missing
