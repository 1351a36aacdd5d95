"""Shared fixtures: an injected clock and one store factory per backend.

Each backend's servers (a private redis-server, a private Redis Cluster, moto's
DynamoDB server) are started once per test session by the plugins below, on free
ports, and stopped at the end; nothing ever touches a server the tests did not start.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Protocol

import pytest

from tests.support.clock import FakeClock
from turnwall.crypto import Cipher
from turnwall.stores.memory import MemorySessionStore, MemoryState

if TYPE_CHECKING:
    from collections.abc import Iterator

    from turnwall.stores.base import SessionStore
    from turnwall.validation import Limits

pytest_plugins = ["tests.support.redis_servers", "tests.support.dynamodb_server"]

BACKENDS = ("memory", "redis", "redis_cluster", "dynamodb")


class StoreFactory(Protocol):
    def __call__(
        self, *, cipher: Cipher | None = None, limits: Limits | None = None
    ) -> SessionStore: ...


@pytest.fixture(autouse=True)
def _close_loaded_functions() -> Iterator[None]:
    """Lambda functions a test loaded release their store connections when it ends."""
    yield
    from tests.functional.conftest import close_loaded_functions

    close_loaded_functions()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def tenant() -> str:
    """A tenant of its own for every test, so tests never see each other's sessions."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def cipher() -> Cipher:
    return Cipher.ephemeral()


@pytest.fixture
def memory_store_factory(clock: FakeClock, cipher: Cipher) -> Iterator[StoreFactory]:
    """Stores made by one factory share their data, like clients of one server."""
    default_cipher, state = cipher, MemoryState()

    def make(*, cipher: Cipher | None = None, limits: Limits | None = None) -> SessionStore:
        return MemorySessionStore(cipher or default_cipher, limits, clock, state=state)

    yield make


@pytest.fixture(params=[pytest.param(name, marks=getattr(pytest.mark, name)) for name in BACKENDS])
def make_store(request: pytest.FixtureRequest) -> StoreFactory:
    """A factory building stores of one backend (the test runs once per backend)."""
    factory: StoreFactory = request.getfixturevalue(f"{request.param}_store_factory")
    return factory


@pytest.fixture
def store(make_store: StoreFactory) -> SessionStore:
    return make_store()
