"""Sweep the semantic session's carry_support over conversation sets, through the scanner.

    PYTHONPATH=shared python infra/semantic/sweep_session.py 0.15 0.35 [--gates calibrated]

Build time only. For each value, every conversation of the development sets is scanned
with the session (tier "semantic") and each turn alone, and the share flagged is
printed: recall on attack sets, false positives on benign ones, and the points the
session adds over each turn alone. The sets are the calibration conversations in
data/conversations.jsonl (look-alike runs and look-alikes followed by follow-ups, which
the context head saw in training, so their false positives are a floor), the project's
own conversation tests, the first blind set (tests/blind/semantic, which has guided
tuning since it was measured) and ../shared/eval's conversations. The second blind set
(tests/blind/semantic_v2) is deliberately not read here. `--blind` adds blind sets by
name once they are development sets, `--tier contextual` sweeps the contextual model's
gates, `--bare-words` / `--bare-carry` its gates for bare follow-ups (step 10) and
`--protective-carry` what a turn stating a protective aim carries (step 12):

    PYTHONPATH=shared python infra/semantic/sweep_session.py 0.02 --tier contextual \
        --carry-min 0.1 --bare-words 8 --bare-carry 0.5 --limit 1000 \
        --blind semantic_v8,semantic_v9,semantic_v10,semantic_v11,semantic_v12,semantic_v13
"""

from __future__ import annotations

import argparse
import json
import random
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

from turnwall.scan import Scanner
from turnwall.scan.semantic import tier
from turnwall.scan.semantic.tier import SessionGates

ROOT = Path(__file__).resolve().parents[2]
SETS = [
    ROOT / "infra/semantic/data/conversations.jsonl",
    ROOT / "infra/semantic/data/dev_session_conversations.jsonl",
    ROOT / "tests/unit/scan/benign_sessions.jsonl",
    ROOT / "tests/unit/scan/benign_conversations.jsonl",
    ROOT / "tests/unit/scan/benign_lookalikes.jsonl",
    ROOT / "tests/unit/scan/attack_conversations.jsonl",
    ROOT / "tests/blind/semantic/benign_lookalike_conversations.jsonl",
    ROOT / "tests/blind/semantic/attack_conversations.jsonl",
    ROOT.parent / "shared/eval/multiturn/cosafe_attacks.jsonl",
    ROOT.parent / "shared/eval/multiturn/mt_bench_benign.jsonl",
]
# Synthetic conversations that test the turn head more than the session.
SKIPPED_SOURCES = {"harm+topic_change", "benign+follow_up"}


def groups(limit: int, blind: list[str]) -> dict[tuple[str, str, int], list[list[str]]]:
    found: dict[tuple[str, str, int], list[list[str]]] = defaultdict(list)
    extra = [
        ROOT / "tests/blind" / name / f"{kind}_conversations.jsonl"
        for name in blind
        for kind in ("benign_lookalike", "attack")
    ]
    for path in SETS + extra:
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            row: dict[str, Any] = json.loads(line)
            if row.get("source") in SKIPPED_SOURCES:
                continue
            turns = row.get("turns") or [
                m["content"] for m in row["messages"] if m.get("role") == "user"
            ]
            key = (f"{path.parent.name}/{path.name}", str(row.get("source", "-")), row["label"])
            found[key].append(turns)
    for convs in found.values():
        random.Random(12).shuffle(convs)
        del convs[limit:]
    return found


def flagged(scanner: Scanner, turns: list[str]) -> tuple[bool, bool]:
    """Whether any turn is flagged alone, and whether the session flags any turn."""
    alone = any(scanner.scan_input(text, None)[0].decision != "allow" for text in turns)
    state: dict[str, Any] = {}
    for text in turns:
        outcome, state = scanner.scan_input(text, state)
        if outcome.decision != "allow":
            return alone, True
    return alone, False


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("levels", nargs="+", type=float)
    parser.add_argument("--limit", type=int, default=400)
    parser.add_argument("--context", type=float, default=0.0, help="context head threshold")
    parser.add_argument("--floor", type=float, default=-1.0, help="pursuit_floor")
    parser.add_argument("--decay", type=float, default=0.0, help="CARRY_DECAY")
    parser.add_argument("--carry-min", type=float, default=0.0, help="CARRY_MIN")
    parser.add_argument("--only", default="", help="keep sets whose file name contains this")
    parser.add_argument("--gates", default=None, help="heads.json session gates to start from")
    parser.add_argument("--reading", choices=["suspicion", "harm"], default=None)
    parser.add_argument("--tier", choices=["semantic", "contextual"], default="semantic")
    parser.add_argument("--blind", default="", help="tests/blind sets to add, comma-separated")
    parser.add_argument("--bare-words", type=int, default=-1, help="bare_words")
    parser.add_argument("--bare-carry", type=float, default=-1.0, help="bare_carry")
    parser.add_argument("--protective-carry", type=float, default=-1.0, help="protective_carry")
    args = parser.parse_args()
    blind = [name for name in args.blind.split(",") if name]
    sets = {key: convs for key, convs in groups(args.limit, blind).items() if args.only in key[0]}
    scanner = Scanner(tier=args.tier)
    semantic = scanner.semantic
    assert semantic is not None
    gates = SessionGates.from_meta(semantic.model.meta, args.gates)
    if args.reading:
        gates = replace(gates, carry_reading=args.reading)
    if args.floor >= 0:
        gates = replace(gates, pursuit_floor=args.floor)
    if args.context:
        semantic._context_threshold = args.context
    if args.decay:
        tier.CARRY_DECAY = args.decay  # type: ignore[misc]
    if args.carry_min:
        gates = replace(gates, pursuit_carry=args.carry_min)
    if args.bare_words >= 0:
        gates = replace(gates, bare_words=args.bare_words)
    if args.bare_carry >= 0:
        gates = replace(gates, bare_carry=args.bare_carry)
    if args.protective_carry >= 0:
        gates = replace(gates, protective_carry=args.protective_carry)
    for level in args.levels:
        semantic.gates = replace(gates, carry_support=level)
        print(semantic.gates)
        for (name, source, label), convs in sorted(sets.items()):
            results = [flagged(scanner, turns) for turns in convs]
            alone = sum(a for a, _ in results) / len(results)
            session = sum(s for _, s in results) / len(results)
            kind = "recall" if label else "FPR"
            print(
                f"  {name[:46]:<46} {source[:22]:<22} n={len(convs):4d} {kind:<6} "
                f"alone {alone:.3f} session {session:.3f} added {100 * (session - alone):+.1f}"
            )


if __name__ == "__main__":
    main()
