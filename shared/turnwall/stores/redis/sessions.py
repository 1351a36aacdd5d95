"""The Redis store's session hooks: one Lua script per atomic step on a session.

A session is a hash and a message list under one hash tag (see the package docstring);
creates, touches, appends, risk commits and deletes are each one script, so each is
atomic on its own and runs on the one node that owns the session. Listing goes
through the tenant index (`index`), which may name sessions that are gone.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

from turnwall.stores.redis.index import index_sessions, live_records, mark_deleted, prune_index
from turnwall.stores.redis.layout import (
    KEY_TTL_GRACE_SECS,
    index_keys,
    ms,
    pack_message,
    pairs,
    record_fields,
    session_keys,
    session_record,
    unpack_message,
)
from turnwall.stores.redis.scripts import APPEND, COMMIT_RISK, DELETE, INSERT, READ_MESSAGES, TOUCH
from turnwall.stores.risk import RiskStateStorage

if TYPE_CHECKING:
    from turnwall.stores.records import SessionRecord, StoredMessage, Touch, Version
    from turnwall.stores.redis.client import RedisConnection

__all__ = ["RedisSessions"]


class RedisSessions(RiskStateStorage):
    """The session core and risk state hooks, on Redis."""

    connection: RedisConnection

    def _insert(self, record: SessionRecord, now: float) -> bool:
        index_sessions(self.connection, record.tenant, [(ms(record.expires_at), record.session_id)])
        inserted = self.connection.run(
            INSERT,
            keys=session_keys(record.tenant, record.session_id),
            args=[ms(now), KEY_TTL_GRACE_SECS, record.ttl_secs, *record_fields(record)],
        )
        return bool(inserted)

    def _read(self, tenant: str, session_id: str) -> SessionRecord | None:
        fields = self.connection.hgetall(session_keys(tenant, session_id)[0])
        return session_record(tenant, session_id, fields) if fields else None

    def _touch(
        self,
        tenant: str,
        session_id: str,
        now: float,
        touch: Touch,
        incarnation: str | None = None,
    ) -> SessionRecord | None:
        args: list[str | int | bytes] = [
            ms(now),
            KEY_TTL_GRACE_SECS,
            "" if touch.ttl_secs is None else touch.ttl_secs,
            incarnation or "",
            int(touch.modifies),
            int(touch.end),
            "" if touch.expected_version is None else touch.expected_version,
        ]
        if touch.metadata_blob is not None:
            args.append(touch.metadata_blob)
        flat = self.connection.run(TOUCH, keys=session_keys(tenant, session_id), args=args)
        return None if flat is None else session_record(tenant, session_id, pairs(flat))

    def _delete(
        self, tenant: str, session_id: str, now: float, expected: Version | None = None
    ) -> int | None:
        args: list[str | int] = [ms(now), *(expected or ())]
        outcome, message_count = self.connection.run(
            DELETE, keys=session_keys(tenant, session_id), args=args
        )
        if outcome in (1, 2):
            # Not a removal: see `index` for why a delete only lowers the score.
            mark_deleted(self.connection, tenant, session_id, ms(now))
        return int(message_count) if outcome == 2 else None

    def _commit_append(
        self,
        head: SessionRecord,
        messages: list[StoredMessage],
        model: str | None,
        now: float,
        *,
        creating: bool,
    ) -> SessionRecord | None:
        create_fields: list[str | int | bytes] = []
        if creating:
            index_sessions(
                self.connection, head.tenant, [(ms(now) + head.ttl_secs * 1000, head.session_id)]
            )
            create_fields = record_fields(head)
        flat = self.connection.run(
            APPEND,
            keys=session_keys(head.tenant, head.session_id),
            args=[
                ms(now),
                KEY_TTL_GRACE_SECS,
                head.incarnation,
                head.message_count,
                int(model is not None),
                model or "",
                len(create_fields),
                *create_fields,
                *(pack_message(message) for message in messages),
            ],
        )
        return None if flat is None else session_record(head.tenant, head.session_id, pairs(flat))

    def _read_messages(
        self, record: SessionRecord, first_seq: int, last_seq: int
    ) -> list[StoredMessage]:
        packed = self.connection.run(
            READ_MESSAGES,
            keys=session_keys(record.tenant, record.session_id),
            args=[record.incarnation, first_seq - 1, last_seq - 1],
        )
        return [unpack_message(raw) for raw in packed]

    def _scan_tenant(
        self, tenant: str, prefix: str, after: str | None, limit: int, now: float
    ) -> tuple[list[SessionRecord], int]:
        now_ms = ms(now)
        _, by_name = index_keys(tenant)
        # Ids are ASCII, so every id starting with `prefix` sorts below prefix + 0xff.
        low, high = (
            (b"[" + prefix.encode(), b"(" + prefix.encode() + b"\xff") if prefix else (b"-", b"+")
        )
        ids = [member.decode() for member in self.connection.members_by_name(by_name, low, high)]
        start = bisect.bisect_right(ids, after) if after is not None else 0
        window = set(ids[start : start + limit])
        # One round trip: whole hashes for the likely page, expiry alone for the rest.
        replies = self.connection.pipelined(
            lambda pipe, session_id: (
                pipe.hgetall(session_keys(tenant, session_id)[0])
                if session_id in window
                else pipe.hget(session_keys(tenant, session_id)[0], "expires_at")
            ),
            ids,
        )
        live: list[str] = []
        dead: list[str] = []
        records: dict[str, SessionRecord] = {}
        for session_id, reply in zip(ids, replies, strict=True):
            fields = reply if isinstance(reply, dict) else None
            expires_at = fields.get(b"expires_at") if fields is not None else reply
            if expires_at is None or int(expires_at) <= now_ms:
                dead.append(session_id)
                continue
            live.append(session_id)
            if fields is not None:
                records[session_id] = session_record(tenant, session_id, fields)
        candidates = live[bisect.bisect_right(live, after) :] if after is not None else live
        page = self._fill_page(tenant, candidates, records, limit, now_ms)
        if dead:
            prune_index(self.connection, tenant, now_ms, dead)
        return page, len(live)

    def _commit_risk(
        self, head: SessionRecord, risk_blob: bytes, now: float
    ) -> SessionRecord | None:
        flat = self.connection.run(
            COMMIT_RISK,
            keys=session_keys(head.tenant, head.session_id),
            args=[ms(now), KEY_TTL_GRACE_SECS, head.incarnation, head.risk_version, risk_blob],
        )
        return None if flat is None else session_record(head.tenant, head.session_id, pairs(flat))

    def _fill_page(
        self,
        tenant: str,
        candidates: list[str],
        records: dict[str, SessionRecord],
        limit: int,
        now_ms: int,
    ) -> list[SessionRecord]:
        # Sessions seen live by expiry alone are fetched whole only when earlier ones
        # of the window turned out dead, which is rare: usually no round trip at all.
        page: list[SessionRecord] = []
        position = 0
        while len(page) < limit and position < len(candidates):
            batch = candidates[position : position + limit - len(page)]
            position += len(batch)
            missing = [s for s in batch if s not in records]
            if missing:
                for record in live_records(self.connection, tenant, missing, now_ms):
                    records[record.session_id] = record
            page += [records[s] for s in batch if s in records]
        return page
