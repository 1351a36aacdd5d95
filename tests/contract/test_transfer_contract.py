"""Export and import: sessions move between any two stores and lose nothing.

GIVEN sessions in one store, WHEN they are exported and imported into another, THEN
the second exports exactly the same documents: history, metadata, model, risk state,
status, times and remaining TTL.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import pytest

from turnwall.errors import SessionExists, ValidationFailed
from turnwall.models import NewMessage

if TYPE_CHECKING:
    from tests.conftest import StoreFactory
    from tests.support.clock import FakeClock
    from turnwall.stores.base import SessionStore


def exported(store: SessionStore, tenant: str) -> list[dict[str, Any]]:
    """Every session of `tenant` as `export_sessions` writes it, by id."""
    page = store.export_sessions(limit=7, tenant=tenant)
    documents = page.sessions
    while page.next_cursor is not None:
        page = store.export_sessions(cursor=page.next_cursor, limit=7, tenant=tenant)
        documents += page.sessions
    return sorted(documents, key=lambda document: document["session_id"])


def same(left: list[dict[str, Any]], right: list[dict[str, Any]]) -> bool:
    """Equal documents, times to the whole millisecond (what the API shows, and all a
    Redis store keeps), the remaining TTL to within two."""

    def at_ms(value: float | None) -> int | None:
        return None if value is None else math.floor(value * 1000)

    def normal(document: dict[str, Any]) -> dict[str, Any]:
        messages = [{**m, "created_at": at_ms(m["created_at"])} for m in document["messages"]]
        times = {name: at_ms(document[name]) for name in ("created_at", "updated_at", "ended_at")}
        return {**document, **times, "messages": messages, "expires_in": None}

    ttls_agree = all(
        abs(a["expires_in"] - b["expires_in"]) <= 0.002 for a, b in zip(left, right, strict=True)
    )
    return ttls_agree and [normal(d) for d in left] == [normal(d) for d in right]


def fill(store: SessionStore, tenant: str, clock: FakeClock) -> None:
    store.create_session(tenant, "plain")
    store.create_session(tenant, "rich", ttl_secs=900, metadata={"app": "demo"}, model="m-1")
    clock.advance(3)
    store.append_messages(
        tenant,
        "rich",
        [NewMessage("user", "héllo", name="ann"), NewMessage("tool", "42", metadata={"t": 1})],
    )
    for start in range(0, 230, 100):
        batch = [NewMessage("assistant", f"m{n}") for n in range(start, min(start + 100, 230))]
        store.append_messages(tenant, "long", batch)
    risk = store.open_risk_state(tenant, "rich")
    store.save_risk_state(tenant, risk, {"turns_scanned": 2, "flagged_turns": 1})
    store.end_session(tenant, "plain")
    clock.advance(10)


def test_memory_to_redis_to_dynamodb_loses_nothing(
    memory_store_factory: StoreFactory,
    redis_store_factory: StoreFactory,
    dynamodb_store_factory: StoreFactory,
    tenant: str,
    clock: FakeClock,
) -> None:
    source = memory_store_factory()
    fill(source, tenant, clock)
    first = exported(source, tenant)

    chain = [redis_store_factory(), dynamodb_store_factory()]
    for target in chain:
        for document in json.loads(json.dumps(exported(source, tenant))):  # as JSON Lines
            target.import_session(document)
        source = target

    assert [d["session_id"] for d in first] == ["long", "plain", "rich"]
    assert same(exported(chain[-1], tenant), first)
    rich = chain[-1].get_session(tenant, "rich")
    assert rich.metadata == {"app": "demo"} and rich.model == "m-1"
    assert chain[-1].get_session(tenant, "plain").status == "ended"
    assert len(first[0]["messages"]) == 230


def test_import_never_overwrites_a_live_session(
    make_store: StoreFactory, tenant: str, clock: FakeClock
) -> None:
    store = make_store()
    store.append_messages(tenant, "s", [NewMessage("user", "original")])
    document = exported(store, tenant)[0]
    document["messages"][0]["content"] = "replacement"

    with pytest.raises(SessionExists):
        store.import_session(document)
    assert store.get_history(tenant, "s").messages[0].content == "original"


@pytest.mark.parametrize(
    "change",
    [
        {"format": "something else"},
        {"session_id": "has space"},
        {"expires_in": -1},
        {"ttl_secs": 10},
        {"messages": [{"seq": 2, "role": "user", "content": "x", "created_at": 1.0}]},
        {"messages": [{"seq": 1, "role": "root", "content": "x", "created_at": 1.0}]},
    ],
    ids=["format", "id", "expired", "ttl", "seq-gap", "role"],
)
def test_a_bad_document_is_refused_and_stores_nothing(
    store: SessionStore, tenant: str, change: dict[str, Any]
) -> None:
    store.append_messages(tenant, "template", [NewMessage("user", "x")])
    document = {**exported(store, tenant)[0], "session_id": "copy", **change}

    with pytest.raises(ValidationFailed):
        store.import_session(document)
    assert [d["session_id"] for d in exported(store, tenant)] == ["template"]
