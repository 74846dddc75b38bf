"""Story clustering quality and speed on labelled stories, calibrated on one part, reported on the other.

    .venv/bin/python bench/stories_quality.py [--calibrate] [--json FILE] [--uci-limit N]

Data (skipped cleanly when ../shared/corpus is absent):
- ../shared/corpus/stories/uci-news-aggregator-dev.tsv.gz: headlines only, STORY ids from an aggregator;
- ../shared/corpus/stories/allsides-roundups-dev.jsonl.gz: a left, a center and a right outlet's lead
  paragraphs on one story, worded very differently;
- ../shared/seed/story-feed.xml: one outlet's full-text article, fed with our own rewrites of the same
  event by other outlets 2 to 30 hours later (tests/fixtures/stories/) and same-week Iraq/Iran stories
  that are not the same story.

Stories are split by a hash of their id: half calibrate (`--calibrate` grid-searches the few constants
there and prints the best), half are held out and only measured. Arrival: "spread" spreads each
story's members over 2 to 72 hours (log-uniform per story) and interleaves all stories in time order;
"as published" keeps the corpus times (UCI: a story's rows within seconds). AllSides "dense" packs the
stories' dates twelve times closer (more stories open at once, a harder test of abstention);
"mixed" gives a third of the articles as headline only.

Figures: B-cubed precision/recall/F1, pairwise F1, the share of stories whose members all land in one
story ("whole"), the false-merge rate (share of predicted stories of 2+ articles that mix labelled
stories) and articles per second of CPU time (process time: the machine is shared, wall time would
measure the neighbours). Baselines measured in the same run: the current related-coverage rule as a
clusterer (join the story of the nearest earlier article when cosine x e^(-hours/6) >= 0.25) and a
plain single-pass tf-idf centroid clusterer (one threshold, calibrated on the same split).
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import math
import random
import sys
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from aggregator.stories import (  # noqa: E402
    FeatureSettings,
    MemoryStoryStore,
    StoryArticle,
    StoryAssigner,
    StorySettings,
)
from aggregator.stories.features import term_weights, unit_vector  # noqa: E402
from aggregator.stories.state import StoryState, TermIndex, in_window  # noqa: E402
from bench.story_data import (  # noqa: E402
    ALLSIDES,
    BBC,
    SHARED,
    UCI,
    Item,
    as_fed,
    as_published,
    headlines_for_a_third,
    read_allsides,
    read_bbc_article,
    read_uci,
    split,
    spread,
)

SEED_FEED = SHARED / "seed" / "story-feed.xml"
SEED_FIXTURES = REPO / "tests" / "fixtures" / "stories" / "seed_rewrites.json"
BATCH = 200


# ---------------------------------------------------------------- metrics


@dataclass(frozen=True)
class Scores:
    """Clustering figures against the labels."""

    precision: float
    recall: float
    f1: float
    pair_f1: float
    whole: float
    false_merge: float
    rate: float

    def line(self, name: str) -> str:
        """Return the figures as one report line."""
        return (
            f"  {name:<34} B3 P={self.precision:.3f} R={self.recall:.3f} F1={self.f1:.3f}  pairF1={self.pair_f1:.3f}  "
            f"whole={self.whole:.1%}  false-merge={self.false_merge:.1%}  {self.rate:,.0f} art/CPU-s"
        )


def evaluate(items: Sequence[Item], predicted: dict[str, str], seconds: float) -> Scores:
    """Return B-cubed and pairwise figures of ``predicted`` (article id -> story) against the labels."""
    pairs = Counter((predicted[i.id], i.story) for i in items)
    pred_sizes = Counter(predicted[i.id] for i in items)
    gold_sizes = Counter(i.story for i in items)
    n = len(items)
    precision = sum(c * c / pred_sizes[p] for (p, _), c in pairs.items()) / n
    recall = sum(c * c / gold_sizes[g] for (_, g), c in pairs.items()) / n
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    true_pairs = sum(c * (c - 1) / 2 for c in pairs.values())
    pred_pairs = sum(c * (c - 1) / 2 for c in pred_sizes.values())
    gold_pairs = sum(c * (c - 1) / 2 for c in gold_sizes.values())
    pp = true_pairs / pred_pairs if pred_pairs else 1.0
    pr = true_pairs / gold_pairs if gold_pairs else 1.0
    pair_f1 = 2 * pp * pr / (pp + pr) if pp + pr else 0.0
    labels_of: dict[str, set[str]] = defaultdict(set)
    stories_of: dict[str, set[str]] = defaultdict(set)
    for (p, g), _ in pairs.items():
        labels_of[p].add(g)
        stories_of[g].add(p)
    multi = [g for g, size in gold_sizes.items() if size > 1]
    whole = sum(1 for g in multi if len(stories_of[g]) == 1) / max(len(multi), 1)
    joined = [p for p, size in pred_sizes.items() if size > 1]
    false_merge = sum(1 for p in joined if len(labels_of[p]) > 1) / max(len(joined), 1)
    return Scores(precision, recall, f1, pair_f1, whole, false_merge, n / seconds if seconds else 0.0)


def label_twins(items: Sequence[Item], settings: StorySettings) -> tuple[float, float, float]:
    """Return the share of labelled stories (and of their articles) that have a "twin": another labelled
    story starting within 3 days whose whole-story centroid has cosine >= 0.5 with theirs; and the B-cubed
    precision of the labels with every twin pair merged (and nothing else wrong). No text-based clusterer
    can keep twins apart; they bound the precision the labels allow."""
    frequencies: Counter[str] = Counter()
    weights = {}
    for item in items:
        weights[item.id] = term_weights(item.title, item.text, "en", settings.features)
        frequencies.update(weights[item.id].keys())
    members: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        members[item.story].append(item)
    centroids: dict[str, tuple[dict[str, float], float]] = {}
    for story, group in members.items():
        total: Counter[str] = Counter()
        for item in group:
            total.update(unit_vector(weights[item.id], frequencies.__getitem__, len(items), settings.features))
        top = dict(total.most_common(60))
        norm = math.sqrt(sum(w * w for w in top.values())) or 1.0
        centroids[story] = ({t: w / norm for t, w in top.items()}, min(i.published_at for i in group).timestamp())
    ordered = sorted(centroids, key=lambda s: centroids[s][1])
    twins = set()
    joined = {story: story for story in centroids}

    def root(story: str) -> str:
        while joined[story] != story:
            joined[story] = joined[joined[story]]
            story = joined[story]
        return story

    for index, story in enumerate(ordered):
        vector, start = centroids[story]
        for other in ordered[index + 1 :]:
            other_vector, other_start = centroids[other]
            if other_start - start > 3 * 86400:
                break
            if sum(w * other_vector.get(t, 0.0) for t, w in vector.items()) >= 0.5:
                twins.update((story, other))
                joined[root(story)] = root(other)
    articles = sum(len(members[s]) for s in twins)
    merged = evaluate(items, {item.id: root(item.story) for item in items}, 0.0).precision
    return len(twins) / max(len(members), 1), articles / max(len(items), 1), merged


def time_spread_within_labels(items: Sequence[Item]) -> tuple[float, float]:
    """Return the median and 90th percentile, in seconds, of the time between a labelled story's first
    and last article (stories of two or more)."""
    times: dict[str, list[float]] = defaultdict(list)
    for item in items:
        times[item.story].append(item.published_at.timestamp())
    spans = sorted(max(t) - min(t) for t in times.values() if len(t) > 1)
    if not spans:
        return 0.0, 0.0
    return spans[len(spans) // 2], spans[int(len(spans) * 0.9)]


# ---------------------------------------------------------------- methods


def articles(items: Sequence[Item]) -> list[StoryArticle]:
    """Return the items as the assigner's input records."""
    return [
        StoryArticle(id=i.id, title=i.title, text=i.text, published_at=i.published_at, outlet=i.outlet, language="en")
        for i in items
    ]


