"""The embeds as HTTP resources: /embed.js and the /embed/related iframe page (headers, CSP, escaping)."""

from __future__ import annotations

import re
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
    assert "<img" not in html and "<svg" not in html and "&lt;script&gt;" in html
    assert "javascript:" not in html.lower().replace("window.__pwned", "")
    assert "Harbour Times" in html and "Northern Wire" in html
    assert client.get(f"/embed/related?entry={article.id}").headers["Content-Security-Policy"] != policy  # fresh nonce
    services_of(app).close()


def test_iframe_page_explains_a_bad_request(tmp_path: Path, feed_server: FeedServer) -> None:
    app = build_newsroom(newsroom_config(tmp_path), feed_server, STORY_OUTLETS)
    client = app.test_client()
    missing = client.get("/embed/related?entry=nope")
    assert missing.status_code == 404 and "no entry" in missing.get_data(as_text=True)
    bad = client.get("/embed/related")
    assert bad.status_code == 400 and "pass entry=" in bad.get_data(as_text=True)
    assert "Content-Security-Policy" in bad.headers
    services_of(app).close()


def test_frame_policy_defaults_to_any_ancestor() -> None:
    assert "frame-ancestors *" in frame_policy("abc", "*")
    assert "frame-ancestors *" in frame_policy("abc", " ")
