"""The Fernet binding: a ciphertext opens only where it was sealed."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from turnwall.crypto import Cipher, binding_context
from turnwall.errors import ConfigurationError, DecryptionError

HERE = binding_context("acme", "chat-1", "inc1", "msg", 1, "user")


def test_seal_and_open_round_trip() -> None:
    cipher = Cipher.ephemeral()

    sealed = cipher.seal(b"hello", HERE)

    assert b"hello" not in sealed
    assert cipher.open(sealed, HERE) == b"hello"


@pytest.mark.parametrize(
    "elsewhere",
    [
        binding_context("other", "chat-1", "inc1", "msg", 1, "user"),
        binding_context("acme", "chat-2", "inc1", "msg", 1, "user"),
        binding_context("acme", "chat-1", "inc2", "msg", 1, "user"),
        binding_context("acme", "chat-1", "inc1", "msg", 2, "user"),
        binding_context("acme", "chat-1", "inc1", "msg", 1, "assistant"),
    ],
)
def test_sealed_value_does_not_open_elsewhere(elsewhere: bytes) -> None:
    cipher = Cipher.ephemeral()
    sealed = cipher.seal(b"secret", HERE)

    with pytest.raises(DecryptionError):
        cipher.open(sealed, elsewhere)


def test_tampered_ciphertext_is_refused() -> None:
    cipher = Cipher.ephemeral()
    sealed = bytearray(cipher.seal(b"secret", HERE))
    sealed[40] ^= 1

    with pytest.raises(DecryptionError):
        cipher.open(bytes(sealed), HERE)


def test_rotation_decrypts_old_and_encrypts_with_first_key() -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    sealed_old = Cipher([old]).seal(b"v1", HERE)
    rotated = Cipher([new, old])

    assert rotated.open(sealed_old, HERE) == b"v1"
    assert not rotated.is_current(sealed_old)
    resealed = rotated.reseal(sealed_old, HERE)
    assert rotated.is_current(resealed)
    assert Cipher([new]).open(resealed, HERE) == b"v1"


def test_from_key_list_trims_and_refuses_garbage() -> None:
    key = Fernet.generate_key().decode()
    assert Cipher.from_key_list(f" {key} ,").open(Cipher([key]).seal(b"x", HERE), HERE) == b"x"
    with pytest.raises(ConfigurationError):
        Cipher.from_key_list("not-a-key")
    with pytest.raises(ConfigurationError):
        Cipher.from_key_list(" , ")


def test_stored_overhead_is_bounded() -> None:
    cipher = Cipher.ephemeral()
    # Fernet: version 1 + time 8 + IV 16 + HMAC 32, AES padding <= 16, binding 16.
    assert len(cipher.seal(b"x" * 1000, HERE)) <= 1000 + 1 + 8 + 16 + 32 + 16 + 16
