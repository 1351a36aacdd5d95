"""Encryption keys from Secrets Manager (moto), as the deployed stack reads them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
import pytest
from cryptography.fernet import Fernet
from moto import mock_aws

from turnwall.crypto import Cipher, binding_context
from turnwall.errors import ConfigurationError
from turnwall.secrets import fernet_key_for
from turnwall.settings import load_settings
from turnwall.stores import load_cipher

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("secretsmanager")


def test_generated_secret_becomes_a_stable_key(secrets: object) -> None:
    generated = "a" * 20 + "B7" * 22  # what GenerateSecretString makes: 64 alphanumerics
    arn = secrets.create_secret(Name="tw", SecretString=generated)["ARN"]  # type: ignore[attr-defined]
    context = binding_context("t", "s")

    first = load_cipher(load_settings(encryption_secret_arn=arn))
    second = load_cipher(load_settings(encryption_secret_arn=arn))

    assert first is not None and second is not None
    assert second.open(first.seal(b"x", context), context) == b"x"


def test_rotation_list_keeps_fernet_keys_as_they_are(secrets: object) -> None:
    old = Fernet.generate_key().decode()
    new_entry = "n" * 64
    arn = secrets.create_secret(Name="tw2", SecretString=f"{new_entry},{old}")["ARN"]  # type: ignore[attr-defined]
    context = binding_context("t", "s")
    sealed_with_old = Cipher([old]).seal(b"old data", context)

    cipher = load_cipher(load_settings(encryption_secret_arn=arn))

    assert cipher is not None and cipher.open(sealed_with_old, context) == b"old data"
    assert Cipher([fernet_key_for(new_entry)]).open(cipher.seal(b"y", context), context) == b"y"


def test_short_entries_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        fernet_key_for("too-short")
