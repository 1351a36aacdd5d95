"""Key rotation: `reencrypt` reseals every stored value under the newest key, on every backend.

GIVEN sessions written under an old key, WHEN reencrypt runs to completion with the
new key first, THEN a store holding only the new key reads everything, concurrent
writes in between survive, and a second pass has nothing left to do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from cryptography.fernet import Fernet

from turnwall.crypto import Cipher
from turnwall.errors import DecryptionError, InvalidCursor, ValidationFailed
from turnwall.models import NewMessage
from turnwall.stores.sealing import SEALED_MODEL_PREFIX

if TYPE_CHECKING:
    from tests.conftest import StoreFactory
    from turnwall.stores.base import SessionStore
    from turnwall.stores.maintenance import ReencryptReport

SESSIONS = 5
MESSAGES = 3


@pytest.fixture
def old_key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
def new_key() -> str:
    return Fernet.generate_key().decode()


def user(text: str) -> NewMessage:
    return NewMessage(role="user", content=text)


def write_old_sessions(store: SessionStore, tenant: str) -> list[str]:
    """Sessions with metadata, risk state and messages: 1 + 1 + MESSAGES values each."""
    ids = [f"chat-{number}" for number in range(SESSIONS)]
    for session_id in ids:
        store.create_session(tenant, session_id, metadata={"owner": session_id})
        store.append_messages(
            tenant, session_id, [user(f"{session_id} says {n}") for n in range(MESSAGES)]
        )
        risk = store.open_risk_state(tenant, session_id)
        store.save_risk_state(tenant, risk, {"score": 1, "of": session_id})
    return ids


def run_to_completion(store: SessionStore, max_sessions: int) -> list[ReencryptReport]:
    reports = [store.reencrypt(max_sessions=max_sessions)]
    while reports[-1].next_cursor is not None:
        assert len(reports) < 1000, "the pass does not finish"
        reports.append(store.reencrypt(cursor=reports[-1].next_cursor, max_sessions=max_sessions))
    return reports


def assert_readable(store: SessionStore, tenant: str, session_id: str) -> None:
    session = store.get_session(tenant, session_id)
    assert session.metadata == {"owner": session_id}
    assert store.open_risk_state(tenant, session_id).state == {"score": 1, "of": session_id}
    contents = [m.content for m in store.get_history(tenant, session_id).messages]
    assert contents[:MESSAGES] == [f"{session_id} says {n}" for n in range(MESSAGES)]


def stored_blobs(store: SessionStore, tenant: str, session_id: str) -> list[bytes | None]:
    """The raw ciphertexts of a session, as the backend holds them."""
    record = store._read(tenant, session_id)
    assert record is not None
    messages = store._read_messages(record, 1, record.message_count)
    return [record.metadata_blob, record.risk_blob, *(m.blob for m in messages)]


def test_reencrypt_moves_everything_to_the_newest_key(
    make_store: StoreFactory, tenant: str, old_key: str, new_key: str
) -> None:
    # GIVEN sessions written under the old key
    ids = write_old_sessions(make_store(cipher=Cipher([old_key])), tenant)
    rotating = make_store(cipher=Cipher([new_key, old_key]))

    # WHEN the rotation runs in steps of two sessions
    reports = run_to_completion(rotating, max_sessions=2)

    # THEN every value of ours was resealed (other tests' sessions may share the store)
    assert sum(r.sessions for r in reports) >= SESSIONS
    assert sum(r.values_resealed for r in reports) >= SESSIONS * (2 + MESSAGES)
    new_only = make_store(cipher=Cipher([new_key]))
    for session_id in ids:
        assert_readable(new_only, tenant, session_id)
    with pytest.raises(DecryptionError):
        make_store(cipher=Cipher([old_key])).get_session(tenant, ids[0])


def test_reencrypt_is_idempotent(
    make_store: StoreFactory, tenant: str, old_key: str, new_key: str
) -> None:
    ids = write_old_sessions(make_store(cipher=Cipher([old_key])), tenant)
    rotating = make_store(cipher=Cipher([new_key, old_key]))
    run_to_completion(rotating, max_sessions=3)

    # WHEN a second pass runs, THEN not one stored byte of our sessions changes (other
    # tests' sessions share the server, so the report's totals are not ours alone)
    before = {session_id: stored_blobs(rotating, tenant, session_id) for session_id in ids}
    again = run_to_completion(rotating, max_sessions=3)
    assert sum(r.sessions for r in again) >= SESSIONS
    for session_id in ids:
        assert stored_blobs(rotating, tenant, session_id) == before[session_id]
        assert_readable(make_store(cipher=Cipher([new_key])), tenant, session_id)


def test_second_pass_over_a_rotated_memory_store_reseals_nothing(
    memory_store_factory: StoreFactory, tenant: str, old_key: str, new_key: str
) -> None:
    # The memory store is private to the test, so the counts are exact here.
    write_old_sessions(memory_store_factory(cipher=Cipher([old_key])), tenant)
    rotating = memory_store_factory(cipher=Cipher([new_key, old_key]))

    first = run_to_completion(rotating, max_sessions=2)
    second = run_to_completion(rotating, max_sessions=2)

    assert [r.sessions for r in first] == [2, 2, 1]
    assert all(r.values_unreadable == 0 for r in first)
    assert sum(r.values_resealed for r in first) == SESSIONS * (2 + MESSAGES)
    assert sum(r.sessions for r in second) == SESSIONS
    assert sum(r.values_resealed for r in second) == 0


def test_writes_between_steps_are_not_lost(
    make_store: StoreFactory, tenant: str, old_key: str, new_key: str
) -> None:
    old_store = make_store(cipher=Cipher([old_key]))
    ids = write_old_sessions(old_store, tenant)
    rotating = make_store(cipher=Cipher([new_key, old_key]))
    live = make_store(cipher=Cipher([new_key, old_key]))  # another process, already rotated

    # WHEN traffic continues between steps of the rotation
    report = rotating.reencrypt(max_sessions=1)
    for session_id in ids:
        live.append_messages(tenant, session_id, [user("late")])
        live.update_session(tenant, session_id, metadata={"owner": session_id})
        risk = live.open_risk_state(tenant, session_id)
        live.save_risk_state(tenant, risk, {"score": 1, "of": session_id})
    while report.next_cursor is not None:
        report = rotating.reencrypt(cursor=report.next_cursor, max_sessions=1)

    # THEN the new key alone reads old and new data, and nothing written is lost
    new_only = make_store(cipher=Cipher([new_key]))
    for session_id in ids:
        assert_readable(new_only, tenant, session_id)
        history = new_only.get_history(tenant, session_id).messages
        assert [m.content for m in history][-1] == "late"
        assert len(history) == MESSAGES + 1


def test_a_value_changed_since_it_was_read_is_left_to_the_newer_writer(
    make_store: StoreFactory, tenant: str, old_key: str, new_key: str
) -> None:
    old_store = make_store(cipher=Cipher([old_key]))
    old_store.create_session(tenant, "chat", metadata={"v": 1})
    rotating = make_store(cipher=Cipher([new_key, old_key]))
    stale = rotating._read(tenant, "chat")
    assert stale is not None and stale.metadata_blob is not None

    # WHEN another writer replaces the metadata after the rotation read it
    rotating.update_session(tenant, "chat", metadata={"v": 2})
    replaced = rotating._replace_sealed_field(
        stale, "metadata_blob", stale.metadata_blob, b"resealed"
    )

    # THEN the compare-and-set refuses, and the newer value stays
    assert replaced is False
    assert rotating.get_session(tenant, "chat").metadata == {"v": 2}
    assert rotating._replace_message_blob(stale, 1, b"old", b"new") is False


def test_reencrypt_refuses_bad_arguments(store: SessionStore) -> None:
    with pytest.raises(ValidationFailed):
        store.reencrypt(max_sessions=0)
    with pytest.raises(InvalidCursor):
        store.reencrypt(cursor="not a cursor")


# ------------------------------------------------------------------ the model name


def test_the_model_name_is_stored_sealed(store: SessionStore, tenant: str) -> None:
    store.create_session(tenant, "sealed-model", model="gpt-4o-mini")
    store.append_messages(tenant, "appended-model", [user("hi")], model="claude-sonnet")

    for session_id, model in (("sealed-model", "gpt-4o-mini"), ("appended-model", "claude-sonnet")):
        record = store._read(tenant, session_id)
        assert record is not None and record.model is not None
        assert model not in record.model and record.model.startswith(SEALED_MODEL_PREFIX)
        assert store.get_session(tenant, session_id).model == model
        assert store.get_history(tenant, session_id).session.model == model


def test_a_sealed_model_does_not_open_in_another_session(store: SessionStore, tenant: str) -> None:
    store.create_session(tenant, "owner", model="gpt-4o")
    store.create_session(tenant, "thief", model="other")
    owner, thief = store._read(tenant, "owner"), store._read(tenant, "thief")
    assert owner is not None and owner.model and thief is not None and thief.model

    assert store._replace_sealed_field(thief, "model", thief.model, owner.model)
    with pytest.raises(DecryptionError):
        store.get_session(tenant, "thief")


def test_rotation_reseals_the_model_and_seals_a_plaintext_one(
    make_store: StoreFactory, tenant: str, old_key: str, new_key: str
) -> None:
    # GIVEN one session with a model sealed under the old key, and one whose model was
    # stored in plaintext (as before models were sealed)
    old = make_store(cipher=Cipher([old_key]))
    old.create_session(tenant, "old-key", model="gpt-4o")
    old.create_session(tenant, "plain", model="placeholder")
    plain = old._read(tenant, "plain")
    assert plain is not None and plain.model is not None
    assert old._replace_sealed_field(plain, "model", plain.model, "legacy-model")
    assert old.get_session(tenant, "plain").model == "legacy-model"

    # WHEN the rotation runs
    run_to_completion(make_store(cipher=Cipher([new_key, old_key])), max_sessions=10)

    # THEN both models are sealed under the new key
    new_only = make_store(cipher=Cipher([new_key]))
    assert new_only.get_session(tenant, "old-key").model == "gpt-4o"
    assert new_only.get_session(tenant, "plain").model == "legacy-model"
    resealed = new_only._read(tenant, "plain")
    assert resealed is not None and resealed.model is not None
    assert resealed.model.startswith(SEALED_MODEL_PREFIX)
