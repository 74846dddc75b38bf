"""The feedparser speed-ups in aggregator.feedparser_tuned change speed only: the same ParsedFeed both ways.

They live in copies of feedparser's parser classes; feedparser itself stays as shipped, so a plain
``feedparser.parse`` in the same process (on another thread, at the same time) answers as documented.
"""

from __future__ import annotations

import copy
import io
import threading
from pathlib import Path
from typing import Any

import feedparser
import feedparser.mixin
import pytest
from feedparser.util import FeedParserDict

from aggregator import feedparser_tuned, parse
from aggregator._expat_buffered import BufferedExpatParser
from aggregator.errors import FeedError
from aggregator.feedparser_tuned import REFERENCE, TUNED, run_feedparser

FIXTURES = Path(__file__).parent / "fixtures" / "feeds"
URL = "https://example.test/news/feed.xml"

# Text split by entities, character references, CDATA and line breaks (expat reports each piece
# separately unless buffered), C1 controls that feedparser maps to cp1252, and a non-BMP character.
TRICKY = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>A &amp; B &#8212; caf\u00e9</title><link>http://example.test/</link>
<item><title>Line one
line two &lt;b&gt; &#x1F600; \u0080\u0093quoted\u0094 \u20ac</title>
<description><![CDATA[<p>cdata <b>bold</b></p>]]> and &amp; after
more</description><guid>g1</guid></item></channel></rss>""".encode()

# Not well-formed (an undefined entity, an unclosed tag): the strict parser gives up, the loose one reads it.
LOOSE = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Loose &nbsp; feed</title><link>http://example.test/</link>
<item><title>One <b>bold</title><link>/a?x=1&y=2</link><guid>l1</guid>
<media:content url="https://example.test/i.jpg" xmlns:media="http://search.yahoo.com/mrss/"/></item></channel></rss>"""


def bodies(shared: bool) -> list[bytes]:
    found = [TRICKY, LOOSE] + [p.read_bytes() for p in sorted(FIXTURES.iterdir())]
    corpus = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "feeds"
    if shared and corpus.is_dir():
        found += [
            p.read_bytes()
            for p in sorted(corpus.rglob("*"))
            if p.is_file() and p.suffix in {".xml", ".rss", ".atom", ".rdf"}
        ][:300]
    return found


def parse_all(documents: list[bytes], machinery: feedparser_tuned.Machinery) -> list[object]:
    out: list[object] = []
    for body in documents:
        try:
            # A URL, so feedparser resolves every element's xml:base against it (the cached joins).
            out.append(parse.parsed_feed(parse.feedparser_result(body, url=URL, machinery=machinery), body, url=URL))
        except FeedError as exc:
            out.append(str(exc))
    return out


