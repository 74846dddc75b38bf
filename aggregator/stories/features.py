"""Text features for story assignment: distinctive terms of an article, weighted.

Pure functions, no state: an article's title and lead become weighted term counts (title words
count more, names and numbers count more), and counts become a unit tf-idf vector given the
document frequencies the caller keeps. Works the same on headlines, summaries and full text:
only the lead of a long body is read, because the first paragraphs say what a story is about and
the rest of a full-text article adds background that other stories share.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from operator import itemgetter

from aggregator.hosts import site_host
from aggregator.models import Entry

__all__ = [
    "FeatureSettings",
    "StoryArticle",
    "article_from_entry",
    "article_from_fields",
    "fold",
    "headline_alone",
    "heaviest_first",
    "idf",
    "stem",
    "term_weights",
    "unit_vector",
]


@dataclass(frozen=True)
class StoryArticle:
    """An article as story assignment sees it: one we store, or one an embedding page describes."""

    #: Stable id of the article (the entry id); a story founded by it takes an id derived from it.
    id: str
    #: Plain-text title (may be the only text there is).
    title: str
    #: Publication time (UTC, aware).
    published_at: datetime
    #: Plain-text body, or the summary when the feed gives no body, or "".
    text: str = ""
    #: The outlet (site host without www., or the feed key): breadth of coverage counts outlets.
    outlet: str = ""
    #: ISO 639-1 code when known; English gets plural folding.
    language: str | None = None


def article_from_entry(entry: Entry) -> StoryArticle:
    """Return the story-assignment view of a stored entry (body, else summary; outlet = its site's host)."""
    return article_from_fields(
        entry.id,
        entry.title,
        entry.published_at,
        entry.text or entry.summary,
        entry.source.site_url or entry.url,
        entry.feed_key,
        entry.language,
    )


def article_from_fields(
    entry_id: str, title: str, published_at: datetime, text: str, site: str, feed_key: str, language: str | None
) -> StoryArticle:
    """Return the story-assignment view of an entry given only what it reads (``site``: the site's URL, else the entry's).

    Lets the writer read those few columns instead of whole entries (`article_from_entry` passes them).
    """
    return StoryArticle(
        id=entry_id,
        title=title,
        published_at=published_at,
        text=text,
        outlet=site_host(site) or feed_key,
        language=language,
    )


@dataclass(frozen=True)
class FeatureSettings:
    """How an article's words are weighed; defaults chosen by bench/stories_quality.py --calibrate."""

    #: How many times a title word counts against one body word.
    title_weight: float = 3.0
    #: Extra factor for name-like words (capitalized inside a sentence, acronyms) and numbers.
    entity_weight: float = 1.5
    #: Words of the body read: the lead and the paragraphs after it (news puts what happened first;
    #: the rest of a long article is background other stories share). Chosen a priori, not calibrated:
    #: no labelled full-text set exists to tune it on.
    body_words: int = 250
    #: Terms kept in an article's vector, the most distinctive first.
    article_terms: int = 40


# Function words and newsroom filler in the languages our feeds mostly use. The document
# frequencies take care of the rest once enough articles are in; this list keeps the first few
# hundred articles of a fresh install from matching on "the" and "says".
_STOPWORD_TEXT = """
    a about above after again against ago all also am an and any are around as at back be been before being
    below between both but by can could did do does doing done down during each even ever every few for from
    further get gets got had has have having he her here hers him his how however if in into is it its just
    last like made make many may me might more most much must my near new news no nor not now of off on once
    one only or other our out over own per report reports said say says see she should since so some still
    such than that the their them then there these they this those though through to today too two under
    until up upon us very via was we were what when where which while who whom why will with within without
    would year years yet you your after amid among told week weeks day days time first according
    watch video live update updates breaking photos new latest
    monday tuesday wednesday thursday friday saturday sunday yesterday tomorrow tonight morning evening
    le la les un une des du de et en est pour par sur dans au aux ce cette qui que pas plus il elle ils
    der das ein eine und ist im mit von zu auf den dem des nicht sich auch es bei nach wie
    el los las y del por con para una su al lo se como mas pero sus
    il lo gli della delle che di da non per una sono
    o os da do dos das em um uma com não
    het een van en op te dat zijn voor niet met
"""

# Letters and digits; apostrophes and hyphens split words, so "Iran's" -> "iran" and
# "self-driving" -> "self", "driving" whichever way an outlet hyphenates.
# Decimal and grouped numbers stay whole: "6.4", "5.25", "210,000".
_WORD = re.compile(r"\d+(?:[.,]\d+)+|[^\W_]+")
# U.S., U.K., U.N.: dotted acronyms become one word before splitting.
_DOTTED = re.compile(r"\b(?:[A-Za-z]\.){2,}")
# Every dotted acronym holds a dot, a letter and a dot: a search for that (a literal first, which the
# regular expression engine finds fast) is ten times cheaper than the substitution finding nothing.
_DOTTED_HINT = re.compile(r"\.[A-Za-z]\.")
# A word that starts the text or follows one of these (past spaces and opening quotes) starts a sentence.
_SENTENCE_START = re.compile(r"(?:^|[.!?:;\n\"“”‘’'«»—–\-(\[|])[\s\"“‘'«(]*(\d+(?:[.,]\d+)+|[^\W_]+)")


@lru_cache(maxsize=300_000)
def fold(word: str) -> str:
    """Return a word case-folded with accents removed (so "Élysée" and "elysee" are one term)."""
    folded = word.casefold()
    if folded.isascii():
        return folded
    decomposed = unicodedata.normalize("NFKD", folded)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@lru_cache(maxsize=300_000)
def stem(term: str) -> str:
    """Return an English word with its plural ending folded ("embassies" -> "embassy"), else the word."""
    # A light, conservative plural folding (after Harman's S-stemmer): outlets write "protest" and
    # "protests", "strike" and "strikes"; anything heavier conflates distinct names.
    if len(term) <= 3 or not term.isalpha():
        return term
    if term.endswith("ies") and len(term) > 4 and term[-4] not in "ae":
        return term[:-3] + "y"
    if term.endswith("sses"):
        return term[:-2]
    if term.endswith("es") and term[-3] in "sxz" and not term.endswith("ses"):
        return term[:-2]
    if term.endswith(("ches", "shes")):
        return term[:-2]
    if term.endswith("s") and not term.endswith(("ss", "us", "is", "ous")):
        return term[:-1]
    return term


_STOPWORDS = frozenset(fold(word) for word in _STOPWORD_TEXT.split())


def _title_cased(words: list[str]) -> bool:
    # "Trump Blames Iran as Protests Erupt": capitals in a headline say nothing about names.
    long_words = [w for w in words if len(w) > 3 and w.isalpha()]
    if not long_words:
        return False
    capitalized = sum(1 for w in long_words if w[0].isupper())
    return capitalized >= 0.6 * len(long_words)


@lru_cache(maxsize=300_000)
def _analyze(surface: str, english: bool, shouting: bool) -> tuple[str | None, bool]:
    """Return (term or None when the word does not count, whether it is a name by itself)."""
    acronym = not shouting and 2 <= len(surface) <= 5 and surface.isupper() and surface.isalpha()
    term = fold(surface)
    if term in _STOPWORDS and not acronym:
        return None, False
    digits = not term.isalpha()
    if digits:
        if len(term) < 2:
            return None, False  # "3 people": single digits are everywhere
    elif len(term) < 2 or (len(term) < 3 and not acronym):
        return None, False
    if english and not acronym:
        term = stem(term)
    return term, digits or acronym


def _add_terms(
    counts: dict[str, float],
    names: set[str],
    text: str,
    weight: float,
    *,
    english: bool,
    max_words: int,
    title: bool,
) -> None:
    # Words are rarely longer than 12 characters with their space: no need to scan a long body further.
    text = text[: max_words * 12]
    if _DOTTED_HINT.search(text):
        text = _DOTTED.sub(_undot, text)
    words = _WORD.findall(text)[:max_words]
    if not words:
        return
    shouting = text.isupper()
    capitals_mean_names = not shouting and not (title and _title_cased(words))
    # Counting in C and analysing each distinct word once keeps long bodies cheap. A capitalized
    # word is a name when it occurs more often than it starts a sentence (once inside one at least).
    starts = Counter(_SENTENCE_START.findall(text)) if capitals_mean_names else Counter()
    for surface, count in Counter(words).items():
        term, name = _analyze(surface, english, shouting)
        if term is None:
            continue
        counts[term] = counts.get(term, 0.0) + weight * count
        if name or (capitals_mean_names and surface[0].isupper() and count > starts[surface]):
            names.add(term)


def _undot(match: re.Match[str]) -> str:
    return match.group(0).replace(".", "")


def term_weights(title: str, text: str, language: str | None, settings: FeatureSettings) -> dict[str, float]:
    """Return term -> term-frequency weight of an article's title and lead (title and name-like words weighed up)."""
    english = language is None or language.startswith("en")
    counts: dict[str, float] = {}
    names: set[str] = set()
    _add_terms(counts, names, title, settings.title_weight, english=english, max_words=60, title=True)
    if text:
        _add_terms(counts, names, text, 1.0, english=english, max_words=settings.body_words, title=False)
    entity = settings.entity_weight
    # Sublinear in the count: a word repeated five times is not five times as telling.
    return {
        term: (1.0 + math.log(count) if count >= 1.0 else count) * (entity if term in names else 1.0)
        for term, count in counts.items()
    }


def headline_alone(text: str, words: int) -> bool:
    """Return True when ``text`` has fewer than ``words`` words: an article that is a headline alone (story
    assignment and related coverage draw the line alike). Words are counted only up to the line, so a full
    text is not split whole on every lookup."""
    return len(text.split(maxsplit=words)) < words


def heaviest_first(weights: Iterable[tuple[str, float]]) -> list[tuple[str, float]]:
    """Return (term, weight) pairs sorted by weight, heaviest first, ties by term: the order of every vector here.

    Two sorts with C keys (by term, then stably by weight, reversed) give exactly the order of
    sorting by (-weight, term), at a fraction of the cost of a Python key building tuples.
    """
    ranked = sorted(weights, key=itemgetter(0))
    ranked.sort(key=itemgetter(1), reverse=True)
    return ranked


def idf(document_frequency: int, document_count: int) -> float:
    """Return the smoothed inverse document frequency of a term."""
    return math.log((document_count + 1) / (document_frequency + 1)) + 1.0


def unit_vector(
    weights: Mapping[str, float],
    frequency: Callable[[str], int],
    document_count: int,
    settings: FeatureSettings,
) -> dict[str, float]:
    """Return the article's unit-length tf-idf vector over its most distinctive terms, heaviest first."""
    # No ceiling on common terms: during a big story its own names are in a large share of all
    # articles, and dropping them as "too common" would split the story; idf weighs them down enough.
    # `idf` inlined (the same expression, so the same floats): this runs for every term of every article.
    log = math.log
    documents = document_count + 1
    scored = [(term, weight * (log(documents / (frequency(term) + 1)) + 1.0)) for term, weight in weights.items()]
    scored = heaviest_first(scored)
    del scored[settings.article_terms :]
    norm = math.sqrt(sum(w * w for _, w in scored))
    if not norm:
        return {}
    return {term: w / norm for term, w in scored}
