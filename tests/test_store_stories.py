"""Stories kept in the store (SQLite always, PostgreSQL when NEWSDESK_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import dataclasses
import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from aggregator.models import Entry, Source
from aggregator.store import Store, open_store
from aggregator.store_stories import (
    SqlStoryStore,
    StoriesMoved,
    _write_states,
    assign_pending,
    open_between,
    state_row,
)
from aggregator.stories import (
    MemoryStoryStore,
    StoryArticle,
    StoryAssigner,
    StoryChanges,
    StoryState,
    article_from_entry,
    story_id_for,
)
from aggregator.tables_stories import stories_table, story_terms_table
from tests.support.story_articles import EXPLOSION, OTHERS, OUTLETS, Article

T0 = datetime(2026, 2, 10, 6, 0, tzinfo=UTC)


def entry_of(article: Article) -> Entry:
    title, site = OUTLETS[article.outlet]
    text = "\n\n".join(article.paragraphs)
    return Entry(
        id=f"{article.outlet}-{article.slug}",
        feed_key=f"https://{article.outlet}.example/feed",
        identity=article.slug,
        url=f"{site}{article.slug}",
        title=article.title,
        authors=(),
        published_at=T0 + timedelta(hours=article.hours),
        updated_at=None,
        summary=text[:300],
        content_html="",
        text=text,
        image=None,
        tags=("world",),
        language="en",
        word_count=len(text.split()),
        fingerprint=hash(article.slug) & 0xFFFFFFFF,
        source=Source(feed_url=f"https://{article.outlet}.example/feed", title=title, site_url=site),
    )


def store_articles(store: Store, articles: tuple[Article, ...]) -> None:
    for article in sorted(articles, key=lambda a: a.hours):
        title, _site = OUTLETS[article.outlet]
        feed = store.add_feed(f"https://{article.outlet}.example/feed", title=title)
        store.save_entries(feed.id, [entry_of(article)])


@contextmanager
def week_reads(engine: sa.Engine) -> Iterator[list[str]]:
    """Yield the list of the past-week reads (`open_between`) made on ``engine`` meanwhile."""
    reads: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        if "stories.first_seen <=" in statement:
            reads.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        yield reads
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


def explosion_then_other_news(store: Store, explosion: tuple[Article, ...]) -> None:
    """Store the explosion's coverage, then other news three weeks later: a reader keeps only the last few days'
    stories in memory, so asks about the explosion read its past week."""
    store_articles(store, explosion)
    later = dataclasses.replace(OTHERS[0], slug="talvik-budget-later", hours=OTHERS[0].hours + 21 * 24)
    store_articles(store, (later,))


def assign(store: Store) -> SqlStoryStore:
    stories = SqlStoryStore(store.engine)
    assign_pending(store, stories, StoryAssigner(stories))
    return stories


def test_three_outlets_form_one_story_and_others_stay_apart(any_store: Store) -> None:
    store_articles(any_store, EXPLOSION + OTHERS)
    stories = assign(any_store)
    ids = stories.stories_of([entry_of(a).id for a in EXPLOSION + OTHERS])
    story = {ids[entry_of(a).id] for a in EXPLOSION}
    assert len(story) == 1
    (story_id,) = story
    assert all(ids[entry_of(a).id] != story_id for a in OTHERS)
    row = stories.story_row(story_id)
    assert row is not None and row.outlet_count == 3 and row.members == 3
    assert stories.member_ids(story_id) == [entry_of(a).id for a in EXPLOSION]
    top, total = stories.top(min_outlets=2, limit=10)
    assert [r.id for r in top] == [story_id] and total == 1
    assert stories.top(min_outlets=2, limit=10, tags=["world"])[1] == 1
    assert stories.top(min_outlets=2, limit=10, tags=["sport"])[1] == 0
    assert stories.top(min_outlets=2, limit=10, sources=["Nordic Ledger"])[1] == 1
    assert stories.top(min_outlets=2, limit=10, languages=["fr"])[1] == 0
    assert stories.top(min_outlets=4, limit=10)[1] == 0


def test_assignment_resumes_and_survives_a_new_process(any_store: Store) -> None:
    first, *rest = sorted(EXPLOSION + OTHERS, key=lambda a: a.hours)
    store_articles(any_store, (first,))
    before = assign(any_store).stories_of([entry_of(first).id])
    store_articles(any_store, tuple(rest))
    again = open_store(any_store.url)  # another process: nothing in memory
    try:
        stories = assign(again)
        after = stories.stories_of([entry_of(a).id for a in EXPLOSION + OTHERS])
        assert after[entry_of(first).id] == before[entry_of(first).id]
        assert len({after[entry_of(a).id] for a in EXPLOSION}) == 1
        assert stories.cursor() == any_store.last_seq()
        # Nothing new: a second run assigns nothing and changes nothing.
        assert assign_pending(again, stories, StoryAssigner(stories)) == 0
        assert stories.stories_of(list(after)) == after
    finally:
        again.close()


def test_a_merge_is_an_alias_that_redirects(any_store: Store) -> None:
    store_articles(any_store, EXPLOSION[:1] + OTHERS[:1])
    stories = assign(any_store)
    keep = stories.stories_of([entry_of(EXPLOSION[0]).id])[entry_of(EXPLOSION[0]).id]
    gone = stories.stories_of([entry_of(OTHERS[0]).id])[entry_of(OTHERS[0]).id]
    survivor, merged = stories.story(keep), stories.story(gone)
    assert survivor is not None and merged is not None
    seq = stories.cursor()
    changes = StoryChanges(
        stories=(
            dataclasses.replace(survivor, members=2, outlets=(*survivor.outlets, "x.example")),
            dataclasses.replace(merged, merged_into=keep),
        ),
        aliases=((gone, keep),),
    )
    stories.save_at(changes, seq, seq)
    assert stories.resolve_stored(gone) == keep
    assert stories.resolve_stored(keep) == keep
    assert stories.resolve_stored("s-unknown") is None
    assert set(stories.member_ids(keep)) == {entry_of(EXPLOSION[0]).id, entry_of(OTHERS[0]).id}
    fresh = SqlStoryStore(any_store.engine)
    fresh.refresh()
    assert fresh.resolve(gone) == keep
    # A writer that fell behind cannot save over what another one wrote.
    with pytest.raises(StoriesMoved):
        stories.save_at(StoryChanges(), seq - 1, seq)


def test_find_places_an_article_we_do_not_store(any_store: Store) -> None:
    store_articles(any_store, EXPLOSION + OTHERS)
    stories = assign(any_store)
    story_id = stories.stories_of([entry_of(EXPLOSION[0]).id])[entry_of(EXPLOSION[0]).id]
    visitor = dataclasses.replace(article_from_entry(entry_of(EXPLOSION[1])), id="visitor", outlet="elsewhere.example")
    match = SqlStoryStore(any_store.engine).find(StoryAssigner(stories), visitor)
    assert match is not None and match.story.id == story_id
    unrelated = dataclasses.replace(
        visitor, title="Ski jumping world cup opens in Lahti", text="The ski jumping season opened in Lahti."
    )
    assert SqlStoryStore(any_store.engine).find(StoryAssigner(stories), unrelated) is None


def test_deleted_entries_leave_their_story(any_store: Store) -> None:
    store_articles(any_store, EXPLOSION + OTHERS)
    stories = assign(any_store)
    ids = [entry_of(a).id for a in EXPLOSION]
    (story_id,) = set(stories.stories_of(ids).values())
    before = stories.story(story_id)
    assert before is not None and before.members == 3 and len(before.outlets) == 3
    # Terms only the courier's report has, some of them in the centroid while it is a member.
    assigner = StoryAssigner(stories)
    vectors = [assigner.vector(article_from_entry(entry_of(a))) for a in EXPLOSION]
    own = set(vectors[2]) - set(vectors[0]) - set(vectors[1])
    assert own & set(before.centroid)

    def remove(outlet: str) -> None:
        feed = any_store.find_feed(f"https://{outlet}.example/feed")
        assert feed is not None and any_store.remove_feed(feed.id)
        assign_pending(any_store, stories, StoryAssigner(stories))

    remove(EXPLOSION[2].outlet)  # the courier's feed goes, and its report with it
    for view in (stories, SqlStoryStore(any_store.engine)):  # the writer's memory and a fresh reader alike
        view.refresh()
        after = view.story(story_id)
        assert after is not None and after.members == 2
        assert after.outlets == before.outlets[:2] and not own & set(after.centroid)
        assert (after.first_seen, after.last_seen) == (before.first_seen, entry_of(EXPLOSION[1]).published_at)
        row = view.story_row(story_id)
        assert row is not None and (row.members, row.outlet_count) == (2, 2)
        assert view.member_ids(story_id) == ids[:2]
        assert view.stories_of(ids) == {ids[0]: story_id, ids[1]: story_id}
    # One outlet left: not a top story any more; none left: an empty story that matches nothing.
    remove(EXPLOSION[1].outlet)
    assert stories.top(min_outlets=2, limit=10)[1] == 0
    remove(EXPLOSION[0].outlet)
    empty = SqlStoryStore(any_store.engine).story(story_id)
    assert empty is not None and empty.members == 0 and not empty.centroid and not empty.outlets
    assert stories.member_ids(story_id) == []
    # A story that outlet publishes again later is new: nothing of the emptied story matches it.
    store_articles(any_store, EXPLOSION[:1])
    fresh = assign(any_store)
    assert fresh.stories_of([ids[0]]) == {ids[0]: story_id}  # re-assigned once more, founding the story again
    assert fresh.stories_of([ids[0]])[ids[0]] == story_id_for(ids[0])


def _article(number: int) -> StoryArticle:
    # A common word every article has, and three no other article shares.
    words = " ".join(f"zq{number}x{k}" for k in "abc")
    return StoryArticle(
        id=f"a{number}", title=f"Harbour {words}", published_at=T0 + timedelta(hours=number), outlet="x.example"
    )


def test_document_frequencies_stay_bounded(any_store: Store) -> None:
    # Without a bound the table would hold 3 new terms per article: 316 rows after 105 articles.
    stories = SqlStoryStore(any_store.engine, halve_frequencies_at=40)
    memory = MemoryStoryStore(halve_frequencies_at=40)
    assigner, reference = StoryAssigner(stories), StoryAssigner(memory)
    for start in range(0, 105, 5):
        batch = [_article(n) for n in range(start, start + 5)]
        stories.assign(assigner, batch, start, start + 5)
        reference.assign_many(batch)
    with any_store.engine.connect() as conn:
        rows = dict(conn.execute(sa.select(story_terms_table.c.term, story_terms_table.c.documents)).all())
    fresh = SqlStoryStore(any_store.engine)
    fresh.refresh()
    for view in (stories, fresh):
        documents = view.document_count()
        # The count halves whenever it reaches 40 (after 40, 60, 80 and 100 articles): 20 + the last 5.
        assert documents == 25
        # Every article has "harbour": its count halves with the document count, so idf stays right.
        assert view.document_frequencies(["harbour"]) == {"harbour": documents}
    assert len(rows) <= 1 + 3 * 40 and rows["harbour"] == fresh.document_count()
    # Terms seen once before the last halving are gone; the newest articles' are counted.
    assert "zq0xa" not in rows and "zq99xa" not in rows and rows["zq104xa"] == 1
    # The reference store in memory halves the same way.
    assert memory.document_count() == fresh.document_count()
    assert memory.document_frequencies(rows) == rows


def test_find_places_an_article_older_than_the_stories_kept_in_memory(any_store: Store) -> None:
    # The explosion's coverage, then (three weeks later) other news: a reader's view keeps only the
    # stories of the last few days in memory, yet an embedding page may ask about the explosion now.
    explosion_then_other_news(any_store, EXPLOSION)
    stories = assign(any_store)
    story_id = stories.stories_of([entry_of(EXPLOSION[0]).id])[entry_of(EXPLOSION[0]).id]
    reader = SqlStoryStore(any_store.engine)
    visitor = dataclasses.replace(article_from_entry(entry_of(EXPLOSION[1])), id="visitor", outlet="elsewhere.example")
    match = reader.find(StoryAssigner(reader), visitor)
    assert match is not None and match.story.id == story_id
    # The same words dated outside the story's quiet period find nothing, past window or not.
    stale = dataclasses.replace(visitor, published_at=visitor.published_at + timedelta(days=10))
    assert reader.find(StoryAssigner(reader), stale) is None
    # Placed the same way when asked again (the window is kept) and after the stories change.
    assert reader.find(StoryAssigner(reader), visitor) == match


def test_a_past_window_serves_a_weeks_days_as_the_stories_in_memory_do(any_store: Store) -> None:
    # One window is read per week (the week and the quiet period either side): an article of any day,
    # on either side of a week's edge, is placed as the writer, which holds every story, places it.
    explosion_then_other_news(any_store, EXPLOSION)
    writer = assign(any_store)
    reader = SqlStoryStore(any_store.engine)
    visitor = dataclasses.replace(article_from_entry(entry_of(EXPLOSION[1])), id="visitor", outlet="elsewhere.example")
    placed = 0
    for hours in range(-6 * 24, 6 * 24, 7):
        asked = dataclasses.replace(visitor, published_at=visitor.published_at + timedelta(hours=hours))
        expected = writer.find(StoryAssigner(writer), asked)
        assert reader.find(StoryAssigner(reader), asked) == expected, hours
        placed += expected is not None
    assert 0 < placed < len(range(-6 * 24, 6 * 24, 7))  # both sides of the quiet period were asked


def test_a_reader_keeps_past_weeks_until_one_of_their_stories_changes(any_store: Store) -> None:
    # A reader re-read every past week after any batch: with polls every few minutes, most lookups of older
    # articles paid for reading their weeks again. Now a week is read again only when one of its stories
    # changes, and then the lookup sees the change.
    explosion_then_other_news(any_store, EXPLOSION[:2])
    assign(any_store)
    reader = SqlStoryStore(any_store.engine)
    with week_reads(any_store.engine) as reads:
        visitor = dataclasses.replace(
            article_from_entry(entry_of(EXPLOSION[1])), id="visitor", outlet="elsewhere.example"
        )
        first = reader.find(StoryAssigner(reader), visitor)
        assert first is not None and len(first.story.outlets) == 2 and reads
        read_before = len(reads)
        # A poll adds today's news: the explosion's week is not read again.
        newer = dataclasses.replace(OTHERS[1], slug="newer", hours=OTHERS[1].hours + 22 * 24)
        store_articles(any_store, (newer,))
        assign(any_store)
        same = reader.find(StoryAssigner(reader), visitor)  # (its similarity moves: one more article counted)
        assert same is not None and same.story == first.story
        assert len(reads) == read_before
        # A late wire copy of the explosion, from a third outlet, joins the explosion's story (the writer reads
        # the past week too): the week is read again, and the reader sees the third outlet.
        copy = dataclasses.replace(EXPLOSION[1], outlet="courier", slug="wire-copy", hours=EXPLOSION[1].hours + 1)
        store_articles(any_store, (copy,))
        writer = assign(any_store)
        assert writer.stories_of([entry_of(copy).id]) == {entry_of(copy).id: first.story.id}
        again = reader.find(StoryAssigner(reader), visitor)
        assert len(reads) > read_before
        assert again is not None and again.story.id == first.story.id and len(again.story.outlets) == 3
        fresh = SqlStoryStore(any_store.engine)
        assert again == fresh.find(StoryAssigner(fresh), visitor)


def test_a_new_feeds_backlog_joins_the_stories_its_events_already_have(any_store: Store) -> None:
    # Two outlets covered the explosion three weeks ago; today an operator adds a third outlet's feed, which
    # still carries its report of the explosion. The writer holds only the last few days' stories in
    # memory: it reads the explosion's week from the database, and the report joins that story.
    explosion_then_other_news(any_store, EXPLOSION[:2])
    first = assign(any_store)
    story_id = first.stories_of([entry_of(EXPLOSION[0]).id])[entry_of(EXPLOSION[0]).id]
    store_articles(any_store, EXPLOSION[2:])
    writer = assign(any_store)
    assert writer.stories_of([entry_of(EXPLOSION[2]).id]) == {entry_of(EXPLOSION[2]).id: story_id}
    row = writer.story_row(story_id)
    assert row is not None and row.outlet_count == 3 and row.members == 3


def _weeks_of_news(store: Store) -> list[tuple[Article, ...]]:
    """Return the batches a poller stores over five weeks: the fixtures' stories again every week (each week's
    copies an event of their own), and after each week's, a poll with the third outlet's late report of the
    week before's explosion."""
    batches: list[tuple[Article, ...]] = []
    for week in range(5):
        shift = week * 7 * 24

        def moved(article: Article, shift: float = shift, week: int = week) -> Article:
            return dataclasses.replace(article, slug=f"{article.slug}-w{week}", hours=article.hours + shift)

        batches.append(tuple(moved(a) for a in EXPLOSION[:2] + OTHERS))
        if week:  # the next poll: last week's explosion, reported late by the third outlet
            last = dataclasses.replace(
                EXPLOSION[2], slug=f"{EXPLOSION[2].slug}-w{week - 1}", hours=EXPLOSION[2].hours + shift - 7 * 24
            )
            batches.append((last,))
    return batches


