"""Scans with session memory: the pure scanner over the store's per-session risk state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from turnwall.errors import ConcurrentUpdate, ValidationFailed
from turnwall.stores.base import MAX_COMMIT_ATTEMPTS
from turnwall.stores.retry import back_off

if TYPE_CHECKING:
    from turnwall.models import Session
    from turnwall.scan import Scanner, ScanOutcome
    from turnwall.stores.base import SessionStore

Direction = Literal["input", "output"]


@dataclass(frozen=True, slots=True)
class ScanResult:
    """One scanned text: the scanner's outcome and the session it was scanned in."""

    outcome: ScanOutcome
    session_id: str | None
    session: Session | None = None


class ScanService:
    """Runs the scanner with a session's risk state and writes the new state back.

    Two scans of one session at once are serialized by the store's optimistic version
    check: the loser re-reads the state and rescans, so no turn is lost from the state.
    """

    def __init__(self, store: SessionStore, scanner: Scanner, max_text_bytes: int) -> None:
        self._store = store
        self._scanner = scanner
        self._max_text_bytes = max_text_bytes

    def scan(
        self,
        tenant: str,
        direction: Direction,
        text: str,
        session_id: str | None = None,
        *,
        prompt: str | None = None,
    ) -> ScanResult:
        """Scan one text; with a session id the session is created if missing.

        Raises:
            ValidationFailed: the text is too large.
            ConcurrentUpdate: the session's state kept changing (extreme contention).
        """
        self._check_size(text, "text")
        if prompt is not None:
            self._check_size(prompt, "prompt")
        if session_id is None:
            outcome, _ = self._run(direction, text, None, prompt)
            return ScanResult(outcome, None)
        for attempt in range(MAX_COMMIT_ATTEMPTS):
            risk = self._store.open_risk_state(tenant, session_id)
            outcome, state = self._run(direction, text, risk.state, prompt)
            try:
                session = self._store.save_risk_state(tenant, risk, state or {})
            except ConcurrentUpdate:
                back_off(attempt)  # with jitter, so a crowd of scans does not retry in step
                continue
            return ScanResult(outcome, session_id, session)
        raise ConcurrentUpdate(f"session {session_id!r} is scanned too often at once; try again")

    def _run(
        self, direction: Direction, text: str, state: dict[str, Any] | None, prompt: str | None
    ) -> tuple[ScanOutcome, dict[str, Any] | None]:
        if direction == "input":
            return self._scanner.scan_input(text, state)
        return self._scanner.scan_output(text, state, prompt=prompt)

    def _check_size(self, text: str, field: str) -> None:
        if len(text.encode("utf-8", "replace")) > self._max_text_bytes:
            raise ValidationFailed(
                f"{field} exceeds {self._max_text_bytes} bytes of UTF-8", details={"field": field}
            )
