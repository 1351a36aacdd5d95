"""Retry pauses with full jitter, the one back-off every retry loop uses.

A loop that lost a race (an optimistic commit, a DynamoDB transaction conflict, a
throttled batch) sleeps a random time between zero and an exponentially growing
ceiling before its next attempt, so a crowd of writers that collided once does not
collide again in lockstep ("full jitter"). How many attempts a loop makes stays with
the loop: it knows what giving up means there.

Connection-level retries are the client libraries' own: redis-py's `Retry` and
botocore's retry modes, configured where each client is built.
"""

from __future__ import annotations

import random
import time
from typing import Final

__all__ = ["OPTIMISTIC_BASE_SECS", "OPTIMISTIC_CAP_SECS", "back_off", "jitter_delay"]

# An optimistic write waits at most 20 ms: the race it lost takes well under that.
OPTIMISTIC_BASE_SECS: Final = 0.0005
OPTIMISTIC_CAP_SECS: Final = 0.02
# 2**16 times any base used here is far past its cap; bounding the exponent keeps the
# arithmetic small for loops that run long.
_MAX_EXPONENT: Final = 16


def jitter_delay(
    attempt: int, *, base_secs: float = OPTIMISTIC_BASE_SECS, cap_secs: float = OPTIMISTIC_CAP_SECS
) -> float:
    """A random pause before retry `attempt` (0-based): uniform in
    [0, min(cap, base * 2**attempt))."""
    return random.random() * min(cap_secs, base_secs * (1 << min(attempt, _MAX_EXPONENT)))


def back_off(
    attempt: int, *, base_secs: float = OPTIMISTIC_BASE_SECS, cap_secs: float = OPTIMISTIC_CAP_SECS
) -> None:
    """Sleep before retry `attempt` (0-based); by default as an optimistic write that
    lost a race does."""
    time.sleep(jitter_delay(attempt, base_secs=base_secs, cap_secs=cap_secs))
