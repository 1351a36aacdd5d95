"""Calibrate the session gates of the semantic tier and write them into model/heads.json.

    PYTHONPATH=shared python infra/semantic/calibrate_session.py

Build time only (needs scikit-learn); run after train_heads.py. The shipped turn head
was refit on every row, so its readings of the training rows are too confident to set a
gate on. This script refits the same recipe (train_heads.py's seed, split, sizes) on
four fifths of data/single.jsonl and reads the held-out fifth, as train_heads.py does
for the turn thresholds; heads.npz is left as it is.

`carry_support`: how harmful (P(harmful), not 1 - P(benign): an override or a persona
is no harmful aim to inherit) an earlier turn must have read for the tier to back a
lexical follow-up rule ("can you give me more detail on that?") on a turn it does not
itself read as harmful. It is the level that held-out hard benign rows (look-alikes,
role-play, security, user tasks) exceed at most CARRY_BUDGET of the time. The budget
comes from the issue's target, that the session adds at most one point of false
positives over each turn alone: a follow-up flag needs both a carried reading (the
larger of two or three earlier turns) and a lexical follow-up rule, which fires on only
a fraction of look-alike conversations; sweep_session.py checks the result on the
calibration conversations (data/conversations.jsonl) and the project's own sets. Below
the level, a run of look-alikes followed by a follow-up is judged by what the follow-up
pursues (the context head), not by how dark the earlier subjects sounded.

`pursuit_floor`: how harmful an earlier turn must have read for the context head's
reading of a follow-up to count at all. That head reads the follow-up's wording as much
as its context ("tell me more about that" after a massacre's history reads as a
pursuit), so its reading needs a harmful aim to pursue: the level that all but
PURSUIT_MISS of held-out harmful rows reach.
"""

from __future__ import annotations

import json
import random

import numpy as np

# A sibling build script: run as a script, its folder is on sys.path.
from train_heads import LABELS, SEED, held_out_turn_head

from turnwall.scan.semantic.model import MODEL_DIR, Embedder

CARRY_BUDGET = 0.05
PURSUIT_MISS = 0.05


def held_out_harm() -> tuple[np.ndarray, list[dict[str, str]]]:
    """P(harmful) for the held-out fifth, from a head fitted on the other four."""
    rows, x, _, held, head = held_out_turn_head(random.Random(SEED), Embedder(MODEL_DIR))
    harm = head.predict_proba(x[held])[:, LABELS.index("harmful")]
    return harm, [r for r, h in zip(rows, held, strict=True) if h]


def main() -> None:
    harm, rows = held_out_harm()
    hard = np.array(
        [r["label"] == "benign" and not r["source"].startswith(("alpaca", "t0_")) for r in rows]
    )
    harmful = np.array([r["label"] == "harmful" for r in rows])
    ranked = np.sort(harm[hard])
    carry_support = float(ranked[int(len(ranked) * (1 - CARRY_BUDGET))])
    pursuit_floor = float(np.sort(harm[harmful])[int(harmful.sum() * PURSUIT_MISS)])
    print(f"held-out hard benign rows n={int(hard.sum())}, harmful rows n={int(harmful.sum())}")
    for q in (0.5, 0.9, 0.95, 0.98, 0.99):
        print(
            f"  quantile {q:.2f}: hard benign {np.quantile(harm[hard], q):.3f}"
            f"  harmful rows, quantile {1 - q:.2f}: {np.quantile(harm[harmful], 1 - q):.3f}"
        )
    print(
        f"carry_support {carry_support:.3f}: exceeded by "
        f"{(harm[hard] >= carry_support).mean():.3f} of hard benign, "
        f"{(harm[harmful] >= carry_support).mean():.3f} of harmful held-out rows"
    )
    meta_path = MODEL_DIR / "heads.json"
    meta = json.loads(meta_path.read_text())
    print(
        f"pursuit_floor {pursuit_floor:.3f}: reached by "
        f"{(harm[harmful] >= pursuit_floor).mean():.3f} of harmful, "
        f"{(harm[hard] >= pursuit_floor).mean():.3f} of hard benign held-out rows"
    )
    # The tier's gates are chosen by name ("session_gate"); this writes the calibrated
    # ones beside the legacy gates and leaves the choice as it is.
    meta.setdefault("session_gates", {})["calibrated"] = {
        "carry_reading": "harm",
        "carry_support": round(carry_support, 3),
        "pursuit_floor": round(pursuit_floor, 3),
    }
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")


if __name__ == "__main__":
    main()
