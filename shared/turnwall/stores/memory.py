"""The embedded store: one process, one lock, nothing on disk."""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from turnwall.stores.base import SessionStore
from turnwall.stores.cursors import decode_position, encode_position
from turnwall.stores.maintenance import SweepReport
from turnwall.stores.records import EndedSession, SessionRecord, StoredMessage, Touch

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from turnwall.crypto import Cipher
    from turnwall.models import ApiKeyRecord
    from turnwall.stores.maintenance import ExpiryCallback
    from turnwall.stores.records import SealedField, Version
    from turnwall.validation import Limits

_Key = tuple[str, str]


@dataclass
class MemoryState:
    """The data of a memory store; several store objects may share one (e.g. two ciphers)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    sessions: dict[_Key, SessionRecord] = field(default_factory=dict)
    messages: dict[_Key, list[StoredMessage]] = field(default_factory=dict)
    ids_by_tenant: dict[str, list[str]] = field(default_factory=dict)  # sorted, for prefixes
    api_keys: dict[str, ApiKeyRecord] = field(default_factory=dict)
    hits: dict[tuple[str, int], int] = field(default_factory=dict)
    idempotency: dict[_Key, tuple[bytes, float]] = field(default_factory=dict)
    sweep_cursor: str | None = None


class MemorySessionStore(SessionStore):
    """Thread-safe in-memory store for `turnwall serve` and tests (`memory://`)."""

    def __init__(
        self,
        cipher: Cipher,
        limits: Limits | None = None,
        clock: Callable[[], float] | None = None,
        *,
        state: MemoryState | None = None,
    ) -> None:
        super().__init__(cipher, limits, clock)
        self.state = state or MemoryState()
        self._lock = self.state.lock
        self._sessions = self.state.sessions
        self._messages = self.state.messages
        self._ids_by_tenant = self.state.ids_by_tenant

    def ping(self) -> None:
        return None

    def _insert(self, record: SessionRecord, now: float) -> bool:
        key = (record.tenant, record.session_id)
        with self._lock:
            current = self._sessions.get(key)
            if current is not None and current.is_live(now):
                return False
            self._put(key, record, [])
            return True

    def _read(self, tenant: str, session_id: str) -> SessionRecord | None:
        with self._lock:
            return self._sessions.get((tenant, session_id))

    def _touch(
        self, tenant: str, session_id: str, now: float, touch: Touch, incarnation: str | None = None
    ) -> SessionRecord | None:
        key = (tenant, session_id)
        with self._lock:
            current = self._sessions.get(key)
            if current is None or not current.is_live(now):
                return None
            if incarnation is not None and current.incarnation != incarnation:
                return None
            if current.ended_at is not None and touch.modifies and not touch.end:
                return None
            if touch.expected_version is not None and current.version != touch.expected_version:
                return None
            ttl = touch.ttl_secs or current.ttl_secs
            updated = current._replace(
                ttl_secs=ttl,
                expires_at=now + ttl,
                updated_at=now if touch.modifies else current.updated_at,
                metadata_blob=(
                    touch.metadata_blob
                    if touch.metadata_blob is not None
                    else current.metadata_blob
                ),
                ended_at=now if touch.end and current.ended_at is None else current.ended_at,
                version=current.version + 1 if touch.modifies else current.version,
            )
            self._sessions[key] = updated
            return updated

    def _delete(
        self, tenant: str, session_id: str, now: float, expected: Version | None = None
    ) -> int | None:
        with self._lock:
            stored = self._sessions.get((tenant, session_id))
            if expected is not None and (
                stored is None or (stored.incarnation, stored.version) != expected
            ):
                return None
            current = self._remove((tenant, session_id))
        return current.message_count if current is not None and current.is_live(now) else None

    def _commit_append(
        self,
        head: SessionRecord,
        messages: list[StoredMessage],
        model: str | None,
        now: float,
        *,
        creating: bool,
    ) -> SessionRecord | None:
        key = (head.tenant, head.session_id)
        with self._lock:
            current = self._sessions.get(key)
            if creating:
                if current is not None and current.is_live(now):
                    return None
                self._put(key, head, [])
                current = head
            elif (
                current is None
                or not current.is_live(now)
                or current.incarnation != head.incarnation
                or current.message_count != head.message_count
                or current.ended_at is not None
            ):
                return None
            self._messages[key].extend(messages)
            # From the stored record, not `head`: an update of TTL or metadata since
            # head was read must survive the append.
            updated = current._replace(
                message_count=current.message_count + len(messages),
                updated_at=now,
                expires_at=now + current.ttl_secs,
                model=model if model is not None else current.model,
                version=current.version + 1,
            )
            self._sessions[key] = updated
            return updated

    def _read_messages(
        self, record: SessionRecord, first_seq: int, last_seq: int
    ) -> list[StoredMessage]:
        with self._lock:
            current = self._sessions.get((record.tenant, record.session_id))
            if current is None or current.incarnation != record.incarnation:
                return []
            return self._messages[(record.tenant, record.session_id)][first_seq - 1 : last_seq]

    def _scan_tenant(
        self, tenant: str, prefix: str, after: str | None, limit: int, now: float
    ) -> tuple[list[SessionRecord], int]:
        with self._lock:
            ids = self._ids_by_tenant.get(tenant, [])
            start = bisect.bisect_left(ids, prefix)
            matching = []
            for session_id in ids[start:]:
                if not session_id.startswith(prefix):
                    break
                record = self._sessions[(tenant, session_id)]
                if record.is_live(now):
                    matching.append(record)
        page = [r for r in matching if after is None or r.session_id > after][:limit]
        return page, len(matching)

    def _commit_risk(
        self, head: SessionRecord, risk_blob: bytes, now: float
    ) -> SessionRecord | None:
        key = (head.tenant, head.session_id)
        with self._lock:
            current = self._sessions.get(key)
            if (
                current is None
                or not current.is_live(now)
                or current.incarnation != head.incarnation
                or current.risk_version != head.risk_version
            ):
                return None
            updated = current._replace(
                risk_blob=risk_blob,
                risk_version=current.risk_version + 1,
                expires_at=now + current.ttl_secs,
            )
            self._sessions[key] = updated
            return updated

    def _put_idempotency(
        self, tenant: str, digest: str, blob: bytes, until: float, now: float, only_if_absent: bool
    ) -> bytes | None:
        records = self.state.idempotency
        with self._lock:
            current = records.get((tenant, digest))
            if only_if_absent and current is not None and current[1] > now:
                return current[0]
            if len(records) > 100_000:  # forget lapsed ones; nothing else removes them
                for key in [k for k, (_, ends) in records.items() if ends <= now]:
                    del records[key]
            records[(tenant, digest)] = (blob, until)
            return None

    def _delete_idempotency(self, tenant: str, digest: str) -> None:
        with self._lock:
            self.state.idempotency.pop((tenant, digest), None)

    def _put_api_key(self, record: ApiKeyRecord) -> None:
        with self._lock:
            self.state.api_keys[record.key_hash] = record

    def _get_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        with self._lock:
            return self.state.api_keys.get(key_hash)

    def _list_api_keys(self) -> list[ApiKeyRecord]:
        with self._lock:
            return list(self.state.api_keys.values())

    def _count_hits(
        self, buckets: Sequence[str], window: int, window_secs: int, amount: int
    ) -> list[int]:
        hits = self.state.hits
        with self._lock:
            if len(hits) > 50_000:  # forget finished windows before the map grows unbounded
                for stale in [key for key in hits if key[1] < window]:
                    del hits[stale]
            counts = []
            for bucket in buckets:
                count = hits.get((bucket, window), 0) + amount
                hits[(bucket, window)] = count
                counts.append(count)
            return counts

    def _purge(self, tenant: str, session_id: str, incarnation: str, now: float) -> int:
        key = (tenant, session_id)
        with self._lock:
            current = self._sessions.get(key)
            if current is None or current.incarnation != incarnation or current.is_live(now):
                return 0
            # Messages live and die with their record here, so nothing else is left over.
            removed = 1 + len(self._messages.get(key, ()))
            self._remove(key)
            return removed

    def _sweep(
        self,
        now: float,
        max_items: int,
        deadline: float | None,
        cursor: str | None,
        on_expired: ExpiryCallback,
    ) -> SweepReport:
        after = _decode_key(cursor) if cursor else None
        with self._lock:
            keys = sorted(self._sessions)
            start = bisect.bisect_right(keys, after) if after is not None else 0
            page = keys[start : start + max_items]
            expired = [
                record
                for record in (self._sessions[key] for key in page)
                if not record.is_live(now)
            ]
        ended = tuple(
            EndedSession(r.tenant, r.session_id, r.message_count, r.expires_at) for r in expired
        )
        if ended:
            on_expired(ended)
        removed = sum(self._purge(r.tenant, r.session_id, r.incarnation, now) for r in expired)
        # `deadline` is not consulted: a page is one short pass under the lock.
        more = start + len(page) < len(keys)
        return SweepReport(
            removed_sessions=ended,
            removed_items=removed,
            examined_items=len(page),
            next_cursor=encode_position(*page[-1]) if more and page else None,
        )

    def _iterate_sessions(
        self, cursor: str | None, limit: int, now: float
    ) -> tuple[list[SessionRecord], str | None]:
        after = _decode_key(cursor) if cursor else None
        with self._lock:
            keys = sorted(self._sessions)
            start = bisect.bisect_right(keys, after) if after is not None else 0
            page = keys[start : start + limit]
            records = [self._sessions[key] for key in page]
        more = start + len(page) < len(keys)
        next_cursor = encode_position(*page[-1]) if more and page else None
        return [record for record in records if record.is_live(now)], next_cursor

    def _restore_record(self, record: SessionRecord, now: float) -> bool:
        key = (record.tenant, record.session_id)
        with self._lock:
            current = self._sessions.get(key)
            if (
                current is None
                or current.incarnation != record.incarnation
                or current.message_count != record.message_count
            ):
                return False
            self._sessions[key] = current._replace(
                created_at=record.created_at,
                updated_at=record.updated_at,
                expires_at=record.expires_at,
                ended_at=record.ended_at,
            )
            return True

    def _replace_message_blob(
        self, record: SessionRecord, seq: int, old: bytes, new: bytes
    ) -> bool:
        key = (record.tenant, record.session_id)
        with self._lock:
            current = self._sessions.get(key)
            messages = self._messages.get(key, [])
            if current is None or current.incarnation != record.incarnation:
                return False
            if not 1 <= seq <= len(messages) or messages[seq - 1].blob != old:
                return False
            messages[seq - 1] = messages[seq - 1]._replace(blob=new)
            return True

    def _get_sweep_cursor(self) -> str | None:
        with self._lock:
            return self.state.sweep_cursor

    def _put_sweep_cursor(self, cursor: str | None) -> None:
        with self._lock:
            self.state.sweep_cursor = cursor

    def _replace_sealed_field(
        self, record: SessionRecord, field: SealedField, old: bytes | str, new: bytes | str
    ) -> bool:
        key = (record.tenant, record.session_id)
        with self._lock:
            current = self._sessions.get(key)
            if (
                current is None
                or current.incarnation != record.incarnation
                or getattr(current, field) != old
            ):
                return False
            changed: dict[str, Any] = {field: new}  # bytes for a blob, str for the model
            self._sessions[key] = current._replace(**changed)
            return True

    def _remove(self, key: _Key) -> SessionRecord | None:
        # Caller holds the lock.
        current = self._sessions.pop(key, None)
        self._messages.pop(key, None)
        if current is not None:
            ids = self._ids_by_tenant[key[0]]
            del ids[bisect.bisect_left(ids, key[1])]
        return current

    def _put(self, key: _Key, record: SessionRecord, messages: list[StoredMessage]) -> None:
        # Caller holds the lock.
        tenant, session_id = key
        if key not in self._sessions:
            bisect.insort(self._ids_by_tenant.setdefault(tenant, []), session_id)
        self._sessions[key] = record
        self._messages[key] = messages


def _decode_key(cursor: str) -> _Key:
    tenant, session_id = decode_position(cursor, (str, str), "sweep")
    return tenant, session_id
