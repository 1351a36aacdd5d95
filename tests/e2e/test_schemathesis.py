"""Property-based fuzzing of the served OpenAPI document: no input yields a 5xx.

Driven through schemathesis' strategies and hypothesis directly (its pytest plugin
does not support this pytest yet), over every operation of the live server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.functional.conftest import ADMIN_KEY

if TYPE_CHECKING:
    from tests.e2e.conftest import Server

EXAMPLES_PER_OPERATION = 60


def test_no_input_is_a_server_error(server: Server) -> None:
    schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")
    calls = 0
    statuses: dict[int, int] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: schemathesis.Case) -> None:
            nonlocal calls
            calls += 1
            response = case.call(headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=10)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            case.validate_response(response, checks=[not_a_server_error])

        fuzz()

    assert calls >= len(operations) * 10
    assert statuses.get(200, 0) + statuses.get(201, 0) > 0, statuses  # it got past validation
