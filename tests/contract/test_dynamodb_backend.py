"""What only the DynamoDB store promises: the table from template.yaml, the item layout,
expiry without trusting TTL deletion, and fast, typed failures.

The behaviour every store shares is in test_store_contract.py; these tests also look at
the raw items through a plain client of the same moto server.
"""

from __future__ import annotations

import hashlib
import socket
import time
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from cryptography.fernet import Fernet

from turnwall.errors import (
    ConfigurationError,
    SessionNotFound,
    StoreUnavailable,
    ValidationFailed,
)
from turnwall.models import ApiKeyRecord, NewMessage
from turnwall.settings import load_settings
from turnwall.stores import build_store
from turnwall.stores.dynamodb import (
    PARTITION_KEY,
    SORT_KEY,
    TENANT_INDEX,
    TTL_ATTRIBUTE,
    DynamoDBSessionStore,
)
from turnwall.stores.dynamodb.table import load_template, table_spec
from turnwall.stores.records import StoredMessage

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from mypy_boto3_dynamodb import DynamoDBClient

    from tests.conftest import StoreFactory
    from tests.support.clock import FakeClock
    from turnwall.crypto import Cipher

pytestmark = pytest.mark.dynamodb


def user(text: str) -> NewMessage:
    return NewMessage(role="user", content=text)


@pytest.fixture
def store(dynamodb_store_factory: StoreFactory) -> DynamoDBSessionStore:
    made = dynamodb_store_factory()
    assert isinstance(made, DynamoDBSessionStore)
    return made


def raw_items(store: DynamoDBSessionStore, tenant: str, session_id: str) -> list[dict[str, Any]]:
    """Every item under the session's partition key, in key order."""
    items: list[dict[str, Any]] = []
    query: dict[str, Any] = {
        "TableName": store.table_name,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": f"S#{tenant}#{session_id}"}},
        "ConsistentRead": True,
    }
    while True:
        page = store.client.query(**query)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def message_items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [item for item in items if item["sk"]["S"].startswith("M#")]


# ------------------------------------------------------------------ the table


