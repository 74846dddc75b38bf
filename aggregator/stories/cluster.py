"""Online story assignment: each arriving article joins the story it matches, or founds a new one.

The algorithm, one article at a time (deterministic for a given arrival order):

1. The article's title and lead become a unit tf-idf vector (`features`); the document
   frequencies are learned as articles arrive and kept by the store.
2. Candidate stories come from the store's inverted index of story centroid terms, limited to
   stories still open at the article's time (last reported less than the quiet period before).
3. Each candidate scores cosine(article, centroid) x a gentle time factor (1 inside the story's
   span, falling linearly to `time_floor` at the end of the quiet period). The article joins the
   best one scoring at least `threshold` and sharing `min_shared_terms` terms; otherwise it
   abstains and founds a story of one, which is what "show nothing rather than junk" needs.
   A headline alone must be closer in time (its weight falls over `headline_time_scale_hours`)
   and may be looser in words (`headline_threshold`): its few words share two terms with many
   stories, and time is then the better evidence.
4. A story's centroid is the sum of its members' vectors, cut to its heaviest terms: the words
   the outlets share grow, each outlet's own wording fades, so coverage worded differently still
   lands on the core names and numbers.
5. When the article also matches a second story and the two centroids agree (cosine at least
   `merge_threshold`), the stories were one all along: the smaller is merged into the larger and
   its id recorded as an alias, so an id once shown keeps working.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from operator import mul
from types import MappingProxyType
from typing import cast

from ..kept import Kept
from .features import FeatureSettings, StoryArticle, headline_alone, heaviest_first, term_weights, unit_vector
from .state import StoryChanges, StoryState, StoryStore, story_id_for

__all__ = [
    "TERM_WEIGHTS_KEPT",
    "Assignment",
    "StoryAssigner",
    "StoryMatch",
    "StorySettings",
    "cached_term_weights",
    "forget_term_weights",
    "keep_term_weights",
    "term_weights_kept",
]


@dataclass(frozen=True)
class StorySettings:
    """Knobs of story assignment; the defaults are what bench/stories_quality.py --calibrate chose."""

    #: How articles are turned into vectors.
    features: FeatureSettings = field(default_factory=FeatureSettings)
    #: Smallest time-weighted cosine to the story's centroid that joins an article to it.
    threshold: float = 0.2
    #: Cosine between two stories' centroids above which an article matching both merges them. 0.3 from
    #: the first grid (0.3 or 0.5); with headlines weighed by time (below), 0.25 joins more of UCI's
    #: fragments (calibration B-cubed F1 .857 -> .865 at 6 hours) and leaves every AllSides set within
    #: .003 (0.2 took UCI's spread precision under .90): gridded with the headline rule, `--calibrate-headlines`.
    merge_threshold: float = 0.25
    #: Terms the article must share with the story's centroid (one common word is not a story).
    min_shared_terms: int = 2
    #: Hours after its last article when a story closes: later articles found a new story.
    quiet_period_hours: float = 72.0
    #: Weight of a match at the very end of the quiet period (1 inside the story's span).
    time_floor: float = 0.3
    #: A headline alone (fewer than `headline_words` words of text: a headline-only feed's entry) says
    #: little in words, so time must vouch for it: its match's weight falls with the hours between it and
    #: the story's span as 1 / (1 + (hours / `headline_time_scale_hours`)^2) (flat for the first hours,
    #: half at 6, a fifth at 12, a 37th at 36), and it joins from a score of `headline_threshold`, lower
    #: than an article with text needs, since it is close in time. Without this, on UCI a long-running
    #: subject (a show's finale and its aftermath, a company's quarterly loss and its CEO's remarks the
    #: next day) gathered one story from headlines days apart. Chosen on the calibration halves
    #: (`bench/stories_quality.py --calibrate-headlines`: UCI's first 20 days, spread and as published;
    #: AllSides headlines alone, and a third headline-only 4x denser), jointly with `merge_threshold`: of
    #: 0 (off), 6, 9 and 12 hours x scores 0.1-0.2 x merges 0.2-0.3, the best mean B-cubed F1 (.865)
    #: with precision >= .90 on every set, UCI's included (9 hours gave the same mean F1 but UCI spread
    #: P .877; an earlier grid held precision on AllSides only and took 9). A lower score without the
    #: curve costs precision (UCI P .848 -> .798 at 0.1). A linear fall to 0 over 18 hours did as well in
    #: an exploration, but leaves out a headline-only digest of a story the next morning (17 hours on);
    #: this curve keeps it when the words agree (tests/test_stories_cluster.py). 0 weighs a headline's
    #: time as an article's.
    headline_time_scale_hours: float = 6.0
    headline_threshold: float = 0.1
    #: Text words below which an article is a headline alone (`web.related.HEADLINE_ONLY_WORDS` too).
    headline_words: int = 12
    #: Terms kept in a story's centroid.
    centroid_terms: int = 60
    #: The article's heaviest terms used to look candidate stories up.
    query_terms: int = 12
    #: Candidate stories scored per article.
    candidates: int = 24
    #: Outlets remembered per story.
    max_outlets: int = 200
    #: A second chance (`find(..., second_chance=True)`), for an article no other outlet's coverage
    #: joined: the smallest score placing it near another story under a stricter rule. Not used when
    #: assigning: joining there cost clustering precision (AllSides B-cubed P .934 -> .917 on the
    #: calibration half, below .90 when denser), while related coverage, which lists only the members
    #: close to the article itself, gains from it. 0.12 chosen on AllSides' calibration half: of the
    #: articles left alone there, the second chance placed 10 of 12 right at 0.12 (1 of 1 at 0.15),
    #: and 1 of 21 stories absent from the index more than at 0.15.
    second_chance_threshold: float = 0.12
    #: Terms a second-chance match must share beyond `min_shared_terms`.
    second_chance_extra_terms: int = 1
    #: A second-chance match needs its story to score this many times the next one (no toss-up).
    second_chance_margin: float = 1.5


@dataclass(frozen=True)
class Assignment:
    """Where one article went."""

    #: The article.
    article_id: str
    #: The story it belongs to now (aliases followed).
    story_id: str
    #: True when the article founded this story.
    created: bool
    #: Time-weighted cosine to the story it joined (1.0 for a founder).
    similarity: float
    #: Stories merged into ``story_id`` because this article bridged them.
    merged: tuple[str, ...] = ()
    #: True when the article had been assigned before (nothing changed).
    repeated: bool = False


@dataclass(frozen=True)
class StoryMatch:
    """The story an article we do not store belongs to (read-only lookup)."""

    #: The story (its current state).
    story: StoryState
    #: Time-weighted cosine of the article to its centroid.
    similarity: float


class _Batch:
    """A batch's pending changes, staged in the store's view so later articles see earlier ones."""

    def __init__(self, store: StoryStore) -> None:
        self.store = store
        self.stories: dict[str, StoryState] = {}
        self.frequencies: dict[str, int] = {}
        self.documents = 0
        self.assignments: dict[str, str] = {}
        self.aliases: dict[str, str] = {}

    def story_of(self, article_id: str) -> str | None:
        return self.assignments.get(article_id) or self.store.story_of(article_id)

    def resolve(self, story_id: str) -> str:
        for _ in range(1000):  # a chain of merges, never a cycle; the bound guards anyway
            if story_id in self.aliases:
                story_id = self.aliases[story_id]
                continue
            resolved = self.store.resolve(story_id)
            if resolved == story_id:
                break
            story_id = resolved
        return story_id

    def story(self, story_id: str) -> StoryState | None:
        return self.stories.get(story_id) or self.store.story(story_id)

    def put(self, story: StoryState) -> None:
        self.stories[story.id] = story
        # Filed once, in the store's index: the store ranks the batch's stories in their current state
        # with all the others (a merged one leaves it), and keeps them filed when the batch is saved.
        self.store.stage(story)

    def candidates(
        self, terms: Mapping[str, float], start: datetime, end: datetime, limit: int
    ) -> list[tuple[float, StoryState]]:
        """Return (overlap, story) of the ``limit`` best candidates as if the batch were saved: the same, whatever
        the batch size."""
        return self.store.stories_for_terms(terms, start, end, limit)

    def changes(self) -> StoryChanges:
        return StoryChanges(
            stories=tuple(self.stories.values()),
            assignments=tuple(self.assignments.items()),
            aliases=tuple(self.aliases.items()),
            frequencies=dict(self.frequencies),
            documents=self.documents,
        )


class StoryAssigner:
    """Assigns articles to stories through a `StoryStore`; one instance per writer."""

    def __init__(self, store: StoryStore, settings: StorySettings | None = None) -> None:
        self.store = store
        self.settings = settings or StorySettings()

    # ------------------------------------------------------------------ public

    def assign(self, article: StoryArticle) -> Assignment:
        """Return where one article goes, saving the change."""
        return self.assign_many([article])[0]

    def assign_many(self, articles: Iterable[StoryArticle]) -> list[Assignment]:
        """Return where each article goes, in order; the batch's changes are saved in one call."""
        batch = _Batch(self.store)
        try:
            results = [self._assign(batch, article) for article in articles]
            changes = batch.changes()
            if changes.assignments or changes.stories:
                self.store.save(changes)
        except BaseException:
            self.store.unstage()  # nothing was saved: lookups must not see the batch's stories
            raise
        return results

    def find(
        self,
        article: StoryArticle,
        *,
        second_chance: bool = False,
        exclude: str | None = None,
        threshold: float | None = None,
    ) -> StoryMatch | None:
        """Return the story an article belongs to without assigning it (None when none is close enough).

        With ``second_chance``, the story it is nearest to under the stricter rule instead (`_second_chance`),
        other than ``exclude`` (its own), even when the article is stored; ``threshold`` replaces its
        smallest score (`StorySettings.second_chance_threshold`)."""
        batch = _Batch(self.store)
        known = None if second_chance else batch.story_of(article.id)
        if known is not None:
            story = batch.story(batch.resolve(known))
            if story is not None:
                return StoryMatch(story=story, similarity=1.0)
        vector = self._lookup_vector(batch, article)
        if second_chance:
            scored = self._second_chance(batch, article, vector, exclude, threshold)
        else:
            scored = self._scored(batch, article, vector)
        if not scored:
            return None
        score, _, story = scored[0]
        return StoryMatch(story=story, similarity=score)

    def nearby(
        self, article: StoryArticle, *, limit: int, threshold: float, min_shared: int, exclude: str | None = None
    ) -> list[StoryMatch]:
        """Return up to ``limit`` stories the article is near, best first, from a score of ``threshold`` and
        ``min_shared`` shared terms (looser than joining: candidates for a closer look, not answers)."""
        batch = _Batch(self.store)
        vector = self._lookup_vector(batch, article)
        scored = self._scored(batch, article, vector, threshold=threshold, min_shared=min_shared)
        return [StoryMatch(story=story, similarity=score) for score, _, story in scored if story.id != exclude][:limit]

    def vector(self, article: StoryArticle) -> dict[str, float]:
        """Return the article's unit tf-idf vector as the assigner weighs it now."""
        return self._lookup_vector(_Batch(self.store), article)

    def vectors(
        self, articles: Sequence[StoryArticle], known: Mapping[str, Mapping[str, float]] | None = None
    ) -> list[dict[str, float]]:
        """Return each article's vector as `vector` does, reading the document frequencies once for all;
        ``known``: article id -> its `term_weights` worked out already (stored by the writer)."""
        settings = self.settings.features
        given = known or {}
        weights = [given.get(a.id) or cached_term_weights(a.title, a.text, a.language, settings) for a in articles]
        stored = self.store.document_frequencies({term for w in weights for term in w})
        documents = self.store.document_count() + 1
        # Each counted as if it were one more article, as `vector` counts one.
        return [unit_vector(w, lambda term: stored[term] + 1, documents, settings) for w in weights]

    # ------------------------------------------------------------------ internals

    def _lookup_vector(self, batch: _Batch, article: StoryArticle) -> dict[str, float]:
        """Return the vector of an article looked up, not assigned (counted as one more article)."""
        weights = term_weights(article.title, article.text, article.language, self.settings.features)
        return self._vector(batch, weights, counted=False)

    def _vector(self, batch: _Batch, weights: Mapping[str, float], *, counted: bool) -> dict[str, float]:
        stored = self.store.document_frequencies(weights)
        pending = batch.frequencies
        # An article not yet counted is counted here as if it were, so a lookup and an
        # assignment of the same text weigh it the same.
        own = 0 if counted else 1
        if pending:
            get = pending.get
            for term, count in stored.items():
                stored[term] = count + get(term, 0) + own
        elif own:
            for term, count in stored.items():
                stored[term] = count + own
        documents = self.store.document_count() + batch.documents + own
        return unit_vector(weights, stored.__getitem__, documents, self.settings.features)

    def _scored(
        self,
        batch: _Batch,
        article: StoryArticle,
        vector: Mapping[str, float],
        threshold: float | None = None,
        min_shared: int | None = None,
    ) -> list[tuple[float, float, StoryState]]:
        """Return (time-weighted score, cosine, story) of every eligible candidate, best first."""
        settings = self.settings
        headline = headline_alone(article.text, settings.headline_words)
        if threshold is None:
            threshold = settings.headline_threshold if headline else settings.threshold
        min_shared = settings.min_shared_terms if min_shared is None else min_shared
        if not vector:
            return []
        query = dict(list(vector.items())[: settings.query_terms])
        quiet = timedelta(hours=settings.quiet_period_hours)
        when = article.published_at
        candidates = batch.candidates(query, when - quiet, when + quiet, settings.candidates)
        scored: list[tuple[float, float, StoryState]] = []
        quiet_seconds = quiet.total_seconds()
        headline_scale = settings.headline_time_scale_hours * 3600.0
        vector_get = vector.__getitem__
        # The largest time factor (1 inside the span, unless a floor above 1 makes late ones weigh more);
        # rounding is monotonic, so cosine x ceiling below the threshold means every score is.
        ceiling = max(1.0, settings.time_floor)
        # When the query is the whole vector (a headline's few terms), a candidate's overlap is its dot
        # product, the same positive products summed in another order: a few ulps apart, far inside
        # this margin. A candidate whose overlap is below the threshold by more than the margin fails
        # it exactly too, so it is dropped before the intersection and the exact sum (most candidates,
        # and most of their cost).
        below = threshold * (1.0 - _ROUNDING_MARGIN) / ceiling if len(vector) <= len(query) else -1.0
        for overlap, story in candidates:
            if overlap < below * story.norm:
                continue
            centroid = story.centroid
            # Intersect in C; fsum is exact, so the set's (hash-seeded) order cannot change the result.
            shared = vector.keys() & centroid.keys()
            if len(shared) < min_shared:
                continue
            dot = math.fsum(map(mul, map(vector_get, shared), map(centroid.__getitem__, shared)))
            if dot <= 0.0:
                continue
            cosine = dot / story.norm
            if cosine * ceiling < threshold:
                continue  # below the threshold at the best time factor: most candidates end here, before dates
            if when > story.last_seen:
                gap = (when - story.last_seen).total_seconds()
            elif when < story.first_seen:
                gap = (story.first_seen - when).total_seconds()
            else:
                gap = 0.0
            if gap > quiet_seconds:
                continue
            if headline and headline_scale:
                factor = 1.0 / (1.0 + (gap / headline_scale) ** 2)
            else:
                factor = 1.0 - (1.0 - settings.time_floor) * (gap / quiet_seconds if quiet_seconds else 0.0)
            score = cosine * factor
            if score >= threshold:
                scored.append((score, cosine, story))
        scored.sort(key=lambda item: (-item[0], item[2].first_seen, item[2].id))
        return scored

    def _second_chance(
        self,
        batch: _Batch,
        article: StoryArticle,
        vector: Mapping[str, float],
        exclude: str | None,
        threshold: float | None = None,
    ) -> list[tuple[float, float, StoryState]]:
        """Return [the story] an article is near under the stricter rule, else []: a lower score, more
        shared terms, a clear lead over the next story, and coverage by another outlet."""
        settings = self.settings
        scored = self._scored(
            batch,
            article,
            vector,
            threshold=settings.second_chance_threshold if threshold is None else threshold,
            min_shared=settings.min_shared_terms + settings.second_chance_extra_terms,
        )
        scored = [item for item in scored if item[2].id != exclude]
        if not scored:
            return []
        best = scored[0]
        if len(scored) > 1 and best[0] < settings.second_chance_margin * scored[1][0]:
            return []
        if not any(outlet != article.outlet for outlet in best[2].outlets):
            return []
        return [best]

    def _assign(self, batch: _Batch, article: StoryArticle) -> Assignment:
        known = batch.story_of(article.id)
        if known is not None:
            return Assignment(article.id, batch.resolve(known), created=False, similarity=0.0, repeated=True)
        # Kept a while: the writer stores them for related coverage right after the batch (`store_meanings`).
        weights = cached_term_weights(article.title, article.text, article.language, self.settings.features)
        for term in weights:
            batch.frequencies[term] = batch.frequencies.get(term, 0) + 1
        batch.documents += 1
        vector = self._vector(batch, weights, counted=True)
        scored = self._scored(batch, article, vector)
        if not scored:
            story = StoryState(
                id=story_id_for(article.id),
                centroid=_top(vector, self.settings.centroid_terms),
                first_seen=article.published_at,
                last_seen=article.published_at,
                members=1,
                outlets=(article.outlet,) if article.outlet else (),
            )
            batch.put(story)
            batch.assignments[article.id] = story.id
            return Assignment(article.id, story.id, created=True, similarity=1.0)
        score, _, best = scored[0]
        joined = self._join(best, vector, article)
        survivor, merged = self._merge(batch, joined, [story for _, _, story in scored[1:]])
        # A new article's id has not been shown with a story yet: point it at the survivor directly.
        batch.assignments[article.id] = survivor.id
        return Assignment(article.id, survivor.id, created=False, similarity=score, merged=merged)

    def _join(self, story: StoryState, vector: Mapping[str, float], article: StoryArticle) -> StoryState:
        centroid = dict(story.centroid)
        for term, weight in vector.items():
            centroid[term] = centroid.get(term, 0.0) + weight
        outlets = story.outlets
        if article.outlet and article.outlet not in outlets and len(outlets) < self.settings.max_outlets:
            outlets = (*outlets, article.outlet)
        # Built directly rather than by `replace`, which looks every field up again: this runs per article.
        return StoryState(
            id=story.id,
            centroid=_top(centroid, self.settings.centroid_terms),
            first_seen=min(story.first_seen, article.published_at),
            last_seen=max(story.last_seen, article.published_at),
            members=story.members + 1,
            outlets=outlets,
            merged_into=story.merged_into,
        )

    def _merge(
        self, batch: _Batch, joined: StoryState, others: Sequence[StoryState]
    ) -> tuple[StoryState, tuple[str, ...]]:
        """Return the surviving story after merging ``joined`` with the others it is one story with, and the merged ids."""
        group = [joined]
        for other in others:
            if _cosine(joined, other) >= self.settings.merge_threshold:
                group.append(other)
        if len(group) == 1:
            batch.put(joined)
            return joined, ()
        # The biggest (then oldest) keeps its id: the one readers most likely saw.
        group.sort(key=lambda s: (-s.members, s.first_seen, s.id))
        survivor = group[0]
        centroid = dict(survivor.centroid)
        outlets = list(survivor.outlets)
        members = survivor.members
        first_seen, last_seen = survivor.first_seen, survivor.last_seen
        for other in group[1:]:
            for term, weight in other.centroid.items():
                centroid[term] = centroid.get(term, 0.0) + weight
            outlets.extend(o for o in other.outlets if o not in outlets)
            members += other.members
            first_seen = min(first_seen, other.first_seen)
            last_seen = max(last_seen, other.last_seen)
            batch.put(replace(other, merged_into=survivor.id))
            batch.aliases[other.id] = survivor.id
        survivor = replace(
            survivor,
            centroid=_top(centroid, self.settings.centroid_terms),
            outlets=tuple(outlets[: self.settings.max_outlets]),
            members=members,
            first_seen=first_seen,
            last_seen=last_seen,
        )
        batch.put(survivor)
        return survivor, tuple(sorted(other.id for other in group[1:]))


