"""feedparser's sanitizer is off (aggregator/parse.py), so ours is the only line of defence.

Every field a feed can carry gets the classic XSS vectors (the kinds feedparser's own sanitizer
tests cover, written out here); no record may come out with active content.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from xml.sax.saxutils import escape

import pytest
from lxml import etree

from aggregator.models import Entry, FeedContext
from aggregator.normalize import normalize_feed
from aggregator.parse import parse_feed

VECTORS = [
    "<script>alert('xss')</script>",
    "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
    '<img src=x onerror="alert(1)">',
    '<a href="javascript:alert(1)">click</a>',
    '<a href="JaVaScRiPt:alert(1)">click</a>',
    '<a href="  javascript:alert(1)">click</a>',
    '<a href="jav&#x09;ascript:alert(1)">click</a>',
    '<a href="javascript&#58;alert(1)">click</a>',
    '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)">click</a>',
    '<a href="vbscript:msgbox(1)">click</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">click</a>',
    '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
    "<style>body{background:url(javascript:alert(1))}</style>",
    '<div style="background-image: url(javascript:alert(1))">styled</div>',
    '<div style="width: expression(alert(1))">expr</div>',
    '<iframe src="https://evil.example/"></iframe>',
    '<iframe src="javascript:alert(1)"></iframe>',
    '<iframe srcdoc="&lt;script&gt;alert(1)&lt;/script&gt;"></iframe>',
    '<object data="https://evil.example/x.swf"><param name="x" value="y"></object>',
    '<embed src="https://evil.example/x.swf">',
    '<form action="https://evil.example/"><input name="q"><button formaction="javascript:alert(1)">go</button></form>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<svg onload="alert(1)"><circle r="1"/></svg>',
    '<base href="https://evil.example/">',
    '<body onload="alert(1)">body</body>',
    '<link rel="stylesheet" href="https://evil.example/x.css">',
    '<img src="https://ok.example/i.jpg" onmouseover="alert(1)">',
    '<a href="https://ok.example/" onclick="alert(1)">ok</a>',
    '<math><mi xlink:href="javascript:alert(1)">m</mi></math>',
    "<<script>script>alert(1)<</script>/script>",
    "<scr<script>ipt>alert(1)</script>",
    '<video poster="javascript:alert(1)" src="javascript:alert(1)"></video>',
    '"><script>alert(1)</script>',
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>',
    "<img src=`javascript:alert(1)`>",
    '<table background="javascript:alert(1)"><tr><td>t</td></tr></table>',
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "<!--<script>alert(1)</script>-->",
    '<a href="java\nscript:alert(1)">split</a>',
    '<img """><script>alert(1)</script>">',
]
BAD_LINKS = [
    "javascript:alert(1)",
    " JAVASCRIPT:alert(1)",
    "vbscript:msgbox(1)",
    "data:text/html,<script>alert(1)</script>",
]

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "details", "dfn", "div", "dl",
    "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "iframe", "img", "ins",
    "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "samp", "small", "span", "strong", "sub", "summary", "sup",
    "table", "tbody", "td", "tfoot", "th", "thead", "time", "tr", "u", "ul", "var", "video", "audio", "source",
    "html", "body",
}  # fmt: skip
URL_ATTRIBUTES = {"href", "src", "poster", "cite"}
DANGEROUS_SCHEME = re.compile(r"^[\x00-\x20]*(?:j\s*a\s*v\s*a|v\s*b)\s*s\s*c\s*r\s*i\s*p\s*t\s*:|^\s*data:", re.I)
SAFE_URL = re.compile(r"^(?:https?://|mailto:)", re.IGNORECASE)
TAG = re.compile(r"<(?:[A-Za-z]|/[A-Za-z]|!|\?)[^<>]*>")
CONTEXT = FeedContext(
    feed_key="https://evil.example/feed",
    feed_url="https://evil.example/feed",
    source_title="Evil",
    site_url="https://evil.example/",
    fetched_at=datetime(2024, 1, 1, tzinfo=UTC),
)


