"""How fast cleanup removes stored items on each backend, against a raw baseline.

    python -m tests.benchmarks.bench_cleanup

For every backend (memory, Redis, Redis Cluster, DynamoDB on moto's server) the same
shape of data is written with a clock two hours behind, so it is expired by the real
clock: SESSIONS sessions of MESSAGES 200-byte messages each. Then, each on fresh data:

1. purge: `purge_expired_session` per session, the work the stream handler does for a
   TTL deletion (on DynamoDB the session items are deleted first, as TTL would);
2. sweep: `sweep` runs from a fresh cursor until the pass is complete, the scheduled
   path (finds the expired sessions itself, announces them, removes them);
3. raw: the backend's own bulk delete of the same keys, with nothing checked first
   (Redis: pipelined DEL; DynamoDB: BatchWriteItem of keys listed beforehand; the
   memory store has no client to compare with).

Items are records removed as each path counts them: session records, messages (on
DynamoDB, message items) and index entries. moto is an emulator: its figures show
the calls cleanup makes, not DynamoDB's latency; compare them with the raw ratio.
"""

from __future__ import annotations

import time
import uuid
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

from tests.benchmarks.report import Table
from tests.benchmarks.servers import start_bench_servers
from tests.support.clock import FakeClock
from tests.support.dynamodb_server import create_table, new_client
from turnwall.crypto import Cipher
from turnwall.models import NewMessage
from turnwall.stores.dynamodb import DynamoDBSessionStore
from turnwall.stores.memory import MemorySessionStore, MemoryState
from turnwall.stores.redis import RedisSessionStore

if TYPE_CHECKING:
    from collections.abc import Callable

    from turnwall.stores.base import SessionStore

CONTENT = ("The quick brown fox jumps over the lazy dog; " * 5)[:200]
MESSAGES = 100
SESSIONS = {"memory": 200, "redis": 200, "redis cluster": 200, "dynamodb (moto)": 20}

# (a store writing two hours in the past, a store on the real clock) over one backend
StorePair = tuple["SessionStore", "SessionStore"]


def populate(writer: SessionStore, sessions: int) -> tuple[str, list[tuple[str, str]]]:
    """Expired sessions of MESSAGES messages; their tenant and (id, incarnation)s."""
    tenant = f"bench{uuid.uuid4().hex[:8]}"
    made = []
    for number in range(sessions):
        session_id = f"s-{number:04d}"
        writer.create_session(tenant, session_id, ttl_secs=60)
        writer.append_messages(tenant, session_id, [NewMessage("user", CONTENT)] * MESSAGES)
        record = writer._read(tenant, session_id)
        assert record is not None
        made.append((session_id, record.incarnation))
    return tenant, made


def timed(run: Callable[[], int]) -> tuple[int, float]:
    started = time.perf_counter()
    removed = run()
    return removed, time.perf_counter() - started


def purge_rate(pair: StorePair, sessions: int) -> tuple[int, float]:
    writer, cleaner = pair
    tenant, made = populate(writer, sessions)
    if isinstance(cleaner, DynamoDBSessionStore):
        for session_id, _ in made:  # what DynamoDB's TTL process does, untimed
            cleaner.client.delete_item(
                TableName=cleaner.table_name,
                Key={"pk": {"S": f"S#{tenant}#{session_id}"}, "sk": {"S": "SESSION"}},
            )
    return timed(
        lambda: sum(
            cleaner.purge_expired_session(tenant, session_id, incarnation)
            for session_id, incarnation in made
        )
    )


def sweep_rate(pair: StorePair, sessions: int) -> tuple[int, float]:
    writer, cleaner = pair
    populate(writer, sessions)
    announced: list[object] = []

    def sweep_pass() -> int:
        removed, cursor = 0, None
        while True:
            report = cleaner.sweep(max_items=10_000, cursor=cursor, on_expired=announced.extend)
            removed += report.removed_items
            cursor = report.next_cursor
            if cursor is None:
                return removed

    result = timed(sweep_pass)
    assert len(announced) >= sessions, "the sweep missed expired sessions"
    return result


def raw_rate(pair: StorePair, sessions: int) -> tuple[int, float] | None:
    writer, cleaner = pair
    tenant, made = populate(writer, sessions)
    if isinstance(cleaner, RedisSessionStore):
        client = cleaner.client

        def delete_keys() -> int:
            pipe = client.pipeline(transaction=False)
            for session_id, _ in made:
                pipe.delete(f"tw:{{{tenant}:{session_id}}}:s")
                pipe.delete(f"tw:{{{tenant}:{session_id}}}:m")
            pipe.execute()
            return len(made) * (MESSAGES + 1)

        return timed(delete_keys)
    if isinstance(cleaner, DynamoDBSessionStore):
        keys = dynamodb_keys(cleaner, tenant)

        def batch_delete() -> int:
            for start in range(0, len(keys), 25):
                requests: Any = [{"DeleteRequest": {"Key": k}} for k in keys[start : start + 25]]
                while requests:
                    response = cleaner.client.batch_write_item(
                        RequestItems={cleaner.table_name: requests}
                    )
                    requests = response.get("UnprocessedItems", {}).get(cleaner.table_name)
            return len(keys)

        return timed(batch_delete)
    return None


def dynamodb_keys(store: DynamoDBSessionStore, tenant: str) -> list[dict[str, Any]]:
    keys: list[dict[str, Any]] = []
    scan: dict[str, Any] = {"TableName": store.table_name, "ProjectionExpression": "pk, sk"}
    while True:
        page = store.client.scan(**scan)
        keys += [k for k in page["Items"] if k["pk"]["S"].startswith(f"S#{tenant}#")]
        if "LastEvaluatedKey" not in page:
            return keys
        scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def rate(measured: tuple[int, float] | None) -> float | None:
    return None if measured is None else measured[0] / measured[1]


def column(value: float | None, fmt: str = ",.0f") -> str:
    return "-" if value is None else f"{value:{fmt}}"


def main() -> None:
    cipher = Cipher.ephemeral()
    past = FakeClock(time.time() - 7200)
    with ExitStack() as stack:
        servers = start_bench_servers(stack, "turnwall-bench-cleanup-")
        client = new_client(servers.dynamodb_endpoint)
        redis_url, cluster_url = servers.redis_url, servers.redis_cluster_url
        memory = MemoryState()

        def dynamodb_pair() -> StorePair:
            # A table per phase: moto copies the whole table in every transaction.
            table = create_table(client, "bench")
            return (
                DynamoDBSessionStore(table, cipher, clock=past, boto3_client=client),
                DynamoDBSessionStore(table, cipher, boto3_client=client),
            )

        backends: dict[str, Callable[[], StorePair]] = {
            "memory": lambda: (
                MemorySessionStore(cipher, clock=past, state=memory),
                MemorySessionStore(cipher, state=memory),
            ),
            "redis": lambda: (
                RedisSessionStore.from_url(redis_url, cipher, clock=past),
                RedisSessionStore.from_url(redis_url, cipher),
            ),
            "redis cluster": lambda: (
                RedisSessionStore.from_url(cluster_url, cipher, clock=past),
                RedisSessionStore.from_url(cluster_url, cipher),
            ),
            "dynamodb (moto)": dynamodb_pair,
        }
        table = Table(
            (
                "backend",
                "sessions",
                "purge items/s",
                "sweep items/s",
                "raw items/s",
                "purge/raw",
                "sweep/raw",
            )
        )
        for name, make_pair in backends.items():
            sessions = SESSIONS[name]
            purge = rate(purge_rate(make_pair(), sessions))
            sweep = rate(sweep_rate(make_pair(), sessions))
            raw = rate(raw_rate(make_pair(), sessions))
            table.add(
                name,
                str(sessions),
                column(purge),
                column(sweep),
                column(raw),
                column(purge / raw if purge and raw else None, ".2f"),
                column(sweep / raw if sweep and raw else None, ".2f"),
            )
        print(table.render())
        client.close()
    print(
        f"({MESSAGES} messages of {len(CONTENT)} bytes per session; a fresh population for "
        "each column; a throughput report: no target, so no verdict)"
    )


if __name__ == "__main__":
    main()
