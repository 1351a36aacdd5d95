"""The spec's rules for ids, TTLs, metadata and messages, checked in one place."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from turnwall.errors import InvalidSessionId, ValidationFailed
from turnwall.models import ROLES

if TYPE_CHECKING:
    from collections.abc import Sequence

    from turnwall.models import NewMessage

SESSION_ID_RULE: Final = "1-128 characters from [A-Za-z0-9_.:@-]"
_SESSION_ID = re.compile(r"[A-Za-z0-9_.:@-]{1,128}")
_TENANT = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MIN_TTL_SECS: Final = 60
MAX_METADATA_BYTES: Final = 4096
MAX_MESSAGES_PER_APPEND: Final = 100
# Long enough for any OpenAI model name or Bedrock inference profile ARN.
MAX_MODEL_CHARS: Final = 256
MAX_NAME_CHARS: Final = 64  # OpenAI's limit for a message's `name`
NOT_UNICODE: Final = "must be valid Unicode text (it holds an unpaired surrogate escape)"
# A JSON escape of a UTF-16 surrogate: a body without one cannot decode to a lone one.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class Limits(NamedTuple):
    """The configurable bounds a store enforces (see `Settings`)."""

    default_ttl_secs: int = 1800
    max_ttl_secs: int = 604800
    max_message_bytes: int = 131072
    max_messages: int = 10000


def check_session_id(session_id: object) -> str:
    if not isinstance(session_id, str) or not _SESSION_ID.fullmatch(session_id):
        raise InvalidSessionId(
            f"session_id must be {SESSION_ID_RULE}",
            details={"field": "session_id", "rule": SESSION_ID_RULE},
        )
    return session_id


def check_tenant(tenant: str) -> str:
    if not _TENANT.fullmatch(tenant):
        raise ValidationFailed(
            "tenant must be 1-64 characters from [A-Za-z0-9_.-]", details={"field": "tenant"}
        )
    return tenant


def check_ttl(ttl_secs: object, limits: Limits) -> int:
    return check_count(ttl_secs, "ttl_secs", (MIN_TTL_SECS, limits.max_ttl_secs))


def check_count(value: object, field: str, bounds: tuple[int, int] | None = None) -> int:
    """`value` as an int within `bounds` (inclusive), or any positive int when None; a
    bool is no int.

    Raises:
        ValidationFailed: naming `field` and what it must be.
    """
    low, high = bounds if bounds is not None else (1, None)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        wanted = "a positive integer" if high is None else f"an integer from {low} to {high}"
        raise ValidationFailed(f"{field} must be {wanted}", details={"field": field})
    return value


def check_model(model: object) -> str | None:
    """A model name: a string of at most MAX_MODEL_CHARS characters, or None.

    Raises:
        ValidationFailed: naming the field.
    """
    return _check_short_text(model, "model", MAX_MODEL_CHARS)


def _check_short_text(value: object, field: str, max_chars: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_chars:
        raise ValidationFailed(
            f"{field} must be a string of at most {max_chars} characters, or null",
            details={"field": field},
        )
    if not is_unicode_text(value):
        raise ValidationFailed(f"{field} {NOT_UNICODE}", details={"field": field})
    return value


def encode_metadata(metadata: object, field: str = "metadata") -> bytes:
    """Serialize session metadata, refusing non-objects and anything over 4 KiB."""
    if not isinstance(metadata, dict):
        raise ValidationFailed(f"{field} must be a JSON object", details={"field": field})
    encoded = _dump_json(metadata, field)
    if len(encoded) > MAX_METADATA_BYTES:
        raise ValidationFailed(
            f"{field} must serialize to at most {MAX_METADATA_BYTES} bytes",
            details={"field": field, "bytes": len(encoded)},
        )
    return encoded


def check_messages(messages: Sequence[NewMessage], limits: Limits) -> None:
    if not 1 <= len(messages) <= MAX_MESSAGES_PER_APPEND:
        raise ValidationFailed(
            f"messages must hold 1 to {MAX_MESSAGES_PER_APPEND} items",
            details={"field": "messages"},
        )
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if message.role not in ROLES:
            raise ValidationFailed(
                f"{where}.role must be one of system, user, assistant, tool",
                details={"field": f"{where}.role"},
            )
        if not isinstance(message.content, str):
            raise ValidationFailed(
                f"{where}.content must be a string", details={"field": f"{where}.content"}
            )
        try:
            size = len(message.content.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise ValidationFailed(
                f"{where}.content must be valid Unicode text",
                details={"field": f"{where}.content"},
            ) from exc
        if size > limits.max_message_bytes:
            raise ValidationFailed(
                f"{where}.content exceeds {limits.max_message_bytes} bytes of UTF-8",
                details={"field": f"{where}.content"},
            )
        _check_short_text(message.name, f"{where}.name", MAX_NAME_CHARS)
        if message.metadata is not None:
            encode_metadata(message.metadata, f"{where}.metadata")


def lone_surrogate_field(body: bytes) -> str | None:
    """The field (dotted, as validation errors name fields) of the first string in the
    JSON `body` that holds a lone UTF-16 surrogate, or None.

    Python decodes `"\\ud800"` to a str that no store, cipher or hash can encode, so
    such a body is refused as a whole before it reaches any of them. A body that is
    not JSON gives None: parsing it later reports that.
    """
    if not _SURROGATE_ESCAPE.search(body):
        return None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    pending: list[tuple[str, Any]] = [("body", document)]
    while pending:  # iterative: a deeply nested body must not exhaust the stack
        field, value = pending.pop()
        if isinstance(value, str):
            if not is_unicode_text(value):
                return field
        elif isinstance(value, dict):
            for key in value:
                if not is_unicode_text(key):
                    return field
            children = [(_child(field, key), item) for key, item in value.items()]
            pending.extend(reversed(children))
        elif isinstance(value, list):
            children = [(_child(field, index), item) for index, item in enumerate(value)]
            pending.extend(reversed(children))
    return None


def _child(field: str, key: object) -> str:
    return str(key) if field == "body" else f"{field}.{key}"


def is_unicode_text(text: str) -> bool:
    """Whether `text` encodes to UTF-8 (holds no lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _dump_json(value: Any, field: str) -> bytes:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        raise ValidationFailed(
            f"{field} must be JSON-serializable", details={"field": field}
        ) from exc
