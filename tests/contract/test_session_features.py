"""Session features beyond the spec's CRUD, on every backend: ending a session,
deleting a user's sessions by prefix, forking a session, ETags with If-Match, and
idempotency keys.

Each test runs once per backend (memory, redis, redis_cluster, dynamodb) against real
servers started by the fixtures; time moves only through the injected clock.
"""

from __future__ import annotations

import re
import threading
import time
from typing import TYPE_CHECKING

import pytest

from turnwall.errors import (
    IdempotencyInProgress,
    IdempotencyKeyReused,
    PreconditionFailed,
    SessionEnded,
    SessionExists,
    SessionNotFound,
    ValidationFailed,
)
from turnwall.models import NewMessage
from turnwall.stores.idempotency import StoredResponse

if TYPE_CHECKING:
    from tests.conftest import StoreFactory
    from tests.support.clock import FakeClock
    from turnwall.stores.base import SessionStore


def user(text: str) -> NewMessage:
    return NewMessage(role="user", content=text)


def test_an_ended_session_is_read_only_until_it_expires(
    store: SessionStore, tenant: str, clock: FakeClock
) -> None:
    # GIVEN a session with one message
    store.create_session(tenant, "s", ttl_secs=600, metadata={"a": 1})
    store.append_messages(tenant, "s", [user("before")])

    # WHEN it is ended
    clock.advance(5)
    ended = store.end_session(tenant, "s")

    # THEN it reads as ended, and every write to it is refused
    assert ended.status == "ended" and ended.ended_at == pytest.approx(clock())
    with pytest.raises(SessionEnded):
        store.append_messages(tenant, "s", [user("after")])
    with pytest.raises(SessionEnded):
        store.update_session(tenant, "s", metadata={"a": 2})
    with pytest.raises(SessionEnded):
        store.update_session(tenant, "s", ttl_secs=900)
    with pytest.raises(SessionExists):
        store.create_session(tenant, "s")
    # AND reading still works and slides its expiry; ending again changes nothing
    clock.advance(100)
    read = store.get_session(tenant, "s")
    assert read.status == "ended" and read.message_count == 1 and read.metadata == {"a": 1}
    assert read.expires_at == pytest.approx(clock() + 600)
    assert store.end_session(tenant, "s").ended_at == ended.ended_at
    assert [m.content for m in store.get_history(tenant, "s").messages] == ["before"]
    # AND scans keep their risk state
    risk = store.open_risk_state(tenant, "s")
    assert store.save_risk_state(tenant, risk, {"turns_scanned": 1}).risk.turns_scanned == 1


def test_an_ended_session_expires_and_its_id_is_free_again(
    store: SessionStore, tenant: str, clock: FakeClock
) -> None:
    store.create_session(tenant, "s", ttl_secs=60)
    store.end_session(tenant, "s")
    clock.advance(61)

    with pytest.raises(SessionNotFound):
        store.end_session(tenant, "s")
    fresh = store.append_messages(tenant, "s", [user("new life")])
    assert fresh.created and store.get_session(tenant, "s").status == "active"


def test_a_new_session_is_active(store: SessionStore, tenant: str) -> None:
    assert store.create_session(tenant, "s").status == "active"
    with pytest.raises(SessionNotFound):
        store.end_session(tenant, "missing")


def test_no_append_commits_after_end_returns(store: SessionStore, tenant: str) -> None:
    # GIVEN appenders writing to one session without pause
    store.create_session(tenant, "busy")
    stop = threading.Event()
    under_way = threading.Event()
    refused: list[int] = []

    def append_until_refused() -> None:
        while not stop.is_set():
            try:
                appended = store.append_messages(tenant, "busy", [user("x")])
            except SessionEnded:
                refused.append(1)
                return
            if appended.last_seq >= 8:
                under_way.set()
            # A pause that lets the ending thread in: spinning appenders on the memory
            # store kept it from the GIL until the session was full (10,000 messages).
            time.sleep(0.0005)

    workers = [threading.Thread(target=append_until_refused) for _ in range(4)]
    for worker in workers:
        worker.start()
    assert under_way.wait(timeout=30)

    # WHEN the session is ended mid-stream
    ended = store.end_session(tenant, "busy")
    for worker in workers:
        worker.join(timeout=30)
    stop.set()

    # THEN every appender was refused, and nothing was appended after the end
    assert len(refused) == 4
    final = store.get_session(tenant, "busy")
    assert final.message_count == ended.message_count
    newest = store.get_history(tenant, "busy", limit=1, order="desc").messages
    assert newest[0].seq == final.message_count


