"""The store contract: every backend must behave exactly alike.

Each test runs once per backend (memory, redis, redis_cluster, dynamodb) against real
servers started by the fixtures; time moves only through the injected clock.
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING

import pytest
from cryptography.fernet import Fernet

from turnwall.crypto import Cipher
from turnwall.errors import (
    ConcurrentUpdate,
    DecryptionError,
    InvalidCursor,
    InvalidSessionId,
    SessionExists,
    SessionFull,
    SessionNotFound,
    ValidationFailed,
)
from turnwall.models import NewMessage
from turnwall.validation import Limits

if TYPE_CHECKING:
    from tests.conftest import StoreFactory
    from tests.support.clock import FakeClock
    from turnwall.stores.base import SessionStore


def user(text: str) -> NewMessage:
    return NewMessage(role="user", content=text)


# ------------------------------------------------------------------ create / get


def test_create_returns_a_fresh_session(store: SessionStore, tenant: str, clock: FakeClock) -> None:
    session = store.create_session(
        tenant, "user:alice:plan", ttl_secs=600, metadata={"app": "demo"}, model="gpt-4o"
    )

    assert session.session_id == "user:alice:plan"
    assert session.ttl_secs == 600
    assert session.expires_at == pytest.approx(clock() + 600)
    assert session.created_at == session.updated_at == pytest.approx(clock())
    assert session.message_count == 0
    assert session.model == "gpt-4o"
    assert session.metadata == {"app": "demo"}
    assert session.risk.decision == "allow" and session.risk.turns_scanned == 0
    assert session.age_seconds == 0.0


def test_create_without_id_generates_api_id(store: SessionStore, tenant: str) -> None:
    session = store.create_session(tenant)

    assert re.fullmatch(r"api:[0-9a-f]{12}", session.session_id)
    assert session.ttl_secs == 1800
    assert store.get_session(tenant, session.session_id).session_id == session.session_id


def test_create_existing_live_id_conflicts(store: SessionStore, tenant: str) -> None:
    store.create_session(tenant, "chat-1")

    with pytest.raises(SessionExists):
        store.create_session(tenant, "chat-1")


@pytest.mark.parametrize("bad_id", ["", "a" * 129, "has space", "slash/", "ümlaut", "semi;colon"])
def test_invalid_session_ids_are_refused(store: SessionStore, tenant: str, bad_id: str) -> None:
    with pytest.raises(InvalidSessionId):
        store.create_session(tenant, bad_id)
    with pytest.raises(InvalidSessionId):
        store.get_session(tenant, bad_id)


@pytest.mark.parametrize("ttl", [59, 604801, 0, -5, True, 1.5])
def test_ttl_out_of_range_is_refused(store: SessionStore, tenant: str, ttl: object) -> None:
    with pytest.raises(ValidationFailed):
        store.create_session(tenant, "s", ttl_secs=ttl)  # type: ignore[arg-type]


def test_metadata_over_4_kib_is_refused(store: SessionStore, tenant: str) -> None:
    with pytest.raises(ValidationFailed):
        store.create_session(tenant, "s", metadata={"blob": "x" * 4100})


def test_tenants_are_isolated(make_store: StoreFactory, tenant: str) -> None:
    store = make_store()
    other = tenant + "-other"
    store.create_session(tenant, "chat-1", metadata={"owner": "a"})
    store.create_session(other, "chat-1", metadata={"owner": "b"})
    store.append_messages(tenant, "chat-1", [user("only in tenant a")])

    assert store.get_session(other, "chat-1").metadata == {"owner": "b"}
    assert store.get_history(other, "chat-1").messages == []
    store.delete_session(other, "chat-1")
    with pytest.raises(SessionNotFound):
        store.get_session(other, "chat-1")
    assert store.get_session(tenant, "chat-1").message_count == 1
    assert [s.session_id for s in store.list_sessions(other).sessions] == []


# ------------------------------------------------------------------ expiry


def test_session_expires_after_inactivity(
    store: SessionStore, tenant: str, clock: FakeClock
) -> None:
    store.create_session(tenant, "s", ttl_secs=60)
    store.append_messages(tenant, "s", [user("hi")])
    clock.advance(61)

    with pytest.raises(SessionNotFound):
        store.get_session(tenant, "s")
    with pytest.raises(SessionNotFound):
        store.get_history(tenant, "s")
    with pytest.raises(SessionNotFound):
        store.update_session(tenant, "s", ttl_secs=120)
    with pytest.raises(SessionNotFound):
        store.delete_session(tenant, "s")
    assert store.list_sessions(tenant).total == 0


@pytest.mark.parametrize("operation", ["get", "history", "append", "update", "risk"])
def test_every_operation_slides_the_expiry(
    store: SessionStore, tenant: str, clock: FakeClock, operation: str
) -> None:
    store.create_session(tenant, "s", ttl_secs=100)
    for _ in range(3):
        clock.advance(80)
        if operation == "get":
            store.get_session(tenant, "s")
        elif operation == "history":
            store.get_history(tenant, "s")
        elif operation == "append":
            store.append_messages(tenant, "s", [user("still here")])
        elif operation == "update":
            store.update_session(tenant, "s", metadata={"n": 1})
        else:
            store.open_risk_state(tenant, "s")

    session = store.get_session(tenant, "s")
    assert session.expires_at == pytest.approx(clock() + 100)
    clock.advance(101)
    with pytest.raises(SessionNotFound):
        store.get_session(tenant, "s")


def test_listing_does_not_slide_expiry(store: SessionStore, tenant: str, clock: FakeClock) -> None:
    store.create_session(tenant, "s", ttl_secs=60)
    clock.advance(50)
    store.list_sessions(tenant)
    clock.advance(11)

    assert store.list_sessions(tenant).total == 0


def test_reading_does_not_change_updated_at(
    store: SessionStore, tenant: str, clock: FakeClock
) -> None:
    created = store.create_session(tenant, "s")
    clock.advance(5)
    read = store.get_session(tenant, "s")
    clock.advance(5)
    updated = store.update_session(tenant, "s", ttl_secs=300)

    assert read.updated_at == pytest.approx(created.updated_at)
    assert read.age_seconds == 5.0
    assert updated.updated_at == pytest.approx(clock())
    assert updated.ttl_secs == 300 and updated.expires_at == pytest.approx(clock() + 300)


def test_recreate_after_expiry_starts_empty(
    store: SessionStore, tenant: str, clock: FakeClock
) -> None:
    store.create_session(tenant, "s", ttl_secs=60, metadata={"old": True})
    store.append_messages(tenant, "s", [user("old 1"), user("old 2")])
    clock.advance(61)

    fresh = store.create_session(tenant, "s", ttl_secs=60)
    store.append_messages(tenant, "s", [user("new 1")])
    page = store.get_history(tenant, "s")

    assert fresh.message_count == 0 and fresh.metadata == {}
    assert [(m.seq, m.content) for m in page.messages] == [(1, "new 1")]


def test_append_to_expired_session_starts_a_new_one(
    store: SessionStore, tenant: str, clock: FakeClock
) -> None:
    store.append_messages(tenant, "s", [user("old")])
    clock.advance(1801)

    result = store.append_messages(tenant, "s", [user("new")])

    assert result.created and (result.first_seq, result.last_seq) == (1, 1)
    assert [m.content for m in store.get_history(tenant, "s").messages] == ["new"]


# ------------------------------------------------------------------ update / delete


def test_update_replaces_metadata_and_ttl(store: SessionStore, tenant: str) -> None:
    store.create_session(tenant, "s", metadata={"a": 1})

    session = store.update_session(tenant, "s", metadata={"b": [1, 2]}, ttl_secs=3600)

    assert session.metadata == {"b": [1, 2]} and session.ttl_secs == 3600
    assert store.get_session(tenant, "s").metadata == {"b": [1, 2]}
    assert store.update_session(tenant, "s", metadata={}).metadata == {}


def test_delete_removes_session_and_history(store: SessionStore, tenant: str) -> None:
    store.append_messages(tenant, "s", [user("secret plan")])

    store.delete_session(tenant, "s")

    with pytest.raises(SessionNotFound):
        store.get_session(tenant, "s")
    with pytest.raises(SessionNotFound):
        store.delete_session(tenant, "s")
    store.create_session(tenant, "s")
    assert store.get_history(tenant, "s").messages == []


# ------------------------------------------------------------------ append / history


def test_append_creates_missing_session_and_numbers_messages(
    store: SessionStore, tenant: str
) -> None:
    first = store.append_messages(tenant, "s", [user("a"), NewMessage("assistant", "b")])
    second = store.append_messages(
        tenant, "s", [NewMessage("tool", "c", name="search", metadata={"k": "v"})], model="m-1"
    )

    assert first.created and (first.first_seq, first.last_seq, first.message_count) == (1, 2, 2)
    assert not second.created and (second.first_seq, second.last_seq) == (3, 3)
    session = store.get_session(tenant, "s")
    assert session.message_count == 3 and session.model == "m-1"
    messages = store.get_history(tenant, "s").messages
    assert [(m.seq, m.role, m.content) for m in messages] == [
        (1, "user", "a"),
        (2, "assistant", "b"),
        (3, "tool", "c"),
    ]
    assert messages[2].name == "search" and messages[2].metadata == {"k": "v"}


def test_hundred_messages_in_one_append(store: SessionStore, tenant: str) -> None:
    store.append_messages(tenant, "s", [user("warm-up")])
    result = store.append_messages(tenant, "s", [user(f"m{i}") for i in range(100)])

    assert (result.first_seq, result.last_seq, result.message_count) == (2, 101, 101)
    contents = [m.content for m in store.get_history(tenant, "s", limit=1000).messages]
    assert contents == ["warm-up"] + [f"m{i}" for i in range(100)]
    desc = store.get_history(tenant, "s", limit=3, order="desc").messages
    assert [m.seq for m in desc] == [101, 100, 99]
    middle = store.get_history(
        tenant, "s", limit=2, cursor=store.get_history(tenant, "s", limit=100).next_cursor
    )
    assert [m.content for m in middle.messages] == ["m99"]


@pytest.mark.parametrize("count", [0, 101])
def test_batch_size_is_bounded(store: SessionStore, tenant: str, count: int) -> None:
    with pytest.raises(ValidationFailed):
        store.append_messages(tenant, "s", [user("x")] * count)


def test_bad_messages_are_refused(store: SessionStore, tenant: str) -> None:
    with pytest.raises(ValidationFailed):
        store.append_messages(tenant, "s", [NewMessage("robot", "x")])  # type: ignore[arg-type]
    with pytest.raises(ValidationFailed):
        store.append_messages(tenant, "s", [user("x" * 131073)])
    with pytest.raises(ValidationFailed):
        store.append_messages(tenant, "s", [user("\ud800 lone surrogate")])
    with pytest.raises(SessionNotFound):
        store.get_session(tenant, "s")


def test_full_session_refuses_appends(make_store: StoreFactory, tenant: str) -> None:
    store = make_store(limits=Limits(max_messages=5))
    store.append_messages(tenant, "s", [user("x")] * 4)

    with pytest.raises(SessionFull):
        store.append_messages(tenant, "s", [user("y")] * 2)
    store.append_messages(tenant, "s", [user("last")])
    with pytest.raises(SessionFull):
        store.append_messages(tenant, "s", [user("over")])
    assert store.get_session(tenant, "s").message_count == 5


def test_large_and_unicode_content_round_trips(store: SessionStore, tenant: str) -> None:
    big = "ü" * 65536  # 131072 bytes of UTF-8, the default ceiling
    mixed = "héllo 👋 — 你好 \u200b\x00 done"
    store.append_messages(tenant, "s", [user(big), user(mixed)])

    assert [m.content for m in store.get_history(tenant, "s").messages] == [big, mixed]


def test_history_pages_are_stable_while_appends_continue(store: SessionStore, tenant: str) -> None:
    store.append_messages(tenant, "s", [user(f"m{i}") for i in range(1, 26)])
    seen: list[int] = []
    cursor = None
    while True:
        page = store.get_history(tenant, "s", limit=10, cursor=cursor)
        seen += [m.seq for m in page.messages]
        if page.next_cursor is None:
            break
        store.append_messages(tenant, "s", [user("later")])
        cursor = page.next_cursor

    assert seen == list(range(1, 28))
    assert page.session.message_count == 27


def test_history_descending_pages(store: SessionStore, tenant: str) -> None:
    store.append_messages(tenant, "s", [user(f"m{i}") for i in range(1, 8)])

    first = store.get_history(tenant, "s", limit=3, order="desc")
    second = store.get_history(tenant, "s", limit=3, order="desc", cursor=first.next_cursor)
    third = store.get_history(tenant, "s", limit=3, order="desc", cursor=second.next_cursor)

    assert [m.seq for m in first.messages] == [7, 6, 5]
    assert [m.seq for m in second.messages] == [4, 3, 2]
    assert [m.seq for m in third.messages] == [1] and third.next_cursor is None


def test_history_of_empty_session(store: SessionStore, tenant: str) -> None:
    store.create_session(tenant, "s", model="m")

    page = store.get_history(tenant, "s", order="desc")

    assert page.messages == [] and page.next_cursor is None and page.session.model == "m"


@pytest.mark.parametrize("cursor", ["garbage!", "bm90LWEtY3Vyc29y", "ZGVzYzo1"])
def test_foreign_cursors_are_refused(store: SessionStore, tenant: str, cursor: str) -> None:
    store.append_messages(tenant, "s", [user("x")])

    with pytest.raises(InvalidCursor):
        store.get_history(tenant, "s", cursor=cursor)  # "ZGVzYzo1" is a desc cursor


@pytest.mark.parametrize("limit", [0, 1001])
def test_page_limits_are_bounded(store: SessionStore, tenant: str, limit: int) -> None:
    store.append_messages(tenant, "s", [user("x")])
    with pytest.raises(ValidationFailed):
        store.get_history(tenant, "s", limit=limit)
    with pytest.raises(ValidationFailed):
        store.list_sessions(tenant, limit=limit)


def test_concurrent_appends_lose_and_duplicate_nothing(store: SessionStore, tenant: str) -> None:
    threads, per_thread = 16, 25
    store.create_session(tenant, "busy")
    errors: list[BaseException] = []
    seqs: list[int] = []
    seqs_lock = threading.Lock()

    def writer(worker: int) -> None:
        try:
            for i in range(per_thread):
                result = store.append_messages(tenant, "busy", [user(f"{worker}:{i}")])
                with seqs_lock:
                    seqs.append(result.first_seq)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    pool = [threading.Thread(target=writer, args=(w,)) for w in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()

    assert errors == []
    assert sorted(seqs) == list(range(1, threads * per_thread + 1))
    messages = store.get_history(tenant, "busy", limit=1000).messages
    assert [m.seq for m in messages] == list(range(1, 401))
    assert sorted(m.content for m in messages) == sorted(
        f"{w}:{i}" for w in range(threads) for i in range(per_thread)
    )
    for worker in range(threads):  # each writer's own messages kept their order
        mine = [
            int(m.content.split(":")[1]) for m in messages if m.content.startswith(f"{worker}:")
        ]
        assert mine == list(range(per_thread))


# ------------------------------------------------------------------ listing


def test_list_filters_pages_and_counts(store: SessionStore, tenant: str, clock: FakeClock) -> None:
    for name in ["user:bob:1", "user:alice:2", "user:alice:1", "bot:1", "user:alice:3"]:
        store.create_session(tenant, name, ttl_secs=60 if name.endswith("3") else 600)
    clock.advance(61)  # user:alice:3 expires

    first = store.list_sessions(tenant, prefix="user:alice:", limit=1)
    second = store.list_sessions(tenant, prefix="user:alice:", limit=1, cursor=first.next_cursor)
    everything = store.list_sessions(tenant)

    assert [s.session_id for s in first.sessions] == ["user:alice:1"] and first.total == 2
    assert [s.session_id for s in second.sessions] == ["user:alice:2"]
    assert second.next_cursor is None
    assert [s.session_id for s in everything.sessions] == [
        "bot:1",
        "user:alice:1",
        "user:alice:2",
        "user:bob:1",
    ]
    assert everything.total == 4 and everything.next_cursor is None


def test_list_pages_through_many_sessions(store: SessionStore, tenant: str) -> None:
    names = sorted(f"s{i:03d}" for i in range(57))
    for name in names:
        store.create_session(tenant, name, metadata={"i": name})
    listed: list[str] = []
    cursor = None
    while True:
        page = store.list_sessions(tenant, limit=10, cursor=cursor)
        assert page.total == 57
        listed += [s.session_id for s in page.sessions]
        assert all(s.metadata == {"i": s.session_id} for s in page.sessions)
        cursor = page.next_cursor
        if cursor is None:
            break

    assert listed == names


def test_list_refuses_bad_prefix_and_cursor(store: SessionStore, tenant: str) -> None:
    with pytest.raises(ValidationFailed):
        store.list_sessions(tenant, prefix="bad prefix")
    with pytest.raises(InvalidCursor):
        store.list_sessions(tenant, cursor="%%%")


def test_deleted_sessions_leave_the_listing(store: SessionStore, tenant: str) -> None:
    store.create_session(tenant, "a")
    store.create_session(tenant, "b")
    store.delete_session(tenant, "a")

    page = store.list_sessions(tenant)
    assert [s.session_id for s in page.sessions] == ["b"] and page.total == 1


# ------------------------------------------------------------------ risk state


def test_risk_state_round_trip_and_conflict(store: SessionStore, tenant: str) -> None:
    risk = store.open_risk_state(tenant, "scanned")  # creates the session
    assert risk.state == {} and risk.session.session_id == "scanned"

    store.save_risk_state(
        tenant,
        risk,
        {
            "turns_scanned": 1,
            "flagged_turns": 1,
            "session_score": 0.7,
            "decision": "flag",
            "w": ["x"],
        },
    )
    with pytest.raises(ConcurrentUpdate):
        store.save_risk_state(tenant, risk, {"turns_scanned": 99})

    again = store.open_risk_state(tenant, "scanned")
    assert again.state["w"] == ["x"] and again.version == risk.version + 1
    summary = store.get_session(tenant, "scanned").risk
    assert (summary.turns_scanned, summary.flagged_turns, summary.decision) == (1, 1, "flag")
    assert summary.session_score == pytest.approx(0.7)


def test_risk_state_of_deleted_session_cannot_be_saved(store: SessionStore, tenant: str) -> None:
    risk = store.open_risk_state(tenant, "s")
    store.delete_session(tenant, "s")

    with pytest.raises(SessionNotFound):
        store.save_risk_state(tenant, risk, {"turns_scanned": 1})


# ------------------------------------------------------------------ encryption


def test_ciphertext_moved_to_another_session_is_refused(store: SessionStore, tenant: str) -> None:
    store.append_messages(tenant, "victim", [user("victim secret")])
    store.append_messages(tenant, "attacker", [user("harmless")])
    victim = store._read(tenant, "victim")
    attacker = store._read(tenant, "attacker")
    assert victim is not None and attacker is not None
    stolen = store._read_messages(victim, 1, 1)[0]

    # Write the victim's ciphertext, unchanged, at the attacker's next position.
    moved = type(stolen)(seq=2, role=stolen.role, created_at=stolen.created_at, blob=stolen.blob)
    assert store._commit_append(attacker, [moved], None, store.clock(), creating=False)

    with pytest.raises(DecryptionError):
        store.get_history(tenant, "attacker")
    assert store.get_history(tenant, "victim").messages[0].content == "victim secret"


def test_ciphertext_moved_to_another_position_is_refused(store: SessionStore, tenant: str) -> None:
    store.append_messages(tenant, "s", [user("first")])
    head = store._read(tenant, "s")
    assert head is not None
    first = store._read_messages(head, 1, 1)[0]
    replayed = type(first)(seq=2, role=first.role, created_at=first.created_at, blob=first.blob)
    assert store._commit_append(head, [replayed], None, store.clock(), creating=False)

    with pytest.raises(DecryptionError):
        store.get_history(tenant, "s")


def test_stored_values_hold_no_plaintext(store: SessionStore, tenant: str) -> None:
    store.create_session(tenant, "s", metadata={"email": "alice@example.com"})
    store.append_messages(tenant, "s", [user("the launch code is 0000")])
    head = store._read(tenant, "s")
    assert head is not None and head.metadata_blob is not None

    blob = store._read_messages(head, 1, 1)[0].blob
    assert b"launch code" not in blob and b"alice@example.com" not in head.metadata_blob


def test_key_rotation(make_store: StoreFactory, tenant: str) -> None:
    old_key, new_key = Fernet.generate_key(), Fernet.generate_key()
    before = make_store(cipher=Cipher([old_key]))
    before.create_session(tenant, "s", metadata={"v": "old"})
    before.append_messages(tenant, "s", [user("written under the old key")])

    rotated = make_store(cipher=Cipher([new_key, old_key]))
    rotated.append_messages(tenant, "s", [user("written under the new key")])
    assert [m.content for m in rotated.get_history(tenant, "s").messages] == [
        "written under the old key",
        "written under the new key",
    ]
    assert rotated.get_session(tenant, "s").metadata == {"v": "old"}

    rotated.append_messages(tenant, "fresh", [user("new session, new key")])
    only_new = make_store(cipher=Cipher([new_key]))
    assert only_new.get_history(tenant, "fresh").messages[0].content == "new session, new key"
    with pytest.raises(DecryptionError):
        only_new.get_session(tenant, "s")  # its metadata is still under the old key


def test_model_and_message_name_are_bounded(store: SessionStore, tenant: str) -> None:
    store.create_session(tenant, "longest", model="m" * 256)
    store.append_messages(tenant, "longest", [NewMessage("user", "x", name="n" * 64)])

    with pytest.raises(ValidationFailed, match="model"):
        store.create_session(tenant, "too-long", model="m" * 257)
    with pytest.raises(ValidationFailed, match="model"):
        store.append_messages(tenant, "longest", [user("x")], model="m" * 257)
    with pytest.raises(ValidationFailed, match=r"messages\[0\]\.name"):
        store.append_messages(tenant, "longest", [NewMessage("user", "x", name="n" * 65)])
    assert store.get_session(tenant, "longest").message_count == 1
