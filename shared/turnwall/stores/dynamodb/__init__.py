"""The DynamoDB store (`dynamodb://TABLE?region=...&endpoint_url=...`).

One table, template.yaml's ``SessionsTable``; every item of a session shares
``pk = S#<tenant>#<session_id>``::

    sk = SESSION                           the session: readable bookkeeping, sealed
                                           metadata and risk; only this item carries
                                           `tenant` and `session_id`, the keys of the
                                           sparse TenantSessions index used for listing
    sk = M#<incarnation>#<seq:010d>        one message: seq, role, created_at, sealed blob
    sk = M#<incarnation>#<seq:010d>#<nnn>  the rest of a blob too big for one item

and beside the sessions::

    pk = KEYS,                sk = <key digest>   an API key record (few: one partition)
    pk = R#<bucket>#<window>, sk = COUNT          a rate-limit counter, removed by TTL
    pk = I#<tenant>,          sk = <key digest>   a sealed idempotency record, removed by TTL
    pk = SWEEP,               sk = CURSOR         where the scheduled sweep stopped

Message keys carry the session's incarnation, so a session recreated after expiry
never sees its predecessor's messages; those stay behind as orphans for the cleanup
function. Expiry is compared with the caller's clock on every read and in every
condition (``expires_at_exact``); DynamoDB's own TTL deletion, driven by the
whole-second ``expires_at``, only reclaims space, up to ~48 h late. A TTL deletion of
a session item reaches the cleanup function through the table's stream
(`turnwall.cleanup` reads the record), which purges the messages of exactly that
incarnation; the scheduled sweep catches the rest. Creates and appends are
conditional writes or transactions, never read-modify-write.

The rooms:

- `sessions`: `DynamoDBSessionStore`, its configuration and the session hooks;
- `records`: API keys, idempotency records, rate counters;
- `maintenance`: sweep, purge, restore, re-encryption in place;
- `items` and `messages`: what the items hold (the session and key items; message
  items in parts and pairs);
- `layout`: attribute names and item keys;
- `client`: the boundary to boto3 (serialization, errors, retries);
- `table`: the table as template.yaml defines it, for tests, local runs and the CLI
  (imported on its own: it needs PyYAML, which the store does not).
"""

from __future__ import annotations

from turnwall.stores.dynamodb.client import CLIENT_CONFIG
from turnwall.stores.dynamodb.layout import (
    PARTITION_KEY,
    SESSION_SORT_KEY,
    SORT_KEY,
    TENANT_INDEX,
    TTL_ATTRIBUTE,
    TTL_SERVICE_PRINCIPAL,
)
from turnwall.stores.dynamodb.sessions import DynamoDBSessionStore

__all__ = [
    "CLIENT_CONFIG",
    "PARTITION_KEY",
    "SESSION_SORT_KEY",
    "SORT_KEY",
    "TENANT_INDEX",
    "TTL_ATTRIBUTE",
    "TTL_SERVICE_PRINCIPAL",
    "DynamoDBSessionStore",
]
