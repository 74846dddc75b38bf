"""Highlighted snippets: the passage of the clean text with the most query terms, terms in <mark>."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from functools import lru_cache

from .compile import analyze

_SPACE = re.compile(r"\s+")
#: Longest stretch of text scanned for a passage; leads of news stories carry the matches that matter.
_SCAN = 30_000


@lru_cache(maxsize=20_000)
def _stems_of(word: str) -> frozenset[str]:
    return frozenset(analyze(word))


@lru_cache(maxsize=256)
def _candidates(keys: tuple[str, ...]) -> re.Pattern[str]:
    # A surface word starts with (nearly) its stem: "elections" -> "elect", "happiness" -> "happi".
    # The regex finds candidates in C; each candidate is confirmed by stemming it.
    heads = sorted({re.escape(k[: max(3, len(k) - 1)]) for k in keys}, key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(heads) + r")[\w.'’]*", re.IGNORECASE)


def find_terms(text: str, stems: set[str], prefixes: Sequence[str] = ()) -> list[tuple[int, int, str]]:
    """Return (start, end, term) for every word of ``text`` that matches a stem or a prefix."""
    keys = tuple(sorted(stems | set(prefixes)))
    if not keys or not text:
        return []
    found: list[tuple[int, int, str]] = []
    for match in _candidates(keys).finditer(text, 0, _SCAN):
        word = match.group(0).rstrip(".'’")
        word_stems = _stems_of(word.lower())
        hit = next(iter(word_stems & stems), None)
        if hit is None:
            lowered = word.lower()
            hit = next((p for p in prefixes if lowered.startswith(p)), None)
        if hit is not None:
            found.append((match.start(), match.start() + len(word), hit))
    return found


def _best_window(matches: list[tuple[int, int, str]], size: int) -> int:
    best_start, best_score = matches[0][0], -1
    for i, (start, _end, _term) in enumerate(matches):
        terms = {t for s, e, t in matches[i:] if e <= start + size}
        score = len(terms) * 100 + sum(1 for s, e, _t in matches[i:] if e <= start + size)
        if score > best_score:
            best_start, best_score = start, score
    return best_start


def make_snippet(text: str, stems: set[str], prefixes: Sequence[str] = (), *, size: int = 240) -> str:
    """Return an HTML-safe passage of ``text`` (about ``size`` characters) with matching words in <mark>."""
    matches = find_terms(text, stems, prefixes)
    if not matches:
        lead = _SPACE.sub(" ", text[: size * 2]).strip()
        cut = lead[:size]
        if len(lead) > size:
            cut = cut.rsplit(" ", 1)[0] + " …"
        return html.escape(cut, quote=False)
    anchor = _best_window(matches, size)
    # Start a little before the first term, at a word boundary (and never before its paragraph).
    start = max(0, anchor - 60)
    paragraph = text.rfind("\n\n", 0, anchor)
    if paragraph >= start:
        start = paragraph + 2
    elif start > 0:
        space = text.find(" ", start, anchor)
        start = space + 1 if space != -1 else start
    end = min(len(text), start + size)
    if end < len(text):
        space = text.rfind(" ", anchor, end)
        end = space if space > anchor else end
    pieces: list[str] = ["… " if start > 0 else ""]
    cursor = start
    for m_start, m_end, _term in matches:
        if m_start < start or m_end > end:
            continue
        pieces.append(html.escape(_SPACE.sub(" ", text[cursor:m_start]), quote=False))
        pieces.append(f"<mark>{html.escape(text[m_start:m_end], quote=False)}</mark>")
        cursor = m_end
    pieces.append(html.escape(_SPACE.sub(" ", text[cursor:end]), quote=False))
    if end < len(text):
        pieces.append(" …")
    return "".join(pieces).strip()


def mark_title(title: str, stems: set[str], prefixes: Sequence[str] = ()) -> str:
    """Return the title HTML-escaped with matching words in <mark>."""
    pieces: list[str] = []
    cursor = 0
    for start, end, _term in find_terms(title, stems, prefixes):
        pieces.append(html.escape(title[cursor:start], quote=False))
        pieces.append(f"<mark>{html.escape(title[start:end], quote=False)}</mark>")
        cursor = end
    pieces.append(html.escape(title[cursor:], quote=False))
    return "".join(pieces)