def test_a_store_with_few_stories_in_memory_assigns_as_one_holding_all(tmp_path: Path) -> None:
    # A writer keeps at most `memory_stories` in memory; those quiet longest leave and are read back by the
    # week. Batch by batch, it must place every article where a writer holding everything places it.
    placed: list[dict[str, str]] = []
    held: list[int] = []
    for name, limit in (("all", 10_000), ("few", 4)):
        store = open_store(f"sqlite:///{tmp_path / name}.db")
        try:
            writer = SqlStoryStore(store.engine, memory_stories=limit)
            articles: list[Article] = []
            for batch in _weeks_of_news(store):
                store_articles(store, batch)
                assign_pending(store, writer, StoryAssigner(writer))
                articles += batch
            placed.append(writer.stories_of([entry_of(a).id for a in articles]))
            held.append(writer.past_in_memory()["recent"])
        finally:
            store.close()
    assert placed[0] == placed[1]
    assert held[1] <= 4 < held[0]
    # The late reports joined their week's explosion, in both.
    for week in range(4):
        report = entry_of(dataclasses.replace(EXPLOSION[2], slug=f"{EXPLOSION[2].slug}-w{week}")).id
        first = entry_of(dataclasses.replace(EXPLOSION[0], slug=f"{EXPLOSION[0].slug}-w{week}")).id
        assert placed[1][report] == placed[1][first], week


