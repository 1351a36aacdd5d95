"""Events for the cleanup function, adapted from `sam local generate-event` output.

events/dynamodb-update.json (``sam local generate-event dynamodb update``) and
events/schedule.json (``sam local generate-event cloudwatch scheduled-event``) are kept
verbatim as the envelopes. The stream records inside are real: read from moto's
DynamoDB stream of the test's table after the test deleted an item the way DynamoDB's
TTL process does, then marked with the ``userIdentity`` DynamoDB adds to TTL deletions.
The template's own FilterCriteria pattern decides which records reach the handler.
"""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3

from tests.support.events import ROOT, LambdaContext
from turnwall.stores.dynamodb.table import load_template

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_STREAM_BASE: dict[str, Any] = json.loads((ROOT / "events" / "dynamodb-update.json").read_text())
_SCHEDULE_BASE: dict[str, Any] = json.loads((ROOT / "events" / "schedule.json").read_text())
TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


@dataclass(frozen=True)
class TimedContext(LambdaContext):
    """A Lambda context that also tells the remaining time, as the real one does."""

    remaining_ms: int = 120_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def stream_filter() -> list[dict[str, Any]]:
    """The FilterCriteria patterns of the template's stream mapping."""
    mapping = load_template()["Resources"]["CleanupStreamMapping"]["Properties"]
    return [json.loads(entry["Pattern"]) for entry in mapping["FilterCriteria"]["Filters"]]


def passes_filter(record: dict[str, Any]) -> bool:
    """Whether Lambda's event filtering lets `record` through (the subset of the
    pattern syntax the template uses: nested objects and lists of exact values)."""
    return any(_matches(pattern, record) for pattern in stream_filter())


def _matches(pattern: Any, value: Any) -> bool:
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            key in value and _matches(sub, value[key]) for key, sub in pattern.items()
        )
    return value in pattern


class TableStream:
    """The DynamoDB stream of one moto table, read from its start."""

    def __init__(self, endpoint: str, client: DynamoDBClient, table: str) -> None:
        self.client = client
        self.table = table
        self.streams = boto3.client(
            "dynamodbstreams", endpoint_url=endpoint, region_name="us-east-1"
        )
        self.arn: str = client.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        self.seen: set[str] = set()

    def close(self) -> None:
        """Release the streams client's connections (the table client is the caller's)."""
        self.streams.close()

    def new_records(self) -> list[dict[str, Any]]:
        """Records not returned before, in Lambda's event shape (not yet TTL-marked)."""
        records: list[dict[str, Any]] = []
        shards = self.streams.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"]
        for shard in shards:
            iterator = self.streams.get_shard_iterator(
                StreamArn=self.arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            while iterator:
                page = self.streams.get_records(ShardIterator=iterator, Limit=1000)
                if not page["Records"]:
                    break
                records += [self._as_lambda_record(raw) for raw in page["Records"]]
                iterator = page.get("NextShardIterator")
        fresh = [r for r in records if r["eventID"] not in self.seen]
        self.seen.update(r["eventID"] for r in fresh)
        return fresh

    def expire_by_ttl(self, key: dict[str, Any]) -> dict[str, Any]:
        """Delete an item as DynamoDB's TTL process does; its REMOVE record, TTL-marked."""
        self.new_records()  # everything before is not this deletion
        self.client.delete_item(TableName=self.table, Key=key)
        [record] = [r for r in self.new_records() if r["eventName"] == "REMOVE"]
        return {**record, "userIdentity": dict(TTL_IDENTITY)}

    def _as_lambda_record(self, raw: dict[str, Any]) -> dict[str, Any]:
        # The REMOVE record of the generated event supplies the envelope fields.
        record: dict[str, Any] = copy.deepcopy(_STREAM_BASE["Records"][-1])
        change = copy.deepcopy(raw["dynamodb"])
        created = change["ApproximateCreationDateTime"]
        if isinstance(created, datetime):
            change["ApproximateCreationDateTime"] = int(created.timestamp())
        record.update(
            eventID=raw["eventID"],
            eventName=raw["eventName"],
            awsRegion=raw.get("awsRegion", record["awsRegion"]),
            dynamodb=change,
            eventSourceARN=self.arn,
        )
        record.pop("userIdentity", None)
        return record


def stream_event(records: list[dict[str, Any]]) -> dict[str, Any]:
    """A stream batch as Lambda delivers it after the template's filter."""
    return {"Records": [copy.deepcopy(r) for r in records if passes_filter(r)]}


def unfiltered_stream_event(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": copy.deepcopy(records)}


def scheduled_event() -> dict[str, Any]:
    event = copy.deepcopy(_SCHEDULE_BASE)
    event["id"] = str(uuid.uuid4())
    event["time"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    event["resources"] = ["arn:aws:events:us-east-1:123456789012:rule/turnwall-cleanup-sweep"]
    return event
