"""Rate limits: never more than the limit per window, shared through the store."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest

from tests.support.clock import FakeClock
from turnwall.crypto import Cipher
from turnwall.errors import RateLimited
from turnwall.ratelimit import RateLimiter, RateLimitStatus
from turnwall.stores.memory import MemorySessionStore, MemoryState

if TYPE_CHECKING:
    from collections.abc import Sequence

    from turnwall.stores.rate_counters import RequestCounts


def limiter(per_minute: int, clock: FakeClock, state: MemoryState | None = None) -> RateLimiter:
    store = MemorySessionStore(Cipher.ephemeral(), clock=clock, state=state or MemoryState())
    return RateLimiter(store, per_minute)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=60 * 16_667 + 20.0)  # 20 s into a window


def test_allows_exactly_the_limit_then_429(clock: FakeClock) -> None:
    limits = limiter(60, clock)
    statuses = [limits.hit("203.0.113.9", "key1") for _ in range(60)]

    with pytest.raises(RateLimited) as refused:
        limits.hit("203.0.113.9", "key1")

    assert [s.remaining for s in statuses][:3] == [59, 58, 57]
    assert statuses[-1].remaining == 0
    assert refused.value.retry_after_secs == 40
    assert refused.value.details["RateLimit-Remaining"] == "0"


def test_window_resets(clock: FakeClock) -> None:
    limits = limiter(5, clock)
    for _ in range(5):
        limits.hit(None, "key1")
    clock.advance(40)

    assert limits.hit(None, "key1").remaining == 4


def test_address_budget_is_shared_by_keys(clock: FakeClock) -> None:
    limits = limiter(10, clock)
    for n in range(10):
        limits.hit("203.0.113.9", f"key{n}")

    with pytest.raises(RateLimited):
        limits.hit("203.0.113.9", "fresh-key")
    # the refused attempt spent one of fresh-key's 10 as well
    assert limits.hit("198.51.100.1", "fresh-key").remaining == 8


def test_containers_sharing_a_store_never_exceed_the_limit(clock: FakeClock) -> None:
    shared = MemoryState()
    containers = [limiter(60, clock, shared) for _ in range(4)]
    admitted = 0
    for turn in range(200):
        try:
            containers[turn % 4].hit("203.0.113.9", "key1")
            admitted += 1
        except RateLimited:
            pass

    assert 60 - 3 * containers[0].batch <= admitted <= 60


def test_failed_authentications_do_not_spend_the_budget_of_valid_keys(
    clock: FakeClock,
) -> None:
    # GIVEN an address that sent a full budget of bad keys
    limits = limiter(60, clock)
    for _ in range(60):
        limits.hit_failed_authentication("203.0.113.9")

    # WHEN it fails once more, THEN that failure is refused
    with pytest.raises(RateLimited):
        limits.hit_failed_authentication("203.0.113.9")
    # AND a valid key used from the same address still has its whole budget
    assert limits.hit("203.0.113.9", "unused-key").remaining == 59


class SlowStore(MemorySessionStore):
    """A store whose counter round trip takes as long as a DynamoDB update."""

    def count_requests(
        self, buckets: Sequence[str], window_secs: int = 60, amount: int = 1
    ) -> RequestCounts:
        time.sleep(0.02)
        return super().count_requests(buckets, window_secs, amount)


def test_concurrent_requests_on_a_slow_store_get_no_early_429(clock: FakeClock) -> None:
    # GIVEN a limit well above the requests about to be made
    limits = RateLimiter(SlowStore(Cipher.ephemeral(), clock=clock, state=MemoryState()), 600)
    start = threading.Barrier(64)

    def four_requests(_: int) -> int:
        start.wait()
        refused = 0
        for _ in range(4):
            try:
                limits.hit("203.0.113.9", "key1")
            except RateLimited:
                refused += 1
        return refused

    # WHEN 64 clients of one key send 4 requests each at once (256 of 600)
    with ThreadPoolExecutor(max_workers=64) as pool:
        refused = sum(pool.map(four_requests, range(64)))

    # THEN none is refused, and the store counted no more than was reserved for them
    assert refused == 0
    counted = limits._store.count_requests(["key:key1"], amount=0).counts[0]
    assert counted <= 256 + limits.batch


def test_raw_headers_are_the_headers_as_asgi_sends_them() -> None:
    status = RateLimitStatus(60, 0, 17)

    assert status.headers() == {
        "RateLimit-Limit": "60",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "17",
    }
    assert status.raw_headers() == [
        (b"ratelimit-limit", b"60"),
        (b"ratelimit-remaining", b"0"),
        (b"ratelimit-reset", b"17"),
    ]
