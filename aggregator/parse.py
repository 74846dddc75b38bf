"""Bytes + headers -> ParsedFeed, through feedparser, and never a URL handed to feedparser."""

from __future__ import annotations

import copy
import functools
import io
import re
from collections.abc import Mapping
from typing import Any

import feedparser
import feedparser.api
import feedparser.mixin
from feedparser.namespaces import mediarss
from feedparser.util import FeedParserDict

from .dtd import EntityBudgetExceeded, check_entity_expansion
from .errors import NotAFeedError, ParseError
from .models import ParsedContent, ParsedEntry, ParsedFeed, ParsedMedia

# feedparser's own sanitizer and relative-URI pass are ~3/4 of its parse time; we sanitize
# (nh3) and resolve URLs ourselves in normalize, so every HTML field goes through ours.
feedparser.SANITIZE_HTML = False
feedparser.RESOLVE_RELATIVE_URIS = False

# Changes of speed, not of output (tests/test_parse_speedups.py compares both ways):
# - feedparser's strict path asks xml.sax for a parser by module name; ours is expat with its
#   character data buffered, so feedparser's per-text-piece handler runs ~4x less often.
if "aggregator._expat_buffered" not in feedparser.api.PREFERRED_XML_PARSERS:
    feedparser.api.PREFERRED_XML_PARSERS.insert(0, "aggregator._expat_buffered")


# - every text field goes through str.translate(cp1252 table). With a dict table, each
#   non-ASCII character that is not in it raises and clears a KeyError inside CPython; a list
#   indexed by code point answers every BMP character directly (beyond it, IndexError is a
#   LookupError and maps the character to itself, as documented for str.translate).
def _cp1252_table(mapping: Mapping[int, str]) -> list[int | str]:
    table: list[int | str] = list(range(0x10000))
    for code, replacement in mapping.items():
        table[code] = replacement
    return table


if isinstance(feedparser.mixin._cp1252, dict):
    feedparser.mixin._cp1252 = _cp1252_table(feedparser.mixin._cp1252)  # type: ignore[assignment]

# - every start tag joins the element's xml:base (usually none: the parent's base again) onto the
#   current base, through urllib's urljoin, ~20 us a time; the pairs repeat all through a document.
#   Both functions are pure, so the parser asks a cache first.
if not hasattr(feedparser.mixin.make_safe_absolute_uri, "cache_info"):
    feedparser.mixin.make_safe_absolute_uri = functools.lru_cache(maxsize=4096)(feedparser.mixin.make_safe_absolute_uri)
    feedparser.mixin._urljoin = functools.lru_cache(maxsize=4096)(feedparser.mixin._urljoin)


# - every element's end copies the content parameters with copy.deepcopy, through pickle's
#   reduce protocol; they only ever hold strings, numbers and None, so a new dict with the same
#   items (set through the class, as deepcopy sets them) is the same copy at a tenth of the cost.
#   deepcopy(contentparams) is the only use of the copy module inside feedparser.mixin.
_ATOMIC = frozenset({str, int, float, bool, type(None)})


class _ParamsCopy:
    """Stands in for the copy module inside feedparser.mixin."""

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        if (
            type(value) is FeedParserDict
            and not vars(value)
            and all(type(item) in _ATOMIC for item in dict.values(value))
        ):
            clone = FeedParserDict()
            for key, item in dict.items(value):
                clone[key] = item
            return clone
        return copy.deepcopy(value, memo)


if feedparser.mixin.copy is copy:
    feedparser.mixin.copy = _ParamsCopy  # type: ignore[assignment]


# - FeedParserDict lookups (about 3,700 per feed) run a chain of special cases in Python for
#   every key; keys with no special case and no alias read the dict directly.
_SPECIAL_KEYS = frozenset({"category", "enclosures", "license", "updated", "updated_parsed", *FeedParserDict.keymap})


def _fast_getitem(original: Any) -> Any:
    def __getitem__(self: FeedParserDict, key: Any) -> Any:
        if key in _SPECIAL_KEYS:
            return original(self, key)
        return dict.__getitem__(self, key)

    __getitem__.__wrapped__ = original  # type: ignore[attr-defined]
    return __getitem__


def _fast_get(original: Any) -> Any:
    def get(self: FeedParserDict, key: Any, default: Any = None) -> Any:
        if key in _SPECIAL_KEYS:
            return original(self, key, default)
        return dict.get(self, key, default)

    get.__wrapped__ = original  # type: ignore[attr-defined]
    return get


