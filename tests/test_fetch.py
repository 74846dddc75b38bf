"""fetch_url against a real misbehaving HTTP server on 127.0.0.1: compression, limits, redirects, deadline."""

from __future__ import annotations

import resource
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import brotli
import httpx
import pytest

from aggregator.errors import FetchError
from aggregator.fetch import FetchLimits, fetch_url, make_client
from aggregator.hosts import HostLimiter

from .feedgen import gzip_bomb, gzipped, rss
from .support.hostile import trickling_body, trickling_headers
from .support.httpserver import FeedServer, Reply

LIMITS = FetchLimits(connect_timeout=2, read_timeout=2, deadline=3, max_body_size=15 * 2**20, max_redirects=5)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with make_client(LIMITS) as c:
        yield c


def test_plain_200_sends_our_headers(feed_server: FeedServer, client: httpx.Client) -> None:
    # One body, served and compared: rss() dates its items from the clock, which may tick between two calls.
    body = rss()
    feed_server.route("/feed", Reply(200, body, {"Content-Type": "application/rss+xml", "ETag": '"a"'}))
    result = fetch_url(client, feed_server.url("/feed"), user_agent="Newsdesk-test (+https://x)", limits=LIMITS)
    assert result.status == 200 and result.body == body and result.headers["etag"] == '"a"'
    sent = feed_server.hits("/feed")[0]
    assert sent["user-agent"] == "Newsdesk-test (+https://x)"
    assert "gzip" in sent["accept-encoding"] and "br" in sent["accept-encoding"]
    assert "application/rss+xml" in sent["accept"]
    assert not result.conditional


def test_conditional_get_gets_304(feed_server: FeedServer, client: httpx.Client) -> None:
    def handler(request: BaseHTTPRequestHandler) -> Reply:
        if request.headers.get("If-None-Match") == '"v1"':
            return Reply(304, b"", {"ETag": '"v1"'})
        return Reply(200, rss(), {"ETag": '"v1"'})

    feed_server.route("/feed", handler)
    result = fetch_url(
        client, feed_server.url("/feed"), etag='"v1"', last_modified="Mon, 02 Mar 2026 10:00:00 GMT", limits=LIMITS
    )
    assert result.status == 304 and result.body == b"" and result.conditional
    assert feed_server.hits("/feed")[0]["if-modified-since"] == "Mon, 02 Mar 2026 10:00:00 GMT"


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzipped),
        ("deflate", zlib.compress),
        ("deflate", lambda b: zlib.compress(b)[2:-4]),  # raw deflate, as some servers send it
        ("br", brotli.compress),
    ],
)
def test_compressed_bodies_are_decoded(feed_server: FeedServer, client: httpx.Client, encoding: str, encode) -> None:  # type: ignore[no-untyped-def]
    body = rss(20)
    feed_server.route("/feed", Reply(200, encode(body), {"Content-Encoding": encoding}))
    result = fetch_url(client, feed_server.url("/feed"), limits=LIMITS)
    assert result.body == body
    assert result.wire_bytes < len(body)


def test_gzip_bomb_is_refused_not_inflated(feed_server: FeedServer, client: httpx.Client) -> None:
    bomb = gzip_bomb()
    feed_server.route("/bomb", Reply(200, bomb, {"Content-Encoding": "gzip"}))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(FetchError, match=r"larger than the 15 MiB limit \(counted after decompression\)"):
        fetch_url(client, feed_server.url("/bomb"), limits=LIMITS)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 100, f"peak memory grew by {grown_mib:.0f} MiB inflating a 200 MiB bomb"


def test_brotli_bomb_is_refused(feed_server: FeedServer, client: httpx.Client) -> None:
    bomb = brotli.compress(bytes(64 * 2**20), quality=5)
    feed_server.route("/bomb", Reply(200, bomb, {"Content-Encoding": "br"}))
    limits = FetchLimits(max_body_size=2**20, deadline=10)
    with pytest.raises(FetchError, match="larger than the 1 MiB limit"):
        fetch_url(client, feed_server.url("/bomb"), limits=limits)


def _stream_forever(request: BaseHTTPRequestHandler, *, length: bool) -> None:
    request.send_response(200)
    if length:
        request.send_header("Content-Length", str(50 * 2**20))
    else:
        request.send_header("Connection", "close")
    request.end_headers()
    chunk = b"<!-- padding -->" * 65536
    try:
        for _ in range(50 * 2**20 // len(chunk)):
            request.wfile.write(chunk)
    except (BrokenPipeError, ConnectionResetError):
        return


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "no-length"])
def test_50_mib_body_is_refused(feed_server: FeedServer, client: httpx.Client, declared: bool) -> None:
    feed_server.route("/huge", lambda r: _stream_forever(r, length=declared))
    with pytest.raises(FetchError, match="larger than the 15 MiB limit") as info:
        fetch_url(client, feed_server.url("/huge"), limits=LIMITS)
    assert info.value.status == 200


