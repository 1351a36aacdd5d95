"""Sentence embeddings and the intent heads trained on them.

Two models share this code, each a folder of files built offline by infra/semantic/
(from all-MiniLM-L6-v2 in a PyPI package, then training on the public data its README
lists); nothing is downloaded at run time. Its heads.json's "encoder" says how a text
becomes an embedding:

* "static" (`model/`, the semantic profile): numpy only. A text becomes WordPiece ids,
  its embedding is the normalized mean of those ids' rows in a distilled table (int8,
  one scale per row).
* "minilm-int8" (`contextual_model/`, the contextual profile): the transformer itself,
  through onnxruntime (contextual.py).

Small multilayer perceptrons then read intent from the embedding.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np
import numpy.typing as npt

from turnwall.scan.semantic.wordpiece import WordPiece

MODEL_DIR: Final = Path(__file__).with_name("model")
CONTEXTUAL_MODEL_DIR: Final = Path(__file__).with_name("contextual_model")
MAX_TOKENS: Final = 512  # as the distilled model was used in training
# A long text is embedded from its head and its tail: an override at the end of a long
# document is what indirect injection looks like.
HEAD_CHARS: Final = 3072
TAIL_CHARS: Final = 1024

Vector = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Perceptron:
    """One hidden ReLU layer, then softmax (several classes) or sigmoid (one)."""

    hidden_weights: Vector
    hidden_bias: Vector
    out_weights: Vector
    out_bias: Vector

    def __call__(self, features: Vector) -> Vector:
        hidden = np.maximum(features @ self.hidden_weights + self.hidden_bias, 0.0)
        logits = hidden @ self.out_weights + self.out_bias
        if logits.shape[-1] == 1:
            return np.asarray(1.0 / (1.0 + np.exp(-logits)), dtype=np.float32)
        shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return np.asarray(shifted / shifted.sum(axis=-1, keepdims=True), dtype=np.float32)


@dataclass(frozen=True, slots=True)
class Intent:
    """What one text asks for, as probabilities over the turn head's labels."""

    probabilities: dict[str, float]

    @property
    def benign(self) -> float:
        return self.probabilities.get("benign", 0.0)

    def with_label(self, label: str, probability: float) -> Intent:
        """This reading with `label` raised to `probability` (and benign lowered to what
        is left)."""
        probabilities = dict(self.probabilities)
        probabilities[label] = probability
        probabilities["benign"] = min(self.benign, 1.0 - probability)
        return Intent(probabilities)


class Encoder(Protocol):
    """Text to a unit-length embedding of `dimensions` values."""

    dimensions: int

    def embed(self, text: str) -> Vector: ...


class Embedder:
    """Text to unit-length static embedding: the tokenizer and the distilled table."""

    def __init__(self, directory: Path = MODEL_DIR) -> None:
        """Raises OSError or ValueError when the model files are missing or broken."""
        words = (directory / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1]
        self.tokenizer = WordPiece({word: index for index, word in enumerate(words)})
        table = np.load(directory / "embeddings.npy", allow_pickle=False)
        scales = np.load(directory / "scales.npy", allow_pickle=False)
        if table.shape[0] != len(words) or scales.shape[0] != len(words):
            raise ValueError("semantic model: vocabulary and embedding table disagree")
        self._table = table
        self._scales = scales.astype(np.float32)
        self.dimensions = int(table.shape[1])

    def embed(self, text: str) -> Vector:
        """The unit-length embedding of `text` (zeros when no word is known)."""
        if len(text) > HEAD_CHARS + TAIL_CHARS:
            text = f"{text[:HEAD_CHARS]} {text[-TAIL_CHARS:]}"
        ids = self.tokenizer.ids(text, MAX_TOKENS)
        if not ids:
            return np.zeros(self.dimensions, dtype=np.float32)
        index = np.asarray(ids, dtype=np.intp)
        rows = self._table[index].astype(np.float32) * self._scales[index, None]
        mean = rows.mean(axis=0)
        norm = float(np.linalg.norm(mean))
        return np.asarray(mean / norm if norm > 0 else mean, dtype=np.float32)


