"""A data dir filled the way the writer fills it: one poll of some feeds, then the index and the stories."""

from __future__ import annotations

from pathlib import Path

from aggregator.config import Config, config_from_dict
from aggregator.configfeeds import sync_config_feeds
from aggregator.poller import update_feeds
from web.services import Services, build_services


def polled_services(data_dir: Path, urls: list[str]) -> Services:
    """Return the services of a data dir where each feed URL was polled once, indexed and given its stories."""
    config: Config = config_from_dict(
        {
            "data_dir": str(data_dir),
            "polling": {"per_host_delay": 0, "per_host_concurrency": 8},
            "feeds": [{"url": url} for url in urls],
        },
        label="test-config.toml",
    )
    services = build_services(config)
    for result in update_feeds(services.store, sync_config_feeds(services.store, config), config):
        assert result.error is None, result
    services.indexer().catch_up()
    services.assign_stories()
    return services
