"""Embeds in a real headless Chromium: a third-party page on another origin embeds the script and the iframe.

The index holds three outlets covering one story, a fourth covering another, and a hostile feed whose
titles, teasers and links try to run script. Nothing it sends may run or become a clickable javascript: link.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask

from web.app import services_of

from .support.browser import artifact
from .support.httpserver import FeedServer, Reply
from .support.live import LiveServer
from .test_related_api import OTHER_OUTLET, STORY_OUTLETS, build_newsroom, entry_of, newsroom_config

pytestmark = pytest.mark.browser

ARTICLE_URL = "https://valleypost.example/news/dam"

# Every way a page could have been made to run the hostile feed's script sets window.__pwned.
INSPECT = """() => {
  const roots = [document];
  for (const host of document.querySelectorAll('.newsdesk-related')) if (host.shadowRoot) roots.push(host.shadowRoot);
  const anchors = [], elements = [];
  for (const root of roots) {
    for (const a of root.querySelectorAll('a')) anchors.push(a.getAttribute('href') || '');
    for (const el of root.querySelectorAll('*')) {
      const tag = el.tagName.toLowerCase();
      const handlers = [...el.attributes].filter(a => a.name.startsWith('on'));
      const schemes = [...el.attributes].filter(a => /^\\s*(javascript|data|vbscript):/i.test(a.value));
      if (handlers.length || schemes.length || ['object', 'embed', 'svg'].includes(tag)
          || (tag === 'iframe' && !el.classList.contains('newsdesk-related-frame'))
          || (tag === 'script' && (el.textContent || '').includes('__pwned')))
        elements.push(el.outerHTML.slice(0, 200));
    }
  }
  return {pwned: window.__pwned === undefined ? null : String(window.__pwned), anchors, elements};
}"""


@pytest.fixture
def live_newsroom(tmp_path: Path, feed_server: FeedServer) -> Iterator[tuple[Flask, LiveServer]]:
    """Yield the app (with the hostile feed among the outlets) served by waitress on 127.0.0.1."""
    config = newsroom_config(tmp_path, rate_limit_per_minute=1000)
    # Let every hostile item into the lists (by default one outlet gets one slot).
    config = dataclasses.replace(config, related=dataclasses.replace(config.related, max_per_source=3))
    app = build_newsroom(config, feed_server, (*STORY_OUTLETS, OTHER_OUTLET, "hostile"))
    with LiveServer(app) as live:
        yield app, live
    services_of(app).close()


def host_page(live: str, frame_src: str) -> bytes:
    """Return a third-party article page that embeds both the script and the iframe."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>A blog post about the dam</title>
<link rel="canonical" href="{ARTICLE_URL}">
<meta property="og:title" content="Riverton flooded as Kessel dam collapses in storms">
<meta name="description" content="Residents were evacuated when the dam collapsed.">
<style>body {{ font-family: serif; max-width: 44rem; margin: 1rem auto; }} iframe {{ width: 100%; border: 0; height: 40px; }}</style>
</head><body>
<h1>Third-party blog</h1><p>The post's own text.</p>
<h2>Script embed</h2>
<script async src="{live}/embed.js" data-newsdesk-related></script>
<h2>Iframe embed</h2>
<iframe class="newsdesk-related-frame" title="Related coverage" src="{frame_src}"
  sandbox="allow-scripts allow-popups allow-popups-to-escape-sandbox"></iframe>
