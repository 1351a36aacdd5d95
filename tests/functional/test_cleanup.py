"""The cleanup function through its real handler: DynamoDB stream batches of TTL
deletions, scheduled sweeps, and the lifecycle events both publish.

Stream records are real: each test's moto table has its own stream, the test deletes
a session item the way DynamoDB's TTL process does and reads the REMOVE record back
(tests/support/cleanup_events.py), and the template's FilterCriteria decides what
the handler gets. Sessions are written through the store with a clock running two
hours behind, so they are expired by the function's real clock without any sleep.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any, cast

import boto3
import pytest

from tests.functional.conftest import ENCRYPTION_KEY, SCAN_KEY, configure, load_function
from tests.support.cleanup_events import (
    TableStream,
    TimedContext,
    passes_filter,
    scheduled_event,
    stream_event,
    unfiltered_stream_event,
)
from tests.support.clock import FakeClock
from tests.support.dynamodb_server import REGION, store_url
from tests.support.events import ROOT
from turnwall.crypto import Cipher
from turnwall.errors import ValidationFailed
from turnwall.models import NewMessage
from turnwall.settings import get_settings
from turnwall.stores.dynamodb import DynamoDBSessionStore
from turnwall.stores.dynamodb.table import load_template
from turnwall.stores.redis import RedisSessionStore
from turnwall.validation import Limits

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import ModuleType

    from mypy_boto3_dynamodb import DynamoDBClient

    from turnwall.stores.base import SessionStore

TENANT = "acme"
CIPHER = Cipher.from_key_list(ENCRYPTION_KEY)


def user(text: str) -> NewMessage:
    return NewMessage(role="user", content=text)


def new_id(label: str = "s") -> str:
    return f"{label}:{uuid.uuid4().hex[:10]}"


def session_key(session_id: str, tenant: str = TENANT) -> dict[str, Any]:
    return {"pk": {"S": f"S#{tenant}#{session_id}"}, "sk": {"S": "SESSION"}}


def all_items(client: DynamoDBClient, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    scan: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = client.scan(**scan)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return sorted(items, key=lambda item: (item["pk"]["S"], item["sk"]["S"]))
        scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def partition(
    client: DynamoDBClient, table: str, session_id: str, tenant: str = TENANT
) -> list[dict[str, Any]]:
    return [i for i in all_items(client, table) if i["pk"]["S"] == f"S#{tenant}#{session_id}"]


def invoke(function: ModuleType, event: dict[str, Any], **context: Any) -> Any:
    return function.handler(event, TimedContext(**context))


# ------------------------------------------------------------------ fixtures


@pytest.fixture
def table_url(dynamodb_endpoint: str, dynamodb_table: str) -> str:
    """The test's table for the cleanup function (on a slow machine, moto's query of a
    2,000-message partition took over the production 2 s read timeout)."""
    return store_url(dynamodb_endpoint, dynamodb_table)


@pytest.fixture
def past() -> FakeClock:
    """Two hours behind: what it writes with a short TTL is expired by now."""
    return FakeClock(time.time() - 7200)


@pytest.fixture
def writer(
    dynamodb_client: DynamoDBClient, dynamodb_table: str, past: FakeClock
) -> DynamoDBSessionStore:
    """The store as the API functions use it, writing into the test's table."""
    return DynamoDBSessionStore(dynamodb_table, CIPHER, clock=past, boto3_client=dynamodb_client)


@pytest.fixture
def live_writer(dynamodb_client: DynamoDBClient, dynamodb_table: str) -> DynamoDBSessionStore:
    return DynamoDBSessionStore(dynamodb_table, CIPHER, boto3_client=dynamodb_client)


@pytest.fixture
def stream(
    dynamodb_endpoint: str, dynamodb_client: DynamoDBClient, dynamodb_table: str
) -> Iterator[TableStream]:
    table_stream = TableStream(dynamodb_endpoint, dynamodb_client, dynamodb_table)
    yield table_stream
    table_stream.close()


