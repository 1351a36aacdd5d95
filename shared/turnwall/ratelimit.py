"""Fixed-window rate limits per API key and per client address, counted in the store."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from turnwall.errors import RateLimited

if TYPE_CHECKING:
    from turnwall.stores.base import SessionStore

WINDOW_SECS = 60


@dataclass(frozen=True, slots=True)
class RateLimitStatus:
    """What the RateLimit-* response headers report."""

    limit: int
    remaining: int
    reset_secs: int

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_secs),
        }


class RateLimiter:
    """Counts each request once against its key's and its address's budget.

    Both budgets are `per_minute`; the stricter one is reported. Counters live in the
    configured store, so every Lambda container shares them.
    """

    def __init__(self, store: SessionStore, per_minute: int) -> None:
        self._store = store
        self.per_minute = per_minute

    def hit(self, client_ip: str | None, key_id: str | None) -> RateLimitStatus:
        """Count the request.

        Raises:
            RateLimited: a budget is spent; carries the seconds until the window resets.
        """
        buckets = []
        if key_id is not None:
            buckets.append(f"key:{key_id}")
        if client_ip:
            buckets.append(f"ip:{client_ip}")
        if not buckets:
            return RateLimitStatus(self.per_minute, self.per_minute, WINDOW_SECS)
        counted = self._store.count_requests(buckets, WINDOW_SECS)
        reset = max(1, math.ceil(counted.window_ends_at - self._store.clock()))
        highest = max(counted.counts)
        status = RateLimitStatus(self.per_minute, max(0, self.per_minute - highest), reset)
        if highest > self.per_minute:
            raise RateLimited(
                f"rate limit of {self.per_minute} requests per minute exceeded",
                retry_after_secs=reset,
                details=status.headers(),
            )
        return status
