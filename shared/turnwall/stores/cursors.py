"""Opaque cursors: the one place a store turns a position into a string and back.

Two shapes, both URL-safe base64 so they travel in query strings and JSON alike:

- a *listing cursor* (``kind:value``, unpadded) for the pages callers see, where
  ``kind`` names the listing (``l`` for sessions, ``asc``/``desc`` for history) so a
  cursor of one listing is refused by another;
- a *position* (a JSON array of strings and counts) for the resumable passes a
  backend makes over its whole keyspace: sweeps, re-encryption, export.

Decoding never trusts its input: anything malformed raises `InvalidCursor`.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING, Any

from turnwall.errors import InvalidCursor

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "decode_listing_cursor",
    "decode_position",
    "decode_seq_cursor",
    "encode_listing_cursor",
    "encode_position",
]


def encode_listing_cursor(kind: str, value: str) -> str:
    """The cursor of listing `kind` that resumes after `value`."""
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode().rstrip("=")


def decode_listing_cursor(cursor: str, kind: str) -> str:
    """The value `encode_listing_cursor(kind, value)` put into `cursor`.

    Raises:
        InvalidCursor: malformed, or issued by another listing.
    """
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        found_kind, _, value = (
            base64.urlsafe_b64decode(padded.encode("ascii")).decode().partition(":")
        )
    except (ValueError, UnicodeError, binascii.Error) as exc:
        raise InvalidCursor("cursor is malformed", details={"field": "cursor"}) from exc
    if found_kind != kind or not value:
        raise InvalidCursor("cursor does not belong to this listing", details={"field": "cursor"})
    return value


def decode_seq_cursor(cursor: str, order: str) -> int:
    """The message seq a history cursor of `order` (asc or desc) resumes at.

    Raises:
        InvalidCursor: malformed, of the other order, or not a seq of 1 or more.
    """
    value = decode_listing_cursor(cursor, order)
    if not value.isdigit() or int(value) < 1:
        raise InvalidCursor("cursor is malformed", details={"field": "cursor"})
    return int(value)


def encode_position(*parts: str | int) -> str:
    """Where a pass over the keyspace stopped, as an opaque cursor."""
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode()


def decode_position(cursor: str, shape: Sequence[type[str] | type[int]], what: str) -> list[Any]:
    """The parts `encode_position` put into `cursor`, checked against `shape`: one
    type per part, `str` for a string, `int` for a count (an integer of 0 or more).
    `what` names the pass in the error ("sweep", "reencrypt").

    Raises:
        InvalidCursor: malformed, or not of `shape`.
    """
    malformed = f"{what} cursor is malformed"
    try:
        parts = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
    except (ValueError, TypeError, UnicodeError, binascii.Error) as exc:
        raise InvalidCursor(malformed, details={"field": "cursor"}) from exc
    if not (
        isinstance(parts, list)
        and len(parts) == len(shape)
        and all(_fits(part, kind) for part, kind in zip(parts, shape, strict=True))
    ):
        raise InvalidCursor(malformed, details={"field": "cursor"})
    return parts


def _fits(part: object, kind: type[str] | type[int]) -> bool:
    if kind is int:
        return isinstance(part, int) and not isinstance(part, bool) and part >= 0
    return isinstance(part, str)
