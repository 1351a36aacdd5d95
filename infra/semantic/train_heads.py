"""Train the semantic tier's heads on data/ and write model/heads.npz and heads.json.

    PYTHONPATH=shared python infra/semantic/train_heads.py
    REFERRING=1 HEADS_OUT=/tmp/candidate PYTHONPATH=shared python infra/semantic/train_heads.py
    OWN_SETS=semantic,semantic_v2,semantic_v3,semantic_v4,semantic_v5,semantic_v6,semantic_v7
    OWN_SETS=$OWN_SETS,train_a,train_b,train_c PYTHONPATH=shared \
    OPENBLAS_CORETYPE=Haswell OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
        python infra/semantic/train_heads.py          # the shipped heads
    OWN_SETS=$OWN_SETS,train_d,train_e,train_g,train_h MODEL=contextual \
    OWN_PROMPT_SETS=$(seq -s, -f semantic_v%g 8 27) EMBED_CACHE=/tmp/minilm.npz ... \
        python infra/semantic/train_heads.py          # the contextual profile's heads

Build time only (needs scikit-learn). Embeds every row with turnwall's own embedder, so
training sees exactly what the scanner computes, fits two one-hidden-layer perceptrons
(turn: benign / injection / jailbreak / harmful; context: does this turn pursue a
harmful aim given the turns before it), picks each label's threshold on a held-out
fifth of the data, and prints held-out figures per source. REFERRING=1 adds the
authored conversations of referring.py (their own held-out split calibrates the context
threshold and stays out of the written heads); HEADS_OUT writes heads.npz and
heads.json elsewhere than the shipped model (keeping its session gates). OWN_SETS adds the
project's hand-written sets named (own_sets.py) to the training rows of both heads;
OWN_PROMPT_SETS adds sets by their single prompts (turn head) and conversations (context
head) only.
MODEL=contextual trains the contextual profile's heads on the transformer's embeddings
(contextual_model/, needs onnxruntime) instead of the static ones; EMBED_CACHE=FILE.npz
keeps every text's embedding between runs (about 25,000 texts, 1.5 minutes of
transformer time on one core), embedded as at most TRAIN_TOKENS (96) tokens each.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path

import numpy as np
import own_sets
from sklearn.neural_network import MLPClassifier

from turnwall.scan.semantic import contextual
from turnwall.scan.semantic.model import (
    CONTEXTUAL_MODEL_DIR,
    MODEL_DIR,
    Encoder,
    context_features,
    encoder_named,
)

HERE = Path(__file__).resolve().parent
LABELS = ["benign", "injection", "jailbreak", "harmful"]
CONTEXT_DECAY = 0.6
# Largest share of held-out benign rows a label's threshold may flag.
BENIGN_BUDGET = 0.01
THRESHOLD_FLOOR = 0.85
TURN_HIDDEN = int(os.environ.get("TURN_HIDDEN", "64"))
CONTEXTUAL = os.environ.get("MODEL", "static") == "contextual"
# The turn head's L2 penalty: at 0.1 it learned everyday words of the hand-written harmful
# rows as harm ("bus", from a school bus's brake lines); see README.md, step 7. The
# contextual embeddings need a lighter one: at 0.3 the head read held-out HarmBench at
# 0.24 recall, at 0.03 at 0.73 (README.md, step 9).
TURN_ALPHA = float(os.environ.get("TURN_ALPHA", "0.03" if CONTEXTUAL else "0.3"))
SEED = 12
# The contextual heads are trained on embeddings of at most 96 tokens, step 9's budget;
# the tier reads 80 at run time (README.md, step 11). A retrain on 80 or 128 tokens gives
# other heads than the shipped ones from the same rows (step 15).
TRAIN_TOKENS = int(os.environ.get("TRAIN_TOKENS", "96"))
REFERRING_SINGLE = HERE / "data" / "referring_single.jsonl"
REFERRING_CONVERSATIONS = HERE / "data" / "referring_conversations.jsonl"
# REFERRING=1 adds referring.py's authored conversations and rows (measured, not shipped:
# see README.md); without it the recipe is the shipped model's.
USE_REFERRING = os.environ.get("REFERRING", "0") == "1"
# OWN_SETS names hand-written sets (tests/blind/ or data/sets/) to train on (own_sets.py).
OWN_SETS = [name for name in os.environ.get("OWN_SETS", "").split(",") if name]
# OWN_PROMPT_SETS names sets whose single prompts train the turn head and whose
# conversations train the context head, like OWN_SETS but without their conversations'
# turns as turn-head rows (own_sets.py; README.md, step 16).
OWN_PROMPT_SETS = [name for name in os.environ.get("OWN_PROMPT_SETS", "").split(",") if name]
# The context head is overconfident on the synthetic conversations it is calibrated on
# (it asks for 0.98 there); 0.9 was chosen on the development split of tests/unit/scan
# and on ../shared/eval, gated in the tier by what earlier turns carried.
CONTEXT_THRESHOLD = 0.9
# Share of held-out referring negatives the context threshold may pass.
CONTEXT_BUDGET = 0.02


SHIPPED_DIR = CONTEXTUAL_MODEL_DIR if CONTEXTUAL else MODEL_DIR


class CachedEncoder:
    """An encoder whose embeddings are kept in an .npz file between runs, by the
    SHA-256 of their text."""

    def __init__(self, encoder: Encoder, path: Path) -> None:
        self.encoder, self.path = encoder, path
        self.dimensions = encoder.dimensions
        self.vectors: dict[str, np.ndarray] = {}
        if path.exists():
            with np.load(path, allow_pickle=False) as stored:
                self.vectors = dict(zip(stored["keys"].tolist(), stored["vectors"], strict=True))
        self.added = 0

    def embed(self, text: str) -> np.ndarray:
        key = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        vector = self.vectors.get(key)
        if vector is None:
            vector = self.vectors[key] = self.encoder.embed(text)
            self.added += 1
            if self.added % 2000 == 0:
                self.save()
        return vector

    def save(self) -> None:
        keys = list(self.vectors)
        np.savez(self.path, keys=np.array(keys), vectors=np.stack([self.vectors[k] for k in keys]))


def encoder() -> Encoder:
    """The embedder of the model being trained: the one its heads.json names."""
    meta = json.loads((SHIPPED_DIR / "heads.json").read_text())
    if CONTEXTUAL:
        contextual.MAX_TOKENS = TRAIN_TOKENS
    found = encoder_named(SHIPPED_DIR, str(meta.get("encoder", "static")))
    cache = os.environ.get("EMBED_CACHE")
    return CachedEncoder(found, Path(cache)) if cache else found


def fold(context: np.ndarray, embedding: np.ndarray) -> np.ndarray:
    mixed = CONTEXT_DECAY * context + embedding
    norm = float(np.linalg.norm(mixed))
    return mixed / norm if norm > 0 else mixed


def export(clf: MLPClassifier, name: str, out: dict[str, np.ndarray]) -> None:
    out[f"{name}_w1"] = clf.coefs_[0].astype(np.float32)
    out[f"{name}_b1"] = clf.intercepts_[0].astype(np.float32)
    w2, b2 = clf.coefs_[1], clf.intercepts_[1]
    out[f"{name}_w2"] = w2.astype(np.float32)
    out[f"{name}_b2"] = b2.astype(np.float32)


def held_out_turn_head(
    rng: random.Random, embedder: Encoder
) -> tuple[list[dict[str, str]], np.ndarray, np.ndarray, np.ndarray, MLPClassifier]:
    """The single rows (shuffled by `rng`), their embeddings and labels, the held-out
    fifth as a mask, and a turn head fitted on the other four fifths."""
    rows = [json.loads(line) for line in (HERE / "data" / "single.jsonl").open()]
    rng.shuffle(rows)
    held_list = [i % 5 == 0 for i in range(len(rows))]
    # Authored rows of referring.py keep their own split (held-out topics and aims).
    authored = [json.loads(line) for line in REFERRING_SINGLE.open()] if USE_REFERRING else []
    rows += authored
    held_list += [r["split"] == "held" for r in authored]
    # The project's own sets train only: thresholds stay set on the same held-out rows.
    own = own_sets.single_rows(OWN_SETS)
    own += own_sets.single_rows(OWN_PROMPT_SETS, prompts_only=True)
    rows += own
    held_list += [False] * len(own)
    x = np.stack([embedder.embed(r["text"]) for r in rows])
    y = np.array([LABELS.index(r["label"]) for r in rows])
    held = np.array(held_list)
    train_idx = np.flatnonzero(~held)
    # Injections are few: repeat them so the head does not learn to ignore the class.
    train_idx = np.concatenate([train_idx] + [train_idx[y[train_idx] == 1]] * 3)
    turn = MLPClassifier(
        hidden_layer_sizes=(TURN_HIDDEN,), alpha=TURN_ALPHA, max_iter=400, random_state=SEED
    )
    turn.fit(x[train_idx], y[train_idx])
    return rows, x, y, held, turn


def main() -> None:
    rng = random.Random(SEED)
    embedder = encoder()
    rows, x, y, held, turn = held_out_turn_head(rng, embedder)
    probs = turn.predict_proba(x[held])
    # Thresholds are set on the hard benign rows (look-alikes, role-play, security, user
    # tasks), not on plain instructions, which any threshold passes.
    hard = np.array(
        [r["label"] == "benign" and not r["source"].startswith(("alpaca", "t0_")) for r in rows]
    )
    benign_held = hard[held]
    thresholds = {}
    for index, label in enumerate(LABELS[1:], start=1):
        scores = np.sort(probs[benign_held, index])
        cut = scores[int(len(scores) * (1 - BENIGN_BUDGET))]
        thresholds[label] = float(max(THRESHOLD_FLOOR, cut))
    flagged = np.zeros(int(held.sum()), dtype=bool)
    for index, label in enumerate(LABELS[1:], start=1):
        flagged |= probs[:, index] >= thresholds[label]
    print("turn head thresholds", {k: round(v, 3) for k, v in thresholds.items()})
    sources = sorted({r["source"] for r in rows})
    held_rows = [r for r, h in zip(rows, held, strict=True) if h]
    for source in sources:
        picks = [i for i, r in enumerate(held_rows) if r["source"] == source]
        if picks:
            rate = flagged[picks].mean()
            kind = "FPR" if held_rows[picks[0]]["label"] == "benign" else "recall"
            print(f"  held-out {source:<28} n={len(picks):4d} {kind} {rate:.3f}")
    # Refit on everything for the shipped head.
    # Authored held-out rows stay out of the shipped head too, so their figures hold.
    final = np.array([r.get("split") != "held" for r in rows])
    all_idx = np.concatenate([np.flatnonzero(final)] + [np.flatnonzero(final & (y == 1))] * 3)
    turn = MLPClassifier(
        hidden_layer_sizes=(TURN_HIDDEN,), alpha=TURN_ALPHA, max_iter=400, random_state=SEED
    )
    turn.fit(x[all_idx], y[all_idx])

    conversations = [json.loads(line) for line in (HERE / "data" / "conversations.jsonl").open()]
    rng.shuffle(conversations)
    if USE_REFERRING:
        conversations += [json.loads(line) for line in REFERRING_CONVERSATIONS.open()]
    own_conversations = own_sets.conversations(OWN_SETS + OWN_PROMPT_SETS)
    conversations += [{**c, "split": "train"} for c in own_conversations]
    cache: dict[str, np.ndarray] = {}

    def emb(text: str) -> np.ndarray:
        if text not in cache:
            cache[text] = embedder.embed(text)
        return cache[text]

    features, labels = [], []
    for conversation in conversations:
        context = np.zeros(embedder.dimensions, dtype=np.float32)
        for text in conversation["turns"][:-1]:
            context = fold(context, emb(text))
        features.append(context_features(emb(conversation["turns"][-1]), context))
        labels.append(conversation["label"])
    cx, cy = np.stack(features), np.array(labels)
    cheld = np.array(
        [c["split"] == "held" if "split" in c else i % 5 == 0 for i, c in enumerate(conversations)]
    )
    context_head = MLPClassifier(
        hidden_layer_sizes=(32,), alpha=1e-3, max_iter=400, random_state=SEED
    )
    context_head.fit(cx[~cheld], cy[~cheld])
    cprob = context_head.predict_proba(cx[cheld])[:, 1]
    scores = np.sort(cprob[cy[cheld] == 0])
    context_threshold = float(max(THRESHOLD_FLOOR, scores[int(len(scores) * (1 - BENIGN_BUDGET))]))
    print("context head threshold on synthetic data", round(context_threshold, 3))
    held_sources = [c["source"] for c, h in zip(conversations, cheld, strict=True) if h]
    if USE_REFERRING:
        # Calibrated on the held-out referring negatives alone: safe topics the head never
        # saw, closed by the same follow-ups as the harmful aims.
        negatives = np.array([s.startswith("referring_neg") for s in held_sources])
        hard = np.sort(cprob[negatives])
        cut = float(hard[int(len(hard) * (1 - CONTEXT_BUDGET))])
        print("context head threshold on held-out referring negatives", round(cut, 3))
        context_threshold = max(CONTEXT_THRESHOLD, cut)
    else:
        context_threshold = CONTEXT_THRESHOLD
    held_conversations = [c for c, h in zip(conversations, cheld, strict=True) if h]
    for source in sorted({c["source"] for c in conversations}):
        picks = [i for i, c in enumerate(held_conversations) if c["source"] == source]
        if not picks:
            continue
        rate = (cprob[picks] >= context_threshold).mean()
        print(f"  held-out {source:<28} n={len(picks):4d} flagged {rate:.3f}")
    context_head = MLPClassifier(
        hidden_layer_sizes=(32,), alpha=1e-3, max_iter=400, random_state=SEED
    )
    final_c = np.array([c.get("split") != "held" for c in conversations])
    context_head.fit(cx[final_c], cy[final_c])

    arrays: dict[str, np.ndarray] = {}
    export(turn, "turn", arrays)
    # A binary MLPClassifier has one logistic output: the probability of label 1.
    export(context_head, "context", arrays)
    if isinstance(embedder, CachedEncoder) and embedder.added:
        embedder.save()
    out_dir = Path(os.environ.get("HEADS_OUT", SHIPPED_DIR))
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez(out_dir / "heads.npz", **arrays)
    # The session gates are calibrate_session.py's; a retrain keeps them.
    before = json.loads((SHIPPED_DIR / "heads.json").read_text())
    meta = {
        "labels": LABELS,
        "thresholds": thresholds,
        "context_threshold": context_threshold,
        "context_decay": CONTEXT_DECAY,
        "trained_on": {"single": int(final.sum()), "conversations": int(final_c.sum())},
    }
    for key in ("encoder", "session_gates", "session_gate"):
        if key in before:
            meta[key] = before[key]
    (out_dir / "heads.json").write_text(json.dumps(meta, indent=2) + "\n")


if __name__ == "__main__":
    main()
