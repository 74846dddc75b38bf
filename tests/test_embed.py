"""The embeds as HTTP resources: /embed.js and the /embed/related iframe page (headers, CSP, escaping)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from web.app import services_of
from web.embed import frame_policy

from .support.httpserver import FeedServer
from .test_related_api import STORY_OUTLETS, build_newsroom, entry_of, newsroom_config


def test_embed_script_is_served_cacheable_and_conditional(tmp_path: Path) -> None:
    from web.app import create_app

    app = create_app(newsroom_config(tmp_path))
    client = app.test_client()
    script = client.get("/embed.js")
    assert script.status_code == 200
    assert script.mimetype == "text/javascript"
    assert "max-age=" in script.headers["Cache-Control"]
    body = script.get_data(as_text=True)
    # The script never builds HTML from data: no innerHTML, insertAdjacentHTML or document.write.
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write", body)
    assert "attachShadow" in body and "textContent" in body and "noopener" in body
    again = client.get("/embed.js", headers={"If-None-Match": script.headers["ETag"]})
    assert again.status_code == 304
    services_of(app).close()


def test_iframe_page_has_a_strict_policy_and_escapes_feed_text(tmp_path: Path, feed_server: FeedServer) -> None:
    config = newsroom_config(tmp_path, frame_ancestors="https://blog.example", rate_limit_per_minute=1000)
    app = build_newsroom(config, feed_server, (*STORY_OUTLETS, "hostile"))
    client = app.test_client()
    article = entry_of(services_of(app).store, "valley-post")
    page = client.get(f"/embed/related?entry={article.id}&limit=10")
    assert page.status_code == 200
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "frame-ancestors https://blog.example" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "X-Frame-Options" not in page.headers
    nonce = re.search(r"script-src 'nonce-([^']+)'", policy)
    assert nonce is not None
    html = page.get_data(as_text=True)
    # Only our own nonced script and style exist; the feed's markup arrives as text.
    assert html.count("<script") == 1 and f'<script nonce="{nonce.group(1)}">' in html
    assert "<img" not in html and "<svg" not in html
    # The feed title's <script> is dropped at normalization (feed-level fields follow the entries' rules).
    assert "Hostile Gazette" in html and "pwned=&#34;feed title" not in html and "&lt;script" not in html
    assert "javascript:" not in html.lower().replace("window.__pwned", "")
    assert "Harbour Times" in html and "Northern Wire" in html
    assert client.get(f"/embed/related?entry={article.id}").headers["Content-Security-Policy"] != policy  # fresh nonce
    services_of(app).close()


def visible_text(html: str) -> str:
    """Return what a reader of the page sees: text outside tags, comments, scripts and styles."""

    class Collector(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.parts: list[str] = []
            self.hidden = 0

        def handle_starttag(self, tag: str, attrs: object) -> None:
            self.hidden += tag in ("script", "style", "title")

        def handle_endtag(self, tag: str) -> None:
            self.hidden -= tag in ("script", "style", "title")

        def handle_data(self, data: str) -> None:
            if not self.hidden:
                self.parts.append(data)

    collector = Collector()
    collector.feed(html)
    return " ".join(" ".join(collector.parts).split())


def test_iframe_page_shows_readers_a_neutral_box_on_bad_requests(tmp_path: Path, feed_server: FeedServer) -> None:
    app = build_newsroom(newsroom_config(tmp_path), feed_server, STORY_OUTLETS)
    client = app.test_client()
    for query, status, reason in (
        ("entry=nope", 404, "no entry"),
        ("", 400, "pass entry="),
        ("title=Kessel+dam&limit=ten", 400, "limit must be an integer"),
        ("url=https%3A%2F%2Fnowhere.example%2Fa", 404, "no stored article"),
    ):
        page = client.get(f"/embed/related?{query}")
        assert page.status_code == status and page.mimetype == "text/html"
        assert "Content-Security-Policy" in page.headers
        html = page.get_data(as_text=True)
        # The reason is there for whoever inspects the frame, not in the box readers see.
        assert f'data-status="{status}"' in html and reason in html
        assert visible_text(html) == "Related coverage No other coverage of this story yet. via Newsdesk"
    services_of(app).close()


def test_rate_limited_iframe_shows_the_neutral_box_not_json(tmp_path: Path, feed_server: FeedServer) -> None:
    app = build_newsroom(newsroom_config(tmp_path, rate_limit_per_minute=2), feed_server, STORY_OUTLETS)
    client = app.test_client()
    article = entry_of(services_of(app).store, "valley-post")
    answers = [client.get(f"/embed/related?entry={article.id}") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    limited = answers[-1]
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.mimetype == "text/html" and limited.headers["Cache-Control"] == "no-store"
    assert "default-src 'none'" in limited.headers["Content-Security-Policy"]
    html = limited.get_data(as_text=True)
    assert "too_many_requests" not in html and '<section class="nd"' in html and 'data-status="429"' in html
    assert visible_text(html) == "Related coverage No other coverage of this story yet. via Newsdesk"
    # Its own nonced script still runs, so the frame still reports its height to the partner page.
    nonce = re.search(r"script-src 'nonce-([^']+)'", limited.headers["Content-Security-Policy"])
    assert nonce is not None and f'<script nonce="{nonce.group(1)}">' in html
    services_of(app).close()


def test_frame_policy_defaults_to_any_ancestor() -> None:
    assert "frame-ancestors *" in frame_policy("abc", "*")
    assert "frame-ancestors *" in frame_policy("abc", " ")
