"""The Redis store's plain key-value capabilities: API keys, idempotency, rate counters.

None of these belongs to a session, so none needs a script: API key records are JSON
in one hash by key digest, idempotency records and rate counters are strings that
expire on their own (PX/EX), set with NX where only the first writer may win.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from turnwall.stores.api_keys import ApiKeyStorage
from turnwall.stores.idempotency import IdempotencyStorage
from turnwall.stores.rate_counters import RateCounters
from turnwall.stores.redis.layout import (
    API_KEYS_KEY,
    api_key_document,
    api_key_record,
    idempotency_key,
    ms,
    rate_key,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from turnwall.models import ApiKeyRecord
    from turnwall.stores.redis.client import Pipeline, RedisConnection

__all__ = ["RedisKeyValues"]


class RedisKeyValues(IdempotencyStorage, ApiKeyStorage, RateCounters):
    """The idempotency, API key and rate counter hooks, on Redis."""

    connection: RedisConnection

    def _put_api_key(self, record: ApiKeyRecord) -> None:
        self.connection.hset(API_KEYS_KEY, record.key_hash, api_key_document(record))

    def _get_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        document = self.connection.hget(API_KEYS_KEY, key_hash)
        return None if document is None else api_key_record(key_hash.encode(), document)

    def _list_api_keys(self) -> list[ApiKeyRecord]:
        documents = self.connection.hgetall(API_KEYS_KEY)
        return [api_key_record(key_hash, document) for key_hash, document in documents.items()]

    def _put_idempotency(
        self, tenant: str, digest: str, blob: bytes, until: float, now: float, only_if_absent: bool
    ) -> bytes | None:
        # A relative expiry: the caller's clock may run apart from the server's.
        keep_ms = max(1, ms(until) - ms(now))
        key = idempotency_key(tenant, digest)
        if not only_if_absent:
            self.connection.set(key, blob, px=keep_ms)
            return None
        if self.connection.set_if_absent(key, blob, px=keep_ms):
            return None
        existing = self.connection.get(key)
        return (
            existing
            if existing is not None
            else self._put_idempotency(tenant, digest, blob, until, now, only_if_absent)
        )

    def _delete_idempotency(self, tenant: str, digest: str) -> None:
        self.connection.delete(idempotency_key(tenant, digest))

    def _count_hits(
        self, buckets: Sequence[str], window: int, window_secs: int, amount: int
    ) -> list[int]:
        # SET NX EX then INCRBY keeps the expiry set at the window's first hit, and works
        # in one pipelined round trip even when the buckets live on different nodes.
        def queue(pipe: Pipeline, bucket: str) -> None:
            key = rate_key(bucket, window)
            pipe.set(key, 0, ex=2 * window_secs, nx=True)
            pipe.incrby(key, amount)

        replies = self.connection.pipelined(queue, buckets)
        return [int(count) for count in replies[1::2]]
