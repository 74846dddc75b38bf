"""The most Newsdesk keeps of each field a feed supplies: every cap in one place.

A feed is untrusted input. Without caps a 5 MB <title> is stored, indexed and served whole, and
100,000 <category> elements become 100,000 tags. Normalization cuts every field to these sizes
(counted in characters, after cleaning); the README's "What it protects against" lists them.
Lines are cut at a word with "…"; bodies keep whole paragraphs; a URL too long to be real is
dropped, never cut (half a URL points somewhere else).
"""

from __future__ import annotations

from .text import truncate

#: An entry's title.
TITLE = 1_000
#: A feed's (source's) title.
FEED_TITLE = 300
#: An entry's summary.
SUMMARY = 300
#: An entry's plain text (whole paragraphs are kept up to this; the rest is dropped).
TEXT = 200_000
#: An entry's sanitized HTML; a longer body is served as its (capped) plain paragraphs instead.
CONTENT_HTML = 400_000
#: One author name (longer ones are no name and are dropped).
AUTHOR = 200
#: Author names per entry.
AUTHORS = 20
#: One tag.
TAG = 100
#: Tags per entry.
TAGS = 50
#: Any URL kept (article, image, site); a longer one is treated as missing.
URL = 2_048
#: An image caption.
CAPTION = 500
#: A raw one-line value is cut to this many times its cap before cleaning, so that cleaning a
#: multi-megabyte title costs no more than cleaning a long one (markup and entities shrink, by far
#: less than this, in any real title).
RAW_FACTOR = 8


def raw_line(value: str | None, limit: int) -> str | None:
    """Return a raw one-line value cut to ``RAW_FACTOR`` times ``limit`` characters, before cleaning."""
    if value is None or len(value) <= limit * RAW_FACTOR:
        return value
    return value[: limit * RAW_FACTOR]


def cap_line(text: str, limit: int) -> str:
    """Return a clean one-line value cut to ``limit`` characters at a word, with "…"."""
    return text if len(text) <= limit else truncate(text, limit)


def cap_paragraphs(paragraphs: tuple[str, ...], limit: int = TEXT) -> tuple[tuple[str, ...], bool]:
    """Return the leading paragraphs that fit in ``limit`` characters (the first one cut if need be) and whether any were cut."""
    kept: list[str] = []
    total = 0
    for paragraph in paragraphs:
        room = limit - total
        if len(paragraph) > room:
            if not kept:
                kept.append(truncate(paragraph, room))
            return tuple(kept), True
        kept.append(paragraph)
        total += len(paragraph) + 2  # the blank line that joins paragraphs
    return tuple(kept), False


def fits_url(url: str | None) -> bool:
    """Return True when ``url`` is no longer than the URL cap."""
    return url is not None and len(url) <= URL
