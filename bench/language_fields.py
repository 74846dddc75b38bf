"""What per-language stemmed fields would cost in the Whoosh index, measured before anyone adds them.

Usage: .venv/bin/python bench/language_fields.py [--limit N] [--english N] [--queries N] [--seed N]

Builds a multilingual sample through the real path: every feed file under ../shared/corpus/feeds
goes through parse_feed + normalize_feed (files that fail are skipped), and BBC articles are added
as English entries normalized from a ParsedFeed built here. Then, on the same documents, compares:

  A  the current schema (index.schema.build_schema + entry_document: English stemming for all);
  B  A plus title_<lang> and text_<lang> for every language Whoosh has a stemmer for (but "en");
     an entry in such a language also puts its title and text into its language's two fields.

For each: indexing throughput (one writer, one merged commit), index size on disk, and query
latency p50/p95 over a fixed mix of one- and two-word queries drawn from non-English titles (and a
share of English ones); B's parser also searches every per-language field. Recall: hits per query
for the non-English words as drawn, how many other surface forms in the corpus B conflates with each
word where A does not, and whether a query with such a sibling form still finds the entry it came from.
"""

from __future__ import annotations

import argparse
import html
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from whoosh import index as whoosh_index  # noqa: E402
from whoosh.analysis import CharsetFilter, LowercaseFilter, RegexTokenizer, StemFilter, StopFilter  # noqa: E402
from whoosh.fields import TEXT, Schema  # noqa: E402
from whoosh.lang import has_stemmer, has_stopwords, languages, stopwords_for_language  # noqa: E402
from whoosh.qparser import MultifieldParser  # noqa: E402
from whoosh.support.charset import accent_map  # noqa: E402

from aggregator.errors import NewsdeskError  # noqa: E402
from aggregator.models import Entry, FeedContext, ParsedContent, ParsedEntry, ParsedFeed  # noqa: E402
from aggregator.normalize import normalize_feed  # noqa: E402
from aggregator.parse import parse_feed  # noqa: E402
from index.schema import _WORD, TEXT_FIELDS, build_schema, entry_document, news_analyzer  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpus"
FEEDS = CORPUS / "feeds"
BBC = CORPUS / "news" / "bbc_greene2006__moztom__bbc_ml" / "bbc"
FETCHED_AT = datetime(2026, 3, 1, tzinfo=UTC)
#: Languages that would get their own fields: every one Whoosh can stem, except English (A covers it).
STEMMED_LANGUAGES = tuple(lang for lang in languages if lang != "en" and has_stemmer(lang))
#: Share of the query mix drawn from non-English titles; the rest comes from English ones.
NON_ENGLISH_SHARE = 0.75
#: Each query is timed this many times, interleaving A and B, and its median kept: the machine is shared.
ROUNDS = 3
#: Query words are letters only and at least this long, so they are content words, not particles.
MIN_WORD = 4

_TOKEN = re.compile(_WORD)
_LETTERS = re.compile(r"[^\W\d_]+")


# ---------------------------------------------------------------- the sample


def feed_entries(limit: int | None) -> tuple[list[Entry], Counter[str]]:
    """Return the Entries of every feed file that parses (at most ``limit``) and the failures by error type."""
    entries: list[Entry] = []
    failures: Counter[str] = Counter()
    for path in sorted(p for p in FEEDS.rglob("*") if p.is_file()):
        name = path.relative_to(FEEDS).as_posix()
        context = FeedContext(
            feed_key=name,
            feed_url=f"https://bench.invalid/{name}",
            source_title=path.name,
            site_url=None,
            fetched_at=FETCHED_AT,
        )
        try:
            entries.extend(normalize_feed(parse_feed(path.read_bytes()), context))
        except NewsdeskError as exc:
            failures[type(exc).__name__] += 1
            continue
        if limit is not None and len(entries) >= limit:
            return entries[:limit], failures
    return entries, failures


