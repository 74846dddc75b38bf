"""config.toml -> frozen dataclasses, with every error naming the key's path."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
import types
import typing
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError

DEFAULT_CONFIG_NAME = "config.toml"
ENV_CONFIG = "NEWSDESK_CONFIG"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


class Duration(float):
    """Seconds; in TOML an integer of seconds or a string such as "90s", "5m", "24h", "7d"."""


class ByteSize(int):
    """Bytes; in TOML an integer or a string such as "15MiB", "512KiB"."""


_SIZE = re.compile(r"^\s*(\d+)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {None: 1, "b": 1, "kb": 1000, "kib": 1024, "mb": 10**6, "mib": 2**20, "gb": 10**9, "gib": 2**30}


@dataclass(frozen=True)
class ServerConfig:
    """The web server."""

    #: Address to listen on.
    host: str = "127.0.0.1"
    #: Port to listen on.
    port: int = 8080
    #: Worker threads of the WSGI server.
    threads: int = 8
    #: Public base URL used in embeds, feeds and oEmbed (default: from the request).
    public_url: str = ""
    #: CSP frame-ancestors for the iframe embed ("*" allows any site).
    frame_ancestors: str = "*"
    #: Related-coverage API requests allowed per client per minute.
    rate_limit_per_minute: int = 120
    #: Client addresses or networks allowed to read /metrics ("*": anyone; empty: /metrics is off).
    metrics_allow: tuple[str, ...] = ("127.0.0.1", "::1")
    #: /readyz fails when an enabled feed has waited this long past its due time (0: never).
    ready_poll_staleness: Duration = Duration(1800)


@dataclass(frozen=True)
class PollingConfig:
    """How feeds are fetched and scheduled."""

    #: Shortest adaptive interval between two checks of a feed.
    min_interval: Duration = Duration(300)
    #: Longest adaptive interval between two checks of a feed.
    max_interval: Duration = Duration(86400)
    #: Interval for a feed whose publishing rate is not known yet.
    default_interval: Duration = Duration(3600)
    #: Fraction of the interval added or removed at random to spread feeds out.
    jitter: float = 0.1
    #: Requests in flight at once, over all hosts.
    concurrency: int = 16
    #: Requests in flight at once to one host.
    per_host_concurrency: int = 2
    #: Minimum delay between two requests to one host.
    per_host_delay: Duration = Duration(1.0)
    #: TCP connect timeout.
    connect_timeout: Duration = Duration(10)
    #: Timeout waiting for the next bytes of a response.
    read_timeout: Duration = Duration(30)
    #: Total time one fetch may take, however the bytes trickle in.
    deadline: Duration = Duration(60)
    #: Largest body accepted, counted after decompression.
    max_body_size: ByteSize = ByteSize(15 * 2**20)
    #: Redirects followed per fetch.
    max_redirects: int = 5
    #: Checks in a row a permanent redirect must be seen before it is adopted.
    redirect_adopt_checks: int = 3
    #: ...and how long it must have been seen, at least.
    redirect_adopt_after: Duration = Duration(86400)
    #: Longest backoff after failures.
    backoff_cap: Duration = Duration(86400)
    #: User-Agent sent with every request (a feed may override it).
    user_agent: str = "Newsdesk/0.1 (+https://github.com/newsdesk/newsdesk; feed aggregator)"
    #: Dates further in the future than this are clamped to the fetch time.
    future_tolerance: Duration = Duration(600)
    #: New or changed entries one check of a feed takes at most (the newest); the rest on later checks.
    max_entries_per_check: int = 500
    #: Memory a parse worker process may take beyond its start-up size (0: no cap).
    parse_memory_limit: ByteSize = ByteSize(512 * 2**20)
    #: Time one feed's parse may take in a worker process before the worker is stopped (0: no cap).
    parse_timeout: Duration = Duration(60)


@dataclass(frozen=True)
class SearchConfig:
    """Search ranking."""

    #: Half-life of the recency boost: a result this old counts half as fresh.
    recency_half_life: Duration = Duration(3 * 86400)
    #: Weight of recency against text relevance (0 turns it off).
    recency_weight: float = 0.3
    #: Longest query accepted, in characters (longer ones are refused with a message).
    max_query_length: int = 2000
    #: Most words, phrases and filters one query may combine.
    max_clauses: int = 64
    #: Most index words the prefix (word*) and fuzzy (word~) terms of one query may expand to, together.
    max_expansions: int = 2000
    #: Longest one query may run before it is stopped with a message.
    max_query_seconds: Duration = Duration(5)


@dataclass(frozen=True)
class RelatedConfig:
    """Related coverage."""

    #: Window around the article's date in which coverage counts as related.
    window: Duration = Duration(7 * 86400)
    #: Leave the article's own source out of its related coverage.
    exclude_same_source: bool = True
    #: Most items from one source in one answer.
    max_per_source: int = 1
    #: Index postings a web process holds in memory for related coverage (4 bytes each, plus about 110
    #: bytes per term); segments past it are read term by term. 0: none held.
    postings_in_memory: int = 16_000_000


@dataclass(frozen=True)
class FrontConfig:
    """The front page."""

    #: Topic sections, by operator tag (feeds[].tags); None (not set): the tags most feeds carry.
    sections: tuple[str, ...] | None = None


@dataclass(frozen=True)
class StoriesConfig:
    """Stories: articles of every outlet on one event, grouped as they arrive."""

    #: A story ends this long after its latest article; later articles start a new story.
    quiet_period: Duration = Duration(72 * 3600)
    #: Distinct outlets a story needs to be shown as a story (front page, /api/v1/stories).
    min_outlets: int = 2
    #: Stories a process keeps in memory at most; the quiet longest are read back from the database by the week.
    memory_stories: int = 60_000


@dataclass(frozen=True)
class NodeConfig:
    """This process among several sharing one PostgreSQL store (`newsdesk poller`, `newsdesk serve --follow`)."""

    #: This node's name in poll leases and logs ("": host name and process id).
    name: str = ""
    #: Where this node keeps its search index ("": data_dir/index); a web follower's own replica.
    index_dir: str = ""
    #: How long a poller's claim on a feed lasts unless renewed (a dead poller's feeds free up after it).
    lease: Duration = Duration(120)
    #: Feeds a poller claims at once.
    claim_batch: int = 64
    #: Parse worker processes of a poller (0: one per core; with several pollers on one machine, share the cores).
    parse_workers: int = 0
    #: How often a web follower looks for new changes in the store.
    follow_interval: Duration = Duration(1.0)
    #: Changes a web follower applies per index commit.
    follow_batch: int = 2000
    #: /readyz of a web follower fails while its replica is further behind the store than this.
    max_replica_lag: Duration = Duration(60)


@dataclass(frozen=True)
class FeedConfig:
    """One [[feeds]] table."""

    #: http(s):// URL, file:// URL or local path of the feed.
    url: str
    #: Display title (default: the feed's own title).
    title: str = ""
    #: Operator tags.
    tags: tuple[str, ...] = ()
    #: Fixed polling interval, overriding the adaptive one.
    interval: Duration | None = None
    #: User-Agent for this feed only.
    user_agent: str = ""
    #: Zone for dates that carry none (IANA name).
    timezone: str = "UTC"
    #: Fetch each article page and extract its full text.
    full_content: bool = False
    #: Poll this feed at all.
    enabled: bool = True


@dataclass(frozen=True)
class Config:
    """The whole configuration."""

    #: Where the database and the index live (relative to the config file).
    data_dir: Path = Path("./data")
    #: SQLAlchemy URL of the store; empty means a SQLite file in data_dir.
    database_url: str = ""
    #: Log level: debug, info, warning, error.
    log_level: str = "info"
    #: Log line format: "text" (human) or "json" (one object per line).
    log_format: str = "text"
    #: Web server options.
    server: ServerConfig = field(default_factory=ServerConfig)
    #: Polling options.
    polling: PollingConfig = field(default_factory=PollingConfig)
    #: Search options.
    search: SearchConfig = field(default_factory=SearchConfig)
    #: Related-coverage options.
    related: RelatedConfig = field(default_factory=RelatedConfig)
    #: Front page options.
    front: FrontConfig = field(default_factory=FrontConfig)
    #: Story options.
    stories: StoriesConfig = field(default_factory=StoriesConfig)
    #: This node, when several share one PostgreSQL store.
    node: NodeConfig = field(default_factory=NodeConfig)
    #: The feeds to poll.
    feeds: tuple[FeedConfig, ...] = ()
    #: The file this was read from ("" when built in code).
    source_path: str = ""

    @property
    def db_url(self) -> str:
        """Return the database URL in effect."""
        return self.database_url or f"sqlite:///{self.data_dir / 'newsdesk.db'}"

    @property
    def index_dir(self) -> Path:
        """Return the directory of the live Whoosh index (``node.index_dir`` when set)."""
        return Path(self.node.index_dir) if self.node.index_dir else self.data_dir / "index"


def parse_duration(value: Any, where: str) -> Duration:
    """Return seconds for an int/float or a string like "5m"; raise ConfigError otherwise."""
    if isinstance(value, bool):
        raise ConfigError(f'{where}: expected a duration such as 300 or "5m", got {value!r}')
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ConfigError(f'{where}: expected a duration such as 300, "90s", "5m", "24h" or "7d", got {value!r}')
    if seconds < 0:
        raise ConfigError(f"{where}: a duration cannot be negative, got {value!r}")
    return Duration(seconds)


def parse_size(value: Any, where: str) -> ByteSize:
    """Return bytes for an int or a string like "15MiB"; raise ConfigError otherwise."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return ByteSize(value)
    if isinstance(value, str) and (match := _SIZE.match(value)):
        unit = match.group(2).lower() if match.group(2) else None
        return ByteSize(int(match.group(1)) * _SIZE_UNITS[unit])
    raise ConfigError(f'{where}: expected a size such as 1048576 or "15MiB", got {value!r}')


