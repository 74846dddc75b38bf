"""The pure core of related coverage: term weights, similarity, exclusion, diversity and the threshold.

Nothing here touches Whoosh or the store; `index.related` feeds it data and tests call it directly.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from aggregator.simhash import near_duplicate

#: Turns text into index terms (the schema's analyzer, so query and index agree).
Analyze = Callable[[str], Iterable[str]]
#: Returns how many indexed documents contain a term.
DocFrequency = Callable[[str], int]


@dataclass(frozen=True)
class RelatedSettings:
    """Knobs of the related-coverage algorithm; the defaults are the ones bench/related_quality.py chose."""

    #: Seconds either side of the article's date in which coverage counts.
    window: float = 7 * 86400
    #: Leave the article's own source (feed or site) out.
    exclude_same_source: bool = True
    #: Most items from one outlet in one answer.
    max_per_source: int = 1
    #: Smallest cosine similarity an item needs to be shown at all.
    threshold: float = 0.25
    #: Abstain unless some candidate's similarity x exp(-hours apart / evidence_hours) reaches this:
    #: a story exists when another outlet covered it closely *and* at about the same time.
    evidence_threshold: float = 0.25
    #: Time scale of that evidence, in hours.
    evidence_hours: float = 6.0
    #: Ranking: similarity x (time_floor + (1 - time_floor) x exp(-hours apart / time_hours)).
    time_hours: float = 12.0
    #: Share of the ranking score that distance in time never takes away (follow-ups still count).
    time_floor: float = 0.2
    #: How much more a title word counts than a body word.
    title_weight: float = 3.0
    #: Distinctive terms sent to the index to find candidates.
    max_query_terms: int = 16
    #: Terms in more than this share of all documents are too common to count.
    max_document_share: float = 0.04
    #: ...but a term is never too common while fewer documents than this have it (small indexes).
    min_common_documents: int = 50
    #: Candidates fetched from the index and re-scored.
    candidates: int = 60
    #: Characters of body text considered (the lead paragraphs say what a story is about).
    body_chars: int = 600


@dataclass(frozen=True)
class ArticleQuery:
    """The article whose related coverage is wanted: one we have, or one an embedding page describes."""

    #: Plain-text title.
    title: str
    #: Plain-text body or description (may be empty).
    text: str = ""
    #: Publication time (UTC); None means "now".
    published_at: datetime | None = None
    #: The entry's id when we have it (excluded from its own coverage).
    entry_id: str | None = None
    #: Key of the feed that carried it, when known (its own source is excluded).
    feed_key: str | None = None
    #: Host of its site without www., when known (its own site is excluded).
    site: str | None = None
    #: 64-bit SimHash of its text, 0 when unknown (near-duplicates are excluded).
    fingerprint: int = 0


@dataclass(frozen=True)
class Candidate:
    """One indexed document considered as related coverage."""

    #: Entry id.
    entry_id: str
    #: Cosine similarity to the article, 0..1.
    similarity: float
    #: Publication time (UTC, aware).
    published_at: datetime
    #: Key of its feed.
    feed_key: str
    #: Host of its site.
    site: str
    #: Its SimHash fingerprint (0 when unknown).
    fingerprint: int
    #: Its title folded for comparison (identical titles are the same wire copy).
    title_key: str


@dataclass(frozen=True)
class Ranked:
    """A candidate that made the list, with the score it was ranked by."""

    #: The candidate.
    candidate: Candidate
    #: Similarity discounted by distance in time; what the list is sorted by.
    score: float


_NON_WORD = re.compile(r"[\W_]+")


def title_key(title: str) -> str:
    """Return a title folded for duplicate detection: case, accents, punctuation and spacing removed."""
    folded = unicodedata.normalize("NFKD", title.casefold())
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return _NON_WORD.sub(" ", folded).strip()


def term_counts(analyze: Analyze, title: str, body: str, settings: RelatedSettings) -> dict[str, float]:
    """Return term -> weighted count for an article (title words count ``title_weight`` times)."""
    return weighted_counts(analyze(title), analyze(body[: settings.body_chars]), settings)


def weighted_counts(title: Iterable[str], lead: Iterable[str], settings: RelatedSettings) -> dict[str, float]:
    """Return term -> weighted count of an article's title and lead terms (the analyzer's, in order):
    a title term counts ``title_weight`` times, a lead term once."""
    counts: dict[str, float] = {}
    get = counts.get
    for term in title:
        counts[term] = get(term, 0.0) + settings.title_weight
    for term in lead:
        counts[term] = get(term, 0.0) + 1.0
    return counts


def idf(document_frequency: int, document_count: int) -> float:
    """Return the smoothed inverse document frequency of a term."""
    return math.log((document_count + 1) / (document_frequency + 1)) + 1.0


def weigh(
    counts: Mapping[str, float], df: DocFrequency, document_count: int, settings: RelatedSettings
) -> dict[str, float]:
    """Return term -> tf-idf weight, leaving out terms found in too large a share of all documents."""
    ceiling = max(settings.max_document_share * document_count, float(settings.min_common_documents))
    weights: dict[str, float] = {}
    for term, count in counts.items():
        frequency = df(term)
        if frequency > ceiling:
            continue  # as common as a stopword here: matching it says nothing about the story
        weights[term] = (1.0 + math.log(count)) * idf(frequency, document_count)
    return weights


def query_terms(
    weights: Mapping[str, float], df: DocFrequency, *, indexed: bool, settings: RelatedSettings
) -> list[tuple[str, float]]:
    """Return the article's most distinctive terms, best first, that some other document shares."""
    # A term only this article has cannot find anything; for an indexed article its own copy counts once.
    own = 1 if indexed else 0
    shared = [(term, weight) for term, weight in weights.items() if df(term) > own]
    shared.sort(key=lambda item: (-item[1], item[0]))
    return shared[: settings.max_query_terms]


