"""Rate counters: fixed-window request counts shared by every process on a backend.

`turnwall.ratelimit` decides what the counts mean (limits per key and tenant); a
backend only adds to counters atomically and lets them vanish after their window.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["RateCounters", "RequestCounts"]


class RequestCounts(NamedTuple):
    """Counts per bucket in one rate-limit window, and when it ends (epoch secs)."""

    window: int
    counts: list[int]
    window_ends_at: float


class RateCounters(ABC):
    """Request counters per bucket in fixed time windows."""

    clock: Callable[[], float]

    def count_requests(
        self, buckets: Sequence[str], window_secs: int = 60, amount: int = 1
    ) -> RequestCounts:
        """Add `amount` requests to each bucket's counter in the current fixed window.

        All processes sharing the backend share the counters.
        """
        now = self.clock()
        window = int(now // window_secs)
        counts = self._count_hits(buckets, window, window_secs, amount)
        return RequestCounts(window, counts, (window + 1) * window_secs)

    @abstractmethod
    def _count_hits(
        self, buckets: Sequence[str], window: int, window_secs: int, amount: int
    ) -> list[int]:
        """Atomically add `amount` to each bucket's counter for fixed window number
        `window` and return the new counts; counters must vanish after their window."""
