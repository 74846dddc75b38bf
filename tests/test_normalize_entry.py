"""Behaviour of normalization on single entries and whole feeds: identity, dates, authors, text, images."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.models import FeedContext, ParsedContent, ParsedEntry, ParsedFeed, ParsedMedia
from aggregator.normalize import (
    canonical_url,
    html_to_text,
    normalize_entry,
    normalize_feed,
    parse_feed_date,
    sanitize_html,
    simhash,
)
from aggregator.normalize.authors import clean_author
from aggregator.normalize.fullcontent import extract_article, with_full_content
from aggregator.parse import parse_feed
from aggregator.simhash import hamming, near_duplicate

SEED = Path(__file__).resolve().parents[2] / "shared" / "seed" / "story-feed.xml"
FETCHED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def context(**changes: object) -> FeedContext:
    base = FeedContext(
        feed_key="https://example.com/feed",
        feed_url="https://example.com/feed",
        source_title="Example News",
        site_url="https://example.com/",
        fetched_at=FETCHED,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def parsed_entry(**changes: object) -> ParsedEntry:
    base = ParsedEntry(
        guid="urn:example:1",
        link="https://example.com/a",
        original_link=None,
        title="A title",
        title_type="text/plain",
        summary=None,
        contents=(ParsedContent("<p>Some body text for the article.</p>"),),
        authors=(),
        published_raw="Wed, 01 May 2024 10:00:00 +0000",
        updated_raw=None,
        tags=(),
        media=(),
        language=None,
        base=None,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def feed_of(*entries: ParsedEntry) -> ParsedFeed:
    return ParsedFeed(
        title="Example News",
        site_url="https://example.com/",
        language="en",
        ttl_minutes=None,
        update_period=None,
        update_frequency=None,
        base=None,
        entries=entries,
        version="rss20",
    )


# --------------------------------------------------------------------------- the seed story


@pytest.fixture
def seed_entry() -> object:
    if not SEED.exists():
        pytest.skip("../shared/seed is not present")
    ctx = context(
        feed_key="https://www.algemeiner.com/feed/", feed_url="https://www.algemeiner.com/feed/", site_url=None
    )
    [entry] = normalize_feed(parse_feed(SEED.read_bytes()), ctx)
    return entry


def test_seed_story_gives_the_acceptance_record(seed_entry: object) -> None:
    entry = seed_entry
    assert entry.title == "Trump Blames Iran as Protests Erupt Outside US Embassy in Iraq"  # type: ignore[attr-defined]
    assert entry.authors == ("Reuters and Algemeiner Staff",)  # type: ignore[attr-defined]
    assert entry.published_at == datetime(2019, 12, 31, 21, 38, tzinfo=UTC)  # type: ignore[attr-defined]
    assert entry.url == (  # type: ignore[attr-defined]
        "https://www.algemeiner.com/2019/12/31/trump-blames-iran-as-protests-erupt-outside-us-embassy-in-iraq/"
    )
    assert entry.image.url == "https://www.algemeiner.com/wp-content/uploads/2019/12/baghdad-embassy-protest.jpg"  # type: ignore[attr-defined]
    assert entry.image.caption.startswith("A protester holds an Iraqi flag")  # type: ignore[attr-defined]
    assert entry.tags == ("Iran", "Iraq", "Middle East", "US Embassy")  # type: ignore[attr-defined]
    assert entry.language == "en"  # type: ignore[attr-defined]


def test_seed_story_text_is_the_article_and_nothing_else(seed_entry: object) -> None:
    text: str = seed_entry.text  # type: ignore[attr-defined]
    paragraphs = text.split("\n\n")
    assert text.startswith("Militiamen and their supporters")
    assert text.endswith("More than 5,000 US troops are stationed in Iraq supporting local forces.")
    assert "‘No America’" in paragraphs
    assert "‘Closed in the name of the people’" in paragraphs
    for boilerplate in (
        "Related coverage",
        "Foreign Ministers of Israel",
        "Share this Story",
        "Share On Facebook",
        "Let your voice be heard",
        "Join the Algemeiner",
        "reCAPTCHA",
        "appeared first on",
        "April 16, 2021",
    ):
        assert boilerplate not in text
        assert boilerplate not in seed_entry.content_html  # type: ignore[attr-defined]
    assert "pixel.gif" not in seed_entry.content_html  # type: ignore[attr-defined]
    assert seed_entry.word_count > 800  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- identity


def test_id_comes_from_guid_then_link_then_title_and_date() -> None:
    by_guid = normalize_entry(parsed_entry(), context())
    by_link = normalize_entry(parsed_entry(guid=None, link="https://example.com/a?utm_source=x"), context())
    by_hash = normalize_entry(parsed_entry(guid=None, link=None), context())
    assert by_guid.identity == "urn:example:1"
    assert by_link.identity == "https://example.com/a"
    assert by_hash.identity.startswith("hash:")
    assert len({by_guid.id, by_link.id, by_hash.id}) == 3
    # Scoped to the feed: the same guid in another feed is another entry.
    assert normalize_entry(parsed_entry(), context(feed_key="https://other.example/feed")).id != by_guid.id


def test_changed_content_keeps_the_id_but_changes_the_content_key() -> None:
    first = normalize_entry(parsed_entry(), context())
    edited = normalize_entry(
        parsed_entry(title="A corrected title", contents=(ParsedContent("<p>New body.</p>"),)), context()
    )
    assert edited.id == first.id
    assert edited.content_key() != first.content_key()
    assert normalize_entry(parsed_entry(), context()).content_key() == first.content_key()


def test_a_guid_repeated_on_every_item_does_not_collapse_the_feed() -> None:
    items = [
        parsed_entry(guid="https://example.com/", link=f"https://example.com/story-{i}", title=f"Story {i}")
        for i in range(3)
    ]
    entries = normalize_feed(feed_of(*items), context())
    assert [e.url for e in entries] == [f"https://example.com/story-{i}" for i in range(3)]
    assert len({e.id for e in entries}) == 3
    assert all("guid_repeated" in e.flags for e in entries)


def test_the_same_item_twice_in_one_document_is_one_entry() -> None:
    entries = normalize_feed(feed_of(parsed_entry(), parsed_entry()), context())
    assert len(entries) == 1


def test_guids_that_change_on_every_fetch_map_back_to_the_stored_entry() -> None:
    first = normalize_feed(feed_of(parsed_entry(guid="session-111")), context())
    known = {e.url: e.identity for e in first}
    again = normalize_feed(feed_of(parsed_entry(guid="session-222")), context(), previous_identities=known)
    assert [e.id for e in again] == [e.id for e in first]
    assert "guid_changed" in again[0].flags
    # A genuinely new article (new URL) still comes through as new.
    new = normalize_feed(
        feed_of(parsed_entry(guid="session-333", link="https://example.com/b")), context(), previous_identities=known
    )
    assert new[0].id not in {e.id for e in first}


# --------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    ("raw", "base", "expected"),
    [
        ("https://Example.COM:443/a?utm_source=rss&utm_medium=x&id=3#top", None, "https://example.com/a?id=3"),
        ("http://example.com:80", None, "http://example.com/"),
        ("http://example.com:8080/x?fbclid=1&gclid=2&mc_cid=3&mc_eid=4", None, "http://example.com:8080/x"),
        ("../b/c?q=1", "https://example.com/a/feed/", "https://example.com/a/b/c?q=1"),
        ("//cdn.example.com/i.jpg", "https://example.com/", "https://cdn.example.com/i.jpg"),
        ("  https://example.com/with space  ", None, "https://example.com/with%20space"),
        ("https://example.com/caf%C3%A9/é", None, "https://example.com/caf%C3%A9/%C3%A9"),
        ("http://www.nytimes.com/2017/x.html?partner=rss&emc=rss", None, "http://www.nytimes.com/2017/x.html"),
        ("https://example.com/x?partner=acme&ref=rss&page=2", None, "https://example.com/x?partner=acme&page=2"),
    ],
)
def test_canonical_url(raw: str, base: str | None, expected: str) -> None:
    assert canonical_url(raw, base) == expected


def test_feedburner_links_resolve_to_the_original_link() -> None:
    entry = normalize_entry(
        parsed_entry(
            link="http://feedproxy.google.com/~r/example/~3/xyz/",
            original_link="https://example.com/real?utm_campaign=feed",
        ),
        context(),
    )
    assert entry.url == "https://example.com/real"


def test_javascript_links_never_become_the_article_url() -> None:
    entry = normalize_entry(parsed_entry(link="javascript:alert(1)", guid="g"), context())
    assert entry.url == "https://example.com/"
    assert "url_missing" in entry.flags


# --------------------------------------------------------------------------- dates


def test_dates_are_utc_and_zone_less_dates_use_the_feed_zone() -> None:
    assert parse_feed_date("Tue, 31 Dec 2019 16:38:00 -0500") == datetime(2019, 12, 31, 21, 38, tzinfo=UTC)
    assert parse_feed_date("2024-01-15T10:00:00", "Europe/Paris") == datetime(2024, 1, 15, 9, 0, tzinfo=UTC)
    assert parse_feed_date("2024-07-15 10:00", "America/New_York") == datetime(2024, 7, 15, 14, 0, tzinfo=UTC)
    assert parse_feed_date("Mon, 15 Jan 2024 10:00:00", "Asia/Tokyo") == datetime(2024, 1, 15, 1, 0, tzinfo=UTC)
    assert parse_feed_date("Mon, 15 Jan 2024 10:00:00 GMT", "Asia/Tokyo") == datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
    assert parse_feed_date("Mon, 15 Jul 2024 10:00:00 CEST") == datetime(2024, 7, 15, 8, 0, tzinfo=UTC)
    assert parse_feed_date("2024-01-15T10:00:00Z", "Asia/Tokyo") == datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
    assert parse_feed_date("not a date") is None
    assert parse_feed_date("1970-01-01T00:00:00Z") is None


def test_future_dates_are_clamped_and_flagged_missing_dates_fall_back() -> None:
    future = normalize_entry(parsed_entry(published_raw="Fri, 01 Jan 2100 00:00:00 +0000"), context())
    assert future.published_at == FETCHED
    assert "future_date_clamped" in future.flags
    near = normalize_entry(parsed_entry(published_raw="Wed, 01 May 2024 12:05:00 +0000"), context())
    assert near.published_at == datetime(2024, 5, 1, 12, 5, tzinfo=UTC)
    assert near.flags == ()
    undated = normalize_entry(parsed_entry(published_raw=None), context())
    assert undated.published_at == FETCHED
    assert "date_missing" in undated.flags
    first_seen = datetime(2024, 4, 1, tzinfo=UTC)
    [seen] = normalize_feed(feed_of(parsed_entry(published_raw=None)), context(), first_seen={undated.id: first_seen})
    assert seen.published_at == first_seen


# --------------------------------------------------------------------------- title, authors, tags


def test_titles_are_plain_text_and_never_empty() -> None:
    html_title = normalize_entry(
        parsed_entry(title="<b>Big</b> &amp;amp; <i>bold</i>\n  news", title_type="text/html"), context()
    )
    assert html_title.title == "Big & bold news"
    untitled = normalize_entry(
        parsed_entry(title="  ", contents=(ParsedContent("<p>Only the body tells us what this is about.</p>"),)),
        context(),
    )
    assert untitled.title.startswith("Only the body tells us")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("By Jane Doe", "Jane Doe"),
        ("avatar by Reuters and Algemeiner Staff", "Reuters and Algemeiner Staff"),
        ("jane@example.com (Jane Doe)", "Jane Doe"),
        ("Jane Doe <jane@example.com>", "Jane Doe"),
        ("jane@example.com", None),
        ("Jane Doe | Example News", "Jane Doe"),
        ("Jane Doe - example.com", "Jane Doe"),
        ("Reuters and Algemeiner Staff", "Reuters and Algemeiner Staff"),
    ],
)
def test_author_bylines(raw: str, expected: str | None) -> None:
    assert clean_author(raw, ("Example News", "example.com", "Algemeiner.com")) == expected


def test_tags_are_deduplicated_case_insensitively_and_displayed_as_given() -> None:
    entry = normalize_entry(
        parsed_entry(tags=("Politics", "politics", " POLITICS ", "Economy", "<b>Tech</b>")), context()
    )
    assert entry.tags == ("Politics", "Economy", "Tech")


# --------------------------------------------------------------------------- content


def test_content_html_fixes_lazy_images_and_drops_pixels_and_unknown_iframes() -> None:
    html = (
        '<p>Text <img src="data:image/gif;base64,AAAA" data-lazy-src="/a.jpg"></p>'
        '<img src="https://example.com/open.gif" width="1" height="1">'
        '<iframe src="https://player.vimeo.com/video/1"></iframe><iframe src="https://evil.example/x"></iframe>'
    )
    out = sanitize_html(html, "https://example.com/post/")
    assert '<img src="https://example.com/a.jpg">' in out
    assert "open.gif" not in out
    assert "player.vimeo.com" in out
    assert "evil.example" not in out


def test_text_keeps_headings_and_drops_boilerplate_by_structure() -> None:
    html = (
        "<p>First paragraph of the story.</p><h2>A section</h2><p>Second paragraph.</p>"
        '<div class="jp-relatedposts"><a href="/x">Other story</a></div>'
        "<div><h3>You may also like</h3><a href='/y'>Y</a> <a href='/z'>Z</a></div>"
        "<ul><li><a href='/1'>One</a></li><li><a href='/2'>Two</a></li><li><a href='/3'>Three</a></li></ul>"
        "<p>We use cookies to improve your experience. Accept all cookies.</p>"
        "<p>Sign up for our daily newsletter.</p>"
    )
    assert html_to_text(html) == "First paragraph of the story.\n\nA section\n\nSecond paragraph."


def test_highlighted_code_keeps_its_text_and_loses_its_token_spans() -> None:
    # Pygments style: every token a <span class>, the spaces between them spans of their own.
    tokens = '<span class="n">main</span><span class="w"> </span><span class="ow">=</span><span class="w"> </span>'
    html = (
        "<p>Run this:</p>"
        f'<div class="highlight"><pre><code class="language-hs"><span></span>{tokens}'
        '<span class="n">print</span><span class="w"> </span><span class="s">"hi &lt;3"</span>\n'
        '<span class="c1">-- done</span></code></pre></div>'
        "<pre>first line<br>second line</pre>"
    )
    out = sanitize_html(html)
    assert '<pre><code>main = print "hi &lt;3"\n-- done</code></pre>' in out
    assert "<span" not in out
    # A block with line breaks keeps them, and each line stays a paragraph of the text.
    assert "<pre>first line<br>second line</pre>" in out
    assert html_to_text(html) == 'Run this:\n\nmain = print "hi <3" -- done\n\nfirst line\n\nsecond line'


def test_summary_is_short_plain_and_cut_at_a_word() -> None:
    long_text = " ".join(["word"] * 200)
    entry = normalize_entry(parsed_entry(summary=ParsedContent(f"<p>{long_text}</p>")), context())
    assert len(entry.summary) <= 300
    assert entry.summary.endswith("word…")


def test_image_prefers_media_content_and_keeps_its_caption() -> None:
    entry = normalize_entry(
        parsed_entry(
            media=(
                ParsedMedia(url="/thumb.jpg", origin="media:thumbnail"),
                ParsedMedia(url="/big.jpg?utm_source=rss", type="image/jpeg", caption="<b>The</b> caption"),
                ParsedMedia(url="/talk.mp3", type="audio/mpeg", origin="enclosure"),
            )
        ),
        context(),
    )
    assert entry.image is not None
    assert (entry.image.url, entry.image.caption) == ("https://example.com/big.jpg", "The caption")


def test_language_is_declared_or_detected() -> None:
    declared = normalize_entry(parsed_entry(language="pt-BR"), context())
    assert declared.language == "pt"
    detected = normalize_entry(
        parsed_entry(
            contents=(
                ParsedContent(
                    "<p>Die Stadtverwaltung hat am Dienstag beschlossen, die alte Brücke über den Fluss "
                    "abzureißen und durch einen Neubau zu ersetzen.</p>"
                ),
            )
        ),
        context(),
    )
    assert detected.language == "de"


# --------------------------------------------------------------------------- fingerprints


def test_simhash_recognises_the_same_story_republished() -> None:
    story = (
        "Militiamen and their supporters protesting against deadly US air strikes hurled stones and torched "
        "a security post at the US Embassy in Baghdad on Tuesday in an unprecedented attack on an American "
        "diplomatic mission. Embassy guards responded with stun grenades and tear gas after the attackers "
        "stormed and burned the security post at the entrance but did not breach the main compound. "
    ) * 3
    republished = story.replace("on Tuesday", "on Tuesday, witnesses said,")
    unrelated = "The city council approved a new budget for schools and libraries after a long debate. " * 6
    a, b, c = simhash(story), simhash(republished), simhash(unrelated)
    assert near_duplicate(a, b)
    assert not near_duplicate(a, c)
    assert hamming(a, a) == 0
    assert -(2**63) <= a < 2**63


# --------------------------------------------------------------------------- full content


def test_extract_article_and_fallback() -> None:
    paragraph = (
        "<p>" + "The council met on Tuesday and approved the plan for a new bridge over the river. " * 4 + "</p>"
    )
    page = f"<html><head><title>T</title></head><body><nav><a href='/'>Home</a></nav><article><h1>Bridge</h1>{paragraph}{paragraph}</article></body></html>"
    result = extract_article(page.encode(), "https://example.com/bridge")
    assert result is not None
    html, text = result
    assert "approved the plan" in text and "<script" not in html
    assert extract_article(b"", "https://example.com/") is None
    assert extract_article(b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "https://example.com/") is None
    teaser = normalize_entry(parsed_entry(contents=(), summary=ParsedContent("Short teaser.")), context())
    full = with_full_content(teaser, page.encode())
    assert "approved the plan" in full.text and "full_content" in full.flags
    assert with_full_content(teaser, b"<html></html>") is teaser