def bbc_entries(count: int, seed: int) -> list[Entry]:
    """Return ``count`` BBC articles (a seeded sample across categories) normalized as one English feed."""
    paths = sorted(BBC.glob("*/*.txt"))
    chosen = sorted(random.Random(seed).sample(paths, min(count, len(paths))))
    parsed_entries = []
    for number, path in enumerate(chosen):
        lines = path.read_bytes().decode("utf-8", "replace").split("\n")
        paragraphs = [line.strip() for line in lines[1:] if line.strip()]
        slug = f"{path.parent.name}-{path.stem}"
        parsed_entries.append(
            ParsedEntry(
                guid=f"bbc-{slug}",
                link=f"https://bbc.example/news/{slug}",
                original_link=None,
                title=lines[0].strip(),
                title_type="text/plain",
                summary=None,
                contents=(ParsedContent("".join(f"<p>{html.escape(p)}</p>" for p in paragraphs), "text/html"),),
                authors=(),
                # The corpus has no dates; spread the articles over 2004-05 so none is clamped or shared.
                published_raw=format_datetime(
                    datetime(2004, 6, 1, tzinfo=UTC) + timedelta(hours=3 * number), usegmt=True
                ),
                updated_raw=None,
                tags=(path.parent.name,),
                media=(),
                language=None,
                base=None,
            )
        )
    feed = ParsedFeed("BBC News", "https://bbc.example/", "en", None, None, None, None, tuple(parsed_entries), "rss20")
    context = FeedContext("bbc", "https://bbc.example/feed.xml", "BBC News", "https://bbc.example/", FETCHED_AT)
    return normalize_feed(feed, context)


# ---------------------------------------------------------------- the two variants


def language_analyzer(lang: str) -> Any:
    """Return the analyzer of a per-language field: words, lowercase, stop words, that language's stemmer, accents folded.

    Accents are folded after stemming, not before: the snowball stemmers read them (Russian
    adjective endings in й, French é/è suffixes), and folding the stem still lets accent-less
    queries match, since queries go through the same chain.
    """
    chain = RegexTokenizer(_WORD) | LowercaseFilter()
    if has_stopwords(lang):
        chain = chain | StopFilter(lang=lang, minsize=1)
    return chain | StemFilter(lang=lang, cachesize=50000) | CharsetFilter(accent_map)


def schema_b() -> Schema:
    """Return the current schema plus title_<lang> and text_<lang> for every stemmed language."""
    schema = build_schema()
    for lang in STEMMED_LANGUAGES:
        analyzer = language_analyzer(lang)
        schema.add(f"title_{lang}", TEXT(analyzer=analyzer, field_boost=2.5, stored=False))
        schema.add(f"text_{lang}", TEXT(analyzer=analyzer, stored=False))
    return schema


def document_b(entry: Entry) -> dict[str, Any]:
    """Return the variant-B document: the current one, plus the per-language fields of the entry's language."""
    document = entry_document(entry)
    lang = (entry.language or "").lower()
    if lang in STEMMED_LANGUAGES:
        document[f"title_{lang}"] = entry.title
        document[f"text_{lang}"] = entry.text
    return document


@dataclass(frozen=True)
class Variant:
    """One way of indexing the sample."""

    #: Label in the table.
    name: str
    #: Builds a fresh schema.
    schema: Callable[[], Schema]
    #: Entry -> Whoosh document.
    document: Callable[[Entry], dict[str, Any]]
    #: Fields a query word is searched in.
    fields: tuple[str, ...]


VARIANTS = (
    Variant("A", build_schema, entry_document, TEXT_FIELDS),
    Variant(
        "B",
        schema_b,
        document_b,
        TEXT_FIELDS + tuple(f"{kind}_{lang}" for lang in STEMMED_LANGUAGES for kind in ("title", "text")),
    ),
)


@dataclass
class Built:
    """A variant's index and what building it cost."""

    #: The open index.
    index: Any
    #: CPU seconds from opening the writer to the end of the merged commit.
    cpu_seconds: float
    #: Wall seconds for the same.
    wall_seconds: float
    #: Bytes on disk after the commit.
    size: int


