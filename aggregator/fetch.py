"""HTTP (and local file) fetching: bytes, final URL, status and caching headers. Knows nothing about feeds.

Every limit is enforced here, while the bytes arrive: connect and read timeouts, a total deadline,
a body size counted *after* decompression (we decompress ourselves, in bounded steps, so a gzip
bomb is refused before it is inflated), and a bounded number of redirects followed by hand.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import httpx

from .deadline import DeadlineTransport, deadline_for
from .errors import FetchError
from .models import FetchResult

try:  # brotli is a dependency, but a missing wheel must only cost us "br", not fetching.
    import brotli

    _HAVE_BROTLI = True
except ImportError:  # pragma: no cover - depends on the platform
    brotli = None
    _HAVE_BROTLI = False

#: Feed types first; HTML last so a page still answers (discovery reads it).
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, application/feed+json;q=0.9, "
    "application/xml;q=0.8, text/xml;q=0.8, text/html;q=0.5, */*;q=0.3"
)
ACCEPT_ENCODING = "gzip, deflate, br" if _HAVE_BROTLI else "gzip, deflate"
_REDIRECTS = (301, 302, 303, 307, 308)
#: Bytes of an error response we bother to read (enough for a message, never a whole page).
_ERROR_BODY_LIMIT = 64 * 1024


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


#: Called with a host name before each request to it; returns a context held while the request runs.
HostGate = Callable[[str], AbstractContextManager[Any]]


class _Decoder(Protocol):
    def decode(self, data: bytes, budget: int) -> bytes: ...


class _TooLarge(Exception):
    pass


class _Identity:
    def decode(self, data: bytes, budget: int) -> bytes:
        return data


class _Zlib:
    """gzip or deflate, inflating at most ``budget`` bytes per call so a bomb stops at the limit."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        # deflate is meant to be zlib-wrapped (RFC 9110 §8.4.1.2) but some servers send raw deflate.
        self.obj = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
        self.started = False

    def decode(self, data: bytes, budget: int) -> bytes:
        if not self.started and self.encoding == "deflate":
            self.started = True
            try:
                return self._inflate(data, budget)
            except zlib.error:
                self.obj = zlib.decompressobj(-zlib.MAX_WBITS)
        self.started = True
        return self._inflate(data, budget)

    def _inflate(self, data: bytes, budget: int) -> bytes:
        out = bytearray()
        pending = data
        while True:
            # max_length bounds what one call may inflate; the rest waits in unconsumed_tail.
            out += self.obj.decompress(pending, budget - len(out) + 1)
            if len(out) > budget:
                raise _TooLarge
            if self.obj.unconsumed_tail:
                pending = self.obj.unconsumed_tail
            elif self.obj.eof and self.obj.unused_data:
                # Another gzip member follows (RFC 1952 §2.2 allows several): keep going.
                pending = self.obj.unused_data
                self.obj = zlib.decompressobj(16 + zlib.MAX_WBITS)
            else:
                return bytes(out)


class _Brotli:
    def __init__(self) -> None:
        assert brotli is not None
        self.obj = brotli.Decompressor()

    def decode(self, data: bytes, budget: int) -> bytes:
        out = bytearray(self.obj.process(data, output_buffer_limit=budget + 1))
        while len(out) <= budget and not self.obj.can_accept_more_data():
            out += self.obj.process(b"", output_buffer_limit=budget + 1 - len(out))
        if len(out) > budget:
            raise _TooLarge
        return bytes(out)


def _decoders(content_encoding: str) -> list[_Decoder]:
    """Return decoders for a Content-Encoding list, in the order they must be applied."""
    decoders: list[_Decoder] = []
    for coding in reversed([c.strip().lower() for c in content_encoding.split(",") if c.strip()]):
        if coding in ("gzip", "x-gzip"):
            decoders.append(_Zlib("gzip"))
        elif coding == "deflate":
            decoders.append(_Zlib("deflate"))
        elif coding == "br" and _HAVE_BROTLI:
            decoders.append(_Brotli())
        elif coding == "identity":
            decoders.append(_Identity())
        else:
            raise ValueError(coding)
    return decoders


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


def human_size(size: int) -> str:
    """Return a byte count in words, e.g. "15 MiB"."""
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= factor:
            return f"{size / factor:g} {unit}"
    return f"{size} bytes"


def _read_body(
    response: httpx.Response, url: str, limits: FetchLimits, started: float, limit: int
) -> tuple[bytes, int]:
    """Return (decompressed body, wire bytes), enforcing the size limit and the deadline as bytes arrive."""
    declared = response.headers.get("content-length", "")
    encoding = response.headers.get("content-encoding", "")
    too_large = (
        f"the response is larger than the {human_size(limits.max_body_size)} limit "
        "(counted after decompression) and was refused"
    )
    if declared.isascii() and declared.isdigit() and not encoding and int(declared) > limit:
        raise FetchError(url, too_large, status=response.status_code)
    try:
        decoders = _decoders(encoding)
    except ValueError as exc:
        raise FetchError(url, f"the server used an unknown compression ({exc})", status=response.status_code) from None
    chunks: list[bytes] = []
    size = wire = 0
    for raw in response.iter_raw():
        wire += len(raw)
        data = raw
        try:
            for decoder in decoders:
                data = decoder.decode(data, limit - size)
        except _TooLarge:
            raise FetchError(url, too_large, status=response.status_code) from None
        except Exception as exc:  # zlib.error, brotli.error: the body is not what it claims
            raise FetchError(
                url, f"the {encoding} body could not be decompressed ({exc})", status=response.status_code
            ) from exc
        size += len(data)
        if size > limit:
            raise FetchError(url, too_large, status=response.status_code)
        chunks.append(data)
        if time.monotonic() - started > limits.deadline:
            raise FetchError(url, f"the download took longer than {limits.deadline:g} s and was cut off")
    return b"".join(chunks), wire