def test_warming_reads_the_past_weeks_before_anyone_asks(any_store: Store) -> None:
    # A server warms its reader once it listens: the first ask about an older article then reads nothing.
    explosion_then_other_news(any_store, EXPLOSION)
    writer = assign(any_store)
    reader = SqlStoryStore(any_store.engine)
    assert reader.past_in_memory() == {"recent": 0, "weeks": 0, "stories": 0, "loading": 0}
    warming = reader.warm_past()
    assert reader.past_in_memory()["loading"] == 1 or not warming.is_alive()
    warming.join(timeout=30)
    held = reader.past_in_memory()
    assert held["loading"] == 0 and held["weeks"] >= 1 and held["stories"] >= 1
    with week_reads(any_store.engine) as reads:
        visitor = dataclasses.replace(
            article_from_entry(entry_of(EXPLOSION[1])), id="visitor", outlet="elsewhere.example"
        )
        found = reader.find(StoryAssigner(reader), visitor)
        assert found is not None and found == writer.find(StoryAssigner(writer), visitor)
        assert reads == []


def test_warming_a_damaged_store_says_so_in_one_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'damaged.db'}")
    try:
        explosion_then_other_news(store, EXPLOSION)
        assign(store)
        with store.engine.begin() as conn:  # an old story's state damaged on disk
            conn.execute(
                sa.update(stories_table).where(stories_table.c.first_seen < T0 + timedelta(days=7)).values(state="{")
            )
        reader = SqlStoryStore(store.engine)
        reader.refresh()
        with caplog.at_level("WARNING", logger="newsdesk.stories"):
            reader.warm_past().join(timeout=30)
        assert reader.past_in_memory()["loading"] == 0
        assert [r.getMessage().splitlines()[0] for r in caplog.records] == [caplog.records[0].getMessage()]
        assert "past stories not read ahead" in caplog.records[0].getMessage()
    finally:
        store.close()


