"""HTTP (and local file) fetching: bytes, final URL, status and caching headers. Knows nothing about feeds."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from .errors import FetchError
from .models import FetchResult


@dataclass(frozen=True)
class FetchLimits:
    """Bounds on one fetch."""

    #: TCP connect timeout, seconds.
    connect_timeout: float = 10.0
    #: Longest wait for the next bytes, seconds.
    read_timeout: float = 30.0
    #: Total time one fetch may take, seconds.
    deadline: float = 60.0
    #: Largest decompressed body accepted, bytes.
    max_body_size: int = 15 * 2**20
    #: Redirects followed.
    max_redirects: int = 5


def is_local(url: str) -> bool:
    """Return True when ``url`` names a local file (file:// or a plain path)."""
    scheme = urlsplit(url).scheme
    return scheme == "file" or scheme == "" or (len(scheme) == 1 and url[1:3] in (":\\", ":/"))


def local_path(url: str) -> Path:
    """Return the filesystem path a file:// URL or plain path names."""
    if url.startswith("file://"):
        return Path(unquote(urlsplit(url).path))
    return Path(url)


def fetch_local(url: str, limits: FetchLimits) -> FetchResult:
    """Return a FetchResult for a local file, or raise FetchError."""
    path = local_path(url)
    try:
        size = path.stat().st_size
        if size > limits.max_body_size:
            raise FetchError(url, f"the file is {size} bytes, over the {limits.max_body_size}-byte limit")
        body = path.read_bytes()
    except FileNotFoundError as exc:
        raise FetchError(url, "no such file") from exc
    except IsADirectoryError as exc:
        raise FetchError(url, "is a directory, not a feed file") from exc
    except OSError as exc:
        raise FetchError(url, f"cannot read the file ({exc.strerror})") from exc
    return FetchResult(url=url, final_url=path.resolve().as_uri(), status=200, body=body, headers={})


def fetch_url(
    client: httpx.Client,
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    user_agent: str | None = None,
    limits: FetchLimits | None = None,
) -> FetchResult:
    """Return the response to a GET of ``url`` (following redirects), or raise FetchError."""
    limits = limits or FetchLimits()
    if is_local(url):
        return fetch_local(url, limits)
    headers: dict[str, str] = {"Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.8"}
    if user_agent:
        headers["User-Agent"] = user_agent
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    started = time.monotonic()
    redirects: list[tuple[int, str]] = []
    current = url
    try:
        for _ in range(limits.max_redirects + 1):
            with client.stream("GET", current, headers=headers, follow_redirects=False) as response:
                if response.is_redirect:
                    location = response.headers.get("location", "")
                    target = str(response.url.join(location))
                    redirects.append((response.status_code, target))
                    if target in (current, *[u for _, u in redirects[:-1]]):
                        raise FetchError(url, f"redirect loop at {target}", status=response.status_code)
                    current = target
                    continue
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > limits.max_body_size:
                        raise FetchError(
                            url, f"the response is larger than the {limits.max_body_size}-byte limit", status=200
                        )
                    if time.monotonic() - started > limits.deadline:
                        raise FetchError(url, f"the fetch took longer than {limits.deadline:g} s and was cut off")
                    chunks.append(chunk)
                return FetchResult(
                    url=url,
                    final_url=str(response.url),
                    status=response.status_code,
                    body=b"".join(chunks),
                    headers={k.lower(): v for k, v in response.headers.items()},
                    redirects=tuple(redirects),
                    elapsed=time.monotonic() - started,
                    wire_bytes=response.num_bytes_downloaded,
                    conditional=bool(etag or last_modified),
                )
        raise FetchError(url, f"more than {limits.max_redirects} redirects")
    except httpx.TimeoutException as exc:
        raise FetchError(url, f"timed out ({type(exc).__name__})") from exc
    except httpx.HTTPError as exc:
        raise FetchError(url, f"network error: {exc}") from exc


def make_client(limits: FetchLimits | None = None, *, max_connections: int = 32) -> httpx.Client:
    """Return an httpx Client configured with our timeouts and pool size."""
    limits = limits or FetchLimits()
    return httpx.Client(
        timeout=httpx.Timeout(limits.read_timeout, connect=limits.connect_timeout),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        http2=False,
    )
