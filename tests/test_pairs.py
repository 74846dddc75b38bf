"""The weighing of related-coverage candidates (aggregator/stories/pairs.py): inputs, probabilities, listing."""

from __future__ import annotations

import math

import pytest

from aggregator.stories import pairs
from aggregator.stories.pairs import Candidate, inputs, listable, same_event


def candidate(**fields: object) -> Candidate:
    base: dict[str, object] = {
        "meaning": 0.6,
        "words": 0.3,
        "hours": 4.0,
        "same_story": True,
        "has_text": True,
        "fellow_meaning": 0.5,
        "fellow_words": 0.2,
    }
    base.update(fields)
    return Candidate(**base)  # type: ignore[arg-type]


def test_inputs_follow_the_feature_names_and_compare_each_candidate_with_the_pool() -> None:
    close = candidate(meaning=0.7, words=0.36, hours=12.0)
    far = candidate(meaning=0.4, words=0.09, hours=36.0, same_story=False)
    rows = inputs([close, far])
    assert all(len(row) == len(pairs.FEATURES) for row in rows)
    named = [dict(zip(pairs.FEATURES, row, strict=True)) for row in rows]
    assert named[0]["sqrt_words"] == pytest.approx(0.6)
    assert named[1]["days"] == pytest.approx(1.5) and named[1]["days_squared"] == pytest.approx(2.25)
    assert named[0]["meaning_below_best"] == 0.0 and named[1]["meaning_below_best"] == pytest.approx(-0.3)
    assert (named[0]["meaning_rank"], named[1]["meaning_rank"]) == (1.0, 0.5)
    assert (named[0]["same_story_x_words"], named[1]["same_story_x_words"]) == (pytest.approx(0.36), 0.0)
    assert named[0]["meaning_over_fellow"] == pytest.approx(0.2)
    assert inputs([]) == []


def test_an_article_closer_in_meaning_words_and_time_is_likelier() -> None:
    base = candidate()
    for closer in (
        candidate(meaning=0.8),
        candidate(words=0.5),
        candidate(hours=1.0),
        candidate(fellow_words=0.0),
    ):
        # Alone in its pool each time, so the pool-relative inputs are the same for both.
        assert same_event([closer])[0] > same_event([base])[0], closer
    # A second candidate far closer than the first makes the first less likely (it is no longer the best).
    alone = same_event([base])[0]
    beside = same_event([base, candidate(meaning=0.9, words=0.6)])[0]
    assert beside < alone
    for p in same_event([base, candidate(hours=70.0, meaning=0.1, words=0.0, same_story=False)]):
        assert 0.0 < p < 1.0


def test_days_apart_weigh_a_candidate_down() -> None:
    probabilities = [same_event([candidate(hours=h)])[0] for h in (0.0, 12.0, 24.0, 48.0)]
    assert probabilities == sorted(probabilities, reverse=True)
    assert probabilities[0] - probabilities[-1] > 0.3


def test_without_meaning_the_words_alone_weights_ignore_the_meaning_inputs() -> None:
    a = same_event([candidate(meaning=0.9)], meaning_known=False)
    b = same_event([candidate(meaning=0.1)], meaning_known=False)
    assert a == b
    assert same_event([candidate(meaning=0.9)]) != same_event([candidate(meaning=0.1)])
    for name, weight in zip(pairs.FEATURES, pairs._WORDS_ALONE_WEIGHTS, strict=False):
        if name in pairs.MEANING_FEATURES:
            assert weight == 0.0, name


def test_another_storys_candidate_needs_a_meaning_floor_to_be_listed() -> None:
    pool = [
        candidate(same_story=True, meaning=0.1),
        candidate(same_story=False, meaning=pairs.OTHER_STORY_MEANING - 0.01),
        candidate(same_story=False, meaning=pairs.OTHER_STORY_MEANING),
    ]
    assert listable(pool, [0.9, 0.9, 0.9]) == [True, False, True]
    assert listable(pool, [pairs.LIST_FROM - 0.01] * 3) == [False, False, False]
    assert listable(pool, [0.5] * 3, threshold=0.6) == [False, False, False]


def test_the_constants_are_a_whole_fit() -> None:
    size = len(pairs.FEATURES)
    assert len(pairs._MEANS) == len(pairs._SCALES) == size
    assert len(pairs._WEIGHTS) == len(pairs._WORDS_ALONE_WEIGHTS) == size + 1
    assert all(scale > 0 for scale in pairs._SCALES)
    assert set(pairs.FEATURES) >= pairs.MEANING_FEATURES
    assert all(math.isfinite(w) for w in (*pairs._WEIGHTS, *pairs._WORDS_ALONE_WEIGHTS))
