"""Security properties as tests: tenant isolation on every route, hashed keys,
constant-time comparison, revocation within the documented cache window."""

from __future__ import annotations

import hmac
import uuid
from typing import TYPE_CHECKING

import pytest

from tests.functional.conftest import ADMIN_KEY, OTHER_TENANT_KEY, configure, load_function
from tests.support.clock import FakeClock
from turnwall.auth import Authenticator, create_key, hash_key, revoke_key
from turnwall.errors import InvalidApiKey
from turnwall.models import NewMessage

if TYPE_CHECKING:
    from tests.conftest import StoreFactory


@pytest.mark.parametrize("backend", ["redis", "dynamodb"])  # functions sharing a store
def test_other_tenants_get_404_on_every_session_route(
    backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, request.getfixturevalue(f"{backend}_store_url"))
    functions = load_function
    session_id = f"private:{uuid.uuid4().hex[:8]}"
    owner = functions("get")
    owner.store.create_session("acme", session_id, metadata={"secret": "acme-only"})
    owner.store.append_messages("acme", session_id, [NewMessage("user", "acme secret")])
    routes = [
        ("get", "GET", f"/v1/sessions/{session_id}", None),
        ("history", "GET", f"/v1/sessions/{session_id}/history", None),
        ("update", "PATCH", f"/v1/sessions/{session_id}", {"metadata": {"x": 1}}),
        ("delete", "DELETE", f"/v1/sessions/{session_id}", None),
    ]

    for name, method, path, body in routes:
        response = functions(name).invoke(method, path, key=OTHER_TENANT_KEY, body=body)
        assert response.status == 404, (name, response.body)
        assert response.body["error"]["code"] == "session_not_found"
        assert "acme" not in str(response.body)

    # Appending and listing stay inside the caller's own namespace.
    appended = functions("append").invoke(
        "POST",
        f"/v1/sessions/{session_id}/messages",
        key=OTHER_TENANT_KEY,
        body={"messages": [{"role": "user", "content": "globex text"}]},
    )
    listed = functions("list").invoke(
        "GET", "/v1/sessions", key=OTHER_TENANT_KEY, query={"prefix": "private:"}
    )
    assert appended.body["first_seq"] == 1
    assert all(s["metadata"] != {"secret": "acme-only"} for s in listed.body["sessions"])
    history = functions("history").invoke(
        "GET", f"/v1/sessions/{session_id}/history", key=ADMIN_KEY
    )
    assert [m["content"] for m in history.body["messages"]] == ["acme secret"]


def test_keys_are_stored_only_as_hashes(make_store: StoreFactory, tenant: str) -> None:
    store = make_store()
    key, record = create_key(store, tenant, "scan")

    stored = list(store.list_api_keys(tenant))

    assert [r.key_hash for r in stored] == [hash_key(key)]
    assert all(key not in repr(r) for r in stored)
    assert record.key_id == hash_key(key)[:16]


def test_key_comparison_is_constant_time(
    make_store: StoreFactory, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_store()
    key, _ = create_key(store, tenant, "admin")
    compared: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr("turnwall.auth.hmac.compare_digest", spy)
    Authenticator(store).authenticate(key)

    assert compared == [(hash_key(key), hash_key(key))]


def test_revoked_key_stops_working_after_the_cache_window(
    make_store: StoreFactory, tenant: str
) -> None:
    store = make_store()
    key, record = create_key(store, tenant, "scan")
    clock = FakeClock(start=0.0)
    authenticator = Authenticator(store, cache_secs=30, clock=clock)
    assert authenticator.authenticate(key).tenant == tenant

    revoke_key(store, record.key_id)
    clock.advance(10)
    assert authenticator.authenticate(key).tenant == tenant  # within the documented window
    clock.advance(21)

    with pytest.raises(InvalidApiKey):
        authenticator.authenticate(key)
    with pytest.raises(InvalidApiKey):  # a fresh container refuses it at once
        Authenticator(store).authenticate(key)
