"""Both embeds fit a partner's narrow sidebar: a 280 px flex or grid column keeps its width, nothing scrolls sideways.

The script embed's box used to ask for 576 px (a max-width box whose teasers would not wrap): a flex
item or an auto-sized grid track grows to its content's minimum width, so the sidebar pushed the
page's layout off screen.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from web.app import services_of

from .support.browser import artifact
from .support.httpserver import FeedServer, Reply
from .support.live import LiveServer
from .test_browser_embed import ARTICLE_URL
from .test_related_api import OTHER_OUTLET, STORY_OUTLETS, build_newsroom, newsroom_config

pytestmark = pytest.mark.browser

#: Sidebar width under test: the narrowest container the embeds promise to fit.
SIDEBAR = 280

#: Three ways partner sites build a sidebar: a flex item with a basis, a grid column sized by fractions
#: (its minimum is the content's), and a fixed grid track.
LAYOUTS = {
    "flex": "display:flex;gap:16px",
    "grid-fr": "display:grid;grid-template-columns:3fr 1fr;gap:16px",
    "grid-fixed": f"display:grid;grid-template-columns:1fr {SIDEBAR}px;gap:16px",
}


def embeds(live: str) -> str:
    """Return the markup of both embeds, as the README tells partners to paste it."""
    frame_src = f"{live}/embed/related?url={quote(ARTICLE_URL, safe='')}"
    return f"""<script async src="{live}/embed.js" data-newsdesk-related></script>
    <iframe class="newsdesk-related-frame" title="Related coverage" src="{frame_src}"
      sandbox="allow-scripts allow-popups allow-popups-to-escape-sandbox"></iframe>"""


def page_around(body: str) -> bytes:
    """Return a partner article page holding ``body``."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>A partner page</title>
<link rel="canonical" href="{ARTICLE_URL}">
<meta property="og:title" content="Riverton flooded as Kessel dam collapses in storms">
<style>body {{ margin: 0; font-family: serif; }} .row {{ margin: 8px; }}
iframe {{ display: block; width: 100%; height: 420px; border: 0; }}</style>
</head><body>{body}</body></html>""".encode()


def partner_page(live: str) -> bytes:
    """Return a partner article page with both embeds in the sidebar of each layout."""
    # grid-fr: the row is 4 x 280 + 16 wide, so its 1fr column is 280 px when nothing pushes it.
    blocks = []
    for name, style in LAYOUTS.items():
        width = f"width:{4 * SIDEBAR + 16}px" if name == "grid-fr" else ""
        side = f"flex:0 0 {SIDEBAR}px" if name == "flex" else ""
        blocks.append(
            f"""<section class="row" id="{name}" style="{style};{width}">
  <main><h2>{name}</h2><p>The partner's own article text runs here, in the wide column.</p></main>
  <aside class="side" style="{side}">
    {embeds(live)}
  </aside>
</section>"""
        )
    return page_around("".join(blocks))


@pytest.fixture
def live_newsroom(tmp_path: Path, feed_server: FeedServer) -> Iterator[LiveServer]:
    config = newsroom_config(tmp_path, rate_limit_per_minute=1000)
    app = build_newsroom(config, feed_server, (*STORY_OUTLETS, OTHER_OUTLET, "hostile"))
    with LiveServer(app) as live:
        yield live
    services_of(app).close()


MEASURE = """name => {
  const row = document.getElementById(name);
  const side = row.querySelector('.side');
  const host = side.querySelector('.newsdesk-related');
  const box = host.shadowRoot.querySelector('.nd');
  const frame = side.querySelector('iframe');
  return {side: side.getBoundingClientRect().width, host: host.getBoundingClientRect().width,
          box: box.getBoundingClientRect().width, boxScroll: box.scrollWidth, boxClient: box.clientWidth,
          frame: frame.getBoundingClientRect().width, rowRight: row.getBoundingClientRect().right,
          sideRight: side.getBoundingClientRect().right};
}"""

FRAME_OVERFLOW = """() => ({scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth,
  box: document.querySelector('.nd').getBoundingClientRect().width, items: document.querySelectorAll('li').length})"""


def test_embeds_fit_a_280px_flex_or_grid_sidebar(browser: Any, live_newsroom: LiveServer) -> None:
    with FeedServer() as partner:
        partner.route("/post.html", Reply(200, partner_page(live_newsroom.base), {"Content-Type": "text/html"}))
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        try:
            page = context.new_page()
            page.goto(partner.url("/post.html"))
            page.wait_for_function(
                "[...document.querySelectorAll('.newsdesk-related')].every(h => h.dataset.state === 'ready')",
                timeout=15_000,
            )
            frames = [frame for frame in page.frames if "/embed/related" in frame.url]
            assert len(frames) == len(LAYOUTS)
            for frame in frames:
                frame.wait_for_selector("li", timeout=15_000)
            page.screenshot(path=str(artifact("embed-partner-sidebars.png")), full_page=True)
            for name in LAYOUTS:
                sizes = page.evaluate(MEASURE, name)
                # The sidebar keeps its width: the embed did not push it wider (or off the row's edge).
                assert abs(sizes["side"] - SIDEBAR) <= 1, (name, sizes)
                assert sizes["sideRight"] <= sizes["rowRight"] + 1, (name, sizes)
                # Both boxes fit inside it, and nothing inside the script's box overflows sideways.
                assert sizes["host"] <= sizes["side"] + 0.5 and sizes["box"] <= sizes["side"] + 0.5, (name, sizes)
                assert sizes["boxScroll"] <= sizes["boxClient"], (name, sizes)
                assert sizes["frame"] <= sizes["side"] + 0.5, (name, sizes)
            for frame in frames:
                inside = frame.evaluate(FRAME_OVERFLOW)
                assert inside["items"] >= 2, inside
                assert inside["scroll"] <= inside["client"] and inside["box"] <= inside["client"], inside
            # The partner page as a whole does not scroll sideways.
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        finally:
            context.close()


def test_embeds_fit_a_phone_at_280px(browser: Any, live_newsroom: LiveServer) -> None:
    # The narrowest phones (and split screens) are 280 px wide: the embeds sit in the page's only column.
    with FeedServer() as partner:
        body = f"<main class='row'><h1>A post</h1><p>The post's text.</p>{embeds(live_newsroom.base)}</main>"
        partner.route("/post.html", Reply(200, page_around(body), {"Content-Type": "text/html"}))
        context = browser.new_context(viewport={"width": SIDEBAR, "height": 700}, is_mobile=True)
        try:
            page = context.new_page()
            page.goto(partner.url("/post.html"))
            page.wait_for_function(
                "[...document.querySelectorAll('.newsdesk-related')].every(h => h.dataset.state === 'ready')",
                timeout=15_000,
            )
            hosts = page.evaluate(
                "[...document.querySelectorAll('.newsdesk-related')].map(h => h.shadowRoot.querySelector('.nd')"
                ".getBoundingClientRect().right)"
            )
            assert hosts and all(right <= SIDEBAR for right in hosts), hosts
            frame = next(frame for frame in page.frames if "/embed/related" in frame.url)
            frame.wait_for_selector("li", timeout=15_000)
            inside = frame.evaluate(FRAME_OVERFLOW)
            assert inside["scroll"] <= inside["client"], inside
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            page.screenshot(path=str(artifact("embed-partner-280px.png")), full_page=True)
        finally:
            context.close()
