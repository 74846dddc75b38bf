"""What an article is about, as a point in a space of meanings: outlets that word one event differently land close.

Story assignment and related coverage weigh shared *words* (`features`), and two outlets covering one
event often share few: on AllSides' calibration half an article's nearest other-outlet article by
tf-idf cosine was of its own story 72% of the time, and 33% for the articles no story joined. This
module gives a second, independent view: the mean of pretrained word-piece vectors over the title
and lead, compared by cosine. On the same articles its nearest neighbour was right 93% (and 83%) of
the time (bench/related_quality.py; README "Related coverage on AllSides").

The vectors are WordLlama's ``l2_supercat`` token embeddings (256 numbers per word piece, MIT
licence), which the ``wordllama`` distribution ships inside its wheel with their tokenizer; nothing
is downloaded. Only those two files are read: the tokenizer through ``tokenizers`` and the matrix
through ``safetensors``; the averaging is ours (a mean over the pieces, then unit length).

When the files cannot be read (a broken install), `shared_embedder` logs one line and returns None,
and the callers fall back to words alone.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "MEANING_WORDS",
    "Embedder",
    "meaning_key",
    "meaning_text",
    "pack",
    "shared_embedder",
    "similarity",
    "unpack",
]

log = logging.getLogger(__name__)

#: Words of the body read after the title: the lead says what the story is; later paragraphs add
#: background other stories share (60 and 250 gave the same nearest-neighbour precision, 60 is cheaper).
MEANING_WORDS = 60
#: Characters of the joined text read at most (60 words rarely take 600; a guard against one huge "word").
_MAX_CHARS = 2000

Vector = npt.NDArray[np.float32]

#: Names the word vectors and how a text is read into them: part of every `meaning_key`, so that a
#: meaning stored under other vectors (a later model) is never taken for the current one.
MODEL = b"wordllama-l2_supercat-256:mean:v1"
#: Numbers in a meaning (the vectors' width); a stored meaning of another length is not used.
WIDTH = 256


def meaning_text(title: str, text: str, words: int = MEANING_WORDS) -> str:
    """Return what an article's meaning is read from: its title, then the first ``words`` words of its text."""
    lead = " ".join(text.split()[:words]) if text else ""
    joined = f"{title.strip()}. {lead}" if lead else title.strip()
    return joined[:_MAX_CHARS]


def meaning_key(text: str) -> bytes:
    """Return a 16-byte digest naming the meaning of ``text`` (a `meaning_text`) under these word vectors."""
    return hashlib.blake2b(text.encode(), digest_size=16, key=MODEL[:64]).digest()


def pack(vector: Vector) -> bytes:
    """Return a meaning as stored: half precision, 512 bytes (cosines move by 0.001 at most)."""
    return vector.astype("<f2").tobytes()


def unpack(data: bytes) -> Vector | None:
    """Return a stored meaning (`pack`), None when it is not one of this width."""
    if len(data) != 2 * WIDTH:
        return None
    return np.frombuffer(data, dtype="<f2").astype(np.float32)


class Embedder:
    """Unit vectors of texts: the mean of their word pieces' vectors. Thread-safe; reads its files once."""

    def __init__(self, tokenizer_path: Path, weights_path: Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self._tokenizer: Any = Tokenizer.from_file(str(tokenizer_path))
        # Kept as stored (half precision: 16 MB, not 33); each mean is taken in single precision, which
        # gives exactly the vectors of widening the whole matrix first.
        self._matrix: npt.NDArray[np.floating[Any]] = load_file(str(weights_path))["embedding.weight"]

    def vector(self, text: str) -> Vector | None:
        """Return the unit vector of ``text``, None when it has no words to read."""
        return self.vectors([text])[0]

    def vectors(self, texts: Sequence[str]) -> list[Vector | None]:
        """Return each text's unit vector (None for one with no words), in order."""
        rows = self._matrix.shape[0]
        out: list[Vector | None] = []
        for text in texts:
            # One text at a time: `encode_batch` hands even one text to a pool of threads, which cost
            # ten times the encoding itself in a busy server (1.5 ms of CPU against 0.15).
            # Blank text still makes word pieces (the spaces): it has nothing to say.
            ids = (
                [i for i in self._tokenizer.encode(text, add_special_tokens=False).ids if 0 <= i < rows]
                if text.strip()
                else []
            )
            if not ids:
                out.append(None)
                continue
            mean = self._matrix[ids].mean(axis=0, dtype=np.float32)
            norm = float(np.linalg.norm(mean))
            out.append((mean / norm).astype(np.float32) if norm > 0.0 else None)
        return out


def similarity(a: Vector | None, b: Vector | None) -> float:
    """Return the cosine of two unit vectors (0 when either is missing)."""
    if a is None or b is None:
        return 0.0
    return float(np.dot(a, b))


def _bundled_files() -> tuple[Path, Path] | None:
    spec = importlib.util.find_spec("wordllama")  # located, not imported: its package imports much we do not use
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    tokenizer = root / "tokenizers" / "l2_supercat_tokenizer_config.json"
    weights = root / "weights" / "l2_supercat_256.safetensors"
    return (tokenizer, weights) if tokenizer.is_file() and weights.is_file() else None


_LOCK = threading.Lock()


@functools.cache
def _shared() -> Embedder | None:
    files = _bundled_files()
    if files is None:
        log.warning("word vectors not found (the wordllama package is missing): related coverage weighs words alone")
        return None
    try:
        return Embedder(*files)
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        log.warning("word vectors could not be read (%s): related coverage weighs words alone", error)
        return None


def shared_embedder() -> Embedder | None:
    """Return the process's embedder (read on first use), None when the word vectors cannot be read."""
    with _LOCK:
        return _shared()
