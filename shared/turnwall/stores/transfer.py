"""Transfer: copies of sessions, within one store (fork) and between stores.

Every copy opens each value at its old place and seals it for the new one (values are
bound to tenant, session, incarnation and seq), so nothing is ever copied as a
ciphertext. A fork copies a session under a new id in the same store. An export
document holds a session decrypted, with its times, remaining TTL, status, model,
metadata, risk state and messages; importing seals every value afresh, so sessions
move between backends and between encryption keys.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from typing import TYPE_CHECKING, Any, Final, NamedTuple, TypeVar

from turnwall.errors import (
    ConcurrentUpdate,
    DecryptionError,
    SessionExists,
    SessionNotFound,
    ValidationFailed,
)
from turnwall.models import NewMessage
from turnwall.stores.records import READ_ONLY
from turnwall.stores.sealing import (
    dump_json,
    message_body,
    message_context,
    metadata_context,
    moved,
    open_message,
    open_model,
    open_session,
    risk_context,
    seal_message,
    seal_metadata,
    seal_model,
)
from turnwall.stores.sessions import MAX_PAGE, SessionCore, candidate_ids
from turnwall.validation import (
    MAX_MESSAGES_PER_APPEND,
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
    from collections.abc import Iterator, Sequence

    from turnwall.models import Session
    from turnwall.stores.records import SessionRecord

__all__ = ["EXPORT_FORMAT", "ExportPage", "SessionTransfer"]

EXPORT_FORMAT: Final = "turnwall.session.v1"
_FORK_CHUNK: Final = 100  # messages per commit, as many as one append may hold
_T = TypeVar("_T")


class ExportPage(NamedTuple):
    """One step of `SessionStore.export_sessions`."""

    sessions: list[dict[str, Any]]
    next_cursor: str | None
    unreadable: int = 0


class _ImportedSession(NamedTuple):
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


class SessionTransfer(SessionCore):
    """Forks of sessions, export of live sessions as documents, and their import."""

    # ---------------------------------------------------------------- fork

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
        for candidate in candidate_ids(new_session_id):
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
            return open_session(self.cipher, committed, now)
        if new_session_id is None:
            raise ConcurrentUpdate("could not find a free generated session id; try again")
        raise SessionExists(f"session {new_session_id!r} already exists")

    def _forked_record(self, source: SessionRecord, session_id: str, now: float) -> SessionRecord:
        head = self._new_record(source.tenant, session_id, source.ttl_secs, now, None)
        model = open_model(self.cipher, source)
        return head._replace(
            model=None if model is None else seal_model(self.cipher, head, model),
            metadata_blob=(
                None
                if source.metadata_blob is None
                else moved(
                    self.cipher,
                    source.metadata_blob,
                    metadata_context(source),
                    metadata_context(head),
                )
            ),
            risk_blob=(
                None
                if source.risk_blob is None
                else moved(self.cipher, source.risk_blob, risk_context(source), risk_context(head))
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
        copies = [
            message._replace(
                blob=moved(
                    self.cipher,
                    message.blob,
                    message_context(source, message.seq, message.role),
                    message_context(head, message.seq, message.role),
                )
            )
            for message in stored
        ]
        return self._commit_append(head, copies, None, now, creating=creating)

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
        session = open_session(self.cipher, record, now)
        risk: dict[str, Any] = {}
        if record.risk_blob is not None:
            risk = json.loads(self.cipher.open(record.risk_blob, risk_context(record)))
        messages = []
        for first in range(1, record.message_count + 1, MAX_PAGE):
            last = min(record.message_count, first + MAX_PAGE - 1)
            for stored in self._read_messages(record, first, last):
                message = open_message(self.cipher, record, stored)
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
        head = head._replace(
            model=None if imported.model is None else seal_model(self.cipher, head, imported.model),
            metadata_blob=(
                seal_metadata(self.cipher, head, encode_metadata(imported.metadata))
                if imported.metadata
                else None
            ),
            risk_blob=(
                self.cipher.seal(dump_json(imported.risk), risk_context(head))
                if imported.risk
                else None
            ),
        )
        committed = head if imported.messages or self._insert(head, now) else None
        for number, chunk in enumerate(_chunks(imported.messages)):
            if committed is None:
                break
            sealed = [
                seal_message(
                    self.cipher, head, seq, message.role, message_body(message), created_at
                )
                for seq, message, created_at in chunk
            ]
            committed = self._commit_append(committed, sealed, None, now, creating=number == 0)
        if committed is None:
            raise SessionExists(f"session {imported.session_id!r} already exists")
        restored = committed._replace(
            created_at=imported.created_at,
            updated_at=imported.updated_at,
            expires_at=now + imported.expires_in,
            ended_at=imported.ended_at,
        )
        if not self._restore_record(restored, now):
            raise ConcurrentUpdate(f"session {imported.session_id!r} changed while importing")
        return open_session(self.cipher, restored, now)

    @abstractmethod
    def _restore_record(self, record: SessionRecord, now: float) -> bool:
        """Overwrite the stored session's bookkeeping (times, expiry, ended_at) with
        `record`'s if it is record's incarnation with record's message_count; whether
        it was."""


def _chunks(items: Sequence[_T]) -> Iterator[Sequence[_T]]:
    """`items` in runs of at most as many as one append takes."""
    for first in range(0, len(items), MAX_MESSAGES_PER_APPEND):
        yield items[first : first + MAX_MESSAGES_PER_APPEND]
