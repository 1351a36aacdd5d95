"""Property-based: under random operation sequences every backend answers exactly like
the memory store (same results, same errors), with time moved by the injected clock."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from turnwall.errors import TurnwallError
from turnwall.models import NewMessage
from turnwall.stores.memory import MemorySessionStore

if TYPE_CHECKING:
    from tests.conftest import StoreFactory
    from tests.support.clock import FakeClock
    from turnwall.stores.base import SessionStore

IDS = st.sampled_from(["a", "b", "user:c"])
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("create"), IDS, st.sampled_from([60, 120, 600])),
        st.tuples(st.just("append"), IDS, st.integers(1, 4)),
        st.tuples(st.just("get"), IDS),
        st.tuples(st.just("history"), IDS, st.sampled_from(["asc", "desc"]), st.integers(1, 5)),
        st.tuples(st.just("update"), IDS, st.sampled_from([60, 300])),
        st.tuples(st.just("delete"), IDS),
        st.tuples(st.just("list"), st.sampled_from(["", "user:", "a"])),
        st.tuples(st.just("advance"), st.sampled_from([10, 59, 61, 130])),
    ),
    min_size=1,
    max_size=25,
)


def apply(store: SessionStore, tenant: str, operation: tuple[Any, ...]) -> object:
    """Run one operation; the comparable part of its result, or its error class."""
    kind, *args = operation
    try:
        if kind == "create":
            s = store.create_session(tenant, args[0], ttl_secs=args[1])
            return ("created", s.session_id, s.ttl_secs, s.message_count)
        if kind == "append":
            messages = [NewMessage("user", f"m{i}") for i in range(args[1])]
            r = store.append_messages(tenant, args[0], messages)
            return (r.message_count, r.first_seq, r.last_seq, r.created)
        if kind == "get":
            s = store.get_session(tenant, args[0])
            # Backends keep milliseconds; compare the remaining lifetime to 0.1 s.
            return (s.message_count, s.ttl_secs, round(s.expires_at - store.clock(), 1))
        if kind == "history":
            page = store.get_history(tenant, args[0], order=args[1], limit=args[2])
            return ([(m.seq, m.content) for m in page.messages], page.next_cursor is None)
        if kind == "update":
            return store.update_session(tenant, args[0], ttl_secs=args[1]).ttl_secs
        if kind == "delete":
            store.delete_session(tenant, args[0])
            return "deleted"
        if kind == "list":
            page = store.list_sessions(tenant, prefix=args[0])
            return ([s.session_id for s in page.sessions], page.total)
    except TurnwallError as exc:
        return type(exc).__name__
    raise AssertionError(kind)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(operations=OPERATIONS)
def test_backend_matches_the_memory_store(
    make_store: StoreFactory, clock: FakeClock, operations: list[tuple[Any, ...]]
) -> None:
    backend = make_store()
    reference = MemorySessionStore(backend.cipher, backend.limits, clock)
    tenant = f"p{uuid.uuid4().hex[:10]}"

    for operation in operations:
        if operation[0] == "advance":
            clock.advance(operation[1])
            continue
        assert apply(backend, tenant, operation) == apply(reference, tenant, operation), operation
