"""The schema analyzer's terms for related coverage, with each word's terms remembered.

Related coverage analyzes the title and lead of every candidate it scores (about sixty per cold
answer). Whoosh's analyzer chain makes a Token object per word and passes it through five filters,
the stemmer behind a bookkeeping cache; that was a fifth of a cold answer's cost. Every filter of
the news analyzer works on one token at a time (lowercase, accents, stop words, stemming), so a
word always gives the same terms wherever it appears: the tokenizer's pattern splits the text into
words in C, and each distinct word goes through the real analyzer once.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

from whoosh.analysis import CompositeAnalyzer, RegexTokenizer

#: Distinct words remembered before the memo starts afresh (a word costs ~200 bytes).
MEMO_WORDS = 200_000


class TermMemo:
    """Text -> the index terms the analyzer gives, in order; a word's terms are computed once."""

    def __init__(self, analyzer: Any, *, size: int = MEMO_WORDS) -> None:
        self.analyzer = analyzer
        self._split = _word_splitter(analyzer)
        self._memo: dict[str, tuple[str, ...]] = {}
        self._size = size
        self._lock = threading.Lock()

    def terms(self, text: str) -> list[str]:
        """Return the terms of ``text``, as ``[t.text for t in analyzer(text)]`` gives them."""
        if self._split is None:
            return [token.text for token in self.analyzer(text)]
        memo = self._memo
        found: list[str] = []
        for word in self._split(text):
            terms = memo.get(word)
            if terms is None:
                terms = tuple(token.text for token in self.analyzer(word))
                with self._lock:
                    if len(memo) >= self._size:
                        memo.clear()
                    memo[word] = terms
            found.extend(terms)
        return found


def _word_splitter(analyzer: Any) -> Callable[[str], list[str]] | None:
    """Return the analyzer's tokenizer as a plain function when it is a regex tokenizer of words, else None."""
    items = analyzer.items if isinstance(analyzer, CompositeAnalyzer) else [analyzer]
    tokenizer = items[0]
    if not isinstance(tokenizer, RegexTokenizer) or tokenizer.gaps or tokenizer.expression.groups:
        return None  # a tokenizer that splits on gaps, or whose groups findall would return: no shortcut
    expression: re.Pattern[str] = tokenizer.expression
    return expression.findall
