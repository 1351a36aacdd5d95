"""Rows and conversations for the heads from the project's own hand-written sets.

    OWN_SETS=semantic,semantic_v2,semantic_v3,semantic_v4,semantic_v5 \
        PYTHONPATH=shared python infra/semantic/train_heads.py     # the shipped heads

The blind sets under tests/blind/ were written by hand for this project (their READMEs
give the provenance), each measured blind once before anything was tuned to it. A set
named here becomes training data for both heads; a set not named stays a measurement.
Single prompts give their benign rows and, by kind, their harmful ones (v1 and v2 label
attacks without a kind, so only their benign rows are used); every turn of a benign
look-alike conversation is a hard benign row; the aim stated in turn 1 of a
"plain_then_followup" attack is a harmful row. The sets' injections and jailbreaks are
left out: with them (90 injection rows, weighted four times like every injection), the
turn head read "Please ignore the typo in my last message." as an injection (0.875).
For the context head every prefix of a look-alike conversation from its second turn on
is a safe continuation, every later turn of a "plain_then_followup" attack pursues the
aim, and the last turn of any other attack completes it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

BLIND = Path(__file__).resolve().parents[2] / "tests" / "blind"
_KIND_LABELS = {"harmful_plain": "harmful"}


def _read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _user_turns(conversation: dict[str, Any]) -> list[str]:
    return [m["content"] for m in conversation["messages"] if m["role"] == "user"]


def single_rows(names: list[str]) -> list[dict[str, str]]:
    """Turn-head rows ({text, label, source}) from the named sets."""
    rows: list[dict[str, str]] = []
    for name in names:
        source = f"own_{name}"
        for row in _read(BLIND / name / "single_prompts.jsonl"):
            if row["label"] == 0:
                rows.append({"text": row["text"], "label": "benign", "source": source})
            elif row.get("kind") in _KIND_LABELS:
                label = _KIND_LABELS[row["kind"]]
                rows.append({"text": row["text"], "label": label, "source": source})
        for conversation in _read(BLIND / name / "benign_lookalike_conversations.jsonl"):
            rows += [
                {"text": turn, "label": "benign", "source": source}
                for turn in _user_turns(conversation)
            ]
        for conversation in _read(BLIND / name / "attack_conversations.jsonl"):
            if conversation.get("kind") == "plain_then_followup":
                aim = _user_turns(conversation)[0]
                rows.append({"text": aim, "label": "harmful", "source": source})
    return rows


def conversations(names: list[str]) -> list[dict[str, Any]]:
    """Context-head conversations ({turns, label, source}) from the named sets."""
    out: list[dict[str, Any]] = []
    for name in names:
        source = f"own_{name}"
        for conversation in _read(BLIND / name / "benign_lookalike_conversations.jsonl"):
            turns = _user_turns(conversation)
            out += [
                {"turns": turns[:end], "label": 0, "source": source}
                for end in range(2, len(turns) + 1)
            ]
        for conversation in _read(BLIND / name / "attack_conversations.jsonl"):
            turns = _user_turns(conversation)
            if len(turns) < 2:
                continue
            if conversation.get("kind") == "plain_then_followup":
                ends = range(2, len(turns) + 1)
            else:
                ends = range(len(turns), len(turns) + 1)
            out += [{"turns": turns[:end], "label": 1, "source": source} for end in ends]
    return out
