"""The one session store interface.

`SessionStore` owns every rule that is the same on all backends: validation, TTL
arithmetic, expiry on read, encryption and its bindings, cursors, optimistic retries.
A backend implements only the small private hooks at the bottom, each one atomic on its
own (a Lua script, a DynamoDB transaction, a critical section).

Sliding expiry: every operation on a session sets ``expires_at = now + ttl_secs``. A
record whose ``expires_at <= now`` is treated as missing everywhere, whatever the
backend has physically removed yet.

Appends are optimistic: read the head, encrypt the new messages for their final seqs
(ciphertexts are bound to their position), then commit only if the head is unchanged::

    A: read head(count=7) ── seal seq 8,9 ── commit(expect 7) ✔ count=9
    B: read head(count=7) ── seal seq 8 ───────── commit(expect 7) ✘ ── read head(9) ──
       seal seq 10 ── commit(expect 9) ✔ count=10

so seqs are gap-free and unique without any lock held across the encryption work.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final, TypeVar

from turnwall.crypto import binding_context
from turnwall.errors import (
    ConcurrentUpdate,
    DecryptionError,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    InvalidCursor,
    PreconditionFailed,
    SessionEnded,
    SessionExists,
    SessionFull,
    SessionNotFound,
    ValidationFailed,
)
from turnwall.models import (
    ApiKeyRecord,
    AppendResult,
    HistoryPage,
    Message,
    NewMessage,
    RiskState,
    RiskSummary,
    Session,
    SessionPage,
)
from turnwall.stores.cursors import (
    decode_listing_cursor,
    decode_seq_cursor,
    encode_listing_cursor,
)
from turnwall.stores.retry import back_off
from turnwall.validation import (
    MAX_MESSAGES_PER_APPEND,
    SESSION_ID_RULE,
    Limits,
    check_count,
    check_messages,
    check_model,
    check_session_id,
    check_tenant,
    check_ttl,
    encode_metadata,
)

if TYPE_CHECKING:
    from turnwall.crypto import Cipher
    from turnwall.models import Order, Role

MAX_PAGE: Final = 1000
MAX_COMMIT_ATTEMPTS: Final = 200
_GENERATED_ID_ATTEMPTS: Final = 8
_IDEMPOTENCY_KEY: Final = re.compile(r"[\x21-\x7e][\x20-\x7e]{0,254}")
# How long a claimed idempotency key waits for its request to finish (past any Lambda
# timeout of the functions that take keys) before another request may claim it.
IDEMPOTENCY_HOLD_SECS: Final = 120
_FORK_CHUNK: Final = 100
EXPORT_FORMAT: Final = "turnwall.session.v1"  # messages per commit, as many as one append may hold
_T = TypeVar("_T")
# Marks a stored model as sealed; one stored before models were sealed is plaintext.
SEALED_MODEL_PREFIX: Final = "sealed:"
# What `new_incarnation` makes, loosely: stores put it into keys and sort keys.
_INCARNATION: Final = re.compile(r"[0-9a-f]{8,32}")


# A session's incarnation and version: what an If-Match pins a write to.
Version = tuple[str, int]


@dataclass(frozen=True, slots=True)
class SessionRecord:
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


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message as a backend stores it: readable seq, role and time; sealed body."""

    seq: int
    role: str
    created_at: float
    blob: bytes


@dataclass(frozen=True, slots=True)
class RequestCounts:
    """Counts per bucket in one rate-limit window, and when it ends (epoch secs)."""

    window: int
    counts: list[int]
    window_ends_at: float