def run_assigner(items: Sequence[Item], settings: StorySettings) -> tuple[dict[str, str], float]:
    """Return (article id -> story, seconds) of the story assigner over the stream, in batches."""
    store = MemoryStoryStore()
    assigner = StoryAssigner(store, settings)
    stream = articles(items)
    started = time.process_time()
    for start in range(0, len(stream), BATCH):
        assigner.assign_many(stream[start : start + BATCH])
    seconds = time.process_time() - started
    return store.members(), seconds


def run_related_rule(items: Sequence[Item]) -> tuple[dict[str, str], float]:
    """Return the clustering the related-coverage rule implies: link to the nearest earlier article
    when cosine x e^(-hours apart / 6) >= 0.25 (its title weight 3, its ~600-character body)."""
    features = FeatureSettings(title_weight=3.0, entity_weight=1.0, body_words=100, article_terms=40)
    window = 7 * 86400.0
    frequencies: Counter[str] = Counter()
    postings: dict[str, deque[int]] = defaultdict(deque)
    vectors: list[dict[str, float]] = []
    times: list[float] = []
    label: dict[str, str] = {}
    labels: list[str] = []
    started = time.process_time()
    for index, item in enumerate(articles(items)):
        weights = term_weights(item.title, item.text, item.language, features)
        frequencies.update(weights.keys())
        vector = unit_vector(weights, frequencies.__getitem__, index + 1, features)
        when = item.published_at.timestamp()
        best, best_score = -1, 0.25
        seen: set[int] = set()
        for term in itertools.islice(vector, 16):
            posting = postings[term]
            while posting and times[posting[0]] < when - window:
                posting.popleft()
            for other in itertools.islice(reversed(posting), 300):
                if other in seen:
                    continue
                seen.add(other)
                candidate = vectors[other]
                dot = sum(w * candidate.get(t, 0.0) for t, w in vector.items())
                score = dot * math.exp(-abs(when - times[other]) / 3600 / 6)
                if score >= best_score:
                    best, best_score = other, score
        story = labels[best] if best >= 0 else item.id
        labels.append(story)
        label[item.id] = story
        vectors.append(vector)
        times.append(when)
        for term in vector:
            postings[term].append(index)
    return label, time.process_time() - started


