"""The cleanup contract: purging after expiry and the resumable sweep, on every backend.

Each test runs once per backend (memory, redis, redis_cluster, dynamodb) against real
servers started by the fixtures; time moves only through the injected clock. The Redis
servers are shared by the whole test session, so a sweep there also meets other tests'
tenants: assertions look at this test's tenant only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from turnwall.errors import InvalidCursor, SessionNotFound, ValidationFailed
from turnwall.models import NewMessage

if TYPE_CHECKING:
    from collections.abc import Sequence

    from tests.conftest import StoreFactory
    from tests.support.clock import FakeClock
    from turnwall.stores.base import SessionStore
    from turnwall.stores.maintenance import SweepReport
    from turnwall.stores.records import EndedSession, SessionRecord


def user(text: str) -> NewMessage:
    return NewMessage(role="user", content=text)


def stored(store: SessionStore, tenant: str, session_id: str) -> SessionRecord:
    record = store._read(tenant, session_id)
    assert record is not None
    return record


def leftover_messages(store: SessionStore, record: SessionRecord) -> int:
    """How many messages of this incarnation a backend still returns."""
    return len(store._read_messages(record, 1, max(record.message_count, 1)))


def sweep_to_the_end(
    store: SessionStore, *, max_items: int = 1000, limit_runs: int = 500
) -> tuple[list[SweepReport], list[EndedSession]]:
    """Run sweeps from a fresh cursor until one pass is complete."""
    reports: list[SweepReport] = []
    announced: list[EndedSession] = []
    cursor: str | None = None
    for _ in range(limit_runs):
        report = store.sweep(max_items=max_items, cursor=cursor, on_expired=announced.extend)
        reports.append(report)
        cursor = report.next_cursor
        if cursor is None:
            return reports, announced
    raise AssertionError(f"the sweep did not finish a pass in {limit_runs} runs")


def of_tenant(sessions: Sequence[EndedSession], tenant: str) -> list[EndedSession]:
    return sorted((s for s in sessions if s.tenant == tenant), key=lambda s: s.session_id)


# ------------------------------------------------------------------ delete


def test_delete_reports_what_was_deleted(
    store: SessionStore, tenant: str, clock: FakeClock
) -> None:
    store.append_messages(tenant, "s", [user("one"), user("two"), user("three")])
    clock.advance(5)

    deleted = store.delete_session(tenant, "s")

    assert (deleted.tenant, deleted.session_id, deleted.message_count) == (tenant, "s", 3)
    assert deleted.ended_at == pytest.approx(clock())
    with pytest.raises(SessionNotFound):
        store.delete_session(tenant, "s")


# ------------------------------------------------------------------ purge


def test_purge_removes_an_expired_incarnation_once(
    store: SessionStore, tenant: str, clock: FakeClock
) -> None:
    store.create_session(tenant, "s", ttl_secs=60)
    store.append_messages(tenant, "s", [user("a"), user("b"), user("c")])
    expired = stored(store, tenant, "s")
    clock.advance(61)

    first = store.purge_expired_session(tenant, "s", expired.incarnation)
    replayed = store.purge_expired_session(tenant, "s", expired.incarnation)

    assert first >= 4  # the session record and its three messages, at least
    assert replayed == 0
    assert store._read(tenant, "s") is None
    assert leftover_messages(store, expired) == 0
    assert store.list_sessions(tenant).total == 0
    assert store.create_session(tenant, "s").message_count == 0


def test_purge_never_touches_a_live_session(store: SessionStore, tenant: str) -> None:
    store.append_messages(tenant, "s", [user("keep me"), user("and me")])
    live = stored(store, tenant, "s")

    assert store.purge_expired_session(tenant, "s", live.incarnation) == 0
    assert [m.content for m in store.get_history(tenant, "s").messages] == ["keep me", "and me"]
    assert [s.session_id for s in store.list_sessions(tenant).sessions] == ["s"]


def test_purge_leaves_a_recreated_session_alone(
    store: SessionStore, tenant: str, clock: FakeClock
) -> None:
    store.append_messages(tenant, "s", [user("old 1"), user("old 2")])
    old = stored(store, tenant, "s")
    clock.advance(1801)
    store.append_messages(tenant, "s", [user("new 1"), user("new 2"), user("new 3")])

    store.purge_expired_session(tenant, "s", old.incarnation)
    store.purge_expired_session(tenant, "s", old.incarnation)

    assert leftover_messages(store, old) == 0
    session = store.get_session(tenant, "s")
    assert session.message_count == 3
    assert [m.content for m in store.get_history(tenant, "s").messages] == [
        "new 1",
        "new 2",
        "new 3",
    ]
    assert store.list_sessions(tenant).total == 1


@pytest.mark.parametrize("incarnation", ["", "not-hex!", "G" * 12, "a" * 40])
def test_purge_refuses_a_malformed_incarnation(
    store: SessionStore, tenant: str, incarnation: str
) -> None:
    with pytest.raises(ValidationFailed):
        store.purge_expired_session(tenant, "s", incarnation)


# ------------------------------------------------------------------ sweep


def test_sweep_removes_expired_sessions_and_keeps_live_ones(
    store: SessionStore, tenant: str, clock: FakeClock
) -> None:
    store.create_session(tenant, "short-1", ttl_secs=60)
    store.append_messages(tenant, "short-1", [user("x")] * 3)
    store.create_session(tenant, "short-2", ttl_secs=60)
    store.create_session(tenant, "long", ttl_secs=3600)
    store.append_messages(tenant, "long", [user("still here")] * 2)
    expiries = {sid: stored(store, tenant, sid).expires_at for sid in ("short-1", "short-2")}
    clock.advance(120)

    reports, announced = sweep_to_the_end(store)

    mine = of_tenant(announced, tenant)
    assert [(s.session_id, s.message_count) for s in mine] == [("short-1", 3), ("short-2", 0)]
    assert [s.ended_at for s in mine] == pytest.approx([expiries["short-1"], expiries["short-2"]])
    assert of_tenant([s for r in reports for s in r.removed_sessions], tenant) == mine
    assert sum(r.removed_items for r in reports) >= 3 + 2  # both records, three messages
    assert store._read(tenant, "short-1") is None and store._read(tenant, "short-2") is None
    assert [m.content for m in store.get_history(tenant, "long").messages] == ["still here"] * 2
    assert [s.session_id for s in store.list_sessions(tenant).sessions] == ["long"]

    _, again = sweep_to_the_end(store)
    assert of_tenant(again, tenant) == []


def test_sweep_is_bounded_and_resumable(store: SessionStore, tenant: str, clock: FakeClock) -> None:
    for number in range(30):
        store.create_session(tenant, f"gone-{number:02d}", ttl_secs=60)
    store.create_session(tenant, "live", ttl_secs=3600)
    clock.advance(61)

    reports, announced = sweep_to_the_end(store, max_items=5)

    assert len(reports) > 1 and reports[0].next_cursor is not None
    assert [s.session_id for s in of_tenant(announced, tenant)] == [
        f"gone-{number:02d}" for number in range(30)
    ]
    assert store.list_sessions(tenant).total == 1
    assert store.get_session(tenant, "live").session_id == "live"


def test_sweep_after_a_recreate_leaves_nothing_of_the_old_incarnation(
    store: SessionStore, tenant: str, clock: FakeClock
) -> None:
    store.append_messages(tenant, "s", [user("old")] * 4)
    old = stored(store, tenant, "s")
    clock.advance(1801)
    store.append_messages(tenant, "s", [user("new")])

    _, announced = sweep_to_the_end(store)

    assert of_tenant(announced, tenant) == []  # the session id is live again
    assert leftover_messages(store, old) == 0
    assert [m.content for m in store.get_history(tenant, "s").messages] == ["new"]


def test_sweep_announces_expired_sessions_before_removing_them(
    store: SessionStore, tenant: str, clock: FakeClock
) -> None:
    store.create_session(tenant, "s", ttl_secs=60)
    store.append_messages(tenant, "s", [user("x")])
    clock.advance(61)
    seen_stored: list[bool] = []

    def refuse(sessions: Sequence[EndedSession]) -> None:
        if of_tenant(sessions, tenant):
            seen_stored.append(store._read(tenant, "s") is not None)
            raise RuntimeError("EventBridge is down")

    with pytest.raises(RuntimeError, match="EventBridge is down"):
        cursor: str | None = None
        for _ in range(500):
            cursor = store.sweep(cursor=cursor, on_expired=refuse).next_cursor
            if cursor is None:
                break

    assert seen_stored == [True]
    assert store._read(tenant, "s") is not None  # kept for the next run
    _, announced = sweep_to_the_end(store)
    assert [s.session_id for s in of_tenant(announced, tenant)] == ["s"]
    assert store._read(tenant, "s") is None


def test_sweep_cursor_is_kept_in_the_backend(make_store: StoreFactory) -> None:
    first, second = make_store(), make_store()
    first.save_sweep_cursor(None)

    assert second.load_sweep_cursor() is None
    first.save_sweep_cursor("opaque-position")
    assert second.load_sweep_cursor() == "opaque-position"
    second.save_sweep_cursor(None)
    assert first.load_sweep_cursor() is None


@pytest.mark.parametrize("cursor", ["not base64 at all!", "WzEsMiwzLDRd", "bnVsbA=="])
def test_sweep_refuses_a_cursor_it_did_not_issue(store: SessionStore, cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        store.sweep(cursor=cursor)


@pytest.mark.parametrize("max_items", [0, -1, True, 2.5])
def test_sweep_refuses_a_bad_budget(store: SessionStore, max_items: object) -> None:
    with pytest.raises(ValidationFailed):
        store.sweep(max_items=max_items)  # type: ignore[arg-type]
