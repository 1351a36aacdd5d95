"""The Redis store (`redis://`, `rediss://`, `redis+cluster://`, `rediss+cluster://`).

Every key of one session carries the hash tag ``{tenant:session_id}``, so each Lua
script below touches a single slot and runs unchanged on cluster-mode ElastiCache::

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

Times are whole epoch milliseconds, so Lua arithmetic on them is exact. Whether a
session is live is decided by comparing the stored ``expires_at`` with the caller's
``now`` (tests inject a clock running ahead of real time); the physical key TTL
(``ttl_secs`` plus a grace, set with PEXPIRE on every write) only reclaims memory.

The tenant index lives in another slot than the sessions it lists, so it cannot be
updated in the same script. It is kept a superset of the live sessions instead::

    create:  ZADD id (score = now + ttl) ──> insert script (refused if a live one exists)
    listing: ZRANGEBYLEX ──> check every session hash ──> only live ones are returned
    prune:   ids scored <= now ──> check hashes ──> drop an id only while its score <= now

A create raises the score above ``now`` *before* its insert, so a prune racing it
finds the score too high and keeps the id; a live id whose score lags behind its
slid expiry is re-scored, never removed. A delete lowers the score to ``now`` plus
`_CREATE_IN_FLIGHT_SECS`, so a deleted id is pruned soon after, while a create racing
the delete stays protected for that long (ample for a call bounded by the 2 s socket
timeout). The index keys carry no TTL: one refreshed only by creates could drop the
entry of a session kept alive for longer, and Redis deletes an emptied zset anyway.

The scheduled sweep finds the tenant indexes with SCAN (node by node on a cluster),
prunes them as above, and removes the hash and list of a session it catches expired
but not yet reclaimed by their key TTL, reporting it as expired. Sessions whose keys
Redis already reclaimed leave only an index entry, which says nothing of how the
session ended, so those are pruned without being reported.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import json
import math
import struct
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, ParamSpec, TypeAlias, TypeVar, cast

from redis import Redis
from redis import exceptions as redis_errors
from redis.backoff import ExponentialBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from turnwall.errors import ConfigurationError, DecryptionError, StoreUnavailable
from turnwall.models import ApiKeyRecord
from turnwall.stores.base import (
    EndedSession,
    SessionRecord,
    SessionStore,
    StoredMessage,
    SweepReport,
    Touch,
    out_of_time,
)
from turnwall.stores.cursors import decode_position, encode_position

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from turnwall.crypto import Cipher
    from turnwall.stores.base import ExpiryCallback, Version
    from turnwall.validation import Limits

__all__ = ["RedisClient", "RedisSessionStore", "translate_backend_errors"]

RedisClient: TypeAlias = Redis | RedisCluster

_KEY_TTL_GRACE_SECS: Final = 60
_API_KEYS_KEY: Final = "tw:keys"
_CREATE_IN_FLIGHT_SECS: Final = 60
_CONNECT_TIMEOUT_SECS: Final = 1.0
_COMMAND_TIMEOUT_SECS: Final = 2.0
_SWEEP_CURSOR_KEY: Final = "tw:sweep:cursor"
_SWEEP_CURSOR_TTL_SECS: Final = 24 * 3600
_INDEX_KEY_PATTERN: Final = "tw:idx:{*}"  # not the :ids twins, which end in "s"
_SCAN_COUNT: Final = 200
_SWEEP_BATCH: Final = 500
_SCHEMES: Final = "redis://, rediss://, redis+cluster://, rediss+cluster://"

# A stored message: seq, role code and created_at (epoch ms) in 13 bytes, then the blob.
_MESSAGE_HEADER: Final = struct.Struct(">IBq")
_ROLE_CODES: Final = ("system", "user", "assistant", "tool")  # the position is stored

# Errors meaning "Redis cannot answer now" rather than "this call is wrong".
_UNREACHABLE: Final = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ClusterError,
    redis_errors.TryAgainError,
    redis_errors.ReadOnlyError,
    redis_errors.SlotNotCoveredError,
)

_P = ParamSpec("_P")
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


def _translated(method: Callable[_P, _R]) -> Callable[_P, _R]:
    @functools.wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with translate_backend_errors():
            return method(*args, **kwargs)

    return wrapper


# ------------------------------------------------------------------------ Lua scripts


class _LuaScript:
    """A Lua script run with EVALSHA, falling back to EVAL (which also caches it) on NOSCRIPT.

    redis-py's own `Script` reloads with SCRIPT LOAD sent to every primary, so one
    unreachable shard would break scripts on the healthy ones; EVAL goes only to the
    node that owns the script's keys.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    def __call__(self, client: RedisClient, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except redis_errors.NoScriptError:
            return client.eval(self.source, len(keys), *keys, *args)


# Every session script takes KEYS = (session hash, message list) and ARGV[1] = now (ms).

_LUA_HELPERS: Final = """
local function is_live(expires_at, now)
  return expires_at and tonumber(expires_at) > now
end
local function slide(now, ttl, grace)
  redis.call('HSET', KEYS[1], 'expires_at', string.format('%d', now + ttl * 1000))
  local keep_ms = (ttl + grace) * 1000
  redis.call('PEXPIRE', KEYS[1], keep_ms)
  redis.call('PEXPIRE', KEYS[2], keep_ms)
end
"""

