"""API key storage: hashed key records, by digest.

Only digests are stored (`turnwall.auth` hashes and checks keys); a record is replaced
as a whole, which is how a key is revoked. Few records, read often: backends keep them
in one small place (one Redis hash, one DynamoDB partition).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from turnwall.models import ApiKeyRecord

__all__ = ["ApiKeyStorage"]


class ApiKeyStorage(ABC):
    """Stored API key records, each under its key's digest."""

    def save_api_key(self, record: ApiKeyRecord) -> None:
        """Store (or overwrite, e.g. to revoke) a hashed API key."""
        self._put_api_key(record)

    def find_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        """The record of the key with this digest, revoked or not; None if unknown."""
        return self._get_api_key(key_hash)

    def list_api_keys(self, tenant: str | None = None) -> list[ApiKeyRecord]:
        """Every stored key (of `tenant`, when given), by tenant and creation time."""
        records = self._list_api_keys()
        return sorted(
            (r for r in records if tenant is None or r.tenant == tenant),
            key=lambda r: (r.tenant, r.created_at, r.key_hash),
        )

    @abstractmethod
    def _put_api_key(self, record: ApiKeyRecord) -> None:
        """Store the key record under its hash, replacing any earlier version."""

    @abstractmethod
    def _get_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        """The key record with this hash, revoked or not."""

    @abstractmethod
    def _list_api_keys(self) -> list[ApiKeyRecord]:
        """Every stored key record."""
