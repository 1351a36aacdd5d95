"""Every Lambda function invoked through its real handler with API Gateway v2 events,
several warm invocations in a row on one handler instance, on each backend."""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING

import pytest

from tests.functional.conftest import OTHER_TENANT_KEY, SCAN_KEY, configure, load_function
from tests.support.events import LambdaContext, api_event
from turnwall.models import NewMessage

if TYPE_CHECKING:
    from tests.functional.conftest import FunctionLoader

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def new_id(label: str = "s") -> str:
    return f"{label}:{uuid.uuid4().hex[:10]}"


def test_create_function(functions: FunctionLoader) -> None:
    create = functions("create")
    ids = [new_id("user:alice") for _ in range(3)]

    for session_id in ids:  # warm invocations on one handler
        response = create.invoke(
            "POST",
            "/v1/sessions",
            body={
                "session_id": session_id,
                "ttl_secs": 120,
                "metadata": {"app": "demo"},
                "model": "gpt-4o",
            },
        )
        assert response.status == 201
        assert response.body["session_id"] == session_id
        assert response.body["ttl_secs"] == 120 and response.body["metadata"] == {"app": "demo"}
        assert ISO.fullmatch(response.body["expires_at"])
        assert response.body["risk"] == {
            "turns_scanned": 0,
            "flagged_turns": 0,
            "session_score": 0.0,
            "decision": "allow",
        }
    generated = create.invoke("POST", "/v1/sessions")
    duplicate = create.invoke("POST", "/v1/sessions", body={"session_id": ids[0]})

    assert generated.status == 201 and re.fullmatch(
        r"api:[0-9a-f]{12}", generated.body["session_id"]
    )
    assert duplicate.status == 409 and duplicate.body["error"]["code"] == "session_exists"


def test_fork_through_the_create_function(functions: FunctionLoader) -> None:
    create = functions("create")
    trunk = new_id()
    create.store.append_messages("acme", trunk, [NewMessage("user", f"m{n}") for n in range(4)])

    branches = [  # warm invocations on one handler
        create.invoke("POST", f"/v1/sessions/{trunk}/fork", body={"up_to_seq": n}) for n in (2, 4)
    ]
    named = create.invoke(
        "POST", f"/v1/sessions/{trunk}/fork", body={"new_session_id": f"{trunk}-b"}
    )
    again = create.invoke(
        "POST", f"/v1/sessions/{trunk}/fork", body={"new_session_id": f"{trunk}-b"}
    )
    missing = create.invoke("POST", f"/v1/sessions/{new_id()}/fork")
    too_far = create.invoke("POST", f"/v1/sessions/{trunk}/fork", body={"up_to_seq": 5})

    assert [b.status for b in branches] == [201, 201]
    assert [b.body["message_count"] for b in branches] == [2, 4]
    assert named.status == 201 and named.body["session_id"] == f"{trunk}-b"
    assert again.status == 409 and again.body["error"]["code"] == "session_exists"
    assert missing.status == 404 and too_far.status == 422
    history = create.store.get_history("acme", branches[0].body["session_id"]).messages
    assert [m.content for m in history] == ["m0", "m1"]


def test_get_function(functions: FunctionLoader) -> None:
    get = functions("get")
    session_id = new_id()
    get.store.create_session("acme", session_id, metadata={"k": 1})

    first = get.invoke("GET", f"/v1/sessions/{session_id}")
    second = get.invoke("GET", f"/v1/sessions/{session_id}")
    missing = get.invoke("GET", f"/v1/sessions/{new_id()}")
    foreign = get.invoke("GET", f"/v1/sessions/{session_id}", key=OTHER_TENANT_KEY)

    assert first.status == second.status == 200
    assert second.body["metadata"] == {"k": 1}
    assert second.body["expires_at"] >= first.body["expires_at"]
    assert missing.status == 404 and missing.body["error"]["code"] == "session_not_found"
    assert foreign.status == 404 and foreign.body == missing.body | {
        "error": {**missing.body["error"], "message": foreign.body["error"]["message"]}
    }


def test_list_function(functions: FunctionLoader) -> None:
    listing = functions("list")
    prefix = new_id("team") + ":"
    for n in range(5):
        listing.store.create_session("acme", f"{prefix}{n}")

    first = listing.invoke("GET", "/v1/sessions", query={"prefix": prefix, "limit": "2"})
    second = listing.invoke(
        "GET",
        "/v1/sessions",
        query={"prefix": prefix, "limit": "2", "cursor": first.body["next_cursor"]},
    )
    foreign = listing.invoke("GET", "/v1/sessions", query={"prefix": prefix}, key=SCAN_KEY)
    other_tenant = listing.invoke(
        "GET", "/v1/sessions", query={"prefix": prefix}, key=OTHER_TENANT_KEY
    )

    assert first.status == 200 and first.body["total"] == 5
    assert [s["session_id"] for s in first.body["sessions"]] == [f"{prefix}0", f"{prefix}1"]
    assert [s["session_id"] for s in second.body["sessions"]] == [f"{prefix}2", f"{prefix}3"]
    assert foreign.body["total"] == 5  # same tenant, scan role
    assert other_tenant.body == {"sessions": [], "total": 0, "next_cursor": None}