# ARGV: now, grace, ttl_secs, field, value, ... -> 1 if inserted, 0 if a live one exists.
_INSERT: Final = _LuaScript(
    _LUA_HELPERS
    + """
local now = tonumber(ARGV[1])
if is_live(redis.call('HGET', KEYS[1], 'expires_at'), now) then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
slide(now, tonumber(ARGV[3]), tonumber(ARGV[2]))
return 1
"""
)

# ARGV: now, grace, ttl_secs or '', incarnation or '', '1' if the caller changes
# something (updated_at moves, version + 1), '1' to end the session, expected version or
# '', [metadata blob] -> the hash after the touch, or nil if not live (or another
# incarnation or version, or a change to an ended session other than ending it).
_TOUCH: Final = _LuaScript(
    _LUA_HELPERS
    + """
local now = tonumber(ARGV[1])
local current = redis.call('HMGET', KEYS[1], 'expires_at', 'incarnation', 'ttl_secs',
                           'ended_at', 'version')
if not is_live(current[1], now) or (ARGV[4] ~= '' and current[2] ~= ARGV[4]) then
  return false
end
if current[4] and ARGV[5] == '1' and ARGV[6] ~= '1' then return false end
if ARGV[7] ~= '' and tonumber(current[5] or '0') ~= tonumber(ARGV[7]) then return false end
local ttl = ARGV[3]
if ttl == '' then ttl = current[3] end
redis.call('HSET', KEYS[1], 'ttl_secs', ttl)
if ARGV[5] == '1' then
  redis.call('HSET', KEYS[1], 'updated_at', ARGV[1])
  redis.call('HINCRBY', KEYS[1], 'version', 1)
end
if ARGV[6] == '1' and not current[4] then redis.call('HSET', KEYS[1], 'ended_at', ARGV[1]) end
if #ARGV >= 8 then redis.call('HSET', KEYS[1], 'metadata', ARGV[8]) end
slide(now, tonumber(ttl), tonumber(ARGV[2]))
return redis.call('HGETALL', KEYS[1])
"""
)

# ARGV: now, grace, incarnation, expected message_count, '1' to set the model, model,
# n = number of field/value arguments creating the session (0 to extend a live one),
# those n arguments, then the packed messages -> the hash after the append, or nil.
_APPEND: Final = _LuaScript(
    _LUA_HELPERS
    + """
local now = tonumber(ARGV[1])
local creating = tonumber(ARGV[7])
local current = redis.call('HMGET', KEYS[1], 'expires_at', 'incarnation', 'message_count',
                           'ended_at')
if creating > 0 then
  if is_live(current[1], now) then return false end
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('HSET', KEYS[1], unpack(ARGV, 8, 7 + creating))
elseif not is_live(current[1], now) or current[2] ~= ARGV[3]
    or tonumber(current[3]) ~= tonumber(ARGV[4]) or current[4] then
  return false
end
local first = 8 + creating
redis.call('RPUSH', KEYS[2], unpack(ARGV, first))
local count = tonumber(ARGV[4]) + #ARGV - first + 1
redis.call('HSET', KEYS[1], 'message_count', string.format('%d', count), 'updated_at', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'version', 1)
if ARGV[5] == '1' then redis.call('HSET', KEYS[1], 'model', ARGV[6]) end
slide(now, tonumber(redis.call('HGET', KEYS[1], 'ttl_secs')), tonumber(ARGV[2]))
return redis.call('HGETALL', KEYS[1])
"""
)

# ARGV: now, grace, incarnation, expected risk_version, risk blob -> the hash, or nil.
_COMMIT_RISK: Final = _LuaScript(
    _LUA_HELPERS
    + """
local now = tonumber(ARGV[1])
local current = redis.call('HMGET', KEYS[1], 'expires_at', 'incarnation', 'risk_version',
                           'ttl_secs')
if not is_live(current[1], now) or current[2] ~= ARGV[3]
    or tonumber(current[3]) ~= tonumber(ARGV[4]) then
  return false
end
redis.call('HSET', KEYS[1], 'risk', ARGV[5],
           'risk_version', string.format('%d', tonumber(ARGV[4]) + 1))
slide(now, tonumber(current[4]), tonumber(ARGV[2]))
return redis.call('HGETALL', KEYS[1])
"""
)

# ARGV: now, [expected incarnation, expected version] -> {2, message_count} if a live
# session was deleted, {1, 0} if an expired one, {0, 0} if none existed, {3, 0} if the
# stored one is not the expected incarnation and version (nothing deleted).
_DELETE: Final = _LuaScript(
    """
local current = redis.call('HMGET', KEYS[1], 'expires_at', 'message_count', 'incarnation',
                           'version')
if #ARGV >= 3 and (current[3] ~= ARGV[2] or tonumber(current[4] or '0') ~= tonumber(ARGV[3]))
then
  return {3, 0}
end
redis.call('DEL', KEYS[1], KEYS[2])
if not current[1] then return {0, 0} end
if tonumber(current[1]) > tonumber(ARGV[1]) then return {2, tonumber(current[2])} end
return {1, 0}
"""
)

