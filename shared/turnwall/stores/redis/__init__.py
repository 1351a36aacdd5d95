"""The Redis store (`redis://`, `rediss://`, `redis+cluster://`, `rediss+cluster://`).

Every key of one session carries the hash tag ``{tenant:session_id}``, so each Lua
script touches a single slot and runs unchanged on cluster-mode ElastiCache::

    tw:{acme:chat-1}:s   hash   incarnation, created_at, updated_at, expires_at (epoch ms),
                                ttl_secs, message_count, model (sealed), metadata, risk,
                                risk_version, ended_at (epoch ms, once ended), version
    tw:{acme:chat-1}:m   list   one packed element per message; seq N sits at index N-1
    tw:idx:{acme}        zset   the tenant's session ids scored by expiry (epoch ms)
    tw:idx:{acme}:ids    zset   the same ids, all scored 0, for ZRANGEBYLEX prefix listing
    tw:keys              hash   API key records (JSON) by key digest; no secrets in them
    tw:rate:{bucket}:N   string request counter of fixed window N, expiring after it
    tw:idem:{acme}:D     string a sealed idempotency record (key digest D), expiring
    tw:sweep:cursor      string where the scheduled sweep stopped (expires after a day)

Whether a session is live is decided by comparing the stored ``expires_at`` with the
caller's ``now`` (tests inject a clock running ahead of real time); the physical key
TTL (``ttl_secs`` plus a grace, set with PEXPIRE on every write) only reclaims memory.

One module per room, one room per capability of `turnwall.stores.base`:

    store.py        RedisSessionStore: the rooms below over one connection
    sessions.py     session and risk state hooks (a Lua script each)
    keys.py         API keys, idempotency records, rate counters
    maintenance.py  sweep, purge, re-encryption, export walk, import restore
    index.py        the tenant index, kept a superset of the live sessions
    layout.py       key names and how records are packed into them
    scripts.py      the Lua scripts, ``scripts/*.lua``, read once
    client.py       the connection: the only module importing redis-py, where
                    redis errors become `StoreUnavailable`
"""

from __future__ import annotations

from turnwall.stores.redis.client import RedisClient, translate_backend_errors
from turnwall.stores.redis.store import RedisSessionStore

__all__ = ["RedisClient", "RedisSessionStore", "translate_backend_errors"]
