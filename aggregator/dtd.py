"""How much text a document's internal DTD entities would add when expanded, counted before parsing.

An entity declared once and referenced many times multiplies the document: the "quadratic blowup"
(one 50 KB entity referenced 3,000 times, 150 KB on the wire, 150 MB expanded) and "billion laughs"
(entities nested ten deep). expat refuses the worst only past 8 MiB at 100x amplification
(Python 3.11 cannot tune that), and feedparser's lenient fallback parser expands the declared
entities itself, with no limit at all. So Newsdesk counts first: declarations and references are
found with two regular expressions in one pass, and a document over the budget is never parsed.
"""

from __future__ import annotations

import re
from collections import Counter

#: Text internal entities may add to a document, in bytes, when the document is smaller than this.
ENTITY_EXPANSION_FLOOR = 2**20

# An internal general entity with a literal value: <!ENTITY name "value"> or 'value'. Parameter
# entities ("%") and external ones (SYSTEM/PUBLIC) do not match; neither is ever expanded here
# (feedparser keeps only literal ones and turns off external entities).
_DECLARATION = re.compile(rb"""<!ENTITY\s+([^\s%"'<>]+)\s+(?:"([^"]*)"|'([^']*)')""")
# A general entity reference; character references (&#...;) never expand beyond one character.
_REFERENCE = re.compile(rb"&([^\s&;#<>\"']+);")


class EntityBudgetExceeded(Exception):
    """A document's internal entities would expand beyond the budget."""

    def __init__(self, expanded: int, budget: int) -> None:
        super().__init__(f"entities would expand to {expanded} bytes (budget {budget})")
        #: Bytes the entity references would expand to (at least; counting stops past the budget).
        self.expanded = expanded
        #: The budget it exceeded.
        self.budget = budget


def entity_budget(document_size: int) -> int:
    """Return how many bytes entity expansion may add to a document of ``document_size`` bytes."""
    # A real feed that declares entities uses them for single characters (&nbsp; &copy;): they add
    # at most about the document's own size. Amplification beyond that is an attack or a broken feed.
    return max(ENTITY_EXPANSION_FLOOR, document_size)


def check_entity_expansion(data: bytes) -> int:
    """Return the bytes ``data``'s internal entities expand to; raise EntityBudgetExceeded past the budget."""
    if b"<!ENTITY" not in data:
        return 0
    budget = entity_budget(len(data))
    values: dict[bytes, bytes] = {}
    end = 0
    for match in _DECLARATION.finditer(data):
        # The first declaration wins (XML 1.0 section 4.2).
        values.setdefault(match.group(1), match.group(2) if match.group(2) is not None else match.group(3) or b"")
        end = match.end()
    if not values:
        return 0
    sizes: dict[bytes, int] = {}

    def expanded(name: bytes, stack: frozenset[bytes]) -> int:
        if name in sizes:
            return sizes[name]
        if name in stack:
            # A recursive entity is a fatal error for any conforming parser; never worth expanding.
            raise EntityBudgetExceeded(budget + 1, budget)
        value = values[name]
        size = len(value)
        for inner, count in Counter(_REFERENCE.findall(value)).items():
            if inner in values:
                size += count * (expanded(inner, stack | {name}) - len(inner) - 2)
                if size > budget:
                    raise EntityBudgetExceeded(size, budget)
        sizes[name] = size
        return size

    total = 0
    # References after the last declaration are the ones the document's elements hold.
    for name, count in Counter(_REFERENCE.findall(data, end)).items():
        if name in values:
            total += count * expanded(name, frozenset())
            if total > budget:
                raise EntityBudgetExceeded(total, budget)
    return total