def dir_size(path: Path) -> int:
    """Return the bytes of every file under ``path``."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def build(variant: Variant, entries: list[Entry], directory: Path) -> Built:
    """Index ``entries`` with one writer and one merged commit; return the index and its costs."""
    directory.mkdir(parents=True)
    index = whoosh_index.create_in(str(directory), variant.schema())
    # CPU time, as bench/normalize.py does: another benchmark shares the machine.
    cpu, wall = time.process_time(), time.perf_counter()
    writer = index.writer(limitmb=128)
    for entry in entries:
        writer.add_document(**variant.document(entry))
    writer.commit(merge=True)
    return Built(index, time.process_time() - cpu, time.perf_counter() - wall, dir_size(directory))


# ---------------------------------------------------------------- queries


@dataclass(frozen=True)
class Query:
    """One query of the mix and where it came from."""

    #: The query text: one or two lower-cased words.
    text: str
    #: Language of the title it was drawn from.
    language: str
    #: Id of the entry whose title it was drawn from.
    entry_id: str


def title_words(entry: Entry) -> list[str]:
    """Return the distinct content words of an entry's title, lower-cased, letters only, stop words dropped."""
    lang = entry.language or ""
    stop = set(stopwords_for_language("en"))
    if has_stopwords(lang):
        stop |= set(stopwords_for_language(lang))
    words = (w.lower() for w in _TOKEN.findall(entry.title))
    found = (w for w in words if len(w) >= MIN_WORD and _LETTERS.fullmatch(w) and w not in stop)
    return list(dict.fromkeys(found))


def query_mix(entries: list[Entry], count: int, seed: int) -> list[Query]:
    """Return a fixed mix of one- and two-word queries, most from non-English titles, the rest from English ones."""
    rng = random.Random(seed)
    pools: dict[bool, list[tuple[Entry, list[str]]]] = {True: [], False: []}
    for entry in entries:
        if entry.language is None:
            continue
        words = title_words(entry)
        if words:
            pools[entry.language != "en"].append((entry, words))
    non_english = round(count * NON_ENGLISH_SHARE) if pools[False] else count
    mix = []
    for foreign, wanted in ((True, non_english), (False, count - non_english)):
        pool = pools[foreign]
        if not pool:
            continue
        two_word = [item for item in pool if len(item[1]) >= 2]
        for number in range(wanted):
            # Alternate one- and two-word queries; a pool without two-word titles gives one-word ones.
            if number % 2 and two_word:
                entry, words = rng.choice(two_word)
                text = " ".join(rng.sample(words, 2))
            else:
                entry, words = rng.choice(pool)
                text = rng.choice(words)
            mix.append(Query(text, entry.language or "", entry.id))
    return mix


def percentile(values: list[float], q: float) -> float:
    """Return the ``q`` quantile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Searching:
    """An open searcher and the parser of one variant."""

    def __init__(self, variant: Variant, index: Any) -> None:
        self.variant = variant
        self.searcher = index.searcher()
        # The default group is AND between words; each word is OR-ed over the fields.
        self.parser = MultifieldParser(list(variant.fields), index.schema)

    def top(self, text: str) -> list[str]:
        """Return the ids of the first 20 hits (what a results page reads)."""
        return [hit["id"] for hit in self.searcher.search(self.parser.parse(text), limit=20)]

    def hits(self, text: str) -> set[str]:
        """Return the ids of every document ``text`` matches."""
        results = self.searcher.search(self.parser.parse(text), limit=None)
        return {hit["id"] for hit in results}

    def close(self) -> None:
        """Close the searcher."""
        self.searcher.close()


def time_queries(searchings: list[Searching], mix: list[Query]) -> dict[str, list[float]]:
    """Return each variant's latency per query (ms, median of ROUNDS, variants interleaved per query)."""
    for searching in searchings:
        for query in mix[:20]:
            searching.top(query.text)
    samples: dict[str, list[list[float]]] = {s.variant.name: [[] for _ in mix] for s in searchings}
    for _ in range(ROUNDS):
        for number, query in enumerate(mix):
            for searching in searchings:
                started = time.perf_counter()
                searching.top(query.text)
                samples[searching.variant.name][number].append((time.perf_counter() - started) * 1000)
    return {name: [statistics.median(values) for values in per_query] for name, per_query in samples.items()}


