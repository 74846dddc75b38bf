"""The labelled story corpora the benches share: readers, the calibration/held-out split, arrival orders.

- ../shared/corpus/stories/uci-news-aggregator-dev.tsv.gz: headlines only, STORY ids from an aggregator;
- ../shared/corpus/stories/allsides-roundups-dev.jsonl.gz: a left, a center and a right outlet's lead
  paragraphs on one story, worded very differently (all three carry the roundup's date).

Stories are split by a hash of their id: one half calibrates, the other is only measured, the
same half in every bench (`stories_quality.py` and `related_quality.py` alike).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import math
import random
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SHARED = Path(__file__).resolve().parents[2] / "shared"
UCI = SHARED / "corpus" / "stories" / "uci-news-aggregator-dev.tsv.gz"
ALLSIDES = SHARED / "corpus" / "stories" / "allsides-roundups-dev.jsonl.gz"
BBC = SHARED / "corpus" / "news" / "bbc_greene2006__moztom__bbc_ml" / "bbc"
#: The outlet name background articles carry (not "BBC News", which is one of AllSides' outlets).
BACKGROUND_OUTLET = "BBC archive"


@dataclass(frozen=True)
class Item:
    """One labelled article."""

    #: Unique id ("uci:<row>" or the AllSides id).
    id: str
    #: Headline.
    title: str
    #: Lead paragraphs ("" for a headline-only corpus).
    text: str
    #: The outlet: its name as the corpus gives it.
    outlet: str
    #: The labelled story.
    story: str
    #: Publication time (aware UTC).
    published_at: datetime
    #: The article's link.
    url: str = ""
    #: The outlet's host name.
    host: str = ""
    #: The labelled topic: UCI's category (b, t, e, m), AllSides' story topic.
    topic: str = ""


def read_uci(path: Path = UCI, limit: int | None = None) -> list[Item]:
    """Return the UCI headlines (title only), in file order."""
    items = []
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader)
        for record in reader:
            if len(record) != 8:
                continue
            rid, title, url, publisher, category, story, hostname, stamp = record
            when = datetime.fromtimestamp(int(stamp) / 1000, UTC)
            items.append(Item(f"uci:{rid}", title, "", publisher, story, when, url, hostname, category))
            if limit and len(items) >= limit:
                break
    return items


def read_allsides(path: Path = ALLSIDES) -> list[Item]:
    """Return the AllSides articles (title and lead paragraphs)."""
    items = []
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            when = datetime.fromisoformat(row["published_at"]).astimezone(UTC)
            items.append(
                Item(
                    row["id"],
                    row["title"],
                    row["text"],
                    row["source"],
                    row["cluster"],
                    when,
                    row["url"],
                    row["host"],
                    row.get("story_topic", ""),
                )
            )
    return items


def held_out(story: str) -> bool:
    """Return True for the stories kept apart from calibration (a stable half, by hash)."""
    return hashlib.blake2b(story.encode(), digest_size=2).digest()[0] % 2 == 1


def split(items: Sequence[Item]) -> tuple[list[Item], list[Item]]:
    """Return (calibration, held-out) items."""
    calibration = [item for item in items if not held_out(item.story)]
    return calibration, [item for item in items if held_out(item.story)]


def spread(items: Sequence[Item], seed: int, *, squeeze: float = 1.0) -> list[Item]:
    """Return the items with each story's members spread over 2-72 hours, interleaved in time order."""
    rng = random.Random(seed)
    by_story: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        by_story[item.story].append(item)
    origin = min(item.published_at for item in items)
    out = []
    for story in sorted(by_story):
        members = by_story[story]
        anchor = min(m.published_at for m in members)
        anchor = origin + (anchor - origin) / squeeze
        hours = math.exp(rng.uniform(math.log(2), math.log(72)))
        for member in sorted(members, key=lambda m: m.id):
            out.append(replace(member, published_at=anchor + timedelta(hours=rng.uniform(0, hours))))
    return sorted(out, key=lambda m: (m.published_at, m.id))


