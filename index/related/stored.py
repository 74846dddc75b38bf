"""A document's terms for related coverage, worked out when it is indexed and stored with it.

Scoring a candidate needs its title's and lead's terms (the schema analyzer's, in order) and its
folded title. Reading the lead from the store and analyzing it was a third of a cold answer's cost
(about sixty candidates each); the indexer now stores them in the ``related_terms`` field, so the
finder reads them with the candidate's other stored fields. A document indexed before the field
existed, or stored for a lead of another length, has no usable value: the finder reads and
analyzes that candidate's lead as before (`newsdesk reindex` fills the field for every document).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

from .rank import RelatedSettings, title_key

#: Characters of the lead whose terms are stored: `RelatedSettings.body_chars` as shipped.
LEAD_CHARS = RelatedSettings().body_chars


class StoredTerms(NamedTuple):
    """A candidate's stored terms, as `term_counts` and `title_key` would give them from its text."""

    #: Its title folded for duplicate detection (`title_key`).
    title_key: str
    #: Its title's terms, in order.
    title: list[str]
    #: Its lead's terms (the first `LEAD_CHARS` characters of its summary, else of its text), in order.
    lead: list[str]


def stored_terms(analyze: Callable[[str], Iterable[str]], title: str, lead: str) -> str | None:
    """Return the ``related_terms`` value of a document (the lead's length, the folded title, the title's
    and the lead's terms, a line each), or None when a term would not read back as written."""
    title_terms = list(analyze(title))
    lead_terms = list(analyze(lead[:LEAD_CHARS]))
    # Plain text keeps it small: terms are the tokenizer's words, with no spaces or line breaks (checked,
    # since a filter could map a character to one), and a folded title has no line breaks.
    if any(not term or " " in term or "\n" in term for term in (*title_terms, *lead_terms)):
        return None
    return "\n".join((str(LEAD_CHARS), title_key(title), " ".join(title_terms), " ".join(lead_terms)))


def read_terms(value: object, lead_chars: int) -> StoredTerms | None:
    """Return the terms a ``related_terms`` value holds, or None when it has none for a lead of ``lead_chars``."""
    if not isinstance(value, str):
        return None  # a document indexed before the field existed
    parts = value.split("\n")
    if len(parts) != 4 or parts[0] != str(lead_chars):
        return None
    return StoredTerms(parts[1], _split(parts[2]), _split(parts[3]))


def _split(terms: str) -> list[str]:
    return terms.split(" ") if terms else []
