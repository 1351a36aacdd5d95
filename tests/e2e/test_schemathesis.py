"""Property-based fuzzing of the served OpenAPI document: no input yields a 5xx.

Driven through schemathesis' strategies and hypothesis directly (its pytest plugin
does not support this pytest yet), over every operation of a live server on the memory
store and on Redis: at least 1,000 generated requests each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.e2e.conftest import SERVER_RATE_LIMIT, start_server
from tests.functional.conftest import ADMIN_KEY, ENCRYPTION_KEY
from tests.support.upstream import start_stub_upstream

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.e2e.conftest import Server
    from tests.support.upstream import StubUpstream

MIN_CASES = 1000


@pytest.fixture(scope="module")
def upstream() -> Iterator[StubUpstream]:
    stub = start_stub_upstream()
    yield stub
    stub.stop()


@pytest.fixture(params=["memory", "redis"])
def fuzzed_server(request: pytest.FixtureRequest, upstream: StubUpstream) -> Iterator[Server]:
    store_url = (
        "memory://" if request.param == "memory" else request.getfixturevalue("redis_store_url")
    )
    server = start_server(
        {
            "IW_UPSTREAM_URL": upstream.base_url,
            "IW_STORE_URL": store_url,
            "IW_API_KEYS": f"acme:admin:{ADMIN_KEY}",
            "IW_ENCRYPTION_KEYS": ENCRYPTION_KEY,
            "IW_RATE_LIMIT_PER_MIN": str(SERVER_RATE_LIMIT),
        }
    )
    yield server
    server.stop()


def test_no_input_is_a_server_error(fuzzed_server: Server) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzzed_server.base_url}/openapi.json")
    calls = 0
    statuses: dict[int, int] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8
    examples_per_operation = -(-MIN_CASES // len(operations))

    # Operations with few possible inputs run out of new examples early, so go round
    # again with fresh randomness until the total reaches MIN_CASES (bounded).
    # One session, closed on the way out: no sockets are left for the GC to find.
    with requests.Session() as session:
        for operation in [op for _ in range(4) for op in operations]:
            if calls >= MIN_CASES:
                break

            @given(case=operation.as_strategy())
            @settings(
                max_examples=examples_per_operation,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def fuzz(case: schemathesis.Case) -> None:
                nonlocal calls
                calls += 1
                response = case.call(
                    session=session, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=10
                )
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                case.validate_response(response, checks=[not_a_server_error])

            fuzz()
    assert calls >= MIN_CASES
    assert statuses.get(200, 0) + statuses.get(201, 0) > 0, statuses  # it got past validation
