"""Measure the scanner on labelled data laid out like `shared/eval` (see its README).

    turnwall eval DIR [--profile default] [--tier semantic|lexical] [--no-baseline]

Reads DIR/input/*.jsonl (prompts), DIR/output/*.jsonl (model outputs) and
DIR/multiturn/*.jsonl (conversations), and prints precision, recall, F1 and
false-positive rate per file, flag and block both counting as positive. Outputs are
scanned without and, when rows carry a `prompt` (or the hidden `secret` the prompt held),
with the prompt. Conversations are scanned turn by turn alone and with the session (also
with the assistant replies scanned as outputs, when the rows have them); a conversation
counts as detected when any of its user turns is flagged or blocked, and the table shows
at which user turn on average. InferenceWall (`pip install inferwall`, heuristic "lite"
profile) is measured on the same rows as a baseline when it can be imported.

A workstation tool, not part of scanning: no Lambda function imports it, and the layer
build leaves it out (`infra/compile_layer.py`).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from turnwall.scan.policy import PROFILES
from turnwall.scan.scanner import TIERS, Scanner
from turnwall.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Callable


@dataclass(slots=True)
class Tally:
    """Confusion counts of one engine on one file and mode."""

    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0
    detection_turns: list[int] = field(default_factory=list)

    def add(self, predicted: bool, label: int, turn: int | None = None) -> None:
        if predicted and label:
            self.tp += 1
        elif predicted:
            self.fp += 1
        elif label:
            self.fn += 1
        else:
            self.tn += 1
        if predicted and turn is not None:
            self.detection_turns.append(turn)

    def merge(self, other: Tally) -> Tally:
        return Tally(
            self.tp + other.tp,
            self.fp + other.fp,
            self.tn + other.tn,
            self.fn + other.fn,
            self.detection_turns + other.detection_turns,
        )

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.tn + self.fn

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None:
            return None
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def fpr(self) -> float | None:
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else None

    @property
    def mean_turn(self) -> float | None:
        turns = self.detection_turns
        return sum(turns) / len(turns) if turns else None


@dataclass(slots=True)
class Row:
    """One line of the printed table."""

    file: str
    mode: str
    ours: Tally
    baseline: Tally | None = None


class Baseline:
    """InferenceWall's SDK in its heuristic (lite) profile, if it is installed."""

    def __init__(self) -> None:
        os.environ.setdefault("IW_PROFILE", "lite")
        logging.getLogger("inferwall").setLevel(logging.ERROR)
        self.module: Any = importlib.import_module("inferwall")

    def flags_input(self, text: str) -> bool:
        return bool(self.module.scan_input(text).decision != "allow")

    def flags_output(self, text: str) -> bool:
        return bool(self.module.scan_output(text).decision != "allow")


def load_baseline() -> Baseline | None:
    """InferenceWall, or None when it is not installed (the table says it was skipped)."""
    try:
        return Baseline()
    except ImportError:
        return None