def test_the_past_window_reads_its_range_from_an_index_an_older_database_is_given(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'older.db'}"
    store = open_store(url)
    with store.engine.begin() as conn:  # a database made before the index existed
        conn.execute(sa.text("DROP INDEX ix_stories_window"))
    store.close()
    store = open_store(url)
    try:
        with store.engine.connect() as conn:
            names = {index["name"] for index in sa.inspect(conn).get_indexes("stories")}
            assert "ix_stories_window" in names
            query = open_between(T0, T0 + timedelta(days=6)).compile(conn, compile_kwargs={"literal_binds": True})
            plan = " ".join(str(row[-1]) for row in conn.execute(sa.text(f"EXPLAIN QUERY PLAN {query}")))
        # Both ends of the range are read in the index: no walk through every standing story's state.
        assert "ix_stories_window" in plan and "last_seen>" in plan, plan
    finally:
        store.close()


def test_a_batch_that_fails_to_save_leaves_no_story_in_the_writers_view(any_store: Store) -> None:
    # A batch files its stories in the store's term index as it goes (`stage`); when it cannot be saved
    # (here another writer moved the cursor first), lookups must see only the saved stories again.
    first, *rest = sorted(EXPLOSION + OTHERS, key=lambda a: a.hours)
    store_articles(any_store, (first,))
    stories = assign(any_store)
    assigner = StoryAssigner(stories)
    seq = stories.cursor()
    store_articles(any_store, tuple(rest))
    articles = [article_from_entry(entry_of(a)) for a in sorted(rest, key=lambda a: a.hours)]
    when = min(a.published_at for a in articles)
    window = (when - timedelta(days=3), when + timedelta(days=3))
    terms = {term: 1.0 for article in articles for term in assigner.vector(article)}
    before = stories.stories_for_terms(terms, *window, 100)
    assert [story.id for _, story in before] == [story_id_for(entry_of(first).id)]

    other = SqlStoryStore(any_store.engine)  # another writer moves the cursor on first
    other.save_at(StoryChanges(), seq, seq + 1)
    with pytest.raises(StoriesMoved):  # raised when saving, after the batch's stories were staged
        stories.assign(assigner, articles, seq, any_store.last_seq())
    assert stories.stories_for_terms(terms, *window, 100) == before

    # Going on from the other writer's cursor, the view is what a fresh reader of the database sees.
    assert assign_pending(any_store, stories, assigner) == len(rest) - 1
    found = stories.stories_for_terms(terms, *window, 100)
    fresh = SqlStoryStore(any_store.engine)
    fresh.refresh()
    assert found == fresh.stories_for_terms(terms, *window, 100)
    assert len(found) > 1


