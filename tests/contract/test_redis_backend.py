"""What only the Redis store promises: key layout, key TTLs, index pruning, fast failure.

The behaviour every store shares is in test_store_contract.py; these tests look at the
raw keys through a plain client on the same private servers.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import subprocess
import sys
import time
from dataclasses import replace
from typing import TYPE_CHECKING, cast

import pytest
from cryptography.fernet import Fernet
from redis import Redis
from redis.cluster import RedisCluster
from redis.connection import SSLConnection

from tests.support.redis_servers import start_redis_cluster, start_redis_server
from turnwall.errors import ConfigurationError, StoreUnavailable
from turnwall.models import ApiKeyRecord, NewMessage
from turnwall.settings import load_settings
from turnwall.stores import build_store
from turnwall.stores.redis import RedisSessionStore

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.conftest import StoreFactory
    from tests.support.clock import FakeClock
    from tests.support.redis_servers import RedisServer
    from turnwall.crypto import Cipher
    from turnwall.stores.base import SessionStore


def user(text: str) -> NewMessage:
    return NewMessage(role="user", content=text)


@pytest.fixture
def raw(redis_server: RedisServer) -> Iterator[Redis]:
    """A plain client on the private standalone server, to look at raw keys."""
    with redis_server.client() as client:
        yield client


def tenant_keys(client: Redis, tenant: str) -> list[bytes]:
    return sorted(client.scan_iter(match=f"*{tenant}*", count=1000))


def index_scores(client: Redis, tenant: str) -> dict[str, float]:
    """The tenant's index: session id -> score (expiry, epoch ms)."""
    entries = cast(
        "list[tuple[bytes, float]]", client.zrange(f"tw:idx:{{{tenant}}}", 0, -1, withscores=True)
    )
    return {member.decode(): score for member, score in entries}


# ------------------------------------------------------------------ failure


@pytest.mark.redis
def test_stopped_redis_fails_fast_with_store_unavailable(
    tmp_path: Path, cipher: Cipher, tenant: str
) -> None:
    server = start_redis_server(tmp_path / "doomed")
    store = RedisSessionStore.from_url(server.url, cipher)
    try:
        store.create_session(tenant, "s")
        server.stop()

        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as raised:
            store.get_session(tenant, "s")
        elapsed = time.monotonic() - started
        with pytest.raises(StoreUnavailable):
            store.ping()
    finally:
        store.close()
        server.stop()

    assert elapsed < 2.0
    assert raised.value.__cause__ is not None  # the Redis error stays attached


@pytest.mark.redis_cluster
def test_unreachable_cluster_fails_fast_with_store_unavailable(
    tmp_path: Path, cipher: Cipher
) -> None:
    server = start_redis_server(tmp_path / "gone")
    server.stop()  # a port that certainly had a server a moment ago, and now has none

    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        RedisSessionStore.from_url(f"redis+cluster://127.0.0.1:{server.port}", cipher)

    assert time.monotonic() - started < 2.0


@pytest.mark.redis_cluster
# redis-py's cluster client drops (unclosed) node connections when it re-reads the
# topology after a node died; collected below so the warning stays with this test.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_dead_shard_leaves_sessions_on_the_other_shards_usable(
    tmp_path: Path, cipher: Cipher, tenant: str
) -> None:
    nodes = start_redis_cluster(tmp_path / "cluster")
    store = RedisSessionStore.from_url(f"redis+cluster://127.0.0.1:{nodes[0].port}", cipher)
    try:
        session_ids = [f"s{i}" for i in range(24)]
        for session_id in session_ids:
            store.create_session(tenant, session_id)
        nodes[1].stop()  # its scripts were never needed yet: the first get must load them

        reachable = []
        for session_id in session_ids:
            with contextlib.suppress(StoreUnavailable):
                reachable.append(store.get_session(tenant, session_id).session_id)
    finally:
        store.close()
        for node in nodes:
            node.stop()
        gc.collect()

    assert 0 < len(reachable) < len(session_ids)
    assert len(reachable) >= len(session_ids) // 3  # whatever the two live shards hold


# ------------------------------------------------------------------ key layout


@pytest.mark.redis_cluster
def test_keys_of_a_session_share_one_slot_and_all_carry_a_ttl(
    redis_cluster_store_factory: StoreFactory, redis_cluster: list[RedisServer], tenant: str
) -> None:
    store = redis_cluster_store_factory()
    store.create_session(tenant, "user:alice:1", ttl_secs=300, metadata={"a": 1})
    store.append_messages(tenant, "user:alice:1", [user("hello"), user("again")])
    store.save_risk_state(tenant, store.open_risk_state(tenant, "user:alice:1"), {"x": 1})

    found: dict[bytes, int] = {}  # session key -> port of the node holding it
    for node in redis_cluster:
        with node.client() as client:
            for key in client.scan_iter(match=f"*{{{tenant}:user:alice:1}}*"):
                found[key] = node.port
                ttl_ms = client.pttl(key)
                assert 0 < ttl_ms <= (300 + 60) * 1000, key

    assert len(found) == 2  # the hash and the message list
    assert len(set(found.values())) == 1
    with RedisCluster.from_url(f"redis://127.0.0.1:{redis_cluster[0].port}") as cluster:
        assert len({cluster.keyslot(key) for key in found}) == 1


@pytest.mark.redis
def test_updating_the_ttl_moves_the_key_ttl(
    redis_store_factory: StoreFactory, raw: Redis, tenant: str
) -> None:
    store = redis_store_factory()
    store.append_messages(tenant, "s", [user("x")])

    store.update_session(tenant, "s", ttl_secs=7200)

    session_keys = [k for k in tenant_keys(raw, tenant) if b"{" + tenant.encode() + b":" in k]
    assert len(session_keys) == 2
    assert all(7200_000 < raw.pttl(key) <= 7260_000 for key in session_keys)


@pytest.mark.redis
def test_raw_values_hold_no_plaintext(
    redis_store_factory: StoreFactory, raw: Redis, tenant: str
) -> None:
    store = redis_store_factory()
    store.create_session(tenant, "s", metadata={"email": "alice@example.com"})
    store.append_messages(tenant, "s", [user("the launch code is 0000")])
    store.save_risk_state(tenant, store.open_risk_state(tenant, "s"), {"probe": "ignore previous"})

    values: list[bytes | str] = []
    for key in tenant_keys(raw, tenant):
        kind = raw.type(key)
        if kind == b"hash":
            values += raw.hgetall(key).values()
        elif kind == b"list":
            values += raw.lrange(key, 0, -1)
        elif kind == b"zset":
            values += cast("list[bytes]", raw.zrange(key, 0, -1))
    everything = b"\n".join(value for value in values if isinstance(value, bytes))

    assert values
    for secret in (b"alice@example.com", b"launch code", b"ignore previous"):
        assert secret not in everything


# ------------------------------------------------------------------ tenant index


@pytest.mark.redis
def test_pruning_removes_expired_and_deleted_entries_and_keeps_live_ones(
    redis_store_factory: StoreFactory, raw: Redis, tenant: str, clock: FakeClock
) -> None:
    store = redis_store_factory()
    assert isinstance(store, RedisSessionStore)
    store.create_session(tenant, "expired", ttl_secs=60)
    store.create_session(tenant, "deleted", ttl_secs=600)
    store.create_session(tenant, "slid", ttl_secs=60)
    store.create_session(tenant, "long", ttl_secs=600)
    store.delete_session(tenant, "deleted")
    clock.advance(50)
    slid = store.get_session(tenant, "slid")  # now lives past its index score
    clock.advance(20)

    removed = store.prune_tenant_index(tenant)

    assert removed == 2
    scores = index_scores(raw, tenant)
    assert sorted(scores) == ["long", "slid"]
    assert scores["slid"] == pytest.approx(slid.expires_at * 1000, abs=1)  # re-scored
    assert store.prune_tenant_index(tenant) == 0
    assert [s.session_id for s in store.list_sessions(tenant).sessions] == ["long", "slid"]


@pytest.mark.redis
def test_pruning_never_drops_an_entry_of_a_create_in_flight(
    redis_store_factory: StoreFactory, raw: Redis, tenant: str, clock: FakeClock
) -> None:
    store = redis_store_factory()
    assert isinstance(store, RedisSessionStore)
    # A create adds its index entry first and inserts the session a moment later.
    raw.zadd(f"tw:idx:{{{tenant}}}", {"arriving": (clock() + 1800) * 1000})
    raw.zadd(f"tw:idx:{{{tenant}}}:ids", {"arriving": 0})

    assert store.prune_tenant_index(tenant) == 0
    page = store.list_sessions(tenant)  # listing prunes lazily, but not this one

    assert page.sessions == [] and page.total == 0
    assert "arriving" in index_scores(raw, tenant)


@pytest.mark.redis
def test_listing_prunes_expired_entries_lazily(
    redis_store_factory: StoreFactory, raw: Redis, tenant: str, clock: FakeClock
) -> None:
    store = redis_store_factory()
    store.create_session(tenant, "short", ttl_secs=60)
    store.create_session(tenant, "long", ttl_secs=600)
    clock.advance(61)

    page = store.list_sessions(tenant)

    assert [s.session_id for s in page.sessions] == ["long"] and page.total == 1
    assert sorted(index_scores(raw, tenant)) == ["long"]


# ------------------------------------------------------------------ API keys, rate limits


@pytest.fixture(
    params=[
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("redis_cluster", marks=pytest.mark.redis_cluster),
    ]
)
def redis_store(request: pytest.FixtureRequest) -> SessionStore:
    """A store on the private server, then on the private cluster."""
    factory: StoreFactory = request.getfixturevalue(f"{request.param}_store_factory")
    return factory()


def test_api_key_records_round_trip(redis_store: SessionStore, tenant: str) -> None:
    key_hash = hashlib.sha256(tenant.encode()).hexdigest()
    record = ApiKeyRecord(key_hash, tenant, "scan", created_at=1_700_000_000.25)

    redis_store.save_api_key(record)
    assert redis_store.find_api_key(key_hash) == record
    revoked = replace(record, revoked_at=1_700_000_100.5)
    redis_store.save_api_key(revoked)

    assert redis_store.find_api_key(key_hash) == revoked
    assert redis_store.list_api_keys(tenant) == [revoked]
    assert redis_store.find_api_key("0" * 64) is None


def test_request_counts_are_shared_per_window(
    redis_store: SessionStore, clock: FakeClock, tenant: str
) -> None:
    key_bucket, ip_bucket = f"key:{tenant}", f"ip:{tenant}"

    first = redis_store.count_requests([key_bucket, ip_bucket])
    second = redis_store.count_requests([key_bucket])
    clock.advance(60)
    next_window = redis_store.count_requests([key_bucket, ip_bucket])

    assert first.counts == [1, 1] and second.counts == [2]
    assert next_window.counts == [1, 1]
    assert next_window.window_ends_at == first.window_ends_at + 60


# ------------------------------------------------------------------ construction


@pytest.mark.redis_cluster
def test_from_url_picks_the_client_for_the_scheme(
    redis_store_url: str, redis_cluster_store_url: str, cipher: Cipher
) -> None:
    cluster = RedisSessionStore.from_url(redis_cluster_store_url, cipher)
    plain = RedisSessionStore.from_url(redis_store_url, cipher)
    tls = RedisSessionStore.from_url("rediss://127.0.0.1:1/0", cipher)  # connects lazily
    try:
        assert isinstance(cluster.client, RedisCluster)
        assert isinstance(plain.client, Redis)
        assert isinstance(tls.client, Redis)
        assert tls.client.connection_pool.connection_class is SSLConnection
        cluster.ping()
        plain.ping()
    finally:
        for store in (cluster, plain, tls):
            store.close()
    with pytest.raises(ConfigurationError):
        RedisSessionStore.from_url("memcached://127.0.0.1:11211", cipher)


@pytest.mark.redis
def test_build_store_selects_redis_by_url(redis_store_url: str, tenant: str) -> None:
    settings = load_settings(
        store_url=redis_store_url, encryption_keys=Fernet.generate_key().decode()
    )

    store = build_store(settings)
    try:
        assert isinstance(store, RedisSessionStore)
        assert store.create_session(tenant, "s").session_id == "s"
    finally:
        store.close()


@pytest.mark.redis
def test_an_injected_client_is_used(redis_server: RedisServer, cipher: Cipher, tenant: str) -> None:
    client = redis_server.client()
    store = RedisSessionStore(cipher, client=client)
    try:
        store.append_messages(tenant, "s", [user("via my own client")])
        assert client.exists(f"tw:{{{tenant}:s}}:s") == 1
    finally:
        store.close()


@pytest.mark.redis
def test_the_redis_store_never_imports_boto3() -> None:
    probe = (
        "import sys; from turnwall.stores import redis; "
        "sys.exit('boto3' in sys.modules or 'botocore' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", probe], check=False).returncode == 0
