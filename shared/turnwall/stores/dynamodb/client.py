"""The boundary to boto3: the sessions table, spoken to in plain Python values.

`SessionsTable` is the only code that calls the boto3 client. Its requests take and
its answers give plain values (str is S, int/float/Decimal is N, bytes is B, dict is
M), which boto3's `TypeSerializer`/`TypeDeserializer` turn into attribute values and
back; the ``#name`` placeholders of an expression are the attribute names themselves
and are filled in here.

Every call goes through `_translated_errors`, the one place that reads botocore's
errors. Retries come from two places only: botocore's standard retry mode
(`CLIENT_CONFIG`) for throttling and transport errors, and the shared full-jitter
back-off for what botocore does not retry: a single-item write that ran into a
transaction, and items a batch request left unprocessed.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, NamedTuple, TypeVar, cast

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError, NoCredentialsError, NoRegionError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from turnwall.errors import ConcurrentUpdate, ConfigurationError, StoreUnavailable
from turnwall.stores.retry import back_off

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.literals import ReturnValueType
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        KeysAndAttributesTypeDef,
        TransactWriteItemTypeDef,
        WriteRequestTypeDef,
    )

_T = TypeVar("_T")

Item = dict[str, Any]
"""An item, key or set of expression values as plain Python values."""

# A dead or throttling backend must give a fast 503, not hang until the Lambda timeout;
# the local server calls from a thread pool, hence the larger connection pool.
CLIENT_CONFIG: Final = Config(
    connect_timeout=1,
    read_timeout=2,
    retries={"mode": "standard", "max_attempts": 2},
    max_pool_connections=32,
)

# DynamoDB limits: a BatchWriteItem takes 25 requests, a BatchGetItem 100 keys.
_BATCH_WRITE_REQUESTS: Final = 25
_BATCH_GET_KEYS: Final = 100
_BATCH_ATTEMPTS: Final = 8
_CONFLICT_ATTEMPTS: Final = 8
# Throttled batches and transaction conflicts wait longer than a lost optimistic race.
_BACK_OFF: Final = {"base_secs": 0.01, "cap_secs": 0.5}

_UNAVAILABLE_CODES: Final = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
    }
)
_UNAVAILABLE_REASONS: Final = frozenset(
    {"ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"}
)
_LOST_RACE_REASONS: Final = frozenset({"ConditionalCheckFailed", "TransactionConflict"})
_PLACEHOLDER: Final = re.compile(r"#\w+")


class ConditionFailed(Exception):
    """A conditional write or transaction found the item in another state: a lost race."""


class _ItemInTransaction(Exception):
    """A single-item write collided with a transaction in progress on that item."""


def new_client(
    region_name: str | None, endpoint_url: str | None, read_timeout: float | None = None
) -> DynamoDBClient:
    """A client with `CLIENT_CONFIG` (`read_timeout` replacing its 2 s).

    Raises:
        ConfigurationError: no AWS region anywhere.
    """
    config = CLIENT_CONFIG
    if read_timeout is not None:
        config = config.merge(Config(read_timeout=read_timeout))
    try:
        return boto3.session.Session().client(
            "dynamodb", region_name=region_name, endpoint_url=endpoint_url, config=config
        )
    except NoRegionError as exc:
        raise ConfigurationError(
            "the DynamoDB store needs an AWS region: add ?region=... to IW_STORE_URL "
            "or set AWS_DEFAULT_REGION"
        ) from exc


class Page(NamedTuple):
    """One page of a query or scan."""

    items: list[Item]
    last_key: Item | None
    scanned: int


class SessionsTable:
    """One DynamoDB table behind a boto3 client. Single-item writes raise
    `ConditionFailed` when their condition does not hold."""

    def __init__(self, client: DynamoDBClient, name: str) -> None:
        self.client = client
        self.name = name

    def get(
        self, key: Item, *, projection: str | None = None, consistent: bool = True
    ) -> Item | None:
        request: dict[str, Any] = {"ConsistentRead": consistent}
        if projection is not None:
            request.update(
                ProjectionExpression=projection, ExpressionAttributeNames=_names(projection)
            )
        answer = self._call(
            self.client.get_item, TableName=self.name, Key=to_attributes(key), **request
        )
        return None if "Item" not in answer else from_attributes(answer["Item"])

    def put(self, item: Item, *, condition: str | None = None, values: Item | None = None) -> None:
        self._write(
            self.client.put_item,
            TableName=self.name,
            Item=to_attributes(item),
            **_conditions(condition, values),
        )

    def update(
        self,
        key: Item,
        updates: str,
        *,
        condition: str | None = None,
        values: Item | None = None,
        returns: ReturnValueType = "NONE",
    ) -> Item:
        """Update one item; the attributes `returns` asks for."""
        request = _conditions(condition, values, updates)
        answer = self._write(
            self.client.update_item,
            TableName=self.name,
            Key=to_attributes(key),
            UpdateExpression=updates,
            ReturnValues=returns,
            **request,
        )
        return from_attributes(answer.get("Attributes", {}))

    def delete(
        self,
        key: Item,
        *,
        condition: str | None = None,
        values: Item | None = None,
        return_old: bool = False,
    ) -> Item | None:
        """Delete one item; with `return_old`, what it held (None if there was none)."""
        answer = self._write(
            self.client.delete_item,
            TableName=self.name,
            Key=to_attributes(key),
            ReturnValues="ALL_OLD" if return_old else "NONE",
            **_conditions(condition, values),
        )
        return None if "Attributes" not in answer else from_attributes(answer["Attributes"])

    def query(
        self,
        key_condition: str,
        values: Item,
        *,
        index: str | None = None,
        filter: str | None = None,
        projection: str | None = None,
        limit: int | None = None,
        start: Item | None = None,
    ) -> Page:
        """One page of a query; strongly consistent on the table (an index cannot be)."""
        request = _read_request(key_condition, values, filter, projection, limit, start)
        if index is None:
            request["ConsistentRead"] = True
        else:
            request["IndexName"] = index
        answer = self._call(
            self.client.query, TableName=self.name, KeyConditionExpression=key_condition, **request
        )
        return _page(answer["Items"], answer.get("LastEvaluatedKey"), answer["ScannedCount"])

    def query_all(
        self, key_condition: str, values: Item, *, projection: str | None = None
    ) -> list[Item]:
        """Every item a strongly consistent query on the table finds."""
        items: list[Item] = []
        start: Item | None = None
        while True:
            page = self.query(key_condition, values, projection=projection, start=start)
            items += page.items
            if page.last_key is None:
                return items
            start = page.last_key

    def count(self, key_condition: str, values: Item, *, index: str, filter: str) -> int:
        """How many items a query on `index` finds, all pages counted."""
        request = _read_request(key_condition, values, filter, None, None, None)
        total = 0
        while True:
            answer = self._call(
                self.client.query,
                TableName=self.name,
                KeyConditionExpression=key_condition,
                IndexName=index,
                Select="COUNT",
                **request,
            )
            total += answer["Count"]
            if "LastEvaluatedKey" not in answer:
                return total
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def scan(
        self,
        filter: str,
        values: Item,
        *,
        limit: int,
        projection: str | None = None,
        start: Item | None = None,
        consistent: bool = False,
    ) -> Page:
        """One page of a table scan; `limit` bounds the items read before the filter."""
        request = _read_request(None, values, filter, projection, limit, start)
        if consistent:
            request["ConsistentRead"] = True
        answer = self._call(self.client.scan, TableName=self.name, **request)
        return _page(answer["Items"], answer.get("LastEvaluatedKey"), answer["ScannedCount"])

    def transact(self, actions: Sequence[TransactWriteItemTypeDef]) -> None:
        """Commit `actions` (made by `put_action`, `update_action`) all or none.

        botocore adds a ClientRequestToken, so its own retries of a commit whose
        answer was lost are idempotent.

        Raises:
            ConditionFailed: a condition failed or a transaction conflicted.
        """
        self._call(self.client.transact_write_items, TransactItems=list(actions))

    def put_action(
        self, item: Item, *, condition: str | None = None, values: Item | None = None
    ) -> TransactWriteItemTypeDef:
        put = {"TableName": self.name, "Item": to_attributes(item)}
        return cast("TransactWriteItemTypeDef", {"Put": {**put, **_conditions(condition, values)}})

    def update_action(
        self, key: Item, updates: str, *, condition: str, values: Item
    ) -> TransactWriteItemTypeDef:
        update = {"TableName": self.name, "Key": to_attributes(key), "UpdateExpression": updates}
        return cast(
            "TransactWriteItemTypeDef",
            {"Update": {**update, **_conditions(condition, values, updates)}},
        )

    def get_many(self, keys: Sequence[Item], *, projection: str) -> list[Item]:
        """The items stored under `keys` (strongly consistent), in no particular order.

        Raises:
            StoreUnavailable: DynamoDB kept leaving keys unprocessed.
        """
        found: list[Item] = []
        for start in range(0, len(keys), _BATCH_GET_KEYS):
            request: dict[str, KeysAndAttributesTypeDef] = {
                self.name: {
                    "Keys": [to_attributes(key) for key in keys[start : start + _BATCH_GET_KEYS]],
                    "ProjectionExpression": projection,
                    "ExpressionAttributeNames": _names(projection),
                    "ConsistentRead": True,
                }
            }

            def get_batch(request: dict[str, KeysAndAttributesTypeDef]) -> dict[str, Any]:
                answer = self._call(self.client.batch_get_item, RequestItems=request)
                found.extend(map(from_attributes, answer.get("Responses", {}).get(self.name, [])))
                return dict(answer.get("UnprocessedKeys") or {})

            self._until_processed(get_batch, request, "reads")
        return found

    def delete_many(self, keys: Sequence[Item]) -> None:
        """Delete the items under `keys`, 25 to a request.

        Raises:
            StoreUnavailable: DynamoDB kept leaving deletions unprocessed.
        """
        for start in range(0, len(keys), _BATCH_WRITE_REQUESTS):
            requests: list[WriteRequestTypeDef] = [
                {"DeleteRequest": {"Key": to_attributes(key)}}
                for key in keys[start : start + _BATCH_WRITE_REQUESTS]
            ]

            def write_batch(requests: list[WriteRequestTypeDef]) -> list[WriteRequestTypeDef]:
                answer = self._call(
                    self.client.batch_write_item, RequestItems={self.name: requests}
                )
                unprocessed = answer.get("UnprocessedItems", {}).get(self.name, [])
                return cast("list[WriteRequestTypeDef]", unprocessed)

            self._until_processed(write_batch, requests, "deletions")

    # ---------------------------------------------------------------- the boundary

    def _call(self, operation: Callable[..., _T], **request: Any) -> _T:
        with _translated_errors(self.name):
            return operation(**request)

    def _write(self, operation: Callable[..., _T], **request: Any) -> _T:
        """Run a single-item write, retrying while a transaction holds the item.

        Those collisions (TransactionConflictException) are not retried by botocore,
        and must not read as a failed condition: that would mean "no such session".
        """
        for attempt in range(_CONFLICT_ATTEMPTS):
            try:
                return self._call(operation, **request)
            except _ItemInTransaction:
                back_off(attempt, **_BACK_OFF)
        raise ConcurrentUpdate("the session is busy with concurrent writes; try again")

    def _until_processed(self, send: Callable[[_T], _T], request: _T, what: str) -> None:
        """Send a batch `request`, then what DynamoDB left unprocessed, until nothing is."""
        for attempt in range(_BATCH_ATTEMPTS):
            request = send(request)
            if not request:
                return
            back_off(attempt, **_BACK_OFF)
        raise StoreUnavailable(f"DynamoDB table {self.name!r} kept throttling batch {what}")


# -------------------------------------------------------------------- values


class _Deserializer(TypeDeserializer):
    """boto3's deserializer, giving bytes for B instead of its `Binary` wrapper."""

    def _deserialize_b(self, value: bytes) -> bytes:
        return value


