"""Risk state: the scanner's memory of a session, kept sealed beside it.

`turnwall.services.scan` reads the state, computes the next one and writes it back
only if nobody wrote in between (``risk_version``), so two scans of one session never
both win. A backend implements one hook: that compare-and-set.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from typing import TYPE_CHECKING, Any

from turnwall.errors import ConcurrentUpdate
from turnwall.models import RiskState
from turnwall.stores.records import READ_ONLY
from turnwall.stores.sealing import dump_json, open_session, risk_context
from turnwall.stores.sessions import SessionCore
from turnwall.validation import check_session_id, check_tenant

if TYPE_CHECKING:
    from turnwall.models import Session
    from turnwall.stores.records import SessionRecord

__all__ = ["RiskStateStorage"]


class RiskStateStorage(SessionCore):
    """Per-session risk state for the scanner, written back optimistically."""

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
            state = json.loads(self.cipher.open(record.risk_blob, risk_context(record)))
        return RiskState(open_session(self.cipher, record, now), state, record.risk_version)

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
        blob = self.cipher.seal(dump_json(state), risk_context(current))
        committed = self._commit_risk(current, blob, now)
        if committed is None:
            raise ConcurrentUpdate("risk state changed since it was read")
        return open_session(self.cipher, committed, now)

    @abstractmethod
    def _commit_risk(
        self, head: SessionRecord, risk_blob: bytes, now: float
    ) -> SessionRecord | None:
        """Atomically replace the risk blob and bump ``risk_version`` if the stored
        session is live with head's incarnation and risk_version; slide expiry."""
