"""`turnwall serve` in a subprocess, driven over real HTTP with httpx."""

from __future__ import annotations

import re
import time

import httpx

from tests.e2e.conftest import SERVER_RATE_LIMIT, Server, start_server
from tests.functional.conftest import ADMIN_KEY, OTHER_TENANT_KEY


def test_session_lifecycle_over_http(client: httpx.Client) -> None:
    created = client.post("/v1/sessions", json={"session_id": "user:alice:plan", "ttl_secs": 600})
    appended = client.post(
        "/v1/sessions/user%3Aalice%3Aplan/messages",
        json={
            "messages": [
                {"role": "user", "content": "My name is Alice"},
                {"role": "assistant", "content": "Hi Alice"},
            ]
        },
    )
    history = client.get("/v1/sessions/user:alice:plan/history", params={"order": "desc"})
    listed = client.get("/v1/sessions", params={"prefix": "user:alice:"})
    patched = client.patch("/v1/sessions/user:alice:plan", json={"metadata": {"a": 1}})
    deleted = client.delete("/v1/sessions/user:alice:plan")
    gone = client.get("/v1/sessions/user:alice:plan")

    assert created.status_code == 201 and created.headers["x-request-id"]
    assert appended.json() == {
        "session_id": "user:alice:plan",
        "message_count": 2,
        "first_seq": 1,
        "last_seq": 2,
    }
    assert [m["content"] for m in history.json()["messages"]] == ["Hi Alice", "My name is Alice"]
    assert listed.json()["total"] == 1
    assert patched.json()["metadata"] == {"a": 1}
    assert deleted.json() == {"deleted": True, "session_id": "user:alice:plan"}
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "session_not_found"


def test_other_tenant_sees_nothing(client: httpx.Client, server: Server) -> None:
    client.post("/v1/sessions", json={"session_id": "chat-1"})

    foreign = httpx.get(
        f"{server.base_url}/v1/sessions/chat-1", headers={"X-Api-Key": OTHER_TENANT_KEY}
    )

    assert foreign.status_code == 404


def test_rate_limit_headers_are_sent(client: httpx.Client) -> None:
    response = client.get("/v1/sessions")

    assert int(response.headers["RateLimit-Limit"]) == SERVER_RATE_LIMIT
    assert 0 <= int(response.headers["RateLimit-Remaining"]) < SERVER_RATE_LIMIT
    assert 1 <= int(response.headers["RateLimit-Reset"]) <= 60


def test_openapi_document_is_served(server: Server) -> None:
    spec = httpx.get(f"{server.base_url}/openapi.json").json()

    assert "/v1/sessions/{session_id}/history" in spec["paths"]


def test_start_says_where_it_listens(server: Server) -> None:
    assert f"Turnwall listening on {server.base_url} (memory store;" in server.output.read_text()


def test_dev_key_is_printed_once_and_works() -> None:
    server = start_server({})
    try:
        banner = server.output.read_text()
        assert banner.count("iwk_admin_") == 1
        key = re.search(r"iwk_admin_[A-Za-z0-9]{40}", banner)
        assert key is not None, banner
        response = httpx.get(
            f"{server.base_url}/v1/sessions", headers={"Authorization": f"Bearer {key.group(0)}"}
        )
        assert response.status_code == 200
    finally:
        assert server.stop() == 0  # SIGTERM is a clean shutdown


def test_sigterm_stops_the_server_cleanly(server: Server) -> None:
    extra = start_server({"IW_API_KEYS": f"acme:admin:{ADMIN_KEY}"})
    started = time.monotonic()

    assert extra.stop() == 0
    assert time.monotonic() - started < 5
