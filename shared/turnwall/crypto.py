"""Encryption at rest: Fernet tokens bound to where they are stored.

Fernet has no associated data, so the binding is carried inside the plaintext: a
16-byte BLAKE2b digest of the storage context (tenant, session, incarnation, field,
position) is prepended before encryption and checked after decryption. A ciphertext
copied into another session, incarnation or position therefore decrypts but fails the
check, and is refused exactly like a tampered one.

Tokens are kept as raw bytes (not Fernet's base64 text) so stored data is a quarter
smaller; base64 is re-applied only at the Fernet boundary.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from turnwall.errors import ConfigurationError, DecryptionError

if TYPE_CHECKING:
    from collections.abc import Sequence

logger = logging.getLogger(__name__)

_BINDING_BYTES = 16
_CACHED_PLAINTEXTS = 512
_CACHED_PLAINTEXT_BYTES = 4096
_SEPARATOR = "\x1f"  # cannot occur in tenant names or session ids


def binding_context(*parts: str | int) -> bytes:
    """Join the coordinates of a stored value into the context its ciphertext is bound to."""
    return _SEPARATOR.join(str(part) for part in parts).encode()


def _binding(context: bytes) -> bytes:
    return hashlib.blake2b(context, digest_size=_BINDING_BYTES).digest()


class Cipher:
    """Encrypts with the first key, decrypts with any (key rotation)."""

    def __init__(self, keys: Sequence[str | bytes]) -> None:
        if not keys:
            raise ConfigurationError("at least one Fernet encryption key is needed")
        try:
            fernets = [Fernet(key) for key in keys]
        except (ValueError, TypeError, binascii.Error) as exc:
            raise ConfigurationError(
                "IW_ENCRYPTION_KEYS must hold url-safe base64 Fernet keys of 32 bytes "
                "(make one with `turnwall keys generate-encryption-key`)"
            ) from exc
        self._fernet = MultiFernet(fernets)
        self._primary = fernets[0]
        # Small plaintexts (metadata, risk state) are read far more often than written;
        # remembering recent ones spares an HMAC and an AES pass per read. Keyed by the
        # exact ciphertext and context, so anything altered misses and is verified.
        self._opened: OrderedDict[tuple[bytes, bytes], bytes] = OrderedDict()
        self._opened_lock = threading.Lock()

    @classmethod
    def ephemeral(cls) -> Cipher:
        """A cipher with a fresh random key, for the single-process memory store."""
        return cls([Fernet.generate_key()])

    @classmethod
    def from_key_list(cls, comma_separated: str) -> Cipher:
        keys = [key.strip() for key in comma_separated.split(",") if key.strip()]
        return cls(keys)

    def seal(self, plaintext: bytes, context: bytes) -> bytes:
        """Encrypt `plaintext` bound to `context`; returns the raw token bytes."""
        token = self._primary.encrypt(_binding(context) + plaintext)
        return base64.urlsafe_b64decode(token)

    def open(self, sealed: bytes, context: bytes) -> bytes:
        """Decrypt a `seal` result stored at `context`.

        Raises:
            DecryptionError: the data was tampered with, moved from another context,
                or sealed under a key this cipher does not hold.
        """
        cache_key = (sealed, context)
        with self._opened_lock:
            remembered = self._opened.get(cache_key)
            if remembered is not None:
                self._opened.move_to_end(cache_key)
                return remembered
        try:
            bound = self._fernet.decrypt(base64.urlsafe_b64encode(sealed))
        except InvalidToken as exc:
            logger.error("stored value failed authentication or uses an unknown key")
            raise DecryptionError("stored data could not be decrypted") from exc
        if not hmac.compare_digest(bound[:_BINDING_BYTES], _binding(context)):
            logger.error("stored value was sealed for another place and was refused")
            raise DecryptionError("stored data does not belong to this session or position")
        plaintext = bound[_BINDING_BYTES:]
        if len(plaintext) <= _CACHED_PLAINTEXT_BYTES:
            with self._opened_lock:
                self._opened[cache_key] = plaintext
                if len(self._opened) > _CACHED_PLAINTEXTS:
                    self._opened.popitem(last=False)
        return plaintext

    def is_current(self, sealed: bytes) -> bool:
        """True when `sealed` is already encrypted under the first (newest) key."""
        try:
            self._primary.decrypt(base64.urlsafe_b64encode(sealed))
        except InvalidToken:
            return False
        return True

    def reseal(self, sealed: bytes, context: bytes) -> bytes:
        """Re-encrypt under the newest key, checking the binding on the way."""
        return self.seal(self.open(sealed, context), context)
