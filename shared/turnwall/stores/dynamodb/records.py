"""The small records beside the sessions: API keys, idempotency records, rate counters.

API keys share one partition (``pk = KEYS``, few items); idempotency records live
under ``I#<tenant>`` and counters under ``R#<bucket>#<window>``, both reclaimed by TTL
some time after they stop mattering: their expiry is compared on read, never trusted
to TTL deletion.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from turnwall.stores.dynamodb.client import ConditionFailed
from turnwall.stores.dynamodb.items import api_key_item, api_key_record
from turnwall.stores.dynamodb.layout import (
    API_KEYS_PARTITION,
    TTL_ATTRIBUTE,
    api_key_key,
    counter_key,
    idempotency_key,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from turnwall.models import ApiKeyRecord
    from turnwall.stores.dynamodb.client import SessionsTable


class DynamoDBRecords:
    """The API key, idempotency and rate-counter hooks of `DynamoDBSessionStore`."""

    table: SessionsTable

    def _put_api_key(self, record: ApiKeyRecord) -> None:
        self.table.put(api_key_item(record))

    def _get_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        item = self.table.get(api_key_key(key_hash))
        return None if item is None else api_key_record(item)

    def _list_api_keys(self) -> list[ApiKeyRecord]:
        items = self.table.query_all("#pk = :pk", {":pk": API_KEYS_PARTITION})
        return [api_key_record(item) for item in items]

    def _put_idempotency(
        self, tenant: str, digest: str, blob: bytes, until: float, now: float, only_if_absent: bool
    ) -> bytes | None:
        key = idempotency_key(tenant, digest)
        item = {**key, "blob": blob, "expires_at_exact": until, TTL_ATTRIBUTE: math.ceil(until)}
        if not only_if_absent:
            self.table.put(item)
            return None
        try:
            self.table.put(
                item,
                condition="attribute_not_exists(#pk) OR #expires_at_exact <= :now",
                values={":now": now},
            )
        except ConditionFailed:
            stored = self.table.get(key)
            if stored is None:  # removed meanwhile: claim again
                return self._put_idempotency(tenant, digest, blob, until, now, True)
            previous: bytes = stored["blob"]
            return previous
        return None

    def _delete_idempotency(self, tenant: str, digest: str) -> None:
        self.table.delete(idempotency_key(tenant, digest))

    def _count_hits(
        self, buckets: Sequence[str], window: int, window_secs: int, amount: int
    ) -> list[int]:
        # One counter item per bucket and window: atomic ADD, and TTL reclaims it some
        # time after its window (a late deletion is harmless, no one reads old windows).
        updates = "ADD #hits :amount SET #expires_at = if_not_exists(#expires_at, :gone_at)"
        values = {":amount": amount, ":gone_at": (window + 2) * window_secs}
        return [
            int(
                self.table.update(
                    counter_key(bucket, window), updates, values=values, returns="UPDATED_NEW"
                )["hits"]
            )
            for bucket in buckets
        ]
