"""The tenant index: which session ids a tenant has, for listing and sweeping.

The index lives in another slot than the sessions it lists, so it cannot be updated
in the same script. It is kept a superset of the live sessions instead::

    create:  ZADD id (score = now + ttl) ──> insert script (refused if a live one exists)
    listing: ZRANGEBYLEX ──> check every session hash ──> only live ones are returned
    prune:   ids scored <= now ──> check hashes ──> drop an id only while its score <= now

A create raises the score above ``now`` *before* its insert, so a prune racing it
finds the score too high and keeps the id; a live id whose score lags behind its
slid expiry is re-scored, never removed. A delete lowers the score to ``now`` plus
`CREATE_IN_FLIGHT_SECS`, so a deleted id is pruned soon after, while a create racing
the delete stays protected for that long (ample for a call bounded by the 2 s socket
timeout). The index keys carry no TTL: one refreshed only by creates could drop the
entry of a session kept alive for longer, and Redis deletes an emptied zset anyway.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from turnwall.stores.redis.layout import index_keys, session_keys, session_record
from turnwall.stores.redis.scripts import INDEX_ADD, INDEX_PRUNE

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from turnwall.stores.records import SessionRecord
    from turnwall.stores.redis.client import RedisConnection

CREATE_IN_FLIGHT_SECS: Final = 60


def index_sessions(
    connection: RedisConnection, tenant: str, entries: Sequence[tuple[int, str]]
) -> None:
    """Index (score, id) entries, only ever raising a score."""
    args: list[int | str] = []
    for score, session_id in entries:
        args += [score, session_id]
    connection.run(INDEX_ADD, keys=index_keys(tenant), args=args)


def mark_deleted(connection: RedisConnection, tenant: str, session_id: str, now_ms: int) -> None:
    """Lower a deleted session's score, so a prune drops it soon (see above why not now)."""
    by_expiry, _ = index_keys(tenant)
    connection.lower_score(by_expiry, session_id, now_ms + CREATE_IN_FLIGHT_SECS * 1000)


def prune_index(
    connection: RedisConnection, tenant: str, cutoff_ms: int, session_ids: Sequence[str]
) -> int:
    """Drop those of `session_ids` still scored <= `cutoff_ms`; how many went."""
    if not session_ids:
        return 0
    return int(connection.run(INDEX_PRUNE, keys=index_keys(tenant), args=[cutoff_ms, *session_ids]))


def indexed_ids_after(
    connection: RedisConnection, tenant: str, after: str, count: int
) -> list[str]:
    """Up to `count` of the tenant's indexed ids, ascending, strictly after `after`."""
    _, by_name = index_keys(tenant)
    low = b"(" + after.encode() if after else b"-"
    return [member.decode() for member in connection.members_by_name(by_name, low, b"+", count)]


def live_records(
    connection: RedisConnection, tenant: str, ids: Sequence[str], now_ms: int
) -> list[SessionRecord]:
    """The records of those of `ids` live at `now_ms`, in order, in one round trip."""
    replies = connection.pipelined(
        lambda pipe, session_id: pipe.hgetall(session_keys(tenant, session_id)[0]), ids
    )
    return [
        session_record(tenant, session_id, fields)
        for session_id, fields in zip(ids, replies, strict=True)
        if hash_is_live(fields, now_ms)
    ]


def hash_is_live(fields: Mapping[bytes, bytes], now_ms: int) -> bool:
    """Whether a session hash (HGETALL; empty when gone) is live at `now_ms`."""
    return bool(fields) and int(fields[b"expires_at"]) > now_ms
