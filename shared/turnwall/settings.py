"""All configuration, read once from `IW_*` environment variables.

An explicit argument beats the environment (`load_settings(store_url=...)`), and
settings that cannot work in production refuse to load with a `ConfigurationError`.

A plain pydantic model fed from `os.environ`: the variables are flat strings, and
pydantic-settings (its dotenv, CLI and cloud sources) cost every cold start ~10 ms.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import TYPE_CHECKING, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from turnwall.errors import ConfigurationError
from turnwall.validation import MIN_TTL_SECS, Limits

if TYPE_CHECKING:
    from collections.abc import Mapping

MEMORY_STORE_URL = "memory://"
ENV_PREFIX: Final = "IW_"


class Settings(BaseModel):
    """Turnwall's settings; every field maps to `IW_<FIELD>` (any case)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    store_url: str | None = Field(
        default=None,
        description="memory://, redis://, rediss://, redis+cluster://, dynamodb://TABLE",
    )
    redis_url: str | None = Field(default=None, description="alias selecting Redis")
    dynamodb_table: str | None = Field(default=None, description="alias selecting DynamoDB")
    encryption_keys: str | None = Field(
        default=None, description="comma-separated Fernet keys; the first encrypts"
    )
    encryption_secret_arn: str | None = Field(
        default=None, description="Secrets Manager secret holding the Fernet keys"
    )
    default_ttl_secs: int = Field(default=1800, ge=MIN_TTL_SECS)
    max_ttl_secs: int = Field(default=604800, ge=MIN_TTL_SECS)
    max_message_bytes: int = Field(default=131072, ge=1)
    max_messages: int = Field(default=10000, ge=1)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    rate_limit_per_min: int = Field(default=60, ge=1)
    api_keys: str | None = Field(default=None, description="tenant:role:key, comma-separated")
    scan_profile: Literal["default", "strict", "monitor"] = Field(
        default="default",
        description="detection policy: default, strict, or monitor (never blocks)",
    )
    scan_tier: Literal["lexical", "semantic", "contextual"] = Field(
        default="contextual",
        description="contextual: signatures and the embedding tier, which judges where a "
        "conversation is heading, on the MiniLM transformer (onnxruntime, 23 MB model, "
        "~11 ms per turn); semantic: the same tier on static embeddings (numpy only, "
        "8 MB, ~1.5 ms); lexical: signatures only (fastest, smallest cold start)",
    )
    upstream_url: str | None = Field(
        default=None, description="OpenAI-compatible base URL, e.g. https://api.openai.com/v1"
    )
    upstream_api_key: str | None = Field(default=None, description="key for IW_UPSTREAM_URL")
    upstream: str | None = Field(default=None, description="bedrock:<model-id>")
    upstream_timeout_secs: float = Field(default=60.0, gt=0)
    chat_max_history_messages: int | None = Field(
        default=None, ge=0, description="newest stored messages sent upstream (all when unset)"
    )
    chat_max_history_bytes: int | None = Field(
        default=None, ge=0, description="cap on the stored history's bytes sent upstream"
    )
    key_cache_secs: float = Field(
        default=30.0, ge=0, description="how long a container trusts a key lookup"
    )
    event_bus_name: str | None = Field(
        default=None,
        description="EventBridge bus for Session Expired / Session Deleted events; "
        "unset or empty: no events",
    )
    forwarded_allow_ips: str | None = Field(
        default=None,
        description="turnwall serve: proxy addresses (comma-separated, or *) whose "
        "X-Forwarded-For / X-Forwarded-Proto are trusted; unset: trust none",
    )
    header_timeout_secs: float = Field(
        default=10.0, gt=0, description="turnwall serve: time a client has to send headers"
    )
    body_timeout_secs: float = Field(
        default=10.0, gt=0, description="turnwall serve: time a client has to send the body"
    )
    sweep_max_items: int = Field(
        default=10_000, ge=1, description="stored items one scheduled cleanup run examines"
    )
    sweep_time_budget_secs: float = Field(
        default=60.0, gt=0, description="longest a scheduled cleanup run keeps sweeping"
    )

    @field_validator("event_bus_name")
    @classmethod
    def _empty_bus_means_none(cls, value: str | None) -> str | None:
        # The template passes an empty parameter through as an empty variable.
        return value or None

    @model_validator(mode="after")
    def _ttl_bounds_agree(self) -> Settings:
        if not MIN_TTL_SECS <= self.default_ttl_secs <= self.max_ttl_secs:
            raise ValueError(
                f"IW_DEFAULT_TTL_SECS must lie between {MIN_TTL_SECS} and IW_MAX_TTL_SECS"
            )
        return self

    @property
    def resolved_store_url(self) -> str:
        """The store URL after applying the IW_REDIS_URL / IW_DYNAMODB_TABLE aliases."""
        if self.store_url:
            return self.store_url
        if self.redis_url:
            return self.redis_url
        if self.dynamodb_table:
            return f"dynamodb://{self.dynamodb_table}"
        return MEMORY_STORE_URL

    @property
    def limits(self) -> Limits:
        return Limits(
            default_ttl_secs=self.default_ttl_secs,
            max_ttl_secs=self.max_ttl_secs,
            max_message_bytes=self.max_message_bytes,
            max_messages=self.max_messages,
        )


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Read settings from `environ` (default: the process environment), with explicit
    overrides winning.

    Raises:
        ConfigurationError: a variable is malformed or the combination cannot work.
    """
    variables = os.environ if environ is None else environ
    values: dict[str, object] = {
        name[len(ENV_PREFIX) :].lower(): value
        for name, value in variables.items()
        if name[: len(ENV_PREFIX)].upper() == ENV_PREFIX
    }
    values.update(overrides)
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"IW_{'_'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            if error["loc"]
            else error["msg"]
            for error in exc.errors()
        )
        raise ConfigurationError(f"invalid configuration: {problems}") from exc


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once per Lambda container."""
    return load_settings()