def plain_settings(threshold: float) -> StorySettings:
    """Return the plain single-pass tf-idf baseline: centroids, one threshold, no boosts, no decay, no merges."""
    return StorySettings(
        features=FeatureSettings(title_weight=1.0, entity_weight=1.0, body_words=120),
        threshold=threshold,
        merge_threshold=2.0,
        min_shared_terms=1,
        quiet_period_hours=7 * 24.0,
        time_floor=1.0,
        headline_threshold=threshold,
        headline_time_scale_hours=0.0,
    )


# ---------------------------------------------------------------- calibration


def calibrate(sets: dict[str, list[Item]]) -> None:
    """Grid-search the assigner's few constants (and the plain baseline's threshold) on calibration sets."""
    # Precision is held on AllSides only: its labels are clean, while UCI's silver labels often split
    # one event into several stories (see the twin figure), so a floor there would reward splitting.
    print("calibration grid (calibration split only); objective: mean B3 F1, B3 P >= 0.90 on the AllSides sets")
    grid = itertools.product((0.2, 0.25, 0.3, 0.35), (1.5, 2.0, 3.0), (1.0, 1.5, 2.0), (0.3, 0.5))
    candidates = [
        (
            f"threshold={t} title_weight={tw} entity_weight={ew} merge_threshold={m}",
            StorySettings(features=FeatureSettings(title_weight=tw, entity_weight=ew), threshold=t, merge_threshold=m),
        )
        for t, tw, ew, m in grid
    ]
    _grid(sets, candidates)
    print("plain tf-idf baseline threshold:")
    _grid(sets, [(f"threshold={t}", plain_settings(t)) for t in (0.2, 0.25, 0.3, 0.35, 0.4, 0.5)])


