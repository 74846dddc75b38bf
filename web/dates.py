"""Times read from readers and written for them: date arguments (API, pages, CLI) and one written form.

A date typed by a reader bounds a range (``from``/``to``, ``--from``/``--to``, ``after:`` in a
query): the syntax is the query language's (``index.search.query.parse_query_date``) and it is read
by one function here whatever door it came through. An instant (the related API's ``date``) is any
ISO 8601 date-time. Feed dates are another matter, read in ``aggregator.normalize.dates``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aggregator.errors import QueryError
from index.search.query import parse_query_date

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def utc_label(value: str | datetime | None) -> str:
    """Return a time as readers see it, e.g. '17 Feb 2026, 20:05 UTC' ('' when absent)."""
    # Unambiguous whatever the reader's locale (no 02/03 puzzles) and time zone; embed.js formats
    # the same way, so the script embed agrees with the pages and the iframe.
    if not value:
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return f"{moment.day} {_MONTHS[moment.month - 1]} {moment.year}, {moment:%H:%M} UTC"


def date_bound(raw: str | None, label: str, *, end: bool) -> datetime | None:
    """Return a date argument as the UTC instant its day, month or year starts (or ends, with ``end``).

    None when the argument is absent or blank; QueryError naming ``label`` (``from``, ``--to``) when
    it is not a date such as 2024-05-01, 2024-05 or 2024.
    """
    text = (raw or "").strip()
    if not text:
        return None
    value = parse_query_date(text, end=end)
    if value is None:
        raise QueryError(f"{label} must be a date such as 2024-05-01 (or 2024-05, 2024), got {text!r}")
    return value


def parse_instant(raw: str | None, label: str = "date") -> datetime | None:
    """Return an ISO 8601 date-time argument as aware UTC (naive means UTC); None when absent; QueryError when malformed."""
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise QueryError(f"{label} must be an ISO 8601 date such as 2024-05-01T12:00:00Z, got {raw[:40]!r}") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def date_or_instant(raw: str | None, label: str) -> datetime | None:
    """Return a day, month or year (its start) or an ISO 8601 date-time as UTC; None when absent; QueryError when neither."""
    text = (raw or "").strip()
    if not text:
        return None
    day = parse_query_date(text, end=False)
    return day if day is not None else parse_instant(text, label)
