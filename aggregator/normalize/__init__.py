"""Pure functions from parsed entries to clean Entry records (minimal first version)."""

from __future__ import annotations

import hashlib
import html
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from ..models import Entry, FeedContext, ParsedEntry, ParsedFeed, Source

_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def _plain(value: str | None) -> str:
    return _SPACE.sub(" ", html.unescape(_TAG.sub(" ", value or ""))).strip()


def _date(raw: str | None) -> datetime | None:
    if not raw:
        return None
    try:
        parsed = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def entry_id(feed_key: str, identity: str) -> str:
    """Return the stable public id of an entry: a hash of its feed key and identity."""
    return hashlib.sha256(f"{feed_key}\x00{identity}".encode()).hexdigest()[:20]


def normalize_entry(parsed: ParsedEntry, context: FeedContext) -> Entry:
    """Return the clean Entry for one parsed entry."""
    body = parsed.contents[0].value if parsed.contents else (parsed.summary.value if parsed.summary else "")
    text = _plain(body)
    title = _plain(parsed.title) or " ".join(text.split()[:10]) or "(untitled)"
    published = _date(parsed.published_raw) or _date(parsed.updated_raw) or context.fetched_at
    identity = parsed.guid or parsed.link or hashlib.sha256(f"{title}{published}".encode()).hexdigest()
    return Entry(
        id=entry_id(context.feed_key, identity),
        feed_key=context.feed_key,
        identity=identity,
        url=parsed.link or context.feed_url,
        title=title,
        authors=parsed.authors,
        published_at=published,
        updated_at=_date(parsed.updated_raw),
        summary=_plain(parsed.summary.value if parsed.summary else "")[:300],
        content_html=body,
        text=text,
        image=None,
        tags=parsed.tags,
        language=(parsed.language or context.language or "")[:2] or None,
        word_count=len(text.split()),
        fingerprint=0,
        source=Source(feed_url=context.feed_url, title=context.source_title, site_url=context.site_url),
    )


def normalize_feed(parsed: ParsedFeed, context: FeedContext) -> list[Entry]:
    """Return the clean Entries of a parsed feed, one per distinct identity."""
    seen: dict[str, Entry] = {}
    for item in parsed.entries:
        entry = normalize_entry(item, context)
        seen.setdefault(entry.id, entry)
    return list(seen.values())