def test_a_batch_runs_with_the_collector_paused_and_restores_it_even_when_it_fails(any_store: Store) -> None:
    # The writer pauses the cyclic garbage collector for a batch (aggregator.gcpause): every statement
    # of the batch runs with it off, and it is on again afterwards, whether the batch saved or not.
    first, *rest = sorted(EXPLOSION + OTHERS, key=lambda a: a.hours)
    store_articles(any_store, (first,))
    stories = SqlStoryStore(any_store.engine)
    assigner = StoryAssigner(stories)
    enabled_at_statements: list[bool] = []

    def record(*_: object) -> None:
        enabled_at_statements.append(gc.isenabled())

    sa.event.listen(any_store.engine, "before_cursor_execute", record)
    was = gc.isenabled()
    gc.enable()
    try:
        seq = stories.cursor()
        articles, last = [article_from_entry(entry_of(first))], any_store.last_seq()
        enabled_at_statements.clear()
        assert stories.assign(assigner, articles, seq, last) == 1
        assert enabled_at_statements and not any(enabled_at_statements)
        assert gc.isenabled()

        seq = stories.cursor()
        store_articles(any_store, tuple(rest))
        SqlStoryStore(any_store.engine).save_at(StoryChanges(), seq, seq + 1)  # another writer moves on first
        articles = [article_from_entry(entry_of(a)) for a in sorted(rest, key=lambda a: a.hours)]
        last = any_store.last_seq()
        enabled_at_statements.clear()
        with pytest.raises(StoriesMoved):  # raised at the save, the batch's last step
            stories.assign(assigner, articles, seq, last)
        assert enabled_at_statements and not any(enabled_at_statements)
        assert gc.isenabled()

        gc.disable()  # a collector someone else turned off stays off
        assert assign_pending(any_store, stories, assigner) == len(rest) - 1  # the other writer took one
        assert not gc.isenabled()
    finally:
        sa.event.remove(any_store.engine, "before_cursor_execute", record)
        if was:
            gc.enable()
        else:
            gc.disable()