def fetch_url(
    client: httpx.Client,
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    user_agent: str | None = None,
    limits: FetchLimits | None = None,
    gate: HostGate | None = None,
) -> FetchResult:
    """Return the response to a GET of ``url`` (following redirects by hand), or raise FetchError.

    Any final status is returned (the caller decides what a 404 or a 429 means); FetchError means
    there was no usable response: network error, timeout, deadline, size limit, redirect trouble.
    """
    limits = limits or FetchLimits()
    if is_local(url):
        return fetch_local(url, limits)
    headers: dict[str, str] = {"Accept": ACCEPT, "Accept-Encoding": ACCEPT_ENCODING}
    if user_agent:
        headers["User-Agent"] = user_agent
    # RFC 9110 §13.1.3: send both validators; the server prefers If-None-Match.
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    started = time.monotonic()
    redirects: list[tuple[int, str]] = []
    visited = [url]
    current = url
    try:
        # Every socket operation below is cut short when the total deadline passes (headers included).
        with deadline_for(limits.deadline):
            while True:
                remaining = limits.deadline - (time.monotonic() - started)
                if remaining <= 0:
                    raise FetchError(url, f"the download took longer than {limits.deadline:g} s and was cut off")
                timeout = httpx.Timeout(
                    min(limits.read_timeout, remaining), connect=min(limits.connect_timeout, remaining)
                )
                host = urlsplit(current).hostname or ""
                with (
                    gate(host) if gate else nullcontext(),
                    client.stream("GET", current, headers=headers, follow_redirects=False, timeout=timeout) as response,
                ):
                    status = response.status_code
                    if status in _REDIRECTS and response.headers.get("location"):
                        target = str(response.url.join(response.headers["location"].strip()))
                        redirects.append((status, target))
                        if urlsplit(target).scheme not in ("http", "https"):
                            raise FetchError(
                                url, f"redirected to {target!r}, which is not an http(s) URL", status=status
                            )
                        if target in visited:
                            chain = " -> ".join([*visited[visited.index(target) :], target])
                            raise FetchError(url, f"redirect loop: {chain}", status=status)
                        if len(redirects) > limits.max_redirects:
                            raise FetchError(url, f"more than {limits.max_redirects} redirects; gave up", status=status)
                        visited.append(target)
                        current = target
                        continue
                    # Error bodies are only read a little: nobody parses them.
                    limit = limits.max_body_size if status == 200 else min(limits.max_body_size, _ERROR_BODY_LIMIT)
                    try:
                        body, wire = _read_body(response, url, limits, started, limit)
                    except FetchError:
                        if status == 200:
                            raise
                        body, wire = b"", 0
                    return FetchResult(
                        url=url,
                        final_url=str(response.url),
                        status=status,
                        body=body if status != 304 else b"",
                        headers={k.lower(): v for k, v in response.headers.items()},
                        redirects=tuple(redirects),
                        elapsed=time.monotonic() - started,
                        wire_bytes=wire,
                        conditional=bool(etag or last_modified),
                    )
    except httpx.ConnectTimeout as exc:
        raise FetchError(url, f"could not connect within {limits.connect_timeout:g} s") from exc
    except httpx.TimeoutException as exc:
        if time.monotonic() - started >= limits.deadline - 0.05:
            raise FetchError(url, f"the download took longer than {limits.deadline:g} s and was cut off") from exc
        raise FetchError(url, f"the server sent nothing for {limits.read_timeout:g} s; gave up") from exc
    except httpx.ConnectError as exc:
        raise FetchError(url, f"could not connect: {_reason(exc)}") from exc
    except httpx.HTTPError as exc:
        raise FetchError(url, f"network error: {_reason(exc)}") from exc


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "the host name does not exist (DNS)"
    if "Connection refused" in text:
        return "the connection was refused"
    return text


def make_client(limits: FetchLimits | None = None, *, max_connections: int = 32) -> httpx.Client:
    """Return an httpx Client configured with our timeouts and pool size."""
    limits = limits or FetchLimits()
    return httpx.Client(
        timeout=httpx.Timeout(limits.read_timeout, connect=limits.connect_timeout),
        transport=DeadlineTransport(
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        ),
        # Feeds are polled from a daemon: environment proxies would be a surprise, and
        # trust_env=False also stops httpx from reading .netrc credentials into requests.
        trust_env=False,
    )
