"""The feeds area: an operator page (/feeds) and its JSON (/api/v1/feeds) showing each feed's polling state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, current_app, jsonify, render_template

from aggregator.features import feed_warnings
from aggregator.models import Feed

from .serialize import feed_json, feed_state, iso
from .services import services_of

feeds = Blueprint("feeds", __name__)


def relative(value: datetime | None, now: datetime, *, due: bool = False) -> str:
    """Return a short human distance such as "5 min ago" or "in 2.0 h" ("never" for None).

    With ``due``, a time already past reads "due now" (for next-check times).
    """
    if value is None:
        return "never"
    seconds = (value - now).total_seconds()
    if due and seconds <= 0:
        return "due now"
    span = abs(seconds)
    if span < 5:
        return "just now"
    if span < 90:
        words = f"{span:.0f} s"
    elif span < 5400:
        words = f"{span / 60:.0f} min"
    elif span < 172800:
        words = f"{span / 3600:.1f} h"
    else:
        words = f"{span / 86400:.1f} days"
    return f"in {words}" if seconds > 0 else f"{words} ago"


def health(feed: Feed) -> str:
    """Return the feed's state in one word: ok, failing, retired or new."""
    return feed_state(
        enabled=feed.enabled,
        disabled_reason=feed.disabled_reason,
        checked=feed.last_checked_at is not None,
        failing=feed.consecutive_failures > 0,
    )


def _sorted() -> list[Feed]:
    # Trouble first: failing feeds by how long they have failed, then the rest by title.
    items = services_of(current_app).store.list_feeds()
    return sorted(items, key=lambda f: (-f.consecutive_failures, not f.enabled, (f.title or f.url).lower()))


@feeds.get("/feeds")
def feeds_page() -> Any:
    items = _sorted()
    now = datetime.now(UTC)
    failing = sum(1 for f in items if f.enabled and f.consecutive_failures)
    return render_template(
        "feeds/list.html",
        feeds=items,
        now=now,
        failing=failing,
        relative=relative,
        health=health,
        iso=iso,
        warnings=feed_warnings,
    )


@feeds.get("/api/v1/feeds")
def feeds_api() -> Any:
    return jsonify(feeds=[feed_json(f) for f in services_of(current_app).store.list_feeds()])