def test_table_built_from_template_has_keys_ttl_stream_and_index(
    dynamodb_client: DynamoDBClient, dynamodb_table: str
) -> None:
    table = dynamodb_client.describe_table(TableName=dynamodb_table)["Table"]
    ttl = dynamodb_client.describe_time_to_live(TableName=dynamodb_table)

    assert {(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]} == {
        (PARTITION_KEY, "HASH"),
        (SORT_KEY, "RANGE"),
    }
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["StreamSpecification"] == {
        "StreamEnabled": True,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    assert table["SSEDescription"]["Status"] == "ENABLED"
    [index] = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == TENANT_INDEX
    assert [(k["AttributeName"], k["KeyType"]) for k in index["KeySchema"]] == [
        ("tenant", "HASH"),
        ("session_id", "RANGE"),
    ]
    assert index["Projection"]["ProjectionType"] == "ALL"
    assert ttl["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED",
        "AttributeName": TTL_ATTRIBUTE,
    }


def test_template_is_what_the_store_expects() -> None:
    spec = table_spec("any-name")
    kwargs = spec.create_table_kwargs

    assert kwargs["TableName"] == "any-name"
    assert [k["AttributeName"] for k in kwargs["KeySchema"]] == [PARTITION_KEY, SORT_KEY]
    assert [i["IndexName"] for i in kwargs.get("GlobalSecondaryIndexes", [])] == [TENANT_INDEX]
    assert spec.ttl_attribute == TTL_ATTRIBUTE
    assert spec.point_in_time_recovery


def test_template_loads_short_form_tags() -> None:
    template = load_template()

    table = template["Resources"]["SessionsTable"]
    assert table["Properties"]["TableName"] == {
        "Fn::If": ["HasTableName", {"Ref": "TableName"}, {"Ref": "AWS::NoValue"}]
    }
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"
    assert template["Outputs"]["SessionsTableStreamArn"]["Value"] == {
        "Fn::GetAtt": ["SessionsTable", "StreamArn"]
    }


def test_table_spec_refuses_what_only_cloudformation_resolves(tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(
        "Resources:\n"
        "  SessionsTable:\n"
        "    Type: AWS::DynamoDB::Table\n"
        "    Properties:\n"
        "      BillingMode: !Ref BillingMode\n"
    )

    with pytest.raises(ConfigurationError, match="BillingMode uses Ref"):
        table_spec("t-1", template)
    with pytest.raises(ConfigurationError):
        table_spec("t-1", tmp_path / "missing.yaml")


# ------------------------------------------------------------------ item layout


def test_long_history_is_one_item_per_message(store: DynamoDBSessionStore, tenant: str) -> None:
    for batch in range(40):
        store.append_messages(tenant, "long", [user(f"m{batch * 50 + i}") for i in range(50)])

    first = store.get_history(tenant, "long", limit=1000)
    second = store.get_history(tenant, "long", limit=1000, cursor=first.next_cursor)
    items = raw_items(store, tenant, "long")

    assert [m.content for m in first.messages + second.messages] == [f"m{i}" for i in range(2000)]
    assert second.next_cursor is None and second.session.message_count == 2000
    assert len(message_items(items)) == 2000
    store.delete_session(tenant, "long")
    assert raw_items(store, tenant, "long") == []


def test_a_full_batch_of_100_shares_one_item(store: DynamoDBSessionStore, tenant: str) -> None:
    # 100 message puts + the session update would be 101 actions; DynamoDB allows 100.
    store.append_messages(tenant, "s", [user(f"m{i}") for i in range(1, 101)])
    record = store._read(tenant, "s")
    assert record is not None

    items = message_items(raw_items(store, tenant, "s"))

    assert len(items) == 99 and sum("paired" in item for item in items) == 1
    for seq in range(1, 101):  # every seq readable on its own, the paired one too
        [message] = store._read_messages(record, seq, seq)
        assert message.seq == seq
    assert [m.content for m in store.get_history(tenant, "s").messages] == [
        f"m{i}" for i in range(1, 101)
    ]


def test_a_message_too_big_for_one_item_continues_in_parts(
    store: DynamoDBSessionStore, tenant: str
) -> None:
    # JSON escapes each control character to six bytes: 768 KiB of ciphertext, more than
    # the 400 KB a DynamoDB item holds.
    escaped = "\x00" * 131072
    store.append_messages(tenant, "s", [user("before"), user(escaped), user("after")])
    record = store._read(tenant, "s")
    assert record is not None

    items = message_items(raw_items(store, tenant, "s"))

    assert len(items) == 5  # "before", the big one in 3 parts, "after"
    assert [m.content for m in store.get_history(tenant, "s").messages] == [
        "before",
        escaped,
        "after",
    ]
    assert [m.seq for m in store._read_messages(record, 3, 3)] == [3]
    assert [m.seq for m in store._read_messages(record, 2, 2)] == [2]


def test_pairs_are_the_smallest_neighbours(store: DynamoDBSessionStore, tenant: str) -> None:
    # Each quote escapes to two bytes: these two could not share one item.
    big = '"' * 131072
    batch = [user(f"m{i}") for i in range(98)] + [user(big), user(big)]

    store.append_messages(tenant, "s", batch)

    assert [m.content for m in store.get_history(tenant, "s").messages] == [
        m.content for m in batch
    ]
    [paired] = [i for i in message_items(raw_items(store, tenant, "s")) if "paired" in i]
    assert len(paired["blob"]["B"]) + len(paired["paired"]["M"]["blob"]["B"]) < 1000


def test_a_batch_too_big_for_one_transaction_is_refused(
    store: DynamoDBSessionStore, tenant: str
) -> None:
    with pytest.raises(ValidationFailed, match="smaller batches"):
        store.append_messages(tenant, "s", [user('"' * 60000)] * 100)  # ~12 MB sealed

    with pytest.raises(SessionNotFound):
        store.get_session(tenant, "s")


def test_stored_items_hold_no_plaintext(store: DynamoDBSessionStore, tenant: str) -> None:
    store.create_session(tenant, "s", metadata={"email": "alice@example.com"})
    store.append_messages(tenant, "s", [user("the launch code is 0000")])
    risk = store.open_risk_state(tenant, "s")
    store.save_risk_state(tenant, risk, {"turns_scanned": 1, "note": "risk-secret-note"})

    dump = repr(raw_items(store, tenant, "s"))

    assert "launch code" not in dump
    assert "alice@example.com" not in dump
    assert "risk-secret-note" not in dump
    assert "'role': {'S': 'user'}" in dump  # ids, roles, counts and times stay readable


# ------------------------------------------------------------------ API keys, rate limits


def test_api_key_records_round_trip(store: DynamoDBSessionStore, tenant: str) -> None:
    key_hash = hashlib.sha256(tenant.encode()).hexdigest()
    record = ApiKeyRecord(key_hash, tenant, "scan", created_at=1_700_000_000.25)

    store.save_api_key(record)
    assert store.find_api_key(key_hash) == record
    revoked = record._replace(revoked_at=1_700_000_100.5)
    store.save_api_key(revoked)

    assert store.find_api_key(key_hash) == revoked
    assert store.list_api_keys(tenant) == [revoked]
    assert store.find_api_key("0" * 64) is None
    assert store.list_sessions(tenant).total == 0  # key items stay out of the index


def test_request_counts_are_shared_per_window(
    dynamodb_store_factory: StoreFactory, clock: FakeClock, tenant: str
) -> None:
    one, other = dynamodb_store_factory(), dynamodb_store_factory()
    key_bucket, ip_bucket = f"key:{tenant}", f"ip:{tenant}"

    first = one.count_requests([key_bucket, ip_bucket])
    second = other.count_requests([key_bucket], amount=5)
    clock.advance(60)
    next_window = one.count_requests([key_bucket, ip_bucket])

    assert first.counts == [1, 1] and second.counts == [6]
    assert next_window.counts == [1, 1]
    assert next_window.window_ends_at == first.window_ends_at + 60


# ------------------------------------------------------------------ expiry


def test_expiry_attribute_is_whole_seconds_never_early(
    store: DynamoDBSessionStore, tenant: str
) -> None:
    store.create_session(tenant, "s", ttl_secs=60)

    [item] = raw_items(store, tenant, "s")

    ttl_value, exact = item[TTL_ATTRIBUTE]["N"], float(item["expires_at_exact"]["N"])
    assert ttl_value.isdigit()
    assert exact <= int(ttl_value) < exact + 1


def test_expired_items_stay_invisible_until_dynamodb_deletes_them(
    store: DynamoDBSessionStore, tenant: str, clock: FakeClock
) -> None:
    store.create_session(tenant, "s", ttl_secs=60)
    store.append_messages(tenant, "s", [user("old")])
    clock.advance(61)

    assert len(raw_items(store, tenant, "s")) == 2  # TTL deletion has not happened
    with pytest.raises(SessionNotFound):
        store.get_session(tenant, "s")
    with pytest.raises(SessionNotFound):
        store.get_history(tenant, "s")
    assert store.list_sessions(tenant).total == 0

    assert store.append_messages(tenant, "s", [user("new")]).created
    assert [m.content for m in store.get_history(tenant, "s").messages] == ["new"]
    assert len(message_items(raw_items(store, tenant, "s"))) == 2  # the old one, orphaned
    store.delete_session(tenant, "s")
    assert raw_items(store, tenant, "s") == []  # delete sweeps older incarnations too


def test_listing_keeps_reading_past_expired_sessions(
    store: DynamoDBSessionStore, tenant: str, clock: FakeClock
) -> None:
    for n in range(30):
        store.create_session(tenant, f"s{n:02d}", ttl_secs=60 if n % 3 else 600)
    clock.advance(61)
    listed: list[str] = []
    cursor = None
    while True:
        page = store.list_sessions(tenant, limit=3, cursor=cursor)
        assert page.total == 10
        listed += [s.session_id for s in page.sessions]
        cursor = page.next_cursor
        if cursor is None:
            break

    assert listed == [f"s{n:02d}" for n in range(0, 30, 3)]


# ------------------------------------------------------------------ failures


@pytest.fixture
def stubbed(cipher: Cipher) -> Iterator[tuple[DynamoDBSessionStore, Stubber]]:
    """A store whose client answers only what the test queues up (no network)."""
    client = boto3.session.Session().client(
        "dynamodb",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with Stubber(client) as stubber:
        yield DynamoDBSessionStore("sessions", cipher, boto3_client=client), stubber
        stubber.assert_no_pending_responses()
    client.close()


def test_unreachable_endpoint_fails_fast(
    cipher: Cipher, monkeypatch: pytest.MonkeyPatch, tenant: str
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    store = DynamoDBSessionStore.from_url(
        f"dynamodb://sessions?region=us-east-1&endpoint_url=http://127.0.0.1:{closed_port}",
        cipher,
    )
    started = time.monotonic()

    with pytest.raises(StoreUnavailable):
        store.get_session(tenant, "s")
    with pytest.raises(StoreUnavailable):
        store.ping()

    assert time.monotonic() - started < 10  # retries with backoff, then gives up
    store.close()


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ProvisionedThroughputExceededException", 400),
        ("ThrottlingException", 400),
        ("RequestLimitExceeded", 400),
        ("InternalServerError", 500),
        ("SomethingNew", 503),
        ("ResourceNotFoundException", 400),
    ],
)
def test_throttling_and_outages_become_store_unavailable(
    stubbed: tuple[DynamoDBSessionStore, Stubber], tenant: str, code: str, status: int
) -> None:
    store, stubber = stubbed
    stubber.add_client_error("update_item", service_error_code=code, http_status_code=status)

    with pytest.raises(StoreUnavailable):
        store.get_session(tenant, "s")


def test_other_client_errors_are_not_disguised(
    stubbed: tuple[DynamoDBSessionStore, Stubber], tenant: str
) -> None:
    store, stubber = stubbed
    stubber.add_client_error("update_item", service_error_code="ValidationException")

    with pytest.raises(ClientError):
        store.get_session(tenant, "s")


@pytest.mark.parametrize(
    ("reasons", "outcome"),
    [
        (["None", "ConditionalCheckFailed"], "lost race"),
        (["TransactionConflict", "None"], "lost race"),
        (["None", "ThrottlingError"], StoreUnavailable),
        (["ValidationError", "None"], ClientError),
    ],
)
def test_cancelled_transactions_are_lost_races_or_failures(
    stubbed: tuple[DynamoDBSessionStore, Stubber], reasons: list[str], outcome: object
) -> None:
    store, stubber = stubbed
    stubber.add_client_error(
        "transact_write_items",
        service_error_code="TransactionCanceledException",
        modeled_fields={"CancellationReasons": [{"Code": code} for code in reasons]},
    )
    head = store._new_record("t", "s", 600, store.clock(), None)
    message = StoredMessage(seq=1, role="user", created_at=store.clock(), blob=b"sealed")

    if outcome == "lost race":
        assert store._commit_append(head, [message], None, store.clock(), creating=True) is None
    else:
        assert isinstance(outcome, type)
        with pytest.raises(outcome):
            store._commit_append(head, [message], None, store.clock(), creating=True)


def test_a_write_colliding_with_a_transaction_is_retried(
    stubbed: tuple[DynamoDBSessionStore, Stubber], tenant: str
) -> None:
    store, stubber = stubbed
    now = store.clock()
    stubber.add_client_error("update_item", service_error_code="TransactionConflictException")
    stubber.add_response(
        "update_item",
        {
            "Attributes": {
                "tenant": {"S": tenant},
                "session_id": {"S": "s"},
                "incarnation": {"S": "i-1"},
                "created_at": {"N": repr(now)},
                "updated_at": {"N": repr(now)},
                "expires_at_exact": {"N": repr(now + 600)},
                "ttl_secs": {"N": "600"},
                "message_count": {"N": "0"},
                "risk_version": {"N": "0"},
            }
        },
    )

    assert store.get_session(tenant, "s").ttl_secs == 600


def test_ping_reports_a_missing_table(
    dynamodb_client: DynamoDBClient, dynamodb_table: str, cipher: Cipher
) -> None:
    DynamoDBSessionStore(dynamodb_table, cipher, boto3_client=dynamodb_client).ping()

    with pytest.raises(StoreUnavailable, match="does not exist"):
        DynamoDBSessionStore("no-such-table", cipher, boto3_client=dynamodb_client).ping()


# ------------------------------------------------------------------ configuration


def test_from_url_reads_table_region_and_endpoint(cipher: Cipher) -> None:
    store = DynamoDBSessionStore.from_url(
        "dynamodb://Turnwall_Sessions.v2?region=eu-west-1"
        "&endpoint_url=http%3A%2F%2Flocalhost%3A8000",
        cipher,
    )

    assert store.table_name == "Turnwall_Sessions.v2"
    assert store.client.meta.region_name == "eu-west-1"
    assert store.client.meta.endpoint_url == "http://localhost:8000"
    store.close()


@pytest.mark.parametrize(
    "url",
    [
        "dynamodb://",
        "dynamodb://ab?region=eu-west-1",
        "dynamodb://sessions/extra?region=eu-west-1",
        "dynamodb://sessions?colour=red",
        "dynamodb://sessions?region=eu-west-1&region=us-east-1",
        "dynamodb://sessions?region=",
        "dynamodb://sessions?region=eu-west-1&endpoint_url=ftp://host",
        "redis://sessions",
    ],
)
def test_bad_urls_are_configuration_errors(cipher: Cipher, url: str) -> None:
    with pytest.raises(ConfigurationError):
        DynamoDBSessionStore.from_url(url, cipher)


def test_no_region_is_a_configuration_error(
    cipher: Cipher, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))

    with pytest.raises(ConfigurationError, match="region"):
        DynamoDBSessionStore.from_url("dynamodb://sessions", cipher)


def test_build_store_selects_dynamodb(dynamodb_store_url: str, tenant: str) -> None:
    settings = load_settings(
        store_url=dynamodb_store_url, encryption_keys=Fernet.generate_key().decode()
    )

    store = build_store(settings)
    try:
        assert isinstance(store, DynamoDBSessionStore)
        store.append_messages(tenant, "s", [user("via IW_STORE_URL")])
        assert store.get_history(tenant, "s").messages[0].content == "via IW_STORE_URL"
    finally:
        store.close()
