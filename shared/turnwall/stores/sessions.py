"""The session core: what every store does for a session, and the hooks it needs.

`SessionCore` owns every rule that is the same on all backends: validation, TTL
arithmetic, expiry on read, encryption and its bindings, cursors, optimistic retries.
A backend implements only the small private hooks declared here, each one atomic on
its own (a Lua script, a DynamoDB transaction, a critical section). The other rooms
(`risk`, `idempotency`, `api_keys`, `rate_counters`, `maintenance`, `transfer`) add
their own public flow and hooks; `base.SessionStore` is all of them together.

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

import secrets
import time
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Final

from turnwall.errors import (
    ConcurrentUpdate,
    InvalidCursor,
    PreconditionFailed,
    SessionEnded,
    SessionExists,
    SessionFull,
    SessionNotFound,
    ValidationFailed,
)
from turnwall.models import (
    AppendResult,
    HistoryPage,
    NewMessage,
    Session,
    SessionPage,
)
from turnwall.stores.cursors import (
    decode_listing_cursor,
    decode_seq_cursor,
    encode_listing_cursor,
)
from turnwall.stores.records import (
    ENDING,
    READ_ONLY,
    BulkDeletion,
    EndedSession,
    SessionRecord,
    StoredMessage,
    Touch,
    Version,
    new_incarnation,
)
from turnwall.stores.retry import back_off
from turnwall.stores.sealing import (
    message_body,
    open_message,
    open_session,
    seal_message,
    seal_metadata,
    seal_model,
)
from turnwall.validation import (
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
    from collections.abc import Callable, Collection, Sequence

    from turnwall.crypto import Cipher
    from turnwall.models import Order

MAX_PAGE: Final = 1000
MAX_COMMIT_ATTEMPTS: Final = 200
_GENERATED_ID_ATTEMPTS: Final = 8


class SessionCore(ABC):
    """Sessions of many tenants with sliding expiry and encrypted history.

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
        for candidate in candidate_ids(session_id):
            now = self.clock()
            record = self._new_record(tenant, candidate, ttl, now, None)
            if model is not None:
                record = record._replace(model=seal_model(self.cipher, record, model))
            if metadata_json is not None:
                record = record._replace(
                    metadata_blob=seal_metadata(self.cipher, record, metadata_json)
                )
            if self._insert(record, now):
                return open_session(self.cipher, record, now)
        if session_id is None:
            raise ConcurrentUpdate("could not find a free generated session id; try again")
        raise SessionExists(f"session {session_id!r} already exists")

    def get_session(self, tenant: str, session_id: str) -> Session:
        """Read a session and slide its expiry.

        Raises:
            SessionNotFound: no live session with this id in the tenant.
        """
        now = self.clock()
        return open_session(
            self.cipher, self._touch_or_raise(tenant, session_id, now, READ_ONLY), now
        )

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
            return open_session(self.cipher, touched, now)
        # The metadata ciphertext is bound to the incarnation, so seal against the one
        # read and let the backend refuse the write if a recreate raced in between; an
        # If-Match is checked against that same read and enforced by its version.
        for attempt in range(MAX_COMMIT_ATTEMPTS):
            current = self._read_live(tenant, session_id, now)
            self._check_precondition(current, if_match)
            blob = (
                None
                if metadata_json is None
                else seal_metadata(self.cipher, current, metadata_json)
            )
            touch = Touch(
                ttl_secs=ttl,
                metadata_blob=blob,
                expected_version=None if if_match is None else current.version,
            )
            record = self._touch(tenant, session_id, now, touch, incarnation=current.incarnation)
            if record is not None:
                return open_session(self.cipher, record, now)
            self._refuse_if_ended(self._read(tenant, session_id), now)
            back_off(attempt)
            now = self.clock()
        raise ConcurrentUpdate(f"session {session_id!r} kept changing; try again")

    def _check_precondition(self, record: SessionRecord, if_match: Collection[str] | None) -> None:
        if if_match is not None and record.etag not in if_match:
            raise PreconditionFailed(
                f"session {record.session_id!r} changed since the ETag in If-Match was read",
                details={"etag": record.etag},
            )

    def end_session(self, tenant: str, session_id: str) -> Session:
        """Make a session read-only until it expires: appends then raise SessionEnded.

        Ending an ended session changes nothing (its first end time stays).

        Raises:
            SessionNotFound: no live session with this id in the tenant.
        """
        now = self.clock()
        return open_session(self.cipher, self._touch_or_raise(tenant, session_id, now, ENDING), now)

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
        return SessionPage([open_session(self.cipher, r, now) for r in page], total, next_cursor)

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
        bodies = [message_body(message) for message in messages]
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
                seal_message(
                    self.cipher, head, head.message_count + offset + 1, message.role, body, now
                )
                for offset, (message, body) in enumerate(zip(messages, bodies, strict=True))
            ]
            sealed_model = None if model is None else seal_model(self.cipher, head, model)
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
        messages = [open_message(self.cipher, record, item) for item in stored]
        if order == "desc":
            messages.reverse()
        next_cursor = encode_listing_cursor(order, str(next_seq)) if next_seq is not None else None
        return HistoryPage(open_session(self.cipher, record, now), messages, next_cursor)

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
    def _iterate_sessions(
        self, cursor: str | None, limit: int, now: float
    ) -> tuple[list[SessionRecord], str | None]:
        """Up to `limit` sessions live at `now`, from `cursor` in a fixed backend order,
        and the cursor after them (None once the whole store has been visited)."""

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


# -------------------------------------------------------------------- module helpers


def _is_id_prefix(prefix: str) -> bool:
    try:
        check_session_id(prefix)
    except ValidationFailed:
        return False
    return True


def _check_limit(limit: object) -> int:
    return check_count(limit, "limit", (1, MAX_PAGE))


def candidate_ids(session_id: str | None) -> list[str]:
    """The ids to try for a new session: the one asked for (checked), or else a few
    generated `api:<12 hex>` ones, since a live session may hold one already."""
    if session_id is not None:
        return [check_session_id(session_id)]
    return [f"api:{secrets.token_hex(6)}" for _ in range(_GENERATED_ID_ATTEMPTS)]
