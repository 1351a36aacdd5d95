"""The DynamoDB store's items, pinned attribute by attribute.

Stored items outlive the code that wrote them: a deployed table holds sessions, messages
and keys written by every earlier release, and the cleanup function reads old images
from the stream. These tests write through the store and compare the raw items (read
with a plain client) with the layout the store has always written: the same attribute
names, the same types (S, N, B, M), numbers in the same text. Only what cannot be
pinned is replaced: ciphertexts (random IVs) by ``<sealed>``, the generated incarnation
by ``<incarnation>``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from turnwall.models import ApiKeyRecord, NewMessage

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from tests.conftest import StoreFactory
    from tests.support.clock import FakeClock

pytestmark = pytest.mark.dynamodb

TENANT = "acme"
NOW = 1_700_000_000.25
SEALED = {"B": "<sealed>"}


@pytest.fixture
def pinned_clock(clock: FakeClock) -> FakeClock:
    clock.advance(NOW - clock())
    return clock


def raw(client: DynamoDBClient, table: str, pk: str) -> list[dict[str, Any]]:
    """The items under `pk` in key order, ciphertexts replaced by a marker."""
    items = client.query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": pk}},
        ConsistentRead=True,
    )["Items"]
    return [_pinnable(item) for item in items]


def _pinnable(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"B"}:
            assert isinstance(value["B"], bytes)
            return SEALED
        return {name: _pinnable(inner) for name, inner in value.items()}
    return value


def test_session_and_message_items_keep_their_layout(
    dynamodb_store_factory: StoreFactory,
    dynamodb_client: DynamoDBClient,
    dynamodb_table: str,
    pinned_clock: FakeClock,
) -> None:
    store = dynamodb_store_factory()
    store.create_session(TENANT, "s1", ttl_secs=600, metadata={"k": "v"}, model="m-1")
    pinned_clock.advance(1.5)
    store.append_messages(TENANT, "s1", [NewMessage(role="user", content="hi")])
    pinned_clock.advance(0.125)
    store.end_session(TENANT, "s1")

    message, session = raw(dynamodb_client, dynamodb_table, "S#acme#s1")
    incarnation = session["incarnation"]["S"]
    assert session["model"]["S"].startswith("sealed:")  # the model is sealed, as text

    assert message == {
        "pk": {"S": "S#acme#s1"},
        "sk": {"S": f"M#{incarnation}#0000000001"},
        "seq": {"N": "1"},
        "role": {"S": "user"},
        "created_at": {"N": "1700000001.75"},
        "blob": SEALED,
    }
    assert session == {
        "pk": {"S": "S#acme#s1"},
        "sk": {"S": "SESSION"},
        "tenant": {"S": "acme"},
        "session_id": {"S": "s1"},
        "incarnation": {"S": incarnation},
        "created_at": {"N": "1700000000.25"},
        "updated_at": {"N": "1700000001.875"},
        "expires_at": {"N": "1700000602"},
        "expires_at_exact": {"N": "1700000601.875"},
        "ttl_secs": {"N": "600"},
        "message_count": {"N": "1"},
        "risk_version": {"N": "0"},
        "model": session["model"],
        "metadata": SEALED,
        "ended_at": {"N": "1700000001.875"},
        "version": {"N": "2"},
    }


def test_paired_and_parted_message_items_keep_their_layout(
    dynamodb_store_factory: StoreFactory,
    dynamodb_client: DynamoDBClient,
    dynamodb_table: str,
    pinned_clock: FakeClock,
) -> None:
    store = dynamodb_store_factory()
    big = "\x00" * 131072  # escaped to 768 KiB: three parts
    store.append_messages(TENANT, "big", [NewMessage(role="user", content=big)])
    store.append_messages(
        TENANT, "full", [NewMessage(role="assistant", content=f"m{i}") for i in range(100)]
    )

    parted = raw(dynamodb_client, dynamodb_table, "S#acme#big")[:3]
    full = raw(dynamodb_client, dynamodb_table, "S#acme#full")
    [paired] = [item for item in full if "paired" in item]

    sort_key = parted[0]["sk"]["S"]
    assert [{name: value for name, value in item.items() if name != "sk"} for item in parted] == [
        {
            "pk": {"S": "S#acme#big"},
            "seq": {"N": "1"},
            "role": {"S": "user"},
            "created_at": {"N": "1700000000.25"},
            "blob": SEALED,
            "parts": {"N": "3"},
        },
        {"pk": {"S": "S#acme#big"}, "part": {"N": "1"}, "blob": SEALED},
        {"pk": {"S": "S#acme#big"}, "part": {"N": "2"}, "blob": SEALED},
    ]
    assert [item["sk"]["S"] for item in parted[1:]] == [f"{sort_key}#001", f"{sort_key}#002"]
    seq = int(paired["seq"]["N"])
    assert paired["paired"] == {
        "M": {
            "seq": {"N": str(seq + 1)},
            "role": {"S": "assistant"},
            "created_at": {"N": "1700000000.25"},
            "blob": SEALED,
        }
    }


def test_key_counter_idempotency_and_cursor_items_keep_their_layout(
    dynamodb_store_factory: StoreFactory,
    dynamodb_client: DynamoDBClient,
    dynamodb_table: str,
    pinned_clock: FakeClock,
) -> None:
    store = dynamodb_store_factory()
    store.save_api_key(ApiKeyRecord("ab" * 32, TENANT, "admin", 1_700_000_000.5, 1_700_000_100.0))
    store.count_requests(["key:abc"], window_secs=60, amount=3)
    assert store.claim_idempotency_key(TENANT, "idem-1", "fp") is None
    store.save_sweep_cursor("cursor-1")

    window = int(NOW // 60)
    [idempotency] = raw(dynamodb_client, dynamodb_table, f"I#{TENANT}")
    assert raw(dynamodb_client, dynamodb_table, "KEYS") == [
        {
            "pk": {"S": "KEYS"},
            "sk": {"S": "ab" * 32},
            "key_tenant": {"S": "acme"},
            "role": {"S": "admin"},
            "created_at": {"N": "1700000000.5"},
            "revoked_at": {"N": "1700000100.0"},
        }
    ]
    assert raw(dynamodb_client, dynamodb_table, f"R#key:abc#{window}") == [
        {
            "pk": {"S": f"R#key:abc#{window}"},
            "sk": {"S": "COUNT"},
            "hits": {"N": "3"},
            "expires_at": {"N": str((window + 2) * 60)},
        }
    ]
    assert {name: value for name, value in idempotency.items() if name != "sk"} == {
        "pk": {"S": "I#acme"},
        "blob": SEALED,
        "expires_at_exact": {"N": "1700000120.25"},
        "expires_at": {"N": "1700000121"},
    }
    assert raw(dynamodb_client, dynamodb_table, "SWEEP") == [
        {"pk": {"S": "SWEEP"}, "sk": {"S": "CURSOR"}, "position": {"S": "cursor-1"}}
    ]