# ---------------------------------------------------------------- recall: forms B conflates and A does not


class Vocabulary:
    """The surface forms of one language's entries, grouped by the term each variant indexes them under."""

    def __init__(self, lang: str, texts: Iterable[str]) -> None:
        self.counts: Counter[str] = Counter(w.lower() for text in texts for w in _TOKEN.findall(text))
        self._english, self._own = news_analyzer(), language_analyzer(lang)
        self.by_own_term: dict[str, list[str]] = defaultdict(list)
        for form in self.counts:
            term = self.own_term(form)
            if term:
                self.by_own_term[term].append(form)

    def own_term(self, word: str) -> str | None:
        """Return the term the language's field indexes ``word`` under (None for a stop word)."""
        return next((t.text for t in self._own(word)), None)

    def english_term(self, word: str) -> str | None:
        """Return the term the current fields index ``word`` under."""
        return next((t.text for t in self._english(word)), None)

    def siblings(self, word: str) -> list[str]:
        """Return corpus forms sharing ``word``'s stem in B but indexed under another term in A, most frequent first."""
        own, english = self.own_term(word), self.english_term(word)
        if own is None:
            return []
        forms = [f for f in self.by_own_term.get(own, ()) if f != word and self.english_term(f) != english]
        return sorted(forms, key=lambda f: (-self.counts[f], f))


@dataclass
class Recall:
    """Recall figures for the non-English queries."""

    #: Hits per query as drawn, A and B.
    hits_a: list[int]
    hits_b: list[int]
    #: The same, for queries in a language that has its own fields in B.
    stemmed_hits_a: list[int]
    stemmed_hits_b: list[int]
    #: For each word of those queries: how many other corpus forms B conflates with it and A does not.
    conflated: list[int]
    #: Sibling-form queries: (found the source entry in A, found it in B, hits A, hits B).
    siblings: list[tuple[bool, bool, int, int]]


def measure_recall(a: Searching, b: Searching, mix: list[Query], entries: list[Entry]) -> Recall:
    """Return hit counts for the non-English queries and what querying an inflected sibling form finds."""
    texts: dict[str, list[str]] = defaultdict(list)
    for entry in entries:
        if entry.language in STEMMED_LANGUAGES:
            texts[entry.language].extend((entry.title, entry.text))
    vocabularies = {lang: Vocabulary(lang, values) for lang, values in texts.items()}
    recall = Recall([], [], [], [], [], [])
    for query in mix:
        if query.language == "en":
            continue
        hits_a, hits_b = len(a.hits(query.text)), len(b.hits(query.text))
        recall.hits_a.append(hits_a)
        recall.hits_b.append(hits_b)
        vocabulary = vocabularies.get(query.language)
        if vocabulary is None:
            continue
        recall.stemmed_hits_a.append(hits_a)
        recall.stemmed_hits_b.append(hits_b)
        for word in query.text.split():
            siblings = vocabulary.siblings(word)
            recall.conflated.append(len(siblings))
            if siblings and " " not in query.text:
                found_a, found_b = a.hits(siblings[0]), b.hits(siblings[0])
                recall.siblings.append(
                    (query.entry_id in found_a, query.entry_id in found_b, len(found_a), len(found_b))
                )
    return recall


# ---------------------------------------------------------------- main


def ratio(b: float, a: float) -> str:
    """Return b/a formatted, or "-" when a is zero."""
    return f"{b / a:.2f}" if a else "-"


def change(b: float, a: float) -> str:
    """Return (b - a) / a as a signed percentage."""
    return f"{(b / a - 1) * 100:+.0f}%" if a else "n/a"


def mean(values: list[int] | list[float]) -> float:
    """Return the mean of ``values`` (0 when empty)."""
    return statistics.fmean(values) if values else 0.0