def calibrate_headlines(sets: dict[str, list[Item]]) -> None:
    """Grid-search how a headline alone is weighed (`StorySettings.headline_time_scale_hours`,
    `headline_threshold`) together with the merge threshold, which decides how far its joins reach."""
    # Precision is held on every set here, UCI's too: the targets ask B-cubed P >= 0.90 on both corpora, and
    # UCI's silver labels split events into twins only within days, which headlines weighed by hours do not reach.
    print(
        "headline and merge grid (calibration split only); 0 hours: a headline's time weighed as an article's; "
        "objective: mean B3 F1, B3 P >= 0.90 on every set"
    )
    _grid(
        sets,
        [
            (
                f"headline_time_scale_hours={hours} headline_threshold={t} merge_threshold={m}",
                StorySettings(headline_time_scale_hours=hours, headline_threshold=t, merge_threshold=m),
            )
            for hours, t, m in itertools.product((0.0, 6.0, 9.0, 12.0), (0.1, 0.12, 0.15, 0.2), (0.2, 0.25, 0.3))
        ],
        held=lambda key: True,
    )


def _grid(
    sets: dict[str, list[Item]],
    candidates: list[tuple[str, StorySettings]],
    held: Callable[[str], bool] = lambda key: key.startswith("allsides"),
) -> None:
    """Print each candidate's figures and the best mean F1 among those with B3 P >= 0.90 on the ``held`` sets."""
    best: tuple[float, str] | None = None
    for name, settings in candidates:
        scores = {key: evaluate(items, *run_assigner(items, settings)) for key, items in sets.items()}
        ok = all(s.precision >= 0.90 for key, s in scores.items() if held(key))
        mean = sum(s.f1 for s in scores.values()) / len(scores)
        figures = "  ".join(f"{k}: P={s.precision:.3f} R={s.recall:.3f} F1={s.f1:.3f}" for k, s in scores.items())
        print(f"  {name:<62} mean F1={mean:.3f}  {figures}  {'' if ok else '(P<0.90)'}", flush=True)
        if ok and (best is None or mean > best[0]):
            best = (mean, name)
    print(f"best: {best}")


# ---------------------------------------------------------------- related stories (story page)


def related_story_links(items: Sequence[Item], settings: StorySettings) -> list[tuple[float, bool, bool, int]]:
    """Return (centroid cosine, same labelled story, same labelled topic, shared terms) of every link a
    story page (a story of 2+ outlets) could show: another story sharing a heavy term within 7 days,
    found as web/stories.py finds them.

    A link between fragments of one labelled story is surely right (the clusterer split it); one
    between UCI stories of different topics (entertainment, health, business and technology, the
    last two taken as one: a company's product is both) is surely wrong; the rest is in between (a
    follow-up, another story on the same subject). AllSides' topics are too fine to tell."""
    from web.stories import RELATED_CANDIDATES, centroid_cosine

    store = MemoryStoryStore()
    assigner = StoryAssigner(store, settings)
    stream = articles(items)
    for start in range(0, len(stream), BATCH):
        assigner.assign_many(stream[start : start + BATCH])
    label = {item.id: (item.story, UCI_TOPICS.get(item.topic, item.topic)) for item in items}
    votes: dict[str, Counter[tuple[str, str]]] = defaultdict(Counter)
    for article_id, story_id in store.members().items():
        votes[story_id][label[article_id]] += 1
    standing = [store.stories[s] for s in votes if store.stories[s].merged_into is None]
    index = TermIndex()
    for story in standing:
        index.put(story)
    by_id = {story.id: story for story in standing}
    window = timedelta(days=7)
    links = []
    for story in standing:

        def near(other: str, story: StoryState = story) -> bool:
            return other != story.id and in_window(by_id[other], story.first_seen - window, story.last_seen + window)

        for other_id in index.ranked(story.centroid, RELATED_CANDIDATES, near):
            (own_story, own_topic), _ = votes[story.id].most_common(1)[0]
            (other_story, other_topic), _ = votes[other_id].most_common(1)[0]
            other = by_id[other_id]
            shared = len(story.centroid.keys() & other.centroid.keys())
            links.append((centroid_cosine(story, other), own_story == other_story, own_topic == other_topic, shared))
    return links


