"""Story assignment: joining, abstention, merges as aliases, quiet periods, determinism and the batch overlay."""

from __future__ import annotations

import gzip
import json
import os
import random
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from aggregator.hosts import site_host
from aggregator.stories import (
    FeatureSettings,
    MemoryStoryStore,
    StoryArticle,
    StoryAssigner,
    StorySettings,
    StoryState,
    story_id_for,
)
from aggregator.stories.features import article_from_fields, stem, term_weights

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "stories" / "synthetic.json"
BASE = datetime(2024, 5, 7, 6, 0, tzinfo=UTC)


def fixture_articles(base: datetime = BASE, path: Path = FIXTURES) -> list[StoryArticle]:
    """Return the synthetic articles (or those of ``path``, in the same form) in publication order."""
    rows = json.loads(path.read_text(encoding="utf-8"))["articles"]
    articles = [
        StoryArticle(
            id=row["id"],
            title=row["title"],
            text=row["text"],
            published_at=base + timedelta(hours=row["hours"]),
            outlet=row["outlet"],
            language="en",
        )
        for row in rows
    ]
    return sorted(articles, key=lambda a: (a.published_at, a.id))


def labels(path: Path = FIXTURES) -> dict[str, str]:
    """Return article id -> the story it was written for."""
    rows = json.loads(path.read_text(encoding="utf-8"))["articles"]
    return {row["id"]: row["story"] for row in rows}


def assigned(articles: list[StoryArticle], settings: StorySettings | None = None) -> MemoryStoryStore:
    """Return a memory store after assigning the articles one at a time."""
    store = MemoryStoryStore()
    assigner = StoryAssigner(store, settings)
    for article in articles:
        assigner.assign(article)
    return store


def test_outlets_wording_one_event_differently_hours_apart_share_a_story() -> None:
    members = assigned(fixture_articles()).members()
    assert members["pacific-wire-quake"] == members["andes-post-quake"]
    # 30 hours apart, different headline and lead, same recall.
    assert members["money-times-recall"] == members["tech-desk-recall"]


def test_headline_only_article_joins_the_full_text_story() -> None:
    members = assigned(fixture_articles()).members()
    assert members["daily-brief-quake"] == members["andes-post-quake"]


def test_a_headline_alone_joins_a_story_only_close_to_it_in_time() -> None:
    # Two outlets' full reports of a recall; then headlines alone and a report with text, asked later.
    recall = "Solvane recalls 210,000 e-bike batteries after garage fires"
    lead = (
        "The e-bike maker Solvane is recalling 210,000 battery packs sold since 2022 after a series of "
        "garage fires, and will replace them free of charge, the company said."
    )
    reports = [
        StoryArticle("wire", recall, BASE, lead, outlet="wire"),
        StoryArticle(
            "desk", "E-bike maker Solvane to replace 210,000 batteries", BASE + timedelta(hours=2), lead, "desk"
        ),
    ]

    def found(settings: StorySettings, hours: float, text: str = "") -> bool:
        store = MemoryStoryStore()
        assigner = StoryAssigner(store, settings)
        assigner.assign_many(reports)
        asked = StoryArticle(
            "asked", "Solvane e-bike battery recall: 210,000 packs", BASE + timedelta(hours=hours), text
        )
        match = assigner.find(asked)
        return match is not None and match.story.id == store.members()["wire"]

    rule = StorySettings()
    assert found(rule, 17)  # the next morning's digest headline
    assert not found(rule, 60)  # two and a half days on, the words alone do not place a headline
    assert found(rule, 60, lead)  # an article with text still joins (quiet period 72 h)
    # Weighed as an article with text is (no curve, the same score), the late headline would join.
    assert found(StorySettings(headline_time_scale_hours=0, headline_threshold=0.2), 60)


def test_stories_sharing_a_place_or_a_company_stay_apart() -> None:
    members = assigned(fixture_articles()).members()
    quake = members["andes-post-quake"]
    assert members["andes-post-tram"] != quake  # Arequipa, but a tram plan
    assert members["pacific-wire-rates"] != quake  # Peru, but interest rates
    assert members["money-times-cfo"] != members["tech-desk-recall"]  # Solvane, but a new CFO