def test_update_function(functions: FunctionLoader) -> None:
    update = functions("update")
    session_id = new_id()
    update.store.create_session("acme", session_id)

    ttl = update.invoke("PATCH", f"/v1/sessions/{session_id}", body={"ttl_secs": 900})
    metadata = update.invoke(
        "PATCH", f"/v1/sessions/{session_id}", body={"metadata": {"topic": "billing"}}
    )
    bad = update.invoke("PATCH", f"/v1/sessions/{session_id}", body={"ttl_secs": 10})

    assert ttl.status == 200 and ttl.body["ttl_secs"] == 900
    assert metadata.status == 200 and metadata.body["metadata"] == {"topic": "billing"}
    assert metadata.body["ttl_secs"] == 900
    assert bad.status == 422 and bad.body["error"]["code"] == "validation_error"


@pytest.mark.parametrize("backend", ["redis", "dynamodb"])  # shared by two functions
def test_end_through_the_update_function(
    backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, request.getfixturevalue(f"{backend}_store_url"))
    update, append = load_function("update"), load_function("append")
    session_id = new_id()
    append.store.append_messages("acme", session_id, [NewMessage("user", "hello")])

    ended = [update.invoke("POST", f"/v1/sessions/{session_id}/end") for _ in range(2)]
    refused_append = append.invoke(
        "POST",
        f"/v1/sessions/{session_id}/messages",
        body={"messages": [{"role": "user", "content": "more"}]},
    )
    refused_patch = update.invoke(
        "PATCH", f"/v1/sessions/{session_id}", body={"metadata": {"a": 1}}
    )
    missing = update.invoke("POST", f"/v1/sessions/{new_id()}/end")

    assert [e.status for e in ended] == [200, 200]
    assert ended[0].body["status"] == ended[1].body["status"] == "ended"
    assert ended[0].body["message_count"] == 1
    assert refused_append.status == 409
    assert refused_append.body["error"]["code"] == "session_ended"
    assert refused_patch.status == 409 and refused_patch.body["error"]["code"] == "session_ended"
    assert missing.status == 404
    assert load_function("get").invoke("GET", f"/v1/sessions/{session_id}").body["status"] == (
        "ended"
    )


def test_etag_and_if_match_through_the_update_function(functions: FunctionLoader) -> None:
    update = functions("update")
    session_id = new_id()
    update.store.create_session("acme", session_id)
    path = f"/v1/sessions/{session_id}"
    etag = update.invoke("PATCH", path, body={"ttl_secs": 600}).headers["etag"]

    first = update.invoke("PATCH", path, body={"ttl_secs": 700}, headers={"if-match": etag})
    stale = update.invoke("PATCH", path, body={"ttl_secs": 800}, headers={"if-match": etag})
    anything = update.invoke("PATCH", path, body={"ttl_secs": 900}, headers={"if-match": "*"})

    assert first.status == 200 and first.headers["etag"] != etag
    assert stale.status == 412 and stale.body["error"]["code"] == "precondition_failed"
    assert anything.status == 200 and anything.body["ttl_secs"] == 900


def test_delete_function(functions: FunctionLoader) -> None:
    delete = functions("delete")
    session_id = new_id()
    delete.store.append_messages("acme", session_id, [NewMessage("user", "bye")])

    first = delete.invoke("DELETE", f"/v1/sessions/{session_id}")
    second = delete.invoke("DELETE", f"/v1/sessions/{session_id}")

    assert first.status == 200 and first.body == {"deleted": True, "session_id": session_id}
    assert second.status == 404


def test_delete_with_a_stale_etag_is_refused(functions: FunctionLoader) -> None:
    delete = functions("delete")
    session_id = new_id()
    delete.store.create_session("acme", session_id)
    stale = '"0000000000000000"'

    refused = delete.invoke("DELETE", f"/v1/sessions/{session_id}", headers={"if-match": stale})
    current = delete.store.get_session("acme", session_id).etag
    deleted = delete.invoke("DELETE", f"/v1/sessions/{session_id}", headers={"if-match": current})

    assert refused.status == 412 and refused.body["error"]["code"] == "precondition_failed"
    assert deleted.status == 200


def test_history_function(functions: FunctionLoader) -> None:
    history = functions("history")
    session_id = new_id()
    history.store.append_messages(
        "acme",
        session_id,
        [
            NewMessage("user", f"q{i}") if i % 2 else NewMessage("assistant", f"a{i}", name="bot")
            for i in range(1, 6)
        ],
    )

    asc = history.invoke("GET", f"/v1/sessions/{session_id}/history", query={"limit": "2"})
    nxt = history.invoke(
        "GET",
        f"/v1/sessions/{session_id}/history",
        query={"limit": "2", "cursor": asc.body["next_cursor"]},
    )
    desc = history.invoke("GET", f"/v1/sessions/{session_id}/history", query={"order": "desc"})

    assert asc.status == 200
    assert [m["content"] for m in asc.body["messages"]] == ["q1", "a2"]
    assert asc.body["messages"][0] == {
        "seq": 1,
        "role": "user",
        "content": "q1",
        "created_at": asc.body["messages"][0]["created_at"],
    }
    assert asc.body["messages"][1]["name"] == "bot"
    assert [m["seq"] for m in nxt.body["messages"]] == [3, 4]
    assert [m["seq"] for m in desc.body["messages"]] == [5, 4, 3, 2, 1]
    assert desc.body["next_cursor"] is None and desc.body["session_id"] == session_id


