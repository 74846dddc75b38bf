"""Fit the weights of `aggregator.stories.pairs` (same event or not) on the calibration half, check them on the held-out one.

For every AllSides article with text, its pool is what related coverage weighs (`web.related.pooled_members`):
the other outlets' articles of its story (as the writer assigns them, in arrival order) and of the
four stories it is near in words under a loose rule (a score of 0.03, one shared term) within 72
hours. Each (article, candidate) pair gets `pairs.inputs` and a label (same AllSides story or not).
Each pool is also taken as it would be had no other outlet covered the article's story (its story's
candidates removed, the rest all wrong): an article alone must get nothing. The configurations mix
what a store looks like: lead paragraphs spread over 2-72 hours (`story_data.spread`), the same four
times denser in time, among 2,225 unrelated BBC articles, and first sentences. A logistic regression
(L2 1.0, inputs standardized) is fitted on the calibration half of all of them at once, and a second
one without the meaning inputs (an install without word vectors); the held-out half is only measured:
answers are the candidates from a probability up (`pairs.listable`), most likely first, one per
outlet, at most five, scored as bench/related_quality.py scores answers by entry (R@5, P@5, Hit@1,
empty where coverage exists), and "shown when alone": the share of lone pools that list anything.
The figures through the API, with everything else related coverage does, come from
bench/related_quality.py; these are for choosing.

    .venv/bin/python bench/related_fit.py            # fit, print the constants and the held-out figures
    .venv/bin/python bench/related_fit.py --check    # measure the constants in pairs.py instead of fitting
    .venv/bin/python bench/related_fit.py --check --floor 0.4   # another OTHER_STORY_MEANING

Skips (exit 0) when ../shared is absent. About fifteen seconds.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from story_data import ALLSIDES, BACKGROUND_OUTLET, Item, as_fed, background, held_out, read_allsides, spread

from aggregator.stories import pairs
from aggregator.stories.cluster import StoryAssigner
from aggregator.stories.features import StoryArticle, headline_alone
from aggregator.stories.meaning import meaning_text, shared_embedder
from aggregator.stories.state import MemoryStoryStore

WINDOW_HOURS = 72.0
NEAR_STORIES = 4
NEAR_THRESHOLD = 0.03
THRESHOLDS = (0.15, 0.2, 0.25, 0.3, 0.4, 0.5)


@dataclass
class Pool:
    """One asked article's candidates, their inputs and labels."""

    query: int
    candidates: list[int]
    rows: list[list[float]]
    labels: list[bool]
    #: True for the pool as it would be if no other outlet had covered the article's story.
    alone: bool = False


@dataclass
class Setting:
    """One configuration's articles and pools."""

    name: str
    items: list[Item]
    pools: list[Pool]


def candidates_of(q, candidates, items, meanings, vectors, hours, story_of, words_per_item) -> list[pairs.Candidate]:
    """Return what `pairs` knows of each candidate against article ``q``, fellows taken among ``candidates``."""
    similar = pairs.pool_similarities(
        [meanings[q], *(meanings[c] for c in candidates)],
        [vectors[q], *(vectors[c] for c in candidates)],
        ["", *(items[c].outlet for c in candidates)],
    )
    own = story_of[items[q].id]
    return [
        pairs.Candidate(
            meaning=float(similar.meaning[k]),
            words=float(similar.words[k]),
            hours=abs(hours[c] - hours[q]),
            same_story=story_of[items[c].id] == own,
            has_text=words_per_item[c],
            fellow_meaning=float(similar.fellow_meaning[k]),
            fellow_words=float(similar.fellow_words[k]),
        )
        for k, c in enumerate(candidates)
    ]