def cosine(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """Return the cosine similarity of two sparse vectors (0 when either is empty)."""
    if len(a) > len(b):
        a, b = b, a
    dot = sum(weight * b.get(term, 0.0) for term, weight in a.items())
    if dot <= 0.0:
        return 0.0
    norm = math.sqrt(sum(w * w for w in a.values())) * math.sqrt(sum(w * w for w in b.values()))
    return dot / norm if norm else 0.0


def hours_apart(a: datetime, b: datetime) -> float:
    """Return the absolute distance between two times in hours."""
    return abs((a - b).total_seconds()) / 3600.0


def time_factor(article: datetime, candidate: datetime, settings: RelatedSettings) -> float:
    """Return the ranking weight of time proximity: 1 at the same moment, decaying towards ``time_floor``."""
    decay = math.exp(-hours_apart(article, candidate) / settings.time_hours) if settings.time_hours > 0 else 1.0
    return settings.time_floor + (1.0 - settings.time_floor) * decay


def evidence(article: datetime, candidate: Candidate, settings: RelatedSettings) -> float:
    """Return how strongly one candidate shows that the article's story is in the index (similar and close in time)."""
    if settings.evidence_hours <= 0:
        return candidate.similarity
    return candidate.similarity * math.exp(-hours_apart(article, candidate.published_at) / settings.evidence_hours)


def excluded(query: ArticleQuery, candidate: Candidate, query_title_key: str, settings: RelatedSettings) -> bool:
    """Return True when the candidate is the article itself, a copy of it, or (by default) from its source."""
    if candidate.entry_id == query.entry_id:
        return True
    if settings.exclude_same_source and (
        (query.feed_key and candidate.feed_key == query.feed_key) or (query.site and candidate.site == query.site)
    ):
        return True
    if query_title_key and candidate.title_key == query_title_key:
        return True  # the same wire headline republished elsewhere adds nothing
    return bool(
        query.fingerprint and candidate.fingerprint and near_duplicate(query.fingerprint, candidate.fingerprint)
    )


def rank(
    query: ArticleQuery, candidates: Sequence[Candidate], settings: RelatedSettings, *, limit: int, now: datetime
) -> list[Ranked]:
    """Return up to ``limit`` candidates: exclusions applied, nothing without evidence, best first, outlets diversified."""
    article_time = query.published_at or now
    own_title = title_key(query.title)
    eligible = [c for c in candidates if not excluded(query, c, own_title, settings)]
    # Abstain (show nothing rather than unrelated links) unless another outlet covered the story
    # closely at about the same time; the bench calibrates this on held-out stories.
    if not any(evidence(article_time, c, settings) >= settings.evidence_threshold for c in eligible):
        return []
    scored = [
        Ranked(candidate=c, score=c.similarity * time_factor(article_time, c.published_at, settings))
        for c in eligible
        if c.similarity >= settings.threshold
    ]
    scored.sort(key=lambda r: (-r.score, r.candidate.entry_id))
    chosen: list[Ranked] = []
    per_source: dict[str, int] = {}
    for ranked in scored:
        candidate = ranked.candidate
        outlet = candidate.site or candidate.feed_key
        if per_source.get(outlet, 0) >= settings.max_per_source:
            continue  # diversity: one outlet must not fill the list
        if any(_same_copy(candidate, other.candidate) for other in chosen):
            continue  # two outlets running the same wire copy: show it once
        chosen.append(ranked)
        per_source[outlet] = per_source.get(outlet, 0) + 1
        if len(chosen) >= limit:
            break
    return chosen


def _same_copy(a: Candidate, b: Candidate) -> bool:
    if a.title_key and a.title_key == b.title_key:
        return True
    return bool(a.fingerprint and b.fingerprint and near_duplicate(a.fingerprint, b.fingerprint))
