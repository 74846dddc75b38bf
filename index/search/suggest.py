"""“Did you mean”: respell query words that the index does not know, from the index's own title words."""

from __future__ import annotations

import re
from typing import Any

from ..schema import TEXT_FIELDS
from .compile import analyze
from .query import ParsedQuery

#: A respelling must be found in this many times more documents than the word typed.
FREQUENCY_MARGIN = 3


def max_edits(word: str) -> int:
    """Return the edits a respelling of ``word`` may make: one for short words ("kiev" is no typo of "kill")."""
    return 1 if len(word) < 6 else 2


def _document_frequency(searcher: Any, word: str) -> int:
    """Return how many documents hold the word in some text field (at most; deleted ones may count)."""
    reader = searcher.reader()
    return max((reader.doc_frequency(f, stem) for stem in analyze(word) for f in TEXT_FIELDS), default=0)


def _known(searcher: Any, word: str) -> bool:
    """Return True when some document contains the word (as a title spelling or a text stem)."""
    reader = searcher.reader()
    folded = analyze(word, names=True)
    if folded and ("spell_title", folded[0]) in reader:
        return True
    stems = analyze(word)
    return not stems or any(("text", s) in reader or ("title", s) in reader for s in stems)


def suggest_query(searcher: Any, query: str, parsed: ParsedQuery) -> str | None:
    """Return ``query`` with unknown words replaced by the closest frequent title words, or None."""
    corrector = searcher.corrector("title")
    suggestion = query
    changed = False
    for word in parsed.words():
        if len(word) < 3 or not word.isalpha() or _known(searcher, word):
            continue
        # Two letters of prefix: typos rarely hit the first two, and it keeps the automaton walk ~10x smaller.
        candidates = corrector.suggest(word.lower(), limit=1, maxdist=max_edits(word), prefix=2)
        if not candidates or candidates[0] == word.lower():
            continue
        # Only a much more common word is worth proposing instead of what the reader typed.
        if _document_frequency(searcher, candidates[0]) <= FREQUENCY_MARGIN * _document_frequency(searcher, word):
            continue
        # Never inside a field prefix or value ("lang:" once became "la:").
        pattern = re.compile(rf"(?<![\w:]){re.escape(word)}(?![\w:])", re.IGNORECASE)
        suggestion, count = pattern.subn(candidates[0], suggestion, count=1)
        changed = changed or count > 0
    return suggestion if changed else None
