"""Related coverage: the pure ranking core, and the finder on a real store and Whoosh index in a temp dir."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.models import Entry, Source
from aggregator.normalize.fingerprint import simhash
from aggregator.store import Store, open_store
from index.indexer import Indexer
from index.related.finder import RelatedFinder
from index.related.rank import ArticleQuery, Candidate, RelatedSettings, cosine, rank, title_key
from index.search.engine import IndexReader

NOW = datetime(2024, 5, 6, 12, 0, tzinfo=UTC)


def make_entry(outlet: str, slug: str, title: str, text: str, *, hours: float = 0, site: str | None = None) -> Entry:
    """Return an entry of ``outlet`` published ``hours`` after NOW."""
    site = site or f"https://{outlet}.example/"
    return Entry(
        id=f"{outlet}-{slug}",
        feed_key=f"https://{outlet}.example/feed.xml",
        identity=slug,
        url=f"{site.rstrip('/')}/{slug}",
        title=title,
        authors=(),
        published_at=NOW + timedelta(hours=hours),
        updated_at=None,
        summary=text[:300],
        content_html=f"<p>{text}</p>",
        text=text,
        image=None,
        tags=(),
        language="en",
        word_count=len(text.split()),
        fingerprint=simhash(text),
        source=Source(feed_url=f"https://{outlet}.example/feed.xml", title=outlet.title(), site_url=site),
    )


def save(store: Store, entries: list[Entry]) -> None:
    """Store entries, one feed per outlet."""
    by_feed: dict[str, list[Entry]] = {}
    for entry in entries:
        by_feed.setdefault(entry.feed_key, []).append(entry)
    for feed_url, items in by_feed.items():
        feed = store.add_feed(feed_url, title=items[0].source.title)
        store.save_entries(feed.id, items)


EMBASSY = "Protesters storm the security post at the US embassy in Baghdad after air strikes on militia bases"
CORPUS = [
    make_entry("reuters", "embassy", "Protesters storm US embassy compound in Baghdad", EMBASSY),
    make_entry(
        "bbc",
        "embassy",
        "Baghdad: militia supporters storm US embassy",
        "Militia supporters angry at air strikes hurled stones and torched a security post at the US embassy in Baghdad",
        hours=2,
    ),
    make_entry(
        "guardian",
        "embassy",
        "US embassy in Baghdad attacked by protesters",
        "Protesters angry at US air strikes attacked the embassy in Baghdad, torching a security post",
        hours=5,
    ),
    make_entry(
        "guardian",
        "embassy-2",
        "Protesters leave US embassy in Baghdad",
        "Protesters withdrew from the US embassy in Baghdad a day after the attack on the security post",
        hours=26,
    ),
    make_entry(
        "npr",
        "embassy",
        "Trump blames Iran for Baghdad embassy protest",
        "Trump blamed Iran for the protest at the US embassy in Baghdad after air strikes on militia bases",
        hours=4,
    ),
    make_entry(
        "npr",
        "old-embassy",
        "Protesters at the US embassy in Baghdad, a year ago",
        "Protesters gathered at the US embassy in Baghdad over air strikes on militia bases",
        hours=-24 * 30,
    ),
    # The same wire copy as reuters/embassy, republished by another outlet.
    make_entry("wirecopy", "embassy", "Protesters storm US embassy compound in Baghdad", EMBASSY, hours=1),
    # Other stories.
    make_entry(
        "bbc",
        "football",
        "Liverpool win the league title",
        "Liverpool won the Premier League title for the first time in thirty years",
        hours=1,
    ),
    make_entry(
        "guardian",
        "markets",
        "Stocks fall as oil prices climb",
        "Stock markets fell around the world as oil prices climbed to a five month high",
        hours=3,
    ),
    make_entry(
        "dw",
        "rail",
        "German rail strike halts trains",
        "A strike by train drivers halted most trains in Germany on Monday",
        hours=2,
    ),
]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Store, IndexReader, Path]]:
    """Yield a store and an index holding CORPUS."""
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    store.migrate()
    save(store, CORPUS)
    Indexer(tmp_path / "index", store).catch_up()
    reader = IndexReader(tmp_path / "index")
    try:
        yield store, reader, tmp_path
    finally:
        reader.close()
        store.close()


def finder_of(world: tuple[Store, IndexReader, Path], **settings: object) -> RelatedFinder:
    store, reader, _ = world
    return RelatedFinder(reader, store, replace(RelatedSettings(), **settings))  # type: ignore[arg-type]


def ids(items: list) -> list[str]:  # type: ignore[type-arg]
    return [item.entry.id for item in items]


# ---------------------------------------------------------------------------- the pure core


def candidate(entry_id: str, similarity: float, *, hours: float = 0, site: str = "", title: str = "t") -> Candidate:
    return Candidate(
        entry_id=entry_id,
        similarity=similarity,
        published_at=NOW + timedelta(hours=hours),
        feed_key=f"feed-{site or entry_id}",
        site=site or entry_id,
        fingerprint=0,
        title_key=title_key(f"{title} {entry_id}"),
    )


def test_rank_orders_by_similarity_and_time_and_applies_threshold() -> None:
    query = ArticleQuery(title="q", published_at=NOW)
    settings = RelatedSettings()
    got = rank(
        query,
        [
            candidate("far", 0.8, hours=24 * 6),
            candidate("near", 0.8, hours=1),
            candidate("close-but-later", 0.95, hours=10),
            candidate("weak", settings.threshold - 0.01),
        ],
        settings,
        limit=5,
        now=NOW,
    )
    assert [r.candidate.entry_id for r in got] == ["near", "close-but-later", "far"]
    assert all(0 < r.score <= 1 for r in got)
    # Distance in time lowers the score, but never below the floor share of the similarity.
    far = got[-1]
    assert far.score >= far.candidate.similarity * settings.time_floor


def test_rank_abstains_without_close_coverage_at_about_the_same_time() -> None:
    query = ArticleQuery(title="q", published_at=NOW)
    settings = RelatedSettings()
    # Similar pieces, but all days away: a recurring topic, not this story's coverage.
    days_away = [candidate(f"d{i}", 0.7, hours=24 * (i + 2)) for i in range(3)]
    assert rank(query, days_away, settings, limit=5, now=NOW) == []
    # Loosely similar pieces at the same time are not enough either.
    loose = [candidate(f"l{i}", settings.evidence_threshold - 0.01, hours=i) for i in range(3)]
    assert rank(query, loose, settings, limit=5, now=NOW) == []
    # One close piece is evidence; then the follow-ups days away are shown too, ranked lower.
    got = rank(query, [*days_away, candidate("fresh", 0.6, hours=2)], settings, limit=5, now=NOW)
    assert got[0].candidate.entry_id == "fresh" and len(got) == 4


def test_rank_diversifies_outlets_and_drops_copies() -> None:
    query = ArticleQuery(title="Embassy stormed", published_at=NOW, site="own.example")
    same = [candidate(f"a{i}", 0.9 - i / 100, site="busy.example") for i in range(4)]
    copy_a = replace(candidate("x", 0.85, site="x.example"), title_key="same wire")
    copy_b = replace(candidate("y", 0.84, site="y.example"), title_key="same wire")
    own = candidate("own", 0.99, site="own.example")
    echo = replace(candidate("echo", 0.98, site="z.example"), title_key=title_key("Embassy  STORMED!"))
    got = rank(query, [*same, copy_a, copy_b, own, echo], RelatedSettings(), limit=5, now=NOW)
    assert [r.candidate.entry_id for r in got] == ["a0", "x"]
    got = rank(query, same, RelatedSettings(max_per_source=2), limit=5, now=NOW)
    assert [r.candidate.entry_id for r in got] == ["a0", "a1"]
    kept = rank(query, [own], RelatedSettings(exclude_same_source=False), limit=5, now=NOW)
    assert [r.candidate.entry_id for r in kept] == ["own"]


def test_rank_excludes_near_duplicate_fingerprints() -> None:
    query = ArticleQuery(title="q", published_at=NOW, fingerprint=0b1011)
    near = replace(candidate("near", 0.9), fingerprint=0b1000)  # 2 bits apart
    far = replace(candidate("far", 0.8), fingerprint=0b1011 ^ 0xFFFF)
    got = rank(query, [near, far], RelatedSettings(), limit=5, now=NOW)
    assert [r.candidate.entry_id for r in got] == ["far"]


def test_cosine() -> None:
    assert cosine({}, {"a": 1.0}) == 0.0
    assert cosine({"a": 1.0, "b": 1.0}, {"a": 1.0, "b": 1.0}) == pytest.approx(1.0)
    assert 0 < cosine({"a": 1.0, "b": 1.0}, {"a": 1.0, "c": 1.0}) < 1


# ---------------------------------------------------------------------------- on a real index


def test_related_for_an_entry_lists_other_outlets_best_first(world: tuple[Store, IndexReader, Path]) -> None:
    store, _, _ = world
    finder = finder_of(world)
    entry = store.get_entry("reuters-embassy")
    assert entry is not None
    got = finder.for_entry(entry, limit=5, now=NOW)
    # Itself and its wire copy are out; the guardian appears once; the month-old piece is outside the window.
    assert sorted(ids(got)) == ["bbc-embassy", "guardian-embassy", "npr-embassy"]
    assert [i.score for i in got] == sorted((i.score for i in got), reverse=True)
    assert all(item.similarity >= finder.settings.threshold for item in got)


def test_window_and_own_source_options(world: tuple[Store, IndexReader, Path]) -> None:
    store, _, _ = world
    entry = store.get_entry("guardian-embassy")
    assert entry is not None
    default = ids(finder_of(world).for_entry(entry, now=NOW))
    assert "guardian-embassy-2" not in default and "npr-old-embassy" not in default
    wide = ids(finder_of(world, window=60 * 86400, exclude_same_source=False, max_per_source=2).for_entry(entry))
    assert "guardian-embassy-2" in wide and "npr-old-embassy" in wide


def test_unrelated_article_gets_nothing(world: tuple[Store, IndexReader, Path]) -> None:
    store, _, _ = world
    finder = finder_of(world)
    rail = store.get_entry("dw-rail")
    assert rail is not None
    assert finder.for_entry(rail, now=NOW) == []
    # An article we do not have, sharing only a common word or two with the index: abstain.
    stranger = ArticleQuery(title="Volcano erupts in Iceland, flights in Europe halted", published_at=NOW)
    assert finder.find(stranger, now=NOW) == []


def test_article_we_do_not_have_by_title(world: tuple[Store, IndexReader, Path]) -> None:
    finder = finder_of(world)
    query = ArticleQuery(
        title="Militias attack the US embassy in Baghdad",
        text="Protesters torched a security post at the embassy after US air strikes",
        published_at=NOW + timedelta(hours=3),
        site="reuters.example",
    )
    got = ids(finder.find(query, now=NOW))
    assert got and "reuters-embassy" not in got
    assert {i.split("-")[0] for i in got} <= {"bbc", "guardian", "npr", "wirecopy"}


def test_new_coverage_invalidates_the_cache(world: tuple[Store, IndexReader, Path]) -> None:
    store, _, tmp_path = world
    finder = finder_of(world)
    entry = store.get_entry("reuters-embassy")
    assert entry is not None
    before = ids(finder.for_entry(entry, now=NOW))
    assert "ap-embassy" not in before
    late = make_entry(
        "ap",
        "embassy",
        "Protesters storm the US embassy in Baghdad",
        "Protesters angry over air strikes on militia bases stormed a security post at the US embassy in Baghdad",
        hours=3,
    )
    save(store, [late])
    Indexer(tmp_path / "index", store).catch_up()
    assert "ap-embassy" in ids(finder.for_entry(entry, now=NOW))


def test_empty_index_and_blank_title(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    store.migrate()
    finder = RelatedFinder(IndexReader(tmp_path / "index"), store)
    assert finder.find(ArticleQuery(title="Anything at all")) == []
    store.close()