# ------------------------------------------------------------------ forget a user


def test_a_users_sessions_are_deleted_in_bounded_resumable_steps(
    make_store: StoreFactory, tenant: str
) -> None:
    # GIVEN five sessions of alice, one of bob, and alice's namesake in another tenant
    store = make_store()
    alice = [f"user:alice:{n}" for n in range(5)]
    for session_id in alice:
        store.append_messages(tenant, session_id, [user("hi"), user("there")])
    store.create_session(tenant, "user:bob:1")
    other_tenant = f"{tenant}x"
    store.create_session(other_tenant, "user:alice:0")

    # WHEN alice's sessions are deleted two at a time until none remains
    steps = [store.delete_sessions(tenant, "user:alice:", limit=2)]
    while steps[-1].remaining:
        assert len(steps) < 10
        steps.append(store.delete_sessions(tenant, "user:alice:", limit=2))

    # THEN each step deleted at most two, in id order, reporting each message count
    assert [len(step.deleted) for step in steps] == [2, 2, 1]
    assert [step.remaining for step in steps] == [3, 1, 0]
    deleted = [ended for step in steps for ended in step.deleted]
    assert [ended.session_id for ended in deleted] == alice
    assert {ended.message_count for ended in deleted} == {2}
    for session_id in alice:
        with pytest.raises(SessionNotFound):
            store.get_session(tenant, session_id)
    # AND nothing else was touched
    assert store.get_session(tenant, "user:bob:1").session_id == "user:bob:1"
    assert store.get_session(other_tenant, "user:alice:0").session_id == "user:alice:0"
    assert store.delete_sessions(tenant, "user:alice:").deleted == []


@pytest.mark.parametrize("prefix", ["", "has space", "x" * 129])
def test_deleting_by_prefix_needs_a_valid_prefix(
    store: SessionStore, tenant: str, prefix: str
) -> None:
    store.create_session(tenant, "keep-me")

    with pytest.raises(ValidationFailed):
        store.delete_sessions(tenant, prefix)
    assert store.get_session(tenant, "keep-me").session_id == "keep-me"


# ------------------------------------------------------------------ fork


def test_a_fork_copies_history_metadata_model_and_risk(
    store: SessionStore, tenant: str, clock: FakeClock
) -> None:
    # GIVEN a scanned session of five messages, then ended
    store.create_session(tenant, "trunk", ttl_secs=900, metadata={"app": "demo"}, model="m-1")
    for n in range(5):
        store.append_messages(tenant, "trunk", [NewMessage("user", f"turn {n}", name="ann")])
    risk = store.open_risk_state(tenant, "trunk")
    store.save_risk_state(tenant, risk, {"turns_scanned": 3, "flagged_turns": 1})
    store.end_session(tenant, "trunk")
    originals = store.get_history(tenant, "trunk").messages
    clock.advance(30)

    # WHEN it is forked after its third message
    fork = store.fork_session(tenant, "trunk", new_session_id="branch", up_to_seq=3)

    # THEN the branch is a new, active session holding the first three messages
    assert fork.session_id == "branch" and fork.status == "active"
    assert fork.message_count == 3 and fork.ttl_secs == 900 and fork.model == "m-1"
    assert fork.metadata == {"app": "demo"} and fork.risk.flagged_turns == 1
    assert fork.created_at == pytest.approx(clock())
    copied = store.get_history(tenant, "branch").messages
    assert copied == originals[:3]  # contents, names, seqs and times
    # AND it goes its own way, while the source is unchanged
    store.append_messages(tenant, "branch", [user("only in the branch")])
    assert store.get_session(tenant, "trunk").message_count == 5
    assert store.open_risk_state(tenant, "branch").state["turns_scanned"] == 3