# ARGV: now, incarnation -> -1 if a live session holds the id (left alone), else how
# many records of that incarnation were removed (hash + messages; 0 if none is stored).
_PURGE: Final = _LuaScript(
    """
local current = redis.call('HMGET', KEYS[1], 'expires_at', 'incarnation')
if current[1] and tonumber(current[1]) > tonumber(ARGV[1]) then return -1 end
if current[2] ~= ARGV[2] then return 0 end
local removed = 1 + redis.call('LLEN', KEYS[2])
redis.call('DEL', KEYS[1], KEYS[2])
return removed
"""
)

# ARGV: incarnation, first index, last index -> the packed messages, or {} if the
# stored session is another incarnation (or gone).
_READ_MESSAGES: Final = _LuaScript(
    """
if redis.call('HGET', KEYS[1], 'incarnation') ~= ARGV[1] then return {} end
return redis.call('LRANGE', KEYS[2], ARGV[2], ARGV[3])
"""
)

# ARGV: now, grace, incarnation, message_count, expires_at (ms), field/value pairs -> 1
# if the session is that incarnation with that message_count and now holds the fields
# and expiry given, else 0.
_RESTORE: Final = _LuaScript(
    """
local current = redis.call('HMGET', KEYS[1], 'incarnation', 'message_count')
if current[1] ~= ARGV[3] or tonumber(current[2]) ~= tonumber(ARGV[4]) then return 0 end
redis.call('HSET', KEYS[1], 'expires_at', ARGV[5], unpack(ARGV, 6))
local keep_ms = tonumber(ARGV[5]) - tonumber(ARGV[1]) + tonumber(ARGV[2]) * 1000
redis.call('PEXPIRE', KEYS[1], keep_ms)
redis.call('PEXPIRE', KEYS[2], keep_ms)
return 1
"""
)

# ARGV: incarnation, hash field, old value, new value -> 1 if replaced, 0 if the session
# is another incarnation (or gone) or the field holds something else. Keeps the key TTL.
_REPLACE_FIELD: Final = _LuaScript(
    """
if redis.call('HGET', KEYS[1], 'incarnation') ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], ARGV[2]) ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[4])
return 1
"""
)

# ARGV: incarnation, list index, header bytes, old blob, new blob -> 1 if the message's
# blob was replaced (header kept), 0 as for _REPLACE_FIELD. Keeps the key TTL.
_REPLACE_MESSAGE: Final = _LuaScript(
    """
if redis.call('HGET', KEYS[1], 'incarnation') ~= ARGV[1] then return 0 end
local current = redis.call('LINDEX', KEYS[2], ARGV[2])
local header = tonumber(ARGV[3])
if not current or string.sub(current, header + 1) ~= ARGV[4] then return 0 end
redis.call('LSET', KEYS[2], ARGV[2], string.sub(current, 1, header) .. ARGV[5])
return 1
"""
)

# Index scripts take KEYS = (ids by expiry, ids by name) of one tenant.
# ARGV: score, id, score, id, ... Only ever raises a score (GT); deletes lower it (LT).
_INDEX_ADD: Final = _LuaScript(
    """
for i = 1, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], 'GT', ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[2], 0, ARGV[i + 1])
end
return #ARGV / 2
"""
)

# ARGV: cutoff (ms), id, ... -> how many ids were removed (only those scored <= cutoff).
_INDEX_PRUNE: Final = _LuaScript(
    """
local cutoff = tonumber(ARGV[1])
local removed = 0
for i = 2, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) <= cutoff then
    redis.call('ZREM', KEYS[1], ARGV[i])
    redis.call('ZREM', KEYS[2], ARGV[i])
    removed = removed + 1
  end
end
return removed
"""
)


