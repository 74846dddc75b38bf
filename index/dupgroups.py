"""Near-duplicate groups at index time: banded SimHash lookups, so search can collapse by a column.

Four 16-bit bands of a 64-bit fingerprint: two fingerprints at most 3 bits apart differ in at
most 3 bands, so they share at least one band exactly (pigeonhole). A band hit is a candidate;
the Hamming distance confirms it.
"""

from __future__ import annotations

from dataclasses import dataclass

from aggregator.simhash import NEAR_DUPLICATE_BITS, hamming

#: Fingerprints at most this many bits apart are the same story (the bands below rely on it being 3).
MAX_DISTANCE = NEAR_DUPLICATE_BITS
#: Copies published further apart than this are separate stories (boilerplate collides over years).
MAX_SPREAD_SECONDS = 7 * 86400
_BANDS = 4


def bands(fingerprint: int) -> list[int]:
    """Return the fingerprint's four band keys (band number in the top bits); none for 0 (no text)."""
    if fingerprint == 0:
        return []
    value = fingerprint & ((1 << 64) - 1)
    return [(i << 16) | ((value >> (16 * i)) & 0xFFFF) for i in range(_BANDS)]


def band_tokens(fingerprint: int) -> list[str]:
    """Return the band keys as index tokens ("b0-3fa2"), for the dupbands field."""
    return [f"b{key >> 16}-{key & 0xFFFF:04x}" for key in bands(fingerprint)]


@dataclass
class _Member:
    entry_id: str
    fingerprint: int
    published: float
    group: str


class DupGroups:
    """An in-memory band table of indexed entries that assigns each new entry its near-duplicate group."""

    def __init__(self) -> None:
        self._by_band: dict[int, list[_Member]] = {}
        self._by_id: dict[str, _Member] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self._by_id

    def add(self, entry_id: str, fingerprint: int, published: float, group: str) -> None:
        """Record an indexed entry and its group (replacing what was known of it)."""
        self.remove(entry_id)
        member = _Member(entry_id, fingerprint, published, group)
        self._by_id[entry_id] = member
        for key in bands(fingerprint):
            self._by_band.setdefault(key, []).append(member)

    def remove(self, entry_id: str) -> None:
        """Forget an entry (deleted, or about to be replaced)."""
        member = self._by_id.pop(entry_id, None)
        if member is None:
            return
        for key in bands(member.fingerprint):
            bucket = self._by_band.get(key)
            if bucket is not None:
                bucket[:] = [m for m in bucket if m is not member]

    def assign(self, entry_id: str, fingerprint: int, published: float) -> str:
        """Return the group for an entry: the closest earlier copy's group, else its own id; record it."""
        best: _Member | None = None
        best_distance = MAX_DISTANCE + 1
        for key in bands(fingerprint):
            for member in self._by_band.get(key, ()):
                if member.entry_id == entry_id or abs(member.published - published) > MAX_SPREAD_SECONDS:
                    continue
                distance = hamming(member.fingerprint, fingerprint)
                # Ties go to the smaller group id, so the answer does not depend on insertion order.
                if distance < best_distance or (
                    distance == best_distance and best is not None and member.group < best.group
                ):
                    best, best_distance = member, distance
        group = best.group if best is not None else entry_id
        self.add(entry_id, fingerprint, published, group)
        return group