_SERIALIZER: Final = TypeSerializer()
_DESERIALIZER: Final = _Deserializer()


def to_attributes(values: Mapping[str, Any]) -> dict[str, AttributeValueTypeDef]:
    """Attribute values for plain `values`.

    TypeSerializer refuses floats, so a float goes in as the Decimal of its repr, the
    shortest text that reads back as the same float (DynamoDB keeps 38 digits). For
    every float from 1e-4 to 1e16 (times, durations) that is the repr itself, as the
    hand-written codec sent it; beyond, only the spelling of the exponent differs
    ("1E+16"), and DynamoDB stores numbers by value.
    """
    return {name: _SERIALIZER.serialize(_exact(value)) for name, value in values.items()}


def from_attributes(attributes: Mapping[str, Any]) -> Item:
    """Plain values for an item's attribute values: numbers as Decimal, B as bytes."""
    return {name: _DESERIALIZER.deserialize(value) for name, value in attributes.items()}


def _exact(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {name: _exact(inner) for name, inner in value.items()}
    return value


def _names(*expressions: str | None) -> dict[str, str]:
    """ExpressionAttributeNames for every ``#name`` placeholder used (and no other,
    which DynamoDB refuses); placeholders are the attribute names themselves."""
    return {
        placeholder: placeholder[1:]
        for expression in expressions
        if expression
        for placeholder in _PLACEHOLDER.findall(expression)
    }


def _conditions(
    condition: str | None, values: Item | None, updates: str | None = None
) -> dict[str, Any]:
    """The condition, names and values parts of a write request."""
    request: dict[str, Any] = {}
    if condition is not None:
        request["ConditionExpression"] = condition
    names = _names(condition, updates)
    if names:
        request["ExpressionAttributeNames"] = names
    if values:
        request["ExpressionAttributeValues"] = to_attributes(values)
    return request


def _read_request(
    key_condition: str | None,
    values: Item,
    filter: str | None,
    projection: str | None,
    limit: int | None,
    start: Item | None,
) -> dict[str, Any]:
    request: dict[str, Any] = {
        "ExpressionAttributeNames": _names(key_condition, filter, projection),
        "ExpressionAttributeValues": to_attributes(values),
    }
    if filter is not None:
        request["FilterExpression"] = filter
    if projection is not None:
        request["ProjectionExpression"] = projection
    if limit is not None:
        request["Limit"] = limit
    if start is not None:
        request["ExclusiveStartKey"] = to_attributes(start)
    return request


def _page(items: list[Any], last_key: Mapping[str, Any] | None, scanned: int) -> Page:
    return Page(
        [from_attributes(item) for item in items],
        None if last_key is None else from_attributes(last_key),
        scanned,
    )


@contextmanager
def _translated_errors(table_name: str) -> Iterator[None]:
    """The one place that reads botocore's errors and turns them into Turnwall's.

    Transport failures, timeouts, throttling, 5xx and a missing table become
    `StoreUnavailable`; a failed condition, or a transaction cancelled only by failed
    conditions and conflicts, becomes `ConditionFailed`, which the hooks report as a
    lost race; a single-item write that hit a running transaction becomes
    `_ItemInTransaction`, which `SessionsTable._write` retries. Anything else is a
    bug and propagates unchanged.
    """
    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code == "ConditionalCheckFailedException":
            raise ConditionFailed from exc
        if code == "TransactionConflictException":
            raise _ItemInTransaction from exc
        if code == "TransactionCanceledException":
            reasons = {
                reason.get("Code", "None") for reason in exc.response.get("CancellationReasons", [])
            } - {"None"}
            if reasons & _UNAVAILABLE_REASONS:
                raise StoreUnavailable(
                    f"DynamoDB table {table_name!r} is throttling requests"
                ) from exc
            if reasons and reasons <= _LOST_RACE_REASONS:
                raise ConditionFailed from exc
            raise
        if code == "ResourceNotFoundException":
            raise StoreUnavailable(f"DynamoDB table {table_name!r} does not exist") from exc
        if code in _UNAVAILABLE_CODES or status >= 500:
            raise StoreUnavailable(
                f"DynamoDB table {table_name!r} is unavailable or throttling ({code})"
            ) from exc
        raise
    except (BotocoreConnectionError, HTTPClientError) as exc:
        raise StoreUnavailable(f"cannot reach DynamoDB for table {table_name!r}") from exc
    except NoCredentialsError as exc:
        raise ConfigurationError("no AWS credentials were found for the DynamoDB store") from exc
