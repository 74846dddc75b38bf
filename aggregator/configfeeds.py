"""The feeds ``config.toml`` declares, made to match the store's (added, updated, or removed when dropped)."""

from __future__ import annotations

from .config import Config
from .models import Feed
from .store import Store


def sync_config_feeds(store: Store, config: Config) -> list[Feed]:
    """Make the store's config-declared feeds match config.feeds; return the feeds now configured."""
    configured: list[Feed] = []
    wanted = set()
    for fc in config.feeds:
        wanted.add(fc.url)
        configured.append(
            store.add_feed(
                fc.url,
                title=fc.title or None,
                tags=fc.tags,
                interval_seconds=int(fc.interval) if fc.interval else None,
                user_agent=fc.user_agent or None,
                timezone=fc.timezone,
                full_content=fc.full_content,
                enabled=fc.enabled,
                origin="config",
            )
        )
    origins = store.feed_origins()
    for feed in store.list_feeds():
        if origins.get(feed.id) == "config" and feed.key not in wanted and feed.url not in wanted:
            store.remove_feed(feed.id)
    return configured