#: UCI's categories as the related-stories check compares them: business and technology are one.
UCI_TOPICS = {"b": "business and technology", "t": "business and technology"}


def related_story_table(name: str, links: Sequence[tuple[float, bool, bool, int]]) -> None:
    """Print, per threshold (alone, then with 2+ shared terms), the links kept and how many join one
    labelled story or cross topics."""
    print(f" {name}: {len(links)} candidate links from stories of 2+ outlets")
    for min_shared in (1, 2):
        for threshold in (0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5):
            kept = [link for link in links if link[0] >= threshold and link[3] >= min_shared]
            same = sum(1 for link in kept if link[1])
            cross = sum(1 for link in kept if not link[2])
            print(
                f"   cosine >= {threshold:<4} shared terms >= {min_shared}  {len(kept):>6} links  "
                f"same labelled story {same / max(len(kept), 1):6.1%}  other labelled topic {cross / max(len(kept), 1):6.1%}"
            )


# ---------------------------------------------------------------- seed story


def seed_check(settings: StorySettings) -> dict[str, Any] | None:
    """Feed the seed article with other outlets' rewrites and same-week stories; return what landed where."""
    if not SEED_FEED.exists() or not SEED_FIXTURES.exists():
        return None
    from aggregator.models import FeedContext
    from aggregator.normalize import normalize_feed
    from aggregator.parse import parse_feed

    parsed = parse_feed(SEED_FEED.read_bytes(), {"content-type": "application/rss+xml"})
    context = FeedContext(
        feed_key="seed",
        feed_url="https://www.algemeiner.com/feed/",
        source_title=parsed.title or "seed",
        site_url="https://www.algemeiner.com",
        fetched_at=datetime(2020, 1, 1, tzinfo=UTC),
    )
    entry = normalize_feed(parsed, context)[0]
    fixtures = json.loads(SEED_FIXTURES.read_text(encoding="utf-8"))
    seed_time = entry.published_at
    stream = [
        StoryArticle(id=entry.id, title=entry.title, text=entry.text, published_at=seed_time, outlet="algemeiner.com"),
        *(
            StoryArticle(
                id=f["id"],
                title=f["title"],
                text=f["text"],
                published_at=seed_time + timedelta(hours=f["hours"]),
                outlet=f["outlet"],
            )
            for f in fixtures["articles"]
        ),
    ]
    stream.sort(key=lambda a: (a.published_at, a.id))
    store = MemoryStoryStore()
    StoryAssigner(store, settings).assign_many(stream)
    members = store.members()
    gold = {entry.id: "embassy", **{f["id"]: f["story"] for f in fixtures["articles"]}}
    seed_story = members[entry.id]
    together = sorted(a.id for a in stream if gold[a.id] == "embassy" and members[a.id] == seed_story)
    intruders = sorted(a.id for a in stream if gold[a.id] != "embassy" and members[a.id] == seed_story)
    wanted = sum(1 for a in stream if gold[a.id] == "embassy")
    return {"embassy_articles": wanted, "with_seed": len(together), "intruders": intruders, "together": together}


# ---------------------------------------------------------------- full-text speed


def full_text_rate(settings: StorySettings, seed: int) -> tuple[int, float, int] | None:
    """Return (articles, articles per CPU second, stories of 2+) assigning the BBC full-text articles over 30 days."""
    if not BBC.exists():
        return None
    rng = random.Random(seed)
    start = datetime(2005, 1, 1, tzinfo=UTC)
    stream = []
    for path in sorted(BBC.glob("*/*.txt")):
        title, body = read_bbc_article(path)
        when = start + timedelta(seconds=rng.uniform(0, 30 * 86400))
        stream.append(StoryArticle(id=str(path.relative_to(BBC)), title=title, text=body, published_at=when))
    stream.sort(key=lambda a: (a.published_at, a.id))
    store = MemoryStoryStore()
    assigner = StoryAssigner(store, settings)
    started = time.process_time()
    for index in range(0, len(stream), BATCH):
        assigner.assign_many(stream[index : index + BATCH])
    seconds = time.process_time() - started
    sizes = Counter(store.members().values())
    return len(stream), len(stream) / seconds, sum(1 for size in sizes.values() if size > 1)


