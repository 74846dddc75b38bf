"""Bytes + headers -> ParsedFeed, through feedparser, and never a URL handed to feedparser."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .dtd import EntityBudgetExceeded
from .errors import NotAFeedError, ParseError
from .feedparser_tuned import TUNED, Machinery, run_feedparser
from .models import ParsedContent, ParsedEntry, ParsedFeed, ParsedMedia

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
    """Return the ParsedFeed for a document body, or raise ParseError / NotAFeedError (MemoryError passes through)."""
    return parsed_feed(feedparser_result(body, headers, url=url), body, url=url)


def feedparser_result(
    body: bytes, headers: Mapping[str, str] | None = None, *, url: str = "", machinery: Machinery = TUNED
) -> Any:
    """Return feedparser's result dict for a document body, or raise ParseError (MemoryError passes through)."""
    response_headers = {k.lower(): v for k, v in (headers or {}).items()}
    if url:
        response_headers.setdefault("content-location", url)
    try:
        return run_feedparser(body, response_headers, machinery)
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


def parsed_feed(result: Any, body: bytes, *, url: str = "") -> ParsedFeed:
    """Return the ParsedFeed for feedparser's result dict of ``body``, or raise ParseError / NotAFeedError."""
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
