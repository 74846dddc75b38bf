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
_NUMERIC_ZONE = re.compile(r"^[+-]\d{4}$")
# The names email.utils knows (RFC 822 section 5) ...
_EMAIL_ZONES = frozenset(
    {"UT", "UTC", "GMT", "Z", "AST", "ADT", "EST", "EDT", "CST", "CDT", "MST", "MDT", "PST", "PDT"}
)
# ... and abbreviations news feeds use that it does not, in seconds east of UTC.
_MORE_ZONES = {
    name: int(hours * 3600)
    for name, hours in {
        "WET": 0, "WEST": 1, "BST": 1, "CET": 1, "CEST": 2, "MEZ": 1, "MESZ": 2, "EET": 2, "EEST": 3, "MSK": 3,
        "IST": 5.5, "HKT": 8, "SGT": 8, "AWST": 8, "JST": 9, "KST": 9, "ACST": 9.5, "AEST": 10, "AEDT": 11,
        "NZST": 12, "NZDT": 13, "HST": -10, "AKST": -9, "AKDT": -8, "NST": -3.5, "NDT": -2.5, "BRT": -3, "ART": -3,
    }.items()
}  # fmt: skip


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
    if year < 100:  # RFC 822 two-digit years, read as RFC 2822 says.
        year += 2000 if year < 50 else 1900
    naive = datetime(year, month, day, hour, minute, min(second, 59))
    # parsedate_tz answers 0 both for "+0000" and for no zone (or one it does not know), so the
    # zone is read from the string itself.
    token = raw.strip().rsplit(None, 1)[-1].upper()
    if _NUMERIC_ZONE.match(token) or token in _EMAIL_ZONES:
        offset = parsed[9] or 0
    elif token in _MORE_ZONES:
        offset = _MORE_ZONES[token]
    else:
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


def parse_feed_date(raw: str | None, default_zone: str | tzinfo = "UTC") -> datetime | None:
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
