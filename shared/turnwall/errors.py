"""The one error hierarchy of Turnwall.

Every failure the core can report is a subclass of `TurnwallError`. Each class carries
the HTTP status and the spec's snake_case error code, so the web layer maps errors to
responses in exactly one place and nothing ever matches on message text.
"""

from __future__ import annotations

from typing import Any, ClassVar


class TurnwallError(Exception):
    """Base class of every error Turnwall raises on purpose."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ConfigurationError(TurnwallError):
    """The settings cannot work (unknown store scheme, missing key, bad value)."""

    code = "configuration_error"


class ValidationFailed(TurnwallError):
    """A request value breaks a rule of the spec."""

    status = 422
    code = "validation_error"


class InvalidSessionId(ValidationFailed):
    """A session id outside 1-128 characters of [A-Za-z0-9_.:@-]."""

    code = "invalid_session_id"


class InvalidCursor(ValidationFailed):
    """A paging cursor that this service did not issue for this listing."""

    code = "invalid_cursor"


class SessionNotFound(TurnwallError):
    """No live session with that id in the caller's tenant (expired counts as missing)."""

    status = 404
    code = "session_not_found"


class SessionExists(TurnwallError):
    """Create was asked for an id that already names a live session."""

    status = 409
    code = "session_exists"


class SessionFull(TurnwallError):
    """An append would take the session past IW_MAX_MESSAGES."""

    status = 409
    code = "session_full"


class SessionEnded(TurnwallError):
    """The session was ended: it is read-only until it expires."""

    status = 409
    code = "session_ended"


class PreconditionFailed(TurnwallError):
    """The session changed since the caller read the ETag it sent in If-Match."""

    status = 412
    code = "precondition_failed"


class IdempotencyKeyReused(TurnwallError):
    """An Idempotency-Key came back with a different request than its first use."""

    status = 422
    code = "idempotency_key_reused"


class IdempotencyInProgress(TurnwallError):
    """The first request with this Idempotency-Key has not finished yet."""

    status = 409
    code = "idempotency_in_progress"


class ConcurrentUpdate(TurnwallError):
    """An optimistic write lost its race too many times in a row."""

    status = 409
    code = "concurrent_update"


class StoreUnavailable(TurnwallError):
    """The backend cannot be reached or keeps throttling after retries."""

    status = 503
    code = "store_unavailable"
    retry_after_secs: ClassVar[int] = 1


class DecryptionError(TurnwallError):
    """Stored data does not decrypt here: tampered, moved, or under an unknown key."""

    status = 500
    code = "undecryptable_data"


class Unauthorized(TurnwallError):
    """No credentials were presented."""

    status = 401
    code = "unauthorized"


class InvalidApiKey(TurnwallError):
    """The presented key is unknown, malformed or revoked."""

    status = 401
    code = "invalid_api_key"


class Forbidden(TurnwallError):
    """The key's role lacks the permission the operation needs."""

    status = 403
    code = "forbidden"


class KeyNotFound(TurnwallError):
    """No API key with that id."""

    status = 404
    code = "key_not_found"


class RateLimited(TurnwallError):
    """Too many requests in the current window for a key or a client address."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_secs: int, details: object = None) -> None:
        super().__init__(message, details=details)
        self.retry_after_secs = retry_after_secs


class ContentBlocked(TurnwallError):
    """The scan blocked a chat turn; nothing was sent upstream or stored."""

    status = 400
    code = "content_blocked"


class NoUpstream(TurnwallError):
    """Chat needs IW_UPSTREAM_URL or IW_UPSTREAM=bedrock:<model-id>."""

    status = 503
    code = "no_upstream"


class UpstreamError(TurnwallError):
    """The upstream model answered with an error or garbage."""

    status = 502
    code = "upstream_error"


class UpstreamTimeout(TurnwallError):
    """The upstream model did not answer in time."""

    status = 504
    code = "upstream_timeout"
