"""Full content for summary-only feeds: the article page's main text, extracted with trafilatura.

Fetching the page (and being polite about it) is the update code's job; these functions only take
the bytes it fetched, so they stay pure and testable.
"""

from __future__ import annotations

import dataclasses
import logging

from ..features import load
from ..models import Entry
from .entry import SUMMARY_LIMIT, capped_body
from .fingerprint import simhash
from .html import clean_content
from .language import detect_language
from .text import count_words, truncate

# Below this many characters an "article" is a cookie wall, a login page or an error page.
MIN_ARTICLE_CHARS = 200

log = logging.getLogger("newsdesk.poll")

# trafilatura logs every page it cannot read at WARNING; a failed extraction is an expected outcome here.
logging.getLogger("trafilatura").setLevel(logging.ERROR)


def extract_article(html_bytes: bytes, url: str, lead_image: str | None = None) -> tuple[str, str] | None:
    """Return (sanitized html, plain text) of an article page's main content, or None when extraction fails.

    Copies of ``lead_image`` (the entry's, shown above the text) are left out of the html.
    """
    if not html_bytes or not html_bytes.strip():
        return None
    trafilatura = load("full_content")
    if trafilatura is None:  # not installed or broken: logged once, and shown on every full_content feed
        return None
    try:
        extracted = trafilatura.extract(
            html_bytes,
            url=url or None,
            output_format="html",
            include_comments=False,
            include_images=True,
            include_links=True,
            include_tables=True,
            favor_precision=True,
        )
    except Exception as exc:  # trafilatura parses hostile pages; any failure means "use the feed's content"
        log.warning("full content: extracting the article failed url=%s: %s: %s", url, type(exc).__name__, exc)
        return None
    if not extracted:
        return None
    cleaned = clean_content(extracted, url or None, lead_image=lead_image)
    if len(cleaned.text) < MIN_ARTICLE_CHARS:
        return None
    return cleaned.html, cleaned.text


def with_full_content(entry: Entry, html_bytes: bytes, url: str | None = None) -> Entry:
    """Return ``entry`` with its body replaced by the article page's, or ``entry`` unchanged when extraction fails."""
    article = extract_article(html_bytes, url or entry.url, entry.image.url if entry.image else None)
    if article is None:
        return entry
    content_html, text = article
    # Pages repeat the headline as their first heading; the record already has it as the title.
    first, _, rest = text.partition("\n\n")
    if rest and first.casefold() == entry.title.casefold():
        text = rest
    # Keep what the feed said when the page gives less (a paywall teaser, a truncated page).
    if len(text) <= len(entry.text):
        return entry
    # An article page is as untrusted as the feed: the same caps hold.
    content_html, text, cut = capped_body(content_html, tuple(text.split("\n\n")))
    language = entry.language or detect_language(f"{entry.title}\n{text}")
    flags = (*entry.flags, "full_content")
    if cut and "content_truncated" not in flags:
        flags = (*flags, "content_truncated")
    return dataclasses.replace(
        entry,
        content_html=content_html,
        text=text,
        summary=entry.summary or truncate(text, SUMMARY_LIMIT),
        language=language,
        word_count=count_words(text),
        fingerprint=simhash(text),
        flags=flags,
    )
