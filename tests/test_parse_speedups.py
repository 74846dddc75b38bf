"""The two feedparser speedups in aggregator.parse change speed only: the same ParsedFeed both ways."""

from __future__ import annotations

import copy
import xml.sax
from collections.abc import Iterator
from pathlib import Path

import feedparser.api
import feedparser.mixin
import pytest
from feedparser.util import FeedParserDict

from aggregator import parse
from aggregator._expat_buffered import BufferedExpatParser
from aggregator.errors import FeedError

FIXTURES = Path(__file__).parent / "fixtures" / "feeds"

# Text split by entities, character references, CDATA and line breaks (expat reports each piece
# separately unless buffered), C1 controls that feedparser maps to cp1252, and a non-BMP character.
TRICKY = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>A &amp; B &#8212; caf\u00e9</title><link>http://example.test/</link>
<item><title>Line one
line two &lt;b&gt; &#x1F600; \u0080\u0093quoted\u0094 \u20ac</title>
<description><![CDATA[<p>cdata <b>bold</b></p>]]> and &amp; after
more</description><guid>g1</guid></item></channel></rss>""".encode()


@pytest.fixture()
def feedparser_defaults() -> Iterator[None]:
    """Run the test with feedparser's own SAX driver list and cp1252 dict, then restore ours."""
    parsers = list(feedparser.api.PREFERRED_XML_PARSERS)
    table = feedparser.mixin._cp1252
    absolute, join = feedparser.mixin.make_safe_absolute_uri, feedparser.mixin._urljoin
    getitem, get, copier = FeedParserDict.__getitem__, FeedParserDict.get, feedparser.mixin.copy
    feedparser.api.PREFERRED_XML_PARSERS[:] = [p for p in parsers if p != "aggregator._expat_buffered"]
    feedparser.mixin._cp1252 = {code: table[code] for code in range(0x80, 0xA0) if table[code] != code}
    feedparser.mixin.make_safe_absolute_uri, feedparser.mixin._urljoin = absolute.__wrapped__, join.__wrapped__
    FeedParserDict.__getitem__, FeedParserDict.get = getitem.__wrapped__, get.__wrapped__  # type: ignore[method-assign]
    feedparser.mixin.copy = copy
    try:
        yield
    finally:
        feedparser.api.PREFERRED_XML_PARSERS[:] = parsers
        feedparser.mixin._cp1252 = table
        feedparser.mixin.make_safe_absolute_uri, feedparser.mixin._urljoin = absolute, join
        FeedParserDict.__getitem__, FeedParserDict.get = getitem, get  # type: ignore[method-assign]
        feedparser.mixin.copy = copier


def bodies(shared: bool) -> list[bytes]:
    found = [TRICKY] + [p.read_bytes() for p in sorted(FIXTURES.iterdir())]
    corpus = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "feeds"
    if shared and corpus.is_dir():
        found += [
            p.read_bytes()
            for p in sorted(corpus.rglob("*"))
            if p.is_file() and p.suffix in {".xml", ".rss", ".atom", ".rdf"}
        ][:300]
    return found


def parse_all(documents: list[bytes]) -> list[object]:
    out: list[object] = []
    for body in documents:
        try:
            # A URL, so feedparser resolves every element's xml:base against it (the cached joins).
            out.append(parse.parse_feed(body, url="https://example.test/news/feed.xml"))
        except FeedError as exc:
            out.append(str(exc))
    return out


def test_feedparser_uses_the_buffered_driver() -> None:
    assert isinstance(xml.sax.make_parser(feedparser.api.PREFERRED_XML_PARSERS), BufferedExpatParser)
    assert isinstance(feedparser.mixin._cp1252, list)
    assert feedparser.mixin._cp1252[0x93] == "\u201c"
    assert hasattr(feedparser.mixin.make_safe_absolute_uri, "cache_info")
    assert hasattr(FeedParserDict.get, "__wrapped__")
    assert feedparser.mixin.copy is not copy


def test_tricky_text_is_read_whole() -> None:
    entry = parse.parse_feed(TRICKY).entries[0]
    assert entry.title == "Line one\nline two <b> \U0001f600 \u20ac\u201cquoted\u201d \u20ac"
    assert entry.summary is not None
    assert entry.summary.value == "<p>cdata <b>bold</b></p> and & after\nmore"


def test_same_records_as_feedparser_defaults(request: pytest.FixtureRequest) -> None:
    documents = bodies(shared=True)
    fast = parse_all(documents)
    request.getfixturevalue("feedparser_defaults")
    assert not isinstance(xml.sax.make_parser(feedparser.api.PREFERRED_XML_PARSERS), BufferedExpatParser)
    plain = parse_all(documents)
    assert len(fast) == len(documents)
    assert fast == plain


def test_dict_lookups_and_copies_answer_as_feedparser_does() -> None:
    fast_getitem, fast_get = FeedParserDict.__getitem__, FeedParserDict.get
    slow_getitem, slow_get = fast_getitem.__wrapped__, fast_get.__wrapped__  # type: ignore[attr-defined]
    entry = FeedParserDict(
        {"published": "p", "tags": [{"term": "t"}], "links": [{"rel": "enclosure", "href": "h"}], "rights": "r"}
    )
    entry["description"] = "d"  # stored as "summary" through the keymap
    keys = ["published", "updated", "updated_parsed", "category", "enclosures", "license", "summary", "missing"]
    keys += list(FeedParserDict.keymap)
    with pytest.warns(DeprecationWarning):  # feedparser's "updated" fallback warns both ways
        for key in keys:
            assert fast_get(entry, key, "default") == slow_get(entry, key, "default")
            try:
                expected = slow_getitem(entry, key)
            except KeyError:
                with pytest.raises(KeyError):
                    fast_getitem(entry, key)
            else:
                assert fast_getitem(entry, key) == expected
    params = FeedParserDict({"type": "text/html", "language": None, "base": "https://example.test/", "base64": 0})
    clone = feedparser.mixin.copy.deepcopy(params)
    assert clone == copy.deepcopy(params) and type(clone) is FeedParserDict and clone is not params
    nested = FeedParserDict({"value": ["mutable"]})
    deep = feedparser.mixin.copy.deepcopy(nested)
    assert deep == nested and deep["value"] is not nested["value"]