def test_append_function(functions: FunctionLoader) -> None:
    append = functions("append")
    session_id = new_id()
    path = f"/v1/sessions/{session_id}/messages"

    first = append.invoke("POST", path, body={"messages": [{"role": "user", "content": "hi"}]})
    second = append.invoke(
        "POST",
        path,
        body={
            "messages": [
                {"role": "assistant", "content": "hello", "metadata": {"latency_ms": 12}},
                {"role": "tool", "content": "{}", "name": "lookup"},
            ]
        },
    )
    bad = append.invoke("POST", path, body={"messages": []})

    assert first.status == 200 and first.body == {
        "session_id": session_id,
        "message_count": 1,
        "first_seq": 1,
        "last_seq": 1,
    }
    assert second.body == {
        "session_id": session_id,
        "message_count": 3,
        "first_seq": 2,
        "last_seq": 3,
    }
    assert bad.status == 422
    assert append.store.get_session("acme", session_id).message_count == 3


def test_a_retried_append_with_its_idempotency_key_is_stored_once(
    functions: FunctionLoader,
) -> None:
    append = functions("append")
    session_id = new_id()
    path = f"/v1/sessions/{session_id}/messages"
    key = {"idempotency-key": f"retry-{uuid.uuid4().hex}"}
    body = {"messages": [{"role": "user", "content": "once"}]}

    first = append.invoke("POST", path, body=body, headers=key)
    retries = [append.invoke("POST", path, body=body, headers=key) for _ in range(2)]
    reformatted = append.invoke(
        "POST", path, raw_body='{ "messages" : [ {"content":"once", "role":"user"} ] }', headers=key
    )
    other = append.invoke(
        "POST", path, body={"messages": [{"role": "user", "content": "twice"}]}, headers=key
    )

    assert first.status == 200 and "idempotent-replayed" not in first.headers
    for retry in [*retries, reformatted]:
        assert retry.status == 200 and retry.body == first.body
        assert retry.headers["idempotent-replayed"] == "true"
    assert other.status == 422 and other.body["error"]["code"] == "idempotency_key_reused"
    history = append.store.get_history("acme", session_id).messages
    assert [m.content for m in history] == ["once"]


def test_a_retried_create_with_its_idempotency_key_answers_201_again(
    functions: FunctionLoader,
) -> None:
    create = functions("create")
    key = {"idempotency-key": f"create-{uuid.uuid4().hex}"}

    first = create.invoke("POST", "/v1/sessions", body={"ttl_secs": 300}, headers=key)
    again = create.invoke("POST", "/v1/sessions", body={"ttl_secs": 300}, headers=key)
    plain = create.invoke("POST", "/v1/sessions", body={"session_id": first.body["session_id"]})

    assert first.status == again.status == 201  # one generated session, not two
    assert again.body == first.body and again.headers["etag"] == first.headers["etag"]
    assert plain.status == 409


def test_health_function(functions: FunctionLoader) -> None:
    health = functions("health")

    for _ in range(2):
        response = health.invoke("GET", "/v1/health", key=None)
        assert response.status == 200 and response.body["status"] == "ok"


def test_every_response_carries_the_gateway_request_id(functions: FunctionLoader) -> None:
    get = functions("get")
    event = api_event("GET", "/v1/sessions/nope", headers={"authorization": "Bearer x"})

    raw = get.module.handler(event, LambdaContext())

    assert raw["statusCode"] == 401
    assert raw["headers"]["x-request-id"] == event["requestContext"]["requestId"]


@pytest.mark.parametrize("backend", ["redis", "dynamodb"])  # memory lives in one process
def test_functions_share_the_backend(
    backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, request.getfixturevalue(f"{backend}_store_url"))
    create, append, get = load_function("create"), load_function("append"), load_function("get")
    history, delete = load_function("history"), load_function("delete")
    session_id = new_id("flow")

    assert create.invoke("POST", "/v1/sessions", body={"session_id": session_id}).status == 201
    for n in range(3):
        append.invoke(
            "POST",
            f"/v1/sessions/{session_id}/messages",
            body={"messages": [{"role": "user", "content": f"turn {n}"}]},
        )
    assert get.invoke("GET", f"/v1/sessions/{session_id}").body["message_count"] == 3
    contents = [
        m["content"]
        for m in history.invoke("GET", f"/v1/sessions/{session_id}/history").body["messages"]
    ]
    assert contents == ["turn 0", "turn 1", "turn 2"]
    assert delete.invoke("DELETE", f"/v1/sessions/{session_id}").status == 200
    assert get.invoke("GET", f"/v1/sessions/{session_id}").status == 404