if not hasattr(FeedParserDict.__getitem__, "__wrapped__"):
    FeedParserDict.__getitem__ = _fast_getitem(FeedParserDict.__getitem__)  # type: ignore[method-assign]
    FeedParserDict.get = _fast_get(FeedParserDict.get)  # type: ignore[method-assign]


# feedparser 6 reads <media:description> as the entry's <description>: it is dropped when the
# item has a description and *becomes the summary* when it has none. We keep it apart instead,
# as "media_description" on the entry and as "description" on the media:content it sits in.
def _start_media_description(self: Any, attrs_d: dict[str, str]) -> None:
    self.push_content("media_description", attrs_d, "text/plain", 1)


def _end_media_description(self: Any) -> None:
    value = self.pop_content("media_description")
    media = self._get_context().get("media_content")
    if value and media and "description" not in media[-1]:
        media[-1]["description"] = value


mediarss.Namespace._start_media_description = _start_media_description  # type: ignore[attr-defined]
mediarss.Namespace._end_media_description = _end_media_description  # type: ignore[attr-defined]


# Entity expansion is counted on the bytes both of feedparser's parsers read (converted to UTF-8,
# before the DOCTYPE is rewritten), and a document over the budget goes no further: the strict
# parser's expat and the lenient fallback would both expand it (aggregator/dtd.py says why).
def _budgeted_replace_doctype(original: Any) -> Any:
    def replace_doctype(data: bytes) -> Any:
        check_entity_expansion(data)
        return original(data)

    replace_doctype.__wrapped__ = original  # type: ignore[attr-defined]
    return replace_doctype


if not hasattr(feedparser.api.replace_doctype, "__wrapped__"):
    feedparser.api.replace_doctype = _budgeted_replace_doctype(feedparser.api.replace_doctype)

_HTML_START = re.compile(rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html)\b", re.IGNORECASE | re.DOTALL)
_ALTERNATE_LINK = re.compile(rb"<link\b[^>]*>", re.IGNORECASE)
_ATTR = re.compile(rb"""([a-zA-Z-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""")
_FEED_TYPES = {
    b"application/rss+xml",
    b"application/atom+xml",
    b"application/rdf+xml",
    b"application/feed+json",
    b"application/xml",
    b"text/xml",
}


def find_alternate_feeds(body: bytes) -> tuple[str, ...]:
    """Return the feed URLs an HTML page advertises with <link rel="alternate" type=feed>."""
    found: list[str] = []
    for tag in _ALTERNATE_LINK.findall(body[:512_000]):
        attrs: dict[bytes, bytes] = {}
        for name, v1, v2, v3 in _ATTR.findall(tag):
            attrs[name.lower()] = v1 or v2 or v3
        rels = attrs.get(b"rel", b"").lower().split()
        if b"alternate" in rels and attrs.get(b"type", b"").lower() in _FEED_TYPES and attrs.get(b"href"):
            url = attrs[b"href"].decode("utf-8", "replace").strip()
            if url not in found:
                found.append(url)
    return tuple(found)


def _size(count: int) -> str:
    return f"{count / 2**20:g} MiB" if count >= 2**20 else f"{count / 1024:g} KiB"


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _content(detail: Any, fallback: Any = None) -> ParsedContent | None:
    if detail is None:
        if fallback is None:
            return None
        return ParsedContent(value=str(fallback))
    value = detail.get("value")
    if value is None:
        return None
    return ParsedContent(
        value=str(value),
        type=str(detail.get("type") or "text/html"),
        base=_text(detail.get("base")),
        language=_text(detail.get("language")),
    )


def _authors(entry: Any) -> tuple[str, ...]:
    names: list[str] = []
    for author in entry.get("authors") or ():
        name = _text(author.get("name")) or _text(author.get("email"))
        if name and name not in names:
            names.append(name)
    if not names:
        single = _text(entry.get("author"))
        if single:
            names.append(single)
    return tuple(names)


