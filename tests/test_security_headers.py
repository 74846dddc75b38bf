"""Security headers: a strict CSP, nosniff and a Referrer-Policy on pages, nosniff on everything, the embed's own CSP kept.

The header checks run through the Flask client; the browser test loads every page in a real Chromium
and checks the policy breaks nothing (styles, an article's picture from another host) and blocks
what it must (an injected inline script).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from aggregator.poller import update_feeds
from tests.fixtures.search.world import build_world
from web.app import create_app
from web.security import PAGE_POLICY
from web.services import Services

from .support.httpserver import FeedServer, Reply
from .support.live import LiveServer


def tiny_png(width: int = 24, height: int = 16) -> bytes:
    """Return a valid grey PNG image (an article's picture)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def picture_feed(image_url: str) -> str:
    """Return a feed whose one entry shows a picture from another host and a video player."""
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Picture Desk</title><link>https://pictures.example/</link>
<description>Photos</description><language>en</language>
<item><title>Harbour lights photographed at dusk</title><link>https://pictures.example/2024/lights</link>
<guid>pd-1</guid><pubDate>Sun, 19 May 2024 20:00:00 GMT</pubDate>
<description><![CDATA[<p>The harbour lights came on one by one as the ferry left the quay at dusk.</p>
<p><img src="{image_url}" alt="The harbour at dusk" width="24" height="16"></p>
<p>Our photographer waited three hours on the breakwater for the picture.</p>]]></description>
</item></channel></rss>"""


@pytest.fixture(scope="module")
def feed_host() -> Iterator[FeedServer]:
    with FeedServer() as server:
        server.route("/photos/harbour-dusk.png", Reply(body=tiny_png(), headers={"Content-Type": "image/png"}))
        yield server


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, feed_host: FeedServer) -> Iterator[Services]:
    root = tmp_path_factory.mktemp("world")
    services = build_world(root)
    path = root / "pictures.xml"
    path.write_text(picture_feed(feed_host.url("/photos/harbour-dusk.png")), encoding="utf-8")
    for result in update_feeds(services.store, [services.store.add_feed(str(path))], services.config):
        assert result.error is None, result
    services.indexer().catch_up()
    yield services
    services.close()


@pytest.fixture(scope="module")
def client(world: Services) -> FlaskClient:
    return create_app(world.config, world).test_client()


def picture_entry_id(client: FlaskClient) -> str:
    hits = client.get("/api/v1/search?q=harbour+lights+photographed").get_json()["hits"]
    assert hits and hits[0]["title"] == "Harbour lights photographed at dusk"
    return str(hits[0]["id"])


def test_every_page_sends_the_policy(client: FlaskClient) -> None:
    entry_id = picture_entry_id(client)
    for path in ("/", "/?q=harbour", f"/entries/{entry_id}", "/feeds", "/entries/no-such-entry", "/?q=x&page=0"):
        answer = client.get(path)
        assert answer.mimetype == "text/html", path
        assert answer.headers["Content-Security-Policy"] == PAGE_POLICY, path
        assert answer.headers["X-Content-Type-Options"] == "nosniff", path
        assert answer.headers["Referrer-Policy"] == "strict-origin-when-cross-origin", path
    assert "script-src 'none'" in PAGE_POLICY and "frame-ancestors 'none'" in PAGE_POLICY


def test_everything_else_is_nosniff_and_only_pages_get_the_page_policy(client: FlaskClient) -> None:
    entry_id = picture_entry_id(client)
    for path in (
        "/api/v1/search?q=harbour",
        "/api/v1/search?page=0",
        f"/api/v1/entries/{entry_id}",
        "/api/v1/openapi.json",
        "/api/v1/feeds",
        "/search.atom?q=harbour",
        "/search.rss?q=harbour",
        "/opensearch.xml",
        "/healthz",
        "/embed.js",
        "/static/newsdesk.css",
    ):
        answer = client.get(path)
        answer.close()  # static files are streamed from an open file
        assert answer.headers["X-Content-Type-Options"] == "nosniff", path
        assert "Content-Security-Policy" not in answer.headers, path


def test_the_embed_keeps_its_own_policy(client: FlaskClient) -> None:
    answer = client.get(f"/embed/related?entry={picture_entry_id(client)}")
    policy = answer.headers["Content-Security-Policy"]
    assert answer.status_code == 200 and policy != PAGE_POLICY
    assert "frame-ancestors *" in policy and "script-src 'nonce-" in policy
    assert answer.headers["Referrer-Policy"] == "no-referrer"


#: Collects CSP violations from the first moment of each page (init scripts run before the page's own).
COLLECT_VIOLATIONS = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));
"""


@pytest.mark.browser
def test_pages_work_under_the_policy_in_a_browser(browser: Any, world: Services, client: FlaskClient) -> None:
    entry_id = picture_entry_id(client)
    context = browser.new_context()
    context.add_init_script(COLLECT_VIOLATIONS)
    page = context.new_page()
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    try:
        with LiveServer(create_app(world.config, world)) as live:
            for path in ("/", "/?q=harbour", f"/entries/{entry_id}", "/feeds"):
                response = page.goto(live.base + path)
                assert response is not None and response.status == 200, path
                assert response.headers["content-security-policy"] == PAGE_POLICY
                # The stylesheet applied (the skip link sits off-screen only through newsdesk.css).
                assert page.evaluate("getComputedStyle(document.querySelector('.skip')).position") == "absolute"
                assert page.evaluate("window.__violations") == [], path
            # The article's picture, from another host over http, is shown.
            page.goto(live.base + f"/entries/{entry_id}")
            picture = page.locator("article.entry img").first
            picture.wait_for()
            assert page.evaluate("img => img.complete && img.naturalWidth", picture.element_handle()) == 24
            # Chromium logs every refusal on the console too: none while the pages were used as they are.
            assert [m for m in messages if "Content Security Policy" in m] == []
            # A script smuggled into the page would not run, and the attempt is reported.
            page.evaluate(
                "() => { const s = document.createElement('script'); s.textContent = 'window.__pwned = 1';"
                " document.body.append(s); }"
            )
            page.wait_for_function("window.__violations.length > 0")
            assert page.evaluate("window.__pwned") is None
            assert page.evaluate("window.__violations")[0].startswith("script-src")
    finally:
        context.close()


def test_the_policy_names_each_directive_once() -> None:
    # The policy is one string built at import: every directive once, no stray separators.
    directives = [part.strip().split()[0] for part in PAGE_POLICY.split(";")]
    assert len(directives) == len(set(directives)) and all(directives)
    assert "frame-src " in PAGE_POLICY and " https://www.youtube.com " in PAGE_POLICY
