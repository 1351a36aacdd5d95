"""Where things live in the sessions table: attribute names and the keys of every item.

The table's shape is template.yaml's; tests check these names against it. Keys are
plain Python values here (see `client.py`); the layout itself is drawn in the package
docstring.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from turnwall.errors import InvalidCursor
from turnwall.stores.cursors import decode_position, encode_position

if TYPE_CHECKING:
    from collections.abc import Mapping

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


def partition(tenant: str, session_id: str) -> str:
    """The partition key shared by a session's items."""
    # Neither tenants nor session ids may contain "#", so the key is unambiguous.
    return f"S#{tenant}#{session_id}"


def session_key(tenant: str, session_id: str) -> dict[str, Any]:
    return {PARTITION_KEY: partition(tenant, session_id), SORT_KEY: SESSION_SORT_KEY}


def message_sort_key(incarnation: str, seq: int) -> str:
    return f"{MESSAGE_SORT_KEY_PREFIX}{incarnation}#{seq:010d}"


def incarnation_of(message_sort_key: str) -> str:
    # M#<incarnation>#<seq>[#<part>]
    return message_sort_key.split("#", 2)[1]


def primary_key(item: Mapping[str, Any]) -> dict[str, Any]:
    """The primary key of `item` (any item of the table)."""
    return {PARTITION_KEY: item[PARTITION_KEY], SORT_KEY: item[SORT_KEY]}


def api_key_key(key_hash: str) -> dict[str, Any]:
    return {PARTITION_KEY: API_KEYS_PARTITION, SORT_KEY: key_hash}


def idempotency_key(tenant: str, digest: str) -> dict[str, Any]:
    return {PARTITION_KEY: f"I#{tenant}", SORT_KEY: digest}


def counter_key(bucket: str, window: int) -> dict[str, Any]:
    return {PARTITION_KEY: f"R#{bucket}#{window}", SORT_KEY: COUNTER_SORT_KEY}


def encode_scan_cursor(last_key: Mapping[str, Any]) -> str:
    """The cursor of a table scan that stopped after `last_key`."""
    return encode_position(last_key[PARTITION_KEY], last_key[SORT_KEY])


def decode_scan_cursor(cursor: str) -> dict[str, Any]:
    """The primary key a scan resumes after.

    Raises:
        InvalidCursor: not a cursor `encode_scan_cursor` made.
    """
    pk, sk = decode_position(cursor, (str, str), "sweep")
    if not pk or not sk:
        raise InvalidCursor("sweep cursor is malformed", details={"field": "cursor"})
    return {PARTITION_KEY: pk, SORT_KEY: sk}