def main(argv: list[str] | None = None) -> int:
    """Entry point of `turnwall eval DIR`; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="turnwall eval", description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, help="folder with input/, output/, multiturn/")
    parser.add_argument("--profile", default="default", choices=sorted(PROFILES))
    parser.add_argument("--no-baseline", action="store_true", help="skip InferenceWall")
    parser.add_argument(
        "--tier",
        default=Settings.model_fields["scan_tier"].default,
        choices=TIERS,
        help="semantic (signatures and the embedding tier) or lexical (signatures only); "
        "by default the tier the service runs by default",
    )
    args = parser.parse_args(argv)
    directory: Path = args.directory
    if not directory.is_dir():
        _say(f"turnwall eval: {directory} is not a directory", stream=sys.stderr)
        return 2
    scanner = Scanner(profile=args.profile, tier=args.tier)
    baseline = None if args.no_baseline else load_baseline()
    rows: list[Row] = []
    for path in sorted(directory.glob("input/*.jsonl")):
        rows.append(_single(path, directory, scanner, baseline))
    for path in sorted(directory.glob("output/*.jsonl")):
        rows.extend(_outputs(path, directory, scanner, baseline))
    multiturn = [
        _conversations(p, directory, scanner, baseline)
        for p in sorted(directory.glob("multiturn/*.jsonl"))
    ]
    for file_rows in multiturn:
        rows.extend(file_rows)
    if len(multiturn) > 1:
        rows.extend(_pooled(multiturn))
    skipped = None
    if baseline is None:
        skipped = (
            "--no-baseline"
            if args.no_baseline
            else "not installed; pip install inferwall to compare"
        )
    _print_table(rows, profile=args.profile, tier=args.tier, skipped=skipped)
    return 0


def _read(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _single(path: Path, root: Path, scanner: Scanner, baseline: Baseline | None) -> Row:
    ours, theirs = Tally(), Tally()
    for row in _read(path):
        label = int(row["label"])
        outcome, _ = scanner.scan_input(row["text"], None)
        ours.add(outcome.decision != "allow", label)
        if baseline is not None:
            theirs.add(baseline.flags_input(row["text"]), label)
    return Row(_name(path, root), "single", ours, theirs if baseline else None)


def _outputs(path: Path, root: Path, scanner: Scanner, baseline: Baseline | None) -> list[Row]:
    data = _read(path)
    plain, prompted, theirs = Tally(), Tally(), Tally()
    has_prompt = any(row.get("prompt") or row.get("secret") for row in data)
    for row in data:
        label = int(row["label"])
        outcome, _ = scanner.scan_output(row["text"], None)
        plain.add(outcome.decision != "allow", label)
        if has_prompt:
            prompt = row.get("prompt") or row.get("secret")
            outcome, _ = scanner.scan_output(row["text"], None, prompt=prompt)
            prompted.add(outcome.decision != "allow", label)
        if baseline is not None:
            theirs.add(baseline.flags_output(row["text"]), label)
    name = _name(path, root)
    rows = [Row(name, "no prompt", plain, theirs if baseline else None)]
    if has_prompt:
        rows.append(Row(name, "with prompt", prompted, theirs if baseline else None))
    return rows


def _conversations(
    path: Path, root: Path, scanner: Scanner, baseline: Baseline | None
) -> list[Row]:
    data = _read(path)
    alone, session, replies, theirs = Tally(), Tally(), Tally(), Tally()
    has_replies = any(m.get("role") == "assistant" for row in data for m in row["messages"])
    for row in data:
        label = int(row["label"])
        messages = row["messages"]
        user_turns = [m["content"] for m in messages if m.get("role") == "user"]
        turn = _first(user_turns, lambda text: scanner.scan_input(text, None)[0].decision)
        alone.add(turn is not None, label, turn)
        turn = _with_session(scanner, messages, replies=False)
        session.add(turn is not None, label, turn)
        if has_replies:
            turn = _with_session(scanner, messages, replies=True)
            replies.add(turn is not None, label, turn)
        if baseline is not None:
            turn = _first(
                user_turns,
                lambda text: "flag" if baseline.flags_input(text) else "allow",
            )
            theirs.add(turn is not None, label, turn)
    name = _name(path, root)
    rows = [
        Row(name, "each turn alone", alone, theirs if baseline else None),
        Row(name, "with session", session),
    ]
    if has_replies:
        rows.append(Row(name, "session+replies", replies))
    return rows


def _first(turns: list[str], decide: Callable[[str], str]) -> int | None:
    for index, text in enumerate(turns, start=1):
        if decide(text) != "allow":
            return index
    return None


def _with_session(scanner: Scanner, messages: list[dict[str, str]], *, replies: bool) -> int | None:
    state: dict[str, Any] | None = {}
    user_turn = 0
    for message in messages:
        if message.get("role") == "user":
            user_turn += 1
            outcome, state = scanner.scan_input(message["content"], state)
            if outcome.decision != "allow":
                return user_turn
        elif replies and message.get("role") == "assistant":
            _, state = scanner.scan_output(message["content"], state)
    return None


def _pooled(multiturn: list[list[Row]]) -> list[Row]:
    """All conversation files together: attack recall against benign false positives.

    A file without assistant replies counts in the "session+replies" row with its
    "with session" figures: with no replies to scan, the two modes are the same.
    """
    pooled: dict[str, Row] = {}
    for file_rows in multiturn:
        modes = {row.mode for row in file_rows}
        if "session+replies" not in modes:
            file_rows = file_rows + [
                Row(row.file, "session+replies", row.ours)
                for row in file_rows
                if row.mode == "with session"
            ]
        for row in file_rows:
            if row.mode not in pooled:
                pooled[row.mode] = Row("multiturn/* (pooled)", row.mode, Tally(), None)
            target = pooled[row.mode]
            target.ours = target.ours.merge(row.ours)
            if row.baseline is not None:
                target.baseline = (target.baseline or Tally()).merge(row.baseline)
    return list(pooled.values())


def _name(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _print_table(rows: list[Row], *, profile: str, tier: str, skipped: str | None) -> None:
    """The table; `skipped` says why InferenceWall's columns are missing (None: shown)."""
    baseline = skipped is None
    width = max((len(row.file) for row in rows), default=10)
    names = "".join(f"{name:>7}" for name in ("P", "R", "F1", "FPR", "turn"))
    lead = f"{'file':<{width}}  {'mode':<16}{'n':>5}  "
    _say(f"Turnwall scan, profile {profile!r}, tier {tier!r} (flag and block count as positive)")
    if not baseline:
        _say(f"InferenceWall: skipped ({skipped})")
    groups = f"{'':<{len(lead)}}| {'turnwall':<{len(names)}}"
    if baseline:
        groups += f"  | {'inferwall (lite)':<{len(names)}}"
    _say(groups)
    _say(f"{lead}| {names}" + (f"  | {names}" if baseline else ""))
    _say("-" * (len(lead) + (len(names) + 4) * (2 if baseline else 1)))
    for row in rows:
        line = f"{row.file:<{width}}  {row.mode:<16}{row.ours.n:>5}  | {_metrics(row.ours)}"
        if baseline:
            line += "  | " + (_metrics(row.baseline) if row.baseline else "   (no session mode)")
        _say(line)
    _say("")
    _say("P precision, R recall, FPR false-positive rate; turn: mean user turn of detection.")


def _metrics(tally: Tally) -> str:
    values = (tally.precision, tally.recall, tally.f1, tally.fpr, tally.mean_turn)
    return "".join(
        f"{_fmt(value, 2 if index == 4 else 3):>7}" for index, value in enumerate(values)
    )


def _say(text: str, *, stream: Any = None) -> None:
    out = stream or sys.stdout
    out.write(text + "\n")
    out.flush()


if __name__ == "__main__":
    sys.exit(main())
