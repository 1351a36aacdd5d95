"""Where the Redis store keeps things: key names, and how records are laid out in them.

Key names carry hash tags (``{...}``): every key of one session shares the tag
``{tenant:session_id}`` and every key of one tenant's index the tag ``{tenant}``, so a
script touching them runs on one cluster slot. Times are whole epoch milliseconds, so
Lua arithmetic on them is exact.
"""

from __future__ import annotations

import json
import math
import struct
from typing import TYPE_CHECKING, Final

from turnwall.errors import DecryptionError
from turnwall.models import ApiKeyRecord
from turnwall.stores.records import SessionRecord, StoredMessage

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

# Physical key TTL beyond a session's expiry: only reclaims memory, never decides.
KEY_TTL_GRACE_SECS: Final = 60
API_KEYS_KEY: Final = "tw:keys"
SWEEP_CURSOR_KEY: Final = "tw:sweep:cursor"
SWEEP_CURSOR_TTL_SECS: Final = 24 * 3600
INDEX_KEY_PATTERN: Final = "tw:idx:{*}"  # not the :ids twins, which end in "s"
_INDEX_KEY_PREFIX: Final = "tw:idx:{"

# A stored message: seq, role code and created_at (epoch ms) in 13 bytes, then the blob.
MESSAGE_HEADER: Final = struct.Struct(">IBq")
_ROLE_CODES: Final = ("system", "user", "assistant", "tool")  # the position is stored


def session_keys(tenant: str, session_id: str) -> tuple[str, str]:
    """The session's hash and its message list."""
    tag = f"{{{tenant}:{session_id}}}"
    return f"tw:{tag}:s", f"tw:{tag}:m"


def index_keys(tenant: str) -> tuple[str, str]:
    """The tenant's ids scored by expiry, and the same ids for prefix listing by name."""
    return f"tw:idx:{{{tenant}}}", f"tw:idx:{{{tenant}}}:ids"


def tenant_of_index_key(key: bytes) -> str:
    """The tenant whose index (by expiry) `key` is."""
    return key.decode()[len(_INDEX_KEY_PREFIX) : -1]


def idempotency_key(tenant: str, digest: str) -> str:
    return f"tw:idem:{{{tenant}}}:{digest}"


def rate_key(bucket: str, window: int) -> str:
    return f"tw:rate:{{{bucket}}}:{window}"


def ms(epoch_secs: float) -> int:
    return math.floor(epoch_secs * 1000)


def record_fields(record: SessionRecord) -> list[str | int | bytes]:
    """The hash fields of a new session, except expires_at (the script sets it)."""
    fields: list[str | int | bytes] = [
        "incarnation", record.incarnation,
        "created_at", ms(record.created_at),
        "updated_at", ms(record.updated_at),
        "ttl_secs", record.ttl_secs,
        "message_count", record.message_count,
        "risk_version", record.risk_version,
        "version", record.version,
    ]  # fmt: skip
    if record.model is not None:
        fields += ["model", record.model]
    if record.metadata_blob is not None:
        fields += ["metadata", record.metadata_blob]
    if record.risk_blob is not None:
        fields += ["risk", record.risk_blob]
    if record.ended_at is not None:
        fields += ["ended_at", ms(record.ended_at)]
    return fields


def pairs(flat: Sequence[bytes]) -> dict[bytes, bytes]:
    """A flat HGETALL reply from a script, as a mapping."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


def session_record(tenant: str, session_id: str, fields: Mapping[bytes, bytes]) -> SessionRecord:
    """The record a session hash holds."""
    model, ended_at = fields.get(b"model"), fields.get(b"ended_at")
    return SessionRecord(
        tenant=tenant,
        session_id=session_id,
        incarnation=fields[b"incarnation"].decode(),
        created_at=int(fields[b"created_at"]) / 1000,
        updated_at=int(fields[b"updated_at"]) / 1000,
        expires_at=int(fields[b"expires_at"]) / 1000,
        ttl_secs=int(fields[b"ttl_secs"]),
        message_count=int(fields[b"message_count"]),
        model=None if model is None else model.decode(),
        metadata_blob=fields.get(b"metadata"),
        risk_blob=fields.get(b"risk"),
        risk_version=int(fields.get(b"risk_version", 0)),
        ended_at=None if ended_at is None else int(ended_at) / 1000,
        version=int(fields.get(b"version", 0)),
    )


def api_key_document(record: ApiKeyRecord) -> str:
    """A key record as the JSON stored under its digest in the keys hash."""
    document = {
        "tenant": record.tenant,
        "role": record.role,
        "created_at": record.created_at,
        "revoked_at": record.revoked_at,
    }
    return json.dumps(document)


def api_key_record(key_hash: bytes, document: bytes) -> ApiKeyRecord:
    fields = json.loads(document)
    return ApiKeyRecord(
        key_hash=key_hash.decode(),
        tenant=fields["tenant"],
        role=fields["role"],
        created_at=fields["created_at"],
        revoked_at=fields["revoked_at"],
    )


def pack_message(message: StoredMessage) -> bytes:
    role_code = _ROLE_CODES.index(message.role)
    return MESSAGE_HEADER.pack(message.seq, role_code, ms(message.created_at)) + message.blob


def unpack_message(packed: bytes) -> StoredMessage:
    """Raises DecryptionError for an element that is no packed message (tampered)."""
    try:
        seq, role_code, created_ms = MESSAGE_HEADER.unpack_from(packed)
        role = _ROLE_CODES[role_code]
    except (struct.error, IndexError) as exc:
        raise DecryptionError("a stored message is malformed") from exc
    return StoredMessage(
        seq=seq, role=role, created_at=created_ms / 1000, blob=packed[MESSAGE_HEADER.size :]
    )
