"""Rate limits shared by every function through the store, and a dead store's 503."""

from __future__ import annotations

import socket
import time
import uuid

import pytest

from tests.functional.conftest import ADMIN_KEY, configure, load_function
from turnwall.auth import Principal
from turnwall.errors import Forbidden


@pytest.mark.parametrize("backend", ["redis", "dynamodb"])
def test_rate_limit_is_shared_by_all_functions(
    backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    own_key = "iwk_scan_" + uuid.uuid4().hex  # budgets no other test spends
    source_ip = f"2001:db8::{uuid.uuid4().hex[:4]}"
    configure(
        monkeypatch,
        request.getfixturevalue(f"{backend}_store_url"),
        IW_RATE_LIMIT_PER_MIN="4",
        IW_API_KEYS=f"acme:scan:{own_key}",
    )
    get, listing = load_function("get"), load_function("list")

    statuses = [
        fn.invoke("GET", "/v1/sessions", key=own_key, source_ip=source_ip).status
        if n % 2
        else fn.invoke("GET", "/v1/sessions/none", key=own_key, source_ip=source_ip).status
        for n, fn in enumerate([get, listing, get, listing])
    ]
    refused = listing.invoke("GET", "/v1/sessions", key=own_key, source_ip=source_ip)

    assert statuses == [404, 200, 404, 200]
    assert refused.status == 429 and refused.body["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["ratelimit-limit"] == "4"
    assert refused.headers["ratelimit-remaining"] == "0"


def test_a_forwarded_for_header_does_not_escape_the_address_limit_on_lambda(
    redis_store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN six keys of their own, so only the address budget (5 a minute) can refuse
    keys = [f"iwk_scan_{n}{uuid.uuid4().hex}" for n in range(6)]
    configure(
        monkeypatch,
        redis_store_url,
        IW_RATE_LIMIT_PER_MIN="5",
        IW_API_KEYS=",".join(f"acme:scan:{key}" for key in keys),
    )
    listing = load_function("list")
    source_ip = f"2001:db8::{uuid.uuid4().hex[:4]}"

    # WHEN one client sends six requests, each claiming another address
    statuses = [
        listing.invoke(
            "GET",
            "/v1/sessions",
            key=key,
            source_ip=source_ip,
            headers={"x-forwarded-for": f"198.51.100.{n}"},
        ).status
        for n, key in enumerate(keys)
    ]

    # THEN API Gateway's source address is the one counted
    assert statuses == [200] * 5 + [429]


def test_dead_store_answers_503_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    configure(monkeypatch, f"redis://127.0.0.1:{closed_port}/0")
    get = load_function("get")

    for _ in range(3):  # warm invocations stay fast too
        started = time.monotonic()
        response = get.invoke("GET", "/v1/sessions/s1", key=ADMIN_KEY)
        assert time.monotonic() - started < 2
        assert response.status == 503
        assert response.body["error"]["code"] == "store_unavailable"
        assert int(response.headers["retry-after"]) >= 1
    health = load_function("health").invoke("GET", "/v1/health", key=None)
    assert health.status == 503 and health.body["status"] == "unavailable"


def test_roles_gate_permissions() -> None:
    scan = Principal("acme", "scan", "k1")
    admin = Principal("acme", "admin", "k2")

    scan.require("sessions")
    admin.require("keys")
    with pytest.raises(Forbidden):
        scan.require("keys")