def main() -> int:
    """Build the sample, measure both variants, print the table and the conclusion; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=None, help="At most N entries from the feed files (default all).")
    parser.add_argument("--english", type=int, default=2000, help="BBC articles added as English entries (2000).")
    parser.add_argument("--queries", type=int, default=300, help="Queries in the mix (default 300).")
    parser.add_argument("--seed", type=int, default=7, help="Seed of the BBC sample and the query mix (default 7).")
    args = parser.parse_args()
    if not CORPUS.is_dir() or not FEEDS.is_dir():
        print(f"{CORPUS}: corpus not present, nothing to measure")
        return 0
    warnings.simplefilter("ignore")  # feedparser's deprecation notices are not what we measure
    workdir = Path(tempfile.mkdtemp(prefix="newsdesk-bench-lang-"))
    try:
        return run(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run(args: argparse.Namespace, workdir: Path) -> int:
    """Run every phase in ``workdir``; print the figures."""
    started = time.perf_counter()
    feeds, failures = feed_entries(args.limit)
    english = bbc_entries(args.english, args.seed) if BBC.is_dir() else []
    entries = feeds + english
    print(
        f"sample: {len(feeds)} feed entries (files skipped: {dict(failures) or 'none'}) + {len(english)} BBC articles "
        f"= {len(entries)} documents, normalized in {time.perf_counter() - started:.1f}s"
    )
    languages_seen = Counter(e.language or "(none)" for e in feeds)
    print("feed entries per detected language (* = gets its own fields in B):")
    print(
        "  "
        + "  ".join(f"{lang}{'*' if lang in STEMMED_LANGUAGES else ''} {n}" for lang, n in languages_seen.most_common())
    )
    non_english = sum(1 for e in entries if e.language not in (None, "en"))
    own_fields = sum(1 for e in entries if e.language in STEMMED_LANGUAGES)
    print(
        f"of all {len(entries)} documents: {non_english} non-English ({non_english / len(entries):.1%}), "
        f"{own_fields} in a stemmed language ({own_fields / len(entries):.1%}); "
        f"B adds {2 * len(STEMMED_LANGUAGES)} fields ({', '.join(STEMMED_LANGUAGES)})",
        flush=True,
    )

    # Warm up once per variant (imports, stemmer tables) so neither pays for it in its timed build.
    for variant in VARIANTS:
        build(variant, entries[:200], workdir / f"warm-{variant.name}")
    built = {}
    for variant in VARIANTS:
        built[variant.name] = build(variant, entries, workdir / variant.name)
        cost = built[variant.name]
        print(f"built {variant.name}: {cost.cpu_seconds:.1f}s CPU, {cost.wall_seconds:.1f}s wall", flush=True)

    mix = query_mix(entries, args.queries, args.seed)
    searchings = [Searching(v, built[v.name].index) for v in VARIANTS]
    latency = time_queries(searchings, mix)
    recall = measure_recall(searchings[0], searchings[1], mix, entries)
    english_hits = {s.variant.name: [len(s.hits(q.text)) for q in mix if q.language == "en"] for s in searchings}
    for searching in searchings:
        searching.close()
    report(args, entries, own_fields, built, mix, latency, recall, english_hits)
    print(f"total run time {time.perf_counter() - started:.0f}s")
    return 0


def report(
    args: argparse.Namespace,
    entries: list[Entry],
    own_fields: int,
    built: dict[str, Built],
    mix: list[Query],
    latency: dict[str, list[float]],
    recall: Recall,
    english_hits: dict[str, list[int]],
) -> None:
    """Print the table and the conclusion."""
    a, b = built["A"], built["B"]
    rate_a, rate_b = len(entries) / a.cpu_seconds, len(entries) / b.cpu_seconds
    size_a, size_b = a.size / 2**20, b.size / 2**20
    p50_a, p50_b = percentile(latency["A"], 0.5), percentile(latency["B"], 0.5)
    p95_a, p95_b = percentile(latency["A"], 0.95), percentile(latency["B"], 0.95)
    foreign = sum(1 for q in mix if q.language != "en")
    rows = [
        ("indexing, docs/s (CPU)", f"{rate_a:.0f}", f"{rate_b:.0f}", ratio(rate_b, rate_a)),
        ("indexing, s (CPU)", f"{a.cpu_seconds:.1f}", f"{b.cpu_seconds:.1f}", ratio(b.cpu_seconds, a.cpu_seconds)),
        ("indexing, s (wall)", f"{a.wall_seconds:.1f}", f"{b.wall_seconds:.1f}", ratio(b.wall_seconds, a.wall_seconds)),
        ("index size, MiB", f"{size_a:.1f}", f"{size_b:.1f}", ratio(size_b, size_a)),
        ("query p50, ms", f"{p50_a:.2f}", f"{p50_b:.2f}", ratio(p50_b, p50_a)),
        ("query p95, ms", f"{p95_a:.2f}", f"{p95_b:.2f}", ratio(p95_b, p95_a)),
        (
            f"hits/query, non-English (n={len(recall.hits_a)})",
            f"{mean(recall.hits_a):.1f}",
            f"{mean(recall.hits_b):.1f}",
            ratio(mean(recall.hits_b), mean(recall.hits_a)),
        ),
        (
            f"  of which stemmed langs (n={len(recall.stemmed_hits_a)})",
            f"{mean(recall.stemmed_hits_a):.1f}",
            f"{mean(recall.stemmed_hits_b):.1f}",
            ratio(mean(recall.stemmed_hits_b), mean(recall.stemmed_hits_a)),
        ),
        (
            f"hits/query, English (n={len(english_hits['A'])})",
            f"{mean(english_hits['A']):.1f}",
            f"{mean(english_hits['B']):.1f}",
            ratio(mean(english_hits["B"]), mean(english_hits["A"])),
        ),
    ]
    siblings = recall.siblings
    found_a = sum(1 for s in siblings if s[0])
    found_b = sum(1 for s in siblings if s[1])
    if siblings:
        rows.append(
            (
                f"sibling form finds its entry (n={len(siblings)})",
                f"{found_a / len(siblings):.0%}",
                f"{found_b / len(siblings):.0%}",
                ratio(found_b, found_a),
            )
        )
        rows.append(
            (
                "hits/query, sibling forms",
                f"{mean([s[2] for s in siblings]):.1f}",
                f"{mean([s[3] for s in siblings]):.1f}",
                ratio(mean([s[3] for s in siblings]), mean([s[2] for s in siblings])),
            )
        )
    print(
        f"\n{len(entries)} documents; {len(mix)} queries ({foreign} from non-English titles), each timed "
        f"{ROUNDS}x with A and B interleaved, median kept; latency = parse + top 20 ids"
    )
    print(f"{'':44}{'A: current':>12}{'B: +per-lang':>14}{'B/A':>7}")
    for label, value_a, value_b, factor in rows:
        print(f"{label:44}{value_a:>12}{value_b:>14}{factor:>7}")
    with_siblings = sum(1 for n in recall.conflated if n)
    print(
        f"query words in a stemmed language: {len(recall.conflated)}; {with_siblings} of them have other corpus "
        f"forms B conflates and A does not (mean {mean(recall.conflated):.2f} forms per word, "
        f"max {max(recall.conflated, default=0)})"
    )

    share = own_fields / len(entries)
    matches = ratio(mean(recall.stemmed_hits_b), mean(recall.stemmed_hits_a))
    sibling_text = (
        f"queried with an inflected sibling form from the same language's vocabulary, the source entry is found "
        f"{found_b / len(siblings):.0%} of the time in B against {found_a / len(siblings):.0%} in A "
        f"(n={len(siblings)})"
        if siblings
        else "no query word had a sibling form to test"
    )
    print(
        f"\nConclusion: per-language fields for {len(STEMMED_LANGUAGES)} languages cost {change(size_b, size_a)} index "
        f"size, {change(b.cpu_seconds, a.cpu_seconds)} indexing CPU time and {change(p50_b, p50_a)} p50 / "
        f"{change(p95_b, p95_a)} p95 query time, for the {share:.1%} of documents that are in one of those "
        f"languages. Words drawn from those titles get {matches}x the matches in B "
        f"({mean(recall.stemmed_hits_a):.1f} -> {mean(recall.stemmed_hits_b):.1f} per query); {sibling_text}. "
        f"English queries change from {mean(english_hits['A']):.1f} to {mean(english_hits['B']):.1f} hits (B also searches them in "
        f"every per-language field)."
    )


if __name__ == "__main__":
    raise SystemExit(main())