def test_clustering_matches_the_stories_the_fixtures_were_written_for() -> None:
    members = assigned(fixture_articles()).members()
    gold = labels()
    for a in gold:
        for b in gold:
            assert (members[a] == members[b]) == (gold[a] == gold[b]), (a, b)


def test_written_check_a_breach_told_three_ways_is_one_story_and_the_week_s_other_news_is_not() -> None:
    # bench/written_stories.json, written for a check nothing was tuned on. What it also shows and this test
    # does not assert (README "Stories written for the check"): the bank's new chairman, 4 hours after the
    # breach, joins its story, and the ferry's three outlets stay apart.
    written = REPO / "bench" / "written_stories.json"
    story_of = labels(written)
    members = assigned(fixture_articles(path=written)).members()
    breach = {members[i] for i, story in story_of.items() if story == "breach"}
    assert len(breach) == 1
    for other in ("breach2", "bus", "port", "results"):
        assert all(members[i] not in breach for i, story in story_of.items() if story == other), other


def test_unrelated_article_founds_a_story_of_one() -> None:
    store = MemoryStoryStore()
    assigner = StoryAssigner(store)
    results = [assigner.assign(article) for article in fixture_articles()]
    chess = next(r for r in results if r.article_id == "daily-brief-chess")
    assert chess.created
    assert chess.story_id == story_id_for("daily-brief-chess")
    assert store.stories[chess.story_id].members == 1


def test_find_places_an_article_we_do_not_store_without_assigning_it() -> None:
    store = assigned(fixture_articles())
    count = store.document_count()
    assigner = StoryAssigner(store)
    probe = StoryArticle(
        id="embed:1",
        title="Aftershocks rattle Colca valley a day after Peru's magnitude 6.4 quake",
        published_at=BASE + timedelta(hours=26),
    )
    match = assigner.find(probe)
    assert match is not None
    assert match.story.id == store.members()["andes-post-quake"]
    unrelated = StoryArticle(
        id="embed:2", title="Orchestra announces its summer season of open-air concerts", published_at=BASE
    )
    assert assigner.find(unrelated) is None
    assert store.document_count() == count  # a lookup learns nothing
    assert "embed:1" not in store.assignments


def test_find_answers_an_assigned_article_with_its_story() -> None:
    store = assigned(fixture_articles())
    article = fixture_articles()[0]
    match = StoryAssigner(store).find(article)
    assert match is not None
    assert match.story.id == store.members()[article.id]


def test_assigning_again_changes_nothing() -> None:
    store = MemoryStoryStore()
    assigner = StoryAssigner(store)
    article = fixture_articles()[0]
    first = assigner.assign(article)
    states = dict(store.stories)
    again = assigner.assign(article)
    assert again.repeated and not again.created
    assert again.story_id == first.story_id
    assert store.stories == states
    assert store.document_count() == 1


def test_a_story_closes_after_its_quiet_period() -> None:
    quake = next(a for a in fixture_articles() if a.id == "andes-post-quake")
    follow_up = replace(
        quake, id="late", title="Peru earthquake: Colca valley villages count damage after magnitude 6.4 tremor"
    )
    for hours, quiet, joins in ((50, 72.0, True), (80, 72.0, False), (80, 96.0, True)):
        store = MemoryStoryStore()
        assigner = StoryAssigner(store, StorySettings(quiet_period_hours=quiet))
        founded = assigner.assign(quake)
        late = assigner.assign(replace(follow_up, published_at=quake.published_at + timedelta(hours=hours)))
        assert (late.story_id == founded.story_id) is joins, (hours, quiet)


