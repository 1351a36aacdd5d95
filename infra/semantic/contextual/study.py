"""Context head alone, static embeddings against a contextual encoder, leave one set out.

    OMP_NUM_THREADS=1 PYTHONPATH=shared:infra/semantic \
        python infra/semantic/contextual/study.py --encoder static
    OMP_NUM_THREADS=1 PYTHONPATH=shared:infra/semantic \
        python infra/semantic/contextual/study.py --encoder onnx --onnx OUT/minilm.int8.onnx

Offline study (scikit-learn; onnxruntime for --encoder onnx); it changes nothing in the
product. The context head's examples are those of own_sets.conversations(): every prefix
of a look-alike conversation from its second turn is a safe continuation, every later
turn of a "plain_then_followup" attack pursues its aim, the last turn of any other attack
completes it. For each of semantic_v8 and semantic_v9 a head is trained on every other set
named in SETS and measured on the one left out:

- prefix AUC over the held-out set's examples;
- each held-out conversation scored by its highest prefix (turn 2 on), and a threshold
  set so that 1 / 3 / 5 / 10% of the held-out look-alike conversations are flagged
  (on the held-out set itself: an operating point, not a calibrated threshold); the
  share of attack conversations over it, in all and by kind.

Variants: "recipe" is the shipped context head's input, [turn, context, turn * context],
the context a decayed fold of the earlier turns (train_heads.fold, decay 0.6);
"joined+recipe" puts the embedding of the last three turns joined in front of it, which
only a contextual encoder can read as one text. The perceptron is the shipped one
(hidden 32, alpha 1e-3, max_iter 400, random_state 12 unless --seeds says otherwise).

The held-out blind sets semantic_v10 and semantic_v11 are never read (SETS refuses them).
"""

from __future__ import annotations

import argparse
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import own_sets
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import roc_auc_score
from sklearn.neural_network import MLPClassifier
from train_heads import CONTEXT_DECAY, fold

from turnwall.scan.semantic.model import context_features

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from turnwall.scan.semantic.model import Vector

HELD_OUT = ("semantic_v8", "semantic_v9")
SETS = [
    "semantic",
    *(f"semantic_v{n}" for n in range(2, 10)),
    *(f"train_{c}" for c in "abcde"),
]
# Blind sets kept for a later measurement: never opened by this study.
NEVER_READ = frozenset({"semantic_v10", "semantic_v11"})
assert not NEVER_READ & set(SETS)
JOINED_TURNS = 3
FLAGGED_LOOKALIKES = (0.01, 0.03, 0.05, 0.10)
VARIANTS = ("recipe", "joined+recipe")


@dataclass(frozen=True)
class Conversation:
    """One whole held-out conversation: its user turns, label (1 = attack) and kind."""

    turns: list[str]
    label: int
    kind: str


def _conversations_with_kind(name: str) -> list[Conversation]:
    """A set's whole conversations, read as own_sets reads them, keeping each one's kind."""
    if name in NEVER_READ:
        raise ValueError(f"{name} is a held-out blind set this study never reads")
    folder = own_sets._folder(name)
    out = []
    for label, file in (
        (0, "benign_lookalike_conversations.jsonl"),
        (1, "attack_conversations.jsonl"),
    ):
        for raw in own_sets._read(folder / file):
            out.append(Conversation(own_sets._user_turns(raw), label, str(raw.get("kind"))))
    return out


def joined(turns: Sequence[str]) -> str:
    """The last JOINED_TURNS turns of a prefix as one text."""
    return " \n ".join(turns[-JOINED_TURNS:])


def study_texts() -> list[str]:
    """Every text the study embeds: each turn and each joined window, over SETS."""
    texts: set[str] = set()
    for name in SETS:
        for conversation in _conversations_with_kind(name):
            for end in range(1, len(conversation.turns) + 1):
                texts.add(conversation.turns[end - 1])
                texts.add(joined(conversation.turns[:end]))
    return sorted(texts)


def features(embed: Callable[[str], Vector], turns: Sequence[str], variant: str) -> Vector:
    """The head's input for the last turn of a prefix."""
    turn = embed(turns[-1])
    context = np.zeros_like(turn)
    for text in turns[:-1]:
        context = fold(context, embed(text))
    recipe = context_features(turn, context)
    if variant == "recipe":
        return recipe
    if variant == "joined+recipe":
        return np.concatenate([embed(joined(turns)), recipe])
    raise ValueError(f"unknown variant {variant!r}")


