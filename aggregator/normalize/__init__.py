"""Pure functions from parsed entries to clean Entry records.

``normalize_feed`` is the entry point; the pieces (URLs, HTML, text, dates, fingerprints) are
public so that other stages and tests can use them directly.
"""

from __future__ import annotations

from .dates import parse_feed_date
from .entry import normalize_entry
from .feed import normalize_feed
from .fingerprint import simhash
from .html import clean_content, html_to_text, sanitize_html
from .identity import entry_id
from .text import clean_line, clean_text
from .urls import canonical_url

__all__ = [
    "canonical_url",
    "clean_content",
    "clean_line",
    "clean_text",
    "entry_id",
    "html_to_text",
    "normalize_entry",
    "normalize_feed",
    "parse_feed_date",
    "sanitize_html",
    "simhash",
]
