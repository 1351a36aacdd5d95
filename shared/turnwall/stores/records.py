"""What a backend stores and hands back: the records every store room shares.

Readable bookkeeping beside sealed values: a backend can compare expiry, versions and
incarnations in its own atomic step (a Lua script, a condition expression) without ever
holding a key, while metadata, risk state, model and message bodies stay ciphertexts.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Final, Literal, NamedTuple

__all__ = [
    "ENDING",
    "READ_ONLY",
    "BulkDeletion",
    "EndedSession",
    "SealedField",
    "SessionRecord",
    "StoredMessage",
    "Touch",
    "Version",
    "new_incarnation",
]

# A session's incarnation and version: what an If-Match pins a write to.
Version = tuple[str, int]
# The SessionRecord fields that hold a sealed value re-encryption may rewrite.
SealedField = Literal["metadata_blob", "risk_blob", "model"]


class SessionRecord(NamedTuple):
    """A session as a backend stores it: readable bookkeeping, sealed metadata and risk."""

    tenant: str
    session_id: str
    incarnation: str
    created_at: float
    updated_at: float
    expires_at: float
    ttl_secs: int
    message_count: int
    model: str | None = None
    metadata_blob: bytes | None = None
    risk_blob: bytes | None = None
    risk_version: int = 0
    ended_at: float | None = None  # set once by end_session: read-only from then on
    version: int = 0  # +1 on every write a caller makes: appends, updates, ending

    def is_live(self, now: float) -> bool:
        return self.expires_at > now

    @property
    def etag(self) -> str:
        """A strong ETag naming the incarnation and version of the session."""
        digest = hashlib.blake2b(f"{self.incarnation}.{self.version}".encode(), digest_size=8)
        return f'"{digest.hexdigest()}"'


class StoredMessage(NamedTuple):
    """A message as a backend stores it: readable seq, role and time; sealed body."""

    seq: int
    role: str
    created_at: float
    blob: bytes


class EndedSession(NamedTuple):
    """A session that expired or was deleted: what lifecycle events report.

    ``ended_at`` is the expiry for an expired session and the deletion time for a
    deleted one (epoch secs); ``message_count`` is the count it ended with.
    """

    tenant: str
    session_id: str
    message_count: int
    ended_at: float


class BulkDeletion(NamedTuple):
    """What one `SessionStore.delete_sessions` call deleted, and how many live
    sessions matched its prefix beyond what it examined."""

    deleted: list[EndedSession]
    remaining: int


class Touch(NamedTuple):
    """What `_touch` changes besides sliding the expiry.

    ``expires_at`` becomes ``now + (ttl_secs or the stored ttl)``; ``updated_at``
    becomes ``now`` only when something the caller sees was changed.
    """

    ttl_secs: int | None = None
    metadata_blob: bytes | None = None
    # Set ``ended_at = now`` unless already set. Any other change is refused (None)
    # for an ended session: it is read-only.
    end: bool = False
    # Refuse (None) unless the stored version is this one (an If-Match precondition).
    expected_version: int | None = None

    @property
    def modifies(self) -> bool:
        return self.ttl_secs is not None or self.metadata_blob is not None or self.end


READ_ONLY: Final = Touch()
ENDING: Final = Touch(end=True)


def new_incarnation(now: float) -> str:
    """A time-ordered id telling apart successive sessions that reuse one session id."""
    return f"{int(now * 1000):011x}{secrets.token_hex(4)}"
