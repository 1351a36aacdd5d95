"""Idempotency keys: replaying the answer to a request sent twice.

The public flow lives here, as in Powertools' idempotency persistence layer: claim a
key before running the request, then store its answer (or release the claim when it
failed); a repeat within the window gets the stored answer. A backend implements two
small hooks: put a sealed record (optionally only if none is live) and delete one.
Records are sealed and bound to their tenant and key digest; expiry is compared here on
every read, never left to the backend's TTL, which may reclaim a record much later::

    first:  claim(until = now + hold) ── run the request ── finish(answer, until = now + keep)
    repeat: claim ── finds the claim: IdempotencyInProgress (retry shortly)
            claim ── finds the answer: replay it
            claim ── finds a lapsed claim (its process died): take it over
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Final, NamedTuple

from turnwall.crypto import binding_context
from turnwall.errors import (
    DecryptionError,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    ValidationFailed,
)
from turnwall.stores.sealing import dump_json
from turnwall.validation import check_tenant

if TYPE_CHECKING:
    from collections.abc import Callable

    from turnwall.crypto import Cipher

__all__ = ["IDEMPOTENCY_HOLD_SECS", "IdempotencyStorage", "StoredResponse"]

_IDEMPOTENCY_KEY: Final = re.compile(r"[\x21-\x7e][\x20-\x7e]{0,254}")
# How long a claimed idempotency key waits for its request to finish (past any Lambda
# timeout of the functions that take keys) before another request may claim it.
IDEMPOTENCY_HOLD_SECS: Final = 120


class StoredResponse(NamedTuple):
    """The answer to the first request made with an idempotency key, to replay."""

    status: int
    body: bytes
    headers: dict[str, str]


class IdempotencyStorage(ABC):
    """Claims and stored answers of idempotency keys, per tenant."""

    cipher: Cipher
    clock: Callable[[], float]

    def claim_idempotency_key(
        self, tenant: str, key: str, fingerprint: str, hold_secs: int = IDEMPOTENCY_HOLD_SECS
    ) -> StoredResponse | None:
        """Claim `key` for a request (`fingerprint` names what it asks for). None: it is
        ours, run the request and then `finish_` or `release_idempotency_key`; else the
        stored answer of the first request with this key, to replay.

        A claim not finished within `hold_secs` (its process died) lapses.

        Raises:
            IdempotencyKeyReused: the key was first used for another request.
            IdempotencyInProgress: the first request with this key is still running.
            ValidationFailed: the key is malformed.
        """
        check_tenant(tenant)
        digest = _idempotency_digest(key)
        context = _idempotency_context(tenant, digest)
        now = self.clock()
        until = now + hold_secs
        claim = self.cipher.seal(dump_json({"fingerprint": fingerprint, "until": until}), context)
        existing = self._put_idempotency(tenant, digest, claim, until, now, True)
        if existing is None:
            return None
        try:
            stored = json.loads(self.cipher.open(existing, context))
        except DecryptionError:
            stored = {"until": now}  # under a key no longer configured: as good as lapsed
        # Compared here, not left to the backend's TTL, which may reclaim it much later.
        if stored["until"] <= now:
            self._put_idempotency(tenant, digest, claim, until, now, False)
            return None
        if stored["fingerprint"] != fingerprint:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was used for a different request",
                details={"field": "Idempotency-Key"},
            )
        if "status" not in stored:
            raise IdempotencyInProgress(
                "the first request with this Idempotency-Key is still being processed; "
                "retry shortly"
            )
        return StoredResponse(
            stored["status"], base64.b64decode(stored["body"]), stored.get("headers", {})
        )

    def finish_idempotency_key(
        self,
        tenant: str,
        key: str,
        fingerprint: str,
        response: StoredResponse,
        keep_secs: int,
    ) -> None:
        """Store the answer to replay for `keep_secs` to repeats of the claimed request."""
        digest = _idempotency_digest(key)
        now = self.clock()
        document = {
            "fingerprint": fingerprint,
            "until": now + keep_secs,
            "status": response.status,
            "body": base64.b64encode(response.body).decode("ascii"),
            "headers": response.headers,
        }
        sealed = self.cipher.seal(dump_json(document), _idempotency_context(tenant, digest))
        self._put_idempotency(tenant, digest, sealed, now + keep_secs, now, False)

    def release_idempotency_key(self, tenant: str, key: str) -> None:
        """Give up a claim (the request failed), so a retry with the key runs afresh."""
        self._delete_idempotency(tenant, _idempotency_digest(key))

    @abstractmethod
    def _put_idempotency(
        self, tenant: str, digest: str, blob: bytes, until: float, now: float, only_if_absent: bool
    ) -> bytes | None:
        """Store `blob` under the tenant's key `digest` until `until`. With
        `only_if_absent`, only while no record live at `now` is stored, and then return
        that record's blob instead (None when stored)."""

    @abstractmethod
    def _delete_idempotency(self, tenant: str, digest: str) -> None:
        """Remove the record under `digest`, if any."""


def _idempotency_digest(key: str) -> str:
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        raise ValidationFailed(
            "Idempotency-Key must be 1 to 255 printable ASCII characters",
            details={"field": "Idempotency-Key"},
        )
    return hashlib.sha256(key.encode()).hexdigest()


def _idempotency_context(tenant: str, digest: str) -> bytes:
    return binding_context(tenant, "idempotency", digest)
