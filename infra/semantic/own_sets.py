"""Rows and conversations for the heads from the project's own hand-written sets.

    OWN_SETS=semantic,semantic_v2,semantic_v3,semantic_v4,semantic_v5,semantic_v6,semantic_v7
    OWN_SETS=$OWN_SETS,train_a,train_b,train_c PYTHONPATH=shared \
    OPENBLAS_CORETYPE=Haswell OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
        python infra/semantic/train_heads.py     # the shipped heads

The blind sets under tests/blind/ were written by hand for this project (their READMEs
give the provenance), each measured blind once before anything was tuned to it; the sets
under data/sets/ were written by hand as training rows in the same format. A set named
here becomes training data for both heads; a blind set not named stays a measurement.
data/sets/train_d and train_e were measured and are not named for the shipped static heads
(README.md, step 8; the contextual heads have them, step 9); train_f was measured and is
named for neither (step 13).
Single prompts give their benign rows and, by kind, their harmful ones (v1 and v2 label
attacks without a kind, so only their benign rows are used); every turn of a benign
look-alike conversation is a hard benign row; the aim stated in turn 1 of a
"plain_then_followup" attack is a harmful row, and so is the last turn of any other attack,
where a harm built up over several turns shows itself (held out, v7 by heads trained
on v1-v6 and v6 by heads trained on v1-v5 and v7: attacks 0.500 -> 0.600 and
0.550 -> 0.562, look-alikes with the session 0.080 -> 0.090 and 0.090 -> 0.090).
The sets' injections and jailbreaks are left out: with them (90 injection rows, weighted
four times like every injection), the turn head read "Please ignore the typo in my last
message." as an injection (0.875).
For the context head every prefix of a look-alike conversation from its second turn on
is a safe continuation, every later turn of a "plain_then_followup" attack pursues the
aim, and the last turn of any other attack completes it.
A set named by OWN_PROMPT_SETS instead gives the turn head its single prompts only (the
contextual heads since step 16, with v8-v27): its conversations' turns, 500 of every
set's 580 rows and mostly safe look-alike turns, made the turn head read public harmful
requests as safe (README.md, step 16).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

BLIND = Path(__file__).resolve().parents[2] / "tests" / "blind"
# Hand-written training rows in the blind sets' format that were never a measurement.
TRAINING = Path(__file__).resolve().parent / "data" / "sets"
_KIND_LABELS = {"harmful_plain": "harmful"}


def _folder(name: str) -> Path:
    """A set named by OWN_SETS: a training set under data/sets, else a blind set."""
    return TRAINING / name if (TRAINING / name).is_dir() else BLIND / name


def _read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _user_turns(conversation: dict[str, Any]) -> list[str]:
    return [m["content"] for m in conversation["messages"] if m["role"] == "user"]


def single_rows(names: list[str], *, prompts_only: bool = False) -> list[dict[str, str]]:
    """Turn-head rows ({text, label, source}) from the named sets; `prompts_only`: from
    their single prompts alone, not from their conversations' turns."""
    rows: list[dict[str, str]] = []
    for name in names:
        source = f"own_{name}"
        for row in _read(_folder(name) / "single_prompts.jsonl"):
            if row["label"] == 0:
                rows.append({"text": row["text"], "label": "benign", "source": source})
            elif row.get("kind") in _KIND_LABELS:
                label = _KIND_LABELS[row["kind"]]
                rows.append({"text": row["text"], "label": label, "source": source})
        if prompts_only:
            continue
        for conversation in _read(_folder(name) / "benign_lookalike_conversations.jsonl"):
            rows += [
                {"text": turn, "label": "benign", "source": source}
                for turn in _user_turns(conversation)
            ]
        for conversation in _read(_folder(name) / "attack_conversations.jsonl"):
            turns = _user_turns(conversation)
            shown = turns[0] if conversation.get("kind") == "plain_then_followup" else turns[-1]
            rows.append({"text": shown, "label": "harmful", "source": source})
    return rows


def conversations(names: list[str]) -> list[dict[str, Any]]:
    """Context-head conversations ({turns, label, source}) from the named sets."""
    out: list[dict[str, Any]] = []
    for name in names:
        source = f"own_{name}"
        for conversation in _read(_folder(name) / "benign_lookalike_conversations.jsonl"):
            turns = _user_turns(conversation)
            out += [
                {"turns": turns[:end], "label": 0, "source": source}
                for end in range(2, len(turns) + 1)
            ]
        for conversation in _read(_folder(name) / "attack_conversations.jsonl"):
            turns = _user_turns(conversation)
            if len(turns) < 2:
                continue
            if conversation.get("kind") == "plain_then_followup":
                ends = range(2, len(turns) + 1)
            else:
                ends = range(len(turns), len(turns) + 1)
            out += [{"turns": turns[:end], "label": 1, "source": source} for end in ends]
    return out
