"""Meaning in related coverage: word-vector means of title and lead (aggregator/stories/meaning.py).

The vectors are the ones the product reads (the wordllama wheel's bundled files), never a stand-in.
The related-coverage checks run on a real poll of fixture feeds on 127.0.0.1 (tests/test_story_related.py's world).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from flask import Flask

import web.related as related
from aggregator.models import Entry
from aggregator.stories import MemoryStoryStore, StoryArticle, StoryAssigner
from aggregator.stories.meaning import MEANING_WORDS, meaning_text, shared_embedder, similarity
from aggregator.stories.pairs import OTHER_STORY_MEANING, pool_similarities
from web.services import Services

from .support.story_articles import EXPLOSION
from .test_story_related import add_fjord_post_article, story_of, world  # noqa: F401 (the fixture)

T0 = datetime(2026, 3, 3, 6, 0, tzinfo=UTC)

BLAST = (
    "Explosion at chemical plant injures 14 workers",
    "An explosion tore through a storage hall at a chemical plant early on Tuesday, injuring 14 workers, "
    "four of them seriously, the fire service said. Residents were told to keep their windows closed.",
)
BLAST_REWORDED = (
    "Fourteen staff hurt as chemical works warehouse goes up in flames",
    "A dozen and more employees were taken to hospital with burns after a warehouse of solvents at an "
    "industrial chemicals works caught fire and blew apart overnight. People living nearby were warned "
    "to shut their windows because of the smoke.",
)
# The blast as a fourth outlet tells it: the town named, everything else in its own words.
BLAST_OWN_WORDS = (
    "Talvik warehouse fire sends staff to hospital",
    "Ambulances took a dozen and more employees to hospital with burns after a warehouse of solvents at "
    "an industrial chemicals works near Talvik caught fire and blew apart before dawn. Neighbours were "
    "warned to shut their windows against the smoke.",
)
FOOTBALL = (
    "Late penalty sends city club into the cup final",
    "A penalty in the last minute of extra time sent the city club into the cup final on Saturday, after "
    "a match their coach called the hardest of the season. Fans celebrated in the old town until dawn.",
)


def blast_reports(services: Services) -> dict[str, Entry]:
    """Return entry id -> the stored reports of the blast (one story of the world's three outlets)."""
    titles = {a.title for a in EXPLOSION}
    return {e.id: e for e in services.store.iter_entries() if e.title in titles}


def first_report(services: Services) -> Entry:
    """Return the stored first report of the blast (the story the world's other outlets joined)."""
    return next(e for e in blast_reports(services).values() if e.title == EXPLOSION[0].title)


def vector_of(title: str, text: str) -> np.ndarray:
    embedder = shared_embedder()
    assert embedder is not None, "the word vectors ship with the wordllama wheel: a product dependency"
    vector = embedder.vector(meaning_text(title, text))
    assert vector is not None
    return vector


def test_meaning_is_read_from_the_title_and_the_lead_only() -> None:
    body = " ".join(f"w{i}" for i in range(500))
    text = meaning_text("A title", body)
    assert text.startswith("A title. w0 w1 ")
    assert len(text.split()) == 2 + MEANING_WORDS
    assert meaning_text("  Only a title  ", "") == "Only a title"


def test_vectors_are_unit_length_and_the_same_every_time() -> None:
    first = vector_of(*BLAST)
    assert abs(float(np.linalg.norm(first)) - 1.0) < 1e-5
    assert np.array_equal(first, vector_of(*BLAST))
    embedder = shared_embedder()
    assert embedder is not None
    assert embedder.vector("   ") is None  # nothing to read: no vector, not a zero division


def test_one_event_worded_two_ways_is_closer_in_meaning_than_in_words() -> None:
    # The two reports of the blast share almost no words; their meanings are close, and far closer
    # than either is to the football report.
    same = similarity(vector_of(*BLAST), vector_of(*BLAST_REWORDED))
    other = similarity(vector_of(*BLAST), vector_of(*FOOTBALL))
    assert same >= OTHER_STORY_MEANING
    assert same > other + 0.2
    assert other < OTHER_STORY_MEANING


def test_nearby_lists_stories_by_a_looser_rule_than_joining_and_leaves_out_the_excluded() -> None:
    store = MemoryStoryStore()
    assigner = StoryAssigner(store)
    blast = assigner.assign(StoryArticle("a1", BLAST[0], T0, BLAST[1], outlet="harbour.example"))
    match = assigner.assign(StoryArticle("a2", FOOTBALL[0], T0, FOOTBALL[1], outlet="courier.example"))
    reworded = StoryArticle("q", BLAST_REWORDED[0], T0 + timedelta(hours=3), BLAST_REWORDED[1], outlet="x.example")
    assert assigner.find(reworded) is None  # too few shared words to join
    near = assigner.nearby(reworded, limit=5, threshold=0.01, min_shared=1)
    assert [m.story.id for m in near] == [blast.story_id]  # the football story shares no word
    assert assigner.nearby(reworded, limit=5, threshold=0.01, min_shared=1, exclude=blast.story_id) == []
    assert assigner.nearby(reworded, limit=0, threshold=0.01, min_shared=1) == []
    assert match.story_id != blast.story_id


def test_pool_similarities_read_the_asked_article_and_each_candidates_closest_fellow() -> None:
    # The asked article first, then three candidates: two of one outlet (not each other's fellows) and one of
    # another. Each similarity is the plain cosine; a fellow is of another outlet, never the asked article.
    blast, reworded, football = vector_of(*BLAST), vector_of(*BLAST_REWORDED), vector_of(*FOOTBALL)
    vectors = [{"blast": 1.0}, {"blast": 0.6, "plant": 0.8}, {"cup": 1.0}, {"plant": 1.0}]
    outlets = ["", "harbour", "harbour", "courier"]
    similar = pool_similarities([blast, reworded, football, None], vectors, outlets)
    assert similar.meaning.tolist() == pytest.approx([similarity(blast, reworded), similarity(blast, football), 0.0])
    assert similar.words.tolist() == pytest.approx([0.6, 0.0, 0.0])
    # harbour's two are fellows of courier's only (whose meaning is unknown: 0); courier's of both.
    assert similar.fellow_words.tolist() == pytest.approx([0.8, 0.0, 0.8])
    assert similar.fellow_meaning.tolist() == pytest.approx([0.0, 0.0, 0.0])
    alone = pool_similarities([blast, reworded], vectors[:2], outlets[:2])
    assert alone.fellow_words.tolist() == [0.0] and alone.fellow_meaning.tolist() == [0.0]
    # A copy of the asked text (word cosine 0.8 or more) is left out, as a candidate and as a fellow.
    copied = pool_similarities(
        [blast, blast, None], [{"blast": 1.0}, {"blast": 1.0}, {"plant": 1.0}], ["", "a", "b"], copy_words=0.8
    )
    assert copied.kept == (1,) and copied.fellow_words.tolist() == [0.0]


def test_a_lone_article_gets_the_other_outlets_coverage_of_its_event(
    world: tuple[Services, Flask],  # noqa: F811
) -> None:
    # A new outlet reports the blast in words of its own, naming only the town: its sidebar lists the
    # blast's reports (its pool holds its story's members and those of the stories near it in words, and
    # they are close in meaning and in time). A report on something else an hour later gets none of them.
    services, app = world
    explosion = story_of(services, EXPLOSION)
    add_fjord_post_article(services, "fjord-blaze", *BLAST_OWN_WORDS, hours=3)
    add_fjord_post_article(services, "fjord-cup", *FOOTBALL, hours=4, outlet="Sports Desk")
    assert services.stories.stories_of(["fjord-cup"])["fjord-cup"] != explosion
    client = app.test_client()
    blaze = client.get("/api/v1/related?entry=fjord-blaze").get_json()["items"]
    assert blaze, "the blast's coverage, however worded"
    assert {item["story_id"] for item in blaze} == {explosion}
    cup = client.get("/api/v1/related?entry=fjord-cup").get_json()["items"]
    assert explosion not in {item["story_id"] for item in cup}


def test_an_embedding_page_worded_its_own_way_gets_the_events_coverage(
    world: tuple[Services, Flask],  # noqa: F811
) -> None:
    # The same for an embedding page's article we do not store, five hours after the blast. An article that
    # shares no name with the blast's reports (`BLAST_REWORDED`: "a chemical works", "a warehouse") is far
    # closer to none of them than they are to each other, and gets nothing: a guess that, on AllSides,
    # would have shown something for twice as many articles with no coverage (README). A report on
    # something else the same morning gets nothing either.
    services, app = world
    explosion = story_of(services, EXPLOSION)
    first = first_report(services)
    when = first.published_at + timedelta(hours=5)
    client = app.test_client()
    for (title, text), listed in ((BLAST_OWN_WORDS, True), (BLAST_REWORDED, False), (FOOTBALL, False)):
        if not listed:
            page = StoryArticle("query:page", title, when, text, outlet="elsewhere.example")
            assert services.stories.find(services.story_assigner, page) is None, title
        asked = {"title": title, "text": text, "date": when.isoformat(), "url": "https://elsewhere.example/a"}
        items = client.get("/api/v1/related", query_string=asked).get_json()["items"]
        if listed:
            assert items and {item["story_id"] for item in items} == {explosion}, title
        else:
            assert items == [], title


def test_without_word_vectors_related_coverage_weighs_words_alone(
    world: tuple[Services, Flask],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A broken install (the wheel's files missing) is one log line, and the sidebar still answers.
    from aggregator.stories import meaning

    services, app = world
    first = first_report(services)
    with_vectors = app.test_client().get(f"/api/v1/related?entry={first.id}").get_json()["items"]
    monkeypatch.setattr(meaning, "_bundled_files", lambda: None)
    meaning._shared.cache_clear()
    related.MEANINGS.clear()
    app.extensions.pop("newsdesk.related", None)
    try:
        with caplog.at_level(logging.WARNING, logger=meaning.__name__):
            without = app.test_client().get(f"/api/v1/related?entry={first.id}").get_json()["items"]
        assert "word vectors not found" in caplog.text
        assert {i["id"] for i in without} == {i["id"] for i in with_vectors}  # the two other outlets either way
    finally:
        meaning._shared.cache_clear()
        related.MEANINGS.clear()


def test_a_stored_headline_lists_its_story_members_close_to_it_in_meaning(
    world: tuple[Services, Flask],  # noqa: F811
) -> None:
    # Headline-only feeds' entries four hours and a day and a half after the blast: their words join the
    # blast's story, but too few (and, later, too late) for the finder to vouch for every member. Its
    # story's members close to a headline in meaning are its coverage, from a lower similarity when they
    # were reported the same half day. An embedding page sending the same headline alone, which we do not
    # store, still gets nothing (a headline placed in a story is weak evidence: README).
    services, app = world
    explosion = story_of(services, EXPLOSION)
    members = blast_reports(services)
    asked = [
        ("fjord-late", "Fourteen hurt as blast rips through Norvane solvent hall in Talvik", 36, "Fjord Post"),
        ("sound-early", "Talvik solvent hall explosion: fourteen Norvane staff in hospital", 4, "Sound Times"),
    ]
    listed_any = 0
    for entry_id, title, hours, outlet in asked:
        add_fjord_post_article(services, entry_id, title, "", hours=hours, outlet=outlet)
        assert services.stories.stories_of([entry_id])[entry_id] == explosion
        headline = services.store.get_entries([entry_id])[entry_id]
        with app.test_request_context():
            vouched = {i.entry.id for i in services.related.find(related.query_for_entry(headline), limit=10)}
            heard = related.entry_meaning(headline)
            close = {
                member.id
                for member in members.values()
                if similarity(heard, related.entry_meaning(member)) >= related.headline_floor(headline, member)
            }
        items = app.test_client().get(f"/api/v1/related?entry={entry_id}").get_json()["items"]
        # Exactly the story's members the finder vouches for or close enough in meaning (room for all).
        assert {i["id"] for i in items} == (vouched & set(members)) | close
        assert all(i["story_id"] == explosion for i in items)
        listed_any += bool(close - vouched)
        members[entry_id] = headline  # the next headline's story has it too
        page = {"title": title, "date": headline.published_at.isoformat(), "url": "https://elsewhere.example/b"}
        assert app.test_client().get("/api/v1/related", query_string=page).get_json()["items"] == []
    assert listed_any == 2  # each headline lists a member only meaning vouches for
    late = services.store.get_entries(["fjord-late"])["fjord-late"]
    early = services.store.get_entries(["sound-early"])["sound-early"]
    first = first_report(services)
    assert related.headline_floor(late, first) == related.MEANING_HEADLINE_MEMBER
    assert related.headline_floor(early, first) == related.MEANING_HEADLINE_SAME_TIME < related.MEANING_HEADLINE_MEMBER


def test_an_embedding_page_sending_one_sentence_of_text_is_weighed_as_an_article_with_text(
    world: tuple[Services, Flask],  # noqa: F811
) -> None:
    # The same words as a headline alone get nothing (the story a stranger's headline is placed in needs
    # the finder's word); with one sentence of text beyond the title (from `HEADLINE_ONLY_WORDS`), the page
    # is an article with text, and its story's members close to it are its coverage.
    services, app = world
    explosion = story_of(services, EXPLOSION)
    first = first_report(services)
    title = "Fourteen hurt as blast rips through Norvane solvent hall in Talvik"
    sentence = (
        "Fourteen workers were hurt when a solvent store exploded at the Norvane chemical plant in Talvik overnight."
    )
    assert related.HEADLINE_ONLY_WORDS <= len(sentence.split()) < 20
    when = (first.published_at + timedelta(hours=30)).isoformat()
    client = app.test_client()
    alone = {"title": title, "date": when, "url": "https://elsewhere.example/b"}
    assert client.get("/api/v1/related", query_string=alone).get_json()["items"] == []
    items = client.get("/api/v1/related", query_string={**alone, "text": sentence}).get_json()["items"]
    assert len(items) >= 2 and {i["id"] for i in items} <= set(blast_reports(services))
    assert all(i["story_id"] == explosion for i in items)
