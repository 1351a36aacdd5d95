"""Faults: a Redis that stops mid-load, a throttling DynamoDB, an undecryptable item."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

import httpx
import pytest
from mangum import Mangum

from tests.e2e.conftest import start_server
from tests.functional.conftest import ADMIN_KEY, ENCRYPTION_KEY, configure
from tests.support.events import ApiResponse, LambdaContext, api_event
from tests.support.redis_servers import start_redis_server
from turnwall.http.app import create_app
from turnwall.models import NewMessage
from turnwall.settings import get_settings

if TYPE_CHECKING:
    from pathlib import Path

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


@pytest.mark.parametrize(
    ("error_type", "http_status"),
    [
        ("ProvisionedThroughputExceededException", 400),
        ("ThrottlingException", 400),
        ("InternalServerError", 500),
    ],
)
def test_dynamodb_throttling_and_5xx_are_retried_then_503(
    error_type: str, http_status: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A local endpoint that always answers like a throttling or failing DynamoDB; the
    store's real client must retry (with backoff) and the API then answer 503."""
    requests: list[str] = []

    class Failing(BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:
            return

        def do_POST(self) -> None:  # http.server's naming
            self.rfile.read(int(self.headers.get("content-length", "0")))
            requests.append(self.headers.get("x-amz-target", ""))
            body = json.dumps(
                {
                    "__type": f"com.amazonaws.dynamodb.v20120810#{error_type}",
                    "message": "try again later",
                }
            ).encode()
            self.send_response(http_status)
            self.send_header("content-type", "application/x-amz-json-1.0")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    endpoint = ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    threading.Thread(target=endpoint.serve_forever, daemon=True).start()
    host, port = endpoint.server_address[:2]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    configure(
        monkeypatch, f"dynamodb://sessions?region=us-east-1&endpoint_url=http://{host!s}:{port}"
    )
    get_settings.cache_clear()
    try:
        handler = Mangum(create_app({"get_session"}), lifespan="off")
        event = api_event(
            "GET", "/v1/sessions/s1", headers={"authorization": AUTH["Authorization"]}
        )
        cold = ApiResponse.of(handler(event, LambdaContext()))
        first_attempts = len(requests)
        # The warm invocation times the retries alone: the cold one also builds the client
        # (boto3's service model load), whose cost is the machine's, not the backoff's.
        started = time.monotonic()
        response = ApiResponse.of(handler(event, LambdaContext()))
        elapsed = time.monotonic() - started
    finally:
        endpoint.shutdown()
        endpoint.server_close()
        get_settings.cache_clear()

    assert first_attempts >= 2 and len(requests) - first_attempts >= 2  # retried, both times
    assert set(requests) == {"DynamoDB_20120810.UpdateItem"}
    for answer in (cold, response):
        assert answer.status == 503
        assert answer.body["error"]["code"] == "store_unavailable"
        assert int(answer.headers["retry-after"]) >= 1
    assert elapsed < 5  # botocore standard mode: full-jitter backoff, at most ~3 s here


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
