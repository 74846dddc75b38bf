"""How times are written for readers: one form on every page and in both embeds."""

from __future__ import annotations

from datetime import UTC, datetime

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
