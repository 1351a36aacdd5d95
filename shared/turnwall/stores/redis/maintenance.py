"""The Redis store's maintenance and transfer hooks: sweeps, purges, re-encryption.

The scheduled sweep finds the tenant indexes with SCAN (node by node on a cluster),
prunes them (see `index`), and removes the hash and list of a session it catches
expired but not yet reclaimed by their key TTL, reporting it as expired. Sessions
whose keys Redis already reclaimed leave only an index entry, which says nothing of
how the session ended, so those are pruned without being reported.

Re-encryption and export walk the same tenant indexes, then each tenant's ids by
name, so their cursor can stop inside a tenant of any size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, NamedTuple

from turnwall.stores.cursors import decode_position, encode_position
from turnwall.stores.maintenance import SessionMaintenance, SweepReport, out_of_time
from turnwall.stores.records import EndedSession
from turnwall.stores.redis.index import index_sessions, indexed_ids_after, live_records, prune_index
from turnwall.stores.redis.layout import (
    INDEX_KEY_PATTERN,
    KEY_TTL_GRACE_SECS,
    MESSAGE_HEADER,
    SWEEP_CURSOR_KEY,
    SWEEP_CURSOR_TTL_SECS,
    index_keys,
    ms,
    record_fields,
    session_keys,
    tenant_of_index_key,
)
from turnwall.stores.redis.scripts import PURGE, REPLACE_FIELD, REPLACE_MESSAGE, RESTORE
from turnwall.stores.transfer import SessionTransfer

if TYPE_CHECKING:
    from turnwall.stores.maintenance import ExpiryCallback
    from turnwall.stores.records import SealedField, SessionRecord
    from turnwall.stores.redis.client import RedisConnection

__all__ = ["RedisMaintenance"]

_SCAN_COUNT: Final = 200
# The session hash field that holds each sealed SessionRecord field.
_HASH_FIELDS: Final[dict[SealedField, str]] = {
    "metadata_blob": "metadata",
    "risk_blob": "risk",
    "model": "model",
}
_SWEEP_BATCH: Final = 500


class RedisMaintenance(SessionMaintenance, SessionTransfer):
    """The maintenance and transfer hooks, on Redis."""

    connection: RedisConnection

    def _purge(self, tenant: str, session_id: str, incarnation: str, now: float) -> int:
        now_ms = ms(now)
        removed = int(
            self.connection.run(
                PURGE, keys=session_keys(tenant, session_id), args=[now_ms, incarnation]
            )
        )
        if removed < 0:
            return 0
        # The entry goes only if still scored <= now: a create racing in raised it first.
        return removed + prune_index(self.connection, tenant, now_ms, [session_id])

    def _sweep(
        self,
        now: float,
        max_items: int,
        deadline: float | None,
        cursor: str | None,
        on_expired: ExpiryCallback,
    ) -> SweepReport:
        now_ms = ms(now)
        nodes = self.connection.scan_nodes()
        node, scan_cursor, done = _decode_scan_position(cursor) if cursor else (nodes[0], 0, 0)
        if node not in nodes:  # the cluster changed shape since: start the pass again
            node, scan_cursor, done = nodes[0], 0, 0
        node_index = nodes.index(node)
        ended: list[EndedSession] = []
        removed = examined = 0
        while True:
            next_cursor, found = self._scan_indexes(nodes[node_index], scan_cursor)
            examined += 1
            # SCAN from one cursor returns the same batch unless keys came or went
            # meanwhile; then a tenant may be skipped until the next pass, never lost.
            for position, key in enumerate(found[done:], start=done):
                tenant = tenant_of_index_key(key)
                while True:
                    outcome = self._sweep_tenant(tenant, now_ms, on_expired)
                    ended += outcome.ended
                    removed += outcome.removed
                    examined += outcome.examined
                    if examined >= max_items or out_of_time(deadline):
                        # A tenant with more to prune is taken up again next time.
                        resume = position if outcome.more else position + 1
                        return _report(
                            ended, removed, examined, (nodes[node_index], scan_cursor, resume)
                        )
                    if not outcome.more:
                        break
            done = 0
            following = _next_scan(nodes, node_index, next_cursor)
            if following is None:
                return _report(ended, removed, examined, None)
            node_index, scan_cursor = following
            if examined >= max_items or out_of_time(deadline):
                return _report(ended, removed, examined, (nodes[node_index], scan_cursor, 0))

    def _iterate_sessions(
        self, cursor: str | None, limit: int, now: float
    ) -> tuple[list[SessionRecord], str | None]:
        now_ms = ms(now)
        nodes = self.connection.scan_nodes()
        node, scan_cursor, done, after = (
            _decode_reencrypt_position(cursor) if cursor else (nodes[0], 0, 0, "")
        )
        if node not in nodes:  # the cluster changed shape since: start the pass again
            node, scan_cursor, done, after = nodes[0], 0, 0, ""
        node_index = nodes.index(node)
        records: list[SessionRecord] = []
        while True:
            next_cursor, found = self._scan_indexes(nodes[node_index], scan_cursor)
            for position, key in enumerate(found[done:], start=done):
                tenant = tenant_of_index_key(key)
                while True:
                    wanted = limit - len(records)
                    ids = indexed_ids_after(self.connection, tenant, after, wanted)
                    records += live_records(self.connection, tenant, ids, now_ms)
                    if len(ids) < wanted:
                        after = ""
                        break
                    after = ids[-1]
                    if len(records) >= limit:
                        return records, encode_position(
                            nodes[node_index], scan_cursor, position, after
                        )
                if len(records) >= limit:
                    return records, encode_position(
                        nodes[node_index], scan_cursor, position + 1, ""
                    )
            done = 0
            following = _next_scan(nodes, node_index, next_cursor)
            if following is None:
                return records, None
            node_index, scan_cursor = following

    def _restore_record(self, record: SessionRecord, now: float) -> bool:
        restored = self.connection.run(
            RESTORE,
            keys=session_keys(record.tenant, record.session_id),
            args=[
                ms(now),
                KEY_TTL_GRACE_SECS,
                record.incarnation,
                record.message_count,
                ms(record.expires_at),
                *record_fields(record),
            ],
        )
        return bool(restored)

    def _replace_sealed_field(
        self, record: SessionRecord, field: SealedField, old: bytes | str, new: bytes | str
    ) -> bool:
        replaced = self.connection.run(
            REPLACE_FIELD,
            keys=session_keys(record.tenant, record.session_id),
            args=[record.incarnation, _HASH_FIELDS[field], _as_bytes(old), _as_bytes(new)],
        )
        return bool(replaced)

    def _replace_message_blob(
        self, record: SessionRecord, seq: int, old: bytes, new: bytes
    ) -> bool:
        replaced = self.connection.run(
            REPLACE_MESSAGE,
            keys=session_keys(record.tenant, record.session_id),
            args=[record.incarnation, seq - 1, MESSAGE_HEADER.size, old, new],
        )
        return bool(replaced)

    def _get_sweep_cursor(self) -> str | None:
        cursor = self.connection.get(SWEEP_CURSOR_KEY)
        return None if cursor is None else cursor.decode()

    def _put_sweep_cursor(self, cursor: str | None) -> None:
        if cursor is None:
            self.connection.delete(SWEEP_CURSOR_KEY)
        else:
            self.connection.set(SWEEP_CURSOR_KEY, cursor, ex=SWEEP_CURSOR_TTL_SECS)

    # ------------------------------------------------------------------ helpers

    def _scan_indexes(self, node: str, scan_cursor: int) -> tuple[int, list[bytes]]:
        return self.connection.scan(node, scan_cursor, INDEX_KEY_PATTERN, _SCAN_COUNT, "zset")

    def _sweep_tenant(self, tenant: str, now_ms: int, on_expired: ExpiryCallback) -> _TenantSweep:
        """Prune up to one batch of the tenant's stale index entries, removing and
        reporting the expired sessions still stored behind them."""
        by_expiry, _ = index_keys(tenant)
        stale = self.connection.members_scored_up_to(by_expiry, now_ms, _SWEEP_BATCH)
        ids = [member.decode() for member in stale]
        if not ids:
            return _TenantSweep((), 0, 1, more=False)
        heads = self.connection.pipelined(
            lambda pipe, session_id: pipe.hmget(
                session_keys(tenant, session_id)[0], ["expires_at", "incarnation", "message_count"]
            ),
            ids,
        )
        live: list[tuple[int, str]] = []
        dead: list[str] = []
        expired: list[tuple[str, EndedSession]] = []
        for session_id, (expires_at, incarnation, message_count) in zip(ids, heads, strict=True):
            if expires_at is not None and int(expires_at) > now_ms:
                live.append((int(expires_at), session_id))
                continue
            dead.append(session_id)
            if expires_at is not None and incarnation is not None:
                ended = EndedSession(
                    tenant, session_id, int(message_count or 0), int(expires_at) / 1000
                )
                expired.append((incarnation.decode(), ended))
        if live:
            # Re-scored above now, so the next batch moves on past them.
            index_sessions(self.connection, tenant, live)
        if expired:
            on_expired([ended for _, ended in expired])
        removed = 0
        for incarnation, ended in expired:
            purged = self.connection.run(
                PURGE, keys=session_keys(tenant, ended.session_id), args=[now_ms, incarnation]
            )
            removed += max(0, int(purged))
        removed += prune_index(self.connection, tenant, now_ms, dead)
        return _TenantSweep(
            tuple(ended for _, ended in expired), removed, len(ids), more=len(ids) == _SWEEP_BATCH
        )


class _TenantSweep(NamedTuple):
    ended: tuple[EndedSession, ...]
    removed: int
    examined: int
    more: bool


def _report(
    ended: list[EndedSession],
    removed: int,
    examined: int,
    position: tuple[str, int, int] | None,
) -> SweepReport:
    return SweepReport(
        removed_sessions=tuple(ended),
        removed_items=removed,
        examined_items=examined,
        next_cursor=None if position is None else encode_position(*position),
    )


def _next_scan(nodes: list[str], node_index: int, next_cursor: int) -> tuple[int, int] | None:
    """Where a walk over the tenant indexes goes after a SCAN batch: (node index, SCAN
    cursor) on the same node, or the next node from its start; None when all are done."""
    if next_cursor != 0:
        return node_index, next_cursor
    if node_index + 1 < len(nodes):
        return node_index + 1, 0
    return None


def _decode_scan_position(cursor: str) -> tuple[str, int, int]:
    """Where a sweep stopped: the node, its SCAN cursor, and how many keys of the batch
    that cursor returns are swept already."""
    node, scan_cursor, done = decode_position(cursor, (str, int, int), "sweep")
    return node, scan_cursor, done


def _decode_reencrypt_position(cursor: str) -> tuple[str, int, int, str]:
    """Where a reencrypt step stopped: as a sweep position, plus the last session id
    visited in the tenant it stopped in ("" when it stopped between tenants)."""
    node, scan_cursor, done, after = decode_position(cursor, (str, int, int, str), "reencrypt")
    return node, scan_cursor, done, after


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value
