"""config.toml loading: defaults, validation with key paths, selection of the file, documentation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aggregator.config import (
    ConfigError,
    config_from_dict,
    documented_keys,
    load_config,
    parse_duration,
    parse_size,
    resolve_config_path,
)

REPO = Path(__file__).resolve().parents[1]


def test_defaults_without_any_key() -> None:
    config = config_from_dict({})
    assert config.server.host == "127.0.0.1" and config.server.port == 8080
    assert config.polling.per_host_concurrency == 2 and config.polling.concurrency == 16
    assert config.polling.max_body_size == 15 * 2**20
    assert config.db_url.endswith("newsdesk.db") and config.db_url.startswith("sqlite:///")


def test_shipped_config_loads_with_real_feeds() -> None:
    config = load_config(REPO / "config.toml")
    assert len(config.feeds) >= 5
    assert all(f.url.startswith("https://") for f in config.feeds)
    assert config.data_dir == REPO / "data"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            {"feeds": [{"url": "https://a.example/"}, {"url": "https://b.example/"}, {"url": "htp://x"}]},
            "feeds[2].url: 'htp://x' is not an http(s) URL",
        ),
        ({"feeds": [{"url": "https://a.example/", "colour": "red"}]}, "feeds[0].colour: unknown key"),
        ({"polling": {"concurency": 3}}, "polling.concurency: unknown key"),
        ({"polling": {"min_interval": "soon"}}, "polling.min_interval: expected a duration"),
        ({"polling": {"max_body_size": "big"}}, "polling.max_body_size: expected a size"),
        ({"server": {"port": 70000}}, "server.port: 70000 is not a TCP port"),
        ({"server": {"port": "80"}}, "server.port: expected an integer"),
        ({"polling": {"min_interval": "2h", "max_interval": "1h"}}, "polling.min_interval: must not be longer"),
        ({"feeds": [{"title": "x"}]}, "feeds[0].url: required key is missing"),
        ({"feeds": [{"url": "https://a.example/", "timezone": "Mars/Base"}]}, "feeds[0].timezone: 'Mars/Base'"),
        (
            {"feeds": [{"url": "https://a.example/"}, {"url": "https://a.example/"}]},
            "feeds[1].url: 'https://a.example/' is already listed",
        ),
        ({"feeds": [{"url": "https://a.example/", "tags": "world"}]}, "feeds[0].tags: expected a list"),
        ({"server": {"rate_limit_per_minute": -1}}, "server.rate_limit_per_minute: must be 0 (no limit) or more"),
        ({"server": {"public_url": "not a url"}}, "server.public_url: 'not a url' is not an http(s) URL"),
        ({"polling": {"user_agent": " "}}, "polling.user_agent: must not be empty"),
        ({"search": {"recency_weight": -1}}, "search.recency_weight: must be 0"),
        ({"related": {"window": "0s"}}, "related.window: must be longer than 0"),
        ({"related": {"postings_in_memory": -1}}, "related.postings_in_memory: must be 0 (none held) or more"),
        ({"database_url": "mysql://x"}, "database_url: 'mysql://x' is not a sqlite:// or postgresql:// URL"),
        ({"stories": {"memory_stories": 10}}, "stories.memory_stories: must be at least 1000"),
    ],
)
def test_bad_values_name_the_key(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_dict(table, label="config.toml")
    assert str(caught.value).startswith("config.toml: ")
    assert message in str(caught.value)


def test_durations_and_sizes() -> None:
    assert parse_duration("5m", "x") == 300
    assert parse_duration("1.5h", "x") == 5400
    assert parse_duration(42, "x") == 42
    assert parse_size("15MiB", "x") == 15 * 2**20
    assert parse_size("2kb", "x") == 2000
    with pytest.raises(ConfigError):
        parse_duration("-5s", "x")
    with pytest.raises(ConfigError):
        parse_duration(True, "x")


def test_file_errors_are_clear(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("data_dir = \n")
    with pytest.raises(ConfigError, match=r"bad\.toml: invalid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read the configuration file"):
        load_config(tmp_path / "missing.toml")


def test_relative_data_dir_is_relative_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "newsdesk.toml"
    path.parent.mkdir()
    path.write_text('data_dir = "store"\n[[feeds]]\nurl = "feeds/local.xml"\n')
    config = load_config(path)
    assert config.data_dir == path.parent / "store"
    assert config.feeds[0].url == "feeds/local.xml"


def test_config_selection_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWSDESK_CONFIG", raising=False)
    assert resolve_config_path(None) == Path("config.toml")
    monkeypatch.setenv("NEWSDESK_CONFIG", str(tmp_path / "env.toml"))
    assert resolve_config_path(None) == tmp_path / "env.toml"
    assert resolve_config_path("explicit.toml") == Path("explicit.toml")


@pytest.mark.parametrize("document", ["config.toml", "README.md"])
def test_every_key_is_documented(document: str) -> None:
    text = (REPO / document).read_text(encoding="utf-8")
    missing = []
    for key in documented_keys():
        leaf = key.split(".")[-1]
        if not re.search(rf"(^|[^a-z_]){re.escape(leaf)}([^a-z_]|$)", text):
            missing.append(key)
    assert missing == []
