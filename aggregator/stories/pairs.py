"""Is this other outlet's article about the same event as the asked one? A weighed vote over a pool of candidates.

Related coverage of an article with text used to be decided by a chain of hand-set rules (the
story's members close in words or reported within 12 hours, a meaning ratio, a second chance,
mutual nearest stories, a meaning rescue), each calibrated alone. This module weighs the same
evidence at once, for every candidate of one pool (the other outlets' articles of the asked one's
story and of the stories it is near in words; `web.related.pooled_members` builds it):

- what the two mean (word-vector cosine, `meaning`) and the words they share (tf-idf cosine,
  `features`), each also against the best candidate of the pool (how far below the closest, and
  the rank), since what counts as close depends on what else is there;
- how much closer the candidate is to a fellow candidate of another outlet than to the asked
  article: a story's sequel and its own coverage are far closer to each other than to the first
  report;
- the days between them;
- whether story assignment put them in one story, alone and with the two similarities.

The weights are a logistic regression fitted on the calibration half of AllSides
(`bench/related_fit.py`: lead paragraphs spread over hours to days, the same four times denser in
time, among 2,225 unrelated BBC articles, and first sentences; each asked article's pool also as it
would be had no other outlet covered its story, every candidate then a wrong one) and checked on the
held-out half; the constants below are what it printed. A second set, fitted without the meaning
inputs, serves an install without word vectors. A candidate is listed from `LIST_FROM` up, most
likely first; one of another story than the asked article's also needs `OTHER_STORY_MEANING`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = [
    "FEATURES",
    "LIST_FROM",
    "MEANING_FEATURES",
    "OTHER_STORY_MEANING",
    "Candidate",
    "PoolSimilarities",
    "listable",
    "pool_similarities",
    "same_event",
]


@dataclass(frozen=True)
class Candidate:
    """What is known of one candidate against the asked article."""

    #: Cosine of the two articles' meanings (0 when either is unknown).
    meaning: float
    #: Cosine of the two articles' tf-idf vectors.
    words: float
    #: Hours between their publications (absolute).
    hours: float
    #: True when story assignment put the candidate in the asked article's story.
    same_story: bool
    #: True when the candidate has text (12 words or more), not a headline alone.
    has_text: bool
    #: The candidate's closest meaning and words to another candidate of another outlet (0 when none):
    #: an article much closer to a fellow than to the asked one covers the fellow's event.
    fellow_meaning: float = 0.0
    fellow_words: float = 0.0


#: Names of the inputs, in the order of `_WEIGHTS` (the bench prints its fit in this order).
FEATURES = (
    "meaning",
    "words",
    "sqrt_words",
    "days",
    "days_squared",
    "same_story",
    "meaning_below_best",
    "words_below_best",
    "meaning_rank",
    "words_rank",
    "same_story_x_words",
    "same_story_x_meaning",
    "has_text",
    "meaning_over_fellow",
    "words_over_fellow",
)

# Fitted by bench/related_fit.py (logistic regression, L2 1.0, inputs standardized by the means and
# scales below); the last weight is the intercept.
_MEANS = (
    0.37535,
    0.146756,
    0.341795,
    1.09813,
    1.8965,
    0.285746,
    -0.241824,
    -0.188467,
    0.333108,
    0.333108,
    0.0891139,
    0.167989,
    1,
    -0.294143,
    -0.249098,
)
_SCALES = (
    0.21296,
    0.144798,
    0.17301,
    0.831022,
    2.30316,
    0.451769,
    0.210215,
    0.177888,
    0.298935,
    0.298935,
    0.166165,
    0.280145,
    1,
    0.241419,
    0.204483,
)
_WORDS_ALONE_WEIGHTS = (
    0,
    1.0158,
    0.669437,
    -2.69676,
    0.891583,
    0.0380741,
    0,
    0.493449,
    0,
    0.136378,
    -0.286565,
    0,
    0,
    0,
    1.30258,
    -4.3884,
)
_WEIGHTS = (
    0.74355,
    0.889672,
    -0.0322108,
    -2.56518,
    0.758705,
    0.524842,
    0.423164,
    0.129576,
    0.247017,
    0.0541101,
    0.361743,
    -1.01864,
    0,
    0.556522,
    0.979539,
    -4.70971,
)

#: The inputs that read meaning: without word vectors (a broken install) `_WORDS_ALONE_WEIGHTS` leave them out.
MEANING_FEATURES = frozenset(
    ("meaning", "meaning_below_best", "meaning_rank", "same_story_x_meaning", "meaning_over_fellow")
)

#: Smallest probability listed (a stored article's; `web.related.STRANGER_LIST_FROM` for an embedding page's).
#: Chosen on AllSides' calibration half through the API (bench/related_quality.py --rounds 10): 0.3 gave by
#: entry R@5 .908, P@5 .925, Hit@1 .932, and showed something for 8.3% of the articles stored with no other
#: outlet's coverage; 0.2 gave .926, .896, .943 and 12.0%, the precision of the rules it replaced (.896, which
#: showed something for 27.8% of those articles). 0.4 and up lost recall fast (bench/related_fit.py).
LIST_FROM = 0.2
#: A candidate of another story than the asked article's is listed only from this meaning similarity up.
#: The labelled sets hold few articles of one place or one company on different events a few hours apart
#: (sharing names and little else), and the fit learned from them that the only candidate of a sparse pool
#: is usually right: bench/written_stories.py (a harbour's extension, a ferry company's results) showed it
#: listing such neighbours at meaning 0.22. 0.3 keeps them out; 0.4, the meaning rescue's old floor, cost
#: five points of held-out recall where 0.3 cost two (bench/related_fit.py --floor).
OTHER_STORY_MEANING = 0.3


def inputs(pool: Sequence[Candidate]) -> list[list[float]]:
    """Return each candidate's inputs (`FEATURES`), relative ones taken against the whole pool."""
    if not pool:
        return []
    best_meaning = max(c.meaning for c in pool)
    best_words = max(c.words for c in pool)
    meaning_order = _ranks([c.meaning for c in pool])
    words_order = _ranks([c.words for c in pool])
    rows = []
    for c, meaning_rank, words_rank in zip(pool, meaning_order, words_order, strict=True):
        days = c.hours / 24.0
        same = 1.0 if c.same_story else 0.0
        rows.append(
            [
                c.meaning,
                c.words,
                math.sqrt(max(c.words, 0.0)),
                days,
                days * days,
                same,
                c.meaning - best_meaning,
                c.words - best_words,
                1.0 / (1.0 + meaning_rank),
                1.0 / (1.0 + words_rank),
                same * c.words,
                same * c.meaning,
                1.0 if c.has_text else 0.0,
                c.meaning - c.fellow_meaning,
                c.words - c.fellow_words,
            ]
        )
    return rows