def test_story_rows_written_through_the_sqlite_driver_are_those_sqlalchemy_writes(tmp_path: Path) -> None:
    # On SQLite the batch's story rows skip SQLAlchemy's parameter handling: every column must hold the
    # very text and numbers SQLAlchemy's insert stores (times with their microseconds, UTF-8 JSON), or
    # range queries on the times and readers of the state would see other values.
    states = [
        StoryState(
            id="s1",
            centroid={"élysée": 0.5, "ferry": 0.25},
            first_seen=T0,
            last_seen=T0 + timedelta(hours=5, microseconds=120),
            members=3,
            outlets=("harbour.example", "zürich.example"),
        ),
        StoryState(id="s2", centroid={"budget": 1.0}, first_seen=T0, last_seen=T0, members=1, merged_into="s1"),
    ]
    driver, generic = (open_store(f"sqlite:///{tmp_path / name}.db") for name in ("driver", "generic"))
    try:
        with driver.engine.begin() as conn:
            _write_states(conn, [dataclasses.replace(states[0], members=1)], 3)  # replaced by the next write
            _write_states(conn, states, 7)
        with generic.engine.begin() as conn:
            conn.execute(sa.insert(stories_table), [state_row(story, 7) for story in states])  # as on PostgreSQL
        query = "SELECT *, typeof(first_seen), typeof(updated_seq) FROM stories ORDER BY id"
        with driver.engine.connect() as a, generic.engine.connect() as b:
            written = a.exec_driver_sql(query).all()
            assert written == b.exec_driver_sql(query).all()
        assert len(written) == 2 and "zürich" in written[0].state  # UTF-8, as json.dumps(..., ensure_ascii=False)
        assert json.loads(written[0].state) == states[0].to_json()
        read = SqlStoryStore(driver.engine)
        read.refresh()
        assert read.story("s1") == states[0]
    finally:
        driver.close()
        generic.close()


