"""Fixed-window rate limits per API key and per client address, counted in the store.

Counting every request in the backend would add a round trip to every request. A
container instead reserves a small batch of requests at a time (INCRBY the batch) and
spends the reservation locally::

    container A: reserve 6 (count 0→6) ─ serve 6 locally ─ reserve 6 (count 6→18?) ...
    container B:          reserve 6 (count 6→12) ─ serve 6 ...

Reservations are counted before they are spent, so a key never gets more than the limit
in a window; a reservation left unspent in one container can make another container
answer 429 up to `batch` requests early. A batch is a tenth of the limit (at least 1,
at most 100), so with the default 60/min a container reserves 6 at a time.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from turnwall.errors import RateLimited

if TYPE_CHECKING:
    from turnwall.stores.base import SessionStore

WINDOW_SECS = 60
MAX_BATCH = 100
_LOCK_STRIPES = 64


class RateLimitStatus(NamedTuple):
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

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """The same headers as ASGI sends them: lower-case names, bytes."""
        return [(name.lower().encode(), value.encode()) for name, value in self.headers().items()]


@dataclass(slots=True)
class _Reservation:
    window: int
    unspent: int  # reserved in the store, not yet used by this container
    counted: int  # the store's count for the bucket after this container's last reserve


class RateLimiter:
    """Counts each request once against its key's and its address's budget.

    Both budgets are `per_minute`; the stricter one is reported. Failed authentications
    count against a budget of their own per address, so a stream of bad keys from one
    address (or a shared NAT) cannot lock out the valid keys used from there.

    Checking a bucket's reservation, topping it up from the store and spending from it
    happen under that bucket's lock, so concurrent requests of one key never see a
    reservation that another request is about to spend (which answered 429 early).
    """

    def __init__(self, store: SessionStore, per_minute: int) -> None:
        self._store = store
        self.per_minute = per_minute
        self.batch = max(1, min(MAX_BATCH, per_minute // 10))
        self._reservations: dict[str, _Reservation] = {}
        self._lock = threading.Lock()  # guards the reservations dict itself
        # Striped: a lock per bucket would grow with every client address ever seen.
        self._bucket_locks = tuple(threading.Lock() for _ in range(_LOCK_STRIPES))

    def hit(self, client_ip: str | None, key_id: str | None) -> RateLimitStatus:
        """Count an authenticated request.

        Raises:
            RateLimited: a budget is spent; carries the seconds until the window resets.
        """
        buckets = [f"key:{key_id}"] if key_id is not None else []
        if client_ip:
            buckets.append(f"ip:{client_ip}")
        return self._spend(buckets)

    def hit_failed_authentication(self, client_ip: str | None) -> None:
        """Count a request whose credentials were missing or refused.

        Raises:
            RateLimited: the address has failed authentication too often this window.
        """
        if client_ip:
            self._spend([f"auth-failure:ip:{client_ip}"])

    def _spend(self, buckets: list[str]) -> RateLimitStatus:
        now = self._store.clock()
        window = int(now // WINDOW_SECS)
        reset = max(1, math.ceil((window + 1) * WINDOW_SECS - now))
        stripes = sorted({hash(bucket) % _LOCK_STRIPES for bucket in buckets})
        held: list[threading.Lock] = []
        try:
            for stripe in stripes:  # in one global order, so two requests never deadlock
                lock = self._bucket_locks[stripe]
                lock.acquire()
                held.append(lock)
            with self._lock:
                short = [b for b in buckets if not self._has_unspent(b, window)]
            if short:
                window = max(window, self._reserve(short))  # the window may have just turned
            remaining = self.per_minute
            exhausted = False
            with self._lock:
                for bucket in buckets:
                    reservation = self._reservations.get(bucket)
                    if (
                        reservation is None
                        or reservation.window != window
                        or not reservation.unspent
                    ):
                        exhausted = True
                        continue
                    reservation.unspent -= 1
                    left = self.per_minute - reservation.counted + reservation.unspent
                    remaining = min(remaining, max(0, left))
        finally:
            # A plain loop, not an ExitStack: this runs on every request.
            for lock in reversed(held):
                lock.release()
        if exhausted:
            status = RateLimitStatus(self.per_minute, 0, reset)
            raise RateLimited(
                f"rate limit of {self.per_minute} requests per minute exceeded",
                retry_after_secs=reset,
                details=status.headers(),
            )
        return RateLimitStatus(self.per_minute, remaining, reset)

    def _has_unspent(self, bucket: str, window: int) -> bool:
        """Whether the bucket has a reservation left in `window` (hold self._lock)."""
        reservation = self._reservations.get(bucket)
        return reservation is not None and reservation.window == window and reservation.unspent > 0

    def _reserve(self, buckets: list[str]) -> int:
        counted = self._store.count_requests(buckets, WINDOW_SECS, self.batch)
        with self._lock:
            if len(self._reservations) > 10_000:  # forget old windows under an address flood
                self._reservations.clear()
            for bucket, count in zip(buckets, counted.counts, strict=True):
                # Of the batch just counted, only what still fits under the limit is ours.
                granted = max(0, min(self.batch, self.per_minute - (count - self.batch)))
                previous = self._reservations.get(bucket)
                carried = previous.unspent if previous and previous.window == counted.window else 0
                self._reservations[bucket] = _Reservation(counted.window, carried + granted, count)
        return counted.window
