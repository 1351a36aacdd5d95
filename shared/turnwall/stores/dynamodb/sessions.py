"""`DynamoDBSessionStore`: its configuration and the hooks a session lives by (create,
read, touch, append, list, delete, risk state).

API keys, idempotency records and rate counters are in `records.py`; the sweep, purge,
restore and re-encryption hooks in `maintenance.py`. Every hook talks to the table
through `SessionsTable` (`client.py`), in plain Python values.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Final
from urllib.parse import parse_qs, unquote, urlsplit

from turnwall.errors import ConfigurationError
from turnwall.stores.base import SessionStore
from turnwall.stores.dynamodb.client import ConditionFailed, SessionsTable, new_client
from turnwall.stores.dynamodb.items import (
    NEXT_VERSION,
    expiry_values,
    put_session,
    read_session,
    session_item,
    session_record,
    version_is,
)
from turnwall.stores.dynamodb.layout import (
    MESSAGE_SORT_KEY_PREFIX,
    PARTITION_KEY,
    SORT_KEY,
    TENANT_INDEX,
    partition,
    session_key,
)
from turnwall.stores.dynamodb.maintenance import DynamoDBMaintenance
from turnwall.stores.dynamodb.messages import (
    MAX_TRANSACTION_ACTIONS,
    message_items,
    read_message_items,
    unpack_messages,
)
from turnwall.stores.dynamodb.records import DynamoDBRecords
from turnwall.stores.records import SessionRecord

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_dynamodb import DynamoDBClient

    from turnwall.crypto import Cipher
    from turnwall.stores.dynamodb.client import Item
    from turnwall.stores.records import StoredMessage, Touch, Version
    from turnwall.validation import Limits

_TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")
_URL_OPTIONS: Final = frozenset({"region", "endpoint_url", "read_timeout"})


class DynamoDBSessionStore(DynamoDBMaintenance, DynamoDBRecords, SessionStore):
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
        self.client: DynamoDBClient = boto3_client or new_client(
            region_name, endpoint_url, read_timeout
        )
        self.table = SessionsTable(self.client, table_name)

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
        self.table.get(
            {PARTITION_KEY: "PING", SORT_KEY: "PING"}, projection="#pk", consistent=False
        )

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    # ---------------------------------------------------------------- hooks

    def _insert(self, record: SessionRecord, now: float) -> bool:
        return put_session(
            self.table,
            record,
            "attribute_not_exists(#pk) OR #expires_at_exact <= :now",
            {":now": now},
        )

    def _read(self, tenant: str, session_id: str) -> SessionRecord | None:
        return read_session(self.table, tenant, session_id)

    def _touch(
        self, tenant: str, session_id: str, now: float, touch: Touch, incarnation: str | None = None
    ) -> SessionRecord | None:
        values: Item = {":now": now}
        if touch.ttl_secs is None:
            # The stored ttl_secs, so no read is needed to slide the expiry.
            updates = [
                "#expires_at_exact = #ttl_secs + :now",
                "#expires_at = #ttl_secs + :now_ceil",
            ]
            values[":now_ceil"] = math.ceil(now)
        else:
            updates = ["#ttl_secs = :ttl", "#expires_at_exact = :exact", "#expires_at = :ttl_at"]
            values.update(expiry_values(now, touch.ttl_secs))
            values[":ttl"] = touch.ttl_secs
        if touch.metadata_blob is not None:
            updates.append("#metadata = :metadata")
            values[":metadata"] = touch.metadata_blob
        if touch.end:
            updates.append("#ended_at = if_not_exists(#ended_at, :now)")
        if touch.modifies:
            updates += ["#updated_at = :now", NEXT_VERSION]
            values[":zero"], values[":one"] = 0, 1
        condition = "attribute_exists(#pk) AND #expires_at_exact > :now"
        if touch.modifies and not touch.end:
            condition += " AND attribute_not_exists(#ended_at)"  # ended: read-only
        if touch.expected_version is not None:
            condition += f" AND {version_is(touch.expected_version)}"
            values[":version"] = touch.expected_version
        if incarnation is not None:
            condition += " AND #incarnation = :incarnation"
            values[":incarnation"] = incarnation
        return self._update_session(
            tenant, session_id, "SET " + ", ".join(updates), condition, values
        )

    def _delete(
        self, tenant: str, session_id: str, now: float, expected: Version | None = None
    ) -> int | None:
        condition: str | None = None
        values: Item | None = None
        if expected is not None:
            incarnation, version = expected
            condition = f"#incarnation = :incarnation AND {version_is(version)}"
            values = {":incarnation": incarnation, ":version": version}
        try:
            old = self.table.delete(
                session_key(tenant, session_id),
                condition=condition,
                values=values,
                return_old=True,
            )
        except ConditionFailed:
            return None
        if old is None:
            return None
        record = session_record(old)
        # With the session item gone no append can commit to its incarnation any more,
        # so this sweep is complete. It takes older incarnations' orphans along (their
        # time-ordered ids sort lower), never a successor created meanwhile.
        self.table.delete_many(
            self.table.query_all(
                "#pk = :pk AND #sk BETWEEN :low AND :high",
                {
                    ":pk": partition(tenant, session_id),
                    ":low": MESSAGE_SORT_KEY_PREFIX,
                    ":high": f"{MESSAGE_SORT_KEY_PREFIX}{record.incarnation}#~",
                },
                projection="#pk, #sk",
            )
        )
        return record.message_count if record.is_live(now) else None

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
        if creating:
            session_action = self.table.put_action(
                session_item(committed),
                condition="attribute_not_exists(#pk) OR #expires_at_exact <= :now",
                values={":now": now},
            )
        else:
            # Conditioning on ttl_secs too keeps the returned record exact when an
            # update of the TTL races in; that append simply retries.
            updates = (
                "SET #message_count = :count, #updated_at = :now, "
                f"#expires_at_exact = :exact, #expires_at = :ttl_at, {NEXT_VERSION}"
            )
            values: Item = {
                ":count": committed.message_count,
                ":now": now,
                ":zero": 0,
                ":one": 1,
                ":expected": head.message_count,
                ":incarnation": head.incarnation,
                ":ttl": head.ttl_secs,
                **expiry_values(now, head.ttl_secs),
            }
            if model is not None:
                updates += ", #model = :model"
                values[":model"] = model
            session_action = self.table.update_action(
                session_key(head.tenant, head.session_id),
                updates,
                condition=(
                    "attribute_exists(#pk) AND #incarnation = :incarnation AND "
                    "#message_count = :expected AND #ttl_secs = :ttl AND "
                    "#expires_at_exact > :now AND attribute_not_exists(#ended_at)"
                ),
                values=values,
            )
        items = message_items(head, messages, MAX_TRANSACTION_ACTIONS - 1)
        try:
            # botocore's retries of a commit whose answer was lost are idempotent, so
            # they cannot append the messages twice.
            self.table.transact([session_action, *map(self.table.put_action, items)])
        except ConditionFailed:
            return None
        return committed

    def _read_messages(
        self, record: SessionRecord, first_seq: int, last_seq: int
    ) -> list[StoredMessage]:
        items = read_message_items(self.table, record, first_seq, last_seq)
        return [
            message for message in unpack_messages(items) if first_seq <= message.seq <= last_seq
        ]

    def _scan_tenant(
        self, tenant: str, prefix: str, after: str | None, limit: int, now: float
    ) -> tuple[list[SessionRecord], int]:
        # The index is eventually consistent (DynamoDB offers no strongly consistent
        # reads on a GSI), so a session may show up in listings a moment late.
        key_condition = "#tenant = :tenant"
        values: Item = {":tenant": tenant, ":now": now}
        if prefix:
            key_condition += " AND begins_with(#session_id, :prefix)"
            values[":prefix"] = prefix
        live = "#expires_at_exact > :now"
        records: list[SessionRecord] = []
        start: Item | None = None
        if after is not None:
            start = {**session_key(tenant, after), "tenant": tenant, "session_id": after}
        # Limit bounds the items evaluated before the filter drops expired ones, so
        # a page can come back short while more remain: keep going until full.
        while len(records) < limit:
            page = self.table.query(
                key_condition,
                values,
                index=TENANT_INDEX,
                filter=live,
                limit=limit - len(records),
                start=start,
            )
            records += map(session_record, page.items)
            start = page.last_key
            if start is None:
                break
        total = self.table.count(key_condition, values, index=TENANT_INDEX, filter=live)
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
                ":risk": risk_blob,
                ":version": head.risk_version,
                ":next_version": head.risk_version + 1,
                ":incarnation": head.incarnation,
                ":now": now,
                ":now_ceil": math.ceil(now),
            },
        )

    # ---------------------------------------------------------------- helpers

    def _update_session(
        self, tenant: str, session_id: str, updates: str, condition: str, values: Item
    ) -> SessionRecord | None:
        try:
            item = self.table.update(
                session_key(tenant, session_id),
                updates,
                condition=condition,
                values=values,
                returns="ALL_NEW",
            )
        except ConditionFailed:
            return None
        return session_record(item)