def test_a_memory_batch_that_fails_leaves_the_saved_stories() -> None:
    store = MemoryStoryStore()
    assigner = StoryAssigner(store)
    articles = [article_from_entry(entry_of(a)) for a in sorted(EXPLOSION + OTHERS, key=lambda a: a.hours)]
    assigner.assign_many(articles[:1])
    saved = dict(store.stories)
    broken = dataclasses.replace(articles[2], published_at=articles[2].published_at.replace(tzinfo=None))
    with pytest.raises(TypeError):  # a naive time cannot be compared with the stories' aware ones
        assigner.assign_many([articles[1], broken])
    assert store.stories == saved
    when = articles[0].published_at
    terms = assigner.vector(articles[1])
    assert [s.id for _, s in store.stories_for_terms(terms, when, when + timedelta(days=2), 50)] == [
        s.id for s in saved.values() if set(s.centroid) & set(terms)
    ]
    # What the failed batch would have done, done again, gives what one batch gives on a fresh store.
    assigner.assign_many(articles[1:])
    fresh = MemoryStoryStore()
    StoryAssigner(fresh).assign_many(articles)
    assert store.members() == fresh.members()


def test_member_rows_of_some_entries_are_those_rows_of_the_whole_story(any_store: Store) -> None:
    store_articles(any_store, EXPLOSION)
    stories = assign(any_store)
    first = entry_of(EXPLOSION[0]).id
    story_id = stories.stories_of([first])[first]
    every = stories.member_rows([story_id])[story_id]
    assert len(every) >= 3
    some = [every[2].entry_id, every[0].entry_id, "not-an-entry"]
    # Oldest first as always, whatever order they are asked in; ids of no member are left out.
    assert stories.member_rows([story_id], only=some)[story_id] == [every[0], every[2]]
    assert stories.member_rows([story_id], only=["not-an-entry"]) == {}
