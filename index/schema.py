"""The Whoosh schema for news entries, and the Entry -> document mapping."""

from __future__ import annotations

from functools import cache
from typing import Any

from whoosh.analysis import CharsetFilter, LowercaseFilter, RegexTokenizer, StemFilter, StopFilter
from whoosh.fields import DATETIME, ID, KEYWORD, NUMERIC, STORED, TEXT, Schema
from whoosh.support.charset import accent_map

from aggregator.hosts import site_host
from aggregator.models import Entry

from .dupgroups import band_tokens
from .related.stored import stored_terms
from .related.tokens import TermMemo

#: Bump when the schema changes; an index of another version is rebuilt by `newsdesk reindex`.
#: 3: tags are indexed under tag_key() ("Trump, Donald J" -> "trump donald j").
SCHEMA_VERSION = 3

#: Fields a plain word is searched in, with the weight BM25F gives each (title counts most).
TEXT_FIELDS = ("title", "summary", "text")

_WORD = r"\w+(?:[.'’]\w+)*"


def news_analyzer() -> Any:
    """Return the analyzer for English-first news text: words, lowercase, accents folded, stemmed.

    Other languages go through the same chain: the English stemmer leaves most foreign words
    alone or trims them the same way at index and query time, so they stay searchable.
    """
    return (
        RegexTokenizer(_WORD)
        | LowercaseFilter()
        | CharsetFilter(accent_map)
        | StopFilter(minsize=1)
        | StemFilter(lang="en", cachesize=50000)
    )


def name_analyzer() -> Any:
    """Return the analyzer for names (authors, outlets): words, lowercase, accents folded, no stemming."""
    return RegexTokenizer(_WORD) | LowercaseFilter() | CharsetFilter(accent_map)


def build_schema() -> Schema:
    """Return the schema of the entries index."""
    analyzer = news_analyzer()
    names = name_analyzer()
    return Schema(
        # Sortable so the indexer can reload its near-duplicate table from columns, not stored fields.
        id=ID(stored=True, unique=True, sortable=True),
        title=TEXT(analyzer=analyzer, field_boost=2.5, stored=False, spelling=True),
        text=TEXT(analyzer=analyzer, stored=False),
        summary=TEXT(analyzer=analyzer, field_boost=1.2, stored=False),
        authors=TEXT(analyzer=names, stored=False),
        # Kept for related coverage: the outlet title as one lower-cased keyword.
        source=KEYWORD(stored=True, lowercase=True, commas=True, scorable=False),
        site=ID(stored=True),
        feed_key=ID(stored=True),
        tags=KEYWORD(stored=True, lowercase=True, commas=True),
        language=ID(stored=True),
        published=DATETIME(stored=True, sortable=True),
        url=ID(stored=True),
        # Sortable so search can read every document's group as a column (collapse, facets).
        dupgroup=ID(stored=True, sortable=True),
        fingerprint=NUMERIC(bits=64, signed=True, stored=True, sortable=True),
        # The outlet's display title exactly, for the source facet and filter.
        source_name=ID(stored=True, sortable=True),
        # Words of the outlet title and site host, for `source:` and `site:` in queries.
        source_words=TEXT(analyzer=names, stored=False),
        # Banded SimHash: any two fingerprints within Hamming distance 3 share one of these tokens.
        dupbands=KEYWORD(stored=False, scorable=False),
        # Related coverage reads a candidate's title and lead terms here, not from the store
        # (`index.related.stored`); a document indexed before this field existed has none.
        related_terms=STORED(),
    )


def add_missing_fields(writer: Any) -> None:
    """Add to the index ``writer`` writes the fields the schema gained since it was created.

    Only stored fields have been added so far (``related_terms``): documents written before lack
    them, and their readers fall back; `newsdesk reindex` writes every document with them.
    """
    schema = writer.schema
    for name, field in build_schema().items():
        if name not in schema:
            writer.add_field(name, field)


def tag_key(tag: str) -> str:
    """Return the form a tag is indexed, filtered and counted under: case-folded, commas as spaces, spaces collapsed.

    The one normalization for the index, facet links, tag= filters and tag: in queries, so
    "Trump, Donald J", "trump donald j" and "TRUMP,DONALD J" are one tag. A tag matches whole:
    tag:trump does not match "Trump, Donald J" (a word of a tag is not the tag).
    """
    return " ".join(tag.replace(",", " ").casefold().split())


def source_words(entry: Entry) -> str:
    """Return the text `source:`/`site:` match against: outlet title, site host and its labels."""
    site = site_host(entry.source.site_url or entry.url)
    return f"{entry.source.title} {site} {site.replace('.', ' ')}"


def entry_document(entry: Entry, *, dupgroup: str | None = None) -> dict[str, Any]:
    """Return the Whoosh document for an entry."""
    return {
        "id": entry.id,
        "title": entry.title,
        "text": entry.text,
        "summary": entry.summary,
        "authors": " ".join(entry.authors),
        "source": entry.source.title.replace(",", " "),
        "site": site_host(entry.source.site_url or entry.url),
        "feed_key": entry.feed_key,
        # Commas separate keywords here, so each tag goes in as its key (which has none).
        "tags": ",".join(dict.fromkeys(key for key in map(tag_key, entry.tags) if key)),
        "language": (entry.language or "").lower(),
        # Whoosh DATETIME wants naive datetimes; every datetime in the index is UTC.
        "published": entry.published_at.replace(tzinfo=None),
        "url": entry.url,
        "dupgroup": dupgroup or entry.id,
        "fingerprint": entry.fingerprint,
        "source_name": entry.source.title,
        "source_words": source_words(entry),
        "dupbands": " ".join(band_tokens(entry.fingerprint)),
        # None (a term that would not read back) leaves the field out: the finder reads that one's lead.
        "related_terms": stored_terms(_index_terms().terms, entry.title, entry.summary or entry.text),
    }


@cache
def _index_terms() -> TermMemo:
    """Return the news analyzer's terms with each word's remembered, for the writer (one per process)."""
    return TermMemo(news_analyzer())
