"""Malformed requests get the right 4xx with the spec's error body, never a 5xx."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from mangum import Mangum

from tests.functional.conftest import ADMIN_KEY, SCAN_KEY, configure
from tests.support.events import ApiResponse, LambdaContext, api_event
from turnwall.http.app import create_app
from turnwall.models import NewMessage
from turnwall.settings import get_settings

if TYPE_CHECKING:
    from collections.abc import Iterator

AUTH = {"authorization": f"Bearer {ADMIN_KEY}"}
LIVE = "live-session"
S = "/v1/sessions"
M = f"/v1/sessions/{LIVE}/messages"
H = f"/v1/sessions/{LIVE}/history"
F = f"/v1/sessions/{LIVE}/fork"
msg = {"role": "user", "content": "x"}

# (case id, method, path, kwargs for api_event, status, error code). "headers" replaces
# the valid admin key; "extra_headers" is sent beside it.
CASES: list[tuple[str, str, str, dict[str, Any], int, str]] = [
    # authentication
    ("no key", "GET", S, {"headers": {}}, 401, "unauthorized"),
    ("empty bearer", "GET", S, {"headers": {"authorization": "Bearer "}}, 401, "unauthorized"),
    ("basic auth", "GET", S, {"headers": {"authorization": "Basic dTpw"}}, 401, "unauthorized"),
    (
        "unknown key",
        "GET",
        S,
        {"headers": {"authorization": "Bearer iwk_admin_" + "x" * 40}},
        401,
        "invalid_api_key",
    ),
    ("malformed key", "GET", S, {"headers": {"x-api-key": "not-a-key"}}, 401, "invalid_api_key"),
    (
        "role mismatch key",
        "GET",
        S,
        {"headers": {"x-api-key": "iwk_scan_" + ADMIN_KEY[10:]}},
        401,
        "invalid_api_key",
    ),
    # session ids
    ("id with space", "POST", S, {"body": {"session_id": "has space"}}, 422, "invalid_session_id"),
    ("id too long", "POST", S, {"body": {"session_id": "a" * 129}}, 422, "invalid_session_id"),
    ("empty id", "POST", S, {"body": {"session_id": ""}}, 422, "invalid_session_id"),
    ("non-ascii id", "POST", S, {"body": {"session_id": "sessión"}}, 422, "invalid_session_id"),
    ("numeric id", "POST", S, {"body": {"session_id": 42}}, 422, "validation_error"),
    ("bad id in path", "GET", f"{S}/bad%20id", {}, 422, "invalid_session_id"),
    ("long id in path", "GET", f"{S}/{'a' * 200}", {}, 422, "invalid_session_id"),
    (
        "bad id on append",
        "POST",
        f"{S}/bad!id/messages",
        {"body": {"messages": [msg]}},
        422,
        "invalid_session_id",
    ),
    # ttl
    ("ttl too small", "POST", S, {"body": {"ttl_secs": 59}}, 422, "validation_error"),
    ("ttl too large", "POST", S, {"body": {"ttl_secs": 604801}}, 422, "validation_error"),
    ("ttl string", "POST", S, {"body": {"ttl_secs": "600"}}, 422, "validation_error"),
    ("ttl float", "POST", S, {"body": {"ttl_secs": 60.5}}, 422, "validation_error"),
    ("ttl bool", "POST", S, {"body": {"ttl_secs": True}}, 422, "validation_error"),
    (
        "patch ttl negative",
        "PATCH",
        f"{S}/{LIVE}",
        {"body": {"ttl_secs": -1}},
        422,
        "validation_error",
    ),
    # bodies and types
    ("invalid json", "POST", S, {"raw_body": "{not json"}, 400, "invalid_json"),
    ("truncated json", "POST", M, {"raw_body": '{"messages": ['}, 400, "invalid_json"),
    ("json array body", "POST", S, {"body": [1, 2]}, 422, "validation_error"),
    ("json string body", "POST", S, {"body": "hello"}, 422, "validation_error"),
    ("metadata not object", "POST", S, {"body": {"metadata": [1]}}, 422, "validation_error"),
    (
        "metadata too big",
        "POST",
        S,
        {"body": {"metadata": {"x": "y" * 5000}}},
        422,
        "validation_error",
    ),
    ("model not string", "POST", S, {"body": {"model": 5}}, 422, "validation_error"),
    ("no messages field", "POST", M, {"body": {}}, 422, "validation_error"),
    ("messages not list", "POST", M, {"body": {"messages": "hi"}}, 422, "validation_error"),
    ("empty messages", "POST", M, {"body": {"messages": []}}, 422, "validation_error"),
    ("101 messages", "POST", M, {"body": {"messages": [msg] * 101}}, 422, "validation_error"),
    (
        "bad role",
        "POST",
        M,
        {"body": {"messages": [{"role": "root", "content": "x"}]}},
        422,
        "validation_error",
    ),
    (
        "content missing",
        "POST",
        M,
        {"body": {"messages": [{"role": "user"}]}},
        422,
        "validation_error",
    ),
    (
        "content not string",
        "POST",
        M,
        {"body": {"messages": [{"role": "user", "content": 1}]}},
        422,
        "validation_error",
    ),
    (
        "content too big",
        "POST",
        M,
        {"body": {"messages": [{"role": "user", "content": "x" * 131073}]}},
        422,
        "validation_error",
    ),
    (
        "message metadata list",
        "POST",
        M,
        {"body": {"messages": [{**msg, "metadata": ["a"]}]}},
        422,
        "validation_error",
    ),
    ("patch without body", "PATCH", f"{S}/{LIVE}", {}, 422, "validation_error"),
    # query strings
    ("limit zero", "GET", S, {"query": {"limit": "0"}}, 422, "validation_error"),
    ("limit too big", "GET", S, {"query": {"limit": "1001"}}, 422, "validation_error"),
    ("limit not number", "GET", H, {"query": {"limit": "ten"}}, 422, "validation_error"),
    ("bad order", "GET", H, {"query": {"order": "sideways"}}, 422, "validation_error"),
    ("garbage cursor", "GET", H, {"query": {"cursor": "!!!"}}, 422, "invalid_cursor"),
    ("list cursor on history", "GET", H, {"query": {"cursor": "bDp4"}}, 422, "invalid_cursor"),
    ("bad prefix", "GET", S, {"query": {"prefix": "a b"}}, 422, "validation_error"),
    # sizes, media types, methods, routes
    ("body over limit", "POST", M, {"raw_body": "x" * 200001}, 413, "payload_too_large"),
    (
        "form body",
        "POST",
        S,
        {"raw_body": "a=b", "extra_headers": {"content-type": "application/x-www-form-urlencoded"}},
        415,
        "unsupported_media_type",
    ),
    (
        "text body",
        "POST",
        M,
        {"raw_body": "hi", "extra_headers": {"content-type": "text/plain"}},
        415,
        "unsupported_media_type",
    ),
    ("put on sessions", "PUT", S, {"body": {}}, 405, "method_not_allowed"),
    ("delete collection without prefix", "DELETE", S, {}, 422, "validation_error"),
    ("post on history", "POST", H, {"body": {}}, 405, "method_not_allowed"),
    ("unknown route", "GET", "/v1/nothing-here", {}, 404, "not_found"),
    ("unversioned route", "GET", "/sessions", {}, 404, "not_found"),
    ("missing session", "GET", f"{S}/never-made", {}, 404, "session_not_found"),
    ("append after delete", "DELETE", f"{S}/never-made", {}, 404, "session_not_found"),
    ("existing id", "POST", S, {"body": {"session_id": LIVE}}, 409, "session_exists"),
    # what an outside review sent (issue 13)
    (
        "lone surrogate model",
        "POST",
        S,
        {"raw_body": '{"model":"\\udfff"}'},
        422,
        "validation_error",
    ),
    (
        "lone surrogate name",
        "POST",
        M,
        {"raw_body": '{"messages":[{"role":"user","content":"x","name":"\\ud800"}]}'},
        422,
        "validation_error",
    ),
    (
        "lone surrogate scanned in a session",
        "POST",
        "/v1/scan/input",
        {"raw_body": f'{{"text":"\\ud800","session_id":"{LIVE}"}}'},
        422,
        "validation_error",
    ),
    ("invalid utf-8", "POST", S, {"raw_body": b'{"model":"\xff"}'}, 400, "invalid_json"),
    (
        "deep nesting",
        "POST",
        S,
        {"raw_body": '{"metadata":{"a":' + "[" * 50_000 + "]" * 50_000 + "}}"},
        400,
        "invalid_json",
    ),
    ("model too long", "POST", S, {"body": {"model": "m" * 257}}, 422, "validation_error"),
    (
        "name too long",
        "POST",
        M,
        {"body": {"messages": [{**msg, "name": "n" * 65}]}},
        422,
        "validation_error",
    ),
    ("encoded slash in id", "GET", f"{S}/{LIVE}%2Fhistory", {}, 422, "invalid_session_id"),
    ("trailing slash", "GET", f"{S}/", {}, 404, "not_found"),
    # end, fork, delete by prefix, If-Match, Idempotency-Key (issue 16)
    ("end a missing session", "POST", f"{S}/never-made/end", {}, 404, "session_not_found"),
    ("fork a missing session", "POST", f"{S}/never-made/fork", {}, 404, "session_not_found"),
    ("fork up_to_seq string", "POST", F, {"body": {"up_to_seq": "1"}}, 422, "validation_error"),
    ("fork past the end", "POST", F, {"body": {"up_to_seq": 2}}, 422, "validation_error"),
    ("fork negative", "POST", F, {"body": {"up_to_seq": -1}}, 422, "validation_error"),
    (
        "fork to a bad id",
        "POST",
        F,
        {"body": {"new_session_id": "a b"}},
        422,
        "invalid_session_id",
    ),
    ("fork onto a live id", "POST", F, {"body": {"new_session_id": LIVE}}, 409, "session_exists"),
    ("prefix with space", "DELETE", S, {"query": {"prefix": "a b"}}, 422, "validation_error"),
    (
        "prefix limit zero",
        "DELETE",
        S,
        {"query": {"prefix": "user:", "limit": "0"}},
        422,
        "validation_error",
    ),
    (
        "prefix with a scan key",
        "DELETE",
        S,
        {"query": {"prefix": "user:"}, "headers": {"authorization": f"Bearer {SCAN_KEY}"}},
        403,
        "forbidden",
    ),
    (
        "stale if-match on patch",
        "PATCH",
        f"{S}/{LIVE}",
        {"body": {"ttl_secs": 600}, "extra_headers": {"if-match": '"0"'}},
        412,
        "precondition_failed",
    ),
    (
        "stale if-match on delete",
        "DELETE",
        f"{S}/{LIVE}",
        {"extra_headers": {"if-match": '"0"'}},
        412,
        "precondition_failed",
    ),
    (
        "idempotency key too long",
        "POST",
        M,
        {"body": {"messages": [msg]}, "extra_headers": {"idempotency-key": "k" * 256}},
        422,
        "validation_error",
    ),
    (
        "idempotency key on a stream",
        "POST",
        "/v1/chat/completions",
        {
            "body": {"stream": True, "messages": [msg]},
            "extra_headers": {"idempotency-key": "k1"},
        },
        422,
        "validation_error",
    ),
]


@pytest.fixture(scope="module")
def handler() -> Iterator[Mangum]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        configure(monkeypatch, "memory://", IW_MAX_BODY_BYTES="200000")
        get_settings.cache_clear()
        app = create_app()
        app.state.runtime.store.append_messages("acme", LIVE, [NewMessage("user", "hi")])
        yield Mangum(app, lifespan="off")
    get_settings.cache_clear()


def test_the_table_is_broad() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_bad_request_gets_its_error(
    handler: Mangum, method: str, path: str, kwargs: dict[str, Any], status: int, code: str
) -> None:
    kwargs = dict(kwargs)
    headers = kwargs.pop("headers", AUTH) | kwargs.pop("extra_headers", {})
    response = ApiResponse.of(
        handler(api_event(method, path, headers=headers, **kwargs), LambdaContext())
    )

    assert response.status == status, response.body
    assert response.body["error"]["code"] == code
    assert isinstance(response.body["error"]["message"], str) and response.body["error"]["message"]
    assert "Traceback" not in str(response.body)
    assert response.headers["x-request-id"]