# Relative margin between two sums of the same few positive products in different orders (each off by
# at most a few ulps, about 1e-16 each): one candidate scored either way is never on both sides of it.
_ROUNDING_MARGIN = 1e-9


#: Texts whose term weights `cached_term_weights` keeps (least recently used out first): about 6 KB each.
TERM_WEIGHTS_KEPT = 4096
_KEPT_WEIGHTS = Kept(size=TERM_WEIGHTS_KEPT, seconds=math.inf)


def cached_term_weights(title: str, text: str, language: str | None, settings: FeatureSettings) -> Mapping[str, float]:
    """Return `term_weights`, kept for the last `TERM_WEIGHTS_KEPT` texts asked (read-only): related coverage
    weighs the same stories' members again on every request, and the writer stores a batch's right after
    assigning it. Thread-safe."""
    return cast(
        "Mapping[str, float]",
        _KEPT_WEIGHTS.get(
            (title, text, language, settings), lambda: MappingProxyType(term_weights(title, text, language, settings))
        ),
    )


def keep_term_weights(
    title: str, text: str, language: str | None, settings: FeatureSettings, weights: Mapping[str, float]
) -> None:
    """Keep weights read from elsewhere (the writer's, stored) as `cached_term_weights` would have worked them out."""
    _KEPT_WEIGHTS.get((title, text, language, settings), lambda: MappingProxyType(dict(weights)))


def forget_term_weights() -> None:
    """Forget every text's weights `cached_term_weights` keeps (as in a process just started)."""
    _KEPT_WEIGHTS.clear()


def term_weights_kept(title: str, text: str, language: str | None, settings: FeatureSettings) -> bool:
    """Return True when `cached_term_weights` holds this text's weights (nothing to work out or to read)."""
    return _KEPT_WEIGHTS.holds((title, text, language, settings))


def _top(weights: Mapping[str, float], size: int) -> dict[str, float]:
    # Heaviest first, always: a centroid's order is part of its state (prefix norms use it).
    return dict(heaviest_first(weights.items())[:size])


def _cosine(a: StoryState, b: StoryState) -> float:
    # Each state's norm is computed once (StoryState.norm), not again for every pair.
    x, y = a.centroid, b.centroid
    shared = x.keys() & y.keys()
    dot = math.fsum(map(mul, map(x.__getitem__, shared), map(y.__getitem__, shared)))
    return dot / (a.norm * b.norm) if dot > 0 else 0.0