def test_trickling_server_is_cut_off_at_the_deadline(feed_server: FeedServer, client: httpx.Client) -> None:
    feed_server.route("/slow", trickling_body)  # one byte every half second, headers at once
    started = time.monotonic()
    with pytest.raises(FetchError, match="took longer than 3 s and was cut off"):
        fetch_url(client, feed_server.url("/slow"), limits=LIMITS)
    assert time.monotonic() - started < 5


def test_server_trickling_its_headers_is_cut_off_at_the_deadline(feed_server: FeedServer, client: httpx.Client) -> None:
    # Each byte arrives well within the read timeout; only a deadline that covers the headers ends it.
    feed_server.route("/slow-head", trickling_headers)
    started = time.monotonic()
    with pytest.raises(FetchError, match="took longer than 3 s and was cut off"):
        fetch_url(client, feed_server.url("/slow-head"), limits=LIMITS)
    assert time.monotonic() - started < 4.5
    # The client is still good for the next fetch.
    feed_server.route("/ok", Reply(200, rss()))
    assert fetch_url(client, feed_server.url("/ok"), limits=LIMITS).status == 200


def test_silent_server_hits_the_read_timeout(feed_server: FeedServer, client: httpx.Client) -> None:
    release = threading.Event()

    def silent(request: BaseHTTPRequestHandler) -> None:
        release.wait(10)

    feed_server.route("/silent", silent)
    limits = FetchLimits(read_timeout=0.5, deadline=10)
    try:
        with pytest.raises(FetchError, match=r"sent nothing for 0\.5 s"):
            fetch_url(client, feed_server.url("/silent"), limits=limits)
    finally:
        release.set()


def test_redirects_are_followed_and_recorded(feed_server: FeedServer, client: httpx.Client) -> None:
    feed_server.route("/a", Reply(301, b"", {"Location": "/b"}))
    feed_server.route("/b", Reply(302, b"", {"Location": feed_server.url("/c")}))
    feed_server.route("/c", Reply(200, rss()))
    result = fetch_url(client, feed_server.url("/a"), limits=LIMITS)
    assert result.status == 200 and result.final_url == feed_server.url("/c")
    assert result.redirects == ((301, feed_server.url("/b")), (302, feed_server.url("/c")))


def test_redirect_loop_is_named(feed_server: FeedServer, client: httpx.Client) -> None:
    feed_server.route("/loop1", Reply(302, b"", {"Location": "/loop2"}))
    feed_server.route("/loop2", Reply(302, b"", {"Location": "/loop1"}))
    with pytest.raises(FetchError, match=r"redirect loop: .*/loop1 -> .*/loop2 -> .*/loop1"):
        fetch_url(client, feed_server.url("/loop1"), limits=LIMITS)


def test_too_many_redirects(feed_server: FeedServer, client: httpx.Client) -> None:
    for i in range(10):
        feed_server.route(f"/r{i}", Reply(301, b"", {"Location": f"/r{i + 1}"}))
    with pytest.raises(FetchError, match="more than 5 redirects"):
        fetch_url(client, feed_server.url("/r0"), limits=LIMITS)


def test_redirect_to_another_scheme_is_refused(feed_server: FeedServer, client: httpx.Client) -> None:
    feed_server.route("/x", Reply(301, b"", {"Location": "file:///etc/passwd"}))
    with pytest.raises(FetchError, match="not an http"):
        fetch_url(client, feed_server.url("/x"), limits=LIMITS)


def test_error_statuses_are_returned_with_headers(feed_server: FeedServer, client: httpx.Client) -> None:
    feed_server.route("/busy", Reply(429, b"slow down" * 100_000, {"Retry-After": "120"}))
    result = fetch_url(client, feed_server.url("/busy"), limits=LIMITS)
    assert result.status == 429 and result.headers["retry-after"] == "120"
    assert len(result.body) <= 64 * 1024  # error bodies are not read whole


def test_connection_refused_is_plain_words(client: httpx.Client) -> None:
    with FeedServer() as server:
        url = server.url("/gone")
    with pytest.raises(FetchError, match="could not connect: the connection was refused"):
        fetch_url(client, url, limits=LIMITS)


def test_redirect_hops_to_other_hosts_wait_at_the_gate(client: httpx.Client) -> None:
    limiter = HostLimiter(per_host=1, min_delay=0)
    with FeedServer("127.0.0.1") as first, FeedServer("127.0.0.2") as second:
        second.route("/feed", Reply(200, rss()))
        first.route("/feed", Reply(301, b"", {"Location": second.url("/feed")}))
        seen: list[str] = []

        def gate(host: str):  # type: ignore[no-untyped-def]
            seen.append(host)
            return limiter.hold(host)

        result = fetch_url(client, first.url("/feed"), limits=LIMITS, gate=gate)
    assert result.status == 200 and seen == ["127.0.0.1", "127.0.0.2"]
    assert limiter.peak == {"127.0.0.1": 1, "127.0.0.2": 1} and limiter.in_flight("127.0.0.1") == 0
