"""Near-duplicate fingerprints: a 64-bit SimHash over word shingles of the clean text."""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np

from .text import words

_MASK = (1 << 64) - 1
_SHINGLE = 3
# Odd 64-bit multipliers (from SplitMix64) that mix three word hashes into one shingle hash.
_MIX_A = np.uint64(0x9E3779B97F4A7C15)
_MIX_B = np.uint64(0xBF58476D1CE4E5B9)
_MIX_C = np.uint64(0x94D049BB133111EB)
_SHIFT_30 = np.uint64(30)
_SHIFT_27 = np.uint64(27)
_SHIFT_31 = np.uint64(31)


@lru_cache(maxsize=200_000)
def _word_hash(word: str) -> int:
    # blake2b is stable across processes (unlike hash()), so fingerprints can be stored and compared.
    return int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")


def _shingle_hashes(tokens: list[str]) -> np.ndarray:
    hashes = np.fromiter((_word_hash(t) for t in tokens), dtype=np.uint64, count=len(tokens))
    if len(tokens) >= _SHINGLE:
        # Hash each run of three words: combine, then the SplitMix64 finalizer spreads every bit.
        mixed = hashes[:-2] * _MIX_A + hashes[1:-1] * _MIX_B + hashes[2:]
        mixed ^= mixed >> _SHIFT_30
        mixed *= _MIX_B
        mixed ^= mixed >> _SHIFT_27
        mixed *= _MIX_C
        mixed ^= mixed >> _SHIFT_31
        return mixed
    return hashes


def simhash(text: str) -> int:
    """Return the 64-bit SimHash of ``text`` as a signed int (0 for text without words)."""
    tokens = words(text)
    if not tokens:
        return 0
    hashes = _shingle_hashes(tokens)
    # One row of 64 bits per shingle (little-endian bytes, so column i is bit i); each bit votes.
    bits = np.unpackbits(hashes.astype("<u8").view(np.uint8).reshape(-1, 8), axis=1, bitorder="little")
    ones = bits.sum(axis=0, dtype=np.int64)
    value = 0
    for i, count in enumerate(ones.tolist()):
        if count * 2 > len(hashes):
            value |= 1 << i
    return value - (1 << 64) if value >= 1 << 63 else value


def hamming(a: int, b: int) -> int:
    """Return the number of bits in which two 64-bit fingerprints differ."""
    return ((a ^ b) & _MASK).bit_count()


def near_duplicate(a: int, b: int, max_distance: int = 3) -> bool:
    """Return True when two fingerprints are at most ``max_distance`` bits apart."""
    return hamming(a, b) <= max_distance
