"""Every private name of a third-party library that Newsdesk uses, with the version pins that guard them.

A private name (a leading underscore, or an undocumented part of a library's insides) may change in
any release. Each one the code uses is listed here, and pyproject.toml pins its distribution to the
versions the list was checked against. tests/test_architecture.py fails when an installed version
leaves its pin, when a pin here and the one in pyproject.toml differ, when a listed name no longer
exists, and when code reads a private attribute of a library that is not listed.

To upgrade a pinned library: widen its pin here and in pyproject.toml, run the tests (each use has a
test comparing it with the library's public behaviour, named in ``why``), and set ``checked``.
This module is data only: it imports none of the libraries.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pin:
    """The versions of a distribution whose private names we use."""

    #: The distribution, as pip names it.
    distribution: str
    #: Its requirement in pyproject.toml's dependencies, a version specifier ("==6.0.14").
    specifier: str
    #: The version the uses listed for it were last checked against.
    checked: str


@dataclass(frozen=True)
class PrivateName:
    """One private name of a library, where we use it and why there is no public way."""

    #: The distribution that ships it, as pip names it.
    distribution: str
    #: "module:qualified.name" (looked up by the tests), or "module:Class().attribute" for an
    #: attribute its instances set (it cannot be looked up on the class).
    name: str
    #: Our file that uses it.
    used_in: str
    #: Why it is used, and the test that notices when it changes meaning.
    why: str
    #: True when the library documents it as public despite the underscore (no pin needed).
    documented: bool = False


#: The pins, one per distribution with undocumented names in the product code (aggregator/, index/, web/).
PINS: tuple[Pin, ...] = (
    Pin("feedparser", "==6.0.14", checked="6.0.14"),
    Pin("whoosh-reloaded", "==2.7.5", checked="2.7.5"),
    Pin("py3langid", "==0.4.0", checked="0.4.0"),
    Pin("httpx", ">=0.28.1,<0.29", checked="0.28.1"),
)

_TUNED = "aggregator/feedparser_tuned.py"
_TUNED_WHY = "the tuned parser copies; tests/test_parse_speedups.py compares its records with feedparser's own"
_SCORING = "index/search/scoring.py"
_SCORING_WHY = (
    "reads a segment's postings a block at a time as arrays, instead of one posting per Python call; "
    "tests/test_term_score_cache.py and tests/test_search.py compare the scores with Whoosh's own"
)

PRIVATE_NAMES: tuple[PrivateName, ...] = (
    # feedparser: our parse runs feedparser's own parser classes, copied with a few globals replaced.
    PrivateName(
        "feedparser", "feedparser.api:StrictFeedParser", _TUNED, "the strict parser class we copy; " + _TUNED_WHY
    ),
    PrivateName(
        "feedparser", "feedparser.api:LooseFeedParser", _TUNED, "the lenient parser class we copy; " + _TUNED_WHY
    ),
    PrivateName("feedparser", "feedparser.api:PREFERRED_XML_PARSERS", _TUNED, "the reference parse's SAX drivers"),
    PrivateName(
        "feedparser", "feedparser.mixin:_FeedParserMixin", _TUNED, "copied, with its methods' globals; " + _TUNED_WHY
    ),
    PrivateName("feedparser", "feedparser.mixin:_FeedParserMixin._get_context", _TUNED, "media:description handler"),
    PrivateName("feedparser", "feedparser.mixin:_FeedParserMixin.push_content", _TUNED, "media:description handler"),
    PrivateName("feedparser", "feedparser.mixin:_FeedParserMixin.pop_content", _TUNED, "media:description handler"),
    PrivateName("feedparser", "feedparser.html:_cp1252", _TUNED, "replaced by a list table; " + _TUNED_WHY),
    PrivateName("feedparser", "feedparser.urls:_urljoin", _TUNED, "replaced by a cached one; " + _TUNED_WHY),
    PrivateName("feedparser", "feedparser.urls:make_safe_absolute_uri", _TUNED, "cached, and run as feedparser.parse"),
    PrivateName("feedparser", "feedparser.encodings:convert_to_utf8", _TUNED, "a step of feedparser.parse we run"),
    PrivateName("feedparser", "feedparser.sanitizer:replace_doctype", _TUNED, "a step of feedparser.parse we run"),
    PrivateName(
        "feedparser",
        "feedparser.datetimes:_parse_date",
        "aggregator/normalize/dates.py",
        "the last of our date readers: feedparser's many formats; tests/test_normalize_entry.py",
    ),
    # Whoosh: the fast term scoring and the query work budget.
    PrivateName("whoosh-reloaded", "whoosh.codec.whoosh3:W3LeafMatcher._next_block", _SCORING, _SCORING_WHY),
    PrivateName("whoosh-reloaded", "whoosh.codec.whoosh3:W3LeafMatcher._read_data", _SCORING, _SCORING_WHY),
    PrivateName("whoosh-reloaded", "whoosh.codec.whoosh3:W3LeafMatcher()._byteids", _SCORING, _SCORING_WHY),
    PrivateName("whoosh-reloaded", "whoosh.codec.whoosh3:W3LeafMatcher()._data", _SCORING, _SCORING_WHY),
    PrivateName("whoosh-reloaded", "whoosh.codec.whoosh3:W3LeafMatcher()._blocklength", _SCORING, _SCORING_WHY),
    PrivateName(
        "whoosh-reloaded",
        "whoosh.codec.whoosh3:W3PerDocReader._cached_reader",
        _SCORING,
        "reads a field's stored lengths column (named _<field>_len) for BM25 in numpy; tests/test_search.py",
    ),
    PrivateName("whoosh-reloaded", "whoosh.reading:SegmentReader()._perdoc", _SCORING, "as above"),
    PrivateName(
        "whoosh-reloaded",
        "whoosh.query.terms:MultiTerm._btexts",
        "index/search/budget.py",
        "the words a prefix or fuzzy term expands to, counted against the query budget; tests/test_query_limits.py",
    ),
    PrivateName(
        "whoosh-reloaded",
        "whoosh.index:FileIndex._segments",
        "index/indexer.py",
        "the segment count that decides when maintenance merges; tests/test_index_indexer.py",
    ),
    PrivateName(
        "whoosh-reloaded",
        "whoosh.index:FileIndex._segments",
        "index/follower.py",
        "the segment count that decides when a web follower's replica merges; tests/test_follower.py",
    ),
    PrivateName(
        "whoosh-reloaded",
        "whoosh.searching:Searcher()._ix",
        "index/related/finder.py",
        "the index folder that names a cache generation (read with getattr and a default); tests/test_related.py",
    ),
    # py3langid: the same classifier with its automaton walk in numpy.
    PrivateName(
        "py3langid",
        "py3langid.langid:LanguageIdentifier._encode",
        "aggregator/normalize/language.py",
        "the text's bytes as the model reads them; tests/test_language.py compares scores with py3langid's own",
    ),
    PrivateName(
        "py3langid",
        "py3langid.langid:LanguageIdentifier()._alias_pairs",
        "aggregator/normalize/language.py",
        "languages the model counts as one; tests/test_language.py",
    ),
    # httpx: its transport, over sockets bounded by the fetch deadline.
    PrivateName(
        "httpx",
        "httpx:HTTPTransport()._pool",
        "aggregator/deadline.py",
        "replaced by a pool with our network backend (httpx has no public hook for one); tests/test_fetch.py",
    ),
    # Documented as public despite the underscore.
    PrivateName(
        "sqlalchemy",
        "sqlalchemy.engine:Row._mapping",
        "aggregator/store.py, aggregator/store_entries.py",
        "a row as a mapping; the underscore only keeps it apart from column names",
        documented=True,
    ),
    PrivateName(
        "lxml", "lxml.etree:_Element", "aggregator/normalize/", "lxml's element type, for annotations", documented=True
    ),
    # Used only by tests and benchmarks (a change breaks the test itself, so no pin is needed).
    PrivateName(
        "py3langid",
        "py3langid.langid:LanguageIdentifier()._rowbase",
        "tests/test_language.py",
        "py3langid's own walk, the reference",
    ),
    PrivateName("waitress", "waitress.server:BaseWSGIServer()._map", "tests/support/live.py", "drives its event loop"),
    PrivateName(
        "prometheus-client",
        "prometheus_client.registry:CollectorRegistry()._names_to_collectors",
        "tests/test_ops.py",
        "shows that the global registry stays empty",
    ),
    PrivateName(
        "reader", "reader._types:EntryUpdateIntent", "bench/search.py", "bulk-loads the peer for the benchmark"
    ),
    PrivateName("reader", "reader._types:entry_data_from_obj", "bench/search.py", "as above"),
    PrivateName("reader", "reader.core:Reader()._storage", "bench/search.py", "as above"),
)