class SemanticModel:
    """The embedder and the two heads, loaded once per process."""

    def __init__(self, directory: Path = MODEL_DIR) -> None:
        """Raises OSError or ValueError when the model files are missing or broken, and
        ImportError when the contextual model's onnxruntime is not installed."""
        self.meta: dict[str, Any] = json.loads((directory / "heads.json").read_text())
        self.embedder = encoder_named(directory, str(self.meta.get("encoder", "static")))
        self.dimensions = self.embedder.dimensions
        with np.load(directory / "heads.npz", allow_pickle=False) as heads:
            self.turn_head = _perceptron(heads, "turn")
            self.context_head = _perceptron(heads, "context")
        self.labels: list[str] = list(self.meta["labels"])

    def embed(self, text: str) -> Vector:
        """The unit-length embedding of `text`."""
        return self.embedder.embed(text)

    def intent(self, embedding: Vector) -> Intent:
        """The turn head's reading of one embedding."""
        probabilities = self.turn_head(embedding)
        return Intent(
            {label: float(p) for label, p in zip(self.labels, probabilities, strict=True)}
        )

    def most_suspicious(self, texts: list[str]) -> int:
        """Index of the text the turn head reads as least likely benign (one pass of the
        head over all their embeddings)."""
        embeddings = np.stack([self.embed(text) for text in texts])
        return int(np.argmin(self.turn_head(embeddings)[:, self.labels.index("benign")]))

    def continues_harm(self, embedding: Vector, context: Vector) -> float:
        """Probability that a turn, given the conversation before it, pursues a harmful aim."""
        return float(self.context_head(context_features(embedding, context))[0])

    def fold(self, context: Vector, embedding: Vector) -> Vector:
        """The conversation context after one more user turn: a decayed, renormalized sum."""
        mixed = float(self.meta["context_decay"]) * context + embedding
        norm = float(np.linalg.norm(mixed))
        return np.asarray(mixed / norm if norm > 0 else mixed, dtype=np.float32)


def context_features(embedding: Vector, context: Vector) -> Vector:
    """What the context head reads: the turn, what came before, and where they agree."""
    return np.asarray(np.concatenate([embedding, context, embedding * context]), dtype=np.float32)


def encode_context(context: Vector) -> str:
    """A context vector as a short string for the session state (float16, base64)."""
    if not context.any():
        return ""
    return base64.b64encode(context.astype("<f2").tobytes()).decode("ascii")


def decode_context(value: object, dimensions: int) -> Vector:
    """The context vector stored by `encode_context`; zeros for anything unreadable."""
    if isinstance(value, str) and value:
        try:
            raw = base64.b64decode(value, validate=True)
        except ValueError:
            raw = b""
        if len(raw) == 2 * dimensions:
            vector = np.frombuffer(raw, dtype="<f2").astype(np.float32)
            if np.isfinite(vector).all():
                return vector
    return np.zeros(dimensions, dtype=np.float32)


def encoder_named(directory: Path, name: str) -> Encoder:
    """The encoder a model folder's heads.json names ("encoder"; "static" when none).

    Raises ValueError for an unknown name, and what the encoder raises (model.py's
    Embedder, contextual.py's ContextualEmbedder)."""
    if name == "static":
        return Embedder(directory)
    if name == "minilm-int8":
        from turnwall.scan.semantic.contextual import ContextualEmbedder

        return ContextualEmbedder(directory)
    raise ValueError(f"semantic model: unknown encoder {name!r} in heads.json")


def _perceptron(heads: Any, name: str) -> Perceptron:
    return Perceptron(
        hidden_weights=heads[f"{name}_w1"].astype(np.float32),
        hidden_bias=heads[f"{name}_b1"].astype(np.float32),
        out_weights=heads[f"{name}_w2"].astype(np.float32),
        out_bias=heads[f"{name}_b2"].astype(np.float32),
    )


@lru_cache(maxsize=2)
def load_model(directory: Path = MODEL_DIR) -> SemanticModel:
    """A shipped model (the static one by default), loaded on first use and shared by
    every scanner."""
    return SemanticModel(directory)
