"""Near-duplicate fingerprints: a 64-bit SimHash over the weighted words of the clean text."""

from __future__ import annotations

import hashlib
from collections import Counter
from functools import lru_cache
from itertools import pairwise

import numpy as np

from .text import words, words_and_count

# Words shorter than this are mostly function words; they would pull every text in a language
# towards the same fingerprint.
_MIN_WORD = 3


@lru_cache(maxsize=200_000)
def _word_hash(word: str) -> int:
    # blake2b is stable across processes (unlike hash()), so fingerprints can be stored and compared.
    return int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")


def _features(tokens: list[str]) -> Counter[str]:
    # Counting every token in C and then dropping the short ones keeps the order (first occurrence)
    # and counts of counting only the long ones, at a fraction of the cost of a generator.
    features = Counter(tokens)
    for token in [token for token in features if len(token) < _MIN_WORD]:
        del features[token]
    if len(features) < 5:
        # CJK text comes out one character per token: pairs of neighbours carry the meaning.
        features = Counter(token for token in tokens if len(token) >= _MIN_WORD)
        features.update(tokens)
        features.update(f"{a}{b}" for a, b in pairwise(tokens))
    return features


def simhash(text: str) -> int:
    """Return the 64-bit SimHash of ``text`` as a signed int (0 for text without words).

    Features are the words, weighted 1 + log(count). Measured on the seed story against 250 BBC
    articles: editing a word, adding a credit line or dropping a paragraph moves it 0-1 bits, while
    99% of unrelated pairs differ in 18 bits or more.
    """
    return _simhash_words(words(text))


def _simhash_words(tokens: list[str]) -> int:
    features = _features(tokens)
    if not features:
        return 0
    count = len(features)
    hashes = np.fromiter(map(_word_hash, features), dtype=np.uint64, count=count)
    weights = 1.0 + np.log(np.fromiter(features.values(), dtype=np.float64, count=count))
    # One row of 64 bits per feature (little-endian bytes, so column i is bit i); each bit votes +w or -w.
    bits = np.unpackbits(hashes.astype("<u8").view(np.uint8).reshape(-1, 8), axis=1, bitorder="little")
    votes = weights @ (bits.astype(np.float64) * 2.0 - 1.0)
    # Bit i is set when its vote is positive; read back as a signed little-endian 64-bit int.
    return int(np.packbits(votes > 0, bitorder="little").view("<i8")[0])


def fingerprint_and_word_count(text: str, title: str) -> tuple[int, int]:
    """Return ``simhash(text or title)`` and ``count_words(text)``, finding the words only once."""
    if not text:
        return simhash(title), 0
    tokens, count = words_and_count(text)
    return _simhash_words(tokens), count
