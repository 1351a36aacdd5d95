"""The DynamoDB store (`dynamodb://TABLE?region=...&endpoint_url=...`).

One table, template.yaml's ``SessionsTable``; every item of a session shares
``pk = S#<tenant>#<session_id>``::

    sk = SESSION                           the session: readable bookkeeping, sealed
                                           metadata and risk; only this item carries
                                           `tenant` and `session_id`, the keys of the
                                           sparse TenantSessions index used for listing
    sk = M#<incarnation>#<seq:010d>        one message: seq, role, created_at, sealed blob
    sk = M#<incarnation>#<seq:010d>#<nnn>  the rest of a blob too big for one item

and beside the sessions::

    pk = KEYS,                sk = <key digest>   an API key record (few: one partition)
    pk = R#<bucket>#<window>, sk = COUNT          a rate-limit counter, removed by TTL
    pk = I#<tenant>,          sk = <key digest>   a sealed idempotency record, removed by TTL
    pk = SWEEP,               sk = CURSOR         where the scheduled sweep stopped

Message keys carry the session's incarnation, so a session recreated after expiry
never sees its predecessor's messages; those stay behind as orphans for the cleanup
function. Expiry is compared with the caller's clock on every read and in every
condition (``expires_at_exact``); DynamoDB's own TTL deletion, driven by the
whole-second ``expires_at``, only reclaims space, up to ~48 h late.

Cleanup comes from two sides. A TTL deletion of a session item reaches the cleanup
function through the table's stream (`ttl_deletion_of` reads the record), which
purges the messages of exactly that incarnation. The scheduled sweep scans the table
page by page: session items expired but not yet deleted are purged like TTL ones, and
message items whose incarnation is not the stored session's (recreated sessions,
deletes that failed part-way) are deleted. Messages of the stored incarnation are
never touched by either, so a live session keeps everything.

Creates and appends are conditional writes or transactions, never read-modify-write.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import random
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError, NoCredentialsError, NoRegionError
from botocore.exceptions import (
    ConnectionError as BotocoreConnectionError,
)

from turnwall.auth import ApiKeyRecord
from turnwall.errors import (
    ConcurrentUpdate,
    ConfigurationError,
    InvalidCursor,
    StoreUnavailable,
    ValidationFailed,
)
from turnwall.stores.base import (
    EndedSession,
    SessionRecord,
    SessionStore,
    StoredMessage,
    SweepReport,
    Touch,
    out_of_time,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        KeysAndAttributesTypeDef,
        QueryInputTypeDef,
        ScanInputTypeDef,
        TransactWriteItemTypeDef,
        UpdateItemOutputTypeDef,
        WriteRequestTypeDef,
    )

    from turnwall.auth import KeyRole
    from turnwall.crypto import Cipher
    from turnwall.stores.base import ExpiryCallback, Version
    from turnwall.validation import Limits

    _Item = dict[str, AttributeValueTypeDef]

_T = TypeVar("_T")

# The table's shape; tests check these against template.yaml, the source of truth.
PARTITION_KEY: Final = "pk"
SORT_KEY: Final = "sk"
SESSION_SORT_KEY: Final = "SESSION"
TENANT_INDEX: Final = "TenantSessions"
TTL_ATTRIBUTE: Final = "expires_at"
API_KEYS_PARTITION: Final = "KEYS"
COUNTER_SORT_KEY: Final = "COUNT"
MESSAGE_SORT_KEY_PREFIX: Final = "M#"
SWEEP_CURSOR_KEY: Final = {PARTITION_KEY: "SWEEP", SORT_KEY: "CURSOR"}
# Who DynamoDB names in the stream record of a deletion by its TTL process.
TTL_SERVICE_PRINCIPAL: Final = "dynamodb.amazonaws.com"

_TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")
_URL_OPTIONS: Final = frozenset({"region", "endpoint_url", "read_timeout"})

# DynamoDB limits: an item holds at most 400 KB (names and values), a transaction at
# most 100 actions and 4 MB in all, a BatchWriteItem 25 requests.
_ITEM_BLOB_BYTES: Final = 350_000
_ITEM_OVERHEAD_BYTES: Final = 512
_MAX_TRANSACTION_ACTIONS: Final = 100
_MAX_TRANSACTION_BYTES: Final = 4_000_000
_BATCH_WRITE_REQUESTS: Final = 25
_BATCH_GET_KEYS: Final = 100
_SWEEP_PAGE_ITEMS: Final = 500
_BATCH_WRITE_ATTEMPTS: Final = 8
_CONFLICT_ATTEMPTS: Final = 8

# A dead or throttling backend must give a fast 503, not hang until the Lambda timeout;
# the local server calls from a thread pool, hence the larger connection pool.
CLIENT_CONFIG: Final = Config(
    connect_timeout=1,
    read_timeout=2,
    retries={"mode": "standard", "max_attempts": 2},
    max_pool_connections=32,
)

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
    {
        "ThrottlingError",
        "ProvisionedThroughputExceeded",
        "RequestLimitExceeded",
    }
)
_LOST_RACE_REASONS: Final = frozenset({"ConditionalCheckFailed", "TransactionConflict"})


class DynamoDBSessionStore(SessionStore):
    """Sessions in one DynamoDB table: a session item plus one item per message."""

    def __init__(
        self,
        table_name: str,
        cipher: Cipher,
        limits: Limits | None = None,
        clock: Callable[[], float] | None = None,
        *,
        boto3_client: DynamoDBClient | None = None,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        read_timeout: float | None = None,
    ) -> None:
        """Use `boto3_client` when given, else a client of its own for the region/endpoint
        (`read_timeout` replaces the 2 s default, for slow local emulators).

        Raises:
            ConfigurationError: a bad table name, both a client and client settings,
                or no AWS region anywhere.
        """
        super().__init__(cipher, limits, clock)
        if not _TABLE_NAME.fullmatch(table_name):
            raise ConfigurationError(
                f"DynamoDB table name {table_name!r} must be 3-255 characters from [A-Za-z0-9_.-]"
            )
        if boto3_client is not None and (region_name or endpoint_url):
            raise ConfigurationError("pass either boto3_client or region_name/endpoint_url")
        self.table_name = table_name
        self._owns_client = boto3_client is None
        self.client: DynamoDBClient = boto3_client or _new_client(
            region_name, endpoint_url, read_timeout
        )

    @classmethod
    def from_url(
        cls,
        url: str,
        cipher: Cipher,
        limits: Limits | None = None,
        clock: Callable[[], float] | None = None,
        *,
        boto3_client: DynamoDBClient | None = None,
    ) -> DynamoDBSessionStore:
        """A store for ``dynamodb://TABLE?region=eu-west-1&endpoint_url=http://host:8000``.

        Every option may be left out: the region then comes from AWS_DEFAULT_REGION.
        ``read_timeout=SECONDS`` lengthens the 2 s read timeout for local emulators
        such as DynamoDB Local or moto, which can be slow under load (and, unlike
        DynamoDB, apply a retried transaction twice).

        Raises:
            ConfigurationError: the URL is not of that form.
        """
        parts = urlsplit(url)
        if parts.scheme.lower() != "dynamodb" or parts.path not in ("", "/") or parts.fragment:
            raise ConfigurationError(
                f"a DynamoDB store URL looks like dynamodb://TABLE?region=REGION, not {url!r}"
            )
        try:
            options = parse_qs(
                parts.query, keep_blank_values=True, strict_parsing=bool(parts.query)
            )
        except ValueError as exc:
            raise ConfigurationError(f"cannot parse the options of {url!r}") from exc
        unknown = sorted(set(options) - _URL_OPTIONS)
        if unknown:
            raise ConfigurationError(
                f"unknown DynamoDB store URL option(s) {', '.join(unknown)}; "
                f"use {', '.join(sorted(_URL_OPTIONS))}"
            )
        if any(len(values) != 1 or not values[0] for values in options.values()):
            raise ConfigurationError("each DynamoDB store URL option takes exactly one value")
        endpoint_url = options.get("endpoint_url", [None])[0]
        if endpoint_url is not None:
            endpoint = urlsplit(endpoint_url)
            if endpoint.scheme not in ("http", "https") or not endpoint.netloc:
                raise ConfigurationError(
                    f"endpoint_url must be an http(s) URL, not {endpoint_url!r}"
                )
        read_timeout = options.get("read_timeout", [None])[0]
        try:
            timeout = None if read_timeout is None else float(read_timeout)
        except ValueError as exc:
            raise ConfigurationError("read_timeout must be a number of seconds") from exc
        return cls(
            unquote(parts.netloc),
            cipher,
            limits,
            clock,
            boto3_client=boto3_client,
            region_name=options.get("region", [None])[0],
            endpoint_url=endpoint_url,
            read_timeout=timeout,
        )

    # ---------------------------------------------------------------- lifecycle

    def ping(self) -> None:
        with _translated_errors(self.table_name):
            self.client.get_item(
                TableName=self.table_name,
                Key={PARTITION_KEY: {"S": "PING"}, SORT_KEY: {"S": "PING"}},
                ProjectionExpression="#pk",
                ExpressionAttributeNames={"#pk": PARTITION_KEY},
            )

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    # ---------------------------------------------------------------- hooks

    def _insert(self, record: SessionRecord, now: float) -> bool:
        return self._put_session(
            record,
            "attribute_not_exists(#pk) OR #expires_at_exact <= :now",
            {":now": _number(now)},
        )

    def _read(self, tenant: str, session_id: str) -> SessionRecord | None:
        with _translated_errors(self.table_name):
            response = self.client.get_item(
                TableName=self.table_name,
                Key=_session_key(tenant, session_id),
                ConsistentRead=True,
            )
        item = response.get("Item")
        return None if item is None else _record(item)

    def _touch(
        self, tenant: str, session_id: str, now: float, touch: Touch, incarnation: str | None = None
    ) -> SessionRecord | None:
        values: _Item = {":now": _number(now)}
        if touch.ttl_secs is None:
            # The stored ttl_secs, so no read is needed to slide the expiry.
            updates = [
                "#expires_at_exact = #ttl_secs + :now",
                "#expires_at = #ttl_secs + :now_ceil",
            ]
            values[":now_ceil"] = _number(math.ceil(now))
        else:
            updates = ["#ttl_secs = :ttl", "#expires_at_exact = :exact", "#expires_at = :ttl_at"]
            values.update(_expiry_values(now, touch.ttl_secs))
            values[":ttl"] = _number(touch.ttl_secs)
        if touch.metadata_blob is not None:
            updates.append("#metadata = :metadata")
            values[":metadata"] = {"B": touch.metadata_blob}
        if touch.end:
            updates.append("#ended_at = if_not_exists(#ended_at, :now)")
        if touch.modifies:
            updates += ["#updated_at = :now", _NEXT_VERSION]
            values[":zero"], values[":one"] = _number(0), _number(1)
        condition = "attribute_exists(#pk) AND #expires_at_exact > :now"
        if touch.modifies and not touch.end:
            condition += " AND attribute_not_exists(#ended_at)"  # ended: read-only
        if touch.expected_version is not None:
            condition += f" AND {_version_is(touch.expected_version)}"
            values[":version"] = _number(touch.expected_version)
        if incarnation is not None:
            condition += " AND #incarnation = :incarnation"
            values[":incarnation"] = {"S": incarnation}
        return self._update_session(
            tenant, session_id, "SET " + ", ".join(updates), condition, values
        )

    def _delete(
        self, tenant: str, session_id: str, now: float, expected: Version | None = None
    ) -> int | None:
        conditions: dict[str, Any] = {}
        if expected is not None:
            incarnation, version = expected
            condition = f"#incarnation = :incarnation AND {_version_is(version)}"
            conditions = {
                "ConditionExpression": condition,
                "ExpressionAttributeNames": _names(condition),
                "ExpressionAttributeValues": {
                    ":incarnation": {"S": incarnation},
                    ":version": _number(version),
                },
            }
        try:
            response = self._write(
                lambda: self.client.delete_item(
                    TableName=self.table_name,
                    Key=_session_key(tenant, session_id),
                    ReturnValues="ALL_OLD",
                    **conditions,
                )
            )
        except _ConditionFailed:
            return None
        old = response.get("Attributes")
        if old is None:
            return None
        record = _record(old)
        # With the session item gone no append can commit to its incarnation any more,
        # so this sweep is complete. It takes older incarnations' orphans along (their
        # time-ordered ids sort lower), never a successor created meanwhile.
        self._delete_items(
            self._query_items(
                {
                    "TableName": self.table_name,
                    "KeyConditionExpression": "#pk = :pk AND #sk BETWEEN :low AND :high",
                    "ExpressionAttributeNames": {"#pk": PARTITION_KEY, "#sk": SORT_KEY},
                    "ExpressionAttributeValues": {
                        ":pk": {"S": _partition(tenant, session_id)},
                        ":low": {"S": "M#"},
                        ":high": {"S": f"M#{record.incarnation}#~"},
                    },
                    "ProjectionExpression": "#pk, #sk",
                    "ConsistentRead": True,
                }
            )
        )
        return record.message_count if record.is_live(now) else None

    def _purge(self, tenant: str, session_id: str, incarnation: str, now: float) -> int:
        removed = 0
        current = self._read(tenant, session_id)
        if current is not None and current.incarnation == incarnation:
            if current.is_live(now):
                return 0
            # An expired incarnation never comes back to life (every write is
            # conditioned on a live expiry), so only a recreate can fail this condition,
            # and that leaves this incarnation's messages orphaned all the same.
            condition = "#incarnation = :incarnation AND #expires_at_exact <= :now"
            try:
                self._write(
                    lambda: self.client.delete_item(
                        TableName=self.table_name,
                        Key=_session_key(tenant, session_id),
                        ConditionExpression=condition,
                        ExpressionAttributeNames=_names(condition),
                        ExpressionAttributeValues={
                            ":incarnation": {"S": incarnation},
                            ":now": _number(now),
                        },
                    )
                )
                removed = 1
            except _ConditionFailed:
                pass
        keys = self._query_items(
            {
                "TableName": self.table_name,
                "KeyConditionExpression": "#pk = :pk AND #sk BETWEEN :low AND :high",
                "ExpressionAttributeNames": {"#pk": PARTITION_KEY, "#sk": SORT_KEY},
                "ExpressionAttributeValues": {
                    ":pk": {"S": _partition(tenant, session_id)},
                    ":low": {"S": f"{MESSAGE_SORT_KEY_PREFIX}{incarnation}#"},
                    ":high": {"S": f"{MESSAGE_SORT_KEY_PREFIX}{incarnation}#~"},
                },
                "ProjectionExpression": "#pk, #sk",
                "ConsistentRead": True,
            }
        )
        self._delete_items(keys)
        return removed + len(keys)

    def _sweep(
        self,
        now: float,
        max_items: int,
        deadline: float | None,
        cursor: str | None,
        on_expired: ExpiryCallback,
    ) -> SweepReport:
        start_key = _decode_scan_cursor(cursor) if cursor else None
        wanted = "(#sk = :session AND #expires_at_exact <= :now) OR begins_with(#sk, :message)"
        projection = (
            "#pk, #sk, #tenant, #session_id, #incarnation, #message_count, #expires_at_exact"
        )
        ended: list[EndedSession] = []
        removed = examined = 0
        while True:
            # Limit bounds the items read before the filter: the sweep's unit of work.
            scan: ScanInputTypeDef = {
                "TableName": self.table_name,
                "Limit": max(1, min(_SWEEP_PAGE_ITEMS, max_items - examined)),
                "FilterExpression": wanted,
                "ProjectionExpression": projection,
                "ExpressionAttributeNames": _names(wanted, projection),
                "ExpressionAttributeValues": {
                    ":session": {"S": SESSION_SORT_KEY},
                    ":now": _number(now),
                    ":message": {"S": MESSAGE_SORT_KEY_PREFIX},
                },
            }
            if start_key is not None:
                scan["ExclusiveStartKey"] = start_key
            with _translated_errors(self.table_name):
                page = self.client.scan(**scan)
            examined += page["ScannedCount"]
            expired = [item for item in page["Items"] if item[SORT_KEY]["S"] == SESSION_SORT_KEY]
            if expired:
                sessions = [
                    EndedSession(
                        tenant=item["tenant"]["S"],
                        session_id=item["session_id"]["S"],
                        message_count=int(item["message_count"]["N"]),
                        ended_at=float(item["expires_at_exact"]["N"]),
                    )
                    for item in expired
                ]
                on_expired(sessions)
                for item, session in zip(expired, sessions, strict=True):
                    removed += self._purge(
                        session.tenant, session.session_id, item["incarnation"]["S"], now
                    )
                ended += sessions
            # Messages of the sessions purged just now went with them.
            purged = {item[PARTITION_KEY]["S"] for item in expired}
            removed += self._delete_orphans(
                [
                    item
                    for item in page["Items"]
                    if item[SORT_KEY]["S"].startswith(MESSAGE_SORT_KEY_PREFIX)
                    and item[PARTITION_KEY]["S"] not in purged
                ]
            )
            start_key = page.get("LastEvaluatedKey")
            if start_key is None:
                return SweepReport(tuple(ended), removed, examined, None)
            if examined >= max_items or out_of_time(deadline):
                return SweepReport(tuple(ended), removed, examined, _encode_scan_cursor(start_key))

    def _iterate_sessions(
        self, cursor: str | None, limit: int, now: float
    ) -> tuple[list[SessionRecord], str | None]:
        # The sweep's page-by-page table scan, keeping only live session items. A scan
        # may resume from any primary key, so a page is cut at the last session taken.
        start_key = _decode_scan_cursor(cursor) if cursor else None
        wanted = "#sk = :session AND #expires_at_exact > :now"
        records: list[SessionRecord] = []
        while True:
            scan: ScanInputTypeDef = {
                "TableName": self.table_name,
                "Limit": _SWEEP_PAGE_ITEMS,
                "FilterExpression": wanted,
                "ExpressionAttributeNames": _names(wanted),
                "ExpressionAttributeValues": {
                    ":session": {"S": SESSION_SORT_KEY},
                    ":now": _number(now),
                },
                "ConsistentRead": True,
            }
            if start_key is not None:
                scan["ExclusiveStartKey"] = start_key
            with _translated_errors(self.table_name):
                page = self.client.scan(**scan)
            items = page["Items"]
            taken = items[: limit - len(records)]
            records += [_record(item) for item in taken]
            if len(taken) < len(items) or (len(records) >= limit and "LastEvaluatedKey" in page):
                last = taken[-1]
                return records, _encode_scan_cursor(
                    {PARTITION_KEY: last[PARTITION_KEY], SORT_KEY: last[SORT_KEY]}
                )
            start_key = page.get("LastEvaluatedKey")
            if start_key is None:
                return records, None

    def _restore_record(self, record: SessionRecord, now: float) -> bool:
        return self._put_session(
            record,
            "#incarnation = :incarnation AND #message_count = :count",
            {":incarnation": {"S": record.incarnation}, ":count": _number(record.message_count)},
        )

    def _replace_metadata_blob(self, record: SessionRecord, old: bytes, new: bytes) -> bool:
        return self._replace_session_blob(record, "metadata", old, new)

    def _replace_risk_blob(self, record: SessionRecord, old: bytes, new: bytes) -> bool:
        return self._replace_session_blob(record, "risk", old, new)

    def _replace_model(self, record: SessionRecord, old: str, new: str) -> bool:
        return self._replace_session_blob(record, "model", {"S": old}, {"S": new})

    def _replace_message_blob(
        self, record: SessionRecord, seq: int, old: bytes, new: bytes
    ) -> bool:
        items = self._items_holding(record, seq, seq)
        for item in items:
            paired = item.get("paired", {}).get("M")
            if paired is not None and int(paired["seq"]["N"]) == seq:
                return self._replace_item_blob(item, "paired.blob", old, new)
            if "part" not in item and int(item["seq"]["N"]) == seq:
                parts = [
                    part
                    for part in items
                    if part[SORT_KEY]["S"].startswith(item[SORT_KEY]["S"] + "#")
                ]
                if not parts:
                    return self._replace_item_blob(item, "blob", old, new)
                return self._replace_parted_blob([item, *parts], old, new)
        return False

    def _get_sweep_cursor(self) -> str | None:
        with _translated_errors(self.table_name):
            item = self.client.get_item(
                TableName=self.table_name,
                Key=_sweep_cursor_key(),
                ConsistentRead=True,
            ).get("Item")
        return None if item is None else item["position"]["S"]

    def _put_sweep_cursor(self, cursor: str | None) -> None:
        if cursor is None:
            self._write(
                lambda: self.client.delete_item(TableName=self.table_name, Key=_sweep_cursor_key())
            )
        else:
            self._write(
                lambda: self.client.put_item(
                    TableName=self.table_name,
                    Item={**_sweep_cursor_key(), "position": {"S": cursor}},
                )
            )

    def _commit_append(
        self,
        head: SessionRecord,
        messages: list[StoredMessage],
        model: str | None,
        now: float,
        *,
        creating: bool,
    ) -> SessionRecord | None:
        committed = SessionRecord(
            tenant=head.tenant,
            session_id=head.session_id,
            incarnation=head.incarnation,
            created_at=head.created_at,
            updated_at=now,
            expires_at=now + head.ttl_secs,
            ttl_secs=head.ttl_secs,
            message_count=head.message_count + len(messages),
            model=model if model is not None else head.model,
            metadata_blob=head.metadata_blob,
            risk_blob=head.risk_blob,
            risk_version=head.risk_version,
            version=head.version + 1,
        )
        session_action: TransactWriteItemTypeDef
        if creating:
            condition = "attribute_not_exists(#pk) OR #expires_at_exact <= :now"
            session_action = {
                "Put": {
                    "TableName": self.table_name,
                    "Item": _session_item(committed),
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": _names(condition),
                    "ExpressionAttributeValues": {":now": _number(now)},
                }
            }
        else:
            # Conditioning on ttl_secs too keeps the returned record exact when an
            # update of the TTL races in; that append simply retries.
            updates = (
                "SET #message_count = :count, #updated_at = :now, "
                f"#expires_at_exact = :exact, #expires_at = :ttl_at, {_NEXT_VERSION}"
            )
            values: _Item = {
                ":count": _number(committed.message_count),
                ":now": _number(now),
                ":zero": _number(0),
                ":one": _number(1),
                ":expected": _number(head.message_count),
                ":incarnation": {"S": head.incarnation},
                ":ttl": _number(head.ttl_secs),
                **_expiry_values(now, head.ttl_secs),
            }
            if model is not None:
                updates += ", #model = :model"
                values[":model"] = {"S": model}
            condition = (
                "attribute_exists(#pk) AND #incarnation = :incarnation AND "
                "#message_count = :expected AND #ttl_secs = :ttl AND "
                "#expires_at_exact > :now AND attribute_not_exists(#ended_at)"
            )
            session_action = {
                "Update": {
                    "TableName": self.table_name,
                    "Key": _session_key(head.tenant, head.session_id),
                    "UpdateExpression": updates,
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": _names(updates, condition),
                    "ExpressionAttributeValues": values,
                }
            }
        items = _message_items(head, messages, _MAX_TRANSACTION_ACTIONS - 1)
        actions: list[TransactWriteItemTypeDef] = [session_action]
        actions += [{"Put": {"TableName": self.table_name, "Item": item}} for item in items]
        try:
            # botocore adds a ClientRequestToken, so its own retries of a commit whose
            # answer was lost are idempotent and cannot append the messages twice.
            with _translated_errors(self.table_name):
                self.client.transact_write_items(TransactItems=actions)
        except _ConditionFailed:
            return None
        return committed

    def _read_messages(
        self, record: SessionRecord, first_seq: int, last_seq: int
    ) -> list[StoredMessage]:
        items = self._items_holding(record, first_seq, last_seq)
        return [
            message for message in _unpack_messages(items) if first_seq <= message.seq <= last_seq
        ]

    def _scan_tenant(
        self, tenant: str, prefix: str, after: str | None, limit: int, now: float
    ) -> tuple[list[SessionRecord], int]:
        # The index is eventually consistent (DynamoDB offers no strongly consistent
        # reads on a GSI), so a session may show up in listings a moment late.
        key_condition = "#tenant = :tenant"
        values: _Item = {":tenant": {"S": tenant}, ":now": _number(now)}
        if prefix:
            key_condition += " AND begins_with(#session_id, :prefix)"
            values[":prefix"] = {"S": prefix}
        live = "#expires_at_exact > :now"
        query: QueryInputTypeDef = {
            "TableName": self.table_name,
            "IndexName": TENANT_INDEX,
            "KeyConditionExpression": key_condition,
            "FilterExpression": live,
            "ExpressionAttributeNames": _names(key_condition, live),
            "ExpressionAttributeValues": values,
        }
        records: list[SessionRecord] = []
        start_key: _Item | None = None
        if after is not None:
            start_key = {
                **_session_key(tenant, after),
                "tenant": {"S": tenant},
                "session_id": {"S": after},
            }
        # Limit bounds the items evaluated before the filter drops expired ones, so
        # a page can come back short while more remain: keep going until full.
        while len(records) < limit:
            page_query: QueryInputTypeDef = {**query, "Limit": limit - len(records)}
            if start_key is not None:
                page_query["ExclusiveStartKey"] = start_key
            with _translated_errors(self.table_name):
                page = self.client.query(**page_query)
            records += [_record(item) for item in page["Items"]]
            start_key = page.get("LastEvaluatedKey")
            if start_key is None:
                break

        total = 0
        count_query: QueryInputTypeDef = {**query, "Select": "COUNT"}
        while True:
            with _translated_errors(self.table_name):
                counted = self.client.query(**count_query)
            total += counted["Count"]
            if "LastEvaluatedKey" not in counted:
                break
            count_query["ExclusiveStartKey"] = counted["LastEvaluatedKey"]
        return records, total

    def _commit_risk(
        self, head: SessionRecord, risk_blob: bytes, now: float
    ) -> SessionRecord | None:
        updates = (
            "SET #risk = :risk, #risk_version = :next_version, "
            "#expires_at_exact = #ttl_secs + :now, #expires_at = #ttl_secs + :now_ceil"
        )
        condition = (
            "attribute_exists(#pk) AND #incarnation = :incarnation AND "
            "#risk_version = :version AND #expires_at_exact > :now"
        )
        return self._update_session(
            head.tenant,
            head.session_id,
            updates,
            condition,
            {
                ":risk": {"B": risk_blob},
                ":version": _number(head.risk_version),
                ":next_version": _number(head.risk_version + 1),
                ":incarnation": {"S": head.incarnation},
                ":now": _number(now),
                ":now_ceil": _number(math.ceil(now)),
            },
        )

    def _put_api_key(self, record: ApiKeyRecord) -> None:
        item: _Item = {
            PARTITION_KEY: {"S": API_KEYS_PARTITION},
            SORT_KEY: {"S": record.key_hash},
            "key_tenant": {"S": record.tenant},  # not `tenant`: keep the index sparse
            "role": {"S": record.role},
            "created_at": _number(record.created_at),
        }
        if record.revoked_at is not None:
            item["revoked_at"] = _number(record.revoked_at)
        self._write(lambda: self.client.put_item(TableName=self.table_name, Item=item))

    def _get_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        with _translated_errors(self.table_name):
            response = self.client.get_item(
                TableName=self.table_name,
                Key={PARTITION_KEY: {"S": API_KEYS_PARTITION}, SORT_KEY: {"S": key_hash}},
                ConsistentRead=True,
            )
        item = response.get("Item")
        return None if item is None else _api_key(item)

    def _list_api_keys(self) -> list[ApiKeyRecord]:
        return [
            _api_key(item)
            for item in self._query_items(
                {
                    "TableName": self.table_name,
                    "KeyConditionExpression": "#pk = :pk",
                    "ExpressionAttributeNames": {"#pk": PARTITION_KEY},
                    "ExpressionAttributeValues": {":pk": {"S": API_KEYS_PARTITION}},
                    "ConsistentRead": True,
                }
            )
        ]

    def _put_idempotency(
        self, tenant: str, digest: str, blob: bytes, until: float, now: float, only_if_absent: bool
    ) -> bytes | None:
        key: _Item = {PARTITION_KEY: {"S": f"I#{tenant}"}, SORT_KEY: {"S": digest}}
        item: _Item = {
            **key,
            "blob": {"B": blob},
            "expires_at_exact": _number(until),
            TTL_ATTRIBUTE: _number(math.ceil(until)),
        }
        if not only_if_absent:
            self._write(lambda: self.client.put_item(TableName=self.table_name, Item=item))
            return None
        condition = "attribute_not_exists(#pk) OR #expires_at_exact <= :now"
        try:
            self._write(
                lambda: self.client.put_item(
                    TableName=self.table_name,
                    Item=item,
                    ConditionExpression=condition,
                    ExpressionAttributeNames=_names(condition),
                    ExpressionAttributeValues={":now": _number(now)},
                )
            )
        except _ConditionFailed:
            with _translated_errors(self.table_name):
                stored = self.client.get_item(
                    TableName=self.table_name, Key=key, ConsistentRead=True
                ).get("Item")
            if stored is None:  # removed meanwhile: claim again
                return self._put_idempotency(tenant, digest, blob, until, now, True)
            return stored["blob"]["B"]
        return None

    def _delete_idempotency(self, tenant: str, digest: str) -> None:
        key: _Item = {PARTITION_KEY: {"S": f"I#{tenant}"}, SORT_KEY: {"S": digest}}
        self._write(lambda: self.client.delete_item(TableName=self.table_name, Key=key))

    def _count_hits(
        self, buckets: Sequence[str], window: int, window_secs: int, amount: int
    ) -> list[int]:
        # One counter item per bucket and window: atomic ADD, and TTL reclaims it some
        # time after its window (a late deletion is harmless, no one reads old windows).
        updates = "ADD #hits :amount SET #expires_at = if_not_exists(#expires_at, :gone_at)"

        def add_hits(bucket: str) -> UpdateItemOutputTypeDef:
            return self.client.update_item(
                TableName=self.table_name,
                Key={
                    PARTITION_KEY: {"S": f"R#{bucket}#{window}"},
                    SORT_KEY: {"S": COUNTER_SORT_KEY},
                },
                UpdateExpression=updates,
                ExpressionAttributeNames=_names(updates),
                ExpressionAttributeValues={
                    ":amount": _number(amount),
                    ":gone_at": _number((window + 2) * window_secs),
                },
                ReturnValues="UPDATED_NEW",
            )

        return [
            int(self._write(partial(add_hits, bucket))["Attributes"]["hits"]["N"])
            for bucket in buckets
        ]

    # ---------------------------------------------------------------- helpers

    def _put_session(self, record: SessionRecord, condition: str, values: _Item) -> bool:
        """Write the whole session item if `condition` holds; whether it did."""
        try:
            self._write(
                lambda: self.client.put_item(
                    TableName=self.table_name,
                    Item=_session_item(record),
                    ConditionExpression=condition,
                    ExpressionAttributeNames=_names(condition),
                    ExpressionAttributeValues=values,
                )
            )
        except _ConditionFailed:
            return False
        return True

    def _update_session(
        self, tenant: str, session_id: str, updates: str, condition: str, values: _Item
    ) -> SessionRecord | None:
        try:
            response = self._write(
                lambda: self.client.update_item(
                    TableName=self.table_name,
                    Key=_session_key(tenant, session_id),
                    UpdateExpression=updates,
                    ConditionExpression=condition,
                    ExpressionAttributeNames=_names(updates, condition),
                    ExpressionAttributeValues=values,
                    ReturnValues="ALL_NEW",
                )
            )
        except _ConditionFailed:
            return None
        return _record(response["Attributes"])

    def _replace_session_blob(
        self,
        record: SessionRecord,
        name: str,
        old: bytes | AttributeValueTypeDef,
        new: bytes | AttributeValueTypeDef,
    ) -> bool:
        condition = f"#incarnation = :incarnation AND #{name} = :old"
        try:
            self._write(
                lambda: self.client.update_item(
                    TableName=self.table_name,
                    Key=_session_key(record.tenant, record.session_id),
                    UpdateExpression=f"SET #{name} = :new",
                    ConditionExpression=condition,
                    ExpressionAttributeNames=_names(condition),
                    ExpressionAttributeValues={
                        ":incarnation": {"S": record.incarnation},
                        ":old": {"B": old} if isinstance(old, bytes) else old,
                        ":new": {"B": new} if isinstance(new, bytes) else new,
                    },
                )
            )
        except _ConditionFailed:
            return False
        return True

    def _replace_item_blob(self, item: _Item, path: str, old: bytes, new: bytes) -> bool:
        # The key holds the incarnation, and a failed condition also refuses to
        # recreate an item a concurrent delete removed.
        target = ".".join(f"#{name}" for name in path.split("."))
        try:
            self._write(
                lambda: self.client.update_item(
                    TableName=self.table_name,
                    Key={PARTITION_KEY: item[PARTITION_KEY], SORT_KEY: item[SORT_KEY]},
                    UpdateExpression=f"SET {target} = :new",
                    ConditionExpression=f"{target} = :old",
                    ExpressionAttributeNames=_names(target),
                    ExpressionAttributeValues={":old": {"B": old}, ":new": {"B": new}},
                )
            )
        except _ConditionFailed:
            return False
        return True

    def _replace_parted_blob(self, items: list[_Item], old: bytes, new: bytes) -> bool:
        """Replace a blob stored in parts, all of them in one transaction."""
        chunks = [
            new[offset : offset + _ITEM_BLOB_BYTES]
            for offset in range(0, len(new), _ITEM_BLOB_BYTES)
        ]
        if b"".join(item["blob"]["B"] for item in items) != old or len(chunks) != len(items):
            # Resealing keeps a Fernet token's length, so the parts only differ when
            # the stored value changed since it was read.
            return False
        actions: list[TransactWriteItemTypeDef] = [
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": {PARTITION_KEY: item[PARTITION_KEY], SORT_KEY: item[SORT_KEY]},
                    "UpdateExpression": "SET #blob = :new",
                    "ConditionExpression": "#blob = :old",
                    "ExpressionAttributeNames": {"#blob": "blob"},
                    "ExpressionAttributeValues": {":old": item["blob"], ":new": {"B": chunk}},
                }
            }
            for item, chunk in zip(items, chunks, strict=True)
        ]
        try:
            with _translated_errors(self.table_name):
                self.client.transact_write_items(TransactItems=actions)
        except _ConditionFailed:
            return False
        return True

    def _delete_orphans(self, message_items: list[_Item]) -> int:
        """Delete the items among `message_items` whose incarnation is not the one of
        the session now stored under their partition (or whose session is gone)."""
        if not message_items:
            return 0
        current = self._stored_incarnations(
            sorted({item[PARTITION_KEY]["S"] for item in message_items})
        )
        orphans = [
            {PARTITION_KEY: item[PARTITION_KEY], SORT_KEY: item[SORT_KEY]}
            for item in message_items
            if _incarnation_of(item[SORT_KEY]["S"]) != current.get(item[PARTITION_KEY]["S"])
        ]
        self._delete_items(orphans)
        return len(orphans)

    def _stored_incarnations(self, partitions: list[str]) -> dict[str, str]:
        """The incarnation of the session item under each partition that has one."""
        found: dict[str, str] = {}
        for start in range(0, len(partitions), _BATCH_GET_KEYS):
            # Strongly consistent: a message the scan saw was written together with
            # its session item, so this read sees that item or whatever replaced it.
            request: dict[str, KeysAndAttributesTypeDef] = {
                self.table_name: {
                    "Keys": [
                        {PARTITION_KEY: {"S": pk}, SORT_KEY: {"S": SESSION_SORT_KEY}}
                        for pk in partitions[start : start + _BATCH_GET_KEYS]
                    ],
                    "ProjectionExpression": "#pk, #incarnation",
                    "ExpressionAttributeNames": {
                        "#pk": PARTITION_KEY,
                        "#incarnation": "incarnation",
                    },
                    "ConsistentRead": True,
                }
            }
            for attempt in range(_BATCH_WRITE_ATTEMPTS):
                with _translated_errors(self.table_name):
                    response = self.client.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table_name, []):
                    found[item[PARTITION_KEY]["S"]] = item["incarnation"]["S"]
                request = cast(
                    "dict[str, KeysAndAttributesTypeDef]", response.get("UnprocessedKeys") or {}
                )
                if not request:
                    break
                _pause(attempt)
            else:
                raise StoreUnavailable(
                    f"DynamoDB table {self.table_name!r} kept throttling the sweep's reads"
                )
        return found

    def _write(self, write: Callable[[], _T]) -> _T:
        """Run a single-item write, retrying while a transaction holds the item.

        Those collisions (TransactionConflictException) are not retried by botocore,
        and must not read as a failed condition: that would mean "no such session".
        """
        for attempt in range(_CONFLICT_ATTEMPTS):
            try:
                with _translated_errors(self.table_name):
                    return write()
            except _ItemInTransaction:
                _pause(attempt)
        raise ConcurrentUpdate("the session is busy with concurrent writes; try again")

    def _items_holding(self, record: SessionRecord, first_seq: int, last_seq: int) -> list[_Item]:
        """The message items that may hold seqs `first_seq`..`last_seq`, read consistently.

        Starts one item early, since an item may carry its successor (see
        `_message_items`), and its upper bound takes in the continuation parts of the
        last message.
        """
        return self._query_items(
            {
                "TableName": self.table_name,
                "KeyConditionExpression": "#pk = :pk AND #sk BETWEEN :low AND :high",
                "ExpressionAttributeNames": {"#pk": PARTITION_KEY, "#sk": SORT_KEY},
                "ExpressionAttributeValues": {
                    ":pk": {"S": _partition(record.tenant, record.session_id)},
                    ":low": {"S": _message_sort_key(record.incarnation, max(first_seq - 1, 1))},
                    ":high": {"S": _message_sort_key(record.incarnation, last_seq) + "#~"},
                },
                "ConsistentRead": True,
            }
        )

    def _query_items(self, query: QueryInputTypeDef) -> list[_Item]:
        items: list[_Item] = []
        while True:
            with _translated_errors(self.table_name):
                page = self.client.query(**query)
            items += page["Items"]
            if "LastEvaluatedKey" not in page:
                return items
            query = {**query, "ExclusiveStartKey": page["LastEvaluatedKey"]}

    def _delete_items(self, keys: list[_Item]) -> None:
        for start in range(0, len(keys), _BATCH_WRITE_REQUESTS):
            requests: list[WriteRequestTypeDef] = [
                {"DeleteRequest": {"Key": key}}
                for key in keys[start : start + _BATCH_WRITE_REQUESTS]
            ]
            for attempt in range(_BATCH_WRITE_ATTEMPTS):
                with _translated_errors(self.table_name):
                    response = self.client.batch_write_item(
                        RequestItems={self.table_name: requests}
                    )
                requests = cast(
                    "list[WriteRequestTypeDef]",
                    response.get("UnprocessedItems", {}).get(self.table_name, []),
                )
                if not requests:
                    break
                _pause(attempt)
            else:
                raise StoreUnavailable(
                    f"DynamoDB table {self.table_name!r} kept throttling the deletion of "
                    "message items"
                )


# -------------------------------------------------------------------- errors


class _ConditionFailed(Exception):
    """A conditional write or transaction found the item in another state: a lost race."""


class _ItemInTransaction(Exception):
    """A single-item write collided with a transaction in progress on that item."""


@contextmanager
def _translated_errors(table_name: str) -> Iterator[None]:
    """The one place that reads botocore's errors and turns them into Turnwall's.

    Transport failures, timeouts, throttling, 5xx and a missing table become
    `StoreUnavailable`; a failed condition, or a transaction cancelled only by failed
    conditions and conflicts, becomes `_ConditionFailed`, which the hooks report as a
    lost race; a single-item write that hit a running transaction becomes
    `_ItemInTransaction`, which `_write` retries. Anything else is a bug and
    propagates unchanged.
    """
    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code == "ConditionalCheckFailedException":
            raise _ConditionFailed from exc
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
                raise _ConditionFailed from exc
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


def _pause(attempt: int) -> None:
    # Full jitter, so writers that collided do not collide again in lockstep.
    time.sleep(random.random() * min(0.5, 0.01 * 2**attempt))


# -------------------------------------------------------------------- stream records


@dataclass(frozen=True, slots=True)
class TtlDeletion:
    """A session item that DynamoDB's TTL process deleted, as its stream record shows it."""

    tenant: str
    session_id: str
    incarnation: str
    message_count: int
    expired_at: float


