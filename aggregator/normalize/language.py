"""Language: the declared one reduced to ISO 639-1, else a guess from the text with py3langid."""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

_CODE = re.compile(r"^([a-z]{2,3})(?:[-_].*)?$")
# Three-letter or legacy codes feeds use, mapped to the two-letter code the index expects.
_ALIASES = {
    "iw": "he",
    "in": "id",
    "ji": "yi",
    "jw": "jv",
    "eng": "en",
    "fre": "fr",
    "fra": "fr",
    "ger": "de",
    "deu": "de",
}
# Below this many characters a guess is noise; below this probability it is not worth stating.
_MIN_CHARS = 40
_MIN_CONFIDENCE = 0.5
_SAMPLE = 1000


def declared_language(*candidates: str | None) -> str | None:
    """Return the first declared language tag reduced to a lower-case ISO 639-1 code, or None."""
    for candidate in candidates:
        if not candidate:
            continue
        match = _CODE.match(candidate.strip().lower())
        if match:
            code = _ALIASES.get(match.group(1), match.group(1))
            if len(code) == 2:
                return code
    return None


# How many bytes back the language model's automaton remembers: the longest byte n-gram among
# its features. Checked when the model loads (``_window``).
_WINDOW = 6


class _WindowedIdentifier:
    """py3langid's classifier with the automaton walk done for all positions at once in numpy.

    py3langid walks its n-gram automaton one byte at a time in Python, most of its cost. The
    automaton is an Aho-Corasick one over n-grams of at most ``_WINDOW`` bytes, so its state after a
    byte depends only on the last ``_WINDOW`` bytes: running it from the start state over each
    position's window, all positions in step, reaches the same states. The counts, their order and
    the arithmetic after them are py3langid's own, so the scores are the same numbers
    (``tests/test_language.py`` compares both on real text).
    """

    def __init__(self, model: Any) -> None:
        import numpy as np

        self.model = model
        self.next_move = np.frombuffer(model.tk_nextmove, dtype=np.uint32)
        self.row_base = np.asarray(model.tk_row, dtype=np.int64) << 8
        self.output = np.asarray(model.tk_output, dtype=np.int64)
        # The model's weights are float16, and numpy converts the rows a text needs to float32 on
        # every call, more than half of the cost. Each row is converted once instead (the same
        # exact values) into the next free row of a float32 table, so memory grows with the
        # features texts actually hold (about 14 MB after 3,000 news texts), not the model's 57 MB:
        # np.empty leaves the pages not yet written unallocated.
        self.weights = np.empty(model.nb_ptc.shape, dtype=np.float32)
        self.slots = np.full(len(model.nb_ptc), -1, dtype=np.int64)
        self.used = 0

    def rows(self, indexes: Any) -> Any:
        """Return the model's weight rows for ``indexes`` (distinct feature indexes) as float32."""
        import numpy as np

        slots = self.slots[indexes]
        missing = indexes[slots < 0]
        if len(missing):
            fresh = np.arange(self.used, self.used + len(missing))
            self.weights[fresh] = self.model.nb_ptc[missing]
            self.slots[missing] = fresh
            self.used += len(missing)
            slots = self.slots[indexes]
        return self.weights[slots]

    def visits(self, data: bytes) -> tuple[Any, Any] | None:
        """Return (feature indexes in first-seen order, their counts), or None without features."""
        import numpy as np

        text = np.frombuffer(data, dtype=np.uint8).astype(np.int64)
        states = np.zeros(len(text), dtype=np.int64)
        # Step k feeds each position the byte k places before it; positions nearer the start than
        # that have no such byte and stay where they are, as the sequential walk would be.
        for back in range(_WINDOW - 1, -1, -1):
            if back >= len(text):
                continue
            tail = states[back:]
            states[back:] = self.next_move[self.row_base[tail] + text[: len(text) - back]]
        features = self.output[states]
        features = features[features >= 0]
        if not len(features):
            return None
        unique, first, counts = np.unique(features, return_index=True, return_counts=True)
        order = np.argsort(first, kind="stable")
        return unique[order], counts[order]

    def classify(self, text: str) -> tuple[str, float]:
        """Return py3langid's ``classify(text)`` for a model loaded with ``norm_probs=True``."""
        import numpy as np

        model = self.model
        data = model._encode(text)
        found = self.visits(data)
        if found is None:
            scores = np.full(len(model.nb_classes), 0.0, dtype=np.float32)
        else:
            indexes, counts = found
            scores = np.log1p(counts.astype(np.float32)) @ self.rows(indexes) + model.nb_pc
        scores *= 1.0 / math.sqrt(len(data) or 1)
        np.exp(scores - scores.max(), out=scores)
        scores /= scores.sum()
        for first, duplicate in model._alias_pairs:
            scores[first] += scores[duplicate]
            scores[duplicate] = 0.0
        best = int(scores.argmax())
        return model.nb_classes[best], float(scores[best])


@lru_cache(maxsize=1)
def _model() -> Any:
    # Loading the model takes ~0.5 s, so it happens on the first guess, not at import time.
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


@lru_cache(maxsize=1)
def _identifier() -> _WindowedIdentifier:
    return _WindowedIdentifier(_model())


def detect_language(text: str) -> str | None:
    """Return the ISO 639-1 code py3langid guesses for ``text``, or None when unsure."""
    sample = text[:_SAMPLE]
    if len(sample.strip()) < _MIN_CHARS:
        return None
    code, confidence = _identifier().classify(sample)
    if confidence < _MIN_CONFIDENCE or not isinstance(code, str) or len(code) != 2:
        return None
    return code
