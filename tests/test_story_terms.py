"""The stories' term index by day: a windowed lookup finds exactly what a scan of every story finds."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.stories import StoryState
from aggregator.stories.state import TermIndex, in_window, overlap

BASE = datetime(2024, 5, 7, 6, 0, tzinfo=UTC)
VOCABULARY = [f"t{n}" for n in range(40)]


def brute_force(
    stories: dict[str, StoryState], terms: dict[str, float], start: datetime, end: datetime, limit: int
) -> list[str]:
    """Return what a lookup must answer: the best ``limit`` standing stories in the window by overlap, ties by id."""
    scored = [
        (-overlap(terms, story.centroid), story.id)
        for story in stories.values()
        if story.merged_into is None
        and story.centroid
        and in_window(story, start, end)
        and story.centroid.keys() & terms.keys()
    ]
    return [story_id for _, story_id in sorted(scored)[:limit]]


def random_story(rng: random.Random, story_id: str) -> StoryState:
    first = BASE + timedelta(hours=rng.uniform(0, 24 * 30))
    return StoryState(
        id=story_id,
        centroid={term: rng.random() for term in rng.sample(VOCABULARY, rng.randint(1, 8))},
        first_seen=first,
        last_seen=first + timedelta(hours=rng.choice([0, 1, 30, 200])),
        members=1,
    )


def changed(rng: random.Random, story: StoryState) -> StoryState:
    """Return the story as a join, a late article, a rebuild, a merge or a new vocabulary leaves it."""
    kind = rng.choice(["join", "late", "shorter", "merged", "terms", "empty"])
    if kind == "join":
        centroid = dict(story.centroid)
        for term in rng.sample(VOCABULARY, 3):
            centroid[term] = centroid.get(term, 0.0) + rng.random()
        return replace(story, centroid=centroid, last_seen=story.last_seen + timedelta(hours=rng.uniform(0, 80)))
    if kind == "late":
        return replace(story, first_seen=story.first_seen - timedelta(hours=rng.uniform(1, 80)))
    if kind == "shorter":
        return replace(story, last_seen=story.first_seen + (story.last_seen - story.first_seen) / 3)
    if kind == "merged":
        return replace(story, merged_into="elsewhere")
    if kind == "terms":
        return replace(story, centroid={term: rng.random() for term in rng.sample(VOCABULARY, 5)})
    return replace(story, centroid={})


@pytest.mark.parametrize("bucket_days", [1, 7])
def test_windowed_lookups_match_a_scan_of_every_story_through_changes(bucket_days: int) -> None:
    rng = random.Random(7)
    index = TermIndex(bucket_seconds=bucket_days * 86400.0)
    stories: dict[str, StoryState] = {}
    for step in range(3000):
        if stories and rng.random() < 0.5:
            story = changed(rng, stories[rng.choice(sorted(stories))])
        else:
            story = random_story(rng, f"s{step}")
        stories[story.id] = story
        index.put(story)
        if rng.random() < 0.02:
            gone = rng.choice(sorted(stories))
            index.remove(gone)
            del stories[gone]
        if step % 10 == 0:
            terms = {term: rng.random() for term in rng.sample(VOCABULARY, 4)}
            when = BASE + timedelta(hours=rng.uniform(-24, 24 * 32))
            start, end = when - timedelta(hours=72), when + timedelta(hours=72)
            live = {i: s for i, s in stories.items() if s.merged_into is None}

            def accept(
                story_id: str, live: dict[str, StoryState] = live, start: datetime = start, end: datetime = end
            ) -> bool:
                return in_window(live[story_id], start, end)

            assert index.ranked(terms, 12, accept, start, end) == brute_force(live, terms, start, end, 12)
            # The scores come out exactly as `overlap` computes them: the assigner merges lists by them.
            for score, story_id in index.scored(terms, 12, accept, (start, end)):
                assert score == overlap(terms, live[story_id].centroid)
            everything = index.ranked(terms, 12, lambda _: True)
            assert everything == brute_force(live, terms, BASE - timedelta(days=400), BASE + timedelta(days=400), 12)
    assert len(stories) > 1000  # the stream exercised the index at some size
