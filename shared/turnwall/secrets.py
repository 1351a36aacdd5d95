"""Fernet keys from AWS Secrets Manager, for the deployed stack."""

from __future__ import annotations

import base64
import binascii
import json

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from turnwall.errors import ConfigurationError, StoreUnavailable

_HKDF_INFO = b"turnwall fernet key v1"


def fetch_encryption_keys(secret_arn: str) -> str:
    """Read the Fernet keys kept in a secret, as IW_ENCRYPTION_KEYS would hold them.

    The secret holds comma-separated entries (or a JSON object whose ``keys`` field is
    such a string or a list). An entry that is a Fernet key is used as it is; any other
    entry, such as the random string CloudFormation generates, is stretched into a key
    with HKDF-SHA256, so the template needs no custom resource to make a key.

    Raises:
        ConfigurationError: the secret holds no usable keys or cannot be read.
        StoreUnavailable: Secrets Manager cannot be reached.
    """
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        value = boto3.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"]
    except ClientError as exc:
        raise ConfigurationError(f"cannot read encryption secret {secret_arn}: {exc}") from exc
    except BotoCoreError as exc:
        raise StoreUnavailable("Secrets Manager cannot be reached") from exc
    return ",".join(fernet_key_for(entry) for entry in _entries(value, secret_arn))


def fernet_key_for(entry: str) -> str:
    """`entry` itself when it is a Fernet key, else a key derived from it."""
    try:
        if len(base64.urlsafe_b64decode(entry.encode())) == 32:
            return entry
    except (binascii.Error, ValueError):
        pass
    if len(entry) < 32:
        raise ConfigurationError("encryption secret entries must be Fernet keys or >= 32 chars")
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
        entry.encode()
    )
    return base64.urlsafe_b64encode(derived).decode()


def _entries(value: str, secret_arn: str) -> list[str]:
    if value.lstrip().startswith("{"):
        keys = json.loads(value).get("keys")
        value = ",".join(keys) if isinstance(keys, list) else str(keys or "")
    entries = [entry.strip() for entry in value.split(",") if entry.strip()]
    if not entries:
        raise ConfigurationError(f"encryption secret {secret_arn} holds no keys")
    return entries