class RedisSessionStore(SessionStore):
    """Sessions in Redis or a Redis Cluster (ElastiCache), one Lua script per atomic step.

    Build it with `from_url`, or pass `client=` (a `Redis` or `RedisCluster` made with
    ``decode_responses=False``) to use a client you made yourself, as tests do. The
    store closes its client on `close`.

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
        encoder = client.get_encoder() if isinstance(client, Redis) else client.encoder
        if encoder.decode_responses:
            raise ConfigurationError(
                "the Redis client must return raw bytes: create it with decode_responses=False"
            )
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
        scheme, separator, rest = url.partition("://")
        scheme = scheme.lower()
        if not separator or scheme not in ("redis", "rediss", "redis+cluster", "rediss+cluster"):
            raise ConfigurationError(f"not a Redis store URL: {url!r}; use one of {_SCHEMES}")
        options: dict[str, Any] = {
            "socket_connect_timeout": _CONNECT_TIMEOUT_SECS,
            "socket_timeout": _COMMAND_TIMEOUT_SECS,
            "decode_responses": False,
            "retry": Retry(ExponentialBackoff(cap=0.1, base=0.02), retries=1),
        }
        client: RedisClient
        if scheme.endswith("+cluster"):
            with translate_backend_errors():
                client = RedisCluster.from_url(
                    f"{scheme.removesuffix('+cluster')}://{rest}", **options
                )
        else:
            client = Redis.from_url(url, **options)
        return cls(cipher, limits, clock, client=client)

    # ------------------------------------------------------------------ lifecycle

    @_translated
    def ping(self) -> None:
        self.client.ping()

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

    # ------------------------------------------------------------------ maintenance

    @_translated
    def prune_tenant_index(self, tenant: str, now: float | None = None, limit: int = 1000) -> int:
        """Drop up to `limit` index entries of sessions that expired or were deleted.

        Entries of live sessions whose score fell behind their slid expiry are
        re-scored, never removed. For the scheduled cleanup; listing prunes lazily too.
        Returns how many entries were removed.
        """
        now_ms = _ms(self.clock() if now is None else now)
        by_expiry, _ = _index_keys(tenant)
        stale = cast("list[bytes]", self.client.zrangebyscore(by_expiry, "-inf", now_ms, 0, limit))
        ids = [member.decode() for member in stale]
        if not ids:
            return 0
        expiries = self._pipelined(
            lambda pipe, session_id: pipe.hget(_session_keys(tenant, session_id)[0], "expires_at"),
            ids,
        )
        dead: list[str] = []
        live: list[tuple[int, str]] = []
        for session_id, expires_at in zip(ids, expiries, strict=True):
            if expires_at is not None and int(expires_at) > now_ms:
                live.append((int(expires_at), session_id))
            else:
                dead.append(session_id)
        if live:
            self._index_add(tenant, live)
        return self._index_prune(tenant, now_ms, dead)

    # ------------------------------------------------------------------ hooks

    @_translated
    def _insert(self, record: SessionRecord, now: float) -> bool:
        self._index_add(tenant=record.tenant, entries=[(_ms(record.expires_at), record.session_id)])
        inserted = _INSERT(
            self.client,
            keys=_session_keys(record.tenant, record.session_id),
            args=[_ms(now), _KEY_TTL_GRACE_SECS, record.ttl_secs, *_record_fields(record)],
        )
        return bool(inserted)

    @_translated
    def _read(self, tenant: str, session_id: str) -> SessionRecord | None:
        fields = cast(
            "dict[bytes, bytes]", self.client.hgetall(_session_keys(tenant, session_id)[0])
        )
        return _record(tenant, session_id, fields) if fields else None

    @_translated
    def _touch(
        self,
        tenant: str,
        session_id: str,
        now: float,
        touch: Touch,
        incarnation: str | None = None,
    ) -> SessionRecord | None:
        args: list[str | int | bytes] = [
            _ms(now),
            _KEY_TTL_GRACE_SECS,
            "" if touch.ttl_secs is None else touch.ttl_secs,
            incarnation or "",
            int(touch.modifies),
            int(touch.end),
            "" if touch.expected_version is None else touch.expected_version,
        ]
        if touch.metadata_blob is not None:
            args.append(touch.metadata_blob)
        flat = _TOUCH(self.client, keys=_session_keys(tenant, session_id), args=args)
        return None if flat is None else _record(tenant, session_id, _pairs(flat))

    @_translated
    def _delete(
        self, tenant: str, session_id: str, now: float, expected: Version | None = None
    ) -> int | None:
        args: list[str | int] = [_ms(now), *(expected or ())]
        outcome, message_count = _DELETE(
            self.client, keys=_session_keys(tenant, session_id), args=args
        )
        if outcome in (1, 2):
            # Not a removal: see the module docstring for why a delete only lowers the score.
            by_expiry, _ = _index_keys(tenant)
            self.client.zadd(
                by_expiry, {session_id: _ms(now) + _CREATE_IN_FLIGHT_SECS * 1000}, xx=True, lt=True
            )
        return int(message_count) if outcome == 2 else None

    @_translated
    def _purge(self, tenant: str, session_id: str, incarnation: str, now: float) -> int:
        now_ms = _ms(now)
        removed = int(
            _PURGE(self.client, keys=_session_keys(tenant, session_id), args=[now_ms, incarnation])
        )
        if removed < 0:
            return 0
        # The entry goes only if still scored <= now: a create racing in raised it first.
        return removed + self._index_prune(tenant, now_ms, [session_id])

    @_translated
    def _sweep(
        self,
        now: float,
        max_items: int,
        deadline: float | None,
        cursor: str | None,
        on_expired: ExpiryCallback,
    ) -> SweepReport:
        now_ms = _ms(now)
        nodes = self._scan_nodes()
        node, scan_cursor, done = _decode_scan_position(cursor) if cursor else (nodes[0], 0, 0)
        if node not in nodes:  # the cluster changed shape since: start the pass again
            node, scan_cursor, done = nodes[0], 0, 0
        index = nodes.index(node)
        ended: list[EndedSession] = []
        removed = examined = 0
        while True:
            next_cursor, index_keys = self._scan_index_keys(nodes[index], scan_cursor)
            examined += 1
            # SCAN from one cursor returns the same batch unless keys came or went
            # meanwhile; then a tenant may be skipped until the next pass, never lost.
            for position, key in enumerate(index_keys[done:], start=done):
                tenant = key.decode()[len("tw:idx:{") : -1]
                while True:
                    outcome = self._sweep_tenant(tenant, now_ms, on_expired)
                    ended += outcome.ended
                    removed += outcome.removed
                    examined += outcome.examined
                    if examined >= max_items or out_of_time(deadline):
                        # A tenant with more to prune is taken up again next time.
                        resume = position if outcome.more else position + 1
                        return _report(
                            ended, removed, examined, (nodes[index], scan_cursor, resume)
                        )
                    if not outcome.more:
                        break
            done = 0
            following = _next_scan(nodes, index, next_cursor)
            if following is None:
                return _report(ended, removed, examined, None)
            index, scan_cursor = following
            if examined >= max_items or out_of_time(deadline):
                return _report(ended, removed, examined, (nodes[index], scan_cursor, 0))

    @_translated
    def _iterate_sessions(
        self, cursor: str | None, limit: int, now: float
    ) -> tuple[list[SessionRecord], str | None]:
        # The sweep's walk over tenant indexes (SCAN node by node), then each tenant's
        # ids by name, so the cursor can stop inside a tenant of any size.
        now_ms = _ms(now)
        nodes = self._scan_nodes()
        node, scan_cursor, done, after = (
            _decode_reencrypt_position(cursor) if cursor else (nodes[0], 0, 0, "")
        )
        if node not in nodes:  # the cluster changed shape since: start the pass again
            node, scan_cursor, done, after = nodes[0], 0, 0, ""
        index = nodes.index(node)
        records: list[SessionRecord] = []
        while True:
            next_cursor, index_keys = self._scan_index_keys(nodes[index], scan_cursor)
            for position, key in enumerate(index_keys[done:], start=done):
                tenant = key.decode()[len("tw:idx:{") : -1]
                while True:
                    wanted = limit - len(records)
                    ids = self._ids_after(tenant, after, wanted)
                    records += self._live_records(tenant, ids, now_ms)
                    if len(ids) < wanted:
                        after = ""
                        break
                    after = ids[-1]
                    if len(records) >= limit:
                        return records, encode_position(nodes[index], scan_cursor, position, after)
                if len(records) >= limit:
                    return records, encode_position(nodes[index], scan_cursor, position + 1, "")
            done = 0
            following = _next_scan(nodes, index, next_cursor)
            if following is None:
                return records, None
            index, scan_cursor = following

    @_translated
    def _restore_record(self, record: SessionRecord, now: float) -> bool:
        restored = _RESTORE(
            self.client,
            keys=_session_keys(record.tenant, record.session_id),
            args=[
                _ms(now),
                _KEY_TTL_GRACE_SECS,
                record.incarnation,
                record.message_count,
                _ms(record.expires_at),
                *_record_fields(record),
            ],
        )
        return bool(restored)

    @_translated
    def _replace_metadata_blob(self, record: SessionRecord, old: bytes, new: bytes) -> bool:
        return self._replace_field(record, "metadata", old, new)

    @_translated
    def _replace_risk_blob(self, record: SessionRecord, old: bytes, new: bytes) -> bool:
        return self._replace_field(record, "risk", old, new)

    @_translated
    def _replace_model(self, record: SessionRecord, old: str, new: str) -> bool:
        return self._replace_field(record, "model", old.encode(), new.encode())

    @_translated
    def _replace_message_blob(
        self, record: SessionRecord, seq: int, old: bytes, new: bytes
    ) -> bool:
        replaced = _REPLACE_MESSAGE(
            self.client,
            keys=_session_keys(record.tenant, record.session_id),
            args=[record.incarnation, seq - 1, _MESSAGE_HEADER.size, old, new],
        )
        return bool(replaced)

    @_translated
    def _get_sweep_cursor(self) -> str | None:
        cursor = cast("bytes | None", self.client.get(_SWEEP_CURSOR_KEY))
        return None if cursor is None else cursor.decode()

    @_translated
    def _put_sweep_cursor(self, cursor: str | None) -> None:
        if cursor is None:
            self.client.delete(_SWEEP_CURSOR_KEY)
        else:
            self.client.set(_SWEEP_CURSOR_KEY, cursor, ex=_SWEEP_CURSOR_TTL_SECS)

    @_translated
    def _commit_append(
        self,
        head: SessionRecord,
        messages: list[StoredMessage],
        model: str | None,
        now: float,
        *,
        creating: bool,
    ) -> SessionRecord | None:
        create_fields: list[str | int | bytes] = []
        if creating:
            self._index_add(head.tenant, [(_ms(now) + head.ttl_secs * 1000, head.session_id)])
            create_fields = _record_fields(head)
        flat = _APPEND(
            self.client,
            keys=_session_keys(head.tenant, head.session_id),
            args=[
                _ms(now),
                _KEY_TTL_GRACE_SECS,
                head.incarnation,
                head.message_count,
                int(model is not None),
                model or "",
                len(create_fields),
                *create_fields,
                *(_pack_message(message) for message in messages),
            ],
        )
        return None if flat is None else _record(head.tenant, head.session_id, _pairs(flat))

    @_translated
    def _read_messages(
        self, record: SessionRecord, first_seq: int, last_seq: int
    ) -> list[StoredMessage]:
        packed = _READ_MESSAGES(
            self.client,
            keys=_session_keys(record.tenant, record.session_id),
            args=[record.incarnation, first_seq - 1, last_seq - 1],
        )
        return [_unpack_message(raw) for raw in packed]

    @_translated
    def _scan_tenant(
        self, tenant: str, prefix: str, after: str | None, limit: int, now: float
    ) -> tuple[list[SessionRecord], int]:
        now_ms = _ms(now)
        _, by_name = _index_keys(tenant)
        # Ids are ASCII, so every id starting with `prefix` sorts below prefix + 0xff.
        low, high = (
            (b"[" + prefix.encode(), b"(" + prefix.encode() + b"\xff") if prefix else (b"-", b"+")
        )
        members = cast("list[bytes]", self.client.zrangebylex(by_name, low, high))
        ids = [member.decode() for member in members]
        start = bisect.bisect_right(ids, after) if after is not None else 0
        window = set(ids[start : start + limit])
        # One round trip: whole hashes for the likely page, expiry alone for the rest.
        replies = self._pipelined(
            lambda pipe, session_id: (
                pipe.hgetall(_session_keys(tenant, session_id)[0])
                if session_id in window
                else pipe.hget(_session_keys(tenant, session_id)[0], "expires_at")
            ),
            ids,
        )
        live: list[str] = []
        dead: list[str] = []
        records: dict[str, SessionRecord] = {}
        for session_id, reply in zip(ids, replies, strict=True):
            fields = reply if isinstance(reply, dict) else None
            expires_at = fields.get(b"expires_at") if fields is not None else reply
            if expires_at is None or int(expires_at) <= now_ms:
                dead.append(session_id)
                continue
            live.append(session_id)
            if fields is not None:
                records[session_id] = _record(tenant, session_id, fields)
        candidates = live[bisect.bisect_right(live, after) :] if after is not None else live
        page = self._fill_page(tenant, candidates, records, limit, now_ms)
        if dead:
            self._index_prune(tenant, now_ms, dead)
        return page, len(live)

    @_translated
    def _commit_risk(
        self, head: SessionRecord, risk_blob: bytes, now: float
    ) -> SessionRecord | None:
        flat = _COMMIT_RISK(
            self.client,
            keys=_session_keys(head.tenant, head.session_id),
            args=[_ms(now), _KEY_TTL_GRACE_SECS, head.incarnation, head.risk_version, risk_blob],
        )
        return None if flat is None else _record(head.tenant, head.session_id, _pairs(flat))

    @_translated
    def _put_api_key(self, record: ApiKeyRecord) -> None:
        document = {
            "tenant": record.tenant,
            "role": record.role,
            "created_at": record.created_at,
            "revoked_at": record.revoked_at,
        }
        self.client.hset(_API_KEYS_KEY, record.key_hash, json.dumps(document))

    @_translated
    def _get_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        document = cast("bytes | None", self.client.hget(_API_KEYS_KEY, key_hash))
        return None if document is None else _api_key(key_hash.encode(), document)

    @_translated
    def _list_api_keys(self) -> list[ApiKeyRecord]:
        documents = cast("dict[bytes, bytes]", self.client.hgetall(_API_KEYS_KEY))
        return [_api_key(key_hash, document) for key_hash, document in documents.items()]

    @_translated
    def _put_idempotency(
        self, tenant: str, digest: str, blob: bytes, until: float, now: float, only_if_absent: bool
    ) -> bytes | None:
        # A relative expiry: the caller's clock may run apart from the server's.
        keep_ms = max(1, _ms(until) - _ms(now))
        key = _idempotency_key(tenant, digest)
        if not only_if_absent:
            self.client.set(key, blob, px=keep_ms)
            return None
        if self.client.set(key, blob, px=keep_ms, nx=True):
            return None
        existing = cast("bytes | None", self.client.get(key))
        return (
            existing
            if existing is not None
            else self._put_idempotency(tenant, digest, blob, until, now, only_if_absent)
        )

    @_translated
    def _delete_idempotency(self, tenant: str, digest: str) -> None:
        self.client.delete(_idempotency_key(tenant, digest))

    @_translated
    def _count_hits(
        self, buckets: Sequence[str], window: int, window_secs: int, amount: int
    ) -> list[int]:
        # SET NX EX then INCRBY keeps the expiry set at the window's first hit, and works
        # in one pipelined round trip even when the buckets live on different nodes.
        pipe = self.client.pipeline(transaction=False)
        for bucket in buckets:
            key = f"tw:rate:{{{bucket}}}:{window}"
            pipe.set(key, 0, ex=2 * window_secs, nx=True)
            pipe.incrby(key, amount)
        replies = pipe.execute()
        return [int(count) for count in replies[1::2]]

    # ------------------------------------------------------------------ helpers

    def _fill_page(
        self,
        tenant: str,
        candidates: list[str],
        records: dict[str, SessionRecord],
        limit: int,
        now_ms: int,
    ) -> list[SessionRecord]:
        # Sessions seen live by expiry alone are fetched whole only when earlier ones
        # of the window turned out dead, which is rare: usually no round trip at all.
        page: list[SessionRecord] = []
        position = 0
        while len(page) < limit and position < len(candidates):
            batch = candidates[position : position + limit - len(page)]
            position += len(batch)
            missing = [s for s in batch if s not in records]
            if missing:
                fetched = self._pipelined(
                    lambda pipe, session_id: pipe.hgetall(_session_keys(tenant, session_id)[0]),
                    missing,
                )
                for session_id, fields in zip(missing, fetched, strict=True):
                    if fields and int(fields[b"expires_at"]) > now_ms:
                        records[session_id] = _record(tenant, session_id, fields)
            page += [records[s] for s in batch if s in records]
        return page

    def _pipelined(self, queue: Callable[[Any, str], object], ids: Sequence[str]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for session_id in ids:
            queue(pipe, session_id)
        return list(pipe.execute())

    def _replace_field(self, record: SessionRecord, name: str, old: bytes, new: bytes) -> bool:
        replaced = _REPLACE_FIELD(
            self.client,
            keys=_session_keys(record.tenant, record.session_id),
            args=[record.incarnation, name, old, new],
        )
        return bool(replaced)

    def _ids_after(self, tenant: str, after: str, count: int) -> list[str]:
        """Up to `count` of the tenant's indexed ids, ascending, strictly after `after`."""
        _, by_name = _index_keys(tenant)
        low = b"(" + after.encode() if after else b"-"
        members = cast(
            "list[bytes]", self.client.zrangebylex(by_name, low, b"+", start=0, num=count)
        )
        return [member.decode() for member in members]

    def _live_records(self, tenant: str, ids: Sequence[str], now_ms: int) -> list[SessionRecord]:
        replies = self._pipelined(
            lambda pipe, session_id: pipe.hgetall(_session_keys(tenant, session_id)[0]), ids
        )
        return [
            _record(tenant, session_id, fields)
            for session_id, fields in zip(ids, replies, strict=True)
            if fields and int(fields[b"expires_at"]) > now_ms
        ]

    def _sweep_tenant(self, tenant: str, now_ms: int, on_expired: ExpiryCallback) -> _TenantSweep:
        """Prune up to one batch of the tenant's stale index entries, removing and
        reporting the expired sessions still stored behind them."""
        by_expiry, _ = _index_keys(tenant)
        stale = cast(
            "list[bytes]", self.client.zrangebyscore(by_expiry, "-inf", now_ms, 0, _SWEEP_BATCH)
        )
        ids = [member.decode() for member in stale]
        if not ids:
            return _TenantSweep((), 0, 1, more=False)
        heads = self._pipelined(
            lambda pipe, session_id: pipe.hmget(
                _session_keys(tenant, session_id)[0], "expires_at", "incarnation", "message_count"
            ),
            ids,
        )
        live: list[tuple[int, str]] = []
        dead: list[str] = []
        expired: list[tuple[str, EndedSession]] = []
        for session_id, (expires_at, incarnation, message_count) in zip(ids, heads, strict=True):
            if expires_at is not None and int(expires_at) > now_ms:
                live.append((int(expires_at), session_id))
                continue
            dead.append(session_id)
            if expires_at is not None and incarnation is not None:
                ended = EndedSession(
                    tenant, session_id, int(message_count or 0), int(expires_at) / 1000
                )
                expired.append((incarnation.decode(), ended))
        if live:
            # Re-scored above now, so the next batch moves on past them.
            self._index_add(tenant, live)
        if expired:
            on_expired([ended for _, ended in expired])
        removed = 0
        for incarnation, ended in expired:
            removed += max(
                0,
                int(
                    _PURGE(
                        self.client,
                        keys=_session_keys(tenant, ended.session_id),
                        args=[now_ms, incarnation],
                    )
                ),
            )
        removed += self._index_prune(tenant, now_ms, dead)
        return _TenantSweep(
            tuple(ended for _, ended in expired), removed, len(ids), more=len(ids) == _SWEEP_BATCH
        )

    def _scan_nodes(self) -> list[str]:
        """The nodes to SCAN, by name: the primaries of a cluster; "" for one server."""
        if isinstance(self.client, RedisCluster):
            primaries = self.client.get_primaries()  # type: ignore[no-untyped-call]
            return sorted(str(node.name) for node in primaries)
        return [""]

    def _scan_index_keys(self, node: str, scan_cursor: int) -> tuple[int, list[bytes]]:
        if isinstance(self.client, RedisCluster):
            target = self.client.get_node(node_name=node)  # type: ignore[no-untyped-call]
            if target is None:
                raise StoreUnavailable("a Redis cluster node went away during the sweep")
            # A cluster client answers per node: ({node name: cursor}, keys).
            cursors, keys = cast(
                "tuple[dict[str, int], list[bytes]]",
                self.client.scan(
                    scan_cursor, _INDEX_KEY_PATTERN, _SCAN_COUNT, "zset", target_nodes=target
                ),
            )
            return int(cursors[node]), keys
        next_cursor, found = self.client.scan(scan_cursor, _INDEX_KEY_PATTERN, _SCAN_COUNT, "zset")
        return int(next_cursor), cast("list[bytes]", found)

    def _index_add(self, tenant: str, entries: Sequence[tuple[int, str]]) -> None:
        args: list[int | str] = []
        for score, session_id in entries:
            args += [score, session_id]
        _INDEX_ADD(self.client, keys=_index_keys(tenant), args=args)

    def _index_prune(self, tenant: str, cutoff_ms: int, session_ids: Sequence[str]) -> int:
        if not session_ids:
            return 0
        return int(
            _INDEX_PRUNE(self.client, keys=_index_keys(tenant), args=[cutoff_ms, *session_ids])
        )