def same_event(
    pool: Sequence[Candidate],
    *,
    meaning_known: bool = True,
    means: Sequence[float] = _MEANS,
    scales: Sequence[float] = _SCALES,
) -> list[float]:
    """Return each candidate's probability of covering the asked article's event, in the pool's order; with
    ``meaning_known`` False (no word vectors), by the weights fitted without the meaning inputs."""
    weights = _WEIGHTS if meaning_known else _WORDS_ALONE_WEIGHTS
    out = []
    for row in inputs(pool):
        z = weights[-1] + math.fsum(w * (x - m) / s for w, x, m, s in zip(weights, row, means, scales, strict=False))
        out.append(1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0)
    return out


def listable(
    pool: Sequence[Candidate],
    probabilities: Sequence[float],
    *,
    threshold: float = LIST_FROM,
    other_story_meaning: float = OTHER_STORY_MEANING,
) -> list[bool]:
    """Return, for each candidate, whether it is listed: from ``threshold`` up, and from ``other_story_meaning``
    up in meaning when story assignment did not put it in the asked article's story."""
    return [
        p >= threshold and (c.same_story or c.meaning >= other_story_meaning)
        for c, p in zip(pool, probabilities, strict=True)
    ]


class PoolSimilarities(NamedTuple):
    """The kept candidates' similarities: to the asked article, and to their closest fellow of another outlet."""

    #: Indices (in the pool as given, the asked article not counted) of the candidates kept, in order.
    kept: tuple[int, ...]
    meaning: npt.NDArray[np.float64]
    words: npt.NDArray[np.float64]
    fellow_meaning: npt.NDArray[np.float64]
    fellow_words: npt.NDArray[np.float64]


def pool_similarities(
    meanings: Sequence[npt.NDArray[np.float32] | None],
    vectors: Sequence[Mapping[str, float]],
    outlets: Sequence[str],
    *,
    copy_words: float | None = None,
) -> PoolSimilarities:
    """Return the similarities of a pool whose first member is the asked article: meaning cosine (0 when either
    meaning is unknown) and tf-idf cosine of every candidate to it, and each candidate's largest of both to
    another candidate of another outlet (0 when there is none). With ``copy_words``, candidates of that word
    cosine to the asked article or more (copies of its text) are left out, as candidates and as fellows. All
    pairs at once, as matrix products (a pool of 80 is 3,160 pairs)."""
    columns: dict[str, int] = {}
    for vector in vectors:
        for term in vector:
            columns.setdefault(term, len(columns))
    words = np.zeros((len(vectors), max(len(columns), 1)))
    for row, vector in enumerate(vectors):
        for term, weight in vector.items():
            words[row, columns[term]] = weight
    width = next((m.shape[0] for m in meanings if m is not None), 1)
    meaning = np.stack([m if m is not None else np.zeros(width, dtype=np.float32) for m in meanings]).astype(np.float64)
    by_words = words @ words.T
    by_meaning = meaning @ meaning.T
    kept = [k for k in range(1, len(vectors)) if copy_words is None or by_words[0, k] < copy_words]
    # Fellows: the kept candidates (not the asked article, row and column 0) of other outlets than each other.
    among = np.zeros(len(vectors), dtype=bool)
    among[kept] = True
    apart = np.array([[a != b for b in outlets] for a in outlets], dtype=bool) & among[:, None] & among[None, :]
    fellow_words = np.where(apart, by_words, 0.0).max(axis=1)[kept]
    fellow_meaning = np.where(apart, by_meaning, 0.0).max(axis=1)[kept]
    return PoolSimilarities(
        kept=tuple(k - 1 for k in kept),
        meaning=by_meaning[0, kept],
        words=by_words[0, kept],
        fellow_meaning=np.maximum(fellow_meaning, 0.0),
        fellow_words=np.maximum(fellow_words, 0.0),
    )


def _ranks(values: Sequence[float]) -> list[int]:
    # 0 for the largest; ties share the better rank (the first in order keeps it too, deterministically).
    order = sorted(range(len(values)), key=lambda i: (-values[i], i))
    ranks = [0] * len(values)
    for position, index in enumerate(order):
        ranks[index] = position
    return ranks
