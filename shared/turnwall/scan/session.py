"""Per-session risk state: what one turn leaves behind for the next.

The store keeps this as an encrypted JSON dict and hands it back on the next turn, to
whichever Lambda serves it. Everything in it is bounded (a few recent turns, short
tails of text, small counters), so it stays well under 16 KiB however long the session
runs and each turn does O(1) work on it. Unknown keys written by a newer version are
carried forward when small; missing or malformed keys fall back to a new session's.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, cast

if TYPE_CHECKING:
    from turnwall.models import Decision

STATE_VERSION: Final = 1
WINDOW_TURNS: Final = 3
WINDOW_CHARS: Final = 240
FRAGMENTS_KEPT: Final = 4
FRAGMENT_CHARS: Final = 120
SCORES_KEPT: Final = 6
PROBES_KEPT: Final = 8
REASONS_KEPT: Final = 6
REASON_CHARS: Final = 120
_EXTRA_BYTES: Final = 1024
_DECISIONS: Final = ("allow", "flag", "block")
_KNOWN: Final = frozenset(
    {
        "v",
        "turns_scanned",
        "flagged_turns",
        "session_score",
        "decision",
        "scores",
        "window",
        "fragments",
        "categories",
        "probes",
        "refusal_turn",
        "harm",
        "harm_turn",
        "contested",
        "reasons",
        "semantic",
    }
)
# The semantic tier's state: the carried levels ("0.123,0.456:", 12 chars) and the
# conversation context, float16 in base64: 256 values (684 chars) for the static model,
# 384 (1,024 chars) for the contextual one.
SEMANTIC_CHARS: Final = 1100


@dataclass(slots=True)
class SessionState:
    """The typed form of the state dict (see the module docstring for its bounds)."""

    turns_scanned: int = 0
    flagged_turns: int = 0
    session_score: float = 0.0
    decision: Decision = "allow"
    scores: list[float] = field(default_factory=list)
    window: list[tuple[int, str]] = field(default_factory=list)
    fragments: list[str] = field(default_factory=list)
    categories: dict[str, int] = field(default_factory=dict)
    probes: list[int] = field(default_factory=list)
    refusal_turn: int = 0
    harm: float = 0.0
    harm_turn: int = 0
    contested: float = 0.0
    reasons: list[str] = field(default_factory=list)
    semantic: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> SessionState:
        """Read a stored state, tolerating missing, malformed and unknown keys."""
        if not raw:
            return cls()
        state = cls(
            turns_scanned=_int(raw.get("turns_scanned")),
            flagged_turns=_int(raw.get("flagged_turns")),
            session_score=_unit(raw.get("session_score")),
            decision=cast("Decision", raw.get("decision"))
            if raw.get("decision") in _DECISIONS
            else "allow",
            scores=[_unit(s) for s in _list(raw.get("scores"))][-SCORES_KEPT:],
            window=[
                (_int(item[0]), str(item[1])[-WINDOW_CHARS:])
                for item in _list(raw.get("window"))
                if isinstance(item, list | tuple) and len(item) == 2
            ][-WINDOW_TURNS:],
            fragments=[str(f)[:FRAGMENT_CHARS] for f in _list(raw.get("fragments"))][
                -FRAGMENTS_KEPT:
            ],
            categories={
                str(key): _int(value) for key, value in _dict(raw.get("categories")).items()
            },
            probes=[_int(t) for t in _list(raw.get("probes"))][-PROBES_KEPT:],
            refusal_turn=_int(raw.get("refusal_turn")),
            harm=_unit(raw.get("harm")),
            harm_turn=_int(raw.get("harm_turn")),
            contested=_unit(raw.get("contested")),
            reasons=[str(r)[:REASON_CHARS] for r in _list(raw.get("reasons"))][-REASONS_KEPT:],
            semantic=_text(raw.get("semantic"), SEMANTIC_CHARS),
        )
        extra = {key: value for key, value in raw.items() if key not in _KNOWN}
        if extra and len(json.dumps(extra, default=str)) <= _EXTRA_BYTES:
            state.extra = extra
        return state

    def to_dict(self) -> dict[str, Any]:
        """The JSON-serializable form the store persists."""
        data: dict[str, Any] = dict(self.extra)
        data.update(
            {
                "v": STATE_VERSION,
                "turns_scanned": self.turns_scanned,
                "flagged_turns": self.flagged_turns,
                "session_score": round(self.session_score, 4),
                "decision": self.decision,
                "scores": [round(s, 3) for s in self.scores[-SCORES_KEPT:]],
                "window": [[turn, text] for turn, text in self.window[-WINDOW_TURNS:]],
                "fragments": self.fragments[-FRAGMENTS_KEPT:],
                "categories": dict(self.categories),
                "probes": self.probes[-PROBES_KEPT:],
                "refusal_turn": self.refusal_turn,
                "harm": round(self.harm, 4),
                "harm_turn": self.harm_turn,
                "contested": round(self.contested, 4),
                "reasons": self.reasons[-REASONS_KEPT:],
            }
        )
        if self.semantic:
            data["semantic"] = self.semantic
        return data

    def remember_reason(self, reason: str) -> None:
        self.reasons.append(reason[:REASON_CHARS])
        del self.reasons[:-REASONS_KEPT]


def _int(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, float) and math.isfinite(value):
        return max(int(value), 0)
    return 0


def _unit(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return min(max(float(value), 0.0), 1.0)
    return 0.0


def _text(value: Any, limit: int) -> str:
    return value if isinstance(value, str) and len(value) <= limit else ""


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}