def _media(entry: Any) -> tuple[ParsedMedia, ...]:
    media: list[ParsedMedia] = []
    description = _text(entry.get("media_description"))
    for item in entry.get("media_content") or ():
        url = _text(item.get("url"))
        if url:
            media.append(
                ParsedMedia(
                    url=url,
                    type=_text(item.get("type")) or _text(item.get("medium")),
                    caption=_text(item.get("description")) or description,
                    width=_int(item.get("width")),
                    height=_int(item.get("height")),
                    origin="media:content",
                )
            )
    for item in entry.get("media_thumbnail") or ():
        url = _text(item.get("url"))
        if url:
            media.append(
                ParsedMedia(
                    url=url,
                    type="image",
                    caption=description,
                    width=_int(item.get("width")),
                    height=_int(item.get("height")),
                    origin="media:thumbnail",
                )
            )
    for link in entry.get("links") or ():
        if link.get("rel") == "enclosure" and _text(link.get("href")):
            media.append(ParsedMedia(url=str(link["href"]).strip(), type=_text(link.get("type")), origin="enclosure"))
    return tuple(media)


def _entry(entry: Any) -> ParsedEntry:
    title_detail = entry.get("title_detail") or {}
    summary = _content(entry.get("summary_detail"), entry.get("summary"))
    contents = tuple(c for c in (_content(d) for d in entry.get("content") or ()) if c is not None)
    tags = tuple(t for t in (_text(tag.get("term")) or _text(tag.get("label")) for tag in entry.get("tags") or ()) if t)
    link = _text(entry.get("link"))
    return ParsedEntry(
        guid=_text(entry.get("id")),
        link=link,
        original_link=_text(entry.get("feedburner_origlink")),
        title=_text(entry.get("title")),
        title_type=str(title_detail.get("type") or "text/plain"),
        summary=summary,
        contents=contents,
        authors=_authors(entry),
        published_raw=_text(entry.get("published")) or _text(entry.get("dc_date")),
        # dict.get, not entry.get: feedparser answers "updated" with the published date (and a
        # DeprecationWarning) when the entry has no updated date of its own.
        updated_raw=_text(dict.get(entry, "updated")),
        tags=tags,
        media=_media(entry),
        language=_text((entry.get("title_detail") or {}).get("language")),
        base=_text((entry.get("title_detail") or {}).get("base")),
    )


def parse_feed(body: bytes, headers: Mapping[str, str] | None = None, *, url: str = "") -> ParsedFeed:
    """Return the ParsedFeed for a document body, or raise ParseError / NotAFeedError."""
    response_headers = {k.lower(): v for k, v in (headers or {}).items()}
    if url:
        response_headers.setdefault("content-location", url)
    try:
        result = feedparser.parse(
            io.BytesIO(body),
            response_headers=response_headers,
            sanitize_html=False,
            resolve_relative_uris=False,
        )
    except EntityBudgetExceeded as exc:
        raise ParseError(
            url,
            f"refused: the document's DTD entities would expand to more than {_size(exc.budget)} of text "
            "(an entity-expansion attack, or a broken feed)",
        ) from exc
    except MemoryError:
        raise  # not a property of the feed: the caller decides (a parse worker is replaced)
    except Exception as exc:  # feedparser is documented never to raise; guard anyway.
        raise ParseError(url, f"the feed parser failed: {exc}") from exc
    version = str(result.get("version") or "")
    entries = result.get("entries") or []
    feed = result.get("feed") or {}
    if not version and not entries:
        if _HTML_START.match(body[:4096]) or b"<html" in body[:2048].lower():
            alternates = find_alternate_feeds(body)
            hint = f"; the page links to {len(alternates)} feed(s): {', '.join(alternates[:3])}" if alternates else ""
            raise NotAFeedError(url, f"not a feed: the URL returned an HTML page{hint}", alternates=alternates)
        problem = result.get("bozo_exception")
        detail = f" ({problem})" if problem else ""
        if not body.strip():
            raise ParseError(url, "not a feed: the response body is empty")
        raise ParseError(url, f"not a feed: no RSS, Atom or RDF document found{detail}")
    warning = None
    if result.get("bozo"):
        warning = str(result.get("bozo_exception") or "malformed feed")
    title_detail = feed.get("title_detail") or {}
    return ParsedFeed(
        title=_text(feed.get("title")),
        site_url=_text(feed.get("link")),
        language=_text(feed.get("language")) or _text(title_detail.get("language")),
        ttl_minutes=_int(feed.get("ttl")),
        update_period=_text(feed.get("sy_updateperiod")),
        update_frequency=_int(feed.get("sy_updatefrequency")),
        base=_text(title_detail.get("base")),
        entries=tuple(_entry(e) for e in entries),
        version=version,
        warning=warning,
    )