def test_article_bridging_two_stories_merges_them_as_an_alias() -> None:
    # Two reports of one event more than a quiet period apart found two stories; a report published
    # between them (arriving late) matches both, so they were one story: the later id becomes an alias.
    settings = StorySettings(quiet_period_hours=72.0, time_floor=1.0)
    quake = next(a for a in fixture_articles() if a.id == "andes-post-quake")
    wire = next(a for a in fixture_articles() if a.id == "pacific-wire-quake")
    store = MemoryStoryStore()
    assigner = StoryAssigner(store, settings)
    first = assigner.assign(quake)
    second = assigner.assign(replace(wire, published_at=quake.published_at + timedelta(hours=100)))
    assert second.created and second.story_id != first.story_id
    # A third outlet's report in between, worded partly like each.
    bridge = assigner.assign(
        replace(
            quake,
            id="bridge",
            title=wire.title,
            outlet="third.example",
            published_at=quake.published_at + timedelta(hours=50),
        )
    )
    assert bridge.merged == (second.story_id,)
    assert bridge.story_id == first.story_id
    assert store.aliases == {second.story_id: first.story_id}
    assert store.resolve(second.story_id) == first.story_id
    # Shown ids are not relabelled: the article keeps the id it was given, which now redirects.
    assert store.assignments["pacific-wire-quake"] == second.story_id
    assert store.assignments["bridge"] == first.story_id  # a new article points at the survivor
    assert store.members()["pacific-wire-quake"] == first.story_id
    survivor = store.stories[first.story_id]
    assert survivor.members == 3
    assert set(survivor.outlets) == {"andespost.example", "pacificwire.example", "third.example"}
    assert store.stories[second.story_id].merged_into == first.story_id
    # A merged story is no longer a candidate: new coverage joins the survivor.
    later = assigner.assign(replace(wire, id="later", published_at=quake.published_at + timedelta(hours=101)))
    assert later.story_id == first.story_id and not later.merged


def test_one_batch_or_one_at_a_time_give_the_same_stories() -> None:
    articles = fixture_articles()
    single = assigned(articles)
    for size in (2, 3, len(articles)):
        store = MemoryStoryStore()
        assigner = StoryAssigner(store)
        for start in range(0, len(articles), size):
            assigner.assign_many(articles[start : start + size])
        assert store.members() == single.members()
        assert store.stories == single.stories
        assert store.aliases == single.aliases


def test_same_arrival_order_gives_same_story_ids_in_any_process() -> None:
    # Python randomizes str hashes per process: nothing may depend on set or hash order.
    script = (
        f"import json, sys; sys.path.insert(0, {str(REPO)!r})\n"
        "from tests.test_stories_cluster import assigned, fixture_articles\n"
        "s = assigned(fixture_articles())\n"
        "print(json.dumps([s.members(), {k: v.to_json() for k, v in s.stories.items()}], sort_keys=True))\n"
    )
    outputs = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
        outputs.add(done.stdout)
    assert len(outputs) == 1
    members = json.loads(outputs.pop())[0]
    assert members == assigned(fixture_articles()).members()


def test_arrival_order_decides_the_founder_but_not_the_grouping() -> None:
    articles = fixture_articles()
    forward = assigned(articles).members()
    backward = assigned(list(reversed(articles))).members()
    # Ids differ (another founder), the partition does not.
    assert {frozenset(a for a in forward if forward[a] == s) for s in forward.values()} == {
        frozenset(a for a in backward if backward[a] == s) for s in backward.values()
    }


def test_story_state_round_trips_through_json() -> None:
    store = assigned(fixture_articles())
    for story in store.stories.values():
        data = json.loads(json.dumps(story.to_json()))
        assert StoryState.from_json(data) == story


def test_memory_store_forgets_long_quiet_stories_from_its_term_index() -> None:
    store = MemoryStoryStore(retain_seconds=86400)
    assigner = StoryAssigner(store, StorySettings(quiet_period_hours=12))
    quake = fixture_articles()[0]
    assigner.assign(quake)
    for day in range(1, 600):
        filler = StoryArticle(id=f"f{day}", title=f"Filler headline number {day} zzz{day}", published_at=BASE)
        assigner.assign(replace(filler, published_at=quake.published_at + timedelta(days=2, minutes=day)))
    old = store.stories_for_terms({"arequipa": 1.0}, quake.published_at, quake.published_at, 10)
    assert old == []  # pruned from the index, still in the story table
    assert store.story(story_id_for(quake.id)) is not None


