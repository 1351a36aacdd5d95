"""Fernet keys from AWS Secrets Manager, for the deployed stack."""

from __future__ import annotations

import json

from turnwall.errors import ConfigurationError, StoreUnavailable


def fetch_encryption_keys(secret_arn: str) -> str:
    """Read the comma-separated Fernet keys kept in a secret.

    The secret holds either the plain comma-separated keys or a JSON object with a
    ``keys`` field (string or list).

    Raises:
        ConfigurationError: the secret holds no usable keys.
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
    if value.lstrip().startswith("{"):
        keys = json.loads(value).get("keys")
        value = ",".join(keys) if isinstance(keys, list) else str(keys or "")
    if not value.strip():
        raise ConfigurationError(f"encryption secret {secret_arn} holds no keys")
    return value