def build(name: str, items: list[Item]) -> Setting:
    store = MemoryStoryStore(retain_seconds=1e12)
    assigner = StoryAssigner(store)
    articles = [
        StoryArticle(id=i.id, title=i.title, published_at=i.published_at, text=i.text, outlet=i.outlet, language="en")
        for i in items
    ]
    story_of = {a.id: assigner.assign(a).story_id for a in articles}
    story_of = {k: store.resolve(v) for k, v in story_of.items()}
    members: dict[str, list[int]] = defaultdict(list)
    for k, item in enumerate(items):
        members[story_of[item.id]].append(k)
    vectors = assigner.vectors(articles)
    embedder = shared_embedder()
    if embedder is None:
        raise SystemExit("word vectors missing: install the project first")
    meanings = embedder.vectors([meaning_text(i.title, i.text) for i in items])
    hours = np.array([i.published_at.timestamp() / 3600.0 for i in items])
    words_per_item = [not headline_alone(i.text, 12) for i in items]
    pools = []
    for q, item in enumerate(items):
        if item.outlet == BACKGROUND_OUTLET or not words_per_item[q]:
            continue
        own = story_of[item.id]
        chosen = {c for c in members[own]}
        for match in assigner.nearby(
            articles[q], limit=NEAR_STORIES, threshold=NEAR_THRESHOLD, min_shared=1, exclude=own
        ):
            chosen.update(c for c in members[match.story.id] if abs(hours[c] - hours[q]) <= WINDOW_HOURS)
        candidates = sorted(c for c in chosen if items[c].outlet != item.outlet)
        if not candidates:
            continue
        pool = candidates_of(q, candidates, items, meanings, vectors, hours, story_of, words_per_item)
        pools.append(Pool(q, candidates, pairs.inputs(pool), [items[c].story == item.story for c in candidates]))
        # The same article had nobody else covered its story: what remains must not be listed.
        kept = [k for k, c in enumerate(candidates) if items[c].story != item.story]
        if kept:
            rest = candidates_of(
                q, [candidates[k] for k in kept], items, meanings, vectors, hours, story_of, words_per_item
            )
            pools.append(Pool(q, [candidates[k] for k in kept], pairs.inputs(rest), [False] * len(kept), alone=True))
    return Setting(name, items, pools)


def fit(x: np.ndarray, y: np.ndarray, l2: float = 1.0) -> np.ndarray:
    w = np.zeros(x.shape[1])
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        gradient = x.T @ (p - y) + l2 * np.r_[w[:-1], 0.0]
        hessian = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.diag(np.r_[np.ones(len(w) - 1), 0.0])
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return w