@pytest.mark.parametrize(
    ("word", "stemmed"),
    [
        ("embassies", "embassy"),
        ("protests", "protest"),
        ("strikes", "strike"),
        ("businesses", "business"),
        ("boxes", "box"),
        ("status", "status"),
        ("crisis", "crisis"),
        ("gas", "gas"),
    ],
)
def test_plural_folding(word: str, stemmed: str) -> None:
    assert stem(word) == stemmed


def test_names_numbers_and_title_words_weigh_more() -> None:
    settings = FeatureSettings(title_weight=2.0, entity_weight=1.5)
    weights = term_weights(
        "Quake hits valley",
        "Rescuers in the valley said the tremor hit Chivay at dawn. In Maca 35 homes fell, the U.S. embassy said.",
        "en",
        settings,
    )
    assert weights["chivay"] > weights["rescuer"]  # capitalized inside a sentence: a name
    assert weights["35"] > weights["home"]  # a number
    assert "us" in weights  # "U.S." is an acronym, not the pronoun
    assert weights["valley"] > weights["tremor"]  # in the title too
    assert "the" not in weights and "said" not in weights


def test_title_case_headlines_do_not_make_every_word_a_name() -> None:
    settings = FeatureSettings(entity_weight=2.0)
    shouted = term_weights("Strong Tremor Hits Remote Valley Villages", "", "en", settings)
    plain = term_weights("strong tremor hits remote valley villages", "", "en", settings)
    assert shouted == plain


def random_stream(seed: int, count: int = 240) -> list[StoryArticle]:
    """Return a dense stream of articles drawn from overlapping topics (many candidates per article)."""
    rng = random.Random(seed)
    vocabulary = [f"w{n}" for n in range(60)]
    topics = [rng.sample(vocabulary, 10) for _ in range(30)]
    articles = []
    for n in range(count):
        topic = rng.choice(topics)
        words = rng.sample(topic, 5) + rng.sample(vocabulary, 2)
        when = BASE + timedelta(minutes=rng.randrange(0, 6 * 24 * 60))
        articles.append(
            StoryArticle(
                id=f"a{n}", title=" ".join(words[:4]), text=" ".join(words), published_at=when, outlet=f"o{n % 9}"
            )
        )
    return sorted(articles, key=lambda a: (a.published_at, a.id))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_batch_boundaries_never_change_the_stories(seed: int) -> None:
    # Few candidates per article, many overlapping stories: the store's ranking of stale versions
    # and the batch's own ranking must still pick exactly what one-at-a-time assignment picks.
    # Headlines weighed over 9 hours keep the random stream's joins (and so merges) plentiful on every seed.
    settings = StorySettings(
        candidates=3, threshold=0.2, headline_threshold=0.2, merge_threshold=0.3, headline_time_scale_hours=9.0
    )
    articles = random_stream(seed)
    single = assigned(articles, settings)
    assert single.aliases and len(single.stories) > 5  # the stream founds and merges stories
    for size in (7, 50, len(articles)):
        store = MemoryStoryStore()
        assigner = StoryAssigner(store, settings)
        for start in range(0, len(articles), size):
            assigner.assign_many(articles[start : start + size])
        assert store.assignments == single.assignments
        assert store.stories == single.stories
        assert store.aliases == single.aliases
        assert store.document_count() == single.document_count()


# ---------------------------------------------------------------- real data (skipped when ../shared is absent)

SHARED = REPO.parent / "shared"
ALLSIDES = SHARED / "corpus" / "stories" / "allsides-roundups-dev.jsonl.gz"
SEED_FEED = SHARED / "seed" / "story-feed.xml"


