"""The session item and the API key items: what they hold, and the expression pieces
that write them.

Items here are plain Python values (`client.py` turns them into attribute values with
boto3's serializer): numbers come back as Decimal and are read as float or int, blobs
are bytes. Sealed fields (metadata, risk, the model) are already ciphertext when they
arrive here.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Final, cast

from turnwall.models import ApiKeyRecord
from turnwall.stores.dynamodb.client import ConditionFailed
from turnwall.stores.dynamodb.layout import (
    SORT_KEY,
    TTL_ATTRIBUTE,
    api_key_key,
    session_key,
)
from turnwall.stores.records import SessionRecord

if TYPE_CHECKING:
    from collections.abc import Mapping

    from turnwall.models import KeyRole
    from turnwall.stores.dynamodb.client import Item, SessionsTable

# Items written before versions were kept have none: they count as version 0.
NEXT_VERSION: Final = "#version = if_not_exists(#version, :zero) + :one"


def version_is(version: int) -> str:
    """A condition that the stored version is `version` (the value bound as :version)."""
    if version == 0:
        return "(attribute_not_exists(#version) OR #version = :version)"
    return "#version = :version"


def expiry_values(now: float, ttl_secs: int) -> Item:
    """``:exact`` and ``:ttl_at``, the exact expiry and the TTL attribute's."""
    # The TTL attribute gets whole seconds rounded up, so DynamoDB never deletes a
    # session that is still live by the exact expiry.
    return {":exact": now + ttl_secs, ":ttl_at": math.ceil(now) + ttl_secs}


def session_item(record: SessionRecord) -> Item:
    item: Item = {
        **session_key(record.tenant, record.session_id),
        "tenant": record.tenant,
        "session_id": record.session_id,
        "incarnation": record.incarnation,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        TTL_ATTRIBUTE: math.ceil(record.expires_at),
        "expires_at_exact": record.expires_at,
        "ttl_secs": record.ttl_secs,
        "message_count": record.message_count,
        "risk_version": record.risk_version,
    }
    optional = {
        "model": record.model,
        "metadata": record.metadata_blob,
        "risk": record.risk_blob,
        "ended_at": record.ended_at,
        "version": record.version or None,
    }
    item.update((name, value) for name, value in optional.items() if value is not None)
    return item


def session_record(item: Mapping[str, Any]) -> SessionRecord:
    return SessionRecord(
        tenant=item["tenant"],
        session_id=item["session_id"],
        incarnation=item["incarnation"],
        created_at=float(item["created_at"]),
        updated_at=float(item["updated_at"]),
        expires_at=float(item["expires_at_exact"]),
        ttl_secs=int(item["ttl_secs"]),
        message_count=int(item["message_count"]),
        model=item.get("model"),
        metadata_blob=item.get("metadata"),
        risk_blob=item.get("risk"),
        risk_version=int(item["risk_version"]),
        ended_at=float(item["ended_at"]) if "ended_at" in item else None,
        version=int(item.get("version", 0)),
    )


def api_key_item(record: ApiKeyRecord) -> Item:
    item: Item = {
        **api_key_key(record.key_hash),
        "key_tenant": record.tenant,  # not `tenant`: keep the index sparse
        "role": record.role,
        "created_at": record.created_at,
    }
    if record.revoked_at is not None:
        item["revoked_at"] = record.revoked_at
    return item


def api_key_record(item: Mapping[str, Any]) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_hash=item[SORT_KEY],
        tenant=item["key_tenant"],
        role=cast("KeyRole", item["role"]),
        created_at=float(item["created_at"]),
        revoked_at=float(item["revoked_at"]) if "revoked_at" in item else None,
    )


# -------------------------------------------------------------------- the session item


def read_session(table: SessionsTable, tenant: str, session_id: str) -> SessionRecord | None:
    """The stored session item (live or not), read consistently."""
    item = table.get(session_key(tenant, session_id))
    return None if item is None else session_record(item)


def put_session(table: SessionsTable, record: SessionRecord, condition: str, values: Item) -> bool:
    """Write the whole session item if `condition` holds; whether it did."""
    try:
        table.put(session_item(record), condition=condition, values=values)
    except ConditionFailed:
        return False
    return True