@dataclass(frozen=True, slots=True)
class EndedSession:
    """A session that expired or was deleted: what lifecycle events report.

    ``ended_at`` is the expiry for an expired session and the deletion time for a
    deleted one (epoch secs); ``message_count`` is the count it ended with.
    """

    tenant: str
    session_id: str
    message_count: int
    ended_at: float


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """The answer to the first request made with an idempotency key, to replay."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ExportPage:
    """One step of `SessionStore.export_sessions`."""

    sessions: list[dict[str, Any]]
    next_cursor: str | None
    unreadable: int = 0


@dataclass(frozen=True, slots=True)
class _ImportedSession:
    """An export document, checked against the spec's rules and this store's limits."""

    tenant: str
    session_id: str
    created_at: float
    updated_at: float
    ttl_secs: int
    expires_in: float
    ended_at: float | None
    model: str | None
    metadata: dict[str, Any]
    risk: dict[str, Any]
    messages: list[tuple[int, NewMessage, float]]  # seq, message, created_at

    @classmethod
    def of(cls, document: dict[str, Any], limits: Limits) -> _ImportedSession:
        if document.get("format") != EXPORT_FORMAT:
            raise ValueError(f"format must be {EXPORT_FORMAT!r}")
        messages = []
        for seq, item in enumerate(document["messages"], start=1):
            if item["seq"] != seq:
                raise ValueError(f"messages must run from seq 1 without gaps (at {seq})")
            message = NewMessage(
                item["role"], item["content"], item.get("name"), item.get("metadata")
            )
            messages.append((seq, message, float(item["created_at"])))
        for chunk in _chunks(messages):
            check_messages([message for _, message, _ in chunk], limits)
        if len(messages) > limits.max_messages:
            raise ValueError(f"more than {limits.max_messages} messages")
        ended_at = document.get("ended_at")
        return cls(
            tenant=check_tenant(document["tenant"]),
            session_id=check_session_id(document["session_id"]),
            created_at=float(document["created_at"]),
            updated_at=float(document["updated_at"]),
            ttl_secs=check_ttl(document["ttl_secs"], limits),
            expires_in=float(document["expires_in"]),
            ended_at=None if ended_at is None else float(ended_at),
            model=check_model(document.get("model")),
            metadata=dict(document.get("metadata") or {}),
            risk=dict(document.get("risk") or {}),
            messages=messages,
        )


@dataclass(frozen=True, slots=True)
class BulkDeletion:
    """What one `SessionStore.delete_sessions` call deleted, and how many live
    sessions matched its prefix beyond what it examined."""

    deleted: list[EndedSession]
    remaining: int


@dataclass(frozen=True, slots=True)
class SweepReport:
    """What one bounded `SessionStore.sweep` run did.

    ``removed_sessions`` are the expired sessions it removed (each reported once to
    the sweep's ``on_expired`` before removal); ``removed_items`` counts every stored
    record it removed: sessions, messages, orphaned message items and index entries;
    ``examined_items`` is the work done. ``next_cursor`` resumes the sweep where this
    run stopped; None means the pass over the whole store is complete.
    """

    removed_sessions: tuple[EndedSession, ...]
    removed_items: int
    examined_items: int
    next_cursor: str | None

    @property
    def complete(self) -> bool:
        return self.next_cursor is None


ExpiryCallback = Callable[[Sequence[EndedSession]], None]


@dataclass(frozen=True, slots=True)
class ReencryptReport:
    """What one bounded `SessionStore.reencrypt` step did.

    ``sessions`` counts the live sessions it went through; ``values_resealed`` the
    stored values it rewrote under the newest key (values another writer replaced
    meanwhile are skipped, not counted); ``values_unreadable`` the values no key
    opens (tampered, or sealed under a key no longer configured), left as they are.
    ``next_cursor`` resumes the pass; None means every session has been visited.
    """

    sessions: int
    values_resealed: int
    next_cursor: str | None
    values_unreadable: int = 0

    @property
    def complete(self) -> bool:
        return self.next_cursor is None


@dataclass(frozen=True, slots=True)
class Touch:
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


class SessionStore(ABC):
    """Sessions of many tenants with sliding expiry, encrypted history and risk state.

    Every public method takes the caller's tenant first; a session of another tenant
    is indistinguishable from a missing one.
    """

    def __init__(
        self, cipher: Cipher, limits: Limits | None = None, clock: Callable[[], float] | None = None
    ) -> None:
        self.cipher = cipher
        self.limits = limits or Limits()
        self.clock: Callable[[], float] = clock or time.time

    # ---------------------------------------------------------------- sessions

    def create_session(
        self,
        tenant: str,
        session_id: str | None = None,
        *,
        ttl_secs: int | None = None,
        metadata: dict[str, Any] | None = None,
        model: str | None = None,
    ) -> Session:
        """Create a session; a generated `api:<12 hex>` id when none is given.

        Raises:
            SessionExists: a live session already has this id.
            ValidationFailed: id, ttl or metadata break the spec's rules.
        """
        check_tenant(tenant)
        ttl = self.limits.default_ttl_secs if ttl_secs is None else check_ttl(ttl_secs, self.limits)
        metadata_json = encode_metadata(metadata) if metadata else None
        check_model(model)
        candidates = (
            [check_session_id(session_id)]
            if session_id is not None
            else [f"api:{secrets.token_hex(6)}" for _ in range(_GENERATED_ID_ATTEMPTS)]
        )
        for candidate in candidates:
            now = self.clock()
            record = self._new_record(tenant, candidate, ttl, now, None)
            if model is not None:
                record = replace(record, model=self._seal_model(record, model))
            if metadata_json is not None:
                record = replace(record, metadata_blob=self._seal_metadata(record, metadata_json))
            if self._insert(record, now):
                return self._to_session(record, now)
        if session_id is None:
            raise ConcurrentUpdate("could not find a free generated session id; try again")
        raise SessionExists(f"session {session_id!r} already exists")

    def get_session(self, tenant: str, session_id: str) -> Session:
        """Read a session and slide its expiry.

        Raises:
            SessionNotFound: no live session with this id in the tenant.
        """
        now = self.clock()
        return self._to_session(self._touch_or_raise(tenant, session_id, now, READ_ONLY), now)

    def update_session(
        self,
        tenant: str,
        session_id: str,
        *,
        ttl_secs: int | None = None,
        metadata: dict[str, Any] | None = None,
        if_match: Collection[str] | None = None,
    ) -> Session:
        """Change the TTL and/or replace the metadata (an empty object clears it).

        With `if_match` (ETags), only while the session's ETag is one of them.

        Raises:
            SessionNotFound, SessionEnded, ValidationFailed, PreconditionFailed.
        """
        ttl = None if ttl_secs is None else check_ttl(ttl_secs, self.limits)
        metadata_json = None if metadata is None else encode_metadata(metadata)
        now = self.clock()
        if metadata_json is None and if_match is None:
            touched = self._touch_or_raise(tenant, session_id, now, Touch(ttl_secs=ttl))
            return self._to_session(touched, now)
        # The metadata ciphertext is bound to the incarnation, so seal against the one
        # read and let the backend refuse the write if a recreate raced in between; an
        # If-Match is checked against that same read and enforced by its version.
        for attempt in range(MAX_COMMIT_ATTEMPTS):
            current = self._read_live(tenant, session_id, now)
            self._check_precondition(current, if_match)
            blob = None if metadata_json is None else self._seal_metadata(current, metadata_json)
            touch = Touch(
                ttl_secs=ttl,
                metadata_blob=blob,
                expected_version=None if if_match is None else current.version,
            )
            record = self._touch(tenant, session_id, now, touch, incarnation=current.incarnation)
            if record is not None:
                return self._to_session(record, now)
            self._refuse_if_ended(self._read(tenant, session_id), now)
            back_off(attempt)
            now = self.clock()
        raise ConcurrentUpdate(f"session {session_id!r} kept changing; try again")

    def _check_precondition(self, record: SessionRecord, if_match: Collection[str] | None) -> None:
        if if_match is not None and _etag(record) not in if_match:
            raise PreconditionFailed(
                f"session {record.session_id!r} changed since the ETag in If-Match was read",
                details={"etag": _etag(record)},
            )

    def end_session(self, tenant: str, session_id: str) -> Session:
        """Make a session read-only until it expires: appends then raise SessionEnded.

        Ending an ended session changes nothing (its first end time stays).

        Raises:
            SessionNotFound: no live session with this id in the tenant.
        """
        now = self.clock()
        return self._to_session(self._touch_or_raise(tenant, session_id, now, ENDING), now)

    def delete_session(
        self, tenant: str, session_id: str, *, if_match: Collection[str] | None = None
    ) -> EndedSession:
        """Delete a session with all its history; returns what was deleted, and when.

        With `if_match` (ETags), only while the session's ETag is one of them.

        Raises:
            SessionNotFound: there was no live session to delete.
            PreconditionFailed: its ETag is none of `if_match`.
        """
        check_tenant(tenant)
        check_session_id(session_id)
        for attempt in range(MAX_COMMIT_ATTEMPTS):
            now = self.clock()
            expected = None
            if if_match is not None:
                current = self._read_live(tenant, session_id, now)
                self._check_precondition(current, if_match)
                expected = (current.incarnation, current.version)
            message_count = self._delete(tenant, session_id, now, expected)
            if message_count is not None:
                return EndedSession(tenant, session_id, message_count, now)
            if expected is None:
                raise SessionNotFound(f"session {session_id!r} not found")
            back_off(attempt)  # it changed since it was read: look again
        raise ConcurrentUpdate(f"session {session_id!r} kept changing; try again")

    def delete_sessions(self, tenant: str, prefix: str, limit: int = 100) -> BulkDeletion:
        """Delete up to `limit` live sessions whose ids start with `prefix` (a user's
        sessions, for a right-to-erasure request), lowest ids first.

        Bounded, so one call fits a Lambda invocation, and resumable: call again while
        ``remaining`` is above zero (sessions created meanwhile are caught too).

        Raises:
            ValidationFailed: the prefix is empty or no start of a valid id.
        """
        check_tenant(tenant)
        if not prefix or not _is_id_prefix(prefix):
            raise ValidationFailed(
                f"prefix is required and must be a start of an id: {SESSION_ID_RULE}",
                details={"field": "prefix"},
            )
        limit = _check_limit(limit)
        now = self.clock()
        records, matching = self._scan_tenant(tenant, prefix, None, limit, now)
        deleted = []
        for record in records:
            message_count = self._delete(tenant, record.session_id, now)
            if message_count is not None:  # else it expired or went meanwhile
                deleted.append(EndedSession(tenant, record.session_id, message_count, now))
        return BulkDeletion(deleted, max(0, matching - len(records)))

    def list_sessions(
        self, tenant: str, *, prefix: str = "", limit: int = 100, cursor: str | None = None
    ) -> SessionPage:
        """List live sessions of a tenant by ascending id; listing does not slide expiry."""
        check_tenant(tenant)
        if prefix and not _is_id_prefix(prefix):
            raise ValidationFailed(
                f"prefix must be a start of an id: {SESSION_ID_RULE}", details={"field": "prefix"}
            )
        limit = _check_limit(limit)
        after = decode_listing_cursor(cursor, "l") if cursor else None
        if after is not None and not after.startswith(prefix):
            raise InvalidCursor(
                "cursor does not belong to this listing", details={"field": "cursor"}
            )
        now = self.clock()
        records, total = self._scan_tenant(tenant, prefix, after, limit + 1, now)
        page = records[:limit]
        next_cursor = (
            encode_listing_cursor("l", page[-1].session_id) if len(records) > limit else None
        )
        return SessionPage([self._to_session(r, now) for r in page], total, next_cursor)

    # ---------------------------------------------------------------- history

    def append_messages(
        self,
        tenant: str,
        session_id: str,
        messages: Sequence[NewMessage],
        *,
        model: str | None = None,
    ) -> AppendResult:
        """Append 1-100 messages atomically, creating the session (default TTL) if missing.

        Raises:
            SessionFull: the session would exceed IW_MAX_MESSAGES.
            ValidationFailed: a message breaks the spec's rules.
            ConcurrentUpdate: lost the race too often (only under extreme contention).
        """
        check_tenant(tenant)
        check_session_id(session_id)
        check_messages(messages, self.limits)
        check_model(model)
        bodies = [_message_body(message) for message in messages]
        for attempt in range(MAX_COMMIT_ATTEMPTS):
            now = self.clock()
            stored_head = self._read(tenant, session_id)
            creating = stored_head is None or not stored_head.is_live(now)
            self._refuse_if_ended(stored_head, now)
            head = (
                self._new_record(tenant, session_id, self.limits.default_ttl_secs, now, None)
                if stored_head is None or creating
                else stored_head
            )
            if head.message_count + len(messages) > self.limits.max_messages:
                raise SessionFull(
                    f"session {session_id!r} holds {head.message_count} of at most "
                    f"{self.limits.max_messages} messages"
                )
            stored = [
                self._seal_message(head, head.message_count + offset + 1, message.role, body, now)
                for offset, (message, body) in enumerate(zip(messages, bodies, strict=True))
            ]
            sealed_model = None if model is None else self._seal_model(head, model)
            committed = self._commit_append(head, stored, sealed_model, now, creating=creating)
            if committed is not None:
                return AppendResult(
                    session_id=session_id,
                    message_count=committed.message_count,
                    first_seq=stored[0].seq,
                    last_seq=stored[-1].seq,
                    created=creating,
                )
            back_off(attempt)
        raise ConcurrentUpdate(f"session {session_id!r} is too busy; try again")

    def fork_session(
        self,
        tenant: str,
        session_id: str,
        *,
        new_session_id: str | None = None,
        up_to_seq: int | None = None,
    ) -> Session:
        """Copy a session into a new one: messages 1..`up_to_seq` (all by default) with
        their times, metadata, model, TTL and risk state, each value sealed for its new
        place. The risk state comes along, so a fork never starts a flagged conversation
        afresh; the fork is active even when the source was ended. Slides the source's
        expiry. A generated `api:<12 hex>` id when none is given.

        Raises:
            SessionNotFound: no live source session (or it went during the copy).
            SessionExists: a live session already has `new_session_id`.
            ValidationFailed: `up_to_seq` outside 0..message_count, or a bad id.
            ConcurrentUpdate: the new session was written to while it was being copied.
        """
        now = self.clock()
        source = self._touch_or_raise(tenant, session_id, now, READ_ONLY)
        last = (
            source.message_count
            if up_to_seq is None
            else check_count(up_to_seq, "up_to_seq", (0, source.message_count))
        )
        candidates = (
            [check_session_id(new_session_id)]
            if new_session_id is not None
            else [f"api:{secrets.token_hex(6)}" for _ in range(_GENERATED_ID_ATTEMPTS)]
        )
        for candidate in candidates:
            head = self._forked_record(source, candidate, now)
            committed = self._copy_messages(source, head, 1, min(last, _FORK_CHUNK), now)
            if committed is None:
                continue  # the id is taken by a live session
            for first in range(_FORK_CHUNK + 1, last + 1, _FORK_CHUNK):
                committed = self._copy_messages(
                    source, committed, first, min(last, first + _FORK_CHUNK - 1), now
                )
                if committed is None:
                    self._delete(tenant, candidate, now)  # no half-made fork stays behind
                    raise ConcurrentUpdate(f"session {candidate!r} changed while being forked")
            return self._to_session(committed, now)
        if new_session_id is None:
            raise ConcurrentUpdate("could not find a free generated session id; try again")
        raise SessionExists(f"session {new_session_id!r} already exists")

    def _forked_record(self, source: SessionRecord, session_id: str, now: float) -> SessionRecord:
        head = self._new_record(source.tenant, session_id, source.ttl_secs, now, None)
        model = self._open_model(source)
        return replace(
            head,
            model=None if model is None else self._seal_model(head, model),
            metadata_blob=(
                None
                if source.metadata_blob is None
                else self._moved(
                    source.metadata_blob, _metadata_context(source), _metadata_context(head)
                )
            ),
            risk_blob=(
                None
                if source.risk_blob is None
                else self._moved(source.risk_blob, _risk_context(source), _risk_context(head))
            ),
        )

    def _copy_messages(
        self, source: SessionRecord, head: SessionRecord, first: int, last: int, now: float
    ) -> SessionRecord | None:
        """Commit source messages first..last onto `head` (creating it when it has none
        yet); the new record, or None if the commit lost its race."""
        creating = head.message_count == 0 and first == 1
        stored = self._read_messages(source, first, last) if first <= last else []
        if len(stored) != max(0, last - first + 1):
            if creating:
                raise SessionNotFound(f"session {source.session_id!r} not found")
            self._delete(head.tenant, head.session_id, now)
            raise SessionNotFound(f"session {source.session_id!r} went while being forked")
        if not stored:  # nothing to copy: the fork is the record alone
            return head if self._insert(head, now) else None
        moved = [
            replace(
                message,
                blob=self._moved(
                    message.blob,
                    message_context(source, message.seq, message.role),
                    message_context(head, message.seq, message.role),
                ),
            )
            for message in stored
        ]
        return self._commit_append(head, moved, None, now, creating=creating)

    def _moved(self, blob: bytes, old_context: bytes, new_context: bytes) -> bytes:
        """A sealed value opened at its old place and sealed for a new one."""
        return self.cipher.seal(self.cipher.open(blob, old_context), new_context)

    def get_history(
        self,
        tenant: str,
        session_id: str,
        *,
        limit: int = 100,
        cursor: str | None = None,
        order: Order = "asc",
    ) -> HistoryPage:
        """A page of messages in seq order (asc or desc); slides expiry."""
        if order not in ("asc", "desc"):
            raise ValidationFailed("order must be asc or desc", details={"field": "order"})
        limit = _check_limit(limit)
        position = decode_seq_cursor(cursor, order) if cursor else None
        now = self.clock()
        record = self._touch_or_raise(tenant, session_id, now, READ_ONLY)
        count = record.message_count
        if order == "asc":
            first = position or 1
            last = min(count, first + limit - 1)
            next_seq = last + 1 if last < count else None
        else:
            last = min(position or count, count)
            first = max(1, last - limit + 1)
            next_seq = first - 1 if first > 1 else None
        stored = self._read_messages(record, first, last) if first <= last else []
        messages = [self._open_message(record, item) for item in stored]
        if order == "desc":
            messages.reverse()
        next_cursor = encode_listing_cursor(order, str(next_seq)) if next_seq is not None else None
        return HistoryPage(self._to_session(record, now), messages, next_cursor)

    # ---------------------------------------------------------------- risk state

    def open_risk_state(self, tenant: str, session_id: str) -> RiskState:
        """The session's risk state for a scan, creating the session if missing; slides expiry."""
        check_tenant(tenant)
        check_session_id(session_id)
        now = self.clock()
        record = self._touch(tenant, session_id, now, READ_ONLY)
        if record is None:
            fresh = self._new_record(tenant, session_id, self.limits.default_ttl_secs, now, None)
            record = (
                fresh
                if self._insert(fresh, now)
                else self._touch_or_raise(tenant, session_id, now, READ_ONLY)
            )
        state: dict[str, Any] = {}
        if record.risk_blob is not None:
            state = json.loads(self.cipher.open(record.risk_blob, _risk_context(record)))
        return RiskState(self._to_session(record, now), state, record.risk_version)

    def save_risk_state(self, tenant: str, risk: RiskState, state: dict[str, Any]) -> Session:
        """Write back a risk state read by `open_risk_state`.

        Raises:
            ConcurrentUpdate: another scan wrote first; re-open and recompute.
            SessionNotFound: the session was deleted or expired meanwhile.
        """
        now = self.clock()
        current = self._read_live(tenant, risk.session.session_id, now)
        if current.risk_version != risk.version:
            raise ConcurrentUpdate("risk state changed since it was read")
        blob = self.cipher.seal(_dump(state), _risk_context(current))
        committed = self._commit_risk(current, blob, now)
        if committed is None:
            raise ConcurrentUpdate("risk state changed since it was read")
        return self._to_session(committed, now)

    # ---------------------------------------------------------------- idempotency keys

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
        claim = self.cipher.seal(_dump({"fingerprint": fingerprint, "until": until}), context)
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
        sealed = self.cipher.seal(_dump(document), _idempotency_context(tenant, digest))
        self._put_idempotency(tenant, digest, sealed, now + keep_secs, now, False)

    def release_idempotency_key(self, tenant: str, key: str) -> None:
        """Give up a claim (the request failed), so a retry with the key runs afresh."""
        self._delete_idempotency(tenant, _idempotency_digest(key))

    # ---------------------------------------------------------------- API keys, limits

    def save_api_key(self, record: ApiKeyRecord) -> None:
        """Store (or overwrite, e.g. to revoke) a hashed API key."""
        self._put_api_key(record)

    def find_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        return self._get_api_key(key_hash)

    def list_api_keys(self, tenant: str | None = None) -> list[ApiKeyRecord]:
        records = self._list_api_keys()
        return sorted(
            (r for r in records if tenant is None or r.tenant == tenant),
            key=lambda r: (r.tenant, r.created_at, r.key_hash),
        )

    def count_requests(
        self, buckets: Sequence[str], window_secs: int = 60, amount: int = 1
    ) -> RequestCounts:
        """Add `amount` requests to each bucket's counter in the current fixed window.

        All processes sharing the backend share the counters.
        """
        now = self.clock()
        window = int(now // window_secs)
        counts = self._count_hits(buckets, window, window_secs, amount)
        return RequestCounts(window, counts, (window + 1) * window_secs)

    # ---------------------------------------------------------------- maintenance

    def purge_expired_session(self, tenant: str, session_id: str, incarnation: str) -> int:
        """Remove what is left of one expired incarnation of a session.

        That is its session record if still stored, its messages and its index
        entries. Idempotent: a second call (a replayed stream record) finds nothing and
        returns 0. Never touches a live session, nor any other incarnation of the id:
        a session recreated under the same id keeps everything. Returns how many
        stored records were removed.

        Raises:
            ValidationFailed: tenant, id or incarnation are malformed.
            StoreUnavailable: the backend cannot be reached or keeps throttling.
        """
        check_tenant(tenant)
        check_session_id(session_id)
        if not _INCARNATION.fullmatch(incarnation):
            raise ValidationFailed(
                "incarnation must be a store-issued id", details={"field": "incarnation"}
            )
        return self._purge(tenant, session_id, incarnation, self.clock())

    def sweep(
        self,
        now: float | None = None,
        *,
        max_items: int = 1000,
        deadline: float | None = None,
        cursor: str | None = None,
        on_expired: ExpiryCallback | None = None,
    ) -> SweepReport:
        """One bounded, resumable step of the pass that removes what expiry left behind.

        Removes sessions expired at `now` (default: the store's clock) that the
        backend has not deleted yet, leftovers of sessions deleted or recreated
        (orphaned message items, stale index entries), never anything of a live
        session. Stops after examining about `max_items` stored records, or once
        ``time.monotonic()`` passes `deadline`, but always makes some progress.
        Start with ``cursor=None`` and pass each report's ``next_cursor`` to go on;
        `save_sweep_cursor` keeps it in the backend between runs.

        `on_expired` gets each batch of expired sessions *before* they are removed,
        so an exception from it (say, a lifecycle event that could not be
        published) stops the sweep with those sessions still there for the next run.

        Raises:
            ValidationFailed: `max_items` is not a positive integer.
            InvalidCursor: the cursor was not issued by this backend's sweep.
            StoreUnavailable: the backend cannot be reached or keeps throttling.
        """
        check_count(max_items, "max_items")
        return self._sweep(
            self.clock() if now is None else now,
            max_items,
            deadline,
            cursor,
            on_expired or _ignore_expired,
        )

    def reencrypt(self, *, cursor: str | None = None, max_sessions: int = 100) -> ReencryptReport:
        """One bounded, resumable step of re-encrypting stored data under the newest key.

        Visits up to `max_sessions` live sessions from `cursor` (None starts a pass)
        and reseals their metadata, risk state and messages where they are not yet
        under the cipher's first key. Safe while traffic continues: each value is
        written back only if it is still the exact ciphertext that was read, so a
        concurrent writer (who seals under the newest key anyway) always wins.
        Does not slide any session's expiry.

        Raises:
            ValidationFailed: `max_sessions` is not a positive integer.
            InvalidCursor: the cursor was not issued by this backend's reencrypt.
            StoreUnavailable: the backend cannot be reached or keeps throttling.
        """
        check_count(max_sessions, "max_sessions")
        now = self.clock()
        records, next_cursor = self._iterate_sessions(cursor, max_sessions, now)
        resealed = unreadable = 0
        for record in records:
            for outcome in self._reseal_session(record):
                if outcome is None:
                    unreadable += 1
                elif outcome:
                    resealed += 1
        return ReencryptReport(len(records), resealed, next_cursor, unreadable)

    # ---------------------------------------------------------------- export and import

    def export_sessions(
        self,
        *,
        cursor: str | None = None,
        limit: int = 100,
        tenant: str | None = None,
        prefix: str = "",
    ) -> ExportPage:
        """One bounded, resumable step of exporting the live sessions (of `tenant`, with
        ids starting with `prefix`, when given) as plain documents (see
        `import_session`), decrypted. Visits up to `limit` sessions of the store from
        `cursor`; go on from the page's cursor until it is None. Does not slide any
        expiry. A session that does not decrypt here is counted, not exported.

        Raises:
            ValidationFailed, InvalidCursor, StoreUnavailable.
        """
        check_count(limit, "limit")
        now = self.clock()
        records, next_cursor = self._iterate_sessions(cursor, limit, now)
        documents, unreadable = [], 0
        for record in records:
            if tenant not in (None, record.tenant) or not record.session_id.startswith(prefix):
                continue
            try:
                documents.append(self._exported(record, now))
            except DecryptionError:
                unreadable += 1  # logged by the cipher
        return ExportPage(documents, next_cursor, unreadable)

    def _exported(self, record: SessionRecord, now: float) -> dict[str, Any]:
        session = self._to_session(record, now)
        risk: dict[str, Any] = {}
        if record.risk_blob is not None:
            risk = json.loads(self.cipher.open(record.risk_blob, _risk_context(record)))
        messages = []
        for first in range(1, record.message_count + 1, MAX_PAGE):
            last = min(record.message_count, first + MAX_PAGE - 1)
            for stored in self._read_messages(record, first, last):
                message = self._open_message(record, stored)
                document: dict[str, Any] = {
                    "seq": message.seq,
                    "role": message.role,
                    "content": message.content,
                    "created_at": message.created_at,
                }
                if message.name is not None:
                    document["name"] = message.name
                if message.metadata is not None:
                    document["metadata"] = message.metadata
                messages.append(document)
        return {
            "format": EXPORT_FORMAT,
            "tenant": record.tenant,
            "session_id": record.session_id,
            "created_at": record.created_at,
            "updated_at": record.updated_at,
            "ttl_secs": record.ttl_secs,
            "expires_in": record.expires_at - now,
            "ended_at": record.ended_at,
            "model": session.model,
            "metadata": session.metadata,
            "risk": risk,
            "messages": messages,
        }

    def import_session(self, document: dict[str, Any]) -> Session:
        """Store a session exported by any store's `export_sessions`: its times,
        remaining TTL, status, model, metadata, risk state and messages (with their
        seqs and times), each sealed for this store.

        Raises:
            SessionExists: a live session already has the id (nothing is changed).
            ValidationFailed: the document is not an export, breaks the spec's rules,
                or its session has expired.
        """
        try:
            imported = _ImportedSession.of(document, self.limits)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationFailed(f"not a session export: {exc}") from exc
        now = self.clock()
        if imported.expires_in <= 0:
            raise ValidationFailed(f"session {imported.session_id!r} has expired")
        head = self._new_record(imported.tenant, imported.session_id, imported.ttl_secs, now, None)
        head = replace(
            head,
            model=None if imported.model is None else self._seal_model(head, imported.model),
            metadata_blob=(
                self._seal_metadata(head, encode_metadata(imported.metadata))
                if imported.metadata
                else None
            ),
            risk_blob=(
                self.cipher.seal(_dump(imported.risk), _risk_context(head))
                if imported.risk
                else None
            ),
        )
        committed = head if imported.messages or self._insert(head, now) else None
        for number, chunk in enumerate(_chunks(imported.messages)):
            if committed is None:
                break
            sealed = [
                self._seal_message(head, seq, message.role, _message_body(message), created_at)
                for seq, message, created_at in chunk
            ]
            committed = self._commit_append(committed, sealed, None, now, creating=number == 0)
        if committed is None:
            raise SessionExists(f"session {imported.session_id!r} already exists")
        restored = replace(
            committed,
            created_at=imported.created_at,
            updated_at=imported.updated_at,
            expires_at=now + imported.expires_in,
            ended_at=imported.ended_at,
        )
        if not self._restore_record(restored, now):
            raise ConcurrentUpdate(f"session {imported.session_id!r} changed while importing")
        return self._to_session(restored, now)

    def load_sweep_cursor(self) -> str | None:
        """The cursor the last scheduled sweep saved, or None to start a new pass."""
        return self._get_sweep_cursor()

    def save_sweep_cursor(self, cursor: str | None) -> None:
        """Keep where the sweep stopped for the next run; None starts the next run afresh."""
        self._put_sweep_cursor(cursor)

    # ---------------------------------------------------------------- lifecycle

    @abstractmethod
    def ping(self) -> None:
        """Check the backend answers.

        Raises:
            StoreUnavailable: it does not.
        """

    def close(self) -> None:  # noqa: B027 - optional hook, most stores hold nothing
        """Release connections."""

    # ---------------------------------------------------------------- backend hooks

    @abstractmethod
    def _insert(self, record: SessionRecord, now: float) -> bool:
        """Store a new session unless a live one has its id.

        An expired predecessor is replaced together with its messages. Returns False
        when a live session exists.
        """

    @abstractmethod
    def _read(self, tenant: str, session_id: str) -> SessionRecord | None:
        """The stored record, live or expired, without changing it."""

    @abstractmethod
    def _touch(
        self,
        tenant: str,
        session_id: str,
        now: float,
        touch: Touch,
        incarnation: str | None = None,
    ) -> SessionRecord | None:
        """Atomically, if the session is live at `now` (and of `incarnation` when
        given): apply `touch`, slide ``expires_at`` and return the new record; else
        return None. None too when the touch changes TTL or metadata of an ended
        session."""

    @abstractmethod
    def _delete(
        self, tenant: str, session_id: str, now: float, expected: Version | None = None
    ) -> int | None:
        """Remove the session and its messages; its message_count if it was live at
        `now`, else None. With `expected` (incarnation, version), only a session of
        exactly that incarnation and version is removed; else None and nothing goes."""

    @abstractmethod
    def _commit_append(
        self,
        head: SessionRecord,
        messages: list[StoredMessage],
        model: str | None,
        now: float,
        *,
        creating: bool,
    ) -> SessionRecord | None:
        """Atomically add `messages` and return the new record, or None on a lost race.

        With `creating`, `head` is a new record to insert, valid only while no live
        session has the id (an expired one is replaced). Otherwise the stored session
        must still be live, not ended, with head's incarnation and message_count. The
        commit sets ``message_count``, ``updated_at = now``, ``expires_at = now + ttl``
        and, when `model` is given, ``model``.
        """

    @abstractmethod
    def _read_messages(
        self, record: SessionRecord, first_seq: int, last_seq: int
    ) -> list[StoredMessage]:
        """Messages `first_seq`..`last_seq` (inclusive, ascending) of this incarnation."""

    @abstractmethod
    def _scan_tenant(
        self, tenant: str, prefix: str, after: str | None, limit: int, now: float
    ) -> tuple[list[SessionRecord], int]:
        """Up to `limit` live sessions with ids starting with `prefix`, ascending,
        strictly after `after`; and how many live sessions match `prefix` in all."""

    @abstractmethod
    def _commit_risk(
        self, head: SessionRecord, risk_blob: bytes, now: float
    ) -> SessionRecord | None:
        """Atomically replace the risk blob and bump ``risk_version`` if the stored
        session is live with head's incarnation and risk_version; slide expiry."""

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

    @abstractmethod
    def _put_api_key(self, record: ApiKeyRecord) -> None:
        """Store the key record under its hash, replacing any earlier version."""

    @abstractmethod
    def _get_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        """The key record with this hash, revoked or not."""

    @abstractmethod
    def _list_api_keys(self) -> list[ApiKeyRecord]:
        """Every stored key record."""

    @abstractmethod
    def _count_hits(
        self, buckets: Sequence[str], window: int, window_secs: int, amount: int
    ) -> list[int]:
        """Atomically add `amount` to each bucket's counter for fixed window number
        `window` and return the new counts; counters must vanish after their window."""

    @abstractmethod
    def _purge(self, tenant: str, session_id: str, incarnation: str, now: float) -> int:
        """Remove the record (if stored and expired at `now`), messages and index entries
        of this incarnation, unless the stored session is live; count what went."""

    @abstractmethod
    def _sweep(
        self,
        now: float,
        max_items: int,
        deadline: float | None,
        cursor: str | None,
        on_expired: ExpiryCallback,
    ) -> SweepReport:
        """One bounded step of the sweep described in `sweep`, from `cursor`."""

    @abstractmethod
    def _iterate_sessions(
        self, cursor: str | None, limit: int, now: float
    ) -> tuple[list[SessionRecord], str | None]:
        """Up to `limit` sessions live at `now`, from `cursor` in a fixed backend order,
        and the cursor after them (None once the whole store has been visited)."""

    @abstractmethod
    def _restore_record(self, record: SessionRecord, now: float) -> bool:
        """Overwrite the stored session's bookkeeping (times, expiry, ended_at) with
        `record`'s if it is record's incarnation with record's message_count; whether
        it was."""

    @abstractmethod
    def _replace_metadata_blob(self, record: SessionRecord, old: bytes, new: bytes) -> bool:
        """Atomically set the metadata blob to `new` if the stored session is record's
        incarnation and its metadata blob is exactly `old`; leave expiry alone.
        Whether it was replaced."""

    @abstractmethod
    def _replace_risk_blob(self, record: SessionRecord, old: bytes, new: bytes) -> bool:
        """As `_replace_metadata_blob`, for the risk blob; ``risk_version`` is kept,
        since the state it holds is unchanged."""

    @abstractmethod
    def _replace_model(self, record: SessionRecord, old: str, new: str) -> bool:
        """As `_replace_metadata_blob`, for the stored (sealed) model string."""

    @abstractmethod
    def _replace_message_blob(
        self, record: SessionRecord, seq: int, old: bytes, new: bytes
    ) -> bool:
        """Atomically set the blob of message `seq` of record's incarnation to `new`
        if it is exactly `old`. Whether it was replaced."""

    @abstractmethod
    def _get_sweep_cursor(self) -> str | None:
        """The saved sweep cursor, if any."""

    @abstractmethod
    def _put_sweep_cursor(self, cursor: str | None) -> None:
        """Save the sweep cursor; None removes it."""

    # ---------------------------------------------------------------- shared helpers

    def _new_record(
        self, tenant: str, session_id: str, ttl: int, now: float, model: str | None
    ) -> SessionRecord:
        return SessionRecord(
            tenant=tenant,
            session_id=session_id,
            incarnation=new_incarnation(now),
            created_at=now,
            updated_at=now,
            expires_at=now + ttl,
            ttl_secs=ttl,
            message_count=0,
            model=model,
        )

    def _read_live(self, tenant: str, session_id: str, now: float) -> SessionRecord:
        check_tenant(tenant)
        check_session_id(session_id)
        record = self._read(tenant, session_id)
        if record is None or not record.is_live(now):
            raise SessionNotFound(f"session {session_id!r} not found")
        return record

    def _touch_or_raise(
        self, tenant: str, session_id: str, now: float, touch: Touch
    ) -> SessionRecord:
        check_tenant(tenant)
        check_session_id(session_id)
        record = self._touch(tenant, session_id, now, touch)
        if record is None:
            self._refuse_if_ended(self._read(tenant, session_id), now)
            raise SessionNotFound(f"session {session_id!r} not found")
        return record

    def _refuse_if_ended(self, record: SessionRecord | None, now: float) -> None:
        """Raise SessionEnded for a live, ended session; a write to it was refused."""
        if record is not None and record.is_live(now) and record.ended_at is not None:
            raise SessionEnded(f"session {record.session_id!r} was ended and is read-only")

    def _to_session(self, record: SessionRecord, now: float) -> Session:
        metadata: dict[str, Any] = {}
        if record.metadata_blob is not None:
            metadata = json.loads(self.cipher.open(record.metadata_blob, _metadata_context(record)))
        risk = RiskSummary()
        if record.risk_blob is not None:
            risk = RiskSummary.from_state(
                json.loads(self.cipher.open(record.risk_blob, _risk_context(record)))
            )
        return Session(
            tenant=record.tenant,
            session_id=record.session_id,
            created_at=record.created_at,
            updated_at=record.updated_at,
            expires_at=record.expires_at,
            ttl_secs=record.ttl_secs,
            message_count=record.message_count,
            model=self._open_model(record),
            metadata=metadata,
            risk=risk,
            as_of=now,
            ended_at=record.ended_at,
            etag=_etag(record),
        )

    def _seal_model(self, record: SessionRecord, model: str) -> str:
        sealed = self.cipher.seal(model.encode(), _model_context(record))
        return _model_token(sealed)

    def _open_model(self, record: SessionRecord) -> str | None:
        stored = record.model
        if stored is None or not stored.startswith(SEALED_MODEL_PREFIX):
            return stored  # written in plaintext before models were sealed
        return self.cipher.open(_sealed_model_bytes(stored), _model_context(record)).decode()

    def _seal_metadata(self, record: SessionRecord, metadata_json: bytes) -> bytes:
        return self.cipher.seal(metadata_json, _metadata_context(record))

    def _seal_message(
        self, record: SessionRecord, seq: int, role: str, body: bytes, now: float
    ) -> StoredMessage:
        blob = self.cipher.seal(body, message_context(record, seq, role))
        return StoredMessage(seq=seq, role=role, created_at=now, blob=blob)

    def _reseal_session(self, record: SessionRecord) -> Iterator[bool | None]:
        """Reseal each value of the session not under the newest key: yields True when
        written back, False when a concurrent write got there first, None when the
        value cannot be opened."""
        fields = (
            (record.metadata_blob, _metadata_context(record), self._replace_metadata_blob),
            (record.risk_blob, _risk_context(record), self._replace_risk_blob),
        )
        for blob, context, replace_blob in fields:
            if blob is None or self.cipher.is_current(blob):
                continue
            new = self._resealed(blob, context)
            yield None if new is None else replace_blob(record, blob, new)
        model = record.model
        if model is not None and not self._model_is_current(model):
            new_model = self._resealed_model(record, model)
            yield None if new_model is None else self._replace_model(record, model, new_model)
        for first in range(1, record.message_count + 1, MAX_PAGE):
            last = min(record.message_count, first + MAX_PAGE - 1)
            for stored in self._read_messages(record, first, last):
                if self.cipher.is_current(stored.blob):
                    continue
                new = self._resealed(stored.blob, message_context(record, stored.seq, stored.role))
                yield (
                    None
                    if new is None
                    else self._replace_message_blob(record, stored.seq, stored.blob, new)
                )

    def _model_is_current(self, stored: str) -> bool:
        return stored.startswith(SEALED_MODEL_PREFIX) and self.cipher.is_current(
            _sealed_model_bytes(stored)
        )

    def _resealed_model(self, record: SessionRecord, stored: str) -> str | None:
        if not stored.startswith(SEALED_MODEL_PREFIX):
            return self._seal_model(record, stored)  # plaintext from before: seal it now
        new = self._resealed(_sealed_model_bytes(stored), _model_context(record))
        return None if new is None else _model_token(new)

    def _resealed(self, blob: bytes, context: bytes) -> bytes | None:
        try:
            return self.cipher.reseal(blob, context)
        except DecryptionError:
            # Already logged by the cipher; one bad value must not stop the rotation.
            return None

    def _open_message(self, record: SessionRecord, stored: StoredMessage) -> Message:
        body = json.loads(
            self.cipher.open(stored.blob, message_context(record, stored.seq, stored.role))
        )
        role: Role = stored.role  # type: ignore[assignment]  # bound into the ciphertext
        return Message(
            seq=stored.seq,
            role=role,
            content=body["c"],
            created_at=stored.created_at,
            name=body.get("n"),
            metadata=body.get("m"),
        )


# -------------------------------------------------------------------- module helpers


def message_context(record: SessionRecord, seq: int, role: str) -> bytes:
    """Where a message ciphertext belongs: tenant, session, incarnation, seq and role."""
    return binding_context(record.tenant, record.session_id, record.incarnation, "msg", seq, role)


def _metadata_context(record: SessionRecord) -> bytes:
    return binding_context(record.tenant, record.session_id, record.incarnation, "metadata")


def _risk_context(record: SessionRecord) -> bytes:
    return binding_context(record.tenant, record.session_id, record.incarnation, "risk")


def _chunks(items: Sequence[_T]) -> Iterator[Sequence[_T]]:
    """`items` in runs of at most as many as one append takes."""
    for first in range(0, len(items), MAX_MESSAGES_PER_APPEND):
        yield items[first : first + MAX_MESSAGES_PER_APPEND]


def _idempotency_digest(key: str) -> str:
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        raise ValidationFailed(
            "Idempotency-Key must be 1 to 255 printable ASCII characters",
            details={"field": "Idempotency-Key"},
        )
    return hashlib.sha256(key.encode()).hexdigest()


def _idempotency_context(tenant: str, digest: str) -> bytes:
    return binding_context(tenant, "idempotency", digest)


def _etag(record: SessionRecord) -> str:
    """A strong ETag naming the incarnation and version of a session."""
    digest = hashlib.blake2b(f"{record.incarnation}.{record.version}".encode(), digest_size=8)
    return f'"{digest.hexdigest()}"'


def _model_context(record: SessionRecord) -> bytes:
    return binding_context(record.tenant, record.session_id, record.incarnation, "model")


def _model_token(sealed: bytes) -> str:
    return SEALED_MODEL_PREFIX + base64.urlsafe_b64encode(sealed).decode("ascii")


def _sealed_model_bytes(stored: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(stored.removeprefix(SEALED_MODEL_PREFIX))
    except (ValueError, binascii.Error):
        return b""  # not a token: opening it fails as for any tampered value


def _dump(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _message_body(message: NewMessage) -> bytes:
    body: dict[str, Any] = {"c": message.content}
    if message.name is not None:
        body["n"] = message.name
    if message.metadata is not None:
        body["m"] = message.metadata
    return _dump(body)


def _is_id_prefix(prefix: str) -> bool:
    try:
        check_session_id(prefix)
    except ValidationFailed:
        return False
    return True


def _check_limit(limit: object) -> int:
    return check_count(limit, "limit", (1, MAX_PAGE))


def out_of_time(deadline: float | None) -> bool:
    """Whether a sweep's `deadline` (a ``time.monotonic()`` instant) has passed."""
    return deadline is not None and time.monotonic() >= deadline


def _ignore_expired(sessions: Sequence[EndedSession]) -> None:
    return None
