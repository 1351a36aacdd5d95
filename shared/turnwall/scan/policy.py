"""Anomaly scoring and the policy profiles that turn scores into decisions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from turnwall.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from turnwall.models import Decision
    from turnwall.scan.models import Direction

# Each further signal counts for less than the one before it: corroboration raises the
# score, but ten weak hints never add up to one strong finding.
_DAMPING: Final = 0.7


def combine(scores: Iterable[float]) -> float:
    """Anomaly score of several signals: 1 - prod(1 - s_i * 0.7^i), strongest first."""
    remaining = 1.0
    weight = 1.0
    for score in sorted(scores, reverse=True):
        remaining *= 1.0 - min(score, 1.0) * weight
        weight *= _DAMPING
    return round(1.0 - remaining, 4)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Where a score becomes a flag, and a block (None: this profile never blocks)."""

    flag: float
    block: float | None


@dataclass(frozen=True, slots=True)
class Policy:
    """A named set of thresholds for turns in each direction and for the session."""

    name: str
    input: Thresholds
    output: Thresholds
    session: Thresholds

    def for_direction(self, direction: Direction) -> Thresholds:
        return self.input if direction == "input" else self.output

    def decide(self, score: float, thresholds: Thresholds, *, may_block: bool = True) -> Decision:
        """The decision for `score`; `may_block` False caps it at flag (uncorroborated)."""
        if thresholds.block is not None and may_block and score >= thresholds.block:
            return "block"
        if score >= thresholds.flag:
            return "flag"
        return "allow"


PROFILES: Final[dict[str, Policy]] = {
    "default": Policy(
        name="default",
        input=Thresholds(flag=0.5, block=0.8),
        output=Thresholds(flag=0.5, block=0.8),
        session=Thresholds(flag=0.5, block=0.9),
    ),
    "strict": Policy(
        name="strict",
        input=Thresholds(flag=0.35, block=0.65),
        output=Thresholds(flag=0.35, block=0.65),
        session=Thresholds(flag=0.35, block=0.75),
    ),
    "monitor": Policy(
        name="monitor",
        input=Thresholds(flag=0.5, block=None),
        output=Thresholds(flag=0.5, block=None),
        session=Thresholds(flag=0.5, block=None),
    ),
}


def policy_for(profile: str) -> Policy:
    """The policy of a profile name; raises ConfigurationError for an unknown one."""
    try:
        return PROFILES[profile]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ConfigurationError(f"unknown scan profile {profile!r} (known: {known})") from None