def check_feed_url(url: str, where: str) -> str:
    """Return the URL if it is http(s)://, file:// or a path; raise ConfigError otherwise."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"{where}: expected a non-empty URL or path, got {url!r}")
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        if not parts.hostname:
            raise ConfigError(f"{where}: {url!r} has no host name")
        return url
    if parts.scheme == "file" or not parts.scheme or re.match(r"^[A-Za-z]:[\\/]", url):
        return url
    raise ConfigError(f"{where}: {url!r} is not an http(s) URL, a file:// URL or a path")


def _convert(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _convert(value, args[0], where)
    if hint is Duration:
        return parse_duration(value, where)
    if hint is ByteSize:
        return parse_size(value, where)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if hint is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}: expected a path string, got {value!r}")
        return Path(value)
    if origin is tuple:
        if isinstance(value, str) or not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item_hint, _) = typing.get_args(hint)
        return tuple(_convert(v, item_hint, f"{where}[{i}]") for i, v in enumerate(value))
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return _build(hint, value, where)
    raise ConfigError(f"{where}: unsupported option type")  # pragma: no cover - a programming error


def _build(cls: Any, table: Mapping[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source_path"}
    unknown = sorted(set(table) - set(fields))
    if unknown:
        prefix = f"{where}." if where else ""
        known = ", ".join(sorted(fields))
        raise ConfigError(f"{prefix}{unknown[0]}: unknown key (known keys here: {known})")
    kwargs: dict[str, Any] = {}
    for name, value in table.items():
        path = f"{where}.{name}" if where else name
        kwargs[name] = _convert(value, hints[name], path)
    missing = [
        name
        for name, f in fields.items()
        if name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"{where}.{missing[0]}: required key is missing" if where else f"{missing[0]}: required")
    return cls(**kwargs)


def _validate(config: Config, label: str) -> None:
    polling = config.polling
    problems: list[tuple[str, str]] = []
    if polling.min_interval > polling.max_interval:
        problems.append(("polling.min_interval", "must not be longer than polling.max_interval"))
    if polling.concurrency < 1:
        problems.append(("polling.concurrency", "must be at least 1"))
    if config.stories.quiet_period < 3600:
        problems.append(("stories.quiet_period", "must be at least 1h"))
    if config.stories.min_outlets < 2:
        problems.append(("stories.min_outlets", "must be at least 2 (one outlet's article is not a story)"))
    if config.stories.memory_stories < 1000:
        problems.append(("stories.memory_stories", "must be at least 1000"))
    if polling.per_host_concurrency < 1:
        problems.append(("polling.per_host_concurrency", "must be at least 1"))
    if polling.per_host_concurrency > polling.concurrency:
        problems.append(("polling.per_host_concurrency", "must not exceed polling.concurrency"))
    if not 0 <= polling.jitter < 1:
        problems.append(("polling.jitter", "must be between 0 and 1"))
    if polling.max_redirects < 0:
        problems.append(("polling.max_redirects", "must not be negative"))
    if polling.max_entries_per_check < 1:
        problems.append(("polling.max_entries_per_check", "must be at least 1"))
    if 0 < polling.parse_memory_limit < 32 * 2**20:
        problems.append(("polling.parse_memory_limit", "must be 0 (no cap) or at least 32MiB"))
    if not 0 < config.server.port < 65536:
        problems.append(("server.port", f"{config.server.port} is not a TCP port"))
    if config.server.threads < 1:
        problems.append(("server.threads", "must be at least 1"))
    if config.log_level.lower() not in ("debug", "info", "warning", "error"):
        problems.append(("log_level", f"{config.log_level!r} is not one of debug, info, warning, error"))
    if config.log_format not in ("text", "json"):
        problems.append(("log_format", f"{config.log_format!r} is not one of text, json"))
    for i, allowed in enumerate(config.server.metrics_allow):
        if allowed != "*":
            try:
                ipaddress.ip_network(allowed, strict=False)
            except ValueError:
                problems.append(
                    (
                        f"server.metrics_allow[{i}]",
                        f"{allowed!r} is not an IP address, a network such as 10.0.0.0/8, or *",
                    )
                )
    if config.database_url and not re.match(r"^(sqlite|postgresql)(\+\w+)?://", config.database_url):
        problems.append(("database_url", f"{config.database_url!r} is not a sqlite:// or postgresql:// URL"))
    if config.server.public_url and not re.match(r"^https?://[^/\s]+", config.server.public_url):
        problems.append(("server.public_url", f"{config.server.public_url!r} is not an http(s) URL"))
    if not config.polling.user_agent.strip():
        problems.append(("polling.user_agent", "must not be empty: servers expect to know who is asking"))
    if config.search.recency_weight < 0:
        problems.append(("search.recency_weight", "must be 0 (no recency boost) or more"))
    if config.search.recency_half_life <= 0:
        problems.append(("search.recency_half_life", "must be longer than 0"))
    if not 1 <= config.search.max_query_length <= 10_000:
        problems.append(("search.max_query_length", "must be between 1 and 10000 characters"))
    if config.search.max_clauses < 1:
        problems.append(("search.max_clauses", "must be at least 1"))
    if config.search.max_expansions < 1:
        problems.append(("search.max_expansions", "must be at least 1"))
    if config.search.max_query_seconds <= 0:
        problems.append(("search.max_query_seconds", "must be longer than 0"))
    if config.related.window <= 0:
        problems.append(("related.window", "must be longer than 0"))
    if config.server.rate_limit_per_minute < 0:
        problems.append(("server.rate_limit_per_minute", "must be 0 (no limit) or more"))
    if config.related.max_per_source < 1:
        problems.append(("related.max_per_source", "must be at least 1"))
    if config.related.postings_in_memory < 0:
        problems.append(("related.postings_in_memory", "must be 0 (none held) or more"))
    node = config.node
    if node.lease < 1:
        problems.append(("node.lease", "must be at least 1 second"))
    if node.claim_batch < 1:
        problems.append(("node.claim_batch", "must be at least 1"))
    if node.parse_workers < 0:
        problems.append(("node.parse_workers", "must be 0 (one per core) or more"))
    if node.follow_batch < 1:
        problems.append(("node.follow_batch", "must be at least 1"))
    if node.follow_interval <= 0:
        problems.append(("node.follow_interval", "must be longer than 0"))
    section_keys: dict[str, int] = {}
    for i, tag in enumerate(config.front.sections or ()):
        key = " ".join(tag.casefold().split())
        if not key:
            problems.append((f"front.sections[{i}]", 'must not be empty: name an operator tag such as "politics"'))
        elif key in section_keys:
            problems.append(
                (f"front.sections[{i}]", f"{tag!r} is already listed as front.sections[{section_keys[key]}]")
            )
        section_keys.setdefault(key, i)
    seen: dict[str, int] = {}
    for i, feed in enumerate(config.feeds):
        try:
            check_feed_url(feed.url, f"feeds[{i}].url")
        except ConfigError as exc:
            problems.append(("", str(exc)))
            continue
        if feed.url in seen:
            problems.append((f"feeds[{i}].url", f"{feed.url!r} is already listed as feeds[{seen[feed.url]}]"))
        seen.setdefault(feed.url, i)
        try:
            zoneinfo.ZoneInfo(feed.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            problems.append(
                (f"feeds[{i}].timezone", f"{feed.timezone!r} is not an IANA time zone such as Europe/Paris")
            )
        if feed.interval is not None and feed.interval < 60:
            problems.append((f"feeds[{i}].interval", "must be at least 60 seconds"))
    if problems:
        key, message = problems[0]
        raise ConfigError(f"{label}: {key}: {message}" if key else f"{label}: {message}")


def config_from_dict(table: Mapping[str, Any], *, label: str = "config.toml", base_dir: Path | None = None) -> Config:
    """Return a validated Config from a TOML-shaped mapping; errors start with ``label``."""
    try:
        config: Config = _build(Config, table, "")
    except ConfigError as exc:
        raise ConfigError(f"{label}: {exc}") from None
    if base_dir is not None and not config.data_dir.is_absolute():
        config = dataclasses.replace(config, data_dir=(base_dir / config.data_dir))
    if base_dir is not None and config.node.index_dir and not Path(config.node.index_dir).is_absolute():
        node = dataclasses.replace(config.node, index_dir=str(base_dir / config.node.index_dir))
        config = dataclasses.replace(config, node=node)
    _validate(config, label)
    return config


def resolve_config_path(explicit: str | None = None) -> Path:
    """Return the config file to use: --config, else $NEWSDESK_CONFIG, else ./config.toml."""
    if explicit:
        return Path(explicit)
    if os.environ.get(ENV_CONFIG):
        return Path(os.environ[ENV_CONFIG])
    return Path(DEFAULT_CONFIG_NAME)


def load_config(path: Path | str) -> Config:
    """Return the Config read from a TOML file; raise ConfigError with the key's path on any problem."""
    path = Path(path)
    label = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{label}: cannot read the configuration file ({exc.strerror})") from exc
    try:
        table = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{label}: not UTF-8 text ({exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{label}: invalid TOML: {exc}") from exc
    config = config_from_dict(table, label=label, base_dir=path.resolve().parent)
    return dataclasses.replace(config, source_path=str(path.resolve()))


def documented_keys(cls: Any = Config, prefix: str = "") -> list[str]:
    """Return every option's dotted path (``feeds[].url`` for arrays of tables)."""
    keys: list[str] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name == "source_path":
            continue
        hint = hints[f.name]
        path = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(hint):
            keys.extend(documented_keys(hint, f"{path}."))
        elif typing.get_origin(hint) is tuple and dataclasses.is_dataclass(typing.get_args(hint)[0]):
            keys.extend(documented_keys(typing.get_args(hint)[0], f"{path}[]."))
        else:
            keys.append(path)
    return keys
