"""Date parsing: any date string a feed gives, read as an aware UTC datetime."""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta, tzinfo
from email.utils import parsedate_tz
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import feedparser.datetimes

# Before this instant a date is a placeholder (epoch zero, 0001-01-01), not a publication time.
_EARLIEST = datetime(1970, 1, 2, tzinfo=UTC)
_ISO_LIKE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_ZONE_SUFFIX = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$", re.IGNORECASE)
_ZONE_NAME_SUFFIX = re.compile(r"[A-Za-z]{2,}$")


@lru_cache(maxsize=64)
def zone(name: str) -> tzinfo:
    """Return the tzinfo for an IANA zone name, UTC when the name is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def _from_rfc822(raw: str, default_zone: tzinfo) -> datetime | None:
    parsed = parsedate_tz(raw)
    if parsed is None:
        return None
    year, month, day, hour, minute, second = parsed[:6]
    offset = parsed[9]
    if year < 100:  # RFC 822 two-digit years, read as RFC 2822 says.
        year += 2000 if year < 50 else 1900
    naive = datetime(year, month, day, hour, minute, min(second, 59))
    if offset is None:
        return naive.replace(tzinfo=default_zone)
    return (naive - timedelta(seconds=offset)).replace(tzinfo=UTC)


def _from_iso(raw: str, default_zone: tzinfo) -> datetime | None:
    value = raw.strip()
    if not _ISO_LIKE.match(value):
        return None
    # Python 3.11 reads "Z", offsets and "T" or " " separators; feeds add a lower-case "z" too.
    parsed = datetime.fromisoformat(value[:-1] + "+00:00" if value[-1:] in "zZ" else value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=default_zone)
    return parsed


def _from_feedparser(raw: str, default_zone: tzinfo) -> datetime | None:
    # The fallback knows many odd formats (W3DTF variants, Korean, Greek, Hungarian) but reads a
    # zone-less date as UTC, so re-read it in the feed's zone when no zone is visible.
    struct = feedparser.datetimes._parse_date(raw)
    if struct is None:
        return None
    parsed = datetime.fromtimestamp(calendar.timegm(struct), UTC)
    if default_zone is not UTC and not _ZONE_SUFFIX.search(raw.strip()) and not _ZONE_NAME_SUFFIX.search(raw.strip()):
        return parsed.replace(tzinfo=None).replace(tzinfo=default_zone)
    return parsed


def parse_date(raw: str | None, default_zone: str | tzinfo = "UTC") -> datetime | None:
    """Return ``raw`` as an aware UTC datetime (zone-less dates read in ``default_zone``), or None."""
    if not raw or not raw.strip():
        return None
    tz = zone(default_zone) if isinstance(default_zone, str) else default_zone
    for reader in (_from_iso, _from_rfc822, _from_feedparser):
        try:
            parsed = reader(raw, tz)
        except (ValueError, OverflowError, TypeError, IndexError):
            continue
        if parsed is not None:
            try:
                value = parsed.astimezone(UTC)
            except (ValueError, OverflowError):
                continue
            return value if value >= _EARLIEST else None
    return None
