"""Faults: a Redis that stops mid-load, a throttling DynamoDB, an undecryptable item."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import boto3
import httpx
from botocore.stub import Stubber
from mangum import Mangum

from tests.e2e.conftest import start_server
from tests.functional.conftest import ADMIN_KEY, ENCRYPTION_KEY, configure
from tests.support.events import ApiResponse, LambdaContext, api_event
from tests.support.redis_servers import start_redis_server
from turnwall.crypto import Cipher
from turnwall.http.app import create_app
from turnwall.models import NewMessage
from turnwall.settings import get_settings
from turnwall.stores.dynamodb import DynamoDBSessionStore

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

    from turnwall.stores.redis import RedisSessionStore

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


def test_redis_outage_gives_fast_503s_and_recovers(tmp_path: Path) -> None:
    redis_server = start_redis_server(tmp_path / "redis")
    port = redis_server.port
    server = start_server(
        {
            "IW_STORE_URL": redis_server.url,
            "IW_ENCRYPTION_KEYS": ENCRYPTION_KEY,
            "IW_API_KEYS": f"acme:admin:{ADMIN_KEY}",
            "IW_RATE_LIMIT_PER_MIN": "100000000",
        }
    )
    outcomes: list[tuple[float, int, str | None]] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=server.base_url, headers=AUTH, timeout=10) as http:
            n = 0
            while not stop.is_set():
                n += 1
                started = time.monotonic()
                response = http.post(
                    f"/v1/sessions/s{n % 5}/messages",
                    json={"messages": [{"role": "user", "content": "hi"}]},
                )
                outcomes.append(
                    (
                        time.monotonic() - started,
                        response.status_code,
                        response.headers.get("retry-after"),
                    )
                )

    workers = [threading.Thread(target=load) for _ in range(4)]
    try:
        for worker in workers:
            worker.start()
        time.sleep(0.5)
        redis_server.stop()  # mid-load
        outage_started = len(outcomes)
        time.sleep(1.5)
        during = outcomes[outage_started + 8 :]  # requests already in flight may finish
        redis_server = start_redis_server(tmp_path / "redis2", port=port)
        time.sleep(1.5)
        after = outcomes[-10:]
    finally:
        stop.set()
        for worker in workers:
            worker.join()
        server.stop()
        redis_server.stop()

    assert during, "no requests were made during the outage"
    assert all(status == 503 and retry for _, status, retry in during), during[:5]
    assert max(seconds for seconds, _, _ in during) < 2
    assert {status for _, status, _ in outcomes} <= {200, 503}  # never a 500
    assert all(status == 200 for _, status, _ in after), after


def test_dynamodb_throttling_is_retried_then_503(monkeypatch: pytest.MonkeyPatch) -> None:
    client = boto3.client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    store = DynamoDBSessionStore("sessions", Cipher([ENCRYPTION_KEY]), boto3_client=client)
    configure(monkeypatch, "memory://")
    get_settings.cache_clear()
    handler = Mangum(create_app({"get_session"}, store=store), lifespan="off")
    throttled = {
        "service_error_code": "ProvisionedThroughputExceededException",
        "service_message": "slow down",
        "http_status_code": 400,
    }

    with Stubber(client) as stub:
        for _ in range(6):  # more than the client's own retries
            stub.add_client_error("update_item", **throttled)
            stub.add_client_error("get_item", **throttled)
        event = api_event(
            "GET", "/v1/sessions/s1", headers={"authorization": AUTH["Authorization"]}
        )
        response = ApiResponse.of(handler(event, LambdaContext()))

    get_settings.cache_clear()
    assert response.status == 503
    assert response.body["error"]["code"] == "store_unavailable"
    assert int(response.headers["retry-after"]) >= 1


def test_undecryptable_item_fails_only_its_session(
    redis_store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, redis_store_url)
    get_settings.cache_clear()
    app = create_app({"get_history"})
    handler = Mangum(app, lifespan="off")
    store: RedisSessionStore = app.state.runtime.store
    store.append_messages("acme", "broken", [NewMessage("user", "will be damaged")])
    store.append_messages("acme", "healthy", [NewMessage("user", "fine")])
    key = "tw:{acme:broken}:m"
    element = bytearray(store.client.lindex(key, 0))
    element[-5] ^= 0xFF  # flip bits inside the ciphertext
    store.client.lset(key, 0, bytes(element))

    def history(session_id: str) -> ApiResponse:
        event = api_event(
            "GET",
            f"/v1/sessions/{session_id}/history",
            headers={"authorization": AUTH["Authorization"]},
        )
        return ApiResponse.of(handler(event, LambdaContext()))

    broken, healthy = history("broken"), history("healthy")
    get_settings.cache_clear()

    assert broken.status == 500 and broken.body["error"]["code"] == "undecryptable_data"
    assert "will be damaged" not in str(broken.body) and "Traceback" not in str(broken.body)
    assert healthy.status == 200 and healthy.body["messages"][0]["content"] == "fine"
