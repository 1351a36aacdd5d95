"""What an outside review broke in `turnwall serve`, one test per class of fault.

The review ran the local server on Redis with two tenants and attacked it as an
outsider would: malformed Unicode, URL tricks, forwarded headers, bad keys, slow
clients, a crowd of scans on one session. Each test here failed before the fix.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.e2e.conftest import start_server
from tests.functional.conftest import ADMIN_KEY, ENCRYPTION_KEY, OTHER_TENANT_KEY

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.e2e.conftest import Server
    from tests.support.redis_servers import RedisServer

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}", "content-type": "application/json"}


@pytest.fixture(scope="module")
def redis_serve(redis_server: RedisServer) -> Iterator[Server]:
    running = start_server(
        {
            "IW_STORE_URL": redis_server.url,
            "IW_API_KEYS": f"acme:admin:{ADMIN_KEY},globex:scan:{OTHER_TENANT_KEY}",
            "IW_ENCRYPTION_KEYS": ENCRYPTION_KEY,
            "IW_RATE_LIMIT_PER_MIN": "100000",
            "IW_HEADER_TIMEOUT_SECS": "1",
            "IW_BODY_TIMEOUT_SECS": "1",
        }
    )
    yield running
    running.stop()


@pytest.fixture
def http(redis_serve: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=redis_serve.base_url, headers=AUTH, timeout=10) as client:
        yield client


def new_id() -> str:
    return f"review-{uuid.uuid4().hex[:10]}"


# ------------------------------------------------------------ 1. lone surrogates

SURROGATE = "\\ud800"  # as the JSON escape a client sends: a lone UTF-16 surrogate


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/sessions", f'{{"model":"{SURROGATE}"}}', "model"),
        ("/v1/sessions", f'{{"metadata":{{"k{SURROGATE}":1}}}}', "metadata"),
        (
            "/v1/sessions/{id}/messages",
            f'{{"messages":[{{"role":"user","content":"hi","name":"{SURROGATE}"}}]}}',
            "messages.0.name",
        ),
        (
            "/v1/sessions/{id}/messages",
            f'{{"messages":[{{"role":"user","content":"a{SURROGATE}b"}}]}}',
            "messages.0.content",
        ),
        ("/v1/scan/input", f'{{"text":"x{SURROGATE}","session_id":"{{id}}"}}', "text"),
        (
            "/v1/scan/output",
            f'{{"text":"ok","prompt":"{SURROGATE}","session_id":"{{id}}"}}',
            "prompt",
        ),
        ("/v1/analyze", f'{{"input":"{SURROGATE}","session_id":"{{id}}"}}', "input"),
        (
            "/v1/chat/completions",
            f'{{"model":"{SURROGATE}","messages":[{{"role":"user","content":"hi"}}]}}',
            "model",
        ),
        (
            "/v1/chat/completions",
            f'{{"messages":[{{"role":"user","content":"{SURROGATE}"}}]}}',
            "messages.0.content",
        ),
    ],
)
def test_lone_surrogates_are_refused_with_422(
    http: httpx.Client, path: str, body: str, field: str
) -> None:
    session_id = new_id()
    response = http.post(path.replace("{id}", session_id), content=body.replace("{id}", session_id))

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"][0]["field"] == field
    # nothing was stored under the id
    assert http.get(f"/v1/sessions/{session_id}").status_code == 404


def test_a_valid_surrogate_pair_is_text_like_any_other(http: httpx.Client) -> None:
    session_id = new_id()
    response = http.post(
        f"/v1/sessions/{session_id}/messages",
        content='{"messages":[{"role":"user","content":"smile \\ud83d\\ude00"}]}',
    )

    assert response.status_code == 200
    stored = http.get(f"/v1/sessions/{session_id}/history").json()["messages"][0]
    assert stored["content"] == "smile \N{GRINNING FACE}"


# ------------------------------------------------------------ 5. HTTP edges


def test_a_trailing_slash_is_not_redirected_anywhere(http: httpx.Client) -> None:
    response = http.get("/v1/sessions/", headers={"Host": "evil.example"})

    assert response.status_code == 404
    assert "location" not in response.headers
    assert response.json()["error"]["code"] == "not_found"


def test_an_encoded_slash_in_an_id_does_not_reach_another_route(http: httpx.Client) -> None:
    victim = new_id()
    http.post(
        f"/v1/sessions/{victim}/messages",
        json={"messages": [{"role": "user", "content": "private words"}]},
    )

    for path in (f"/v1/sessions/{victim}%2Fhistory", f"/v1/sessions/{victim}%2fhistory"):
        response = http.get(path)
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "invalid_session_id"
        assert "private words" not in response.text


@pytest.mark.parametrize(
    "body",
    [
        b'{"model":"\xff\xfe"}',  # not UTF-8
        b'{"model":"\xed\xa0\x80"}',  # a surrogate encoded as UTF-8 bytes
        b'{"metadata":{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}}",  # nesting
    ],
    ids=["invalid-utf8", "utf8-encoded-surrogate", "deep-nesting"],
)
def test_bodies_that_do_not_parse_answer_invalid_json(http: httpx.Client, body: bytes) -> None:
    response = http.post("/v1/sessions", content=body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


# ------------------------------------------------------------ 6. bounded, sealed fields


def test_model_and_name_are_bounded(http: httpx.Client) -> None:
    huge_model = http.post("/v1/sessions", json={"model": "m" * 1_000_000})
    long_name = http.post(
        f"/v1/sessions/{new_id()}/messages",
        json={"messages": [{"role": "user", "content": "hi", "name": "n" * 65}]},
    )

    assert huge_model.status_code == 422
    assert huge_model.json()["error"]["details"]["field"] == "model"
    assert long_name.status_code == 422
    assert long_name.json()["error"]["details"]["field"] == "messages[0].name"


def test_the_model_name_is_not_stored_in_plaintext(
    http: httpx.Client, redis_server: RedisServer
) -> None:
    marker = f"model-{uuid.uuid4().hex}"
    session_id = new_id()
    http.post("/v1/sessions", json={"session_id": session_id, "model": marker})

    assert http.get(f"/v1/sessions/{session_id}").json()["model"] == marker
    raw = redis_server.client()
    try:
        stored = [
            value
            for key in raw.scan_iter(match=f"*{session_id}*")
            if raw.type(key) == b"hash"
            for value in raw.hgetall(key).values()
        ]
    finally:
        raw.close()
    assert stored, "the session's hash was not found"
    assert not any(marker.encode() in value for value in stored)


# ------------------------------------------------------------ 3. concurrent scans


def test_eighty_concurrent_scans_of_one_session_all_count(http: httpx.Client) -> None:
    session_id = new_id()

    def scan(number: int) -> int:
        return http.post(
            "/v1/scan/input", json={"text": f"question {number}", "session_id": session_id}
        ).status_code

    with ThreadPoolExecutor(max_workers=80) as pool:
        statuses = list(pool.map(scan, range(80)))

    assert statuses == [200] * 80
    risk = http.get(f"/v1/sessions/{session_id}").json()["risk"]
    assert risk["turns_scanned"] == 80


# ------------------------------------------------------------ 7. slow clients


def _connect(server: Server) -> socket.socket:
    host, port = server.base_url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _closed_within(sock: socket.socket, seconds: float, trickle: bytes) -> float | None:
    """Send `trickle` a byte at a time until the server closes; how long that took."""
    started = time.monotonic()
    for byte in trickle:
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            return time.monotonic() - started
        sock.settimeout(0.25)
        try:
            if sock.recv(4096) == b"":
                return time.monotonic() - started
        except TimeoutError:
            pass
        except OSError:
            return time.monotonic() - started
        if time.monotonic() - started > seconds:
            return None
    return None


def test_a_client_trickling_its_headers_is_disconnected(redis_serve: Server) -> None:
    headers = b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 200

    with _connect(redis_serve) as sock:
        closed_after = _closed_within(sock, 8, headers)

    assert closed_after is not None, "the server still waits for headers after 8 s"


def test_a_client_trickling_its_body_gets_408(redis_serve: Server) -> None:
    head = (
        "POST /v1/scan/input HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {ADMIN_KEY}\r\ncontent-type: application/json\r\n"
        "Content-Length: 11\r\n\r\n"
    ).encode()
    with _connect(redis_serve) as sock:
        sock.sendall(head)
        answer = b""
        started = time.monotonic()
        for byte in b'{"text":"x"':  # 11 bytes, one every 0.5 s
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            sock.settimeout(0.5)
            try:
                answer += sock.recv(4096)
            except TimeoutError:
                continue
            if answer:
                break
        waited = time.monotonic() - started
        sock.settimeout(5)
        while answer and b"request_timeout" not in answer:  # the body may come apart
            more = sock.recv(4096)
            if not more:
                break
            answer += more

    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b'"request_timeout"' in answer
    assert waited < 5.5  # the 11 bytes would have taken 5.5 s


def test_healthy_after_the_review(http: httpx.Client) -> None:
    assert http.get("/v1/health").status_code == 200


# ------------------------------------------------------------ 4. rate limits

KEYS = [f"iwk_scan_{n}" + "K" * 40 for n in range(6)]


def small_limit_server(**extra: str) -> Server:
    return start_server(
        {
            "IW_API_KEYS": ",".join(f"acme:scan:{key}" for key in KEYS),
            "IW_RATE_LIMIT_PER_MIN": "5",
            **extra,
        }
    )


def test_bad_keys_do_not_lock_out_valid_keys_from_the_same_address() -> None:
    server = small_limit_server()
    try:
        bad = [
            httpx.get(
                f"{server.base_url}/v1/sessions", headers={"X-Api-Key": "iwk_scan_" + "x" * 40}
            ).status_code
            for _ in range(6)
        ]
        valid = httpx.get(f"{server.base_url}/v1/sessions", headers={"X-Api-Key": KEYS[0]})
    finally:
        server.stop()

    assert bad == [401] * 5 + [429]
    assert valid.status_code == 200


def _statuses_with_rotating_forwarded_for(server: Server) -> list[int]:
    return [
        httpx.get(
            f"{server.base_url}/v1/sessions",
            headers={"X-Api-Key": key, "X-Forwarded-For": f"198.51.100.{n}"},
        ).status_code
        for n, key in enumerate(KEYS)
    ]


def test_forwarded_for_is_ignored_unless_its_proxy_is_configured() -> None:
    untrusting = small_limit_server()
    trusting = small_limit_server(IW_FORWARDED_ALLOW_IPS="127.0.0.1")
    try:
        # six keys, one request each, from one real address that claims six
        ignored = _statuses_with_rotating_forwarded_for(untrusting)
        honoured = _statuses_with_rotating_forwarded_for(trusting)
    finally:
        untrusting.stop()
        trusting.stop()

    assert ignored == [200] * 5 + [429]
    assert honoured == [200] * 6


# ------------------------------------------------------------ 8. logs


def test_expected_errors_log_one_warning_line_without_a_traceback() -> None:
    server = start_server({"IW_API_KEYS": f"acme:admin:{ADMIN_KEY}"})
    try:
        chat = httpx.post(
            f"{server.base_url}/v1/chat/completions",
            headers=AUTH,
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
        )
        missing = httpx.get(f"{server.base_url}/v1/sessions/nobody", headers=AUTH)
    finally:
        server.stop()
    lines = [json.loads(line) for line in server.output.read_text().splitlines() if "{" in line]

    assert chat.status_code == 503 and missing.status_code == 404
    about = {
        code: [line for line in lines if code in line["message"]]
        for code in ("no_upstream", "session_not_found")
    }
    for code, logged in about.items():
        assert len(logged) == 1, (code, lines)
        assert logged[0]["level"] == "WARNING"
        assert "exception" not in logged[0] and "Traceback" not in json.dumps(logged[0])