@pytest.fixture
def cleanup(table_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """functions/cleanup/app.py, cold-started on the test's table."""
    configure(monkeypatch, table_url)
    yield load_function("cleanup").module
    get_settings.cache_clear()


def expired_session(writer: SessionStore, messages: int = 3) -> str:
    session_id = new_id("expired")
    writer.create_session(TENANT, session_id, ttl_secs=60)
    for start in range(0, messages, 100):
        writer.append_messages(
            TENANT, session_id, [user(f"m{n}") for n in range(start, min(messages, start + 100))]
        )
    return session_id


# ------------------------------------------------------------------ stream


@pytest.mark.dynamodb
def test_ttl_deletion_purges_the_session_messages(
    cleanup: ModuleType,
    writer: DynamoDBSessionStore,
    stream: TableStream,
    dynamodb_client: DynamoDBClient,
    dynamodb_table: str,
) -> None:
    session_id = expired_session(writer, messages=5)
    assert len(partition(dynamodb_client, dynamodb_table, session_id)) == 6

    record = stream.expire_by_ttl(session_key(session_id))
    response = invoke(cleanup, stream_event([record]))

    assert response == {"batchItemFailures": []}
    assert partition(dynamodb_client, dynamodb_table, session_id) == []


@pytest.mark.dynamodb
def test_a_replayed_batch_leaves_the_same_end_state(
    cleanup: ModuleType,
    writer: DynamoDBSessionStore,
    live_writer: DynamoDBSessionStore,
    stream: TableStream,
    dynamodb_client: DynamoDBClient,
    dynamodb_table: str,
) -> None:
    gone = [expired_session(writer, messages=n) for n in (0, 2, 7)]
    live_writer.append_messages(TENANT, "live", [user("hello")])
    records = [stream.expire_by_ttl(session_key(session_id)) for session_id in gone]
    event = stream_event(records)

    first = invoke(cleanup, event)
    after_first = all_items(dynamodb_client, dynamodb_table)
    second = invoke(cleanup, event)
    after_second = all_items(dynamodb_client, dynamodb_table)

    assert first == second == {"batchItemFailures": []}
    assert after_second == after_first
    assert {item["pk"]["S"] for item in after_second} == {f"S#{TENANT}#live"}


@pytest.mark.dynamodb
def test_a_session_with_2000_messages_is_fully_cleaned(
    cleanup: ModuleType,
    writer: DynamoDBSessionStore,
    stream: TableStream,
    dynamodb_client: DynamoDBClient,
    dynamodb_table: str,
) -> None:
    # 100-message appends store some pairs of messages in one item, and a message over
    # one item's size continues in part items: both layouts must go.
    session_id = expired_session(writer, messages=1999)
    big = DynamoDBSessionStore(
        dynamodb_table,
        CIPHER,
        Limits(max_message_bytes=800_000),
        clock=writer.clock,
        boto3_client=dynamodb_client,
    )
    big.append_messages(TENANT, session_id, [user("x" * 700_000)])
    items = partition(dynamodb_client, dynamodb_table, session_id)
    assert big.get_session(TENANT, session_id).message_count == 2000
    assert any("paired" in item for item in items) and any("part" in item for item in items)

    response = invoke(cleanup, stream_event([stream.expire_by_ttl(session_key(session_id))]))

    assert response == {"batchItemFailures": []}
    assert partition(dynamodb_client, dynamodb_table, session_id) == []


@pytest.mark.dynamodb
def test_nothing_of_a_live_session_is_touched(
    cleanup: ModuleType,
    writer: DynamoDBSessionStore,
    live_writer: DynamoDBSessionStore,
    stream: TableStream,
    dynamodb_client: DynamoDBClient,
    dynamodb_table: str,
) -> None:
    # GIVEN a session that expired, was deleted by TTL, and was then recreated under
    # the same id, next to an unrelated live session
    session_id = expired_session(writer, messages=4)
    record = stream.expire_by_ttl(session_key(session_id))
    live_writer.append_messages(TENANT, session_id, [user("new 1"), user("new 2")])
    live_writer.append_messages(TENANT, "bystander", [user("hi")] * 3)
    recreated = current_items(dynamodb_client, dynamodb_table, session_id)
    bystander = partition(dynamodb_client, dynamodb_table, "bystander")
    assert len(partition(dynamodb_client, dynamodb_table, session_id)) == len(recreated) + 4

    # WHEN the old TTL deletion arrives (late, and twice)
    invoke(cleanup, stream_event([record]))
    invoke(cleanup, stream_event([record]))

    # THEN only the old incarnation's messages went
    assert partition(dynamodb_client, dynamodb_table, session_id) == recreated
    assert partition(dynamodb_client, dynamodb_table, "bystander") == bystander
    assert [m.content for m in live_writer.get_history(TENANT, session_id).messages] == [
        "new 1",
        "new 2",
    ]


def current_items(client: DynamoDBClient, table: str, session_id: str) -> list[dict[str, Any]]:
    """The items of the stored incarnation: its session item and its messages."""
    head = client.get_item(TableName=table, Key=session_key(session_id), ConsistentRead=True)
    own = f"M#{head['Item']['incarnation']['S']}#"
    return [
        item
        for item in partition(client, table, session_id)
        if item["sk"]["S"] == "SESSION" or item["sk"]["S"].startswith(own)
    ]


@pytest.mark.dynamodb
def test_only_ttl_deletions_of_sessions_pass_the_filter_and_the_handler(
    cleanup: ModuleType,
    writer: DynamoDBSessionStore,
    live_writer: DynamoDBSessionStore,
    stream: TableStream,
    dynamodb_client: DynamoDBClient,
    dynamodb_table: str,
) -> None:
    # GIVEN every kind of change the table sees
    expired = expired_session(writer, messages=2)
    live_writer.append_messages(TENANT, "deleted-by-client", [user("bye")])
    live_writer.delete_session(TENANT, "deleted-by-client")
    live_writer.append_messages(TENANT, "kept", [user("still here")])
    live_writer.count_requests(["key:abc"])
    counter_key = {"pk": {"S": f"R#key:abc#{int(time.time() // 60)}"}, "sk": {"S": "COUNT"}}
    writes = stream.new_records()
    counter_ttl = stream.expire_by_ttl(counter_key)
    session_ttl = stream.expire_by_ttl(session_key(expired))
    everything = [*writes, counter_ttl, session_ttl]

    # THEN the template's filter lets through exactly the TTL deletion of a session
    assert {r["eventName"] for r in writes} >= {"INSERT", "MODIFY", "REMOVE"}
    assert [r for r in everything if passes_filter(r)] == [session_ttl]

    # AND the handler, given everything unfiltered, acts on that one only
    response = invoke(cleanup, unfiltered_stream_event(everything))
    assert response == {"batchItemFailures": []}
    assert partition(dynamodb_client, dynamodb_table, expired) == []
    assert [m.content for m in live_writer.get_history(TENANT, "kept").messages] == ["still here"]


@pytest.mark.dynamodb
def test_failures_are_reported_record_by_record(
    cleanup: ModuleType,
    writer: DynamoDBSessionStore,
    stream: TableStream,
    dynamodb_client: DynamoDBClient,
    dynamodb_table: str,
) -> None:
    good = expired_session(writer, messages=2)
    broken = stream.expire_by_ttl(session_key(expired_session(writer, messages=1)))
    del broken["dynamodb"]["OldImage"]  # a stream without old images cannot be served
    fine = stream.expire_by_ttl(session_key(good))

    response = invoke(cleanup, stream_event([broken, fine]))

    assert response == {
        "batchItemFailures": [{"itemIdentifier": broken["dynamodb"]["SequenceNumber"]}]
    }
    assert partition(dynamodb_client, dynamodb_table, good) == []


@pytest.mark.dynamodb
def test_records_without_time_left_are_handed_back_for_a_retry(
    cleanup: ModuleType,
    writer: DynamoDBSessionStore,
    stream: TableStream,
    dynamodb_client: DynamoDBClient,
    dynamodb_table: str,
) -> None:
    ids = [expired_session(writer, messages=1) for _ in range(3)]
    records = [stream.expire_by_ttl(session_key(session_id)) for session_id in ids]

    # Less than the safety margin left: the first record is served, the rest go back.
    response = invoke(cleanup, stream_event(records), remaining_ms=1000)

    assert response == {
        "batchItemFailures": [
            {"itemIdentifier": r["dynamodb"]["SequenceNumber"]} for r in records[1:]
        ]
    }
    assert partition(dynamodb_client, dynamodb_table, ids[0]) == []
    retried = invoke(cleanup, stream_event(records[1:]))
    assert retried == {"batchItemFailures": []}
    assert all(partition(dynamodb_client, dynamodb_table, i) == [] for i in ids)


@pytest.mark.dynamodb
def test_other_events_are_refused(cleanup: ModuleType) -> None:
    assert invoke(cleanup, {"Records": []}) == {"batchItemFailures": []}
    with pytest.raises(ValidationFailed):
        invoke(cleanup, {"hello": "world"})


# ------------------------------------------------------------------ schedule


@pytest.mark.dynamodb
def test_schedule_sweeps_expired_sessions_and_orphans_across_runs(
    writer: DynamoDBSessionStore,
    live_writer: DynamoDBSessionStore,
    dynamodb_client: DynamoDBClient,
    dynamodb_table: str,
    table_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN expired sessions TTL has not deleted yet, the orphans of a recreated
    # session, and live sessions
    expired = [expired_session(writer, messages=n) for n in (1, 3, 0, 5)]
    recreated = expired_session(writer, messages=6)
    live_writer.append_messages(TENANT, recreated, [user("fresh")])
    live_writer.append_messages(TENANT, "live", [user("hello")] * 4)
    live_items = [
        *current_items(dynamodb_client, dynamodb_table, recreated),
        *current_items(dynamodb_client, dynamodb_table, "live"),
    ]
    configure(monkeypatch, table_url, IW_SWEEP_MAX_ITEMS="7")
    cleanup = load_function("cleanup").module

    # WHEN the schedule fires until a pass is complete (7 items a run)
    summaries = []
    for _ in range(20):
        summaries.append(invoke(cleanup, scheduled_event()))
        if summaries[-1]["pass_complete"]:
            break
    get_settings.cache_clear()

    # THEN it took several resumed runs and removed all but the live data
    assert len(summaries) > 2 and summaries[-1]["pass_complete"]
    assert sum(s["removed_sessions"] for s in summaries) == len(expired)
    sessions_and_messages = [
        item
        for item in all_items(dynamodb_client, dynamodb_table)
        if item["pk"]["S"].startswith("S#")
    ]
    assert sessions_and_messages == sorted(
        live_items, key=lambda item: (item["pk"]["S"], item["sk"]["S"])
    )
    assert [m.content for m in live_writer.get_history(TENANT, recreated).messages] == ["fresh"]
    assert cleanup.cleanup.store.load_sweep_cursor() is None


@pytest.mark.redis
def test_schedule_prunes_redis_tenant_indexes(
    redis_store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = f"t{uuid.uuid4().hex[:10]}"
    past = RedisSessionStore.from_url(redis_store_url, CIPHER, clock=FakeClock(time.time() - 600))
    now = RedisSessionStore.from_url(redis_store_url, CIPHER)
    for number in range(5):
        past.create_session(tenant, f"old-{number}", ttl_secs=60)
    past.append_messages(tenant, "old-0", [user("x")] * 3)
    now.create_session(tenant, "live", ttl_secs=600)
    now.create_session(tenant, "deleted")
    now.delete_session(tenant, "deleted")
    index = f"tw:idx:{{{tenant}}}"
    assert len(index_members(now, index)) == 7
    configure(monkeypatch, redis_store_url)
    cleanup = load_function("cleanup").module

    summary = invoke(cleanup, scheduled_event())
    get_settings.cache_clear()

    assert summary["pass_complete"]
    # The deleted session's entry stays a minute, guarding a create racing its delete.
    assert index_members(now, index) == ["deleted", "live"]
    assert not now.client.exists(f"tw:{{{tenant}:old-0}}:s", f"tw:{{{tenant}:old-0}}:m")
    assert now.list_sessions(tenant).total == 1
    past.close()
    now.close()


def index_members(store: RedisSessionStore, index: str) -> list[str]:
    members = cast("list[bytes]", store.client.zrange(index, 0, -1))
    return sorted(member.decode() for member in members)


# ------------------------------------------------------------------ lifecycle events


@pytest.fixture
def bus(dynamodb_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[EventInbox]:
    """A moto EventBridge bus whose turnwall events land in an SQS queue."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_EVENTBRIDGE", dynamodb_endpoint)
    inbox = EventInbox(dynamodb_endpoint, f"turnwall-{uuid.uuid4().hex[:8]}")
    yield inbox
    inbox.close()


class EventInbox:
    def __init__(self, endpoint: str, name: str) -> None:
        self.name = name
        self.events = boto3.client("events", endpoint_url=endpoint, region_name=REGION)
        self.sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=REGION)
        self.events.create_event_bus(Name=name)
        self.queue = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.events.put_rule(
            Name=name, EventBusName=name, EventPattern=json.dumps({"source": ["turnwall"]})
        )
        self.events.put_targets(
            Rule=name, EventBusName=name, Targets=[{"Id": "inbox", "Arn": queue_arn}]
        )

    def received(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10)
            if not messages.get("Messages"):
                return events
            for message in messages["Messages"]:
                events.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"])

    def close(self) -> None:
        self.events.remove_targets(Rule=self.name, EventBusName=self.name, Ids=["inbox"])
        self.events.delete_rule(Name=self.name, EventBusName=self.name)
        self.events.close()
        self.sqs.close()
        self.events.delete_event_bus(Name=self.name)
        self.sqs.delete_queue(QueueUrl=self.queue)


@pytest.mark.dynamodb
def test_expiry_and_deletion_are_published(
    bus: EventInbox,
    writer: DynamoDBSessionStore,
    stream: TableStream,
    table_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    by_ttl = expired_session(writer, messages=2)
    by_sweep = expired_session(writer, messages=3)
    expected_at = {session_id: iso(writer, session_id) for session_id in (by_ttl, by_sweep)}
    configure(monkeypatch, table_url, IW_EVENT_BUS_NAME=bus.name)
    cleanup = load_function("cleanup").module
    delete = load_function("delete")
    delete.store.append_messages(TENANT, "to-delete", [user("a")] * 4)

    invoke(cleanup, stream_event([stream.expire_by_ttl(session_key(by_ttl))]))
    invoke(cleanup, scheduled_event())
    deleted = delete.invoke("DELETE", "/v1/sessions/to-delete")
    get_settings.cache_clear()

    assert deleted.status == 200
    received = {(e["detail-type"], e["detail"]["session_id"]): e for e in bus.received()}
    assert set(received) == {
        ("Session Deleted", "to-delete"),
        ("Session Expired", by_sweep),
        ("Session Expired", by_ttl),
    }
    assert all(e["source"] == "turnwall" for e in received.values())
    assert received[("Session Expired", by_ttl)]["detail"] == {
        "tenant": TENANT,
        "session_id": by_ttl,
        "message_count": 2,
        "at": expected_at[by_ttl],
    }
    assert received[("Session Expired", by_sweep)]["detail"]["message_count"] == 3
    assert received[("Session Expired", by_sweep)]["detail"]["at"] == expected_at[by_sweep]
    assert received[("Session Deleted", "to-delete")]["detail"]["message_count"] == 4


@pytest.mark.dynamodb
def test_deleting_by_prefix_publishes_one_event_per_session(
    bus: EventInbox, table_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, table_url, IW_EVENT_BUS_NAME=bus.name)
    delete = load_function("delete")
    prefix = f"user:{uuid.uuid4().hex[:8]}:"
    for n in range(3):
        delete.store.append_messages(TENANT, f"{prefix}{n}", [user("a")] * (n + 1))

    by_scan_key = delete.invoke("DELETE", "/v1/sessions", key=SCAN_KEY, query={"prefix": prefix})
    first = delete.invoke("DELETE", "/v1/sessions", query={"prefix": prefix, "limit": "2"})
    second = delete.invoke("DELETE", "/v1/sessions", query={"prefix": prefix, "limit": "2"})
    get_settings.cache_clear()

    assert by_scan_key.status == 403  # a bulk operation: admin keys only
    assert first.status == 200 and first.body == {
        "prefix": prefix,
        "deleted_count": 2,
        "session_ids": [f"{prefix}0", f"{prefix}1"],
        "remaining": 1,
    }
    assert second.body["session_ids"] == [f"{prefix}2"] and second.body["remaining"] == 0
    received = {e["detail"]["session_id"]: e for e in bus.received()}
    assert set(received) == {f"{prefix}{n}" for n in range(3)}
    assert all(e["detail-type"] == "Session Deleted" for e in received.values())
    assert [received[f"{prefix}{n}"]["detail"]["message_count"] for n in range(3)] == [1, 2, 3]


def iso(store: DynamoDBSessionStore, session_id: str) -> str:
    from turnwall.models import iso_utc

    record = store._read(TENANT, session_id)
    assert record is not None
    return iso_utc(record.expires_at)


@pytest.mark.dynamodb
def test_a_failed_publish_fails_the_record_and_a_retry_publishes(
    bus: EventInbox,
    writer: DynamoDBSessionStore,
    stream: TableStream,
    dynamodb_client: DynamoDBClient,
    dynamodb_table: str,
    table_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    session_id = expired_session(writer, messages=2)
    record = stream.expire_by_ttl(session_key(session_id))
    configure(monkeypatch, table_url, IW_EVENT_BUS_NAME="no-such-bus")
    broken = load_function("cleanup").module
    configure(monkeypatch, table_url, IW_EVENT_BUS_NAME=bus.name)
    working = load_function("cleanup").module
    get_settings.cache_clear()

    failed = invoke(broken, stream_event([record]))
    retried = invoke(working, stream_event([record]))

    assert failed == {
        "batchItemFailures": [{"itemIdentifier": record["dynamodb"]["SequenceNumber"]}]
    }
    assert retried == {"batchItemFailures": []}
    assert partition(dynamodb_client, dynamodb_table, session_id) == []
    assert [e["detail"]["session_id"] for e in bus.received()] == [session_id]


@pytest.mark.dynamodb
def test_delete_answers_200_even_when_the_event_is_lost(
    dynamodb_endpoint: str, table_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_EVENTBRIDGE", dynamodb_endpoint)
    configure(monkeypatch, table_url, IW_EVENT_BUS_NAME="no-such-bus")
    delete = load_function("delete")
    delete.store.create_session(TENANT, "doomed")

    response = delete.invoke("DELETE", "/v1/sessions/doomed")
    again = delete.invoke("DELETE", "/v1/sessions/doomed")
    get_settings.cache_clear()

    assert response.status == 200 and response.body == {"deleted": True, "session_id": "doomed"}
    assert again.status == 404


# ------------------------------------------------------------------ deployment


def test_a_redis_backed_cleanup_function_never_imports_boto3(redis_store_url: str) -> None:
    probe = (
        "import importlib.util, sys; "
        "spec = importlib.util.spec_from_file_location('app', 'functions/cleanup/app.py'); "
        "app = importlib.util.module_from_spec(spec); spec.loader.exec_module(app); "
        "app.cleanup.run_schedule(); "
        "sys.exit('boto3' in sys.modules)"
    )
    environment = {
        **os.environ,
        "IW_STORE_URL": redis_store_url,
        "IW_ENCRYPTION_KEYS": ENCRYPTION_KEY,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "shared"), str(ROOT)]),
    }
    environment.pop("IW_EVENT_BUS_NAME", None)

    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=environment, check=False)

    assert done.returncode == 0


def test_the_template_wires_stream_schedule_and_dead_letter_queue() -> None:
    template = load_template()
    resources, parameters = template["Resources"], template["Parameters"]
    function = resources["CleanupFunction"]["Properties"]
    mapping = resources["CleanupStreamMapping"]

    assert function["CodeUri"] == "functions/cleanup/"
    assert template["Globals"]["Function"]["Handler"] == "app.handler"
    assert function["Events"]["Sweep"] == {
        "Type": "Schedule",
        "Properties": {
            "Schedule": {"Ref": "CleanupRate"},
            "Description": function["Events"]["Sweep"]["Properties"]["Description"],
        },
    }
    assert parameters["CleanupRate"]["Default"] == "rate(5 minutes)"
    assert parameters["EventBusName"]["Default"] == ""
    assert mapping["Condition"] == "UseDynamoDB"
    assert mapping["Properties"]["FunctionName"] == {"Ref": "CleanupFunction"}
    assert mapping["Properties"]["EventSourceArn"] == {"Fn::GetAtt": ["SessionsTable", "StreamArn"]}
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["Properties"]["BisectBatchOnFunctionError"] is True
    assert mapping["Properties"]["MaximumRetryAttempts"] >= 1
    assert mapping["Properties"]["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["CleanupDeadLetterQueue", "Arn"]
    }
    assert resources["CleanupDeadLetterQueue"]["Type"] == "AWS::SQS::Queue"
    assert resources["CleanupFunctionLogs"]["Properties"]["RetentionInDays"] == {
        "Ref": "LogRetentionDays"
    }
    # events:PutEvents only when a bus is named
    put_events = [
        policy
        for policy in function["Policies"]
        if "Fn::If" in policy and policy["Fn::If"][0] == "HasEventBus"
    ]
    assert len(put_events) == 1
    assert put_events[0]["Fn::If"][1]["Statement"][0]["Action"] == "events:PutEvents"
