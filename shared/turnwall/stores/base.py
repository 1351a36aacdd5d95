"""The one session store interface, assembled from one room per capability.

Like `limits`' storage ABC plus its moving-window support, each capability is its own
small interface with its public flow and the few private hooks a backend implements:

    sessions.SessionCore            create, read, update, end, delete, list, append,
                                    fork and page sessions (the hooks every session needs)
    risk.RiskStateStorage           the scanner's per-session risk state
    idempotency.IdempotencyStorage  claims and stored answers of Idempotency-Keys
    api_keys.ApiKeyStorage          hashed API key records
    rate_counters.RateCounters      fixed-window request counters
    maintenance.SessionMaintenance  sweep, purge, re-encryption, the sweep cursor
    transfer.SessionTransfer        export to documents, import from them

`SessionStore` is all of them together: what every backend implements and what callers
hold, so the web layer, the services, the cleanup function and the CLI keep one type.
Shared pieces live beside them: `records` (what a backend stores), `sealing` (where a
ciphertext belongs), `cursors` and `retry`.
"""

from __future__ import annotations

from abc import ABC

from turnwall.stores.api_keys import ApiKeyStorage
from turnwall.stores.idempotency import IdempotencyStorage
from turnwall.stores.maintenance import SessionMaintenance
from turnwall.stores.rate_counters import RateCounters
from turnwall.stores.risk import RiskStateStorage
from turnwall.stores.transfer import SessionTransfer

__all__ = ["SessionStore"]


class SessionStore(
    RiskStateStorage,
    IdempotencyStorage,
    ApiKeyStorage,
    RateCounters,
    SessionMaintenance,
    SessionTransfer,
    ABC,
):
    """Sessions of many tenants with sliding expiry, encrypted history and risk state,
    plus everything around them: idempotency keys, API keys, rate counters,
    maintenance and transfer. A backend implements every room's hooks.

    Every public method that touches a session takes the caller's tenant first; a
    session of another tenant is indistinguishable from a missing one.
    """