def measure(
    setting: Setting, weights, means, scales, threshold: float, calibration: bool, floor: float
) -> tuple[float, ...]:
    items = setting.items
    outlets_of_story: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for item in items:
        outlets_of_story[item.story][item.outlet].add(item.id)
    pools = {p.query: p for p in setting.pools if not p.alone}
    recall, precision, hits, empty = [], [], [], []
    for q, item in enumerate(items):
        if item.outlet == BACKGROUND_OUTLET or held_out(item.story) == calibration:
            continue
        if headline_alone(item.text, 12):
            continue
        coverage = {o for o in outlets_of_story[item.story] if o != item.outlet}
        if not coverage:
            continue
        pool = pools.get(q)
        answer: list[int] = []
        if pool is not None:
            z = np.array(pool.rows) - means
            z = z / scales
            p = 1.0 / (1.0 + np.exp(-(z @ weights[:-1] + weights[-1])))
            seen: set[str] = set()
            for k in np.argsort(-p, kind="stable"):
                c = pool.candidates[k]
                if p[k] < threshold or items[c].outlet in seen or not (pool.rows[k][5] or pool.rows[k][0] >= floor):
                    continue
                seen.add(items[c].outlet)
                answer.append(c)
                if len(answer) == 5:
                    break
        right = [c for c in answer if items[c].story == item.story]
        recall.append(len({items[c].outlet for c in right}) / min(5, len(coverage)))
        if answer:
            precision.append(len(right) / len(answer))
        hits.append(bool(answer) and items[answer[0]].story == item.story)
        empty.append(not answer)
    shown_alone = []
    for pool in setting.pools:
        if not pool.alone or held_out(items[pool.query].story) == calibration:
            continue
        z = (np.array(pool.rows) - means) / scales
        p = 1.0 / (1.0 + np.exp(-(z @ weights[:-1] + weights[-1])))
        rows = pool.rows
        shown_alone.append(any(p[k] >= threshold and (rows[k][5] or rows[k][0] >= floor) for k in range(len(p))))
    return (
        float(np.mean(recall)),
        float(np.mean(precision)),
        float(np.mean(hits)),
        float(np.mean(empty)),
        len(recall),
        float(np.mean(shown_alone)),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="measure the constants in pairs.py, do not fit")
    parser.add_argument("--seed", type=int, default=2014)
    parser.add_argument(
        "--floor",
        type=float,
        default=pairs.OTHER_STORY_MEANING,
        help="meaning a candidate of another story needs (pairs.OTHER_STORY_MEANING)",
    )
    args = parser.parse_args()
    if not ALLSIDES.exists():
        print(f"skipped: {ALLSIDES} not found (../shared is not beside the project)")
        return 0
    base = read_allsides()
    seed = args.seed
    lead = spread(base, seed)
    settings = [
        build("lead paragraphs", lead),
        build("4x denser", spread(base, seed, squeeze=4.0)),
        build("among 2,225 BBC", sorted(lead + background(lead, 2225, seed), key=lambda m: (m.published_at, m.id))),
        build("first sentences", as_fed(lead, "summary", seed)),
    ]
    rows = np.array([row for s in settings for p in s.pools for row in p.rows])
    labels = np.array([label for s in settings for p in s.pools for label in p.labels], dtype=float)
    part = np.array(
        [not held_out(s.items[p.query].story) for s in settings for p in s.pools for _ in p.rows], dtype=bool
    )
    if args.check:
        means, scales = np.array(pairs._MEANS), np.array(pairs._SCALES)
        weights = np.array(pairs._WEIGHTS)
    else:
        means = rows[part].mean(axis=0)
        scales = rows[part].std(axis=0)
        scales[scales == 0] = 1.0
        x = np.hstack([(rows - means) / scales, np.ones((len(rows), 1))])
        weights = fit(x[part], labels[part])
        # Without word vectors (a broken install) every meaning input is unknown: a second fit leaves them out.
        blind = np.array([0.0 if name in pairs.MEANING_FEATURES else 1.0 for name in pairs.FEATURES] + [1.0])
        keep = blind > 0
        words_alone = np.zeros_like(weights)
        words_alone[keep] = fit(x[part][:, keep], labels[part])
        print(
            f"{int(part.sum())} calibration pairs ({int(labels[part].sum())} same event), {int((~part).sum())} held out"
        )
        for name, w in zip((*pairs.FEATURES, "intercept"), weights, strict=True):
            print(f"  {name:24s} {w:+.3f}")
        print("_MEANS = (" + ", ".join(f"{m:.6g}" for m in means) + ",)")
        print("_SCALES = (" + ", ".join(f"{s:.6g}" for s in scales) + ",)")
        print("_WORDS_ALONE_WEIGHTS = (" + ", ".join(f"{w:.6g}" for w in words_alone) + ",)")
        print("_WEIGHTS = (" + ", ".join(f"{w:.6g}" for w in weights) + ",)")
    print("\nby entry, answers from the pool: R@5 / P@5 / Hit@1 / empty / shown when alone")
    for threshold in THRESHOLDS:
        print(f"from {threshold}:")
        for s in settings:
            cal = measure(s, weights, means, scales, threshold, True, args.floor)
            out = measure(s, weights, means, scales, threshold, False, args.floor)
            print(
                f"  {s.name:18s} calibration {cal[0]:.3f} / {cal[1]:.3f} / {cal[2]:.3f} / {cal[3]:.1%} / {cal[5]:.1%}"
                f"   held-out {out[0]:.3f} / {out[1]:.3f} / {out[2]:.3f} / {out[3]:.1%} / {out[5]:.1%}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