def as_published(items: Sequence[Item], *, squeeze: float = 1.0) -> list[Item]:
    """Return the items in corpus time order (optionally with dates packed closer)."""
    origin = min(item.published_at for item in items)
    out = [replace(i, published_at=origin + (i.published_at - origin) / squeeze) for i in items]
    return sorted(out, key=lambda m: (m.published_at, m.id))


def headlines_for_a_third(items: Sequence[Item], seed: int) -> list[Item]:
    """Return the items with a third of them (at random) reduced to their headline."""
    rng = random.Random(seed)
    return [replace(i, text="") if rng.random() < 1 / 3 else i for i in items]


#: The kinds of text a feed carries, for `as_fed`.
TEXT_KINDS = ("full", "mixed", "summary", "headline")


def as_fed(items: Sequence[Item], kind: str, seed: int) -> list[Item]:
    """Return the items as a feed of ``kind`` carries them: "full" as they are, "mixed" a third of them
    headline only (`headlines_for_a_third`), "summary" each text cut to its first sentence (at most 40
    words, as a summary-only feed gives it), "headline" no text at all."""
    if kind == "full":
        return list(items)
    if kind == "mixed":
        return headlines_for_a_third(items, seed)
    if kind == "headline":
        return [replace(i, text="") for i in items]
    if kind == "summary":
        return [replace(i, text=first_sentence(i.text)) for i in items]
    raise ValueError(f"unknown text kind {kind!r}; one of {', '.join(TEXT_KINDS)}")


def first_sentence(text: str, shortest: int = 12, limit: int = 40) -> str:
    """Return the first sentence of ``text`` of at least ``shortest`` words (a full stop, question or
    exclamation mark ending a word; earlier ones are mostly abbreviations: "Gen.", "U.S."), cut to
    ``limit`` words."""
    words: list[str] = []
    for word in text.split():
        words.append(word)
        if len(words) >= limit or (len(words) >= shortest and word[-1:] in ".?!"):
            break
    return " ".join(words)


def read_bbc_article(path: Path) -> tuple[str, str]:
    """Return (title, body) of one BBC News article file: the first line, then the other lines joined
    (one file is not valid UTF-8: undecodable bytes are replaced)."""
    lines = path.read_bytes().decode("utf-8", "replace").split("\n")
    return lines[0].strip(), " ".join(line.strip() for line in lines[1:] if line.strip())


def background(items: Sequence[Item], count: int, seed: int, path: Path = BBC) -> list[Item]:
    """Return ``count`` BBC News articles (2004-05, full text) dated at random over the span of ``items``,
    each a story of its own: other news arriving between the labelled stories', as a feed reader with
    many feeds receives it (UK politics, business, technology, sport, entertainment), so related coverage
    is asked among distractors and not only among the labelled stories."""
    rng = random.Random(seed)
    paths = sorted(path.glob("*/*.txt"))
    chosen = sorted(rng.sample(paths, min(count, len(paths))))
    start = min(item.published_at for item in items)
    seconds = (max(item.published_at for item in items) - start).total_seconds()
    out = []
    for article in chosen:
        title, body = read_bbc_article(article)
        slug = f"{article.parent.name}-{article.stem}"
        when = start + timedelta(seconds=rng.uniform(0, seconds))
        out.append(
            Item(
                f"bbc:{slug}",
                title,
                body,
                BACKGROUND_OUTLET,
                f"bbc:{slug}",
                when,
                f"https://bbc.example/{slug}",
                "bbc.example",
                article.parent.name,
            )
        )
    return out


def other_outlets_near(items: Sequence[Item], vectors: Any, hours: float = 72.0) -> Iterator[tuple[int, Any, Any]]:
    """Yield (k, cosine of item k's unit vector with every item's, mask of the other outlets' items within
    ``hours`` of it) for each item that has any: where the benches look for an article's nearest in meaning."""
    import numpy as np

    times = np.array([item.published_at.timestamp() for item in items])
    outlets = np.array([item.outlet for item in items])
    for k in range(len(items)):
        near = (np.abs(times - times[k]) <= hours * 3600) & (outlets != outlets[k])
        if near.any():
            yield k, vectors @ vectors[k], near