# -------------------------------------------------------------------- module helpers


@dataclass(frozen=True, slots=True)
class _TenantSweep:
    ended: tuple[EndedSession, ...]
    removed: int
    examined: int
    more: bool


def _report(
    ended: list[EndedSession],
    removed: int,
    examined: int,
    position: tuple[str, int, int] | None,
) -> SweepReport:
    return SweepReport(
        removed_sessions=tuple(ended),
        removed_items=removed,
        examined_items=examined,
        next_cursor=None if position is None else encode_position(*position),
    )


def _next_scan(nodes: list[str], index: int, next_cursor: int) -> tuple[int, int] | None:
    """Where a walk over the tenant indexes goes after a SCAN batch: (node index, SCAN
    cursor) on the same node, or the next node from its start; None when all are done."""
    if next_cursor != 0:
        return index, next_cursor
    if index + 1 < len(nodes):
        return index + 1, 0
    return None


def _decode_scan_position(cursor: str) -> tuple[str, int, int]:
    """Where a sweep stopped: the node, its SCAN cursor, and how many keys of the batch
    that cursor returns are swept already."""
    node, scan_cursor, done = decode_position(cursor, (str, int, int), "sweep")
    return node, scan_cursor, done


def _decode_reencrypt_position(cursor: str) -> tuple[str, int, int, str]:
    """Where a reencrypt step stopped: as a sweep position, plus the last session id
    visited in the tenant it stopped in ("" when it stopped between tenants)."""
    node, scan_cursor, done, after = decode_position(cursor, (str, int, int, str), "reencrypt")
    return node, scan_cursor, done, after


