"""Settings and store selection by URL."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from turnwall.errors import ConfigurationError
from turnwall.settings import load_settings
from turnwall.stores import build_store
from turnwall.stores.memory import MemorySessionStore


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "IW_STORE_URL",
        "IW_REDIS_URL",
        "IW_DYNAMODB_TABLE",
        "IW_ENCRYPTION_KEYS",
        "IW_DEFAULT_TTL_SECS",
        "IW_MAX_TTL_SECS",
        "IW_ENCRYPTION_SECRET_ARN",
    ):
        monkeypatch.delenv(name, raising=False)


def test_memory_is_the_default_and_needs_no_key() -> None:
    settings = load_settings()

    assert settings.resolved_store_url == "memory://"
    assert isinstance(build_store(settings), MemorySessionStore)


def test_environment_is_read_and_explicit_arguments_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IW_DEFAULT_TTL_SECS", "120")
    monkeypatch.setenv("IW_STORE_URL", "redis://example:6379/0")

    assert load_settings().default_ttl_secs == 120
    assert load_settings(store_url="memory://").resolved_store_url == "memory://"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("IW_REDIS_URL", "redis://cache:6379/0", "redis://cache:6379/0"),
        ("IW_DYNAMODB_TABLE", "sessions", "dynamodb://sessions"),
    ],
)
def test_aliases_select_a_backend(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)

    assert load_settings().resolved_store_url == expected


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:1/0", "redis+cluster://127.0.0.1:1", "dynamodb://sessions"]
)
def test_persistent_store_without_key_refuses_to_start(url: str) -> None:
    with pytest.raises(ConfigurationError, match="IW_ENCRYPTION_KEYS"):
        build_store(load_settings(store_url=url))


def test_unknown_scheme_refuses_to_start() -> None:
    key = Fernet.generate_key().decode()
    with pytest.raises(ConfigurationError, match="unknown scheme 'postgres'"):
        build_store(load_settings(store_url="postgres://db/1", encryption_keys=key))


@pytest.mark.parametrize(
    "overrides",
    [
        {"default_ttl_secs": 30},
        {"default_ttl_secs": 7200, "max_ttl_secs": 3600},
        {"max_messages": 0},
    ],
)
def test_inconsistent_limits_refuse_to_load(overrides: dict[str, int]) -> None:
    with pytest.raises(ConfigurationError, match="IW_"):
        load_settings(**overrides)


def test_malformed_environment_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IW_MAX_MESSAGES", "lots")

    with pytest.raises(ConfigurationError, match="IW_MAX_MESSAGES"):
        load_settings()


def test_variables_are_read_in_any_case_and_others_ignored() -> None:
    settings = load_settings(
        {"iw_default_ttl_secs": "120", "IW_Scan_Profile": "strict", "PATH": "/usr/bin"}
    )

    assert (settings.default_ttl_secs, settings.scan_profile) == (120, "strict")


def test_an_unknown_iw_variable_is_ignored() -> None:
    assert load_settings({"IW_NOT_A_SETTING": "x"}) == load_settings({})
