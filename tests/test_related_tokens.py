"""Related coverage's word memo gives exactly the terms of the schema's analyzer, on real news text."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from index.related.tokens import TermMemo
from index.schema import build_schema, name_analyzer

from .support.story_articles import EXPLOSION, OTHERS

TRICKY = [
    "",
    "   ",
    "U.S. strikes: Pelosi's plan, Biden’s veto — and the 2,500 workers at Ørsted's Æbeltoft site",
    "Ça va? Müller, São Paulo, Kraków, naïve façades; the THE The a an and of",
    "rock'n'roll e.g. i.e. 3.5% 1,000,000 x86_64 __init__ C++ C# .NET node.js",
    "Москва и Киев: переговоры; 東京 オリンピック; العربية",
    "running runs ran runner's happily happiness generously generalization",
    "... '' ’’ .a a. 'a a' _a_ -- --a",
]


def articles(shared: Path) -> list[str]:
    """Return the titles and lead paragraphs of the AllSides roundups (three outlets' wordings of a story)."""
    with gzip.open(shared / "corpus" / "stories" / "allsides-roundups-dev.jsonl.gz", "rt") as lines:
        rows = [json.loads(line) for line in lines]
    return [str(value) for row in rows for key, value in row.items() if key in ("title", "text") and value]


def test_the_memo_gives_the_analyzers_terms_in_order(shared_dir: Path) -> None:
    analyzer = build_schema()["title"].analyzer
    memo = TermMemo(analyzer, size=500)  # small, so it also starts afresh along the way
    texts = TRICKY + [a.title for a in EXPLOSION + OTHERS] + [" ".join(a.paragraphs) for a in EXPLOSION + OTHERS]
    texts += articles(shared_dir)
    assert len(texts) > 1000
    for text in texts:
        assert memo.terms(text) == [token.text for token in analyzer(text)], text
    # Twice over: remembered words give the same terms as fresh ones.
    for text in texts[:200]:
        assert memo.terms(text) == [token.text for token in analyzer(text)], text


def test_the_memo_shortcuts_the_news_analyzer_and_falls_back_for_others() -> None:
    news = TermMemo(build_schema()["title"].analyzer)
    assert news._split is not None  # the tokenizer's pattern splits the words: the shortcut is taken
    words = news.terms("Explosions exploded")
    assert words == ["explos", "explod"]
    assert news._memo == {"Explosions": ("explos",), "exploded": ("explod",)}
    names = TermMemo(name_analyzer())
    assert names.terms("Jean-Luc Müller") == [t.text for t in name_analyzer()("Jean-Luc Müller")]
