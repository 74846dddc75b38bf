"""The Whoosh schema for news entries, and the Entry -> document mapping."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from whoosh.analysis import CharsetFilter, LowercaseFilter, RegexTokenizer, StemFilter, StopFilter
from whoosh.fields import DATETIME, ID, KEYWORD, NUMERIC, TEXT, Schema
from whoosh.support.charset import accent_map

from aggregator.models import Entry

#: Bump when the schema changes; an index of another version is rebuilt by `newsdesk reindex`.
SCHEMA_VERSION = 1


def news_analyzer() -> Any:
    """Return the analyzer for English-first news text: words, lowercase, accents folded, stemmed."""
    return (
        RegexTokenizer(r"\w+(?:[.'’]\w+)*")
        | LowercaseFilter()
        | CharsetFilter(accent_map)
        | StopFilter(minsize=1)
        | StemFilter(lang="en", cachesize=50000)
    )


def build_schema() -> Schema:
    """Return the schema of the entries index."""
    analyzer = news_analyzer()
    return Schema(
        id=ID(stored=True, unique=True),
        title=TEXT(analyzer=analyzer, field_boost=2.5, stored=False, spelling=True),
        text=TEXT(analyzer=analyzer, stored=False),
        summary=TEXT(analyzer=analyzer, stored=False),
        authors=TEXT(stored=False),
        source=KEYWORD(stored=True, lowercase=True, commas=True, scorable=False),
        site=ID(stored=True),
        feed_key=ID(stored=True),
        tags=KEYWORD(stored=True, lowercase=True, commas=True),
        language=ID(stored=True),
        published=DATETIME(stored=True, sortable=True),
        url=ID(stored=True),
        dupgroup=ID(stored=True),
        fingerprint=NUMERIC(bits=64, signed=True, stored=True),
    )


def site_of(url: str | None) -> str:
    """Return the host of a URL without a leading www., lower-cased ("" when none)."""
    host = urlsplit(url or "").hostname or ""
    return host.removeprefix("www.")


def entry_document(entry: Entry, *, dupgroup: str | None = None) -> dict[str, Any]:
    """Return the Whoosh document for an entry."""
    return {
        "id": entry.id,
        "title": entry.title,
        "text": entry.text,
        "summary": entry.summary,
        "authors": " ".join(entry.authors),
        "source": entry.source.title.replace(",", " "),
        "site": site_of(entry.source.site_url or entry.url),
        "feed_key": entry.feed_key,
        "tags": ",".join(t.replace(",", " ") for t in entry.tags),
        "language": entry.language or "",
        # Whoosh DATETIME wants naive datetimes; every datetime in the index is UTC.
        "published": entry.published_at.replace(tzinfo=None),
        "url": entry.url,
        "dupgroup": dupgroup or entry.id,
        "fingerprint": entry.fingerprint,
    }
