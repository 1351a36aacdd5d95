"""Session stores, chosen by URL scheme (`IW_STORE_URL`).

Backends are imported lazily, so a Redis-backed function never imports boto3 and the
memory store needs neither client library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from turnwall.crypto import Cipher
from turnwall.errors import ConfigurationError
from turnwall.stores.base import SessionStore

if TYPE_CHECKING:
    from collections.abc import Callable

    from turnwall.settings import Settings

__all__ = ["SessionStore", "build_store", "load_cipher"]

_REDIS_SCHEMES = frozenset({"redis", "rediss", "redis+cluster", "rediss+cluster"})
_SCHEMES = "memory://, redis://, rediss://, redis+cluster://, dynamodb://TABLE"


def load_cipher(settings: Settings) -> Cipher | None:
    """The cipher from IW_ENCRYPTION_KEYS or the Secrets Manager secret, if configured."""
    if settings.encryption_keys:
        return Cipher.from_key_list(settings.encryption_keys)
    if settings.encryption_secret_arn:
        from turnwall.secrets import fetch_encryption_keys

        return Cipher.from_key_list(fetch_encryption_keys(settings.encryption_secret_arn))
    return None


def build_store(settings: Settings, *, clock: Callable[[], float] | None = None) -> SessionStore:
    """Build the store `settings` select.

    Raises:
        ConfigurationError: unknown scheme, or a persistent store without an encryption key.
    """
    url = settings.resolved_store_url
    scheme = urlsplit(url).scheme.lower()
    cipher = load_cipher(settings)
    if scheme == "memory":
        from turnwall.stores.memory import MemorySessionStore

        return MemorySessionStore(cipher or Cipher.ephemeral(), settings.limits, clock)
    if scheme not in _REDIS_SCHEMES and scheme != "dynamodb":
        raise ConfigurationError(
            f"IW_STORE_URL has unknown scheme {scheme!r}; use one of {_SCHEMES}"
        )
    if cipher is None:
        raise ConfigurationError(
            f"the {scheme} store keeps data at rest and needs IW_ENCRYPTION_KEYS "
            "(or IW_ENCRYPTION_SECRET_ARN); make a key with "
            "`turnwall keys generate-encryption-key`"
        )
    if scheme in _REDIS_SCHEMES:
        from turnwall.stores.redis import RedisSessionStore

        return RedisSessionStore.from_url(url, cipher, settings.limits, clock)
    from turnwall.stores.dynamodb import DynamoDBSessionStore

    return DynamoDBSessionStore.from_url(url, cipher, settings.limits, clock)
