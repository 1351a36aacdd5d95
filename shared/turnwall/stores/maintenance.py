"""Maintenance: removing what expiry left behind, and re-encrypting under a new key.

Run by the cleanup function (stream records and the scheduled sweep) and the CLI, never
on a request's path. Every step is bounded and resumable (a cursor), so one fits a
Lambda invocation, and never touches a live session beyond resealing its values in
place: a value is written back only if it is still the exact ciphertext that was read.
"""

from __future__ import annotations

import re
import time
from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import Final, NamedTuple

from turnwall.errors import DecryptionError, ValidationFailed
from turnwall.stores.records import EndedSession, SealedField, SessionRecord
from turnwall.stores.sealing import (
    SEALED_MODEL_PREFIX,
    message_context,
    metadata_context,
    model_context,
    model_token,
    risk_context,
    seal_model,
    sealed_model_bytes,
)
from turnwall.stores.sessions import MAX_PAGE, SessionCore
from turnwall.validation import check_count, check_session_id, check_tenant

__all__ = [
    "ExpiryCallback",
    "ReencryptReport",
    "SessionMaintenance",
    "SweepReport",
    "out_of_time",
]

# What `new_incarnation` makes, loosely: stores put it into keys and sort keys.
_INCARNATION: Final = re.compile(r"[0-9a-f]{8,32}")


class SweepReport(NamedTuple):
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


class ReencryptReport(NamedTuple):
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


class SessionMaintenance(SessionCore):
    """Sweeps, purges and re-encryption over a whole store."""

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

    def load_sweep_cursor(self) -> str | None:
        """The cursor the last scheduled sweep saved, or None to start a new pass."""
        return self._get_sweep_cursor()

    def save_sweep_cursor(self, cursor: str | None) -> None:
        """Keep where the sweep stopped for the next run; None starts the next run afresh."""
        self._put_sweep_cursor(cursor)

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
    def _replace_sealed_field(
        self, record: SessionRecord, field: SealedField, old: bytes | str, new: bytes | str
    ) -> bool:
        """Atomically set the session's `field` (metadata or risk blob: bytes; the
        sealed model: str) to `new` if the stored session is record's incarnation and
        the field is exactly `old`; leave expiry and ``risk_version`` alone, since the
        value it holds is unchanged. Whether it was replaced."""

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

    def _reseal_session(self, record: SessionRecord) -> Iterator[bool | None]:
        """Reseal each value of the session not under the newest key: yields True when
        written back, False when a concurrent write got there first, None when the
        value cannot be opened."""
        fields: tuple[tuple[SealedField, bytes | None, bytes], ...] = (
            ("metadata_blob", record.metadata_blob, metadata_context(record)),
            ("risk_blob", record.risk_blob, risk_context(record)),
        )
        for field, blob, context in fields:
            if blob is None or self.cipher.is_current(blob):
                continue
            new = self._resealed(blob, context)
            yield None if new is None else self._replace_sealed_field(record, field, blob, new)
        model = record.model
        if model is not None and not self._model_is_current(model):
            new_model = self._resealed_model(record, model)
            yield (
                None
                if new_model is None
                else self._replace_sealed_field(record, "model", model, new_model)
            )
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
            sealed_model_bytes(stored)
        )

    def _resealed_model(self, record: SessionRecord, stored: str) -> str | None:
        if not stored.startswith(SEALED_MODEL_PREFIX):
            return seal_model(self.cipher, record, stored)  # plaintext from before: seal it now
        new = self._resealed(sealed_model_bytes(stored), model_context(record))
        return None if new is None else model_token(new)

    def _resealed(self, blob: bytes, context: bytes) -> bytes | None:
        try:
            return self.cipher.reseal(blob, context)
        except DecryptionError:
            # Already logged by the cipher; one bad value must not stop the rotation.
            return None


def out_of_time(deadline: float | None) -> bool:
    """Whether a sweep's `deadline` (a ``time.monotonic()`` instant) has passed."""
    return deadline is not None and time.monotonic() >= deadline


def _ignore_expired(sessions: Sequence[EndedSession]) -> None:
    return None
