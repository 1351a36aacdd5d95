"""Who is calling, and how to reach the store.

`RequestContextMiddleware` authenticates and rate-counts every request before routing
(so a bad key gets 401 before its body is even validated); each route then starts with
`caller = caller_of(request, permission)`, which only checks the role. A plain call
rather than a FastAPI dependency: dependency resolution costs about 10 µs per request,
an eighth of a bare route on Lambda.
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import TYPE_CHECKING, Final, NamedTuple, ParamSpec, TypeVar

from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from turnwall.errors import InvalidApiKey, Unauthorized
from turnwall.stores.idempotency import StoredResponse

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from fastapi import Request
    from pydantic import BaseModel

    from turnwall.auth import Permission, Principal
    from turnwall.ratelimit import RateLimitStatus
    from turnwall.runtime import Runtime
    from turnwall.services.chat import ChatService
    from turnwall.services.scan import ScanService
    from turnwall.stores.base import SessionStore

P = ParamSpec("P")
T = TypeVar("T")


class Caller(NamedTuple):
    """An accepted request: the principal, the runtime, and a way to run store calls."""

    principal: Principal
    runtime: Runtime
    offload_blocking: bool

    @property
    def tenant(self) -> str:
        return self.principal.tenant

    @property
    def store(self) -> SessionStore:
        return self.runtime.store

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a blocking store call.

        On Lambda a container serves one request at a time, so the call runs inline (a
        thread hop would only add latency); `turnwall serve` hands it to a worker
        thread so one slow backend call does not stall every other connection.
        """
        if self.offload_blocking:
            return await run_in_threadpool(functools.partial(fn, *args, **kwargs))
        return fn(*args, **kwargs)


# Response headers a replayed answer keeps (the body and status are kept whole).
_REPLAYED_HEADERS: Final = ("x-session-id", "etag")


async def idempotent(
    request: Request, caller: Caller, respond: Callable[[], Awaitable[Response]]
) -> Response:
    """Answer with `respond()`, once per `Idempotency-Key` when the request has one.

    A repeat of the same request (same method, path and JSON body) with the key gets
    the first answer again, marked `Idempotent-Replayed: true`, and changes nothing; the
    key with another request answers 422. Only successful answers are kept (for
    IW_MAX_TTL_SECS, the longest a session can go untouched), so a failed request may
    be retried with its key.
    """
    key = request.headers.get("idempotency-key")
    if key is None:
        return await respond()
    fingerprint = _fingerprint(request.method, request.url.path, await request.body())
    store, tenant = caller.store, caller.tenant
    replay = await caller.call(store.claim_idempotency_key, tenant, key, fingerprint)
    if replay is not None:
        return Response(
            replay.body,
            status_code=replay.status,
            media_type="application/json",
            headers={**replay.headers, "idempotent-replayed": "true"},
        )
    try:
        response = await respond()
    except BaseException:
        await caller.call(store.release_idempotency_key, tenant, key)
        raise
    if response.status_code >= 400:
        await caller.call(store.release_idempotency_key, tenant, key)
        return response
    kept = StoredResponse(
        response.status_code,
        bytes(response.body),
        {name: response.headers[name] for name in _REPLAYED_HEADERS if name in response.headers},
    )
    keep_secs = caller.runtime.settings.max_ttl_secs
    await caller.call(store.finish_idempotency_key, tenant, key, fingerprint, kept, keep_secs)
    return response


def _fingerprint(method: str, path: str, body: bytes) -> str:
    """What a request asks for: its method, path and JSON body, formatting aside."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))
    except ValueError:
        canonical = body.decode("utf-8", "replace")
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def presented_key(authorization: str | None, api_key: str | None) -> str | None:
    """The key from `Authorization: Bearer <key>`, else from `X-Api-Key`."""
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return api_key or None


def authenticate(
    runtime: Runtime, key: str | None, client_ip: str | None
) -> tuple[Principal, RateLimitStatus]:
    """Accept a presented key and count the request against its rate limits.

    Raises:
        Unauthorized, InvalidApiKey, RateLimited.
    """
    try:
        principal = runtime.authenticator.authenticate(key)
    except (Unauthorized, InvalidApiKey):
        runtime.rate_limiter.hit_failed_authentication(client_ip)
        raise
    return principal, runtime.rate_limiter.hit(client_ip, principal.key_id)


def caller_of(request: Request, permission: Permission) -> Caller:
    """The authenticated caller of this request, if its role grants `permission`.

    Raises:
        Forbidden: the role lacks the permission.
    """
    caller: Caller = request.scope["state"]["caller"]  # set by RequestContextMiddleware
    caller.principal.require(permission)
    return caller


SESSION_ID_HEADERS = ("sessionid", "session-id", "x-session-id", "session_id")


def session_id_from(request: Request, from_body: str | None) -> str | None:
    """The session id of a scan or chat: the body's, else the first session header."""
    if from_body is not None:
        return from_body
    for name in SESSION_ID_HEADERS:
        value = request.headers.get(name)
        if value:
            return value
    return None


def scan_service_of(request: Request) -> ScanService:
    service: ScanService = request.app.state.scan_service
    return service


def chat_service_of(request: Request) -> ChatService:
    service: ChatService = request.app.state.chat_service
    return service


def json_response(model: BaseModel, status_code: int = 200) -> Response:
    """Serialize a response model straight to JSON (FastAPI would validate it again)."""
    return Response(
        model.__pydantic_serializer__.to_json(model),
        status_code=status_code,
        media_type="application/json",
    )