def ttl_deletion_of(record: Mapping[str, Any]) -> TtlDeletion | None:
    """The session a DynamoDB Streams record (Lambda's event shape) reports deleted by
    TTL; None for every other record: writes, deletes by clients (explicit deletes,
    the sweep), TTL deletions of items that are not sessions (rate counters).

    Raises:
        ValidationFailed: a TTL deletion of a session item without a usable old image
            (the stream must carry old images).
    """
    identity = record.get("userIdentity") or {}
    if (
        record.get("eventName") != "REMOVE"
        or identity.get("type") != "Service"
        or identity.get("principalId") != TTL_SERVICE_PRINCIPAL
    ):
        return None
    change = record.get("dynamodb") or {}
    if (change.get("Keys") or {}).get(SORT_KEY) != {"S": SESSION_SORT_KEY}:
        return None
    old = change.get("OldImage") or {}
    try:
        return TtlDeletion(
            tenant=old["tenant"]["S"],
            session_id=old["session_id"]["S"],
            incarnation=old["incarnation"]["S"],
            message_count=int(old["message_count"]["N"]),
            expired_at=float(old["expires_at_exact"]["N"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValidationFailed(
            "a TTL deletion of a session item came without its old image; the table's "
            "stream must be NEW_AND_OLD_IMAGES",
            details={"field": "dynamodb.OldImage"},
        ) from exc


# -------------------------------------------------------------------- items


def _new_client(
    region_name: str | None, endpoint_url: str | None, read_timeout: float | None = None
) -> DynamoDBClient:
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


# Items written before versions were kept have none: they count as version 0.
_NEXT_VERSION: Final = "#version = if_not_exists(#version, :zero) + :one"


def _version_is(version: int) -> str:
    """A condition that the stored version is `version` (the value bound as :version)."""
    if version == 0:
        return "(attribute_not_exists(#version) OR #version = :version)"
    return "#version = :version"


def _names(*expressions: str) -> dict[str, str]:
    """ExpressionAttributeNames for every ``#name`` placeholder used (and no other,
    which DynamoDB refuses); placeholders are the attribute names themselves."""
    return {
        placeholder: placeholder[1:]
        for expression in expressions
        for placeholder in re.findall(r"#\w+", expression)
    }


def _number(value: float) -> AttributeValueTypeDef:
    # repr() is the shortest exact form of a float; DynamoDB keeps 38 digits.
    return {"N": str(value) if isinstance(value, int) else repr(value)}


def _expiry_values(now: float, ttl_secs: int) -> _Item:
    # The TTL attribute gets whole seconds rounded up, so DynamoDB never deletes a
    # session that is still live by the exact expiry.
    return {":exact": _number(now + ttl_secs), ":ttl_at": _number(math.ceil(now) + ttl_secs)}


def _partition(tenant: str, session_id: str) -> str:
    # Neither tenants nor session ids may contain "#", so the key is unambiguous.
    return f"S#{tenant}#{session_id}"


def _session_key(tenant: str, session_id: str) -> _Item:
    return {PARTITION_KEY: {"S": _partition(tenant, session_id)}, SORT_KEY: {"S": SESSION_SORT_KEY}}


def _message_sort_key(incarnation: str, seq: int) -> str:
    return f"{MESSAGE_SORT_KEY_PREFIX}{incarnation}#{seq:010d}"


def _incarnation_of(message_sort_key: str) -> str:
    # M#<incarnation>#<seq>[#<part>]
    return message_sort_key.split("#", 2)[1]


def _sweep_cursor_key() -> _Item:
    return {name: {"S": value} for name, value in SWEEP_CURSOR_KEY.items()}


def _encode_scan_cursor(last_key: Mapping[str, AttributeValueTypeDef]) -> str:
    position = [last_key[PARTITION_KEY]["S"], last_key[SORT_KEY]["S"]]
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


def _decode_scan_cursor(cursor: str) -> _Item:
    try:
        pk, sk = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
    except (ValueError, TypeError, UnicodeError, binascii.Error) as exc:
        raise InvalidCursor("sweep cursor is malformed", details={"field": "cursor"}) from exc
    if not isinstance(pk, str) or not isinstance(sk, str) or not pk or not sk:
        raise InvalidCursor("sweep cursor is malformed", details={"field": "cursor"})
    return {PARTITION_KEY: {"S": pk}, SORT_KEY: {"S": sk}}


def _session_item(record: SessionRecord) -> _Item:
    item: _Item = {
        **_session_key(record.tenant, record.session_id),
        "tenant": {"S": record.tenant},
        "session_id": {"S": record.session_id},
        "incarnation": {"S": record.incarnation},
        "created_at": _number(record.created_at),
        "updated_at": _number(record.updated_at),
        TTL_ATTRIBUTE: _number(math.ceil(record.expires_at)),
        "expires_at_exact": _number(record.expires_at),
        "ttl_secs": _number(record.ttl_secs),
        "message_count": _number(record.message_count),
        "risk_version": _number(record.risk_version),
    }
    if record.model is not None:
        item["model"] = {"S": record.model}
    if record.metadata_blob is not None:
        item["metadata"] = {"B": record.metadata_blob}
    if record.risk_blob is not None:
        item["risk"] = {"B": record.risk_blob}
    if record.ended_at is not None:
        item["ended_at"] = _number(record.ended_at)
    if record.version:
        item["version"] = _number(record.version)
    return item


def _record(item: Mapping[str, AttributeValueTypeDef]) -> SessionRecord:
    return SessionRecord(
        tenant=item["tenant"]["S"],
        session_id=item["session_id"]["S"],
        incarnation=item["incarnation"]["S"],
        created_at=float(item["created_at"]["N"]),
        updated_at=float(item["updated_at"]["N"]),
        expires_at=float(item["expires_at_exact"]["N"]),
        ttl_secs=int(item["ttl_secs"]["N"]),
        message_count=int(item["message_count"]["N"]),
        model=item["model"]["S"] if "model" in item else None,
        metadata_blob=item["metadata"]["B"] if "metadata" in item else None,
        risk_blob=item["risk"]["B"] if "risk" in item else None,
        risk_version=int(item["risk_version"]["N"]),
        ended_at=float(item["ended_at"]["N"]) if "ended_at" in item else None,
        version=int(item["version"]["N"]) if "version" in item else 0,
    )


def _api_key(item: Mapping[str, AttributeValueTypeDef]) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_hash=item[SORT_KEY]["S"],
        tenant=item["key_tenant"]["S"],
        role=cast("KeyRole", item["role"]["S"]),
        created_at=float(item["created_at"]["N"]),
        revoked_at=float(item["revoked_at"]["N"]) if "revoked_at" in item else None,
    )


def _message_fields(message: StoredMessage) -> _Item:
    return {
        "seq": _number(message.seq),
        "role": {"S": message.role},
        "created_at": _number(message.created_at),
        "blob": {"B": message.blob},
    }


def _message_items(head: SessionRecord, messages: list[StoredMessage], room: int) -> list[_Item]:
    """The items that store `messages`, at most `room` of them.

    Normally one item per message. A blob too big for one item continues in part
    items (``<sk>#001``, ...). Only when that makes more items than the transaction
    has room for (100 messages + the session update = 101 actions) do the smallest
    adjacent pairs of messages share an item, the later one under ``paired``, until
    the batch fits. The smallest pairs, not simply the last two: two messages of
    escaped JSON may not fit one item together, while the 4 MB bound on the whole
    transaction guarantees small enough pairs exist whenever the batch can commit.
    Readers therefore start one item before the first seq they want.

    Raises:
        ValidationFailed: the batch is too large for one DynamoDB transaction.
    """
    sizes = [len(message.blob) for message in messages]
    parts = [max(1, math.ceil(size / _ITEM_BLOB_BYTES)) for size in sizes]
    excess = sum(parts) - room
    paired: set[int] = set()  # indexes whose item also carries the next message
    if excess > 0:
        pairs = sorted(
            (sizes[i] + sizes[i + 1], i)
            for i in range(len(messages) - 1)
            if parts[i] == parts[i + 1] == 1 and sizes[i] + sizes[i + 1] <= _ITEM_BLOB_BYTES
        )
        taken: set[int] = set()
        for _, i in pairs:
            if len(paired) == excess:
                break
            if i not in taken and i + 1 not in taken:
                paired.add(i)
                taken.update((i, i + 1))
    total_bytes = sum(sizes) + _ITEM_OVERHEAD_BYTES * (sum(parts) + 1)
    if len(paired) < excess or total_bytes > _MAX_TRANSACTION_BYTES:
        raise ValidationFailed(
            "these messages are too large to append atomically in one request; "
            "send them in smaller batches",
            details={"field": "messages"},
        )

    pk: AttributeValueTypeDef = {"S": _partition(head.tenant, head.session_id)}
    items: list[_Item] = []
    index = 0
    while index < len(messages):
        message = messages[index]
        sort_key = _message_sort_key(head.incarnation, message.seq)
        item: _Item = {PARTITION_KEY: pk, SORT_KEY: {"S": sort_key}, **_message_fields(message)}
        if index in paired:
            item["paired"] = {"M": _message_fields(messages[index + 1])}
            items.append(item)
            index += 2
            continue
        chunks = [
            message.blob[offset : offset + _ITEM_BLOB_BYTES]
            for offset in range(0, len(message.blob), _ITEM_BLOB_BYTES)
        ] or [b""]
        item["blob"] = {"B": chunks[0]}
        if len(chunks) > 1:
            item["parts"] = _number(len(chunks))
        items.append(item)
        items += [
            {
                PARTITION_KEY: pk,
                SORT_KEY: {"S": f"{sort_key}#{part:03d}"},
                "part": _number(part),
                "blob": {"B": chunk},
            }
            for part, chunk in enumerate(chunks[1:], start=1)
        ]
        index += 1
    return items


@dataclass
class _Assembly:
    """A message whose blob may still be waiting for continuation parts."""

    seq: int
    role: str
    created_at: float
    parts: int
    chunks: list[bytes] = field(default_factory=list)

    def finish(self) -> StoredMessage | None:
        # A missing part means a concurrent delete is sweeping the session.
        if len(self.chunks) != self.parts:
            return None
        return StoredMessage(
            seq=self.seq, role=self.role, created_at=self.created_at, blob=b"".join(self.chunks)
        )


def _unpack_messages(
    items: Iterable[Mapping[str, AttributeValueTypeDef]],
) -> Iterator[StoredMessage]:
    """Messages from message items in key order (see `_message_items`)."""
    pending: _Assembly | None = None
    for item in items:
        if "part" in item:
            if pending is not None and int(item["part"]["N"]) == len(pending.chunks):
                pending.chunks.append(item["blob"]["B"])
            continue
        if pending is not None and (message := pending.finish()) is not None:
            yield message
        pending = _start_assembly(item)
        if "paired" in item:
            yield from filter(
                None, (pending.finish(), _start_assembly(item["paired"]["M"]).finish())
            )
            pending = None
    if pending is not None and (message := pending.finish()) is not None:
        yield message


def _start_assembly(fields: Mapping[str, AttributeValueTypeDef]) -> _Assembly:
    return _Assembly(
        seq=int(fields["seq"]["N"]),
        role=fields["role"]["S"],
        created_at=float(fields["created_at"]["N"]),
        parts=int(fields["parts"]["N"]) if "parts" in fields else 1,
        chunks=[fields["blob"]["B"]],
    )
