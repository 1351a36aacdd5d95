"""Rate limits: never more than the limit per window, shared through the store."""

from __future__ import annotations

import pytest

from tests.support.clock import FakeClock
from turnwall.crypto import Cipher
from turnwall.errors import RateLimited
from turnwall.ratelimit import RateLimiter
from turnwall.stores.memory import MemorySessionStore, MemoryState


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
