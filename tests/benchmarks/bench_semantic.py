"""The embedding tiers: latency and cold start per tier, and the blind sets per tier.

    python -m tests.benchmarks.bench_semantic [--no-blind]

Pinned to one core. Each text is about 1 KB and is scanned with the state of a 50-turn
session, as in bench_scan; the lexical tier is compared with InferenceWall's SDK in the
same run (target p99 <= 0.5x), the semantic and contextual tiers against their own
budget (p99 <= 15 ms). Cold start is a fresh interpreter importing turnwall, building
the scanner and scanning one turn. Then `turnwall eval` runs on each blind set
(tests/blind/semantic and semantic_v2 to semantic_v59, laid out as input/, output/,
multiturn/) with each tier. Both tiers' heads are trained on semantic to semantic_v7
(infra/semantic/own_sets.py); semantic_v8 and semantic_v9 chose between candidate heads
(infra/semantic/README.md, steps 8 and 9), so semantic_v10 to semantic_v13 measured them
blind (v12 and v13 were written for the contextual tier's first measurement); v8 to v13
then chose the contextual tier's session gates (step 10) and its token budget (step
11), which v14 and v15 measured after a first measurement, and v16 and v17 blind;
v18 to v53 were each measured blind once, then read as development data (v42 to v53
only from the stop after the one that measured them), and v8 to v27 now train the
contextual heads (docs/SEMANTIC.md); v54 to v56 were measured blind at the twentieth
stop and read from the twenty-first, v57 to v59 measured blind at the twenty-first.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.benchmarks.bench_scan import (
    _ATTACK,
    _BENIGN,
    CALLS,
    SESSION_TURNS,
    load_inferwall,
    paired_timings_us,
    percentile,
    scanning,
    session_state,
    timings_us,
)
from turnwall.evaluation import main as evaluate
from turnwall.scan import Scanner
from turnwall.scan.scanner import TIERS

_BLIND = Path(__file__).parents[1] / "blind"
BLIND_SETS = (
    _BLIND / "semantic",
    *(_BLIND / f"semantic_v{number}" for number in range(2, 60)),
    *(_BLIND / f"long_v{number}" for number in range(1, 4)),
    *(_BLIND / f"replies_v{number}" for number in range(1, 3)),
)
_COLD = (
    "import time; started = time.perf_counter(); "
    "from turnwall.scan import Scanner; "
    "scanner = Scanner(tier={tier!r}); scanner.scan_input('hello there', {{}}); "
    "print(time.perf_counter() - started)"
)
_BUDGET_US = 15_000


def cold_start_ms(tier: str, runs: int = 3) -> float:
    """Median wall time of a fresh process's import, scanner build and first scan."""
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", _COLD.format(tier=tier)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        samples.append(float(out.strip()) * 1000)
    return statistics.median(samples)


def latency() -> None:
    inferwall = load_inferwall()
    print(f"scan_input, {CALLS} calls per row, one core, session state of {SESSION_TURNS} turns")
    print(f"{'tier':<12}{'text':<8}{'p50':>9}{'p99':>10}{'vs':>16}")
    for tier in TIERS:
        scanner = Scanner(tier=tier)
        state = session_state(scanner, SESSION_TURNS)
        for name, text in (("benign", _BENIGN), ("attack", _ATTACK)):
            scan = scanning(scanner, state)
            if tier == "lexical" and inferwall is not None:
                ours, theirs = paired_timings_us(scan, inferwall.scan_input, text, CALLS)
                versus = f"{percentile(ours, 0.99) / percentile(theirs, 0.99):.2f}x inferwall"
            else:
                ours = timings_us(scan, text, CALLS)
                versus = f"{percentile(ours, 0.99) / _BUDGET_US:.2f}x 15 ms"
            print(
                f"{tier:<12}{name:<8}{statistics.median(ours):>7.0f}us"
                f"{percentile(ours, 0.99):>8.0f}us{versus:>16}"
            )
    print("targets: lexical p99 <= 0.5x InferenceWall; semantic, contextual p99 <= 1.00x 15 ms")
    print()
    print(f"{'tier':<12}{'cold start (import, build, first scan)':>40}")
    for tier in TIERS:
        print(f"{tier:<12}{cold_start_ms(tier):>37.0f} ms")
    print()


def blind_sets() -> None:
    layout = {
        "input": ["single_prompts.jsonl"],
        "output": ["benign_replies.jsonl"],
        "multiturn": ["attack_conversations.jsonl", "benign_lookalike_conversations.jsonl"],
    }
    for blind in BLIND_SETS:
        print(f"blind set {blind.name}")
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            for part, names in layout.items():
                (root / part).mkdir()
                for name in names:
                    if (blind / name).exists():
                        shutil.copy(blind / name, root / part / name)
            for tier in TIERS:
                evaluate([str(root), "--tier", tier])
                print()


def main() -> int:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    latency()
    if "--no-blind" not in sys.argv:
        blind_sets()
    return 0


if __name__ == "__main__":
    sys.exit(main())
