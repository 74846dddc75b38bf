"""Near-duplicate fingerprints: a 64-bit SimHash over word shingles of the clean text."""

from __future__ import annotations

import hashlib

import numpy as np

from .text import words

_MASK = (1 << 64) - 1
_SHINGLE = 3
# Bit i of a hash, for i in 0..63, as a column vector the accumulator can broadcast against.
_BITS = np.arange(64, dtype=np.uint64)


def _shingles(text: str) -> list[str]:
    tokens = words(text)
    if len(tokens) < _SHINGLE:
        return tokens
    return [" ".join(tokens[i : i + _SHINGLE]) for i in range(len(tokens) - _SHINGLE + 1)]


def simhash(text: str) -> int:
    """Return the 64-bit SimHash of ``text`` as a signed int (0 for text without words)."""
    shingles = _shingles(text)
    if not shingles:
        return 0
    # blake2b is stable across processes (unlike hash()), so fingerprints can be stored and compared.
    digests = b"".join(hashlib.blake2b(s.encode(), digest_size=8).digest() for s in shingles)
    hashes = np.frombuffer(digests, dtype="<u8")
    bits = (hashes[:, None] >> _BITS) & np.uint64(1)
    votes = bits.sum(axis=0, dtype=np.int64) * 2 - len(shingles)
    value = 0
    for i, vote in enumerate(votes.tolist()):
        if vote > 0:
            value |= 1 << i
    return value - (1 << 64) if value >= 1 << 63 else value


def hamming(a: int, b: int) -> int:
    """Return the number of bits in which two 64-bit fingerprints differ."""
    return ((a ^ b) & _MASK).bit_count()


def near_duplicate(a: int, b: int, max_distance: int = 3) -> bool:
    """Return True when two fingerprints are at most ``max_distance`` bits apart."""
    return hamming(a, b) <= max_distance