<script>
window.__heights = [];
addEventListener("message", function (event) {{
  var data = event.data;
  if (!data || data.type !== "newsdesk:related-height") return;
  document.querySelectorAll("iframe.newsdesk-related-frame").forEach(function (frame) {{
    if (frame.contentWindow === event.source) {{ frame.style.height = data.height + "px"; window.__heights.push(data.height); }}
  }});
}});
</script>
</body></html>""".encode()


def open_page(browser: Any, url: str) -> tuple[Any, Any, list[str]]:
    """Return a new context, a page at ``url`` and the list that collects dialogs (alert() etc.)."""
    context = browser.new_context()
    page = context.new_page()
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(url)
    return context, page, dialogs


def assert_inert(report: dict[str, Any], dialogs: list[str], where: str) -> None:
    """Fail when anything hostile ran or became a live element or a non-http(s) link."""
    assert report["pwned"] is None, f"{where}: script ran ({report['pwned']})"
    assert dialogs == [], f"{where}: a dialog opened: {dialogs}"
    assert report["elements"] == [], f"{where}: active elements from the feed: {report['elements']}"
    for href in report["anchors"]:
        lowered = href.strip().lower()
        if not lowered:
            continue  # an <a> without href (the sanitizer dropped a javascript: one) is not a link
        assert lowered.startswith(("http://", "https://", "/", "#")), f"{where}: link {href!r} is not http(s)"


def test_third_party_page_embeds_script_and_iframe(browser: Any, live_newsroom: tuple[Flask, LiveServer]) -> None:
    _app, live = live_newsroom
    with FeedServer() as third_party:  # another origin: same 127.0.0.1, another port
        frame_src = f"{live.base}/embed/related?url={quote(ARTICLE_URL, safe='')}"
        third_party.route("/post.html", Reply(200, host_page(live.base, frame_src), {"Content-Type": "text/html"}))
        assert third_party.base != live.base
        context, page, dialogs = open_page(browser, third_party.url("/post.html"))
        try:
            script_box = page.locator(".newsdesk-related li")  # Playwright pierces the open shadow root
            script_box.first.wait_for(timeout=10_000)
            frame = page.frame_locator("iframe.newsdesk-related-frame")
            frame.locator("li").first.wait_for(timeout=10_000)
            page.wait_for_function("window.__heights.length > 0", timeout=10_000)

            sources = set(page.locator(".newsdesk-related .source").all_inner_texts())
            assert {"Harbour Times", "Northern Wire"} <= sources
            assert "Capital Daily" not in sources and "Valley Post" not in sources
            frame_sources = set(frame.locator(".source").all_inner_texts())
            assert {"Harbour Times", "Northern Wire"} <= frame_sources
            assert any("Hostile" in s for s in sources) and any("Hostile" in s for s in frame_sources)

            links = page.locator(".newsdesk-related a.title")
            assert links.count() >= 2
            for i in range(links.count()):
                assert links.nth(i).get_attribute("rel") == "noopener noreferrer"
            height = page.evaluate(
                "document.querySelector('iframe.newsdesk-related-frame').getBoundingClientRect().height"
            )
            assert height > 100, "the iframe reported its height and the page resized it"

            report = page.evaluate(INSPECT)
            assert_inert(report, dialogs, "script embed")
            frame_report = page.frames[1].evaluate(INSPECT)
            assert_inert(frame_report, dialogs, "iframe embed")
            page.screenshot(path=str(artifact("embed-cross-origin.png")), full_page=True)
        finally:
            context.close()


def test_article_page_renders_hostile_coverage_inert(browser: Any, live_newsroom: tuple[Flask, LiveServer]) -> None:
    app, live = live_newsroom
    store = services_of(app).store
    article = entry_of(store, "harbour-times")
    context, page, dialogs = open_page(browser, f"{live.base}/entries/{article.id}")
    try:
        sidebar = page.locator("aside.related")
        assert sidebar.is_visible()
        sources = sidebar.locator(".source").all_inner_texts()
        assert {"Valley Post", "Northern Wire"} <= set(sources)
        assert any("Hostile" in s for s in sources) and "Capital Daily" not in sources
        assert_inert(page.evaluate(INSPECT), dialogs, "article page")
        page.screenshot(path=str(artifact("entry-related-sidebar.png")), full_page=True)
        # The hostile entries' own pages are inert too.
        for entry in store.iter_entries():
            if "hostile" in entry.feed_key:
                page.goto(f"{live.base}/entries/{entry.id}")
                assert_inert(page.evaluate(INSPECT), dialogs, f"hostile article {entry.id}")
    finally:
        context.close()


def test_both_embeds_and_the_sidebar_show_the_same_utc_dates(
    browser: Any, live_newsroom: tuple[Flask, LiveServer]
) -> None:
    app, live = live_newsroom
    article = entry_of(services_of(app).store, "harbour-times")
    # A reader far from UTC, with a browser in another language: the dates must not depend on either.
    context = browser.new_context(timezone_id="America/Los_Angeles", locale="de-DE")
    try:
        with FeedServer() as third_party:
            frame_src = f"{live.base}/embed/related?url={quote(ARTICLE_URL, safe='')}"
            third_party.route("/post.html", Reply(200, host_page(live.base, frame_src), {"Content-Type": "text/html"}))
            page = context.new_page()
            page.goto(third_party.url("/post.html"))
            page.locator(".newsdesk-related li").first.wait_for(timeout=10_000)
            frame = page.frame_locator("iframe.newsdesk-related-frame")
            frame.locator("li").first.wait_for(timeout=10_000)
            read = """root => [...root.querySelectorAll('li')].map(li =>
                [li.querySelector('.source').textContent, li.querySelector('time').textContent])"""
            script_dates = dict(page.evaluate(f"({read})(document.querySelector('.newsdesk-related').shadowRoot)"))
            frame_dates = dict(page.frames[1].evaluate(f"({read})(document)"))
        assert script_dates == frame_dates
        # Northern Wire published at 2024-05-07T11:15:00Z (04:15 in Los Angeles).
        assert script_dates["Northern Wire"] == "7 May 2024, 11:15 UTC"
        page.goto(f"{live.base}/entries/{article.id}")
        sidebar_dates = dict(page.evaluate(f"({read})(document.querySelector('aside.related'))"))
        assert sidebar_dates["Northern Wire"] == "7 May 2024, 11:15 UTC"
        assert all(re.fullmatch(r"\d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2} UTC", d) for d in sidebar_dates.values())
    finally:
        context.close()


TITLES = """root => [...root.querySelectorAll('li .title')].map(title => {
  const style = getComputedStyle(title);
  return {source: title.closest('li').querySelector('.source').textContent, tag: title.tagName.toLowerCase(),
          color: style.color, decoration: style.textDecorationLine, cursor: style.cursor,
          text: getComputedStyle(title.closest('.nd')).color};
})"""


def test_items_without_a_link_read_as_plain_text(browser: Any, live_newsroom: tuple[Flask, LiveServer]) -> None:
    # The hostile feed's javascript:/data: links were dropped, so its items have no link: in both
    # embeds they must look like the text around them, not like links that do nothing.
    _app, live = live_newsroom
    with FeedServer() as third_party:
        frame_src = f"{live.base}/embed/related?url={quote(ARTICLE_URL, safe='')}&limit=10"
        third_party.route("/post.html", Reply(200, host_page(live.base, frame_src), {"Content-Type": "text/html"}))
        context, page, _dialogs = open_page(browser, third_party.url("/post.html"))
        try:
            page.locator(".newsdesk-related li").first.wait_for(timeout=10_000)
            page.frame_locator("iframe.newsdesk-related-frame").locator("li").first.wait_for(timeout=10_000)
            embeds = {
                "script embed": page.evaluate(f"({TITLES})(document.querySelector('.newsdesk-related').shadowRoot)"),
                "iframe embed": page.frames[1].evaluate(f"({TITLES})(document)"),
            }
        finally:
            context.close()
    for where, titles in embeds.items():
        linked = [t for t in titles if "Hostile" not in t["source"]]
        plain = [t for t in titles if "Hostile" in t["source"]]
        assert linked and plain, (where, titles)
        for title in linked:
            assert title["tag"] == "a" and title["color"] != title["text"], (where, title)
        for title in plain:
            assert title["tag"] == "span", (where, title)
            assert title["color"] == title["text"] and title["decoration"] == "none", (where, title)
            assert title["color"] != linked[0]["color"] and title["cursor"] != "pointer", (where, title)


def test_the_script_embed_lists_a_story_named_by_data_story(
    browser: Any, live_newsroom: tuple[Flask, LiveServer]
) -> None:
    app, live = live_newsroom
    services = services_of(app)
    services.assign_stories()
    members = [entry_of(services.store, outlet) for outlet in STORY_OUTLETS]
    (story_id,) = set(services.stories.stories_of([e.id for e in members]).values())
    # The page itself is about something else: data-story alone decides what the box lists.
    page_html = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sourdough at home</title>
<link rel="canonical" href="https://recipes.example/sourdough"></head><body><h1>Sourdough</h1>
<script async src="{live.base}/embed.js" data-newsdesk-related data-story="{story_id}" data-limit="10"></script>
</body></html>""".encode()
    with FeedServer() as third_party:
        third_party.route("/post.html", Reply(200, page_html, {"Content-Type": "text/html"}))
        context, page, _dialogs = open_page(browser, third_party.url("/post.html"))
        try:
            page.locator(".newsdesk-related li").first.wait_for(timeout=10_000)
            titles = page.locator(".newsdesk-related a.title").all_inner_texts()
            assert sorted(titles) == sorted(e.title for e in members)
        finally:
            context.close()
