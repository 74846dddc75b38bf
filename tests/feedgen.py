"""Small feed and page documents written for the polling tests (no corpus files copied)."""

from __future__ import annotations

import gzip
import zlib
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from functools import cache


def rss(items: int = 3, *, title: str = "Test feed", ttl: int | None = None, start: int = 0) -> bytes:
    """Return an RSS 2.0 document with ``items`` dated items, newest first."""
    now = datetime.now(UTC).replace(microsecond=0)
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>',
        f"<title>{title}</title><link>https://example.org/</link><description>d</description>",
    ]
    if ttl is not None:
        parts.append(f"<ttl>{ttl}</ttl>")
    for i in range(start, start + items):
        date = format_datetime(now - timedelta(hours=i * 6), usegmt=True)
        parts.append(
            f"<item><title>Story {i}</title><link>https://example.org/story/{i}</link>"
            f"<guid>https://example.org/story/{i}</guid><pubDate>{date}</pubDate>"
            f"<description>Body of story {i}, about polling feeds politely.</description></item>"
        )
    parts.append("</channel></rss>")
    return "".join(parts).encode()


def html_page(*feeds: str) -> bytes:
    """Return an HTML home page advertising ``feeds`` with <link rel="alternate">."""
    links = "".join(f'<link rel="alternate" type="application/rss+xml" title="Feed" href="{f}">' for f in feeds)
    return f"<!doctype html><html><head><title>Home</title>{links}</head><body><p>Hello</p></body></html>".encode()


@cache
def gzip_bomb(inflated: int = 200 * 2**20) -> bytes:
    """Return a gzip stream of ``inflated`` zero bytes (about a thousandth of that on the wire)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(2**20)
    out = [compressor.compress(block) for _ in range(inflated // len(block))]
    out.append(compressor.flush())
    return b"".join(out)


def gzipped(body: bytes) -> bytes:
    """Return ``body`` gzip-compressed."""
    return gzip.compress(body)
