"""Language: the declared one reduced to ISO 639-1, else a guess from the text with py3langid."""

from __future__ import annotations

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


@lru_cache(maxsize=1)
def _identifier() -> Any:
    # Loading the model takes ~0.5 s, so it happens on the first guess, not at import time.
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect_language(text: str) -> str | None:
    """Return the ISO 639-1 code py3langid guesses for ``text``, or None when unsure."""
    sample = text[:_SAMPLE]
    if len(sample.strip()) < _MIN_CHARS:
        return None
    code, confidence = _identifier().classify(sample)
    if confidence < _MIN_CONFIDENCE or not isinstance(code, str) or len(code) != 2:
        return None
    return code
