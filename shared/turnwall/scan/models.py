"""The records a scan returns: matches, the session verdict and the outcome of one turn."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal, get_args

if TYPE_CHECKING:
    from turnwall.models import Decision

Category = Literal[
    "injection",
    "jailbreak",
    "system_prompt_extraction",
    "data_leakage",
    "content_safety",
    "agentic",
]
CATEGORIES: Final[frozenset[str]] = frozenset(get_args(Category))
Direction = Literal["input", "output"]
DECISION_RANK: Final[dict[str, int]] = {"allow": 0, "flag": 1, "block": 2}


def stricter(first: Decision, second: Decision) -> Decision:
    """The more restrictive of two decisions."""
    return first if DECISION_RANK[first] >= DECISION_RANK[second] else second


@dataclass(frozen=True, slots=True)
class Match:
    """One signature that fired. Never carries the matched text: it may be a secret."""

    signature_id: str
    category: str
    score: float
    span: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class SessionVerdict:
    """What the session as a whole looks like after this turn."""

    turn: int
    session_score: float
    decision: Decision
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ScanOutcome:
    """The result of scanning one turn.

    `decision` already includes what session correlation found about this turn (a split
    payload completed here, a harmful follow-up, a leak after probing); `session` is None
    when the scan had no session state.
    """

    decision: Decision
    score: float
    matches: list[Match] = field(default_factory=list)
    session: SessionVerdict | None = None
