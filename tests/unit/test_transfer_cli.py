"""`turnwall export` and `turnwall import` move sessions from Redis to DynamoDB."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING

import pytest
from cryptography.fernet import Fernet

from turnwall import cli
from turnwall.models import NewMessage
from turnwall.settings import get_settings, load_settings
from turnwall.stores import build_store

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

KEY = Fernet.generate_key().decode()


@pytest.fixture
def switch_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    def to(url: str) -> None:
        monkeypatch.setenv("IW_STORE_URL", url)
        monkeypatch.setenv("IW_ENCRYPTION_KEYS", KEY)
        get_settings.cache_clear()

    yield to
    get_settings.cache_clear()


def test_sessions_move_from_redis_to_dynamodb_through_the_cli(
    redis_store_url: str,
    dynamodb_endpoint: str,
    dynamodb_table: str,
    switch_store: object,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A table of its own: test_secrets' in-process moto mock resets the shared server's
    # tables when it ends, and runs before this test.
    dynamodb_store_url = (
        f"dynamodb://{dynamodb_table}?region=us-east-1&endpoint_url={dynamodb_endpoint}"
    )
    # GIVEN a tenant's sessions in Redis, beside sessions under another key
    redis_store_url = redis_store_url.rsplit("/", 1)[0] + "/8"  # a database of its own
    tenant = f"cli{uuid.uuid4().hex[:8]}"
    other = build_store(
        load_settings(store_url=redis_store_url, encryption_keys=Fernet.generate_key().decode())
    )
    other.create_session(f"{tenant}x", "not-ours", metadata={"sealed": "elsewhere"})
    other.close()
    source = build_store(load_settings(store_url=redis_store_url, encryption_keys=KEY))
    source.create_session(tenant, "empty", metadata={"k": "v"})
    source.append_messages(tenant, "chat", [NewMessage("user", f"m{n}") for n in range(3)])
    source.close()
    exported = tmp_path / "sessions.jsonl"

    # WHEN they are exported from Redis and imported into DynamoDB, twice
    switch_store(redis_store_url)  # type: ignore[operator]
    assert cli.main(["export", "--tenant", tenant, "--output", str(exported)]) == 0
    assert cli.main(["export", "--output", str(tmp_path / "all.jsonl")]) == 1  # one unreadable
    switch_store(dynamodb_store_url)  # type: ignore[operator]
    assert cli.main(["import", "--input", str(exported)]) == 0
    assert cli.main(["import", "--input", str(exported)]) == 0

    # THEN DynamoDB holds them; the second import left them as they were
    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    assert sorted(line["session_id"] for line in lines) == ["chat", "empty"]
    target = build_store(load_settings(store_url=dynamodb_store_url, encryption_keys=KEY))
    history = target.get_history(tenant, "chat").messages
    assert [m.content for m in history] == ["m0", "m1", "m2"]
    assert target.get_session(tenant, "empty").metadata == {"k": "v"}
    target.close()
    err = capsys.readouterr().err
    assert "exported 2 sessions" in err
    assert "imported 2 sessions; 0 already existed" in err
    assert "imported 0 sessions; 2 already existed" in err


def test_a_line_that_is_not_a_session_is_reported(
    switch_store: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    switch_store("memory://")  # type: ignore[operator]
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"format": "turnwall.session.v1"}\nnot json\n')

    assert cli.main(["import", "--input", str(broken)]) == 1
    err = capsys.readouterr().err
    assert "line 1 not imported" in err and "line 2 not imported" in err