def test_every_forked_value_is_sealed_for_its_new_place(store: SessionStore, tenant: str) -> None:
    store.create_session(tenant, "trunk", metadata={"k": "v"}, model="m")
    store.append_messages(tenant, "trunk", [user("secret words")])
    store.fork_session(tenant, "trunk", new_session_id="branch")
    trunk, branch = store._read(tenant, "trunk"), store._read(tenant, "branch")
    assert trunk is not None and branch is not None

    assert branch.metadata_blob != trunk.metadata_blob and branch.model != trunk.model
    trunk_message = store._read_messages(trunk, 1, 1)[0]
    branch_message = store._read_messages(branch, 1, 1)[0]
    assert branch_message.blob != trunk_message.blob


def test_a_long_session_forks_whole_with_a_generated_id(store: SessionStore, tenant: str) -> None:
    for start in range(0, 250, 100):
        batch = [user(f"m{n}") for n in range(start, min(start + 100, 250))]
        store.append_messages(tenant, "long", batch)

    fork = store.fork_session(tenant, "long")

    assert re.fullmatch(r"api:[0-9a-f]{12}", fork.session_id) and fork.message_count == 250
    copied = store.get_history(tenant, fork.session_id, limit=1000).messages
    assert [m.content for m in copied] == [f"m{n}" for n in range(250)]


def test_fork_refusals(store: SessionStore, tenant: str) -> None:
    store.append_messages(tenant, "trunk", [user("a"), user("b")])
    store.create_session(tenant, "taken")

    with pytest.raises(SessionExists):
        store.fork_session(tenant, "trunk", new_session_id="taken")
    with pytest.raises(ValidationFailed):
        store.fork_session(tenant, "trunk", new_session_id="x", up_to_seq=3)
    with pytest.raises(ValidationFailed):
        store.fork_session(tenant, "trunk", new_session_id="x", up_to_seq=-1)
    with pytest.raises(SessionNotFound):
        store.fork_session(tenant, "missing", new_session_id="x")
    with pytest.raises(SessionNotFound):
        store.get_session(tenant, "x")  # nothing was made by the refusals
    empty = store.fork_session(tenant, "trunk", new_session_id="empty", up_to_seq=0)
    assert empty.message_count == 0
    assert store.get_session(tenant, "taken").message_count == 0


# ------------------------------------------------------------------ ETag and If-Match


def test_the_etag_changes_with_every_write_and_only_then(store: SessionStore, tenant: str) -> None:
    tags = [store.create_session(tenant, "s").etag]
    store.append_messages(tenant, "s", [user("a")])
    tags.append(store.get_session(tenant, "s").etag)
    tags.append(store.update_session(tenant, "s", metadata={"k": 1}).etag)
    tags.append(store.update_session(tenant, "s", ttl_secs=900).etag)
    tags.append(store.end_session(tenant, "s").etag)

    assert len(set(tags)) == len(tags)  # each write made a new one
    risk = store.open_risk_state(tenant, "s")
    store.save_risk_state(tenant, risk, {"turns_scanned": 1})
    store.get_history(tenant, "s")
    assert store.get_session(tenant, "s").etag == tags[-1]  # reads and scans did not
    store.delete_session(tenant, "s")
    assert store.create_session(tenant, "s").etag != tags[0]  # a new incarnation


