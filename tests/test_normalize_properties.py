"""Property tests: the URL canonicalizer and the text cleaners never raise and are idempotent."""

from __future__ import annotations

from urllib.parse import urljoin

from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.normalize import (
    canonical_url,
    clean_line,
    clean_text,
    html_to_text,
    parse_feed_date,
    sanitize_html,
    simhash,
)
from aggregator.normalize.html import _join
from aggregator.normalize.text import is_boilerplate, is_boilerplate_raw
from aggregator.normalize.urls import is_http_url

URL_PIECES = st.sampled_from(
    [
        "http://", "https://", "HTTPS://", "//", "mailto:", "javascript:", "ftp://", "", "[", "]", "::1", "@",
        "Example.COM", "xn--bcher-kva.example", ":80", ":443", ":8080", ":", ":abc", "/", "/a/../b", "./", "%", "%2F",
        "%zz", "?", "&", "=", "#", "utm_source=x", "UTM_Medium=y", "fbclid=1", "id=3", " ", "\t", "\n", "\x00",
        "é", "ü", "\u200b", "\\", "..",
    ]
)  # fmt: skip
URLS = st.one_of(st.text(), st.lists(URL_PIECES, max_size=12).map("".join))
MARKUP = st.one_of(
    st.text(),
    st.lists(
        st.sampled_from(
            ["<", ">", "&", "&amp;", "&lt;", "&gt;", "&#60;", "&#x3C;", "&amp;lt;b&amp;gt;", "<b>", "</b>", "<p>",
             "<!--", "-->", "<script>", "</script", "\n", "\n\n", " ", "\xa0", "\u200b", "\r\n", "text", "é", ";",
             "&nbsp;", "&not", "<img src=x onerror=y>", "<a href='", "'>", "\x00", "\x0c"]
        ),
        max_size=20,
    ).map("".join),
)  # fmt: skip


@settings(max_examples=500)
@given(URLS, st.one_of(st.none(), URLS))
def test_canonical_url_never_raises_and_is_idempotent(url: str, base: str | None) -> None:
    once = canonical_url(url, base)
    assert canonical_url(once) == once
    if is_http_url(once):
        # A URL we could read comes back without its fragment.
        assert "#" not in once


@settings(max_examples=500)
@given(MARKUP)
def test_clean_text_never_raises_and_is_idempotent(value: str) -> None:
    once = clean_text(value)
    assert clean_text(once) == once
    assert "\n\n\n" not in once and once == once.strip()


@settings(max_examples=500)
@given(MARKUP)
def test_clean_line_is_idempotent_and_single_line(value: str) -> None:
    once = clean_line(value)
    assert clean_line(once) == once
    assert "\n" not in once


@settings(max_examples=300)
@given(MARKUP, st.one_of(st.none(), st.just("https://example.com/a/")))
def test_html_cleaners_never_raise(markup: str, base: str | None) -> None:
    text = html_to_text(markup, base)
    assert clean_text(text) == text
    sanitize_html(markup, base)
    simhash(text)


@given(st.text())
def test_parse_date_never_raises(raw: str) -> None:
    parsed = parse_feed_date(raw, "Europe/Paris")
    assert parsed is None or parsed.utcoffset() is not None


BOILERPLATE_PIECES = st.sampled_from(
    ["Sign up", "sign", "up", "for our newsletter", "We use", "cookies", "COOKIES", "by", "continuing", "to use",
     "this site", "protected by reCAPTCHA", "Read more", "Related coverage", ":", "The post", "appeared first on",
     "Example News", "harbour", "ferry", "İ", "ſ", "K", " ", "  ", "\n", "\t", "\xa0", "\u2003", "."]
)  # fmt: skip


@settings(max_examples=1000)
@given(st.one_of(st.text(), st.lists(BOILERPLATE_PIECES, max_size=14).map("".join)))
def test_raw_boilerplate_test_agrees_with_the_collapsed_one(raw: str) -> None:
    # The cheap test on raw element text must decide exactly as the full test on collapsed text.
    assert is_boilerplate_raw(raw) == (bool(raw.split()) and is_boilerplate(" ".join(raw.split())))


JOIN_PIECES = st.sampled_from(
    ["http://", "https://", "HTTP://", "//", "example.test", "[::1]", "[bad", "user@", ":8080", "/", "a", "..", ".",
     "?", "#", ";", "=", "%20", " ", "\t", "\n", "\x00", "é", "\\", "@", "ſ", "\u2100"]
)  # fmt: skip


@settings(max_examples=1000)
@given(st.lists(JOIN_PIECES, max_size=10).map("".join), st.sampled_from(["https://base.test/a/b", "http://b.test/"]))
def test_url_join_shortcut_answers_as_urljoin(url: str, base: str) -> None:
    try:
        expected = urljoin(base, url.strip())
    except ValueError:
        expected = url.strip()
    assert _join(base, url) == expected
