"""`RedisSessionStore`: the Redis rooms put together over one connection."""

from __future__ import annotations

from typing import TYPE_CHECKING

from turnwall.stores.base import SessionStore
from turnwall.stores.redis.client import RedisConnection, connect
from turnwall.stores.redis.keys import RedisKeyValues
from turnwall.stores.redis.maintenance import RedisMaintenance
from turnwall.stores.redis.sessions import RedisSessions

if TYPE_CHECKING:
    from collections.abc import Callable

    from turnwall.crypto import Cipher
    from turnwall.stores.redis.client import RedisClient
    from turnwall.validation import Limits

__all__ = ["RedisSessionStore"]


class RedisSessionStore(RedisSessions, RedisKeyValues, RedisMaintenance, SessionStore):
    """Sessions in Redis or a Redis Cluster (ElastiCache), one Lua script per atomic step.

    Build it with `from_url`, or pass `client=` (a `Redis` or `RedisCluster` made with
    ``decode_responses=False``) to use a client you made yourself, as tests do; it is
    kept as ``client``. The store closes its client on `close`.

    Raises:
        ConfigurationError: the injected client decodes responses to text.
    """

    def __init__(
        self,
        cipher: Cipher,
        limits: Limits | None = None,
        clock: Callable[[], float] | None = None,
        *,
        client: RedisClient,
    ) -> None:
        super().__init__(cipher, limits, clock)
        self.connection = RedisConnection(client)
        self.client = client

    @classmethod
    def from_url(
        cls,
        url: str,
        cipher: Cipher,
        limits: Limits | None = None,
        clock: Callable[[], float] | None = None,
    ) -> RedisSessionStore:
        """A store on the server or cluster `url` names, with short timeouts and one retry.

        Raises:
            ConfigurationError: the scheme is not a Redis one.
            StoreUnavailable: a cluster URL whose nodes cannot be reached (a cluster
                client discovers its topology at once; a plain client connects lazily).
        """
        return cls(cipher, limits, clock, client=connect(url))

    def ping(self) -> None:
        self.connection.ping()

    def close(self) -> None:
        """Release every connection, on a cluster each node's pool too."""
        self.connection.close()