def plain(value: Any) -> Any:
    """Return feedparser's result as plain data: dict classes and exception identities dropped."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in dict.items(value)}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    return value


def test_the_tuned_parser_has_its_own_parts_and_feedparser_keeps_its_own() -> None:
    assert isinstance(TUNED.sax_reader(), BufferedExpatParser)
    assert not isinstance(REFERENCE.sax_reader(), BufferedExpatParser)
    tuned_pop = TUNED.strict.pop
    tuned_globals = tuned_pop.__globals__
    assert isinstance(tuned_globals["_cp1252"], list) and tuned_globals["_cp1252"][0x93] == "\u201c"
    assert hasattr(tuned_globals["_urljoin"], "cache_info")
    assert hasattr(tuned_globals["make_safe_absolute_uri"], "cache_info")
    assert tuned_globals["copy"] is not copy and tuned_globals["FeedParserDict"] is not FeedParserDict
    assert tuned_pop.__code__ is feedparser.mixin._FeedParserMixin.pop.__code__  # feedparser's own code
    # feedparser's modules and classes are as shipped.
    assert isinstance(feedparser.mixin._cp1252, dict) and feedparser.mixin.copy is copy
    assert not hasattr(feedparser.mixin._urljoin, "cache_info")
    assert feedparser.mixin.FeedParserDict is FeedParserDict
    assert "aggregator._expat_buffered" not in feedparser.api.PREFERRED_XML_PARSERS
    assert not issubclass(TUNED.strict, feedparser.mixin._FeedParserMixin)
    assert issubclass(REFERENCE.strict, feedparser.api.StrictFeedParser)
    result = run_feedparser(TRICKY, {})
    assert type(result["entries"][0]) is not FeedParserDict and isinstance(result["entries"][0], FeedParserDict)


def test_tricky_text_is_read_whole() -> None:
    entry = parse.parse_feed(TRICKY).entries[0]
    assert entry.title == "Line one\nline two <b> \U0001f600 \u20ac\u201cquoted\u201d \u20ac"
    assert entry.summary is not None
    assert entry.summary.value == "<p>cdata <b>bold</b></p> and & after\nmore"


def test_a_document_that_is_not_well_formed_goes_to_the_loose_parser() -> None:
    feed = parse.parse_feed(LOOSE, url=URL)
    assert feed.warning  # bozo: the strict parser gave up
    assert [entry.guid for entry in feed.entries] == ["https://example.test/news/l1"]  # a permalink, resolved
    assert feed.entries[0].media[0].url == "https://example.test/i.jpg"


def test_same_records_as_feedparser_defaults() -> None:
    documents = bodies(shared=True)
    fast = parse_all(documents, TUNED)
    reference = parse_all(documents, REFERENCE)
    assert len(fast) == len(documents)
    assert fast == reference
    assert fast[0] == parse.parse_feed(TRICKY, url=URL)


def test_the_reference_is_what_feedparser_parse_returns() -> None:
    # Our driver runs the steps of feedparser.parse: with feedparser's classes, the very same result
    # (documents without <media:description>, the one element our handlers read differently).
    documents = [body for body in bodies(shared=True)[:80] if b"media:description" not in body]
    assert len(documents) > 2
    for body in documents:
        headers = {"content-location": URL}
        ours = run_feedparser(body, headers, REFERENCE)
        theirs = feedparser.parse(
            io.BytesIO(body), response_headers=headers, sanitize_html=False, resolve_relative_uris=False
        )
        assert plain(ours) == plain(theirs)


def test_plain_feedparser_on_another_thread_is_unaffected() -> None:
    # Both at once, on threads: a process-wide switch held during our parse would leak into theirs.
    documents = bodies(shared=False)
    expected_ours = [parse.parse_feed(body, url=URL) for body in documents]
    expected_theirs = [plain(feedparser.parse(io.BytesIO(body))) for body in documents]
    seen: dict[str, list[object]] = {"ours": [], "theirs": []}
    failures: list[BaseException] = []

    def run(name: str) -> None:
        try:
            for _ in range(5):
                if name == "ours":
                    seen[name].append([parse.parse_feed(body, url=URL) for body in documents])
                else:
                    seen[name].append([plain(feedparser.parse(io.BytesIO(body))) for body in documents])
        except BaseException as exc:  # reported by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(name,)) for name in ("ours", "theirs")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert all(round_ == expected_ours for round_ in seen["ours"])
    assert all(round_ == expected_theirs for round_ in seen["theirs"])
    # feedparser's own sanitizer ran for the plain parses: a script in the fixture's HTML would be gone.
    assert expected_theirs != [plain(run_feedparser(body, {}, REFERENCE)) for body in documents]


def test_dict_lookups_and_copies_answer_as_feedparser_does() -> None:
    fast_dict = type(run_feedparser(TRICKY, {}))
    assert fast_dict is not FeedParserDict
    values = {"published": "p", "tags": [{"term": "t"}], "links": [{"rel": "enclosure", "href": "h"}], "rights": "r"}
    fast, slow = fast_dict(values), FeedParserDict(values)
    fast["description"] = slow["description"] = "d"  # stored as "summary" through the keymap
    assert dict(fast) == dict(slow)
    keys = ["published", "updated", "updated_parsed", "category", "enclosures", "license", "summary", "missing"]
    keys += list(FeedParserDict.keymap)
    with pytest.warns(DeprecationWarning):  # feedparser's "updated" fallback warns both ways
        for key in keys:
            assert fast.get(key, "default") == slow.get(key, "default")
            try:
                expected = slow[key]
            except KeyError:
                with pytest.raises(KeyError):
                    fast[key]
            else:
                assert fast[key] == expected
    copier = TUNED.strict.pop.__globals__["copy"]
    params = fast_dict({"type": "text/html", "language": None, "base": "https://example.test/", "base64": 0})
    clone = copier.deepcopy(params)
    assert clone == copy.deepcopy(params) and type(clone) is fast_dict and clone is not params
    nested = fast_dict({"value": ["mutable"]})
    deep = copier.deepcopy(nested)
    assert deep == nested and deep["value"] is not nested["value"]