def rss_with(vector: str, link: str) -> bytes:
    """Return an RSS 2.0 document carrying ``vector`` in every field, escaped and as CDATA."""
    cdata = vector.replace("]]>", "]]]]><![CDATA[>")
    item = f"""
    <item>
      <title>{escape(vector)} title</title>
      <link>{escape(link)}</link>
      <guid isPermaLink="false">{escape(vector)}</guid>
      <dc:creator>{escape(vector)} Jane</dc:creator>
      <category>{escape(vector)}</category>
      <description><![CDATA[{cdata} summary]]></description>
      <content:encoded><![CDATA[<p>Body</p>{cdata}<p>more</p>]]></content:encoded>
      <media:content url="{escape(link, {'"': "&quot;"})}" medium="image">
        <media:description>{escape(vector)} caption</media:description>
      </media:content>
      <enclosure url="{escape(link, {'"': "&quot;"})}" type="image/jpeg" length="1"/>
    </item>"""
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:media="http://search.yahoo.com/mrss/">
<channel><title>Evil</title><link>https://evil.example/</link>{item}</channel></rss>""".encode()


def atom_with(vector: str, link: str) -> bytes:
    """Return an Atom document carrying ``vector`` in type="html" title, summary and content."""
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Evil</title><id>urn:evil</id><updated>2024-01-01T00:00:00Z</updated>
<entry><id>urn:evil:1</id><updated>2024-01-01T00:00:00Z</updated>
<title type="html">{escape(vector)}</title><link href="{escape(link, {'"': "&quot;"})}"/>
<author><name>{escape(vector)}</name></author><category term="{escape(vector, {'"': "&quot;"})}"/>
<summary type="html">{escape(vector)}</summary><content type="html">{escape(vector)}</content></entry></feed>""".encode()


def assert_safe_html(markup: str, where: str) -> None:
    lowered = markup.lower()
    assert "<script" not in lowered, where
    assert "expression(" not in lowered, where
    if not markup.strip():
        return
    root = etree.fromstring(f"<html><body>{markup}</body></html>", etree.HTMLParser())
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        assert element.tag in ALLOWED_TAGS, f"{where}: <{element.tag}> in {markup!r}"
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on"), f"{where}: {name}= in {markup!r}"
            assert name.lower() not in {"style", "srcdoc", "background", "formaction", "action"}, where
            # "javascript:" may remain as inert text inside an http(s) URL's path, never as a scheme.
            assert not DANGEROUS_SCHEME.match(value), f"{where}: {name}={value!r}"
            if name.lower() in URL_ATTRIBUTES:
                assert SAFE_URL.match(value.strip()), f"{where}: {name}={value!r}"
        if element.tag == "iframe":
            src = element.get("src")
            assert src is None or src.startswith(("https://www.youtube.com/", "https://player.vimeo.com/")), where


def assert_plain(entry: Entry, where: str) -> None:
    fields = {
        "title": entry.title,
        "summary": entry.summary,
        "caption": entry.image.caption if entry.image and entry.image.caption else "",
        **{f"author{i}": a for i, a in enumerate(entry.authors)},
        **{f"tag{i}": t for i, t in enumerate(entry.tags)},
    }
    for name, value in fields.items():
        assert not TAG.search(value), f"{where}: {name} = {value!r}"
    for paragraph in entry.text.split("\n\n"):
        assert not TAG.search(paragraph), f"{where}: text paragraph {paragraph!r}"
    assert SAFE_URL.match(entry.url) and entry.url.startswith("http"), f"{where}: url {entry.url!r}"
    if entry.image:
        assert entry.image.url.startswith(("http://", "https://")), f"{where}: image {entry.image.url!r}"


@pytest.mark.parametrize("vector", VECTORS)
@pytest.mark.parametrize("shape", [rss_with, atom_with])
def test_no_vector_survives_in_any_field(vector: str, shape: object) -> None:
    for link in ["https://ok.example/article", *BAD_LINKS]:
        document = shape(vector, link)  # type: ignore[operator]
        entries = normalize_feed(parse_feed(document), CONTEXT)
        assert entries, f"{vector!r} with link {link!r} gave no entry"
        for entry in entries:
            where = f"{shape.__name__}({vector!r}, {link!r})"  # type: ignore[attr-defined]
            assert_safe_html(entry.content_html, where)
            assert_plain(entry, where)