# ---------------------------------------------------------------- main


def main() -> int:
    """Run the benchmark; return 0 (also when the corpus is absent: the bench is skipped)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calibrate", action="store_true", help="grid-search constants on the calibration split")
    parser.add_argument(
        "--calibrate-headlines",
        action="store_true",
        help="only the grid of how a headline alone is weighed, with the merge threshold",
    )
    parser.add_argument(
        "--related-stories", action="store_true", help="measure the story page's related-stories threshold"
    )
    parser.add_argument("--uci-limit", type=int, default=None, help="read only the first N UCI rows")
    parser.add_argument("--uci-path", type=Path, default=UCI, help="UCI-format headlines (.tsv.gz) to read")
    parser.add_argument(
        "--allsides-path", type=Path, default=ALLSIDES, help="AllSides-format roundups (.jsonl.gz) to read"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    missing = [str(path) for path in (args.uci_path, args.allsides_path) if not path.exists()]
    if missing:
        print(f"stories_quality: skipped, {', '.join(missing)} absent")
        return 0
    uci_cal, uci_held = split(read_uci(args.uci_path, args.uci_limit))
    all_cal, all_held = split(read_allsides(args.allsides_path))
    print(
        f"UCI: {len(uci_cal)} calibration / {len(uci_held)} held-out headlines; "
        f"AllSides: {len(all_cal)} / {len(all_held)} lead paragraphs"
    )
    if args.calibrate or args.calibrate_headlines:
        # UCI calibration runs on its first 20 days (same density, an eighth of the time).
        horizon = min(i.published_at for i in uci_cal) + timedelta(days=20)
        uci_days = [i for i in uci_cal if i.published_at < horizon]
        uci = spread(uci_days, args.seed)
        allsides = spread(all_cal, args.seed)
        mixed_dense = headlines_for_a_third(spread(all_cal, args.seed, squeeze=4), args.seed)
        if args.calibrate:
            calibrate({"uci": uci, "allsides": allsides, "allsides-mixed-dense": mixed_dense})
        calibrate_headlines(
            {
                "uci": uci,
                "uci-as-published": as_published(uci_days),
                "allsides-headlines": as_fed(allsides, "headline", args.seed),
                "allsides-mixed-dense": mixed_dense,
            }
        )
        return 0

    if args.related_stories:
        for part, uci, allsides in (("calibration", uci_cal, all_cal), ("held-out", uci_held, all_held)):
            print(f"\n== {part}: related stories of the story page (web/stories.py RELATED_STORY_SIMILARITY)")
            related_story_table("UCI headlines, spread", related_story_links(spread(uci, args.seed), StorySettings()))
            related_story_table("AllSides, spread", related_story_links(spread(allsides, args.seed), StorySettings()))
        return 0

    settings = StorySettings()
    plain = plain_settings(PLAIN_THRESHOLD)
    report: dict[str, Any] = {"settings": repr(settings), "plain_threshold": PLAIN_THRESHOLD}
    for part, uci, allsides in (("calibration", uci_cal, all_cal), ("held-out", uci_held, all_held)):
        print(f"\n== {part}")
        runs = {
            "UCI headlines, spread 2-72 h": spread(uci, args.seed),
            "UCI headlines, as published": as_published(uci),
            "AllSides leads, spread": spread(allsides, args.seed),
            # A half holds half the file's stories over the same months: 2x denser is the file's density.
            "AllSides leads, spread, 2x denser": spread(allsides, args.seed, squeeze=2),
            "AllSides leads, spread, 4x denser": spread(allsides, args.seed, squeeze=4),
            "AllSides 1/3 headline-only, 4x denser": headlines_for_a_third(
                spread(allsides, args.seed, squeeze=4), args.seed
            ),
            "AllSides first sentences, spread": as_fed(spread(allsides, args.seed), "summary", args.seed),
            "AllSides headlines only, spread": as_fed(spread(allsides, args.seed), "headline", args.seed),
        }
        stories, shares, merged = label_twins(uci, settings)
        print(
            f" UCI labels: {stories:.0%} of the labelled stories ({shares:.0%} of headlines) have a twin story "
            f"within 3 days with centroid cosine >= 0.5 (the labels split one event; a ceiling on precision): "
            f"the labels with their twins merged score B3 P={merged:.3f}"
        )
        report[f"{part}: UCI twin share"] = {"stories": stories, "articles": shares, "merged_precision": merged}
        for name, stream in runs.items():
            print(f" {name} ({len(stream)} articles, {len({i.story for i in stream})} stories)")
            figures = {
                "stories": evaluate(stream, *run_assigner(stream, settings)),
                "plain tf-idf single pass": evaluate(stream, *run_assigner(stream, plain)),
                "related rule (cos x e^-h/6 >= .25)": evaluate(stream, *run_related_rule(stream)),
            }
            for method, scores in figures.items():
                print(scores.line(method), flush=True)
            report[f"{part}: {name}"] = {k: vars(v) for k, v in figures.items()}
    # Each half holds half the file's stories over the same weeks: half its density, and the labels'
    # twins (one event filed as two stories) mostly split between the halves. A test file of the same
    # size has both, so the whole file is shown too (calibrated on one half of it: not a held-out figure).
    print("\n== whole file (both halves: the file's density, labelled twins together)")
    uci_all, allsides_all = uci_cal + uci_held, all_cal + all_held
    stories, shares, merged = label_twins(uci_all, settings)
    median, p90 = time_spread_within_labels(uci_all)
    print(
        f" UCI labels: {stories:.0%} of the labelled stories have a twin; with their twins merged B3 P={merged:.3f}. "
        f"A labelled story's headlines carry one time (first to last: median {median:.0f} s, 90th percentile "
        f"{p90:.0f} s), so as published, time alone tells twins apart"
    )
    report["whole file: UCI twins"] = {"stories": stories, "articles": shares, "merged_precision": merged}
    report["whole file: UCI seconds within a story"] = {"median": median, "p90": p90}
    for name, stream in {
        "UCI headlines, as published": as_published(uci_all),
        "UCI headlines, spread 2-72 h": spread(uci_all, args.seed),
        "AllSides leads, spread": spread(allsides_all, args.seed),
        "AllSides first sentences, spread": as_fed(spread(allsides_all, args.seed), "summary", args.seed),
    }.items():
        print(f" {name} ({len(stream)} articles, {len({i.story for i in stream})} stories)")
        scores = evaluate(stream, *run_assigner(stream, settings))
        print(scores.line("stories"), flush=True)
        report[f"whole file: {name}"] = {"stories": vars(scores)}
    seed = seed_check(settings)
    if seed is not None:
        print(
            f"\nseed story: {seed['with_seed']}/{seed['embassy_articles']} embassy articles with the seed "
            f"article; intruders: {seed['intruders'] or 'none'}"
        )
        report["seed"] = seed
    speed = full_text_rate(settings, args.seed)
    if speed is not None:
        count, rate, multi = speed
        print(
            f"full text (BBC, {count} articles over 30 days, unlabelled): {rate:,.0f} articles per CPU second; "
            f"{multi} stories of 2+"
        )
        report["full_text_rate"] = rate
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return 0


#: The plain baseline's threshold, chosen by --calibrate on the calibration split.
PLAIN_THRESHOLD = 0.25

Runner = Callable[[Sequence[Item]], tuple[dict[str, str], float]]

if __name__ == "__main__":
    sys.stdout = io.TextIOWrapper(sys.stdout.buffer, line_buffering=True)
    raise SystemExit(main())