def test_if_match_guards_updates_and_deletes(store: SessionStore, tenant: str) -> None:
    stale = store.create_session(tenant, "s", metadata={"v": 1}).etag
    current = store.update_session(tenant, "s", metadata={"v": 2}, if_match={stale}).etag

    with pytest.raises(PreconditionFailed):
        store.update_session(tenant, "s", metadata={"v": 3}, if_match={stale})
    with pytest.raises(PreconditionFailed):
        store.delete_session(tenant, "s", if_match={stale})
    assert store.get_session(tenant, "s").metadata == {"v": 2}

    assert (
        store.update_session(tenant, "s", ttl_secs=120, if_match={stale, current}).ttl_secs == 120
    )
    latest = store.get_session(tenant, "s").etag
    assert store.delete_session(tenant, "s", if_match={latest}).session_id == "s"
    with pytest.raises(SessionNotFound):
        store.delete_session(tenant, "s", if_match={latest})


def test_of_writers_holding_one_etag_exactly_one_wins(store: SessionStore, tenant: str) -> None:
    etag = store.create_session(tenant, "contested").etag
    start = threading.Barrier(6)
    outcomes: list[str] = []

    def write(number: int) -> None:
        start.wait()
        try:
            store.update_session(tenant, "contested", metadata={"by": number}, if_match={etag})
            outcomes.append("won")
        except PreconditionFailed:
            outcomes.append("412")

    writers = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=30)

    assert sorted(outcomes) == ["412"] * 5 + ["won"]


# ------------------------------------------------------------------ idempotency keys


def test_an_idempotency_key_replays_its_first_answer(
    store: SessionStore, tenant: str, clock: FakeClock
) -> None:
    # GIVEN a key claimed for a request
    assert store.claim_idempotency_key(tenant, "retry-1", "fp-a") is None

    # WHEN the same request comes again before the first has finished, THEN it waits
    with pytest.raises(IdempotencyInProgress):
        store.claim_idempotency_key(tenant, "retry-1", "fp-a")
    # WHEN the first finishes, THEN repeats get its answer, another request a refusal
    answer = StoredResponse(201, b'{"ok":true}', {"x-session-id": "s"})
    store.finish_idempotency_key(tenant, "retry-1", "fp-a", answer, keep_secs=600)
    assert store.claim_idempotency_key(tenant, "retry-1", "fp-a") == answer
    with pytest.raises(IdempotencyKeyReused):
        store.claim_idempotency_key(tenant, "retry-1", "fp-b")
    # AND keys are per tenant, and forgotten after they are kept
    assert store.claim_idempotency_key(f"{tenant}x", "retry-1", "fp-b") is None
    clock.advance(601)
    assert store.claim_idempotency_key(tenant, "retry-1", "fp-b") is None


def test_a_released_or_lapsed_claim_can_be_taken_again(
    store: SessionStore, tenant: str, clock: FakeClock
) -> None:
    store.claim_idempotency_key(tenant, "k1", "fp")
    store.release_idempotency_key(tenant, "k1")
    assert store.claim_idempotency_key(tenant, "k1", "fp") is None

    store.claim_idempotency_key(tenant, "k2", "fp", hold_secs=60)
    clock.advance(61)  # its request died without finishing
    assert store.claim_idempotency_key(tenant, "k2", "fp") is None


def test_one_of_many_simultaneous_claims_wins(store: SessionStore, tenant: str) -> None:
    start = threading.Barrier(6)
    results: list[str] = []

    def claim() -> None:
        start.wait()
        try:
            replay = store.claim_idempotency_key(tenant, "k", "fp")
            results.append("claimed" if replay is None else "replayed")
        except IdempotencyInProgress:
            results.append("in progress")

    threads = [threading.Thread(target=claim) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(results) == ["claimed"] + ["in progress"] * 5


@pytest.mark.parametrize("key", ["", " leading-space", "x" * 256, "tab\there", "ümlaut"])
def test_malformed_idempotency_keys_are_refused(store: SessionStore, tenant: str, key: str) -> None:
    with pytest.raises(ValidationFailed):
        store.claim_idempotency_key(tenant, key, "fp")
