"""`turnwall keys rotate-encryption` against a private Redis: runs, resumes, finishes."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from cryptography.fernet import Fernet

from turnwall import cli
from turnwall.crypto import Cipher
from turnwall.models import NewMessage
from turnwall.settings import get_settings
from turnwall.stores.base import SessionStore
from turnwall.stores.redis import RedisSessionStore

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from turnwall.stores.maintenance import ReencryptReport

# A database of the test Redis no other test writes to, so every session is ours.
_ROTATION_DB = 7
SESSIONS = 5


@pytest.fixture
def rotation_url(redis_store_url: str) -> Iterator[str]:
    yield redis_store_url.rsplit("/", 1)[0] + f"/{_ROTATION_DB}"
    get_settings.cache_clear()


@pytest.fixture
def keys() -> tuple[str, str]:
    return Fernet.generate_key().decode(), Fernet.generate_key().decode()


def configure(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str, encryption_keys: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IW_STORE_URL", url)
    monkeypatch.setenv("IW_ENCRYPTION_KEYS", encryption_keys)
    get_settings.cache_clear()


def test_rotation_resumes_from_its_state_file(
    rotation_url: str,
    keys: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    new, old = keys
    # GIVEN sessions written under the old key
    writer = RedisSessionStore.from_url(rotation_url, Cipher([old]))
    for number in range(SESSIONS):
        writer.append_messages(
            "acme", f"chat-{number}", [NewMessage(role="user", content=f"hi {number}")]
        )
    writer.close()
    configure(monkeypatch, tmp_path, rotation_url, f"{new},{old}")

    # WHEN the first run is interrupted during its third step
    cursors: list[str | None] = []
    interrupt_at: list[int] = [3]
    original = SessionStore.reencrypt

    def recorded(
        self: SessionStore, *, cursor: str | None = None, max_sessions: int = 100
    ) -> ReencryptReport:
        cursors.append(cursor)
        if len(cursors) in interrupt_at:
            raise KeyboardInterrupt
        return original(self, cursor=cursor, max_sessions=max_sessions)

    monkeypatch.setattr(SessionStore, "reencrypt", recorded)
    with pytest.raises(KeyboardInterrupt):
        cli.main(["keys", "rotate-encryption", "--batch", "1"])

    # THEN the state file keeps where it stopped
    state = json.loads((tmp_path / cli.ROTATE_STATE_FILE).read_text())
    assert state["cursor"] == cursors[2] is not None
    assert state["sessions"] == 2

    # WHEN it runs again, THEN it picks up at that cursor and finishes the pass
    cursors.clear()
    interrupt_at.clear()
    assert cli.main(["keys", "rotate-encryption", "--batch", "1"]) == 0
    assert cursors[0] == state["cursor"]
    assert not (tmp_path / cli.ROTATE_STATE_FILE).exists()
    captured = capsys.readouterr()
    assert "resuming" in captured.err
    assert f"{SESSIONS} sessions" in captured.err
    assert f"re-encrypted {SESSIONS} values in {SESSIONS} sessions" in captured.out

    # AND the new key alone reads every session
    reader = RedisSessionStore.from_url(rotation_url, Cipher([new]))
    for number in range(SESSIONS):
        history = reader.get_history("acme", f"chat-{number}")
        assert [m.content for m in history.messages] == [f"hi {number}"]
    reader.close()


def test_a_corrupt_state_file_is_refused(
    rotation_url: str,
    keys: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure(monkeypatch, tmp_path, rotation_url, ",".join(keys))
    (tmp_path / "state.json").write_text("{not json")

    assert cli.main(["keys", "rotate-encryption", "--state", "state.json"]) == 2
    assert "delete it to start over" in capsys.readouterr().err
