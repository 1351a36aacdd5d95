"""API keys: format, hashing, roles and lookup.

Keys are never stored, only their SHA-256 hex digests; a key's public id is the first
16 hex characters of that digest. Presented keys are looked up by digest and then
compared in constant time, so response timing says nothing about stored keys.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
import threading
import time
from typing import TYPE_CHECKING, Final, Literal, NamedTuple

from turnwall.errors import (
    ConfigurationError,
    Forbidden,
    InvalidApiKey,
    KeyNotFound,
    Unauthorized,
)
from turnwall.models import ApiKeyRecord, KeyRole
from turnwall.validation import check_tenant

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from turnwall.stores.base import SessionStore

Permission = Literal["sessions", "scan", "chat", "keys", "bulk"]
ROLE_PERMISSIONS: Final[dict[str, frozenset[str]]] = {
    "scan": frozenset({"sessions", "scan", "chat"}),
    "admin": frozenset({"sessions", "scan", "chat", "keys", "bulk"}),
}
KEY_FORMAT: Final = re.compile(r"iwk_(scan|admin)_[A-Za-z0-9]{32,256}")
_KEY_ALPHABET: Final = string.ascii_letters + string.digits
DEFAULT_CACHE_SECS: Final = 30.0


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key(role: KeyRole) -> str:
    """A new key: `iwk_<role>_` and 40 random base62 characters (~238 bits)."""
    return f"iwk_{role}_" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(40))


class Principal(NamedTuple):
    """Who is calling: the tenant and role of an accepted key."""

    tenant: str
    role: KeyRole
    key_id: str

    def require(self, permission: Permission) -> None:
        """Raises Forbidden unless the role grants `permission`."""
        if permission not in ROLE_PERMISSIONS[self.role]:
            raise Forbidden(f"a {self.role} key may not use {permission} operations")


def parse_bootstrap_keys(spec: str | None, now: float = 0.0) -> list[ApiKeyRecord]:
    """Parse `IW_API_KEYS`: comma-separated `tenant:role:key` entries.

    Raises:
        ConfigurationError: an entry is malformed or its key does not match its role.
    """
    records = []
    for entry in (part.strip() for part in (spec or "").split(",")):
        if not entry:
            continue
        tenant, _, rest = entry.partition(":")
        role, _, key = rest.partition(":")
        match = KEY_FORMAT.fullmatch(key)
        if role not in ROLE_PERMISSIONS or match is None or match.group(1) != role:
            raise ConfigurationError(
                "IW_API_KEYS entries must be tenant:role:iwk_<role>_<32+ base62 chars> "
                f"with role scan or admin (bad entry for tenant {tenant!r})"
            )
        check_tenant(tenant)
        records.append(ApiKeyRecord(hash_key(key), tenant, role, now))  # type: ignore[arg-type]
    return records


class Authenticator:
    """Turns a presented key into a `Principal`.

    Store lookups are cached per container for `cache_secs` (default 30 s), so a key
    revoked with the CLI may keep working for at most that long on a warm container.
    Bootstrap keys from `IW_API_KEYS` are checked first and never touch the store.
    """

    def __init__(
        self,
        store: SessionStore,
        bootstrap: Iterable[ApiKeyRecord] = (),
        *,
        cache_secs: float = DEFAULT_CACHE_SECS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._bootstrap = {record.key_hash: record for record in bootstrap}
        self._cache_secs = cache_secs
        self._clock = clock
        self._cache: dict[str, tuple[float, ApiKeyRecord | None]] = {}
        self._lock = threading.Lock()

    def authenticate(self, presented: str | None) -> Principal:
        """Raises Unauthorized when no key is given, InvalidApiKey when it is not valid."""
        if not presented:
            raise Unauthorized("send an API key as 'Authorization: Bearer <key>' or 'X-Api-Key'")
        if KEY_FORMAT.fullmatch(presented) is None:
            raise InvalidApiKey("the API key is not valid")
        digest = hash_key(presented)
        record = self._bootstrap.get(digest) or self._lookup(digest)
        if (
            record is None
            or record.revoked_at is not None
            or not hmac.compare_digest(record.key_hash, digest)
            or not presented.startswith(f"iwk_{record.role}_")
        ):
            raise InvalidApiKey("the API key is not valid")
        return Principal(record.tenant, record.role, record.key_id)

    def _lookup(self, digest: str) -> ApiKeyRecord | None:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        record = self._store.find_api_key(digest)
        with self._lock:
            if len(self._cache) > 10_000:  # bound memory under a flood of random keys
                self._cache.clear()
            self._cache[digest] = (now + self._cache_secs, record)
        return record


def create_key(store: SessionStore, tenant: str, role: KeyRole) -> tuple[str, ApiKeyRecord]:
    """Create and store a new key; the plaintext key is returned once and never stored."""
    check_tenant(tenant)
    if role not in ROLE_PERMISSIONS:
        raise ConfigurationError("role must be scan or admin")
    key = generate_key(role)
    record = ApiKeyRecord(hash_key(key), tenant, role, store.clock())
    store.save_api_key(record)
    return key, record


def revoke_key(store: SessionStore, key_id: str) -> ApiKeyRecord:
    """Mark a stored key revoked.

    Raises:
        KeyNotFound: no stored key has that id.
    """
    for record in store.list_api_keys():
        if record.key_id == key_id:
            revoked = ApiKeyRecord(
                record.key_hash, record.tenant, record.role, record.created_at, store.clock()
            )
            store.save_api_key(revoked)
            return revoked
    raise KeyNotFound(f"no API key with id {key_id!r}")
