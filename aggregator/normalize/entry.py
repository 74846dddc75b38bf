"""One parsed entry + its feed context -> one clean Entry record."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urljoin, urlsplit

from ..models import Entry, FeedContext, Image, ParsedContent, ParsedEntry, Source
from .authors import clean_authors
from .dates import parse_feed_date
from .fingerprint import fingerprint_and_word_count
from .html import ContentImage, clean_content
from .identity import content_identity, entry_id, guid_identity
from .language import declared_language, detect_language
from .limits import AUTHORS, CONTENT_HTML, SUMMARY, TAG, TAGS, TITLE, cap_line, cap_paragraphs, fits_url, raw_line
from .media import lead_image, lead_media_url
from .text import clean_line, clean_paragraphs, clean_text, truncate
from .urls import article_url, canonical_url, is_http_url

#: Characters of an entry's summary (limits.SUMMARY, under the name other modules import).
SUMMARY_LIMIT = SUMMARY
TITLE_FALLBACK_WORDS = 12
_HTML_TYPES = ("text/html", "application/xhtml+xml", "html", "xhtml")


@dataclass(frozen=True)
class Body:
    """A cleaned body of text: display HTML, plain paragraphs and the images it holds."""

    #: Sanitized HTML.
    html: str
    #: Plain-text paragraphs, boilerplate removed.
    paragraphs: tuple[str, ...]
    #: Images found in the body.
    images: tuple[ContentImage, ...]


def clean_body(
    content: ParsedContent | None,
    base: str | None,
    document_url: str | None = None,
    *,
    lead_image: str | None = None,
) -> Body:
    """Return the cleaned form of one feed body, HTML or plain text, without copies of the lead image.

    The lead image is ``lead_image`` (the feed's own picture for the entry), else the body's first image.
    """
    if content is None or not content.value.strip():
        return Body("", (), ())
    if content.type.lower() in _HTML_TYPES or "html" in content.type.lower():
        own_base = (content.base or "").strip()
        if own_base and own_base != document_url:
            # xml:base on the content element applies to the links inside it (RFC 3986 section 5.1.1);
            # feedparser reports the document URL when there is none, which must not win over the feed link.
            base = urljoin(base, own_base) if base else own_base
        cleaned = clean_content(content.value, base, lead_image=lead_image, lead_from_body=lead_image is None)
        return Body(cleaned.html, cleaned.paragraphs, cleaned.images)
    paragraphs = tuple(clean_paragraphs(clean_text(content.value).split("\n\n")))
    return Body("".join(f"<p>{_escape(p)}</p>" for p in paragraphs), paragraphs, ())


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def capped_body(content_html: str, paragraphs: tuple[str, ...]) -> tuple[str, str, bool]:
    """Return (HTML, plain text, whether either was cut) of a body within the TEXT and CONTENT_HTML caps."""
    kept, cut = cap_paragraphs(paragraphs)
    if len(content_html) > CONTENT_HTML:
        # Sanitized HTML cannot be cut anywhere and stay whole: a body that large is served as its
        # plain paragraphs, as many as fit.
        parts: list[str] = []
        size = 0
        for paragraph in kept:
            part = f"<p>{_escape(paragraph)}</p>"
            if size + len(part) > CONTENT_HTML:
                break
            parts.append(part)
            size += len(part)
        content_html, cut = "".join(parts), True
    elif cut:
        content_html = "".join(f"<p>{_escape(p)}</p>" for p in kept)
    return content_html, "\n\n".join(kept), cut


def entry_base(parsed: ParsedEntry, context: FeedContext) -> str:
    """Return the URL relative links of an entry resolve against (xml:base, feed link, fetch URL)."""
    base = context.feed_url
    for candidate in (context.site_url, context.base, parsed.base):
        # feedparser reports the document URL as the base when no xml:base is declared; that must
        # not override the feed's <link>.
        if candidate and candidate.strip() and candidate.strip() != context.feed_url:
            try:
                base = urljoin(base, candidate.strip())
            except ValueError:
                continue
    return base


def _longest(contents: tuple[ParsedContent, ...]) -> ParsedContent | None:
    return max(contents, key=lambda c: len(c.value), default=None)


def _fetched_at(context: FeedContext) -> datetime:
    fetched = context.fetched_at
    return fetched.replace(tzinfo=UTC) if fetched.tzinfo is None else fetched.astimezone(UTC)


def _site_names(context: FeedContext) -> tuple[str, ...]:
    names = [context.source_title]
    for url in (context.site_url, context.feed_url):
        try:
            host = urlsplit(url or "").hostname
        except ValueError:
            host = None
        if host:
            names.append(host)
    return tuple(names)


def _tags(raw: tuple[str, ...]) -> tuple[str, ...]:
    tags: list[str] = []
    seen: set[str] = set()
    for value in raw:
        tag = clean_line(raw_line(value, TAG))[:TAG].strip()
        if tag and tag.casefold() not in seen:
            seen.add(tag.casefold())
            tags.append(tag)
            if len(tags) == TAGS:
                break
    return tuple(tags)


def _first_words(text: str, count: int) -> str:
    words = text.split()
    title = " ".join(words[:count])
    return title + ("…" if len(words) > count else "")


def normalize_entry(
    parsed: ParsedEntry,
    context: FeedContext,
    *,
    identity: str | None = None,
    first_seen: datetime | None = None,
    future_tolerance_seconds: float = 600.0,
) -> Entry:
    """Return the clean Entry for one parsed entry (``identity`` overrides the guid-based one)."""
    base = entry_base(parsed, context)
    fetched_at = _fetched_at(context)
    flags: list[str] = []

    content = _longest(parsed.contents)
    # The page shows the lead image above the text, so the body must not show it again.
    media_image = lead_media_url(parsed.media, base)
    body = clean_body(content, base, context.feed_url, lead_image=media_image)
    # feedparser copies the content into the summary when a feed has no separate description.
    if parsed.summary is not None and content is not None and parsed.summary.value == content.value:
        summary_body = body
    else:
        summary_body = clean_body(parsed.summary, base, context.feed_url, lead_image=media_image)
    # Summary-only feeds (or a summary longer than a teaser "content") use the summary as the body.
    if sum(map(len, summary_body.paragraphs)) > sum(map(len, body.paragraphs)):
        body = summary_body
    content_html, text, cut = capped_body(body.html, body.paragraphs)
    if cut:
        flags.append("content_truncated")
    summary = truncate(" ".join(summary_body.paragraphs) or text, SUMMARY)

    title = cap_line(clean_line(raw_line(parsed.title, TITLE)), TITLE) or _first_words(
        text or summary, TITLE_FALLBACK_WORDS
    )
    if not title:
        title = "(untitled)"
        flags.append("title_missing")

    url = article_url(parsed.link, parsed.original_link, base)
    if url is None and parsed.guid and is_http_url(parsed.guid.strip()):
        url = canonical_url(parsed.guid.strip())
    if url is not None and not fits_url(url):
        url = None  # a URL longer than any real one: no article link rather than half of one
    if url is None:
        url = canonical_url(context.site_url or context.feed_url, context.feed_url)
        flags.append("url_missing")

    published = parse_feed_date(parsed.published_raw, context.timezone)
    updated = parse_feed_date(parsed.updated_raw, context.timezone)
    limit = fetched_at + timedelta(seconds=future_tolerance_seconds)
    if published is not None and published > limit:
        published = fetched_at
        flags.append("future_date_clamped")
    if updated is not None and updated > limit:
        updated = fetched_at
        if "future_date_clamped" not in flags:
            flags.append("future_date_clamped")
    if updated is not None and updated == published:
        # Many feeds (and feedparser for dc:date) repeat the publication date as the update date.
        updated = None
    if published is None:
        if updated is not None:
            # The only date given is the publication date as far as readers are concerned.
            published, updated = updated, None
        else:
            published = first_seen or fetched_at
            flags.append("date_missing")

    if identity is None:
        identity = guid_identity(parsed.guid) or (None if "url_missing" in flags else url)
        if identity is None:
            identity = content_identity(title, parsed.published_raw or parsed.updated_raw, text[:500])

    image: Image | None = lead_image(parsed.media, body.images, base)
    language = declared_language(
        parsed.language, content.language if content else None, context.language
    ) or detect_language(f"{title}\n{text}")
    fingerprint, word_count = fingerprint_and_word_count(text, title)
    return Entry(
        id=entry_id(context.feed_key, identity),
        feed_key=context.feed_key,
        identity=identity,
        url=url,
        title=title,
        authors=clean_authors(parsed.authors[: AUTHORS * 4], _site_names(context))[:AUTHORS],
        published_at=published,
        updated_at=updated,
        summary=summary,
        content_html=content_html,
        text=text,
        image=image,
        tags=_tags(parsed.tags),
        language=language,
        word_count=word_count,
        fingerprint=fingerprint,
        source=Source(feed_url=context.feed_url, title=context.source_title, site_url=context.site_url),
        flags=tuple(flags),
    )
