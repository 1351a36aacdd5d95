"""A clock the tests move by hand, so expiry is tested without sleeping."""

from __future__ import annotations

import threading
import time


class FakeClock:
    """Starts at the real time (Redis key TTLs stay sane) and only moves when told."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds
