"""The connection to Redis: the one module that imports the redis client library.

`RedisConnection` offers the store exactly the commands it uses, typed, and turns
"Redis cannot answer now" errors into `StoreUnavailable` in one place (`_call`), so the
store modules above it never see a redis-py exception. It also hides what differs
between one server and a cluster (which nodes to SCAN) and how Lua scripts are run.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final, TypeAlias, TypeVar, cast

from redis import Redis
from redis import exceptions as redis_errors
from redis.backoff import ExponentialBackoff
from redis.client import Pipeline
from redis.cluster import RedisCluster
from redis.retry import Retry

from turnwall.errors import ConfigurationError, StoreUnavailable

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from turnwall.stores.redis.scripts import LuaScript

__all__ = [
    "SCHEMES",
    "Pipeline",
    "RedisClient",
    "RedisConnection",
    "connect",
    "translate_backend_errors",
]

RedisClient: TypeAlias = Redis | RedisCluster

SCHEMES: Final = ("redis", "rediss", "redis+cluster", "rediss+cluster")
_CONNECT_TIMEOUT_SECS: Final = 1.0
_COMMAND_TIMEOUT_SECS: Final = 2.0

# Errors meaning "Redis cannot answer now" rather than "this call is wrong".
_UNREACHABLE: Final = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ClusterError,
    redis_errors.TryAgainError,
    redis_errors.ReadOnlyError,
    redis_errors.SlotNotCoveredError,
)

_R = TypeVar("_R")


@contextmanager
def translate_backend_errors() -> Iterator[None]:
    """Turn "Redis is unreachable" errors into `StoreUnavailable` (the one place this happens).

    Raises:
        StoreUnavailable: a connection, timeout or cluster-down error escaped the block.
    """
    try:
        yield
    except _UNREACHABLE as exc:
        raise StoreUnavailable("the Redis store cannot be reached; try again shortly") from exc
    except redis_errors.RedisClusterException as exc:
        # Cluster discovery wraps the socket error it finally gave up on.
        if isinstance(exc.__cause__, _UNREACHABLE):
            raise StoreUnavailable("the Redis cluster cannot be reached; try again") from exc
        raise


def connect(url: str) -> RedisClient:
    """A client for the server or cluster `url` names, with short timeouts and one retry.

    Raises:
        ConfigurationError: the scheme is not a Redis one.
        StoreUnavailable: a cluster URL whose nodes cannot be reached (a cluster
            client discovers its topology at once; a plain client connects lazily).
    """
    scheme, separator, rest = url.partition("://")
    scheme = scheme.lower()
    if not separator or scheme not in SCHEMES:
        names = ", ".join(f"{name}://" for name in SCHEMES)
        raise ConfigurationError(f"not a Redis store URL: {url!r}; use one of {names}")
    options: dict[str, Any] = {
        "socket_connect_timeout": _CONNECT_TIMEOUT_SECS,
        "socket_timeout": _COMMAND_TIMEOUT_SECS,
        "decode_responses": False,
        "retry": Retry(ExponentialBackoff(cap=0.1, base=0.02), retries=1),
    }
    if scheme.endswith("+cluster"):
        with translate_backend_errors():
            return RedisCluster.from_url(f"{scheme.removesuffix('+cluster')}://{rest}", **options)
    return Redis.from_url(url, **options)


class RedisConnection:
    """The commands the Redis store sends, over one `Redis` or `RedisCluster` client.

    Raises:
        ConfigurationError: the client decodes responses to text.
    """

    def __init__(self, client: RedisClient) -> None:
        encoder = client.get_encoder() if isinstance(client, Redis) else client.encoder
        if encoder.decode_responses:
            raise ConfigurationError(
                "the Redis client must return raw bytes: create it with decode_responses=False"
            )
        self.client = client

    def _call(self, command: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with translate_backend_errors():
            return command(*args, **kwargs)

    # ------------------------------------------------------------------ commands

    def ping(self) -> None:
        self._call(self.client.ping)

    def run(self, script: LuaScript, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run `script` with EVALSHA, falling back to EVAL (which also caches it on
        that node) on NOSCRIPT.

        redis-py's own `Script` reloads with SCRIPT LOAD sent to every primary, so one
        unreachable shard would break scripts on the healthy ones; EVAL goes only to the
        node that owns the script's keys.
        """
        with translate_backend_errors():
            try:
                return self.client.evalsha(script.sha, len(keys), *keys, *args)
            except redis_errors.NoScriptError:
                return self.client.eval(script.source, len(keys), *keys, *args)

    def pipelined(
        self, queue: Callable[[Pipeline, str], object], items: Sequence[str]
    ) -> list[Any]:
        """Queue commands for each of `items` on one pipeline (no transaction, so
        keys may live on different nodes) and return every reply, in order."""
        pipe = cast("Pipeline", self.client.pipeline(transaction=False))
        for item in items:
            queue(pipe, item)
        return list(self._call(pipe.execute))

    def hgetall(self, key: str) -> dict[bytes, bytes]:
        return cast("dict[bytes, bytes]", self._call(self.client.hgetall, key))

    def hget(self, key: str, field: str) -> bytes | None:
        return cast("bytes | None", self._call(self.client.hget, key, field))

    def hset(self, key: str, field: str, value: str) -> None:
        self._call(self.client.hset, key, field, value)

    def get(self, key: str) -> bytes | None:
        return cast("bytes | None", self._call(self.client.get, key))

    def set(
        self, key: str, value: bytes | str, *, px: int | None = None, ex: int | None = None
    ) -> None:
        self._call(self.client.set, key, value, px=px, ex=ex)

    def set_if_absent(self, key: str, value: bytes, *, px: int) -> bool:
        """SET NX: whether `value` was stored (no value was there)."""
        return bool(self._call(self.client.set, key, value, px=px, nx=True))

    def delete(self, key: str) -> None:
        self._call(self.client.delete, key)

    def lower_score(self, key: str, member: str, score: int) -> None:
        """ZADD XX LT: lower the score of an existing member, never raise or add it."""
        self._call(self.client.zadd, key, {member: score}, xx=True, lt=True)

    def members_by_name(
        self, key: str, low: bytes, high: bytes, count: int | None = None
    ) -> list[bytes]:
        """ZRANGEBYLEX from `low` to `high`, at most `count` members."""
        if count is None:
            return cast("list[bytes]", self._call(self.client.zrangebylex, key, low, high))
        return cast(
            "list[bytes]",
            self._call(self.client.zrangebylex, key, low, high, start=0, num=count),
        )

    def members_scored_up_to(self, key: str, score: int, count: int) -> list[bytes]:
        """ZRANGEBYSCORE -inf..`score`, the lowest `count` members."""
        return cast(
            "list[bytes]", self._call(self.client.zrangebyscore, key, "-inf", score, 0, count)
        )

    # ------------------------------------------------------------------ keyspace walks

    def scan_nodes(self) -> list[str]:
        """The nodes to SCAN, by name: the primaries of a cluster; "" for one server."""
        if isinstance(self.client, RedisCluster):
            primaries = self._call(self.client.get_primaries)
            return sorted(str(node.name) for node in primaries)
        return [""]

    def scan(
        self, node: str, cursor: int, match: str, count: int, of_type: str
    ) -> tuple[int, list[bytes]]:
        """One SCAN step on `node` (a name from `scan_nodes`): the next cursor, and keys.

        Raises:
            StoreUnavailable: the cluster node went away.
        """
        if isinstance(self.client, RedisCluster):
            target = self.client.get_node(node_name=node)  # type: ignore[no-untyped-call]
            if target is None:
                raise StoreUnavailable("a Redis cluster node went away during the sweep")
            # A cluster client answers per node: ({node name: cursor}, keys).
            cursors, keys = cast(
                "tuple[dict[str, int], list[bytes]]",
                self._call(self.client.scan, cursor, match, count, of_type, target_nodes=target),
            )
            return int(cursors[node]), keys
        next_cursor, found = self._call(self.client.scan, cursor, match, count, of_type)
        return int(next_cursor), cast("list[bytes]", found)

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Release every connection. On a cluster that includes each node's pool, which
        redis-py's own close leaves open for clients it built from a URL."""
        client = self.client
        nodes = (
            list(client.nodes_manager.nodes_cache.values())
            if isinstance(client, RedisCluster)
            else []
        )
        client.close()
        for node in nodes:
            if node.redis_connection is not None:
                node.redis_connection.connection_pool.disconnect()
