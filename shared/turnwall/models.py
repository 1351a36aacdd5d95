"""Domain records shared by the stores, the service layer and the web layer.

Immutable `NamedTuple`s: the stores build them on every call, so they stay cheap and
carry no web framework. The HTTP schemas in `turnwall.http` render them as JSON.
NamedTuples rather than frozen dataclasses because every Lambda function defines them
at import: on Python 3.11 a frozen, slotted dataclass generates its methods with
`exec`, 3.3 M more instructions per class than a NamedTuple, and the 30 records a
session function imported were 7% of its cold start.
"""

from __future__ import annotations

import functools
import time
from typing import Any, Final, Literal, NamedTuple, get_args

Role = Literal["system", "user", "assistant", "tool"]
ROLES: Final[frozenset[str]] = frozenset(get_args(Role))
Decision = Literal["allow", "flag", "block"]
Order = Literal["asc", "desc"]
Status = Literal["active", "ended"]
KeyRole = Literal["scan", "admin"]
# A key's public id: the first hex characters of its digest.
KEY_ID_LENGTH: Final = 16


def iso_utc(epoch_secs: float) -> str:
    """Render epoch seconds as ISO 8601 UTC with milliseconds, e.g. 2026-11-21T14:03:07.123Z."""
    whole, millis = divmod(int(epoch_secs * 1000), 1000)
    return f"{_iso_utc_second(whole)}.{millis:03d}Z"


@functools.lru_cache(maxsize=1024)
def _iso_utc_second(whole_secs: int) -> str:
    # A session object shows three times, and a read shows the same created_at and
    # updated_at again and again: formatting each second once spares two thirds of it.
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole_secs))


class RiskSummary(NamedTuple):
    """The part of a session's risk state shown on the session object."""

    turns_scanned: int = 0
    flagged_turns: int = 0
    session_score: float = 0.0
    decision: Decision = "allow"

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RiskSummary:
        return cls(
            turns_scanned=int(state.get("turns_scanned", 0)),
            flagged_turns=int(state.get("flagged_turns", 0)),
            session_score=float(state.get("session_score", 0.0)),
            decision=state.get("decision", "allow"),
        )


class Session(NamedTuple):
    """A live session as callers see it (plaintext metadata, summarised risk)."""

    tenant: str
    session_id: str
    created_at: float
    updated_at: float
    expires_at: float
    ttl_secs: int
    message_count: int
    model: str | None
    metadata: dict[str, Any]
    risk: RiskSummary
    as_of: float
    ended_at: float | None = None
    # Changes with every write a caller makes (not with reads, scans or expiry): the
    # value of the ETag header, to send back in If-Match.
    etag: str = ""

    @property
    def age_seconds(self) -> float:
        return round(max(0.0, self.as_of - self.created_at), 1)

    @property
    def status(self) -> Status:
        """`ended` once `end_session` made it read-only, else `active`."""
        return "active" if self.ended_at is None else "ended"


class NewMessage(NamedTuple):
    """A message as a caller hands it to `append_messages`."""

    role: Role
    content: str
    name: str | None = None
    metadata: dict[str, Any] | None = None


class Message(NamedTuple):
    """A stored message, decrypted."""

    seq: int
    role: Role
    content: str
    created_at: float
    name: str | None = None
    metadata: dict[str, Any] | None = None


class AppendResult(NamedTuple):
    session_id: str
    message_count: int
    first_seq: int
    last_seq: int
    created: bool


class HistoryPage(NamedTuple):
    session: Session
    messages: list[Message]
    next_cursor: str | None


class SessionPage(NamedTuple):
    sessions: list[Session]
    total: int
    next_cursor: str | None


class RiskState(NamedTuple):
    """A session's full risk state for the scanner, with the version to write back against."""

    session: Session
    state: dict[str, Any]
    version: int = 0


class ApiKeyRecord(NamedTuple):
    """A stored API key: its digest, owner tenant, role, and revocation time if revoked."""

    key_hash: str
    tenant: str
    role: KeyRole
    created_at: float
    revoked_at: float | None = None

    @property
    def key_id(self) -> str:
        return self.key_hash[:KEY_ID_LENGTH]