def _session_keys(tenant: str, session_id: str) -> tuple[str, str]:
    tag = f"{{{tenant}:{session_id}}}"
    return f"tw:{tag}:s", f"tw:{tag}:m"


def _index_keys(tenant: str) -> tuple[str, str]:
    return f"tw:idx:{{{tenant}}}", f"tw:idx:{{{tenant}}}:ids"


def _idempotency_key(tenant: str, digest: str) -> str:
    return f"tw:idem:{{{tenant}}}:{digest}"


def _ms(epoch_secs: float) -> int:
    return math.floor(epoch_secs * 1000)


def _record_fields(record: SessionRecord) -> list[str | int | bytes]:
    """The hash fields of a new session, except expires_at (the script sets it)."""
    fields: list[str | int | bytes] = [
        "incarnation", record.incarnation,
        "created_at", _ms(record.created_at),
        "updated_at", _ms(record.updated_at),
        "ttl_secs", record.ttl_secs,
        "message_count", record.message_count,
        "risk_version", record.risk_version,
        "version", record.version,
    ]  # fmt: skip
    if record.model is not None:
        fields += ["model", record.model]
    if record.metadata_blob is not None:
        fields += ["metadata", record.metadata_blob]
    if record.risk_blob is not None:
        fields += ["risk", record.risk_blob]
    if record.ended_at is not None:
        fields += ["ended_at", _ms(record.ended_at)]
    return fields


