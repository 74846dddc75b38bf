"""Feed discovery: is this URL a feed, or a page that links to feeds (<link rel="alternate">)?"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin

import httpx

from .config import Config
from .errors import FetchError, NotAFeedError, ParseError
from .fetch import fetch_url, is_local
from .from_config import limits_from_config
from .parse import parse_feed
from .policy import describe_status


@dataclass(frozen=True)
class Discovery:
    """What a URL turned out to be."""

    #: The URL that was checked.
    url: str
    #: True when the URL is itself a feed.
    is_feed: bool
    #: The feed's title (when it is a feed).
    title: str | None = None
    #: Absolute feed URLs the page advertises (when it is a page).
    alternates: tuple[str, ...] = ()


def discover(client: httpx.Client, url: str, config: Config) -> Discovery:
    """Return whether ``url`` is a feed or a page linking to feeds; raise FeedError when it is neither."""
    result = fetch_url(client, url, user_agent=config.polling.user_agent, limits=limits_from_config(config))
    if result.status != 200:
        raise FetchError(url, describe_status(result.status), status=result.status)
    try:
        parsed = parse_feed(result.body, result.headers, url=result.final_url)
    except NotAFeedError as exc:
        base = url if is_local(url) else result.final_url
        alternates = tuple(dict.fromkeys(urljoin(base, a) for a in exc.alternates))
        if not alternates:
            raise NotAFeedError(url, "not a feed: the URL returned an HTML page that links to no feed") from exc
        return Discovery(url=url, is_feed=False, alternates=alternates)
    except ParseError:
        raise
    return Discovery(url=url, is_feed=True, title=parsed.title)