def leave_one_out(
    embed: Callable[[str], Vector], variant: str, held: str, seed: int
) -> dict[str, Any]:
    """Train on every set but `held`, measure on `held`: AUC and catches per flag budget."""
    examples = own_sets.conversations([name for name in SETS if name != held])
    x = np.stack([features(embed, e["turns"], variant) for e in examples])
    y = np.array([e["label"] for e in examples])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        head = MLPClassifier(hidden_layer_sizes=(32,), alpha=1e-3, max_iter=400, random_state=seed)
        head.fit(x, y)

    def score(turns: Sequence[str]) -> float:
        return float(head.predict_proba(features(embed, turns, variant)[None, :])[0, 1])

    held_examples = own_sets.conversations([held])
    auc = roc_auc_score(
        [e["label"] for e in held_examples], [score(e["turns"]) for e in held_examples]
    )
    scored = [
        (c, max(score(c.turns[:end]) for end in range(2, len(c.turns) + 1)))
        for c in _conversations_with_kind(held)
        if len(c.turns) >= 2
    ]
    lookalikes = np.sort([s for c, s in scored if c.label == 0])[::-1]
    result: dict[str, Any] = {"auc": float(auc)}
    for budget in FLAGGED_LOOKALIKES:
        k = round(budget * len(lookalikes))
        threshold = lookalikes[k] if k < len(lookalikes) else -1.0
        caught = {"attacks": np.mean([s > threshold for c, s in scored if c.label == 1])}
        for kind in sorted({c.kind for c, _ in scored}):
            caught[kind] = np.mean([s > threshold for c, s in scored if c.kind == kind])
        caught["lookalikes"] = np.mean([s > threshold for c, s in scored if c.label == 0])
        result[f"{budget:.2f}"] = caught
    return result


def embedding_table(encoder: str, onnx_path: Path | None, cache: Path | None) -> dict[str, Vector]:
    """Every study text's embedding, from `cache` (.npz) when it holds them all."""
    texts = study_texts()
    if cache is not None and cache.exists():
        with np.load(cache, allow_pickle=False) as stored:
            table = dict(zip(stored["texts"].tolist(), stored["vectors"], strict=True))
        if all(text in table for text in texts):
            return table
    if encoder == "static":
        from turnwall.scan.semantic.model import MODEL_DIR, Embedder

        embed = Embedder(MODEL_DIR).embed
    else:
        from encoder import OnnxEncoder, model_dir

        if onnx_path is None:
            raise SystemExit("--encoder onnx needs --onnx PATH (written by export_onnx.py)")
        embed = OnnxEncoder(onnx_path, model_dir() / "vocab.txt").embed
    vectors = np.stack([embed(text) for text in texts]).astype(np.float32)
    if cache is not None:
        np.savez(cache, texts=np.array(texts), vectors=vectors)
    return dict(zip(texts, vectors, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--encoder", choices=("static", "onnx"), default="static")
    parser.add_argument("--onnx", type=Path, help="model written by export_onnx.py")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--seeds", default="12", help="comma-separated; figures are means")
    parser.add_argument("--cache", type=Path, help=".npz of embeddings, reused when complete")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    table = embedding_table(args.encoder, args.onnx, args.cache)
    print(
        f"encoder {args.encoder} {args.onnx or ''}; {len(table)} texts; seeds {seeds}; "
        f"decay {CONTEXT_DECAY}"
    )
    for variant in args.variants.split(","):
        for held in HELD_OUT:
            runs = [leave_one_out(table.__getitem__, variant, held, seed) for seed in seeds]
            line = f"{variant:<14} {held:<12} auc={np.mean([r['auc'] for r in runs]):.3f}"
            for budget in FLAGGED_LOOKALIKES:
                share = {
                    field: float(np.mean([r[f"{budget:.2f}"][field] for r in runs]))
                    for field in ("lookalikes", "attacks", "plain_then_followup", "multi_turn")
                }
                line += (
                    f" | @{budget:.0%} LA={share['lookalikes']:.2f} AT={share['attacks']:.3f}"
                    f" ptf={share['plain_then_followup']:.2f} mt={share['multi_turn']:.2f}"
                )
            print(line, flush=True)


if __name__ == "__main__":
    main()