def _pairs(flat: Sequence[bytes]) -> dict[bytes, bytes]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _record(tenant: str, session_id: str, fields: Mapping[bytes, bytes]) -> SessionRecord:
    model, ended_at = fields.get(b"model"), fields.get(b"ended_at")
    return SessionRecord(
        tenant=tenant,
        session_id=session_id,
        incarnation=fields[b"incarnation"].decode(),
        created_at=int(fields[b"created_at"]) / 1000,
        updated_at=int(fields[b"updated_at"]) / 1000,
        expires_at=int(fields[b"expires_at"]) / 1000,
        ttl_secs=int(fields[b"ttl_secs"]),
        message_count=int(fields[b"message_count"]),
        model=None if model is None else model.decode(),
        metadata_blob=fields.get(b"metadata"),
        risk_blob=fields.get(b"risk"),
        risk_version=int(fields.get(b"risk_version", 0)),
        ended_at=None if ended_at is None else int(ended_at) / 1000,
        version=int(fields.get(b"version", 0)),
    )


def _api_key(key_hash: bytes, document: bytes) -> ApiKeyRecord:
    fields = json.loads(document)
    return ApiKeyRecord(
        key_hash=key_hash.decode(),
        tenant=fields["tenant"],
        role=fields["role"],
        created_at=fields["created_at"],
        revoked_at=fields["revoked_at"],
    )


def _pack_message(message: StoredMessage) -> bytes:
    role_code = _ROLE_CODES.index(message.role)
    return _MESSAGE_HEADER.pack(message.seq, role_code, _ms(message.created_at)) + message.blob


def _unpack_message(packed: bytes) -> StoredMessage:
    try:
        seq, role_code, created_ms = _MESSAGE_HEADER.unpack_from(packed)
        role = _ROLE_CODES[role_code]
    except (struct.error, IndexError) as exc:
        raise DecryptionError("a stored message is malformed") from exc
    return StoredMessage(
        seq=seq, role=role, created_at=created_ms / 1000, blob=packed[_MESSAGE_HEADER.size :]
    )