def b_cubed(predicted: dict[str, str], gold: dict[str, str]) -> tuple[float, float]:
    """Return B-cubed (precision, recall) of a clustering against labels."""
    pairs = Counter((predicted[a], gold[a]) for a in gold)
    predicted_sizes = Counter(predicted[a] for a in gold)
    gold_sizes = Counter(gold.values())
    precision = sum(n * n / predicted_sizes[p] for (p, _), n in pairs.items()) / len(gold)
    recall = sum(n * n / gold_sizes[g] for (_, g), n in pairs.items()) / len(gold)
    return precision, recall


@pytest.mark.skipif(not ALLSIDES.exists(), reason="../shared/corpus is absent")
def test_allsides_outlets_wording_a_story_differently_land_together() -> None:
    # Every story's left, center and right outlet, spread over up to three days, all stories interleaved.
    rng = random.Random(5)
    with gzip.open(ALLSIDES, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    anchors = {row["cluster"]: datetime.fromisoformat(row["published_at"]).astimezone(UTC) for row in rows}
    articles = sorted(
        (
            StoryArticle(
                id=row["id"],
                title=row["title"],
                text=row["text"],
                published_at=anchors[row["cluster"]] + timedelta(hours=rng.uniform(0, 72)),
                outlet=row["source"],
            )
            for row in rows
        ),
        key=lambda a: (a.published_at, a.id),
    )
    store = MemoryStoryStore()
    StoryAssigner(store).assign_many(articles)
    precision, recall = b_cubed(store.members(), {row["id"]: row["cluster"] for row in rows})
    assert precision >= 0.90
    assert 2 * precision * recall / (precision + recall) >= 0.85


@pytest.mark.skipif(not SEED_FEED.exists(), reason="../shared/seed is absent")
def test_seed_story_outlets_hours_apart_land_together_and_nothing_else_does() -> None:
    from aggregator.models import FeedContext
    from aggregator.normalize import normalize_feed
    from aggregator.parse import parse_feed

    parsed = parse_feed(SEED_FEED.read_bytes(), {"content-type": "application/rss+xml"})
    context = FeedContext(
        feed_key="seed",
        feed_url="https://www.algemeiner.com/feed/",
        source_title="Algemeiner",
        site_url="https://www.algemeiner.com",
        fetched_at=datetime(2020, 1, 1, tzinfo=UTC),
    )
    entry = normalize_feed(parsed, context)[0]
    rows = json.loads((REPO / "tests" / "fixtures" / "stories" / "seed_rewrites.json").read_text("utf-8"))["articles"]
    articles = [
        StoryArticle(id=entry.id, title=entry.title, text=entry.text, published_at=entry.published_at, outlet="seed"),
        *(
            StoryArticle(
                id=row["id"],
                title=row["title"],
                text=row["text"],
                published_at=entry.published_at + timedelta(hours=row["hours"]),
                outlet=row["outlet"],
            )
            for row in rows
        ),
    ]
    store = MemoryStoryStore()
    StoryAssigner(store).assign_many(sorted(articles, key=lambda a: (a.published_at, a.id)))
    members = store.members()
    embassy = {entry.id} | {row["id"] for row in rows if row["story"] == "embassy"}
    seed_story = members[entry.id]
    assert {a for a, story in members.items() if story == seed_story} == embassy
    assert len(store.stories[seed_story].outlets) == 5


def test_article_from_a_stored_entry_uses_its_site_and_body() -> None:
    from aggregator.models import FeedContext
    from aggregator.normalize import normalize_feed
    from aggregator.parse import parse_feed
    from aggregator.stories import article_from_entry

    body = (REPO / "tests" / "fixtures" / "related" / "capital-daily.xml").read_bytes()
    context = FeedContext(
        feed_key="https://capitaldaily.example/feed",
        feed_url="https://capitaldaily.example/feed",
        source_title="Capital Daily",
        site_url="https://www.capitaldaily.example/",
        fetched_at=datetime(2024, 5, 8, tzinfo=UTC),
    )
    entry = normalize_feed(parse_feed(body, {"content-type": "application/rss+xml"}), context)[0]
    article = article_from_entry(entry)
    assert article.id == entry.id and article.title == entry.title
    assert article.outlet == "capitaldaily.example"
    assert article.text == (entry.text or entry.summary) and article.text
    assert article.published_at == entry.published_at and article.published_at.tzinfo is not None


def test_vectors_of_many_articles_are_each_as_vector_gives_it() -> None:
    store = MemoryStoryStore()
    assigner = StoryAssigner(store)
    articles = fixture_articles()
    assigner.assign_many(articles[:-3])
    assert assigner.vectors(articles[-3:]) == [assigner.vector(a) for a in articles[-3:]]


def test_second_chance_finds_the_story_an_outlet_of_its_own_is_nearest_to() -> None:
    # Strict settings make every article found its own story; the second chance (a lower score, a
    # shared term more, a clear lead, another outlet's coverage) still finds the nearest one.
    settings = StorySettings(threshold=0.99, second_chance_threshold=0.1)
    store = MemoryStoryStore()
    assigner = StoryAssigner(store, settings)
    harbour = StoryArticle(
        "harbour-1",
        "Explosion at Norvane chemical plant near Talvik injures 14 workers",
        BASE,
        "An explosion tore through a solvent storage hall at the Norvane plant outside Talvik, injuring 14 workers.",
        outlet="harbour",
    )
    ledger = StoryArticle(
        "ledger-1",
        "Norvane halts Talvik production after blast in solvent store",
        BASE + timedelta(hours=5),
        "Norvane stopped production at its Talvik chemical plant after a blast in a solvent hall hurt 14 employees.",
        outlet="ledger",
    )
    first, second = assigner.assign_many([harbour, ledger])
    assert first.created and second.created  # the threshold keeps them apart
    match = assigner.find(ledger, second_chance=True, exclude=second.story_id)
    assert match is not None and match.story.id == first.story_id
    # Without the exclusion its own story (itself) is nearest; without the keyword, its own story.
    own = assigner.find(ledger)
    assert own is not None and own.story.id == second.story_id
    # A story covered by the same outlet only is no second chance: that outlet's follow-up is no coverage.
    same_outlet = replace(ledger, id="harbour-2", outlet="harbour")
    assert assigner.find(same_outlet, second_chance=True, exclude=second.story_id) is None


def test_second_chance_refuses_a_toss_up_between_two_stories() -> None:
    settings = StorySettings(threshold=1.01, headline_threshold=1.01, second_chance_threshold=0.05, merge_threshold=2.0)
    store = MemoryStoryStore()
    assigner = StoryAssigner(store, settings)
    text = "Norvane Talvik plant workers solvent hall"
    a = StoryArticle("a", "Norvane Talvik plant workers", BASE, text, outlet="harbour")
    b = StoryArticle("b", "Norvane Talvik plant workers", BASE + timedelta(hours=1), text, outlet="ledger")
    assigner.assign_many([a, b])
    asked = StoryArticle("c", "Norvane Talvik plant solvent hall", BASE + timedelta(hours=2), text, outlet="courier")
    assert assigner.find(asked, second_chance=True) is None  # two stories alike: neither leads


@pytest.mark.parametrize(
    "site",
    [
        "https://www.reuters.com/article/x?y=1#z",
        "http://a.example?x//y",
        "http://user:pw@WWW.Example.com:8080/p",
        "//cdn.example.org/a",
        "foo/bar//baz",
        "http:/x//y.example/a",
        "http://[::1]/a",
        "http://[::1/a",
        "http://a.example\n/x",
        " http://b.example/x",
        "a//b/c:d",
        "http://a.example#f/x",
        "https://www.bbc.co.uk",
        "http://éx.example/a",
        "",
    ],
)
def test_outlet_host_is_read_as_urlsplit_reads_it(site: str) -> None:
    # Hosts are cached by what comes before the path; the outlet must be what parsing the whole URL gives.
    try:
        host = (urlsplit(site).hostname or "").removeprefix("www.")
    except ValueError:
        host = ""
    article = article_from_fields("e1", "t", datetime(2026, 1, 1, tzinfo=UTC), "", site, "feed-key", "en")
    assert article.outlet == (host or "feed-key")
    assert site_host(site) == host  # the same host for search's and related coverage's site:
