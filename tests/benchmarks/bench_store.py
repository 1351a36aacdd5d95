"""Session store costs per backend, each against a baseline measured in the same run.

    python -m tests.benchmarks.bench_store

For every backend (memory, Redis, Redis Cluster, DynamoDB on moto's server):
1. append cost at history length 10 vs 1,000 (one 200-byte message per append, the two
   sessions appended to in turn; the mean of the appends; target ratio <= 1.2);
2. stored bytes per message vs its plaintext bytes (ciphertext, binding, framing);
3. get_session latency vs a raw client read of the same stored bytes (Redis GET of a
   key holding them, DynamoDB GetItem of the session item; memory has no client).
"""

from __future__ import annotations

import statistics
import time
import uuid
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

from tests.benchmarks.report import Table, at_most, verdict
from tests.benchmarks.servers import start_bench_servers
from tests.support.dynamodb_server import create_table, new_client
from turnwall.crypto import Cipher
from turnwall.models import NewMessage
from turnwall.stores.dynamodb import DynamoDBSessionStore
from turnwall.stores.memory import MemorySessionStore
from turnwall.stores.redis import RedisSessionStore

if TYPE_CHECKING:
    from collections.abc import Callable

    from turnwall.stores.base import SessionStore

APPENDS = 200
APPEND_TARGET = 1.2  # append at history length 1,000 vs 10: O(1)
GETS = 1000
CONTENT = ("The quick brown fox jumps over the lazy dog; " * 5)[:200]


def mean_us(fn: Callable[[], object], calls: int) -> float:
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.mean(samples) * 1e6


def dynamodb_calls_per_append(store: DynamoDBSessionStore, tenant: str) -> tuple[float, float]:
    """API calls per append at history length 10 and 1,000: moto copies the whole table
    in every transaction, so on moto the call count, not the time, shows the cost."""
    calls = [0]

    def count(**_: object) -> None:
        calls[0] += 1

    store.client.meta.events.register("before-call.dynamodb.*", count)
    one = [NewMessage("user", CONTENT)]
    result = []
    for length in (10, 1000):
        session_id = f"calls-{length}-{uuid.uuid4().hex[:6]}"
        for start in range(0, length, 100):
            store.append_messages(tenant, session_id, one * min(100, length - start))
        calls[0] = 0
        for _ in range(20):
            store.append_messages(tenant, session_id, one)
        result.append(calls[0] / 20)
    store.client.meta.events.unregister("before-call.dynamodb.*", count)
    return result[0], result[1]


def append_costs(store: SessionStore, tenant: str) -> tuple[float, float]:
    """Mean append cost at history length 10 and 1,000, the two sessions appended to in
    turn: both see the same store, so growth of the store itself (moto copies the whole
    table in every transaction) is not charged to the longer history."""
    short, long = f"short-{uuid.uuid4().hex[:6]}", f"long-{uuid.uuid4().hex[:6]}"
    store.append_messages(tenant, short, [NewMessage("user", CONTENT)] * 10)
    for _ in range(10):
        store.append_messages(tenant, long, [NewMessage("user", CONTENT)] * 100)
    one = [NewMessage("user", CONTENT)]
    samples: dict[str, list[float]] = {short: [], long: []}
    for _ in range(APPENDS):
        for session_id, taken in samples.items():
            started = time.perf_counter()
            store.append_messages(tenant, session_id, one)
            taken.append(time.perf_counter() - started)
    return statistics.mean(samples[short]) * 1e6, statistics.mean(samples[long]) * 1e6


def stored_bytes(store: SessionStore, tenant: str) -> float:
    """Mean bytes a 200-byte message occupies in the backend, framing included."""
    session_id = f"size-{uuid.uuid4().hex[:6]}"
    store.append_messages(tenant, session_id, [NewMessage("user", CONTENT)] * 50)
    if isinstance(store, RedisSessionStore):
        key = f"tw:{{{tenant}:{session_id}}}:m"
        return statistics.mean(len(v) for v in store.client.lrange(key, 0, -1))
    if isinstance(store, DynamoDBSessionStore):
        items = store.client.query(
            TableName=store.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :m)",
            ExpressionAttributeValues={":pk": {"S": f"S#{tenant}#{session_id}"}, ":m": {"S": "M#"}},
        )["Items"]
        return statistics.mean(_item_size(item) for item in items)
    head = store._read(tenant, session_id)
    assert head is not None
    return statistics.mean(len(m.blob) + 16 for m in store._read_messages(head, 1, 50))


def _item_size(item: dict[str, Any]) -> int:
    # DynamoDB's own accounting: attribute name bytes plus value bytes.
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        ((kind, raw),) = value.items()
        size += len(raw) if kind == "B" else len(str(raw).encode())
    return size


def get_costs(store: SessionStore, tenant: str) -> tuple[float, float | None]:
    session_id = f"get-{uuid.uuid4().hex[:6]}"
    store.create_session(tenant, session_id, metadata={"app": "bench", "user": "alice"})
    ours = mean_us(lambda: store.get_session(tenant, session_id), GETS)
    if isinstance(store, RedisSessionStore):
        fields = store.client.hgetall(f"tw:{{{tenant}:{session_id}}}:s")
        payload = b"".join(k + v for k, v in fields.items())
        raw_key = f"raw:{{{tenant}:{session_id}}}"
        store.client.set(raw_key, payload)
        return ours, mean_us(lambda: store.client.get(raw_key), GETS)
    if isinstance(store, DynamoDBSessionStore):
        key = {"pk": {"S": f"S#{tenant}#{session_id}"}, "sk": {"S": "SESSION"}}
        return ours, mean_us(
            lambda: store.client.get_item(TableName=store.table_name, Key=key), GETS
        )
    return ours, None


def main() -> None:
    cipher = Cipher.ephemeral()
    with ExitStack() as stack:
        servers = start_bench_servers(stack, "turnwall-bench-")
        endpoint = servers.dynamodb_endpoint
        table = create_table(new_client(endpoint))
        stores: dict[str, SessionStore] = {
            "memory": MemorySessionStore(cipher),
            "redis": RedisSessionStore.from_url(servers.redis_url, cipher),
            "redis cluster": RedisSessionStore.from_url(servers.redis_cluster_url, cipher),
            "dynamodb (moto)": DynamoDBSessionStore.from_url(
                f"dynamodb://{table}?region=us-east-1&endpoint_url={endpoint}", cipher
            ),
        }
        table = Table(
            (
                "backend",
                "append@10",
                "append@1000",
                "ratio",
                "target",
                "verdict",
                "bytes/msg",
                "vs plain",
                "get",
                "raw read",
                "get/raw",
            )
        )
        notes = []
        for name, store in stores.items():
            tenant = f"bench{uuid.uuid4().hex[:6]}"
            at_10, at_1000 = append_costs(store, tenant)
            size = stored_bytes(store, tenant)
            ours, raw = get_costs(store, tenant)
            table.add(
                name,
                f"{at_10:.1f}us",
                f"{at_1000:.1f}us",
                f"{at_1000 / at_10:.2f}x",
                at_most(APPEND_TARGET),
                verdict(at_1000 / at_10, APPEND_TARGET),
                f"{size:.0f}",
                f"{size / len(CONTENT):.2f}x",
                f"{ours:.1f}us",
                f"{raw:.1f}us" if raw else "-",
                f"{ours / raw:.2f}x" if raw else "-",
            )
            if isinstance(store, DynamoDBSessionStore):
                short_calls, long_calls = dynamodb_calls_per_append(store, tenant)
                notes.append(
                    f"{name}: API calls per append: {short_calls:.1f} at length 10, "
                    f"{long_calls:.1f} at length 1000"
                )
            store.close()
        print(table.render())
        for note in notes:
            print(note)
    print(f"(message plaintext: {len(CONTENT)} bytes; {APPENDS} appends and {GETS} gets each)")


if __name__ == "__main__":
    main()
