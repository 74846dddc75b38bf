"""“Did you mean”: only close, much more common words, and never inside field prefixes or operators."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aggregator.config import config_from_dict
from aggregator.poller import update_feeds
from index.search.engine import search
from tests.fixtures.search.world import NOW
from web.services import Services, build_services

TITLES = [
    "Frost may kill early crops",
    "Drought could kill the harvest",
    "Ukraine grain deal extended",
    "Ukraine and allies meet on grain",
    "Late frost threatens the grain harvest",
    "Title deeds go missing from the land registry",
    "Language classes for new arrivals",
    "Time capsule opened at the school",
]


def feed() -> str:
    items = "".join(
        f"<item><title>{title}</title><link>https://almanac.example/{n}</link><guid>almanac-{n}</guid>"
        f"<pubDate>Tue, 14 May 2024 0{n}:00:00 GMT</pubDate><description>{title}.</description></item>"
        for n, title in enumerate(TITLES)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Almanac</title>'
        f"<link>https://almanac.example/</link><description>News</description>{items}</channel></rss>"
    )


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    root = tmp_path_factory.mktemp("suggest")
    (root / "almanac.xml").write_text(feed(), encoding="utf-8")
    config = config_from_dict({"data_dir": str(root / "data")}, label="test-config.toml")
    built = build_services(config)
    for result in update_feeds(built.store, [built.store.add_feed(str(root / "almanac.xml"))], config):
        assert result.error is None, result
    built.indexer().catch_up()
    yield built
    built.close()


def suggestion(services: Services, query: str) -> str | None:
    return search(services.index_reader, services.store, query, now=NOW).suggestion


@pytest.mark.parametrize(("query", "expected"), [("ukrane", "ukraine"), ("harvst grain", "harvest grain")])
def test_close_typos_of_common_words_are_respelled(services: Services, query: str, expected: str) -> None:
    assert suggestion(services, query) == expected


@pytest.mark.parametrize("query", ["kiev", "lang:", "title:", "lang: kiev", "title: kiev", "lang:xx", "tag:ukrane"])
def test_no_respelling_of_unrelated_words_or_field_prefixes(services: Services, query: str) -> None:
    # "kiev" is two edits from "kill" but no typo of it; "lang:" once became "la:" and "title:" "time:".
    assert suggestion(services, query) is None


def test_field_prefixes_are_kept_when_a_word_is_respelled(services: Services) -> None:
    assert suggestion(services, "title: ukrane") == "title: ukraine"
    assert suggestion(services, "title:ukrane") is None  # title: words are not respelled (yet)
