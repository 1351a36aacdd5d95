"""Sealed values: where each belongs, how it is laid out, sealing and opening it.

Every ciphertext is bound to its place (tenant, session id, incarnation, field, and for
messages seq and role), so a value copied to another session, another incarnation of
the same id or another seq does not open. Here are the binding contexts, the small
encodings (JSON bodies, sealed model tokens), and the functions that seal a record's
values and open them into what callers see. The store rooms use them; backends only
ever store and compare the ciphertexts.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING, Any, Final

from turnwall.crypto import binding_context
from turnwall.models import Message, RiskSummary, Session
from turnwall.stores.records import StoredMessage

if TYPE_CHECKING:
    from turnwall.crypto import Cipher
    from turnwall.models import NewMessage, Role
    from turnwall.stores.records import SessionRecord

# Marks a stored model as sealed; one stored before models were sealed is plaintext.
SEALED_MODEL_PREFIX: Final = "sealed:"


def message_context(record: SessionRecord, seq: int, role: str) -> bytes:
    """Where a message ciphertext belongs: tenant, session, incarnation, seq and role."""
    return binding_context(record.tenant, record.session_id, record.incarnation, "msg", seq, role)


def metadata_context(record: SessionRecord) -> bytes:
    return binding_context(record.tenant, record.session_id, record.incarnation, "metadata")


def risk_context(record: SessionRecord) -> bytes:
    return binding_context(record.tenant, record.session_id, record.incarnation, "risk")


def model_context(record: SessionRecord) -> bytes:
    return binding_context(record.tenant, record.session_id, record.incarnation, "model")


def model_token(sealed: bytes) -> str:
    return SEALED_MODEL_PREFIX + base64.urlsafe_b64encode(sealed).decode("ascii")


def sealed_model_bytes(stored: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(stored.removeprefix(SEALED_MODEL_PREFIX))
    except (ValueError, binascii.Error):
        return b""  # not a token: opening it fails as for any tampered value


def dump_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def message_body(message: NewMessage) -> bytes:
    body: dict[str, Any] = {"c": message.content}
    if message.name is not None:
        body["n"] = message.name
    if message.metadata is not None:
        body["m"] = message.metadata
    return dump_json(body)


# -------------------------------------------------------------------- sealing and opening


def open_session(cipher: Cipher, record: SessionRecord, now: float) -> Session:
    """The session as callers see it at `now`: metadata, risk summary and model opened."""
    metadata: dict[str, Any] = {}
    if record.metadata_blob is not None:
        metadata = json.loads(cipher.open(record.metadata_blob, metadata_context(record)))
    risk = RiskSummary()
    if record.risk_blob is not None:
        risk = RiskSummary.from_state(
            json.loads(cipher.open(record.risk_blob, risk_context(record)))
        )
    return Session(
        tenant=record.tenant,
        session_id=record.session_id,
        created_at=record.created_at,
        updated_at=record.updated_at,
        expires_at=record.expires_at,
        ttl_secs=record.ttl_secs,
        message_count=record.message_count,
        model=open_model(cipher, record),
        metadata=metadata,
        risk=risk,
        as_of=now,
        ended_at=record.ended_at,
        etag=record.etag,
    )


def seal_model(cipher: Cipher, record: SessionRecord, model: str) -> str:
    """The model name as stored: a sealed token bound to the session."""
    sealed = cipher.seal(model.encode(), model_context(record))
    return model_token(sealed)


def open_model(cipher: Cipher, record: SessionRecord) -> str | None:
    """The session's model name, from a sealed token or plaintext stored before sealing."""
    stored = record.model
    if stored is None or not stored.startswith(SEALED_MODEL_PREFIX):
        return stored  # written in plaintext before models were sealed
    return cipher.open(sealed_model_bytes(stored), model_context(record)).decode()


def seal_metadata(cipher: Cipher, record: SessionRecord, metadata_json: bytes) -> bytes:
    return cipher.seal(metadata_json, metadata_context(record))


def seal_message(
    cipher: Cipher, record: SessionRecord, seq: int, role: str, body: bytes, now: float
) -> StoredMessage:
    """Message `seq` as stored: readable seq, role and time, the body sealed at its place."""
    blob = cipher.seal(body, message_context(record, seq, role))
    return StoredMessage(seq=seq, role=role, created_at=now, blob=blob)


def open_message(cipher: Cipher, record: SessionRecord, stored: StoredMessage) -> Message:
    body = json.loads(cipher.open(stored.blob, message_context(record, stored.seq, stored.role)))
    role: Role = stored.role  # type: ignore[assignment]  # bound into the ciphertext
    return Message(
        seq=stored.seq,
        role=role,
        content=body["c"],
        created_at=stored.created_at,
        name=body.get("n"),
        metadata=body.get("m"),
    )


def moved(cipher: Cipher, blob: bytes, old_context: bytes, new_context: bytes) -> bytes:
    """A sealed value opened at its old place and sealed for a new one."""
    return cipher.seal(cipher.open(blob, old_context), new_context)
