"""OPML in and out: folders and categories become tags, titles survive a round trip, bad input is refused clearly."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.errors import ConfigError
from aggregator.models import Feed
from aggregator.opml import read_opml, write_opml

SAMPLE = b"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>My subscriptions</title></head>
  <body>
    <outline text="World">
      <outline text="Europe">
        <outline type="rss" text="Harbour Gazette" title="The Harbour Gazette" xmlUrl="https://harbour.example/rss"
                 htmlUrl="https://harbour.example/" category="/Local/Coast,daily"/>
      </outline>
      <outline type="rss" text="Wire" xmlUrl="https://wire.example/atom.xml"/>
    </outline>
    <outline type="rss" text="  Loose   feed " xmlUrl="https://loose.example/feed"/>
    <outline type="rss" text="Broken" xmlUrl="htp://broken"/>
    <outline type="rss" text="Again" xmlUrl="https://wire.example/atom.xml"/>
    <outline text="Empty folder"/>
  </body>
</opml>
"""


def test_read_keeps_titles_folders_and_categories() -> None:
    feeds, skipped = read_opml(SAMPLE)
    by_url = {f.url: f for f in feeds}
    assert list(by_url) == [
        "https://harbour.example/rss",
        "https://wire.example/atom.xml",
        "https://loose.example/feed",
    ]
    harbour = by_url["https://harbour.example/rss"]
    assert harbour.title == "The Harbour Gazette"  # title wins over text
    assert harbour.categories == ("World", "Europe", "Local/Coast", "daily")
    assert harbour.site_url == "https://harbour.example/"
    assert by_url["https://wire.example/atom.xml"].categories == ("World",)
    assert by_url["https://loose.example/feed"].title == "Loose feed"
    reasons = {s.url: s.reason for s in skipped}
    assert "not an http(s) URL" in reasons["htp://broken"]
    assert "listed twice" in reasons["https://wire.example/atom.xml"]


def test_round_trip_keeps_titles_and_tags() -> None:
    feeds = [
        Feed(1, "k1", "https://a.example/rss", "A & B news", "https://a.example/", tags=("world", "europe")),
        Feed(2, "k2", "https://b.example/rss", "Bee", None, tags=("world",)),
        Feed(3, "k3", "https://c.example/rss", "Sea <daily>", None),
    ]
    data = write_opml(feeds)
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    read, skipped = read_opml(data)
    assert skipped == []
    assert [(f.url, f.title, f.categories) for f in read] == [
        ("https://a.example/rss", "A & B news", ("world", "europe")),
        ("https://b.example/rss", "Bee", ("world",)),
        ("https://c.example/rss", "Sea <daily>", ()),
    ]


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "not a readable OPML document"),
        (b"<opml><body><outline", "not a readable OPML document"),
        (b"<rss version='2.0'><channel/></rss>", "not an OPML document (the root element is <rss>)"),
        (b"<opml version='2.0'><head/></opml>", "has no <body>"),
    ],
)
def test_bad_files_are_refused_with_the_reason(data: bytes, words: str) -> None:
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")) as info:
        read_opml(data, label="subs.opml")
    assert str(info.value).startswith("subs.opml: ")


def test_entities_are_not_expanded() -> None:
    hostile = b"""<?xml version="1.0"?>
<!DOCTYPE opml [<!ENTITY secret SYSTEM "file:///etc/hostname">]>
<opml version="2.0"><body><outline text="&secret;" xmlUrl="https://x.example/rss"/></body></opml>"""
    # Refused outright (lxml will not resolve it), never expanded into a title.
    with pytest.raises(ConfigError, match="external entity"):
        read_opml(hostile)


@settings(max_examples=150)
@given(st.binary(max_size=512) | st.text(max_size=300).map(lambda t: f"<opml><body>{t}</body></opml>".encode()))
def test_any_bytes_either_read_or_refused_clearly(data: bytes) -> None:
    try:
        feeds, skipped = read_opml(data)
    except ConfigError as exc:
        assert str(exc).startswith("OPML file: ")
    else:
        assert all(f.url for f in feeds) and all(s.reason for s in skipped)
