"""Which DynamoDB stream records the cleanup function acts on (`ttl_deletion_of`),
read through Powertools' `DynamoDBRecord` as the batch processor hands them over."""

from __future__ import annotations

from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from turnwall.cleanup import TtlDeletion, ttl_deletion_of
from turnwall.errors import ValidationFailed

TTL = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
SESSION_IMAGE = {
    "pk": {"S": "S#acme#s1"},
    "sk": {"S": "SESSION"},
    "tenant": {"S": "acme"},
    "session_id": {"S": "s1"},
    "incarnation": {"S": "18bcfe568fa2475711d"},
    "message_count": {"N": "3"},
    "expires_at_exact": {"N": "1700000601.875"},
    "expires_at": {"N": "1700000602"},
}


def record(
    sort_key: str = "SESSION",
    event_name: str = "REMOVE",
    identity: dict[str, str] | None = TTL,
    old_image: dict[str, Any] | None = SESSION_IMAGE,
) -> DynamoDBRecord:
    change: dict[str, Any] = {"Keys": {"pk": {"S": "S#acme#s1"}, "sk": {"S": sort_key}}}
    if old_image is not None:
        change["OldImage"] = old_image
    raw: dict[str, Any] = {"eventSource": "aws:dynamodb", "eventName": event_name}
    raw["dynamodb"] = change
    if identity is not None:
        raw["userIdentity"] = identity
    return DynamoDBRecord(raw)


def test_a_ttl_deletion_of_a_session_names_its_incarnation() -> None:
    assert ttl_deletion_of(record()) == TtlDeletion(
        tenant="acme",
        session_id="s1",
        incarnation="18bcfe568fa2475711d",
        message_count=3,
        expired_at=1700000601.875,
    )


@pytest.mark.parametrize(
    "other",
    [
        record(event_name="INSERT"),
        record(event_name="MODIFY"),
        record(identity=None),  # deleted by a client: an explicit delete, the sweep
        record(identity={"type": "Service", "principalId": "someone.else.com"}),
        record(sort_key="COUNT"),  # a rate counter reclaimed by TTL
    ],
)
def test_every_other_record_is_ignored(other: DynamoDBRecord) -> None:
    assert ttl_deletion_of(other) is None


@pytest.mark.parametrize("image", [None, {}, {**SESSION_IMAGE, "message_count": {"S": "three"}}])
def test_a_ttl_deletion_without_a_usable_old_image_is_refused(
    image: dict[str, Any] | None,
) -> None:
    with pytest.raises(ValidationFailed, match="NEW_AND_OLD_IMAGES"):
        ttl_deletion_of(record(old_image=image))
