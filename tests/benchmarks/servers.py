"""The private servers a store benchmark runs against, started together."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tests.support.dynamodb_server import running_moto_server
from tests.support.redis_servers import start_redis_cluster, start_redis_server

if TYPE_CHECKING:
    from contextlib import ExitStack


@dataclass(frozen=True, slots=True)
class BenchServers:
    redis_url: str
    redis_cluster_url: str
    dynamodb_endpoint: str


def start_bench_servers(stack: ExitStack, prefix: str) -> BenchServers:
    """A private redis-server, a 3-master Redis Cluster and moto's DynamoDB server on
    free ports, all stopped when `stack` closes."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    redis_server = start_redis_server(workdir / "redis")
    stack.callback(redis_server.stop)
    cluster = start_redis_cluster(workdir / "cluster")
    for node in cluster:
        stack.callback(node.stop)
    endpoint = stack.enter_context(running_moto_server())
    return BenchServers(
        redis_url=redis_server.url,
        redis_cluster_url=f"redis+cluster://127.0.0.1:{cluster[0].port}",
        dynamodb_endpoint=endpoint,
    )
