"""What two SimHash fingerprints say about each other: their distance and the near-duplicate threshold.

Entries carry a 64-bit SimHash of their text (``Entry.fingerprint``, computed by
``aggregator.normalize.fingerprint``). Normalizing, index-time grouping (``index.dupgroups``) and
related coverage (``index.related.rank``) all compare fingerprints, and must agree on what "the same
text" means, so the comparison lives here, in one module that depends on nothing.
"""

from __future__ import annotations

_MASK = (1 << 64) - 1

#: Fingerprints at most this many bits apart are copies of the same text (an edited word, a credit
#: line or a dropped paragraph moves a fingerprint 0-1 bits; 99% of unrelated pairs differ in 18 or more).
NEAR_DUPLICATE_BITS = 3


def hamming(a: int, b: int) -> int:
    """Return the number of bits in which two 64-bit fingerprints differ."""
    return ((a ^ b) & _MASK).bit_count()


def near_duplicate(a: int, b: int, max_distance: int = NEAR_DUPLICATE_BITS) -> bool:
    """Return True when two fingerprints are at most ``max_distance`` bits apart."""
    return hamming(a, b) <= max_distance
